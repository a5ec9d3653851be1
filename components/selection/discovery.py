"""Module discovery: every linear-like module of a backbone, with its layer and kind.

Works on module names of BERT-style encoders (`encoder.layer.3.attention.self.query`),
Llama-style decoders (`layers.3.self_attn.q_proj`) and GPT-2 (`h.3.attn.c_attn`).
"""

from __future__ import annotations

import re

from torch import nn

from components.selection.types import ModuleInfo, SelectionError

_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")
_ATTENTION = re.compile(r"attn|attention")
_FEED_FORWARD = re.compile(r"intermediate|mlp|ffn|fc\d|(?<!attention\.)output\.dense|w[123]$")
_SKIP = re.compile(r"pooler|lm_head|embed")


def layer_of(name: str) -> int | None:
    """The block index in a module or parameter name, or None outside the blocks."""
    m = _LAYER.search(name)
    return int(m.group(1)) if m else None


def _features(module: nn.Module) -> tuple[int, int] | None:
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D":  # GPT-2's transposed linear
        w = module.weight
        return int(w.shape[0]), int(w.shape[1])
    return None


def discover_modules(backbone: nn.Module) -> list[ModuleInfo]:
    """Every linear-like module a method could target, in model order."""
    found = []
    for name, module in backbone.named_modules():
        feats = _features(module)
        if feats is None or _SKIP.search(name):
            continue
        kind = (
            "attention"
            if _ATTENTION.search(name)
            else "feed_forward"
            if _FEED_FORWARD.search(name)
            else "other"
        )
        params = sum(p.numel() for p in module.parameters(recurse=False))
        found.append(ModuleInfo(name, layer_of(name), kind, feats[0], feats[1], params))
    if not found:
        raise SelectionError(f"no linear modules found in {type(backbone).__name__}")
    return found


def top_layers(modules: list[ModuleInfo], n: int) -> set[int]:
    """The indices of the last `n` layers."""
    layers = sorted({m.layer for m in modules if m.layer is not None})
    return set(layers[-n:])


def base_size(backbone: nn.Module) -> int:
    """Parameters of the base model (the denominator of budgets and fractions)."""
    return sum(p.numel() for p in backbone.parameters())
