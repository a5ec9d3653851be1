"""The data-efficiency curve: k labelled examples per class, for k = 1, 2, 4, … and all.

At each (k, seed) the same k-shot training sample is scored three ways on the same fixed test
split: the frozen-embedding probe, PEFT (the preset's method) and full fine-tuning. The probe
reuses embeddings computed once for the whole train split (a k-shot probe is a logistic
regression on a subset of rows), and the trained models go through the pipeline's own
selection, training (the probe starts the head, LP-FT) and evaluation. The preset's validation
split is kept whole for the best epoch. The curve answers where PEFT overtakes the probe and
where it stops paying off, computed from the points.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from components.baseline import BaselineResult, embed_texts, fit_probe, probe_predict
from components.config import ConfigError, PipelineConfig, apply_overrides
from components.evaluation import classification_metrics, min_recall
from components.examples import Examples, TextSplit

ALL = None  # k = all: the whole training split
DEFAULT_KS: tuple[int | None, ...] = (1, 2, 4, 8, 16, 32, ALL)
PROBE, FULL = "probe", "full"
# full fine-tuning trains every backbone tensor; at the LoRA learning rate (1e-3) it diverges,
# so it gets the usual full fine-tuning rate (peftops bench quality uses the same)
FULL_OVERRIDES = ("method.name=full", "selection.strategy=all", "training.learning_rate=5e-5")


def k_label(k: int | None) -> str:
    return "all" if k is ALL else str(k)


def parse_ks(text: str) -> list[int | None]:
    """`"1,2,4,all"` → [1, 2, 4, None], sorted with `all` last, duplicates dropped."""
    ks: set[int | None] = set()
    for item in (x.strip().lower() for x in text.split(",")):
        if not item:
            continue
        if item == "all":
            ks.add(ALL)
        elif item.isdigit() and int(item) > 0:
            ks.add(int(item))
        else:
            raise ConfigError(f"k must be a positive integer or 'all', got {item!r}")
    if not ks:
        raise ConfigError("no k given: e.g. --k 1,2,4,all")
    return sorted(ks, key=lambda k: math.inf if k is ALL else k)


@dataclass(frozen=True)
class CurvePoint:
    k: int | None  # examples per class; None: all
    seed: int  # sampling seed (0, 1, …); training uses training.seed + seed

    @property
    def name(self) -> str:
        return f"k={k_label(self.k)} seed={self.seed}"


def plan_points(ks: Sequence[int | None], seeds: int, seeds_up_to: int = 8) -> list[CurvePoint]:
    """`seeds` samples for each k ≤ `seeds_up_to` (where one sample's luck dominates), one for
    larger k and for all."""
    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    return [
        CurvePoint(k, seed)
        for k in ks
        for seed in range(seeds if k is not ALL and k <= seeds_up_to else 1)
    ]


def sample_indices(label_ids: Sequence[int], k: int | None, seed: int) -> list[int]:
    """Row indices of min(k, n_c) examples of every class c, in row order. One permutation per
    class and seed, so a seed's k-shot sample contains its smaller-k samples (the curve then
    measures more data, not another draw)."""
    labels = np.asarray(label_ids)
    if k is ALL:
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for c in np.unique(labels):  # sorted: each class draws from the rng in a fixed order
        rows = np.flatnonzero(labels == c)
        picked.extend(rng.permutation(rows)[:k].tolist())
    return sorted(picked)


def take(split: TextSplit, rows: Sequence[int]) -> TextSplit:
    return TextSplit([split.texts[i] for i in rows], [split.label_ids[i] for i in rows])


def stratified_rows(classes: Sequence, size: int | None, seed: int = 13) -> list[int]:
    """Sorted row numbers of a sample of `size` rows stratified by `classes` (one per row;
    every row when `size` is None or larger): what caps a curve's test and validation cost
    for both task types. A class too rare to stratify gives a plain sample."""
    if size is None or size >= len(classes):
        return list(range(len(classes)))
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(classes))
    try:
        kept, _ = train_test_split(rows, train_size=size, stratify=classes, random_state=seed)
    except ValueError:  # a class too rare to stratify: a plain sample
        kept = np.random.default_rng(seed).choice(rows, size=size, replace=False)
    return sorted(kept.tolist())


def subsample_split(split: TextSplit, size: int | None, seed: int = 13) -> TextSplit:
    """A stratified sample of `size` rows (all rows when `size` is None or larger)."""
    if size is None or size >= len(split):
        return split
    return take(split, stratified_rows(split.label_ids, size, seed))


@dataclass
class Features:
    """Frozen pooled embeddings of the whole train split and of the test split (computed once:
    every k-shot probe is a subset of the training rows)."""

    train: np.ndarray
    test: np.ndarray
    seconds: float


def rows_needed(examples: Examples, points: Sequence[CurvePoint]) -> list[int]:
    """The training rows any point samples (all rows when a point takes all)."""
    needed: set[int] = set()
    for point in points:
        needed.update(sample_indices(examples.train.label_ids, point.k, point.seed))
    return sorted(needed)


def embed_splits(
    examples: Examples, config: PipelineConfig, train_rows: Sequence[int] | None = None
) -> Features:
    """Embed the test split and the training rows in `train_rows` (default: all; the others
    stay NaN, so a probe on an unembedded row could not pass unnoticed)."""
    from components.modeling import build_classifier

    started = time.perf_counter()
    m = config.model
    model, tokenizer, _ = build_classifier(m.base_model, len(examples.labels), m.pooling)
    batch = config.evaluation.batch_size
    rows = list(range(len(examples.train))) if train_rows is None else list(train_rows)
    texts = [examples.train.texts[i] for i in rows]
    embedded = embed_texts(model, tokenizer, texts, m.max_length, batch)
    train = np.full((len(examples.train), embedded.shape[1]), np.nan, dtype=np.float32)
    train[rows] = embedded
    test = embed_texts(model, tokenizer, examples.test.texts, m.max_length, batch)
    return Features(train, test, time.perf_counter() - started)


def method_config(config: PipelineConfig, method: str) -> PipelineConfig:
    """The config a curve method trains with: `full` is full fine-tuning of every tensor; any
    other name is that peft method on the preset's selection and learning rate."""
    if method == FULL:
        return apply_overrides(config, list(FULL_OVERRIDES))
    return apply_overrides(config, [f"method.name={method}"])


def check_methods(config: PipelineConfig, methods: Sequence[str]) -> list[str]:
    """Validate the method names (each trainable one must build a config) before any work."""
    if not methods:
        raise ConfigError("no methods given: e.g. --methods probe,lora,full")
    for method in methods:
        if method != PROBE:
            method_config(config, method)
    return list(dict.fromkeys(methods))


def default_methods(config: PipelineConfig) -> list[str]:
    peft = config.method.name
    return [PROBE, peft] if peft == FULL else [PROBE, peft, FULL]


def _scores(metrics: dict) -> dict:
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "min_recall": min_recall(metrics),
    }


def point_probe(
    examples: Examples, features: Features, point: CurvePoint
) -> tuple[Examples, BaselineResult, dict]:
    """The point's k-shot examples (validation and test unchanged), its probe (which also
    starts the trained models' heads) and the probe's row."""
    started = time.perf_counter()
    rows = sample_indices(examples.train.label_ids, point.k, point.seed)
    sampled = replace(examples, train=take(examples.train, rows))
    y = np.asarray(sampled.train.label_ids)
    x = features.train[rows]
    if np.isnan(x).any():
        raise ValueError(f"{point.name}: training rows without embeddings (see rows_needed)")
    probe = fit_probe(x, y, len(examples.labels))
    preds = probe_predict(probe, features.test)
    metrics = classification_metrics(examples.test.label_ids, preds, examples.labels)
    seconds = time.perf_counter() - started
    row = {
        **point_fields(point, sampled),
        "method": PROBE,
        **_scores(metrics),
        "trainable_params": int(probe.weight.size + probe.bias.size),
        "train_seconds": seconds,
        "best_epoch": None,
    }
    return sampled, BaselineResult(probe, preds.tolist(), metrics, seconds), row


def point_fields(point: CurvePoint, sampled: Examples) -> dict:
    return {"k": k_label(point.k), "seed": point.seed, "train_examples": len(sampled.train)}


def point_config(
    config: PipelineConfig, method: str, point: CurvePoint, train_size: int, min_steps: int
) -> PipelineConfig:
    """`method_config` with the point's training seed, and with enough epochs for `min_steps`
    optimiser steps (k = 1 on 8 classes is one batch an epoch)."""
    cfg = method_config(config, method)
    t = cfg.training
    steps_per_epoch = math.ceil(train_size / t.batch_size)
    epochs = min(100, max(t.epochs, math.ceil(min_steps / steps_per_epoch)))
    return apply_overrides(
        cfg, [f"training.seed={t.seed + point.seed}", f"training.epochs={epochs}"]
    )


def fit_point(
    sampled,
    baselines,
    config: PipelineConfig,
    method: str,
    point: CurvePoint,
    workroot: Path,
    min_steps: int,
    keep: Callable[[dict], dict],
) -> dict:
    """Select, train and score one method at one point through the task type's objective, as
    the pipeline does; `keep` picks the row's scores from the evaluation's metrics. Training
    folders are keyed like the pipeline's, so an interrupted curve resumes and a finished
    point is not redone."""
    from components.objectives import objective_for

    cfg = point_config(config, method, point, len(sampled.train), min_steps)
    objective = objective_for(cfg)
    selection = objective.select(sampled, baselines, cfg)
    workdir = Path(workroot) / objective.training_key(sampled, cfg)
    trained = objective.train(sampled, selection, baselines, cfg, workdir)
    scored = objective.evaluate(Path(trained.bundle_dir), sampled, cfg)
    return {
        **point_fields(point, sampled),
        "method": method,
        **keep(scored.metrics),
        "trainable_params": trained.trainable_params,
        "train_seconds": trained.train_seconds,
        "best_epoch": trained.best_epoch,
        "epochs": cfg.training.epochs,
    }


def train_point(
    sampled: Examples,
    baseline: BaselineResult,
    config: PipelineConfig,
    method: str,
    point: CurvePoint,
    workroot: Path,
    min_steps: int = 0,
) -> dict:
    """One classifier method at one point, its head started from the point's probe."""
    from components.objectives import Baselines

    baselines = Baselines({"baseline": _scores(baseline.metrics)}, baseline.seconds, baseline)

    def keep(metrics: dict) -> dict:
        return {k: metrics[k] for k in ("accuracy", "macro_f1", "min_recall")}

    return fit_point(sampled, baselines, config, method, point, workroot, min_steps, keep)


# --- the curve from its points ---------------------------------------------------------------


def _k_order(label: str) -> float:
    return math.inf if label == "all" else float(label)


def summarise(rows: list[dict], metric: str) -> list[dict]:
    """Mean, standard deviation (over seeds; 0 for one seed), min and max of `metric` per
    method and k, in k order. Failed points (no metric) are left out and counted."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["k"]), []).append(row)
    out = []
    for (method, k), members in sorted(groups.items(), key=lambda g: (_k_order(g[0][1]), g[0][0])):
        values = [r[metric] for r in members if isinstance(r.get(metric), int | float)]
        out.append(
            {
                "method": method,
                "k": k,
                "train_examples": statistics.mean(r["train_examples"] for r in members),
                "n": len(values),
                "failed": len(members) - len(values),
                "mean": statistics.mean(values) if values else math.nan,
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values) if values else math.nan,
                "max": max(values) if values else math.nan,
            }
        )
    return out


def _means(summary: list[dict], method: str) -> dict[str, float]:
    return {s["k"]: s["mean"] for s in summary if s["method"] == method and s["n"]}


def _from_which_k(better: dict[str, bool]) -> str | None:
    """The smallest k from which `better` holds at every larger k too (None: not at the
    largest k)."""
    found = None
    for k in sorted(better, key=_k_order, reverse=True):
        if not better[k]:
            break
        found = k
    return found


def crossovers(summary: list[dict], peft: str, baseline: str = PROBE, full: str = FULL) -> dict:
    """Where the curves cross, from the per-k means:
    - `overtakes_probe_at`: the smallest k from which PEFT beats the probe at every larger k;
    - `best_gain_at` / `best_gain`: the k with PEFT's largest margin over the probe;
    - `full_catches_up_at`: the smallest k from which full fine-tuning beats PEFT at every
      larger k (PEFT stops paying off against full fine-tuning; a tie still favours the
      cheaper PEFT);
    - `last_gain_at`: the largest k at which PEFT still beats the probe (None: at none).
    `baseline` names the method playing the probe's part (the generative curve: few-shot)."""
    peft_m, probe_m, full_m = (_means(summary, m) for m in (peft, baseline, full))
    both = [k for k in peft_m if k in probe_m]
    gains = {k: peft_m[k] - probe_m[k] for k in both}
    result: dict = {
        "peft": peft,
        "baseline": baseline,
        "overtakes_probe_at": _from_which_k({k: g > 0 for k, g in gains.items()}),
        "best_gain_at": None,
        "best_gain": None,
        "last_gain_at": None,
        "full_catches_up_at": None,
        "full_compared": False,
    }
    if gains:
        best = max(gains, key=gains.__getitem__)
        result["best_gain_at"], result["best_gain"] = best, gains[best]
        winning = [k for k, g in gains.items() if g > 0]
        result["last_gain_at"] = max(winning, key=_k_order) if winning else None
    shared = [k for k in peft_m if k in full_m]
    if shared:
        result["full_compared"] = True
        result["full_catches_up_at"] = _from_which_k({k: full_m[k] > peft_m[k] for k in shared})
    return result


def kept_start(rows: list[dict]) -> dict[str, tuple[int, int]]:
    """Per trained method: (points where the probe-initialised start won on validation, so
    the model is the probe; points trained)."""
    out: dict[str, tuple[int, int]] = {}
    for row in rows:
        if row["method"] == PROBE or row.get("best_epoch") is None:
            continue
        kept, total = out.get(row["method"], (0, 0))
        out[row["method"]] = (kept + (row["best_epoch"] == 0), total + 1)
    return out


def verdict(found: dict, metric: str, rows: Sequence[dict] = ()) -> list[str]:
    """Plain sentences from `crossovers` (and, given the rows, how often training kept the
    probe it started from)."""
    peft = found["peft"]
    base = found.get("baseline", PROBE)
    base = "the probe" if base == PROBE else f"the {base} prompt"
    lines = []
    if found["overtakes_probe_at"] is not None:
        lines.append(
            f"{peft} overtakes {base} from k={found['overtakes_probe_at']} per class "
            f"(better at every larger k on mean {metric})."
        )
    elif found["last_gain_at"] is not None:
        lines.append(
            f"{peft} beats {base} at some k (last at k={found['last_gain_at']}) but not at "
            f"the largest k."
        )
    else:
        lines.append(f"{peft} never beats {base} on mean {metric}.")
    if found["best_gain"] is not None and found["best_gain"] > 0:
        lines.append(
            f"Its largest gain over {base} is {found['best_gain']:+.4f} at "
            f"k={found['best_gain_at']}."
        )
    if found["full_catches_up_at"] is not None:
        lines.append(
            f"Full fine-tuning beats {peft} from k={found['full_catches_up_at']}: "
            f"there {peft} stops paying off against full fine-tuning."
        )
    elif found["full_compared"]:
        lines.append(f"Full fine-tuning does not beat {peft} at the largest k.")
    for method, (kept, total) in kept_start(list(rows)).items():
        if kept:
            lines.append(
                f"{method} kept its probe-initialised start (no epoch beat it on validation) "
                f"at {kept} of {total} points."
            )
    return lines


def format_table(summary: list[dict], metric: str, methods: Sequence[str]) -> str:
    """k × method table of mean ± std of `metric` (n seeds)."""
    ks = sorted({s["k"] for s in summary}, key=_k_order)
    cell = {(s["method"], s["k"]): s for s in summary}
    header = f"{'k':>5} {'train':>7} " + " ".join(f"{m:>20}" for m in methods)
    lines = [f"mean {metric} ± std over seeds (n)", header]
    for k in ks:
        size = next(s["train_examples"] for s in summary if s["k"] == k)
        parts = []
        for m in methods:
            s = cell.get((m, k))
            text = "" if s is None or not s["n"] else f"{s['mean']:.4f} ± {s['std']:.4f} ({s['n']})"
            if s is not None and s["failed"]:
                text += f" {s['failed']} failed"
            parts.append(f"{text:>20}")
        lines.append(f"{k:>5} {size:>7.0f} " + " ".join(parts))
    return "\n".join(lines)


def save_curve_plot(
    summary: list[dict],
    metric: str,
    methods: Sequence[str],
    classes: int,
    path: Path,
    title: str,
) -> Path:
    """Mean (line) and min–max over seeds (band) of `metric` against examples per class on a
    log axis; `all` is placed at the training split's mean examples per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ticks: dict[float, str] = {}
    for method in methods:
        points = [s for s in summary if s["method"] == method and s["n"]]
        if not points:
            continue
        # `all` sits at the split's mean examples per class
        xs = [float(s["k"]) if s["k"] != "all" else s["train_examples"] / classes for s in points]
        means = [s["mean"] for s in points]
        ax.plot(xs, means, marker="o", label=method)
        ax.fill_between(xs, [s["min"] for s in points], [s["max"] for s in points], alpha=0.2)
        for s, x in zip(points, xs, strict=True):
            ticks[x] = s["k"] if s["k"] != "all" else f"all\n({x:.0f})"
    ax.set_xscale("log")
    ax.set_xticks(list(ticks), list(ticks.values()))
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class (k)")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class CurveReport:
    """What a curve run hands back: every point's row, the per-k summary, the crossings and
    their sentences, the printed table, and where the files are (local and in MLflow)."""

    mlflow_run_id: str
    metric: str
    methods: list[str]
    rows: list[dict]
    summary: list[dict]
    crossovers: dict
    verdict: list[str]
    table: str
    folder: str  # local copies of curve.png, points.csv, curve.json
    test_examples: int
    validation_examples: int

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def write_results(report: CurveReport, folder: Path, title: str, classes: int) -> list[Path]:
    """curve.png, points.csv (one row per point and method) and curve.json (everything)."""
    import csv
    import json

    folder.mkdir(parents=True, exist_ok=True)
    plot = save_curve_plot(
        report.summary, report.metric, report.methods, classes, folder / "curve.png", title
    )
    points = folder / "points.csv"
    columns = list(dict.fromkeys(key for row in report.rows for key in row))
    with points.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(report.rows)
    data = folder / "curve.json"
    data.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    return [plot, points, data]
