"""How much each module matters: |grad ⊙ weight| and the empirical Fisher grad², both from
the same backward passes on calibration batches."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from components.selection.loss import LossFn, classification_loss
from components.selection.types import ModuleInfo, Scores

MEASURES = ("grad_x_weight", "fisher")


def importance_table(
    model: nn.Module,
    modules: list[ModuleInfo],
    batches: Iterable[dict[str, torch.Tensor]],
    prefix: str = "backbone.",
    *,
    loss_fn: LossFn = classification_loss,
) -> dict[str, Scores]:
    """Both measures from the same backward passes: measure → module → score.

    `grad_x_weight` is Σ|grad ⊙ weight| (first-order Taylor), `fisher` is Σ grad² (empirical
    Fisher); each summed over the module's weight and averaged over batches.
    `loss_fn(model, batch)` is the loss differentiated (default: classification).
    """
    lookup = dict(model.named_modules())
    weights = {m.name: lookup[prefix + m.name].weight for m in modules}
    saved = {n: p.requires_grad for n, p in model.named_parameters()}
    for w in weights.values():
        w.requires_grad_(True)
    totals = {k: dict.fromkeys(weights, 0.0) for k in MEASURES}
    count = 0
    model.train()
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        for name, w in weights.items():
            if w.grad is None:
                continue
            g = w.grad.detach()
            totals["grad_x_weight"][name] += float((g * w.detach()).abs().sum())
            totals["fisher"][name] += float((g**2).sum())
        count += 1
    model.zero_grad(set_to_none=True)
    for n, p in model.named_parameters():
        p.requires_grad_(saved[n])
    return {k: {n: v / max(count, 1) for n, v in t.items()} for k, t in totals.items()}


def importance_scores(
    model: nn.Module,
    modules: list[ModuleInfo],
    batches: Iterable[dict[str, torch.Tensor]],
    measure: str = "grad_x_weight",
    prefix: str = "backbone.",
    *,
    loss_fn: LossFn = classification_loss,
) -> dict[str, float]:
    """One measure of `importance_table`: |grad ⊙ weight| (Taylor) or grad² (Fisher)."""
    return importance_table(model, modules, batches, prefix, loss_fn=loss_fn)[measure]
