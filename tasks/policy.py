"""Retry and caching policies of the tasks, in one place.

Retries: tasks whose failure can be transient (calls to the MLflow tracking server and model
registry) retry with exponential backoff; tasks that cannot succeed on a retry (reading and
validating data, deterministic compute) do not. Set through the environment before the flow
is imported:

* `PEFTOPS_TRANSIENT_RETRIES` (default 3): retries of tracking/registry tasks;
* `PEFTOPS_RETRY_BACKOFF_SECONDS` (default 2): the first delay; each next one doubles
  (2, 4, 8 s), with 20 % jitter.

Caching: the expensive steps (baseline fit, selection, training) persist their results under
a key made of the task, the MLflow run, the config and the data's content. The MLflow run is
itself cached per Prefect flow run, so a *retried* flow run (flow `retries`, or "Retry" on a
deployment's failed run) reuses the run and every finished expensive step, while a new flow
run computes afresh (its own MLflow run must hold its own metrics; training still resumes
from its `.peftops/runs/<key>/` checkpoints).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import timedelta
from typing import Any

from prefect.tasks import exponential_backoff

from components.config import PipelineConfig
from components.data import RawSplits
from components.examples import Examples, TextSplit

TRANSIENT_RETRIES = int(os.environ.get("PEFTOPS_TRANSIENT_RETRIES", "3"))
RETRY_BACKOFF_SECONDS = float(os.environ.get("PEFTOPS_RETRY_BACKOFF_SECONDS", "2"))
CACHE_EXPIRATION = timedelta(days=7)


def transient() -> dict[str, Any]:
    """`@task` options for tracking/registry tasks: retries with exponential backoff."""
    return {
        "retries": TRANSIENT_RETRIES,
        "retry_delay_seconds": exponential_backoff(backoff_factor=RETRY_BACKOFF_SECONDS),
        "retry_jitter_factor": 0.2,
    }


def _update_split(digest: Any, split: TextSplit) -> None:
    for text, label in zip(split.texts, split.label_ids, strict=True):
        digest.update(f"{label}\t{text}\n".encode())


def _fingerprint(value: Any, digest: Any) -> None:
    """Feed what identifies a parameter's content: config JSON, data content, ids."""
    if isinstance(value, PipelineConfig):
        digest.update(value.model_dump_json().encode())
    elif isinstance(value, Examples):
        digest.update("\n".join(value.labels).encode())
        for split in (value.train, value.validation, value.test):
            digest.update(b"\x00split\n")
            _update_split(digest, split)
    elif hasattr(value, "content_lines"):  # other task types' examples
        for line in value.content_lines():
            digest.update(line.encode() + b"\n")
    elif isinstance(value, RawSplits):
        digest.update(value.version.content_hash.encode())
    elif isinstance(value, str | int | float | bool) or value is None:
        digest.update(repr(value).encode())
    # results of earlier steps (baseline, selection) follow from the data and config above


def run_scoped_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key: the task, the MLflow run (`run_id`), the config and the data content."""
    digest = hashlib.sha256()
    for name in sorted(parameters):
        digest.update(f"\x00{name}=".encode())
        _fingerprint(parameters[name], digest)
    return f"peftops-{context.task.name}-{parameters.get('run_id')}-{digest.hexdigest()[:24]}"


def flow_run_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key of the MLflow run: one per Prefect flow run (and config)."""
    digest = hashlib.sha256()
    for name in sorted(parameters):
        _fingerprint(parameters[name], digest)
    flow_run_id = context.task_run.flow_run_id if context.task_run else None
    if flow_run_id is None:  # called outside a flow: never reuse
        return f"peftops-{context.task.name}-{uuid.uuid4().hex}"
    return f"peftops-{context.task.name}-{flow_run_id}-{digest.hexdigest()[:24]}"


def cached(key_fn=run_scoped_key) -> dict[str, Any]:
    """`@task` options for an expensive step: persisted result, keyed as above."""
    return {
        "cache_key_fn": key_fn,
        "persist_result": True,
        "cache_expiration": CACHE_EXPIRATION,
    }
