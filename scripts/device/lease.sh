#!/usr/bin/env bash
# The GPU rows of docs/benchmarks.md in one bounded command on a leased machine (its image has
# torch, accelerate and onnx but not this project's pins; nothing can be downloaded there).
# Prepared here, in the repo root (.gpu and .whl ignored through .git/info/exclude):
#   python scripts/device/random_weights.py export .gpu/models
#   cp -r ../shared/datasets/{banking77,medical_abstracts} .gpu/datasets/
#   pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl \
#     transformers==5.24.0 peft==0.21.2 pydantic==2.14.4 pydantic_core annotated_types \
#     typing_inspection typing_extensions
# then run there with .whl, .gpu and data/finance-assistant carried: scripts/device/lease.sh
# It installs the wheels, builds random-weight models of the default architectures, and runs
# scripts/gpu_bench.sh (classifier throughput + padding, quick) and the bf16 causal-LM step
# (SmolLM2-135M's shape, then 1.7B's), each under a timeout; results land in $OUT as they come.
set -o pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHON=python3
export PEFTOPS_DATASETS=$PWD/.gpu/datasets PEFTOPS_HOME=/tmp/peftops-home
start=$SECONDS
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/env.txt
python3 -c "import torch,transformers,peft,accelerate,pydantic;print('torch',torch.__version__,'cuda',torch.version.cuda,'transformers',transformers.__version__,'peft',peft.__version__,'accelerate',accelerate.__version__)" | tee -a $OUT/env.txt
cp -r .gpu/models /tmp/models && python3 scripts/device/random_weights.py build /tmp/models 2>&1 | grep -v shards
echo "setup done at $((SECONDS-start)) s"
timeout 250 scripts/gpu_bench.sh --base-model /tmp/models/minilm >$OUT/gpu_bench.jsonl 2> >(tee $OUT/gpu_bench.log | grep -v "step/s" >&2)
echo "gpu_bench rc $? at $((SECONDS-start)) s"
timeout 150 scripts/gpu_bench.sh --gen-speed --gen-model /tmp/models/smollm2-135m >$OUT/gen_speed_135m.jsonl 2> >(tee $OUT/gen_speed_135m.log | grep -v "step/s" >&2)
echo "gen 135m rc $? at $((SECONDS-start)) s"
if (( SECONDS - start < 400 )); then
  python3 scripts/device/random_weights.py large /tmp/models 2>&1 | grep -v shards
  timeout $((520 - (SECONDS - start))) scripts/gpu_bench.sh --gen-speed --gen-model /tmp/models/smollm2-1.7b >$OUT/gen_speed_1.7b.jsonl 2> >(tee $OUT/gen_speed_1.7b.log | grep -v "step/s" >&2)
  echo "gen 1.7b rc $? at $((SECONDS-start)) s"
fi
