"""Scaling: validation time and training samples/s at 1x, 10x and 100x the demo data
(replicated, each copy's texts made distinct), with growth ratios."""

from __future__ import annotations

import json
import time

from peftops.bench.speed.harness import DEMO, Context, alternate, comparison, log, rate_pair, timed
from peftops.bench.speed.steps import bench_config, train_steps, training_model


def scaled_frames(frames: dict, k: int, text_column: str) -> dict:
    """`frames` replicated `k` times, copy i > 0 with " (copy i)" appended to its texts: plain
    copies would be duplicates, which validation rightly fails (the duplicate-share check),
    so the scaling would time a failing suite. Distinct texts keep every check's work real
    while the rows' lengths, labels and columns stay those of the demo data."""
    import pandas as pd

    out = {}
    for split, frame in frames.items():
        copies = []
        for i in range(k):
            copy = frame.copy()
            if i:
                copy[text_column] = copy[text_column].astype(str) + f" (copy {i})"
            copies.append(copy)
        out[split] = pd.concat(copies, ignore_index=True)
    return out


def bench_scaling(ctx: Context) -> None:
    import pandas as pd

    from components.batching import encode, iter_batches
    from components.config import apply_overrides, load_preset
    from components.validation import validate_splits

    config = apply_overrides(load_preset("finance"), [f"data.path={json.dumps(str(DEMO))}"])
    frames = {s: pd.read_csv(DEMO / f"{s}.csv") for s in ("train", "validation", "test")}
    d = config.data

    def validate(k: int) -> tuple[float, float]:
        scaled = scaled_frames(frames, k, d.text_column)
        with timed() as took:
            report = validate_splits(
                scaled,
                text_column=d.text_column,
                label_column=d.label_column,
                labels=d.labels,
                config=config.validation,
                suite_name="peftops-finance",
            )
        if not report.success:
            raise RuntimeError(f"validation failed at {k}x: {report.summary()}")
        return took[0], took[1]

    validate(1)  # warm-up: imports and GE's first context
    factors = ctx.settings.scale_factors
    val_times = {k: validate(k) for k in factors}
    rows = {k: sum(len(f) for f in frames.values()) * k for k in factors}
    log(f"validation (wall s, CPU s) by factor: {val_times}")

    # training: the pipeline's tokenization (uncached) and batching over the whole scaled
    # split, then a fixed number of training steps drawn from it
    train_cfg = bench_config(d.labels, config.model.max_length, 16, ctx.threads, ctx.base_model)
    model, tokenizer, optimizer = training_model(train_cfg, len(d.labels))
    label_ids = [d.labels.index(x) for x in frames["train"][d.label_column]]
    texts = frames["train"][d.text_column].astype(str).tolist()
    steps = ctx.settings.scale_steps
    prep: dict[int, float] = {}
    first: dict[int, list[dict]] = {}
    for k in factors:
        started = time.perf_counter()
        enc = encode(tokenizer, texts * k, config.model.max_length, label_ids * k, cache=False)
        batches = iter_batches(enc, 16, tokenizer.pad_token_id, shuffle=True, seed=k)
        first[k] = [next(batches) for _ in range(steps)]
        prep[k] = time.perf_counter() - started
    precision = train_cfg.training.precision
    train_steps(model, optimizer, iter(first[factors[0]][:1]), precision)  # warm-up
    # interleaved rounds, so that drift over the run does not favour one scale
    measured = alternate(
        {k: lambda k=k: train_steps(model, optimizer, iter(first[k]), precision) for k in factors},
        ctx.settings.scale_rounds,
    )
    # per padded token: a few random length-grouped batches differ in length between scales
    tokens_measured = {
        k: [(sum(b["input_ids"].numel() for b in first[k]), w, c) for _, w, c in measured[k]]
        for k in factors
    }
    base = factors[0]
    for k in factors[1:]:
        for suffix, i, unit in (("", 0, "s"), ("_cpu", 1, "cpu-s")):
            value, at_base = val_times[k][i], val_times[base][i]
            comparison(
                ctx,
                f"validation_scaling_{k}x{suffix}",
                value,
                f"linear extrapolation of {base}x ({k // base} x {at_base:.2f})",
                at_base * k / base,
                unit,
                higher_is_better=False,
                rows=rows[k],
                rows_baseline=rows[base],
                growth=round(value / at_base, 2),
                per_1k_rows=round(1000 * value / rows[k], 4),
            )
        rate_pair(
            ctx,
            f"training_scaling_{k}x",
            measured[k],
            measured[base],
            f"training samples/s at {base}x",
            "samples/s",
            train_rows=len(texts) * k,
            steps=steps,
            batch_size=16,
            tokenize_and_plan_seconds=round(prep[k], 3),
            tokenize_and_plan_growth=round(prep[k] / prep[base], 2),
        )
        rate_pair(
            ctx,
            f"training_scaling_{k}x_tokens",
            tokens_measured[k],
            tokens_measured[base],
            f"padded tokens/s at {base}x",
            "tokens/s",
            padded_tokens=[tokens_measured[k][0][0], tokens_measured[base][0][0]],
        )
