"""What a method trains: parameters per module, for prompt methods, and `auto`'s budget."""

from __future__ import annotations

from torch import nn

from components.config import PROMPT_METHODS, RANKED_METHODS, MethodConfig, SelectionConfig
from components.selection.types import ModuleInfo


def _lokr_cost(in_features: int, out_features: int, r: int) -> int:
    """LoKr's parameters on a linear layer, following peft's own factorisation."""
    from peft.tuners.lokr.layer import factorization

    in_m, in_n = factorization(in_features)
    out_l, out_k = factorization(out_features)
    w1 = out_l * in_m  # the small Kronecker factor is kept whole (decompose_both=False)
    w2 = out_k * in_n if r >= max(out_k, in_n) / 2 else r * (out_k + in_n)
    return w1 + w2


def adapter_cost(info: ModuleInfo, method: MethodConfig, rank: int | None = None) -> int:
    """Parameters a method trains on this module (`rank` overrides `method.r`); for methods
    that train tensors directly, the module's own parameters; 0 for prompt methods."""
    r = rank or method.r
    i, o = info.in_features, info.out_features
    name = method.name
    if name == "ia3":
        return i if info.kind == "feed_forward" else o
    if name in RANKED_METHODS:
        return r * (i + o) + (o if name == "dora" else 0)
    if name == "adalora":  # A, B and the singular values E at the initial rank
        return method.r * (i + o + 1)
    if name == "loha":  # two Hadamard-multiplied low-rank pairs
        return 2 * r * (i + o)
    if name == "lokr":
        return _lokr_cost(i, o, r)
    if name == "vera":  # the shared projections are frozen; two scaling vectors train
        return method.r + o
    if name in PROMPT_METHODS:
        return 0
    return info.params


def prompt_cost(backbone: nn.Module, method: MethodConfig) -> int:
    """Parameters of prompt tuning (one embedding per virtual token) or prefix tuning (keys
    and values per layer and virtual token)."""
    cfg = backbone.config
    hidden = int(cfg.hidden_size)
    if method.name == "prompt_tuning":
        return method.num_virtual_tokens * hidden
    heads = int(cfg.num_attention_heads)
    kv_dim = hidden * int(getattr(cfg, "num_key_value_heads", None) or heads) // heads
    return method.num_virtual_tokens * int(cfg.num_hidden_layers) * 2 * kv_dim


def resolve_budget(cfg: SelectionConfig, base_parameters: int) -> int:
    """`auto`'s budget in parameters: `budget_params` if set, else `budget` × base size."""
    return int(cfg.budget_params) if cfg.budget_params else int(cfg.budget * base_parameters)
