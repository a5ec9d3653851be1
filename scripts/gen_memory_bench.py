"""`bench speed`'s gen_memory at chosen lengths (full mode's plan), e.g. to resume a run:

    PYTHONPATH=. .venv/bin/python scripts/gen_memory_bench.py 512 1024

Rows as JSON lines on stdout, the table on stderr (the benchmark's own function and rows)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

from peftops.bench.speed.generative import bench_gen_memory
from peftops.bench.speed.harness import FULL, Context, print_table

if __name__ == "__main__":
    threads = int(os.environ.get("THREADS", "2"))
    torch.set_num_threads(threads)
    lengths = tuple(int(x) for x in sys.argv[1:]) or None
    with tempfile.TemporaryDirectory(prefix="peftops-speed-") as tmp:
        os.environ["PEFTOPS_TOKEN_CACHE"] = str(Path(tmp) / "tokens")
        ctx = Context(FULL, "full", threads, "cpu", Path(tmp))
        bench_gen_memory(ctx, lengths)
        print_table(ctx.rows, 0)
