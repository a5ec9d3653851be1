"""Training throughput: the pipeline's training component against a bare torch + peft loop
written by hand (same model, data, batching recipe, precision rule, optimiser and seed)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from peftops.bench.speed.harness import Context, Measure, alternate, rate_pair
from peftops.bench.speed.steps import bench_config, subset


def bare_loop(
    location: str,
    target_modules: list[str],
    texts: list[str],
    label_ids: list[int],
    num_labels: int,
    *,
    max_length: int,
    batch_size: int,
    seed: int,
    lr: float,
    head_lr: float,
    weight_decay: float,
    warmup_ratio: float,
    r: int,
    alpha: int,
    dropout: float,
) -> Measure:
    """One epoch of a plain torch + peft training loop written by hand; (samples, wall s,
    CPU s) of the loop.

    The usual recipe: tokenizer without padding, length-grouped shuffled batches padded to
    their longest text, mean-pooled L2-normalised embeddings into a linear head, AdamW with
    linear warm-up/decay, bf16 autocast where bf16 is native (CUDA GPUs that have it, CPUs
    with AMX), fp16 with loss scaling on other GPUs, fp32 on other CPUs. Nothing from
    `components` is used."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda:
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private: may go away
        bf16 = bool(amx and amx())
    amp_dtype = torch.bfloat16 if bf16 else torch.float16 if cuda else None
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and not bf16)  # fp16 needs it
    tokenizer = AutoTokenizer.from_pretrained(location)
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    lora = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, bias="none"
    )
    backbone = get_peft_model(AutoModel.from_pretrained(location), lora).to(device)
    head = nn.Linear(backbone.config.hidden_size, num_labels).to(device)
    body = [p for p in backbone.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": head_lr}, {"params": body, "lr": lr}],
        weight_decay=weight_decay,
    )
    steps = -(-len(ids) // batch_size)
    warmup = int(warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / max(warmup, 1) if s < warmup else max(0.0, (steps - s) / (steps - warmup))
        ),
    )
    # shuffle, sort mega-batches of 50 batches by length, cut, shuffle the batches
    rng = np.random.default_rng(seed + 1)
    lengths = np.array([len(x) for x in ids])
    order = rng.permutation(len(ids))
    mega = batch_size * 50
    order = np.concatenate(
        [
            c[np.argsort(-lengths[c], kind="stable")]
            for c in np.split(order, range(mega, len(order), mega))
        ]
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]
    labels = torch.tensor(label_ids)
    pad = tokenizer.pad_token_id

    backbone.train()
    total = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    for idx in batches:
        width = int(lengths[idx].max())
        input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, : lengths[i]] = torch.tensor(ids[i])
            mask[row, : lengths[i]] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            states = backbone(input_ids=input_ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            logits = head(nn.functional.normalize(pooled, dim=-1))
        loss = nn.functional.cross_entropy(logits.float(), labels[idx].to(device))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total += loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(ids), time.perf_counter() - started, time.process_time() - cpu_started


def bench_throughput(ctx: Context) -> None:
    import torch

    from components.modeling import resolve_base_model
    from components.selection import run_selection
    from components.training import precision_name, train_classifier, training_dtype
    from peftops.bench.datasets import load_bench_dataset

    s = ctx.settings
    data = load_bench_dataset("banking77", max_train=s.train_examples, max_test=64)
    ex = data.examples
    config = bench_config(ex.labels, data.max_length, s.batch_size, ctx.threads, ctx.base_model)
    train, val = ex.train, subset(ex.validation, 64)
    selection = run_selection(config, train, len(ex.labels))
    location = resolve_base_model(config.model.base_model).location
    t, m = config.training, config.method

    # the pipeline with training.fast_dropout flipped from its default (off: torch's dropout,
    # like the bare loop; on: FastDropout) as a third side
    flipped = config.model_copy(
        update={"training": t.model_copy(update={"fast_dropout": not t.fast_dropout})}
    )
    other = "fast_dropout" if flipped.training.fast_dropout else "torch_dropout"

    def pipeline(cfg=config) -> Measure:
        with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
            result = train_classifier(
                cfg, selection, train, val, ex.labels, Path(tmp), resume=False
            )
        epoch = result.history[-1]
        return len(train), epoch["seconds"], epoch["cpu_seconds"]

    def bare() -> Measure:
        return bare_loop(
            location,
            list(selection.target_modules),
            train.texts,
            train.label_ids,
            len(ex.labels),
            max_length=config.model.max_length,
            batch_size=t.batch_size,
            seed=t.seed,
            lr=t.learning_rate,
            head_lr=t.head_learning_rate,
            weight_decay=t.weight_decay,
            warmup_ratio=t.warmup_ratio,
            r=m.r,
            alpha=m.alpha,
            dropout=m.dropout,
        )

    sides = {
        "pipeline": pipeline,
        "bare": bare,
        f"pipeline_{other}": lambda: pipeline(flipped),
    }
    if ctx.device != "cpu":  # fast_dropout acts on CPU only: here it would repeat "pipeline"
        del sides[f"pipeline_{other}"]
    # where the defaults autocast (bf16 on AMX CPUs and most GPUs), what it buys: fp32 as a side
    precision = precision_name(training_dtype(torch.device(ctx.device), t.precision))
    if precision != "fp32":
        fp32 = config.model_copy(update={"training": t.model_copy(update={"precision": "fp32"})})
        sides["pipeline_fp32"] = lambda: pipeline(fp32)
    # one uncounted call per side first, so that the process's one-off costs do not land on
    # whichever side runs first (the sides do equal work; the target is within 5 %)
    runs = alternate(sides, s.rounds, warmup=True)
    common = {
        "warmup": "one uncounted call per side",
        "precision": precision,
        "dataset": "banking77",
        "examples": len(train),
        "batch_size": t.batch_size,
        "max_length": config.model.max_length,
    }
    rate_pair(
        ctx,
        "training_throughput",
        runs["pipeline"],
        runs["bare"],
        "bare torch+peft loop",
        "samples/s",
        variant="pipeline defaults"
        + (" (training.fast_dropout)" if t.fast_dropout and ctx.device == "cpu" else ""),
        **common,
    )
    if f"pipeline_{other}" in runs:
        rate_pair(
            ctx,
            f"training_throughput_{other}",
            runs[f"pipeline_{other}"],
            runs["bare"],
            "bare torch+peft loop",
            "samples/s",
            variant=f"pipeline with training.fast_dropout={str(not t.fast_dropout).lower()}",
            **common,
        )
    if "pipeline_fp32" in runs:
        rate_pair(
            ctx,
            "training_mixed_precision",
            runs["pipeline"],
            runs["pipeline_fp32"],
            "pipeline with training.precision=fp32",
            "samples/s",
            variant=f"pipeline defaults ({precision} autocast)",
            **common,
        )
