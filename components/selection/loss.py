"""The objective selection scores and compares candidates by: a model and a batch → a scalar
loss. Classification is the default; another task type passes its own `loss_fn`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]


def classification_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of `model(input_ids, attention_mask)`'s logits against `labels`."""
    logits = model(batch["input_ids"], batch["attention_mask"])
    return nn.functional.cross_entropy(logits, batch["labels"])
