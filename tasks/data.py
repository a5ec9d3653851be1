"""Load the dataset and validate it with Great Expectations before anything trains."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from components import tracking
from components.config import PipelineConfig
from components.data import RawSplits, load_splits
from components.objectives import objective_for
from components.validation import DataValidationError, save_report


@task(cache_policy=NO_CACHE, retries=0)  # unreadable data stays unreadable
def load_data(config: PipelineConfig, run_id: str) -> RawSplits:
    """Read the splits and record the data version on the MLflow run."""
    raw = load_splits(config.data, tracking.project_dir())
    tracking.set_tags(run_id, raw.version.as_tags())
    sizes = {f"data.rows.{k}": len(v) for k, v in raw.frames.items()}
    tracking.log_metrics(run_id, sizes)
    get_run_logger().info("loaded %s (%s)", config.data.path, sizes)
    return raw


@task(cache_policy=NO_CACHE, retries=0)  # invalid data stays invalid: never retried
def validate_data(raw: RawSplits, config: PipelineConfig, run_id: str) -> Any:
    """Run the task type's suite; a failure stops the flow here, before training."""
    objective = objective_for(config)
    if not config.validation.enabled:
        get_run_logger().warning("data validation is disabled (validation.enabled=false)")
        return objective.prepare(raw.frames, config)
    report = objective.validate(raw.frames, config)
    with tempfile.TemporaryDirectory() as tmp:
        for path in save_report(report, Path(tmp)):
            tracking.log_artifact(run_id, path, "validation")
    tracking.set_tags(run_id, {"validation.success": report.success})
    create_markdown_artifact(
        report.to_markdown(),
        key=f"{config.domain}-validation",
        description="Great Expectations data validation",
    )
    if not report.success:
        raise DataValidationError(report)
    examples = objective.prepare(raw.frames, config)
    preview = objective.preview(examples, config)
    if preview:  # which tokens are trained: loss-mask mistakes are easy to make and to miss
        tracking.log_text(run_id, preview, "validation/trained_tokens.md")
        create_markdown_artifact(
            preview, key=f"{config.domain}-trained-tokens", description="trained tokens"
        )
    return examples
