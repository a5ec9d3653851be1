"""Dynamic padding with length-grouped batches against padding to the fixed maximum length
(and dynamic padding without grouping): the pipeline's training steps on banking77 and
medical_abstracts."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from peftops.bench.speed.harness import Context, Measure, alternate, best, comparison, rate_pair
from peftops.bench.speed.steps import bench_config, train_steps, training_model


def bench_padding(ctx: Context) -> None:
    for name, (steps, batch_size) in ctx.settings.padding.items():
        _padding_on(ctx, name, steps, batch_size)


def _padding_on(ctx: Context, name: str, steps: int, batch_size: int) -> None:
    from components.batching import encode, iter_batches
    from peftops.bench.datasets import load_bench_dataset

    n = steps * batch_size
    data = load_bench_dataset(name, max_train=n, max_test=16)
    ex = data.examples
    config = bench_config(ex.labels, data.max_length, batch_size, ctx.threads, ctx.base_model)
    model, tokenizer, optimizer = training_model(config, len(ex.labels))
    enc = encode(tokenizer, ex.train.texts, data.max_length, ex.train.label_ids)
    pad = tokenizer.pad_token_id
    lengths = [len(x) for x in enc.input_ids]
    # warm-up: the first step creates AdamW's state; without it the first variant pays for it
    precision = config.training.precision
    train_steps(model, optimizer, iter([next(iter_batches(enc, batch_size, pad))]), precision)

    def variant(group: bool, pad_to: int | None) -> Callable[[], Measure]:
        def run() -> Measure:
            batches = iter_batches(
                enc, batch_size, pad, shuffle=True, seed=1, group_by_length=group, pad_to=pad_to
            )
            return train_steps(model, optimizer, batches, precision)

        return run

    runs = alternate(
        {
            "grouped": variant(True, None),
            "fixed": variant(False, data.max_length),
            "dynamic": variant(False, None),
        },
        ctx.settings.padding_rounds,
    )
    common = {
        "dataset": name,
        "examples": n,
        "batch_size": batch_size,
        "max_length": data.max_length,
        "mean_tokens": round(statistics.mean(lengths), 1),
        "truncated_share": round(sum(x >= data.max_length for x in lengths) / n, 3),
    }
    rate_pair(
        ctx,
        f"padding_{name}",
        runs["grouped"],
        runs["fixed"],
        "fixed max-length padding",
        "samples/s",
        variant="dynamic padding + length-grouped batches",
        **common,
    )
    comparison(
        ctx,
        f"padding_{name}_ungrouped",
        best([n / w for n, w, _ in runs["dynamic"]]),
        "fixed max-length padding",
        best([n / w for n, w, _ in runs["fixed"]]),
        "samples/s",
        variant="dynamic padding, random batches",
        **common,
    )
