"""Where a training step's time goes: torch.profiler over the pipeline's own LoRA steps.

    .venv/bin/python scripts/profile_step.py                  # training.fast_dropout on
    .venv/bin/python scripts/profile_step.py --torch-dropout  # torch's dropout

MiniLM with LoRA r=8 on attention (the speed benchmark's configuration), batches of 32
banking77 texts from ../shared/datasets (or PEFTOPS_DATASETS) as `iter_batches` builds them,
2 CPU threads; prints the ops by self CPU time and the mean step time. This is how the
dropout cost in docs/benchmarks.md was found.
"""

from __future__ import annotations

import argparse
import itertools

import torch
from torch.profiler import ProfilerActivity, profile

from components.batching import encode, iter_batches
from peftops.bench.datasets import load_bench_dataset
from peftops.bench.speed.steps import bench_config, train_steps, training_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-dropout", action="store_true", help="training.fast_dropout=false")
    parser.add_argument("--steps", type=int, default=8, help="profiled steps (after 3 warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=18, help="ops to print")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_bench_dataset("banking77", max_train=32 * (args.steps + 3), max_test=16)
    ex = data.examples
    training = {"fast_dropout": not args.torch_dropout}
    model_id = "sentence-transformers/all-MiniLM-L6-v2"  # the packaged copy, offline
    config = bench_config(ex.labels, data.max_length, 32, args.threads, model_id, training=training)
    model, tokenizer, optimizer = training_model(config, len(ex.labels))
    enc = encode(tokenizer, ex.train.texts, data.max_length, ex.train.label_ids)
    batches = list(iter_batches(enc, 32, tokenizer.pad_token_id, shuffle=True, seed=1))
    train_steps(model, optimizer, batches[:3])  # warm-up
    timed = list(itertools.islice(itertools.cycle(batches[3:]), args.steps))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _, seconds, _ = train_steps(model, optimizer, timed)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    tokens = sum(b["input_ids"].numel() for b in timed)
    print(
        f"fast_dropout={training['fast_dropout']}: {args.steps} steps of 32, "
        f"{tokens / args.steps:.0f} padded tokens per step, "
        f"{seconds / args.steps * 1000:.0f} ms per step (under the profiler)"
    )


if __name__ == "__main__":
    main()
