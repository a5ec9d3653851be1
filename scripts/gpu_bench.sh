#!/usr/bin/env bash
# Training-throughput benchmarks on a GPU machine: the pipeline's training component vs a bare
# torch + peft loop, and dynamic vs fixed padding, on banking77 (../shared/datasets or
# PEFTOPS_DATASETS). The device is chosen automatically (CUDA when present) and training runs
# under bf16 autocast where the GPU supports it (components/training.py: autocast_for).
#
#   scripts/gpu_bench.sh                 # quick sizes
#   scripts/gpu_bench.sh --full          # full sizes
#   scripts/gpu_bench.sh --distributed   # DDP scaling: 1 GPU against 2, 4, ... all visible
#                                        # GPUs (one process each, NCCL, the same batch per
#                                        # GPU), samples/s and scaling efficiency
#   scripts/gpu_bench.sh --generation    # generative quality rows, full PubMedQA (see below)
#   scripts/gpu_bench.sh --gen-speed     # the causal-LM training step (bf16) vs a bare loop
#
# Arguments after the mode go to `peftops bench speed`, e.g. another base model (an id, or a
# folder on the machine):  scripts/gpu_bench.sh --gen-speed --gen-model /models/SmolLM2-1.7B
#
# JSON lines on stdout (one per comparison), the ratio table on stderr. Exits non-zero, before
# measuring anything, where torch has no CUDA or sees no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mode=--quick
only=(--only throughput --only padding)
generation=0
case "${1:-}" in
  --full) mode=--no-quick; shift ;;
  --distributed) only=(--only distributed); shift ;;
  --generation) generation=1; shift ;;
  --gen-speed) only=(--only gen_throughput); shift ;;
esac
extra=("$@")
# Generative quality on a GPU (issue 20): every PubMedQA decision row in full mode (all 500
# test questions, 384 tokens) with a larger local causal LM than the CPU default, e.g.
#   GEN_BASE_MODEL=/models/SmolLM2-1.7B-Instruct scripts/gpu_bench.sh --generation
# (a folder on the machine: nothing is downloaded). Without GEN_BASE_MODEL: SmolLM2-135M.

export HF_HUB_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
# refuse to run on the CPU: that is `peftops bench speed`, not a GPU measurement
"$PY" - <<'PY'
import sys

import torch
from components.training import autocast_for, native_bf16, pick_device

print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, ROCm {torch.version.hip})", flush=True)
if torch.version.cuda is None and torch.version.hip is None:
    sys.exit(
        "this torch is a CPU-only build: install a CUDA (or ROCm) build of torch 2.13.0 in the venv "
        "(PyPI's Linux wheel is one, where pip is not set up for CPU wheels: "
        "`.venv/bin/pip install --force-reinstall torch==2.13.0`), then run this again"
    )
device = pick_device()
if device.type != "cuda":
    sys.exit("no CUDA device visible (nvidia-smi, CUDA_VISIBLE_DEVICES): nothing to measure")
name = torch.cuda.get_device_name(0)
print(f"  {name}; native bf16: {native_bf16('cuda')}")
with autocast_for(device):
    y = torch.nn.Linear(8, 8).to(device)(torch.randn(2, 8, device=device))
print(f"  autocast dtype inside training: {y.dtype}")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if [[ $generation == 1 ]]; then
  # constrained like the CPU full-mode table it sits beside; later arguments win
  # (`--no-constrained`, `--long-answer`, `--only <row>`)
  exec "$PY" -m peftops.cli bench quality --task generation --dataset pubmedqa --no-quick \
    --constrained ${GEN_BASE_MODEL:+--base-model "$GEN_BASE_MODEL"} "${extra[@]}"
fi
if [[ "${only[*]}" == "--only distributed" ]]; then
  gpus=$("$PY" -c "import torch; print(torch.cuda.device_count())")
  (( gpus >= 2 )) || { echo "--distributed needs 2 or more GPUs; $gpus visible" >&2; exit 1; }
fi
exec "$PY" -m peftops.cli bench speed "$mode" "${only[@]}" "${extra[@]}"
