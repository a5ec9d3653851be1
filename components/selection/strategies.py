"""The strategies: from a backbone, a `SelectionConfig` and a method to a `Selection` with its
size estimate, module table and per-layer table."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from torch import nn

from components.config import (
    ADAPTER_METHODS,
    IMPLIED_STRATEGY,
    PROMPT_METHODS,
    RANKED_METHODS,
    MethodConfig,
    SelectionConfig,
)
from components.methods import check_method
from components.selection.auto import auto_candidates
from components.selection.cost import adapter_cost, prompt_cost, resolve_budget
from components.selection.discovery import base_size, discover_modules, layer_of, top_layers
from components.selection.importance import MEASURES
from components.selection.types import (
    Importance,
    ModuleInfo,
    Proxy,
    Scores,
    Selection,
    SelectionError,
)

# Methods whose adapter size grows with a rank (recorded in the table's `rank` column).
_RANK_METHODS = (*RANKED_METHODS, "adalora", "loha", "lokr", "vera")


def _pick(strategy: str, modules: list[ModuleInfo], cfg: SelectionConfig) -> list[ModuleInfo]:
    if strategy == "attention":
        return [m for m in modules if m.kind == "attention"]
    if strategy == "mlp":
        return [m for m in modules if m.kind == "feed_forward"]
    if strategy in ("all_linear", "all"):
        return list(modules)
    if strategy == "top_n_layers":
        top = top_layers(modules, cfg.top_n_layers)
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
        top = top_layers(discover_modules(backbone), cfg.top_n_layers)
        return [n for n in names if layer_of(n) in top]
    prefixes = tuple(f"{c}." for c in chosen)
    return [n for n in names if n.startswith(prefixes)]


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
        options = auto_candidates(modules, measures, selection, method, budget)
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
            layer = layer_of(n)
            entry = rows.setdefault(
                layer,
                {"layer": layer, "modules": 0, "chosen": 0, "params": 0, "trainable": 0}
                | dict.fromkeys(MEASURES),
            )
            entry["trainable"] += lookup[n].numel()
    return sorted(rows.values(), key=lambda r: (r["layer"] is None, r["layer"] or 0))
