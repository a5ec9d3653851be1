#!/usr/bin/env bash
# PubMedQA decision rows in full mode on a leased GPU with the real SmolLM2-135M-Instruct
# (prepared 2026-12-04; the lease was withdrawn before it ran). The GGUF (98 MB) is over one
# call's 64 MiB, so it travels in two calls to a machine kept warm between them:
#   here:  split -b 40m $(find .venv -name '*.gguf') .gpu/gg/part.
#          wheels into .whl2: transformers 5.24, peft 0.21, pydantic (+ core, annotated_types,
#          typing_inspection, typing_extensions), gguf, nltk, defusedxml, rouge_score
#          (`pip wheel rouge_score==0.1.2`: sdist only); cp -r ../shared/datasets/pubmedqa .gpu/datasets/
#   call 1 (carry .whl2 .gpu/gg/part.aa): mkdir -p /tmp/gg && cp .gpu/gg/part.aa /tmp/gg/ &&
#          python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl2/*.whl
#   call 2, within the 30 s the machine stays warm (carry .gpu/gg/part.ab .gpu/gg/part.ac
#          .gpu/datasets/pubmedqa): this script.
set -o pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PEFTOPS_TOKEN_CACHE=off
export PEFTOPS_DATASETS=$PWD/.gpu/datasets PYTHONPATH=/tmp/site:$PWD
start=$SECONDS
cat /tmp/gg/part.aa .gpu/gg/part.ab .gpu/gg/part.ac > /tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf || exit 1
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c || exit 1
python3 - <<'PY' || exit 1
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
f = "SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained("/tmp/gg", gguf_file=f)
model = AutoModelForCausalLM.from_pretrained("/tmp/gg", gguf_file=f, dtype=torch.float32,
                                             quantization_config=GgufConfig(dequantize=True))
model.save_pretrained("/tmp/smollm2"); tok.save_pretrained("/tmp/smollm2")
print("converted", sum(p.numel() for p in model.parameters()), torch.cuda.get_device_name(0))
PY
echo "converted at $((SECONDS-start)) s"
for rows in "base_prompted lora_attention full_finetune" "dora_attention ia3_all_linear lora_auto"; do
  only=(); for r in $rows; do only+=(--only "$r"); done
  left=$((400 - (SECONDS-start))); (( left > 30 )) || break
  timeout $left python3 -m peftops.cli bench quality --task generation \
    --dataset pubmedqa --no-quick --constrained --base-model /tmp/smollm2 "${only[@]}" \
    2>> >(grep -v "step/s" >> $OUT/genq.log) | tee -a $OUT/genq_full.jsonl | cut -c1-300
done
echo "done at $((SECONDS-start)) s"
tail -25 $OUT/genq.log
