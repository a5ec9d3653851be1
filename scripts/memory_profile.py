"""Where training memory goes: LoRA vs full fine-tuning, live tensors against the resident set.

    .venv/bin/python scripts/memory_profile.py                     # MiniLM (the default model)
    .venv/bin/python scripts/memory_profile.py --shape bert-base   # BERT-base's shape, random
    .venv/bin/python scripts/memory_profile.py --allocator all     # glibc settings side by side

Each method (LoRA r=8 on attention; full fine-tuning) trains `--steps` steps of 32 banking77
texts (../shared/datasets or PEFTOPS_DATASETS) with the pipeline's model, optimiser and
batches, in a fresh process per method and allocator setting, and reports in MB:

floor, weights, optimizer, grads, activations, forward_end (what the tensors hold at the end
of the fullest forward pass) and peak (VmHWM); `peftops.bench.memory.memory_breakdown` says
exactly what each is.

`--allocator mmap-4mb` / `mmap-1mb` run the children with MALLOC_MMAP_THRESHOLD_ set: glibc
then maps every buffer of that size or more and returns it on free, instead of keeping freed
buffers in its heap (the default, whose threshold rises to 32 MB as big buffers are freed);
`jemalloc` preloads jemalloc (Debian: libjemalloc2) instead of glibc's malloc.
This is how the memory profile in docs/benchmarks.md was made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def child(method: str, model_ref: str, steps: int, threads: int) -> dict:
    from peftops.bench.datasets import load_bench_dataset
    from peftops.bench.memory import memory_breakdown

    data = load_bench_dataset("banking77", max_train=32 * steps, max_test=16)
    ex = data.examples
    return memory_breakdown(method, model_ref, ex.train, ex.labels, data.max_length, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default=None, help="random encoder of this shape: bert-base")
    parser.add_argument(
        "--allocator",
        default="default",
        help="comma-separated, of default, mmap-4mb, mmap-1mb, jemalloc; or all",
    )
    parser.add_argument("--steps", type=int, default=3, help="steps of 32 texts per method")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["lora", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--model", default=MINILM, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.steps, args.threads)))
        return

    from peftops.bench.memory import (
        ALLOCATORS,
        allocator_env,
        expected_allocator,
        with_allocator,
    )

    allocators = list(ALLOCATORS) if args.allocator == "all" else args.allocator.split(",")
    if unknown := set(allocators) - set(ALLOCATORS):
        parser.error(f"unknown allocator setting(s): {', '.join(sorted(unknown))}")
    missing = [a for a in allocators if allocator_env(a) is None]
    for name in missing:
        print(
            f"# {name}: not installed here, skipped (Debian: apt-get install libjemalloc2)",
            file=sys.stderr,
        )
    allocators = [a for a in allocators if a not in missing]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.shape:
            from peftops.bench.models import random_encoder

            model = str(random_encoder(Path(tmp) / args.shape, args.shape))
        rows = {}
        for allocator in allocators:
            for method in ("lora", "full"):
                cmd = [sys.executable, __file__, "--child", method, "--model", model]
                cmd += ["--steps", str(args.steps), "--threads", str(args.threads)]
                env = with_allocator({**os.environ, "HF_HUB_OFFLINE": "1"}, allocator)
                started = time.perf_counter()
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    sys.exit(f"{method}/{allocator} failed:\n{out.stderr[-2000:]}")
                row = json.loads(out.stdout.strip().splitlines()[-1])
                expected = expected_allocator(allocator)
                if row["allocator"] != expected:  # a preload the loader refused only warns
                    sys.exit(f"{method}/{allocator} ran under {row['allocator']}: {out.stderr}")
                rows[allocator, method] = row
                print(
                    f"# {method}, {allocator} allocator: {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )

    name = args.shape or "MiniLM"
    print(f"{name}, batch 32, {args.steps} steps, {args.threads} threads (MB)")
    columns = ["floor", "weights", "optimizer", "grads", "activations", "forward_end", "peak"]
    columns.append("samples_per_s")
    print(f"{'':<16}" + "".join(f"{c:>14}" for c in columns))
    for (allocator, method), r in rows.items():
        print(f"{method + ' ' + allocator:<16}" + "".join(f"{r[c]:>14.1f}" for c in columns))
    for allocator in allocators:
        lora, full = rows[allocator, "lora"], rows[allocator, "full"]
        print(
            f"LoRA / full, {allocator} allocator: forward_end "
            f"{lora['forward_end'] / full['forward_end']:.2f}x, "
            f"peak {lora['peak'] / full['peak']:.2f}x (longest batch {lora['longest_batch']} "
            f"tokens)"
        )
    print(
        json.dumps(
            {
                "shape": name,
                "steps": args.steps,
                "rows": {f"{m}/{a}": r for (a, m), r in rows.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
