#!/usr/bin/env bash
# Training-throughput benchmarks on a GPU machine: the pipeline's training component vs a bare
# torch + peft loop, and dynamic vs fixed padding, on banking77 (../shared/datasets or
# PEFTOPS_DATASETS). The device is chosen automatically (CUDA when present) and training runs
# under bf16 autocast where the GPU supports it (components/training.py: autocast_for).
#
#   scripts/gpu_bench.sh            # quick sizes
#   scripts/gpu_bench.sh --full     # full sizes
#
# JSON lines on stdout (one per comparison), the ratio table on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mode=--quick
[[ "${1:-}" == "--full" ]] && mode=--no-quick

export HF_HUB_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
"$PY" - <<'PY'
import torch
from components.training import autocast_for, pick_device

device = pick_device()
print(f"torch {torch.__version__}; device {device}", flush=True)
if device.type == "cuda":
    print(f"  {torch.cuda.get_device_name(0)}; bf16 supported: {torch.cuda.is_bf16_supported()}")
    with autocast_for(device):
        y = torch.nn.Linear(8, 8).to(device)(torch.randn(2, 8, device=device))
    print(f"  autocast dtype inside training: {y.dtype}")
else:
    print("  no CUDA device: this runs on the CPU (same as peftops bench speed)")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
exec "$PY" -m peftops.cli bench speed "$mode" --only throughput --only padding
