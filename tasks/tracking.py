"""Open and close the one MLflow run that records a flow run."""

from __future__ import annotations

from importlib import metadata

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from components import tracking
from components.config import PipelineConfig
from tasks.policy import cached, flow_run_key, transient


@task(**transient(), **cached(flow_run_key))
def start_mlflow_run(config: PipelineConfig) -> str:
    """Create the MLflow run for this flow run and log the whole config as params. A retried
    flow run gets the same MLflow run back (cached per flow run)."""
    experiment = tracking.ensure_experiment(config.registry.experiment)
    tags = {
        "domain": config.domain,
        "peftops.version": metadata.version("peftops"),
        "git_commit": tracking.git_commit() or "unknown",
        "prefect.flow_run_id": str(flow_run.get_id() or ""),
        "prefect.flow_run_name": str(flow_run.get_name() or ""),
    }
    run = tracking.client().create_run(experiment, tags=tags, run_name=flow_run.get_name())
    tracking.log_params(run.info.run_id, config.model_dump())
    tracking.log_dict(run.info.run_id, config.model_dump(mode="json"), "config.json")
    return run.info.run_id


@task(cache_policy=NO_CACHE, **transient())
def end_mlflow_run(run_id: str, status: str, error: str | None = None) -> None:
    """Mark the run FINISHED or FAILED (with the error as a tag). A run that finishes after a
    failed attempt (a retried flow run) keeps that attempt's error as `retried_after_error`
    (and a registration it withdrew as `retried_after_withdrawal`)."""
    if error:
        tracking.set_tags(run_id, {"error": error[:4000]})
    elif status == "FINISHED":
        tags = tracking.client().get_run(run_id).data.tags
        for key, kept_as in (
            ("error", "retried_after_error"),
            ("registration.withdrawn", "retried_after_withdrawal"),
        ):
            if key in tags:
                tracking.set_tags(run_id, {kept_as: tags[key]})
                tracking.client().delete_tag(run_id, key)
    tracking.client().set_terminated(run_id, status)
