"""Per-module ranks for LoRA-family methods (peft `rank_pattern`), grown with the scores."""

from __future__ import annotations

from components.config import MethodConfig
from components.selection.cost import adapter_cost
from components.selection.types import ModuleInfo


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
