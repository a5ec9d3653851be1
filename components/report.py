"""What a run tells a person: the end-of-run summary and the model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from components.evaluation import CLASSIFIER_COLUMNS, markdown_table


@dataclass
class RunSummary:
    """Everything the summary and model card show; plain data, JSON-friendly."""

    domain: str
    model_name: str
    mlflow_run_id: str
    status: str = "completed"
    task: str = "classification"
    metrics: dict = field(default_factory=dict)  # the task type's test metrics
    baseline: dict | None = None  # the strongest baseline on the policy's metric
    baselines: dict = field(default_factory=dict)  # every baseline by name (generation: 2)
    shown: list[str] = field(default_factory=lambda: list(CLASSIFIER_COLUMNS))
    champion: dict | None = None
    champion_version: str | None = None
    trainable_params: int = 0
    total_params: int = 0
    train_seconds: float = 0.0
    best_epoch: int | None = None  # 0: no epoch beat the untrained starting point
    samples_per_second: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"  # what training computed in: fp32, bf16 or fp16
    world_size: int = 1  # training processes
    strategy: str = "single"  # single, ddp or fsdp
    backend: str | None = None  # gloo, nccl
    launcher: str | None = None  # torch-elastic, ray
    method: str = ""
    selection: str = ""
    target_modules: int = 0
    version: str | None = None
    model_uri: str | None = None
    champion_moved: bool = False
    decision: list[str] = field(default_factory=list)
    data_version: dict = field(default_factory=dict)
    # the behavioural suite: {"lines": per-suite summary lines, **BehaviourReport.to_dict()}
    behaviour: dict = field(default_factory=dict)
    tracking_uri: str = ""
    message: str = ""
    slice_rows: list[dict] = field(default_factory=list)  # fairness slices' table
    slice_notes: list[str] = field(default_factory=list)  # worst slice, largest gap

    @property
    def trainable_percent(self) -> float:
        return 100 * self.trainable_params / max(self.total_params, 1)

    @property
    def how_trained(self) -> str:
        """`bf16 on cpu`, or `fp32 on cpu, ddp over 2 processes (gloo, torch-elastic)`."""
        where = f"{self.precision} on {self.device}"
        if self.world_size <= 1:
            return where
        how = ", ".join(x for x in (self.backend, self.launcher) if x)
        return f"{where}, {self.strategy} over {self.world_size} processes" + (
            f" ({how})" if how else ""
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "trainable_percent": self.trainable_percent}


_NAMES = {
    "macro_f1": "macro-F1",
    "exact_match": "exact match",
    "token_f1": "token F1",
    "rouge_l": "ROUGE-L",
    "invalid_output_rate": "invalid",
    "json_valid_rate": "valid JSON",
    "all_fields_accuracy": "all fields",
}
_BASELINE_NOTES = {
    "baseline": "frozen embeddings + logistic regression",
    "majority": "the most frequent training label, always",
    "zero-shot": "the base model, prompted",
    "few-shot": "the base model with in-context examples",
}


def _fmt(metrics: dict | None, shown: list[str] | None = None) -> str:
    if not metrics:
        return "—"
    keys = [k for k in (shown or ["accuracy", "macro_f1"]) if k != "min_recall" and k in metrics]
    return " · ".join(f"{_NAMES.get(k, k)} {metrics[k]:.4f}" for k in keys)


KEPT_START = (
    "the starting point (the probe's head, no fine-tuning step): no epoch beat it on the "
    "validation split"
)


def format_summary(s: RunSummary) -> str:
    """The plain-text block printed at the end of a run."""
    bar = "=" * 72
    lines = [bar, f" peftops · {s.domain} · {s.status}", bar]
    if s.status != "completed":
        lines += [f" {s.message}", f" MLflow run      {s.mlflow_run_id}", bar]
        return "\n".join(lines)
    champion = _fmt(s.champion, s.shown) + (
        f"  (v{s.champion_version})" if s.champion_version else ""
    )
    if s.champion is None:
        champion = "none yet"
    moved = "yes" if s.champion_moved else "no"
    tags = s.data_version
    data_version = tags.get("data.dvc_md5") or tags.get("data.content_hash", "")
    baselines = s.baselines or ({"baseline": s.baseline} if s.baseline else {})
    lines += [f" fine-tuned      {_fmt(s.metrics, s.shown)}"]
    for name, metrics in baselines.items():
        note = _BASELINE_NOTES.get(name)
        lines.append(f" {name:<15} {_fmt(metrics, s.shown)}" + (f"   ({note})" if note else ""))
    lines += slice_lines(s)
    lines += [
        f" champion before {champion}",
        *[f" behaviour       {line}" for line in s.behaviour.get("lines", [])],
        f" method          {s.method} on {s.selection} ({s.target_modules} modules)",
        f" trainable       {s.trainable_params:,} of {s.total_params:,} parameters "
        f"({s.trainable_percent:.2f}%)",
        f" training time   {s.train_seconds:.1f} s ({s.samples_per_second:.1f} samples/s, "
        f"{s.how_trained})",
        *([f" kept            {KEPT_START}"] if s.best_epoch == 0 else []),
        f" registered      {s.model_uri or 'not registered'}",
        f" @champion moved {moved}: {'; '.join(s.decision) or '-'}",
        f" data version    {data_version}",
        f" MLflow run      {s.mlflow_run_id}  ({s.tracking_uri})",
        bar,
        " MLflow UI:  "
        + (
            f"mlflow ui --backend-store-uri {s.tracking_uri}  → http://127.0.0.1:5000"
            if s.tracking_uri.startswith("sqlite:")
            else f"open {s.tracking_uri}"
        ),
        " Prefect UI: prefect server start  → http://127.0.0.1:4200 (then export "
        "PREFECT_API_URL=http://127.0.0.1:4200/api so runs show up there)",
    ]
    return "\n".join(lines)


def model_card(s: RunSummary, selection_rows: list[dict] | None = None) -> str:
    """Markdown model card for the Prefect artifact and the MLflow run."""
    baselines = s.baselines or {"baseline": s.baseline}
    named = {
        "fine-tuned": s.metrics,
        **{_card_name(k): v for k, v in baselines.items()},
        f"champion v{s.champion_version}": s.champion,
    }
    rows = [{"model": name, **_metric_cells(m, s.shown)} for name, m in named.items() if m]
    empty = [k for k in s.shown if all(r[k] == "—" for r in rows)]  # e.g. no label set
    rows = [{k: v for k, v in r.items() if k not in empty} for r in rows]
    parts = [
        f"# {s.model_name} — {s.domain} ({s.task})",
        f"**Registered:** `{s.model_uri or 'not registered'}` · "
        f"**@champion moved:** {'yes' if s.champion_moved else 'no'}",
        "## Test metrics",
        markdown_table(rows),
        *_behaviour_section(s.behaviour),
        *(
            ["## Fairness slices", markdown_table(s.slice_rows), *[f"- {n}" for n in s.slice_notes]]
            if s.slice_rows
            else []
        ),
        "## Promotion decision",
        "\n".join(f"- {r}" for r in s.decision) or "- (none)",
        "## Training",
        f"- method `{s.method}`, selection `{s.selection}` ({s.target_modules} modules)",
        f"- trainable {s.trainable_params:,} / {s.total_params:,} ({s.trainable_percent:.2f}%)",
        f"- {s.train_seconds:.1f} s, {s.samples_per_second:.1f} samples/s, {s.how_trained}",
        *([f"- kept: {KEPT_START}"] if s.best_epoch == 0 else []),
        "## Lineage",
        "\n".join(f"- `{k}`: `{v}`" for k, v in s.data_version.items()),
        f"- MLflow run `{s.mlflow_run_id}`",
    ]
    if selection_rows:
        chosen = [r for r in selection_rows if r.get("chosen")]
        parts += ["## Selected modules", markdown_table(chosen[:40])]
    return "\n\n".join(parts)


def _card_name(name: str) -> str:
    names = {"baseline": "baseline (frozen + LR)", "majority": "majority class"}
    return names.get(name, f"base model {name}")


def _metric_cells(metrics: dict, shown: list[str]) -> dict:
    return {
        k: f"{metrics[k]:.4f}" if isinstance(metrics.get(k), int | float) else "—" for k in shown
    }


def _behaviour_section(behaviour: dict) -> list[str]:
    """The model card's behavioural checks: pass rate per suite and label, failing cases."""
    if not behaviour:
        return []
    parts = ["## Behavioural checks"]
    if behaviour.get("skipped"):
        return [*parts, f"Skipped: {behaviour['skipped']}."]
    unsure = behaviour.get("unsure_below")
    parts.append(
        f"Suite `{behaviour.get('suite_path', '')}`"
        + (f"; unsure below a top score of {unsure:.3f} (validation)" if unsure else "")
    )
    parts.append("```\n" + "\n".join(behaviour.get("lines", [])) + "\n```")
    labels = behaviour.get("label_pass_rates", {})
    if labels:
        rows = [{"label": k, "pass rate": f"{v:.2f}"} for k, v in sorted(labels.items())]
        parts.append(markdown_table(rows))
    failures = behaviour.get("failures", [])
    if failures:
        keys = ("suite", "text", "expected", "predicted")
        parts += [
            "Failing cases:",
            markdown_table([{k: f[k] for k in keys} for f in failures[:30]]),
        ]
    return parts


def slice_lines(s: RunSummary) -> list[str]:
    """The summary's slice table: one line per slice, then the worst slice and largest gap."""
    if not s.slice_rows:
        return []
    gap = next(k for k in s.slice_rows[0] if k.startswith("gap"))
    width = max(len(f"{r['column']}={r['value']}") for r in s.slice_rows)
    lines = [f" slices          support · accuracy · macro-F1 · {gap} (test split)"]
    for r in s.slice_rows:
        name = f"{r['column']}={r['value']}"
        mark = "" if r["judged"] == "yes" else f"   ({r['judged']}, not judged)"
        lines.append(
            f"   {name:<{width}}  n={r['support']:<4} {r['accuracy']:.4f} · "
            f"{r['macro_f1']:.4f} · {r[gap]:+.4f}{mark}"
        )
    lines += [f"   {note}" for note in s.slice_notes]
    return lines
