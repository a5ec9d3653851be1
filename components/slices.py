"""Fairness slices: a classifier's test metrics per value of each group column.

A group column (`data.group_columns`, e.g. age band, sex, region) is never model input; it
only says which test examples belong together. Every value is a slice with its support,
accuracy, macro-F1 and per-class recall; slices with fewer than `min_support` examples are
shown but marked too small and not judged (their figures are noise). The gates
(`registry.max_slice_gap`, `registry.min_slice_metric`) compare the policy metric of each
judged slice with the overall figure and with a floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score, recall_score

TOO_SMALL = "too small"


@dataclass
class Slice:
    """One value of one group column on the test split."""

    column: str
    value: str
    support: int
    accuracy: float
    macro_f1: float
    per_class_recall: dict[str, float]  # classes that occur in the slice
    judged: bool  # support >= min_support

    @property
    def name(self) -> str:
        return f"{self.column}={self.value}"

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass
class SliceReport:
    """Every slice of every group column, with the overall figures they are compared to."""

    metric: str  # the policy metric the worst slice and gaps are taken on
    overall: dict[str, float]  # accuracy and macro_f1 on the whole test split
    min_support: int
    slices: list[Slice] = field(default_factory=list)

    def judged(self) -> list[Slice]:
        return [s for s in self.slices if s.judged]

    def gap(self, s: Slice) -> float:
        """How far the slice's policy metric is below the overall figure (negative: above)."""
        return self.overall[self.metric] - s.metric(self.metric)

    def worst(self) -> Slice | None:
        """The judged slice with the lowest policy metric (ties: the first, in table order)."""
        judged = self.judged()
        return min(judged, key=lambda s: s.metric(self.metric)) if judged else None

    def rows(self) -> list[dict]:
        """The slice table: one row per slice, figures rounded for display."""
        rows = []
        for s in self.slices:
            recalls = ", ".join(f"{k} {v:.2f}" for k, v in s.per_class_recall.items())
            rows.append(
                {
                    "column": s.column,
                    "value": s.value,
                    "support": s.support,
                    "accuracy": round(s.accuracy, 4),
                    "macro_f1": round(s.macro_f1, 4),
                    f"gap ({self.metric})": round(self.gap(s), 4),
                    "judged": "yes" if s.judged else TOO_SMALL,
                    "per-class recall": recalls,
                }
            )
        return rows

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: `slice.<column>.<value>.<figure>`, the worst slice and the
        largest gap (judged slices only)."""
        out: dict[str, float] = {}
        for s in self.slices:
            key = f"slice.{_key(s.column)}.{_key(s.value)}"
            out.update(
                {
                    f"{key}.support": float(s.support),
                    f"{key}.accuracy": s.accuracy,
                    f"{key}.macro_f1": s.macro_f1,
                }
            )
        worst = self.worst()
        if worst is not None:
            out[f"slice.worst.{self.metric}"] = worst.metric(self.metric)
            out[f"slice.max_gap.{self.metric}"] = max(self.gap(s) for s in self.judged())
        return out

    def summary_lines(self) -> list[str]:
        """Short lines for the end-of-run summary: the worst slice and the largest gap."""
        worst = self.worst()
        if worst is None:
            return [f"no slice has {self.min_support}+ test examples: none judged"]
        widest = max(self.judged(), key=self.gap)
        small = [s.name for s in self.slices if not s.judged]
        lines = [
            f"worst {worst.name} {self.metric} {worst.metric(self.metric):.4f} "
            f"(n={worst.support}; overall {self.overall[self.metric]:.4f})",
            f"largest gap {self.gap(widest):+.4f} at {widest.name}",
        ]
        if small:
            lines.append(f"{TOO_SMALL} (<{self.min_support}, not judged): {', '.join(small)}")
        return lines

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "overall": self.overall,
            "min_support": self.min_support,
            "slices": [asdict(s) for s in self.slices],
        }


def _key(text: str) -> str:
    """A name MLflow accepts in a metric key (alphanumerics, _ - . / and spaces)."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in text) or "_"


def _figures(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> tuple:
    # macro-F1 over the classes present in the slice (true or predicted): a class absent
    # from a slice would otherwise add a 0 and make every small slice look unfair
    present = sorted(set(y_true) | {p for p in y_pred if p >= 0})
    accuracy = float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0
    macro = float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    occurring = sorted(set(y_true))
    recalls = recall_score(y_true, y_pred, labels=occurring, average=None, zero_division=0)
    return accuracy, macro, {labels[i]: float(r) for i, r in zip(occurring, recalls, strict=True)}


def slice_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    labels: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    metric: str = "macro_f1",
    min_support: int = 20,
) -> SliceReport:
    """Metrics of every value of every group column (values sorted, "" shown as "(empty)").

    `y_pred` may hold -1 for a prediction outside the label set (always wrong)."""
    y_true, y_pred = list(y_true), list(y_pred)
    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"slices compare accuracy or macro_f1, not {metric!r}")
    accuracy, macro, _ = _figures(y_true, y_pred, labels)
    report = SliceReport(metric, {"accuracy": accuracy, "macro_f1": macro}, min_support)
    for column, values in groups.items():
        if len(values) != len(y_true):
            raise ValueError(
                f"group column {column!r} has {len(values)} values for {len(y_true)} examples"
            )
        for value in sorted(set(values)):
            idx = [i for i, v in enumerate(values) if v == value]
            t, p = [y_true[i] for i in idx], [y_pred[i] for i in idx]
            acc, f1, recalls = _figures(t, p, labels)
            report.slices.append(
                Slice(
                    column, value or "(empty)", len(idx), acc, f1, recalls, len(idx) >= min_support
                )
            )
    return report


def slice_gate(
    report: SliceReport, max_gap: float | None, min_metric: float | None
) -> list[tuple[bool, str]]:
    """(passed, reason) for each gate that is on; a failure names the slice that fails it."""
    results: list[tuple[bool, str]] = []
    if max_gap is None and min_metric is None:
        return results
    judged, m = report.judged(), report.metric
    if not judged:
        return [(True, f"slice gates: no slice has {report.min_support}+ test examples")]
    if max_gap is not None:
        widest = max(judged, key=report.gap)
        gap = report.gap(widest)
        passed = gap <= max_gap
        results.append(
            (
                passed,
                f"largest slice gap {gap:+.4f} ({widest.name}: {m} {widest.metric(m):.4f} vs "
                f"overall {report.overall[m]:.4f}) {'<=' if passed else '>'} max_slice_gap "
                f"{max_gap}",
            )
        )
    if min_metric is not None:
        worst = report.worst()
        assert worst is not None
        passed = worst.metric(m) >= min_metric
        failing = [s.name for s in judged if s.metric(m) < min_metric]
        results.append(
            (
                passed,
                f"worst slice {worst.name} {m} {worst.metric(m):.4f} "
                f"{'>=' if passed else '<'} min_slice_metric {min_metric}"
                + (f" (failing: {', '.join(failing)})" if not passed else ""),
            )
        )
    return results


def save_slice_plot(
    report: SliceReport,
    path: Path,
    title: str,
    max_gap: float | None = None,
    min_metric: float | None = None,
) -> Path:
    """Horizontal bars of the policy metric per slice, the overall figure and the gates' lines;
    too-small slices in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = report.metric
    names = [f"{s.name} (n={s.support})" for s in report.slices]
    values = [s.metric(m) for s in report.slices]
    colors = ["tab:blue" if s.judged else "lightgrey" for s in report.slices]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.35 * max(len(names), 1)))
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(report.overall[m], color="black", linestyle="-", label=f"overall {m}")
    if max_gap is not None:
        ax.axvline(
            report.overall[m] - max_gap,
            color="tab:orange",
            linestyle="--",
            label="overall - max_slice_gap",
        )
    if min_metric is not None:
        ax.axvline(min_metric, color="tab:red", linestyle=":", label="min_slice_metric")
    ax.set_xlim(0, 1)
    ax.set_xlabel(m + " (grey: too small, not judged)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # clear of the bars
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
