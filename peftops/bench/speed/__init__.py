"""`peftops bench speed`: the pipeline against hand-written baselines, side by side, as ratios.

Absolute times on shared machines are noisy, so every comparison runs both sides in the same
invocation (interleaved where they share a process) and reports `ratio`, oriented so that
higher is better for the pipeline (for times and memory, `baseline_value / value`).

Benchmarks (``--only`` names):
- ``throughput``: the pipeline's training component (`components.training.train_classifier`)
  vs a bare hand-written torch + peft loop: same model, data, batch size, dynamic padding with
  length grouping, seed, threads; alternating rounds, medians compared.
- ``padding``: dynamic padding with length-grouped batches vs padding to the fixed maximum
  length (and dynamic padding without grouping), training steps on banking77 and
  medical_abstracts with the pipeline's model and batching code.
- ``orchestration``: a full flow run (`peftops run finance`) vs the same components called in
  a plain script without Prefect or MLflow, each a fresh process; cold (ephemeral Prefect) and
  warm (a running Prefect server) reported separately, with the flow's per-task times.
- ``inference``: the registered model through `mlflow.pyfunc` vs the raw model forward
  (predictions/s, p50/p95 latency of single texts); LoRA merged into the base vs unmerged.
- ``memory``: peak RSS of LoRA vs full fine-tuning training on the same batches, each in its
  own process; with the pipeline's defaults, with gradient checkpointing, and with jemalloc
  preloaded instead of glibc's malloc (where installed).
- ``scaling``: validation time and training samples/s at 1x, 10x, 100x the demo data
  (replicated, each copy's texts made distinct), with growth ratios.
- ``gen_memory``: peak RSS of LoRA vs full fine-tuning of SmolLM2-135M (the generation
  task's training, each side in its own process, training phase only) at 128 tokens per
  row (quick) or 128, 512 and 1024 (full), per memory setting.
- ``gen_throughput``: the pipeline's causal-LM training (its recipe through `fit`) vs a bare
  torch + peft loop on the finance-assistant data, SmolLM2-135M; the bare loop's loss on the
  trained positions only (like for like) and as `model(labels=...)` computes it.
- ``gen_inference``: generation tokens/s of the generative pyfunc vs raw `model.generate`,
  batched and one prompt at a time; the LoRA merged into the base vs unmerged.
- ``distributed``: training samples/s in 1 process and in 2 (DDP, the local launcher) on the
  same machine and threads (or 1 GPU against 2, 4, ... all), end to end and in the training
  loop, with scaling efficiency.

The ``gen_*`` benchmarks (SmolLM2-135M, tens of minutes on 2 CPU cores) and ``distributed``
(process start-ups) run only when named with ``--only``. One module per benchmark;
`harness` holds what they share (settings, targets, rows, rounds, child processes) and
`steps` the pipeline's training step. Run
`python -m peftops.bench.speed plain|memory|genmemory ...` only through the benchmark (its
children).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from peftops.bench.speed.distributed import bench_distributed
from peftops.bench.speed.gen_speed import bench_gen_inference, bench_gen_throughput
from peftops.bench.speed.generative import bench_gen_memory
from peftops.bench.speed.harness import DEMO, FULL, QUICK, Context, log, print_table
from peftops.bench.speed.inference import bench_inference
from peftops.bench.speed.memory import bench_memory
from peftops.bench.speed.orchestration import bench_orchestration
from peftops.bench.speed.padding import bench_padding
from peftops.bench.speed.scaling import bench_scaling
from peftops.bench.speed.throughput import bench_throughput

NEEDS_DEMO = ("orchestration", "inference", "scaling")  # run on data/finance (DVC-tracked)

RUNNERS: dict[str, Callable[[Context], None]] = {
    "throughput": bench_throughput,
    "padding": bench_padding,
    "orchestration": bench_orchestration,
    "inference": bench_inference,
    "memory": bench_memory,
    "scaling": bench_scaling,
    "distributed": bench_distributed,
    "gen_throughput": bench_gen_throughput,
    "gen_inference": bench_gen_inference,
    "gen_memory": bench_gen_memory,
}
BENCHMARKS = tuple(RUNNERS)  # `--only` names, in the order they run
# SmolLM2 on CPU takes tens of minutes, and `distributed` minutes of process start-ups: they
# run when named (`--only`)
ON_REQUEST = (*(name for name in BENCHMARKS if name.startswith("gen_")), "distributed")


def run_speed_benchmark(
    quick: bool = True,
    only: list[str] | None = None,
    threads: int | None = None,
    base_model: str | None = None,
    gen_model: str | None = None,
) -> list[dict]:
    """Run the chosen benchmarks in order; one JSON line per comparison; a table on stderr.
    `base_model` / `gen_model`: a model id or local folder in place of the default encoder
    (MiniLM) / causal LM (SmolLM2-135M), e.g. a larger base on a GPU."""
    import torch

    unknown = sorted(set(only or []) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    on_demo = [name for name in NEEDS_DEMO if not only or name in only]
    if on_demo and not (DEMO / "train.csv").is_file():
        raise FileNotFoundError(
            f"{', '.join(on_demo)} need the demo data in {DEMO}: run `make data` (dvc pull) first"
        )
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else ""
    started = time.perf_counter()
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="peftops-speed-") as tmp:
        # the benchmark's own token cache: nothing lands in the project, every run starts cold
        os.environ["PEFTOPS_TOKEN_CACHE"] = str(Path(tmp) / "tokens")
        ctx = Context(
            QUICK if quick else FULL,
            "quick" if quick else "full",
            threads,
            device,
            Path(tmp),
            device_name=device_name,
            **{k: v for k, v in (("base_model", base_model), ("gen_model", gen_model)) if v},
        )
        log(
            f"{ctx.mode} mode, {threads} torch threads, device {device} {device_name}, "
            f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
            f"models {ctx.base_model}, {ctx.gen_model}"
        )
        for name in BENCHMARKS:
            if (only and name not in only) or (not only and name in ON_REQUEST):
                continue
            log(f"{name} ...")
            began = time.perf_counter()
            try:
                RUNNERS[name](ctx)
            except Exception as err:  # reported as a row, the other benchmarks go on
                row = {"benchmark": name, "error": f"{type(err).__name__}: {err}"}
                print(json.dumps(row), flush=True)
                ctx.rows.append(row)
            log(f"{name} done in {time.perf_counter() - began:.0f} s")
        os.environ.clear()
        os.environ.update(saved_env)
    print_table(ctx.rows, time.perf_counter() - started)
    return ctx.rows
