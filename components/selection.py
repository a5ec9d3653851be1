"""Which parameters to train: module discovery, the simple strategies and `auto`.

Works on module names of BERT-style encoders (`encoder.layer.3.attention.self.query`),
Llama-style decoders (`layers.3.self_attn.q_proj`) and GPT-2 (`h.3.attn.c_attn`).

A `Selection` is plain data (names, counts, a score table) so it can cross task boundaries,
be logged, and be applied to a freshly loaded model by `apply_selection`.

`auto` scores every linear module on calibration batches by two measures at once
(|grad ⊙ weight| and the empirical Fisher grad²), picks the best modules per added parameter
under a budget, gives LoRA-family methods a per-module rank from the scores (peft
`rank_pattern`), and — with `selection.proxy_steps` — trains a few candidate selections briefly
and keeps the one with the lowest validation loss.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.batching import encode, iter_batches
from components.config import (
    ADAPTER_METHODS,
    IMPLIED_STRATEGY,
    PROMPT_METHODS,
    RANKED_METHODS,
    MethodConfig,
    PipelineConfig,
    SelectionConfig,
)
from components.dropout import use_fast_dropout
from components.examples import TextSplit
from components.methods import check_method, step_hook, wrap_backbone
from components.modeling import build_classifier

_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")
_ATTENTION = re.compile(r"attn|attention")
_FEED_FORWARD = re.compile(r"intermediate|mlp|ffn|fc\d|(?<!attention\.)output\.dense|w[123]$")
_SKIP = re.compile(r"pooler|lm_head|embed")
MEASURES = ("grad_x_weight", "fisher")
# Methods whose adapter size grows with a rank (recorded in the table's `rank` column).
_RANK_METHODS = (*RANKED_METHODS, "adalora", "loha", "lokr", "vera")

Scores = dict[str, float]
Importance = Callable[[list["ModuleInfo"]], Scores | dict[str, Scores]]
Proxy = Callable[["Selection"], float]


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
    layer_table: list[dict] = field(default_factory=list)
    rank_pattern: dict[str, int] = field(default_factory=dict)
    candidates: list[dict] = field(default_factory=list)
    importance: str | None = None
    budget_params: int | None = None

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


def resolve_budget(cfg: SelectionConfig, base_parameters: int) -> int:
    """`auto`'s budget in parameters: `budget_params` if set, else `budget` × base size."""
    return int(cfg.budget_params) if cfg.budget_params else int(cfg.budget * base_parameters)


def _measure_table(result: Scores | dict[str, Scores], measure: str) -> dict[str, Scores]:
    """Accept one measure's scores or a measure → scores table."""
    if result and all(isinstance(v, Mapping) for v in result.values()):
        return {k: dict(v) for k, v in result.items()}
    return {measure: dict(result)}


def select_parameters(
    backbone: nn.Module,
    selection: SelectionConfig,
    method: MethodConfig,
    importance: Importance | None = None,
    *,
    max_length: int | None = None,
    proxy: Proxy | None = None,
) -> Selection:
    """Apply a strategy to a backbone and check the method can train it (`MethodError`).

    `auto` needs `importance` (module name → score, or measure → module → score); `proxy`
    (a selection → validation loss) makes `auto` compare candidate selections.
    """
    implied = IMPLIED_STRATEGY.get(method.name)
    if implied is not None:
        selection = selection.model_copy(update={"strategy": implied})
    strategy = selection.strategy
    check_method(backbone, method, strategy, max_length)
    modules = discover_modules(backbone)
    measures: dict[str, Scores] = {}
    ranks: dict[str, int] = {}
    candidates: list[dict] = []
    budget = None
    if method.name in PROMPT_METHODS or strategy in ("bias_only", "head_only"):
        chosen: list[ModuleInfo] = []
    elif strategy == "auto":
        if importance is None:
            raise SelectionError("strategy 'auto' needs importance scores (calibration batches)")
        measures = _measure_table(importance(modules), selection.importance)
        budget = resolve_budget(selection, base_size(backbone))
        options = _auto_candidates(modules, measures, selection, method, budget)
        chosen, ranks = options[0][1], options[0][2]
        if proxy is not None:
            losses = []
            for name, picked, picked_ranks in options[: selection.proxy_candidates]:
                trial = _assemble(
                    backbone, modules, strategy, method, picked, picked_ranks, selection
                )
                losses.append(proxy(trial))
                candidates.append(
                    {
                        "name": name,
                        "modules": len(trial.target_modules),
                        "estimated_trainable": trial.estimated_trainable,
                        "val_loss": losses[-1],
                        "chosen": False,
                    }
                )
            best = min(range(len(losses)), key=losses.__getitem__)
            candidates[best]["chosen"] = True
            chosen, ranks = options[best][1], options[best][2]
    else:
        chosen = _pick(strategy, modules, selection)
        if not chosen:
            asked = f"selection.strategy={strategy!r}"
            if strategy == "modules":
                asked += f" selection.modules={selection.modules}"
            raise SelectionError(
                f"{asked} matched no module; linear modules are e.g. "
                f"{[m.name for m in modules[:4]]}"
            )
    result = _assemble(backbone, modules, strategy, method, chosen, ranks, selection, measures)
    result.candidates = candidates
    result.importance = selection.importance if measures else None
    result.budget_params = budget
    return result


def _assemble(
    backbone: nn.Module,
    modules: list[ModuleInfo],
    strategy: str,
    method: MethodConfig,
    chosen: list[ModuleInfo],
    ranks: dict[str, int],
    cfg: SelectionConfig,
    measures: dict[str, Scores] | None = None,
) -> Selection:
    """A `Selection` with its estimate, module table and per-layer table."""
    measures = measures or {}
    chosen_names = {m.name for m in chosen}
    if method.name in ADAPTER_METHODS:
        params: list[str] = []
        estimate = sum(adapter_cost(m, method, ranks.get(m.name)) for m in chosen)
        if method.name in PROMPT_METHODS:
            estimate = prompt_cost(backbone, method)
    else:
        params = _param_names_for(backbone, strategy, chosen_names, cfg)
        lookup = dict(backbone.named_parameters())
        estimate = sum(lookup[n].numel() for n in params)
    primary = measures.get(cfg.importance, {})
    table = []
    for m in modules:
        picked = m.name in chosen_names
        rank = ranks.get(m.name, method.r) if picked and method.name in _RANK_METHODS else None
        table.append(
            {
                "module": m.name,
                "layer": m.layer,
                "kind": m.kind,
                "params": m.params,
                "adapter_params": adapter_cost(m, method, rank),
                "score": primary.get(m.name),
                **{k: measures.get(k, {}).get(m.name) for k in MEASURES},
                "rank": rank,
                "chosen": picked,
            }
        )
    return Selection(
        strategy=strategy,
        method=method.name,
        target_modules=[m.name for m in chosen],
        trainable_parameters=params,
        table=table,
        base_parameters=base_size(backbone),
        estimated_trainable=estimate,
        layer_table=_layer_table(backbone, table, params, method),
        rank_pattern=dict(ranks),
    )


def base_size(backbone: nn.Module) -> int:
    """Parameters of the base model (the denominator of budgets and fractions)."""
    return sum(p.numel() for p in backbone.parameters())


def _layer_table(
    backbone: nn.Module, table: list[dict], params: list[str], method: MethodConfig
) -> list[dict]:
    """Per layer: modules, chosen, size, trained parameters and summed scores."""
    rows: dict[int | None, dict] = {}
    for row in table:
        entry = rows.setdefault(
            row["layer"],
            {"layer": row["layer"], "modules": 0, "chosen": 0, "params": 0, "trainable": 0}
            | dict.fromkeys(MEASURES),
        )
        entry["modules"] += 1
        entry["params"] += row["params"]
        entry["chosen"] += int(row["chosen"])
        if row["chosen"] and method.name in ADAPTER_METHODS:
            entry["trainable"] += row["adapter_params"]
        for k in MEASURES:
            if row[k] is not None:
                entry[k] = (entry[k] or 0.0) + row[k]
    if method.name not in ADAPTER_METHODS:
        lookup = dict(backbone.named_parameters())
        for n in params:
            m = _LAYER.search(n)
            layer = int(m.group(1)) if m else None
            entry = rows.setdefault(
                layer,
                {"layer": layer, "modules": 0, "chosen": 0, "params": 0, "trainable": 0}
                | dict.fromkeys(MEASURES),
            )
            entry["trainable"] += lookup[n].numel()
    return sorted(rows.values(), key=lambda r: (r["layer"] is None, r["layer"] or 0))


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


def allocate_ranks(
    modules: list[ModuleInfo],
    scores: dict[str, float],
    method: MethodConfig,
    budget: int,
    max_factor: int = 4,
) -> dict[str, int]:
    """Per-module LoRA ranks that grow with the score, costing at most `budget` parameters.

    Ranks are ⌊λ·score⌋ clipped to [1, min(max_factor·r, in, out)] with the largest λ that
    fits, then the leftover budget goes +1 at a time to the best score per rank.
    """
    if not modules:
        return {}

    def unit(m: ModuleInfo) -> int:  # parameters per unit of rank
        return m.in_features + m.out_features

    fixed = sum(adapter_cost(m, method, 1) - unit(m) for m in modules)  # DoRA's magnitudes
    room = budget - fixed
    cap = {
        m.name: max(1, min(max_factor * method.r, m.in_features, m.out_features)) for m in modules
    }
    score = {m.name: max(float(scores.get(m.name) or 0.0), 0.0) for m in modules}

    def ranks_at(lam: float) -> dict[str, int]:
        return {m.name: min(cap[m.name], max(1, int(lam * score[m.name]))) for m in modules}

    def cost(ranks: dict[str, int]) -> int:
        return sum(ranks[m.name] * unit(m) for m in modules)

    # the smallest λ at which every scored module reaches its cap bounds the search
    ceilings = [(cap[m.name] + 1) / score[m.name] for m in modules if score[m.name] > 0]
    lo, hi = 0.0, max(ceilings, default=0.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost(ranks_at(mid)) <= room else (lo, mid)
    ranks = ranks_at(lo)
    spent = cost(ranks)
    while True:
        options = [
            m
            for m in modules
            if ranks[m.name] < cap[m.name] and spent + unit(m) <= room and score[m.name] > 0
        ]
        if not options:
            break
        best = max(options, key=lambda m: score[m.name] / (ranks[m.name] + 1))
        ranks[best.name] += 1
        spent += unit(best)
    return ranks


def _auto_candidates(
    modules: list[ModuleInfo],
    measures: dict[str, Scores],
    cfg: SelectionConfig,
    method: MethodConfig,
    budget: int,
) -> list[tuple[str, list[ModuleInfo], dict[str, int]]]:
    """Distinct candidate selections, the configured one first: the configured measure (with
    allocated ranks where that applies), the other measure, attention modules only, and the
    configured measure at a uniform rank."""
    primary = measures.get(cfg.importance) or next(iter(measures.values()))

    def ranked(chosen: list[ModuleInfo]) -> dict[str, int]:
        if not (cfg.allocate_ranks and method.name in RANKED_METHODS):
            return {}
        uniform = sum(adapter_cost(m, method) for m in chosen)
        return allocate_ranks(chosen, primary, method, max(budget, uniform))

    top = choose_under_budget(modules, primary, method, budget)
    options = [(cfg.importance + ("+ranks" if ranked(top) else ""), top, ranked(top))]
    for name in MEASURES:
        if name != cfg.importance and name in measures:
            options.append((name, choose_under_budget(modules, measures[name], method, budget), {}))
    attention = [m for m in modules if m.kind == "attention"]
    if attention:
        options.append(("attention", choose_under_budget(attention, primary, method, budget), {}))
    options.append((cfg.importance, top, {}))
    distinct, seen = [], set()
    for name, chosen, ranks in options:
        key = (tuple(m.name for m in chosen), tuple(sorted(ranks.items())))
        if key not in seen:
            seen.add(key)
            distinct.append((name, chosen, ranks))
    return distinct


def importance_table(
    model: nn.Module,
    modules: list[ModuleInfo],
    batches: Iterable[dict[str, torch.Tensor]],
    prefix: str = "backbone.",
) -> dict[str, Scores]:
    """Both measures from the same backward passes: measure → module → score.

    `grad_x_weight` is Σ|grad ⊙ weight| (first-order Taylor), `fisher` is Σ grad² (empirical
    Fisher); each summed over the module's weight and averaged over batches.
    `model(input_ids, attention_mask)` must return logits; batches carry `labels`.
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
        logits = model(batch["input_ids"], batch["attention_mask"])
        nn.functional.cross_entropy(logits, batch["labels"]).backward()
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
) -> dict[str, float]:
    """One measure of `importance_table`: |grad ⊙ weight| (Taylor) or grad² (Fisher)."""
    return importance_table(model, modules, batches, prefix)[measure]


def apply_selection(
    model: nn.Module, selection: Selection, method: MethodConfig, total_steps: int | None = None
) -> nn.Module:
    """Freeze everything, then make the selection trainable: wrap the backbone in a peft
    adapter (adapter methods) or unfreeze the chosen tensors (`full`). The head stays trainable.
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
    for p in model.head.parameters():
        p.requires_grad_(True)
    return model


def proxy_validation_loss(
    base: nn.Module,
    candidate: Selection,
    config: PipelineConfig,
    train_batches: list[dict[str, torch.Tensor]],
    val_batches: list[dict[str, torch.Tensor]],
) -> float:
    """Train a copy of `base` on `candidate` for one step per train batch; validation loss."""
    model = copy.deepcopy(base)
    torch.manual_seed(config.training.seed)
    model = apply_selection(model, candidate, config.method, total_steps=len(train_batches))
    if config.training.fast_dropout:  # as training will (this runs on CPU)
        use_fast_dropout(model)
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    groups = [{"params": list(model.head.parameters()), "lr": config.training.head_learning_rate}]
    if body:
        groups.append({"params": body, "lr": config.training.learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.training.weight_decay)
    hook = step_hook(model.backbone)
    model.train()
    for step, batch in enumerate(train_batches):
        logits = model(batch["input_ids"], batch["attention_mask"])
        nn.functional.cross_entropy(logits, batch["labels"]).backward()
        optimizer.step()
        if hook is not None:
            hook(step)
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in val_batches:
            logits = model(batch["input_ids"], batch["attention_mask"])
            n = len(batch["labels"])
            total += float(nn.functional.cross_entropy(logits, batch["labels"])) * n
            count += n
    return total / max(count, 1)


def _batches(data: Any, size: int, pad_id: int, seed: int, count: int) -> list[dict]:
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


def run_selection(
    config: PipelineConfig,
    train: TextSplit,
    num_labels: int,
    head: Any = None,
    validation: TextSplit | None = None,
) -> Selection:
    """Load the base model and select; `auto` scores modules on calibration batches of the
    training split with the head initialised from `head` (the probe), as training will, and
    with `selection.proxy_steps` compares candidates by loss on `validation` after short runs."""
    model, tokenizer, _ = build_classifier(
        config.model.base_model, num_labels, config.model.pooling, head
    )
    sel = config.selection
    importance, proxy = None, None
    if sel.strategy == "auto" and config.method.name not in PROMPT_METHODS:
        data = encode(tokenizer, train.texts, config.model.max_length, train.label_ids)
        pad, size, seed = tokenizer.pad_token_id, config.training.batch_size, config.training.seed
        batches = list(iter_batches(data, size, pad, shuffle=True, seed=seed))
        batches = batches[: sel.calibration_batches]

        def importance(modules: list[ModuleInfo]) -> dict[str, Scores]:
            return importance_table(model, modules, batches)

        if sel.proxy_steps:
            if validation is None or not len(validation.texts):
                raise SelectionError("selection.proxy_steps needs a validation split")
            steps = _batches(data, size, pad, seed + 1, sel.proxy_steps)
            val = encode(tokenizer, validation.texts, config.model.max_length, validation.label_ids)
            val_batches = list(iter_batches(val, config.evaluation.batch_size, pad))

            def proxy(candidate: Selection) -> float:
                return proxy_validation_loss(model, candidate, config, steps, val_batches)

    return select_parameters(
        model.backbone,
        sel,
        config.method,
        importance,
        max_length=config.model.max_length,
        proxy=proxy,
    )


# --------------------------------------------------------------------------- evidence


def _short(name: str) -> str:
    return re.sub(r"^(?:.*?\.)?(?:layer|layers|h|block|blocks)\.", "", name)


def save_selection_plot(selection: Selection, path: Path | str) -> Path:
    """A PNG of each module's scores (one panel per measure; trained sizes when there are no
    scores), chosen modules highlighted and their ranks written above the bars."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = selection.table
    panels = [k for k in MEASURES if any(r.get(k) is not None for r in rows)]
    labels = {
        "grad_x_weight": "|grad × weight|",
        "fisher": "Fisher (grad²)",
        "adapter_params": "trained parameters",
    }
    panels = panels or ["adapter_params"]
    fig = Figure(figsize=(min(40, 3 + 0.22 * len(rows)), 1.2 + 2.4 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    colours = ["tab:orange" if r["chosen"] else "tab:gray" for r in rows]
    x = list(range(len(rows)))
    for ax, key in zip(axes, panels, strict=True):
        values = [float(r.get(key) or 0.0) for r in rows]
        ax.bar(x, values, color=colours)
        positive = [v for v in values if v > 0]
        if positive and max(positive) > 1000 * min(positive):  # scores span decades
            ax.set_yscale("log")
        used = " (chooses)" if key == selection.importance else ""
        ax.set_ylabel(labels[key] + used, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    top = axes[0]
    heights = [float(r.get(panels[0]) or 0.0) for r in rows]
    for i, row in enumerate(rows):
        if row["chosen"] and row.get("rank"):
            top.annotate(str(row["rank"]), (i, heights[i]), ha="center", va="bottom", fontsize=6)
    axes[-1].set_xticks(x, [_short(r["module"]) for r in rows], rotation=90, fontsize=6)
    top.legend(
        handles=[Patch(color="tab:orange", label="chosen"), Patch(color="tab:gray", label="not")],
        fontsize=7,
        loc="upper right",
    )
    fig.suptitle(selection.summary(), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path


def selection_tags(selection: Selection) -> dict[str, str]:
    """Short string tags describing a selection (for a registered model version)."""
    tags = {
        "selection.strategy": selection.strategy,
        "selection.method": selection.method,
        "selection.modules": str(len(selection.target_modules)),
        "selection.estimated_trainable": str(selection.estimated_trainable),
        "selection.estimated_percent": f"{100 * selection.estimated_fraction:.4f}",
    }
    if selection.importance:
        tags["selection.importance"] = selection.importance
    if selection.budget_params is not None:
        tags["selection.budget_params"] = str(selection.budget_params)
    if selection.rank_pattern:
        ranks = selection.rank_pattern.values()
        tags["selection.ranks"] = f"{min(ranks)}-{max(ranks)}"
    winner = next((c for c in selection.candidates if c["chosen"]), None)
    if winner is not None:
        tags["selection.proxy_winner"] = winner["name"]
        tags["selection.proxy_val_loss"] = f"{winner['val_loss']:.4f}"
        tags["selection.proxy_candidates"] = str(len(selection.candidates))
    return tags
