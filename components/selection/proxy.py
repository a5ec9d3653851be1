"""`auto`'s proxy: train a candidate selection for a few steps and measure validation loss."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from components.batching import iter_batches
from components.config import PipelineConfig
from components.dropout import use_fast_dropout
from components.methods import step_hook
from components.selection.apply import apply_selection
from components.selection.loss import LossFn, classification_loss
from components.selection.types import Selection


def proxy_validation_loss(
    base: nn.Module,
    candidate: Selection,
    config: PipelineConfig,
    train_batches: list[dict[str, torch.Tensor]],
    val_batches: list[dict[str, torch.Tensor]],
    *,
    loss_fn: LossFn = classification_loss,
) -> float:
    """Train a copy of `base` on `candidate` for one step per train batch; the validation
    loss (`loss_fn`, default classification) averaged over examples."""
    model = copy.deepcopy(base)
    torch.manual_seed(config.training.seed)
    model = apply_selection(model, candidate, config.method, total_steps=len(train_batches))
    if config.training.fast_dropout:  # as training will (this runs on CPU)
        use_fast_dropout(model)
    head = getattr(model, "head", None)
    head_params = list(head.parameters()) if head is not None else []
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    groups = []
    if head_params:
        groups.append({"params": head_params, "lr": config.training.head_learning_rate})
    if body:
        groups.append({"params": body, "lr": config.training.learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.training.weight_decay)
    hook = step_hook(model.backbone)
    model.train()
    for step, batch in enumerate(train_batches):
        loss_fn(model, batch).backward()
        optimizer.step()
        if hook is not None:
            hook(step)
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in val_batches:
            n = len(batch["input_ids"])
            total += float(loss_fn(model, batch)) * n
            count += n
    return total / max(count, 1)


def cycled_batches(data: Any, size: int, pad_id: int, seed: int, count: int) -> list[dict]:
    """`count` shuffled training batches, cycling through further epochs if needed."""
    out: list[dict] = []
    epoch = 0
    while len(out) < count:
        for batch in iter_batches(data, size, pad_id, shuffle=True, seed=seed + epoch):
            out.append(batch)
            if len(out) == count:
                break
        epoch += 1
    return out
