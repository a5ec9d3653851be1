"""Metrics, the confusion-matrix image, and the side-by-side comparison table."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict:
    """Accuracy, macro-F1, Cohen's kappa and per-class precision/recall/F1/support (all label
    ids counted). Kappa is agreement beyond what the two label distributions give by chance:
    0 for a model that always gives one answer, about 0 for one that guesses from the class
    prior without reading the input, however their accuracy reads; an unknown prediction (id -1) is
    its own category, a disagreement."""
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(labels)
    }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "kappa": _kappa(y_true, y_pred, ids),
        "per_class": per_class,
    }


def _kappa(y_true: Sequence[int], y_pred: Sequence[int], ids: list[int]) -> float:
    if not len(y_true):
        return 0.0
    # One label in all (chance agreement 1) leaves kappa undefined: no skill shown, 0. By hand
    # rather than `replace_undefined_by`, which needs scikit-learn >= 1.9.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # older versions divide 0 by 0
        kappa = float(cohen_kappa_score(y_true, y_pred, labels=[*ids, -1]))
    return 0.0 if math.isnan(kappa) else kappa


def min_recall(metrics: dict) -> float:
    """Lowest recall over classes that occur in the evaluated split."""
    recalls = [c["recall"] for c in metrics["per_class"].values() if c["support"] > 0]
    return min(recalls) if recalls else 0.0


def save_confusion_matrix(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str], path: Path, title: str
) -> Path:
    """A labelled confusion-matrix PNG (rows: true label, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    size = max(5.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = matrix.max() if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > peak / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


CLASSIFIER_COLUMNS = ("accuracy", "macro_f1", "min_recall")


def comparison_rows(
    candidates: dict[str, dict | None], columns: Sequence[str] = CLASSIFIER_COLUMNS
) -> list[dict]:
    """One row per scored model (name → metrics, or None when there is nothing to compare);
    a column a model has no value for is empty."""
    rows = []
    for name, metrics in candidates.items():
        if metrics is None:
            continue
        if "per_class" in metrics and "min_recall" not in metrics:
            metrics = {**metrics, "min_recall": min_recall(metrics)}
        row = {"model": name}
        for column in columns:
            value = metrics.get(column)
            row[column] = round(value, 4) if isinstance(value, int | float) else ""
        rows.append(row)
    return rows


def paired_bootstrap(
    metric: Callable[[list, list], float],
    predictions_a: Sequence,
    predictions_b: Sequence,
    references: Sequence,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile interval of metric(a) - metric(b) over test examples resampled with
    replacement, the same examples for both models (paired), by scipy's bootstrap."""
    from scipy.stats import bootstrap

    a, b, ref = list(predictions_a), list(predictions_b), list(references)

    def difference(index: np.ndarray) -> float:
        idx = index.astype(int)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return metric(pick(a), pick(ref)) - metric(pick(b), pick(ref))

    result = bootstrap(
        (np.arange(len(ref)),),
        difference,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return {
        "mean_diff": float(metric(a, ref) - metric(b, ref)),
        "low": float(result.confidence_interval.low),
        "high": float(result.confidence_interval.high),
    }


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def ids_from_names(predicted: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Map predicted label names to ids; names outside `labels` become -1 (always wrong)."""
    index = {name: i for i, name in enumerate(labels)}
    return [index.get(str(p), -1) for p in predicted]
