"""A selection's evidence: the score plot and the tags of a registered model version."""

from __future__ import annotations

import re
from pathlib import Path

from components.selection.importance import MEASURES
from components.selection.types import Selection


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
