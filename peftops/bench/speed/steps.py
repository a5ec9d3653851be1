"""The pipeline's model, optimiser and training step, built as `train_classifier` builds
them, for the benchmarks that time steps rather than whole runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from peftops.bench.speed.harness import Measure

# `bench_config` overrides that make the LoRA default into full fine-tuning (every parameter)
FULL_FINETUNE: dict[str, dict[str, Any]] = {
    "method": {"name": "full"},
    "selection": {"strategy": "all"},
}


def bench_config(
    labels: list[str], max_length: int, batch_size: int, threads: int, model: str, **extra: Any
):
    from components.config import build_config

    data = {
        "domain": "custom",
        "data": {"labels": labels},
        "model": {
            "base_model": model,
            "max_length": max_length,
            "head_init": "random",
        },
        "method": {"name": "lora", "r": 8},
        "selection": {"strategy": "attention"},
        "training": {"epochs": 1, "batch_size": batch_size, "num_threads": threads},
        "evaluation": {"batch_size": 128},
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return build_config(data)


def subset(split, n: int):
    from components.examples import TextSplit

    return TextSplit(split.texts[:n], split.label_ids[:n])


def training_model(config, num_labels: int):
    """The pipeline's model and optimiser, exactly as train_classifier builds them."""
    import torch

    from components.modeling import build_classifier
    from components.selection import apply_selection, select_parameters
    from components.training import place_for_training

    model, tokenizer, _ = build_classifier(config.model.base_model, num_labels, "mean")
    selection = select_parameters(model.backbone, config.selection, config.method)
    model = apply_selection(model, selection, config.method)
    place_for_training(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.training.learning_rate)
    return model, tokenizer, optimizer


def train_steps(model, optimizer, batches: Iterator[dict], precision: str = "auto") -> Measure:
    """The pipeline's training step over `batches` (`precision`: `training.precision`);
    (samples, wall s, CPU s). With fp16 (GPUs without bf16) the loss is scaled, as in
    `train_classifier`; the scaler starts afresh on each call."""
    import torch
    from torch import nn

    from components.training import autocast_for, grad_scaler, optimizer_step

    device = next(model.parameters()).device
    scaler = grad_scaler(device, precision)
    model.train()
    samples = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        with autocast_for(device, precision):
            logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        loss = nn.functional.cross_entropy(logits.float(), batch["labels"].to(device))
        scaler.scale(loss).backward()
        optimizer_step(scaler, optimizer)
        optimizer.zero_grad(set_to_none=True)
        samples += len(batch["index"])
        loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return samples, time.perf_counter() - started, time.process_time() - cpu_started
