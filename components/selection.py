"""Which parameters to train: module discovery, the simple strategies and `auto`.

Works on module names of BERT-style encoders (`encoder.layer.3.attention.self.query`),
Llama-style decoders (`layers.3.self_attn.q_proj`) and GPT-2 (`h.3.attn.c_attn`).

A `Selection` is plain data (names, counts, a score table) so it can cross task boundaries,
be logged, and be applied to a freshly loaded model by `apply_selection`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from components.batching import encode, iter_batches
from components.config import ADAPTER_METHODS, MethodConfig, PipelineConfig, SelectionConfig
from components.examples import TextSplit
from components.modeling import build_classifier

_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")
_ATTENTION = re.compile(r"attn|attention")
_FEED_FORWARD = re.compile(r"intermediate|mlp|ffn|fc\d|(?<!attention\.)output\.dense|w[123]$")
_SKIP = re.compile(r"pooler|lm_head|embed")


class SelectionError(ValueError):
    """A selection that cannot be made (e.g. no module matches); says which and why."""


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    layer: int | None
    kind: str  # "attention" | "feed_forward" | "other"
    in_features: int
    out_features: int
    params: int


@dataclass
class Selection:
    """The outcome of selection: what to train and the evidence for it."""

    strategy: str
    method: str
    target_modules: list[str]
    trainable_parameters: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    base_parameters: int = 0
    estimated_trainable: int = 0

    @property
    def estimated_fraction(self) -> float:
        return self.estimated_trainable / max(self.base_parameters, 1)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.strategy}/{self.method}: {len(self.target_modules)} modules, "
            f"~{self.estimated_trainable:,} trainable "
            f"({100 * self.estimated_fraction:.3f}% of base)"
        )


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
        m = _LAYER.search(name)
        kind = (
            "attention"
            if _ATTENTION.search(name)
            else "feed_forward"
            if _FEED_FORWARD.search(name)
            else "other"
        )
        params = sum(p.numel() for p in module.parameters(recurse=False))
        found.append(
            ModuleInfo(name, int(m.group(1)) if m else None, kind, feats[0], feats[1], params)
        )
    if not found:
        raise SelectionError(f"no linear modules found in {type(backbone).__name__}")
    return found


def adapter_cost(info: ModuleInfo, method: MethodConfig) -> int:
    """Parameters an adapter on this module adds."""
    if method.name == "ia3":
        return info.in_features if info.kind == "feed_forward" else info.out_features
    if method.name in ("lora", "dora"):
        extra = info.out_features if method.name == "dora" else 0
        return method.r * (info.in_features + info.out_features) + extra
    return info.params


def _top_layers(modules: list[ModuleInfo], n: int) -> set[int]:
    layers = sorted({m.layer for m in modules if m.layer is not None})
    return set(layers[-n:])


def _pick(strategy: str, modules: list[ModuleInfo], cfg: SelectionConfig) -> list[ModuleInfo]:
    if strategy == "attention":
        return [m for m in modules if m.kind == "attention"]
    if strategy in ("all_linear", "all"):
        return list(modules)
    if strategy == "top_n_layers":
        top = _top_layers(modules, cfg.top_n_layers)
        return [m for m in modules if m.layer in top]
    if strategy == "modules":
        patterns = [re.compile(p) for p in cfg.modules]
        return [m for m in modules if any(p.search(m.name) for p in patterns)]
    return []


def _param_names_for(
    backbone: nn.Module, strategy: str, chosen: Iterable[str], cfg: SelectionConfig
) -> list[str]:
    """Parameter names a `full` method unfreezes (head excluded: it is always trained)."""
    names = [n for n, _ in backbone.named_parameters()]
    if strategy == "all":
        return names
    if strategy == "bias_only":
        return [n for n in names if n.endswith("bias")]
    if strategy == "head_only":
        return []
    if strategy == "top_n_layers":
        top = _top_layers(discover_modules(backbone), cfg.top_n_layers)
        return [n for n in names if (m := _LAYER.search(n)) and int(m.group(1)) in top]
    prefixes = tuple(f"{c}." for c in chosen)
    return [n for n in names if n.startswith(prefixes)]


def select_parameters(
    backbone: nn.Module,
    selection: SelectionConfig,
    method: MethodConfig,
    importance: Callable[[list[ModuleInfo]], dict[str, float]] | None = None,
) -> Selection:
    """Apply a strategy to a backbone; `auto` needs `importance` (module name → score)."""
    modules = discover_modules(backbone)
    base = sum(p.numel() for p in backbone.parameters())
    scores: dict[str, float] = {}
    if selection.strategy == "auto":
        if importance is None:
            raise SelectionError("strategy 'auto' needs importance scores (calibration batches)")
        scores = importance(modules)
        chosen = choose_under_budget(modules, scores, method, int(selection.budget * base))
    elif selection.strategy in ("bias_only", "head_only"):
        chosen = []
    else:
        chosen = _pick(selection.strategy, modules, selection)
        if not chosen:
            raise SelectionError(
                f"strategy {selection.strategy!r} matched no module; linear modules are e.g. "
                f"{[m.name for m in modules[:4]]}"
            )
    chosen_names = {m.name for m in chosen}
    if method.name in ADAPTER_METHODS:
        params: list[str] = []
        estimate = sum(adapter_cost(m, method) for m in chosen)
    else:
        params = _param_names_for(backbone, selection.strategy, chosen_names, selection)
        lookup = dict(backbone.named_parameters())
        estimate = sum(lookup[n].numel() for n in params)
    table = [
        {
            "module": m.name,
            "layer": m.layer,
            "kind": m.kind,
            "params": m.params,
            "adapter_params": adapter_cost(m, method),
            "score": scores.get(m.name),
            "chosen": m.name in chosen_names,
        }
        for m in modules
    ]
    return Selection(
        strategy=selection.strategy,
        method=method.name,
        target_modules=[m.name for m in chosen],
        trainable_parameters=params,
        table=table,
        base_parameters=base,
        estimated_trainable=estimate,
    )


def choose_under_budget(
    modules: list[ModuleInfo], scores: dict[str, float], method: MethodConfig, budget: int
) -> list[ModuleInfo]:
    """Greedy by importance per trained parameter until the budget is spent (at least one)."""
    ranked = sorted(
        modules,
        key=lambda m: scores.get(m.name, 0.0) / max(adapter_cost(m, method), 1),
        reverse=True,
    )
    chosen, spent = [], 0
    for m in ranked:
        cost = adapter_cost(m, method)
        if spent + cost <= budget or not chosen:
            chosen.append(m)
            spent += cost
    order = {m.name: i for i, m in enumerate(modules)}
    return sorted(chosen, key=lambda m: order[m.name])


def importance_scores(
    model: nn.Module,
    modules: list[ModuleInfo],
    batches: Iterable[dict[str, torch.Tensor]],
    measure: str = "grad_x_weight",
    prefix: str = "backbone.",
) -> dict[str, float]:
    """Score modules on calibration batches by |grad ⊙ weight| (Taylor) or grad² (Fisher).

    `model(input_ids, attention_mask)` must return logits; batches carry `labels`.
    Scores are summed over the module's weight and averaged over batches.
    """
    lookup = dict(model.named_modules())
    weights = {m.name: lookup[prefix + m.name].weight for m in modules}
    saved = {n: p.requires_grad for n, p in model.named_parameters()}
    for w in weights.values():
        w.requires_grad_(True)
    totals = dict.fromkeys(weights, 0.0)
    count = 0
    model.train()
    for batch in batches:
        model.zero_grad(set_to_none=True)
        logits = model(batch["input_ids"], batch["attention_mask"])
        nn.functional.cross_entropy(logits, batch["labels"]).backward()
        for name, w in weights.items():
            if w.grad is None:
                continue
            g = w.grad.detach()
            value = (g * w.detach()).abs().sum() if measure == "grad_x_weight" else (g**2).sum()
            totals[name] += float(value)
        count += 1
    model.zero_grad(set_to_none=True)
    for n, p in model.named_parameters():
        p.requires_grad_(saved[n])
    return {n: v / max(count, 1) for n, v in totals.items()}


def apply_selection(model: nn.Module, selection: Selection, method: MethodConfig) -> nn.Module:
    """Freeze everything, then make the selection trainable: wrap the backbone in a peft
    adapter (adapter methods) or unfreeze the chosen tensors (`full`). The head stays trainable.
    """
    backbone = model.backbone
    for p in backbone.parameters():
        p.requires_grad_(False)
    if method.name in ADAPTER_METHODS:
        model.backbone = _wrap_with_peft(backbone, selection, method)
    else:
        wanted = set(selection.trainable_parameters)
        for n, p in backbone.named_parameters():
            p.requires_grad_(n in wanted)
    for p in model.head.parameters():
        p.requires_grad_(True)
    return model


def _wrap_with_peft(backbone: nn.Module, selection: Selection, method: MethodConfig) -> nn.Module:
    from peft import get_peft_model

    from components.methods import peft_config

    return get_peft_model(backbone, peft_config(selection, method))


def run_selection(
    config: PipelineConfig, train: TextSplit, num_labels: int, head: Any = None
) -> Selection:
    """Load the base model and select; `auto` scores modules on calibration batches of the
    training split with the head initialised from `head` (the probe), as training will."""
    model, tokenizer, _ = build_classifier(
        config.model.base_model, num_labels, config.model.pooling, head
    )
    importance = None
    if config.selection.strategy == "auto":
        sel = config.selection
        data = encode(tokenizer, train.texts, config.model.max_length, train.label_ids)
        batches = list(
            iter_batches(
                data,
                config.training.batch_size,
                tokenizer.pad_token_id,
                shuffle=True,
                seed=config.training.seed,
            )
        )[: sel.calibration_batches]

        def importance(modules: list[ModuleInfo]) -> dict[str, float]:
            return importance_scores(model, modules, batches, sel.importance)

    return select_parameters(model.backbone, config.selection, config.method, importance)
