"""Where things go: the project folder, the MLflow store, and run bookkeeping.

Standard environment variables win: `MLFLOW_TRACKING_URI` (default: SQLite in the project
folder) and `PEFTOPS_HOME` (default: the current directory). Nothing here runs at import.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient


def project_dir() -> Path:
    """The project folder: `PEFTOPS_HOME`, else the current directory."""
    return Path(os.environ.get("PEFTOPS_HOME") or Path.cwd()).resolve()


def default_tracking_uri() -> str:
    return f"sqlite:///{project_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def client() -> MlflowClient:
    uri = tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=os.environ.get("MLFLOW_REGISTRY_URI", uri))


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it (artifacts under the project folder when local)."""
    c = client()
    found = c.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri().startswith(("sqlite:", "file:")) or "://" not in tracking_uri():
        location = (project_dir() / "mlartifacts" / name).as_uri()
    return c.create_experiment(name, artifact_location=location)


def git_commit(folder: Path | None = None) -> str | None:
    """HEAD of the git repository holding `folder` (default: this code's), None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` → `{"a.b": 1}` (lists become JSON)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list) else value
    return out


def log_params(run_id: str, params: dict[str, Any]) -> None:
    """Log a (nested) dict as params, 100 per call, values cut to MLflow's 6,000 chars."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
    c = client()
    for i in range(0, len(items), 100):
        c.log_batch(run_id, params=items[i : i + 100])


def log_metrics(run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(k, float(v), now, step or 0)
        for k, v in metrics.items()
        if isinstance(v, int | float)
    ]
    if items:
        client().log_batch(run_id, metrics=items)


def epoch_logger(run_id: str) -> Callable[[dict], None]:
    """A training `on_epoch_end` that logs an epoch's record on the run (step: the epoch)."""

    def log(record: dict) -> None:
        metrics = {k: v for k, v in record.items() if k != "epoch"}
        log_metrics(run_id, metrics, step=record["epoch"])

    return log


def log_dict(run_id: str, data: Any, artifact_file: str) -> None:
    client().log_dict(run_id, data, artifact_file)


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    client().log_text(run_id, text, artifact_file)


def log_artifact(run_id: str, path: Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(path), artifact_path)


def set_tags(run_id: str, tags: dict[str, Any]) -> None:
    c = client()
    for key, value in tags.items():
        c.set_tag(run_id, key, str(value)[:5000])


def log_table(run_id: str, rows: list[dict], artifact_file: str) -> None:
    """A table artifact (MLflow's table view in the UI; `MlflowClient.load_table` with the
    run's experiment reads it back). MLflow appends to an existing table, so a retried task
    leaves the first attempt's table as it is."""
    import posixpath

    folder = posixpath.dirname(artifact_file) or None
    if any(f.path == artifact_file for f in client().list_artifacts(run_id, folder)):
        return
    columns = list(rows[0]) if rows else []
    data = {c: [r.get(c) for r in rows] for c in columns}
    client().log_table(run_id, data=data, artifact_file=artifact_file)
