"""What a run tells a person: the end-of-run summary and the model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from components.evaluation import markdown_table


@dataclass
class RunSummary:
    """Everything the summary and model card show; plain data, JSON-friendly."""

    domain: str
    model_name: str
    mlflow_run_id: str
    status: str = "completed"
    metrics: dict = field(default_factory=dict)  # accuracy, macro_f1, min_recall
    baseline: dict | None = None
    champion: dict | None = None
    champion_version: str | None = None
    trainable_params: int = 0
    total_params: int = 0
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"  # what training computed in: fp32, bf16 or fp16
    method: str = ""
    selection: str = ""
    target_modules: int = 0
    version: str | None = None
    model_uri: str | None = None
    champion_moved: bool = False
    decision: list[str] = field(default_factory=list)
    data_version: dict = field(default_factory=dict)
    tracking_uri: str = ""
    message: str = ""

    @property
    def trainable_percent(self) -> float:
        return 100 * self.trainable_params / max(self.total_params, 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "trainable_percent": self.trainable_percent}


def _fmt(metrics: dict | None) -> str:
    if not metrics:
        return "—"
    return f"accuracy {metrics['accuracy']:.4f} · macro-F1 {metrics['macro_f1']:.4f}"


def format_summary(s: RunSummary) -> str:
    """The plain-text block printed at the end of a run."""
    bar = "=" * 72
    lines = [bar, f" peftops · {s.domain} · {s.status}", bar]
    if s.status != "completed":
        lines += [f" {s.message}", f" MLflow run      {s.mlflow_run_id}", bar]
        return "\n".join(lines)
    champion = _fmt(s.champion) + (f"  (v{s.champion_version})" if s.champion_version else "")
    if s.champion is None:
        champion = "none yet"
    moved = "yes" if s.champion_moved else "no"
    tags = s.data_version
    data_version = tags.get("data.dvc_md5") or tags.get("data.content_hash", "")
    lines += [
        f" fine-tuned      {_fmt(s.metrics)}",
        f" baseline        {_fmt(s.baseline)}   (frozen embeddings + logistic regression)",
        f" champion before {champion}",
        f" method          {s.method} on {s.selection} ({s.target_modules} modules)",
        f" trainable       {s.trainable_params:,} of {s.total_params:,} parameters "
        f"({s.trainable_percent:.2f}%)",
        f" training time   {s.train_seconds:.1f} s ({s.samples_per_second:.1f} samples/s, "
        f"{s.precision} on {s.device})",
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
    rows = [
        {"model": "fine-tuned", **_metric_cells(s.metrics)},
        {"model": "baseline (frozen + LR)", **_metric_cells(s.baseline)},
        {"model": f"champion v{s.champion_version}", **_metric_cells(s.champion)},
    ]
    rows = [r for r in rows if r["accuracy"] != "—"]
    parts = [
        f"# {s.model_name} — {s.domain}",
        f"**Registered:** `{s.model_uri or 'not registered'}` · "
        f"**@champion moved:** {'yes' if s.champion_moved else 'no'}",
        "## Test metrics",
        markdown_table(rows),
        "## Promotion decision",
        "\n".join(f"- {r}" for r in s.decision) or "- (none)",
        "## Training",
        f"- method `{s.method}`, selection `{s.selection}` ({s.target_modules} modules)",
        f"- trainable {s.trainable_params:,} / {s.total_params:,} ({s.trainable_percent:.2f}%)",
        f"- {s.train_seconds:.1f} s, {s.samples_per_second:.1f} samples/s, "
        f"{s.precision} on {s.device}",
        "## Lineage",
        "\n".join(f"- `{k}`: `{v}`" for k, v in s.data_version.items()),
        f"- MLflow run `{s.mlflow_run_id}`",
    ]
    if selection_rows:
        chosen = [r for r in selection_rows if r.get("chosen")]
        parts += ["## Selected modules", markdown_table(chosen[:40])]
    return "\n\n".join(parts)


def _metric_cells(metrics: dict | None) -> dict:
    if not metrics:
        return {"accuracy": "—", "macro_f1": "—", "min_recall": "—"}
    return {
        "accuracy": f"{metrics['accuracy']:.4f}",
        "macro_f1": f"{metrics['macro_f1']:.4f}",
        "min_recall": f"{metrics.get('min_recall', 0):.4f}",
    }
