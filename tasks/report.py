"""The run's model card (Prefect + MLflow artifact) and its end-of-run summary."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from components import tracking
from components.behaviour import BehaviourReport, summary_lines
from components.config import PipelineConfig
from components.data import DataVersion
from components.objectives import objective_for
from components.report import RunSummary, model_card
from components.selection import Selection
from components.training import TrainResult
from tasks.evaluation import Evaluation
from tasks.policy import transient
from tasks.registry import Registration


@task(cache_policy=NO_CACHE, **transient())
def publish_model_card(
    config: PipelineConfig,
    run_id: str,
    data_version: DataVersion,
    selection: Selection,
    trained: TrainResult,
    evaluation: Evaluation,
    registration: Registration,
    behaviour: BehaviourReport | None = None,
) -> RunSummary:
    """Collect the run's results into a summary; publish its model card."""
    summary = RunSummary(
        domain=config.domain,
        model_name=config.registry.model_name,
        mlflow_run_id=run_id,
        task=config.task,
        metrics=evaluation.metrics,
        baseline=evaluation.baseline,
        baselines=evaluation.baselines,
        shown=list(objective_for(config).shown),
        champion=evaluation.champion,
        champion_version=evaluation.champion_version,
        trainable_params=trained.trainable_params,
        total_params=trained.total_params,
        train_seconds=trained.train_seconds,
        best_epoch=trained.best_epoch,
        samples_per_second=trained.samples_per_second,
        device=trained.device,
        precision=trained.precision,
        world_size=trained.world_size,
        strategy=trained.strategy,
        backend=trained.backend,
        launcher=trained.launcher,
        method=config.method.name,
        selection=selection.strategy,
        target_modules=len(selection.target_modules),
        version=registration.version,
        model_uri=registration.model_uri,
        champion_moved=registration.champion_moved,
        decision=registration.decision,
        data_version=data_version.as_tags(),
        tracking_uri=tracking.tracking_uri(),
        behaviour=({**behaviour.to_dict(), "lines": summary_lines(behaviour)} if behaviour else {}),
    )
    if evaluation.slices is not None:
        summary.slice_rows = evaluation.slices.rows()
        summary.slice_notes = evaluation.slices.summary_lines()
    card = model_card(summary, selection.table)
    tracking.log_text(run_id, card, "model_card.md")
    if registration.version is not None:  # the registry UI shows the card as the description
        # without the module table, and within the registry's 5,000-character column
        tracking.client().update_model_version(
            config.registry.model_name, registration.version, description=model_card(summary)[:5000]
        )
    create_markdown_artifact(card, key=f"{config.domain}-model-card", description="model card")
    return summary


def skipped_summary(config: PipelineConfig, run_id: str, reason: str) -> RunSummary:
    """The summary of a run that stopped early because nothing changed."""
    return RunSummary(
        domain=config.domain,
        model_name=config.registry.model_name,
        mlflow_run_id=run_id,
        status="skipped",
        message=reason,
        tracking_uri=tracking.tracking_uri(),
    )
