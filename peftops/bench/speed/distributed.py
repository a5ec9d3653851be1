"""`distributed`: training samples/s of the pipeline in 1 process and in N (DDP over gloo on
CPU, NCCL on GPUs, started by the local launcher), on the same machine, the same data, the
same global batch and the same total threads (N processes get threads/N each).

Two figures per side: end to end (the launcher's wall time: processes spawned, model loaded
in each, trained, bundle saved) and the training loop alone (rank 0's `samples_per_second`).
On 2 CPU cores, 2 processes cannot beat 1 (the same cores do the same arithmetic, plus the
gradient all-reduce and a second model load): the row measures what DDP costs where it
cannot pay; on GPUs (`scripts/gpu_bench.sh --distributed`) it measures scaling.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from peftops.bench.speed.harness import Context, comparison, log, median
from peftops.bench.speed.steps import bench_config, subset

ROUNDS = 2


def process_counts(device: str) -> tuple[int, ...]:
    """2 on CPU; on GPUs 2, 4, 8, ... up to and including the number of GPUs."""
    if device != "cuda":
        return (2,)
    import torch

    gpus = torch.cuda.device_count()
    counts = [n for n in (2, 4, 8, 16, 32, 64) if n < gpus] + [gpus]
    return tuple(n for n in counts if n > 1)


def bench_distributed(ctx: Context) -> None:
    from components import launch
    from components.baseline import BaselineResult
    from components.examples import Examples, TextSplit
    from components.objectives import Baselines, objective_for
    from components.selection import run_selection
    from peftops.bench.datasets import load_bench_dataset

    s = ctx.settings
    data = load_bench_dataset("banking77", max_train=s.train_examples, max_test=64)
    ex = data.examples
    train, val = ex.train, subset(ex.validation, 64)
    examples = Examples(ex.labels, train, val, TextSplit([], []))
    no_probe = Baselines({}, state=BaselineResult(None, [], {}, 0.0))  # head_init: random

    # CPU: the same global batch and threads in all (n processes split both); GPUs: weak
    # scaling, the same batch per GPU (the global batch grows with n), as GPU scaling is read
    gpu = ctx.device == "cuda"

    def global_batch(n: int) -> int:
        return s.batch_size * n if gpu else s.batch_size

    def run(n: int) -> dict:
        threads = max(1, ctx.threads // n)
        config = bench_config(
            ex.labels,
            data.max_length,
            global_batch(n),
            threads,
            ctx.base_model,
            training={"num_processes": n, "epochs": 2},
        )
        selection = run_selection(config, train, len(ex.labels))
        objective = objective_for(config)
        with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
            started = time.perf_counter()
            result = launch.train(objective, examples, selection, no_probe, config, Path(tmp))
            wall = time.perf_counter() - started
        samples = len(train) * config.training.epochs
        log(
            f"distributed: {n} process(es): {samples / wall:.1f} samples/s end to end, "
            f"{result.samples_per_second:.1f} in the loop"
        )
        return {"end_to_end": samples / wall, "loop": result.samples_per_second, "n": n}

    for n in process_counts(ctx.device):
        # alternating rounds (1, n, 1, n), medians: other jobs on the machine hit both sides
        ones, manys = [], []
        for _ in range(ROUNDS):
            ones.append(run(1))
            manys.append(run(n))
        common = {
            "dataset": "banking77",
            "examples": len(train),
            "epochs": 2,
            "global_batch": global_batch(n),
            "processes": n,
            "threads_per_process": max(1, ctx.threads // n),
            "statistic": f"median of {ROUNDS} alternating rounds",
        }
        for what, label in (("loop", "training loop"), ("end_to_end", "end to end")):
            one = median([r[what] for r in ones])
            many = median([r[what] for r in manys])
            comparison(
                ctx,
                f"distributed_{n}proc_{what}",
                many,
                f"1 process ({label})",
                one,
                "samples/s",
                scaling_efficiency=round(many / one / n, 3),
                rounds_value=[round(r[what], 2) for r in manys],
                rounds_baseline=[round(r[what], 2) for r in ones],
                **common,
            )
