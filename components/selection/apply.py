"""Making a selection trainable on a freshly loaded model."""

from __future__ import annotations

from torch import nn

from components.config import ADAPTER_METHODS, MethodConfig
from components.methods import wrap_backbone
from components.selection.types import Selection


def apply_selection(
    model: nn.Module, selection: Selection, method: MethodConfig, total_steps: int | None = None
) -> nn.Module:
    """Freeze everything, then make the selection trainable: wrap the backbone in a peft
    adapter (adapter methods) or unfreeze the chosen tensors (`full`). A `head`, where the
    model has one, stays trainable.
    `total_steps` is the training length (AdaLoRA schedules its rank budget over it).
    """
    backbone = model.backbone
    for p in backbone.parameters():
        p.requires_grad_(False)
    if method.name in ADAPTER_METHODS:
        model.backbone = wrap_backbone(backbone, selection, method, total_steps)
    else:
        wanted = set(selection.trainable_parameters)
        for n, p in backbone.named_parameters():
            p.requires_grad_(n in wanted)
    head = getattr(model, "head", None)  # a causal LM wrapper may have none
    if head is not None:
        for p in head.parameters():
            p.requires_grad_(True)
    return model
