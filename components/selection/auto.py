"""`auto`'s candidate selections: the best modules per added parameter under a budget, by
each measure, with allocated ranks where the method has them."""

from __future__ import annotations

from components.config import RANKED_METHODS, MethodConfig, SelectionConfig
from components.selection.cost import adapter_cost
from components.selection.importance import MEASURES
from components.selection.ranks import allocate_ranks
from components.selection.types import ModuleInfo, Scores


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


def auto_candidates(
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
