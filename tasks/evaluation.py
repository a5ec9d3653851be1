"""Score the fine-tuned model on the test split beside the baselines and the champion."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from components import registry, tracking
from components.config import PipelineConfig
from components.evaluation import comparison_rows, paired_bootstrap
from components.objectives import Baselines, objective_for
from components.slices import SliceReport, save_slice_plot, slice_metrics
from components.training import TrainResult
from tasks.policy import transient


@dataclass
class Evaluation:
    metrics: dict
    baseline: dict | None  # the strongest baseline on the policy's metric
    champion: dict | None
    champion_version: str | None
    champion_error: str | None = None
    baselines: dict[str, dict] = field(default_factory=dict)  # every baseline, by name
    bootstrap: dict | None = None  # challenger - champion on the policy's metric
    slices: SliceReport | None = None  # fairness slices (data.group_columns)


@task(cache_policy=NO_CACHE, **transient())
def evaluate(
    trained: TrainResult,
    examples: Any,
    baseline: Baselines,
    config: PipelineConfig,
    run_id: str,
) -> Evaluation:
    """The task type's metrics for the fine-tuned model, its baselines and the champion, side
    by side on the same test split."""
    logger = get_run_logger()
    objective = objective_for(config)
    metric = config.registry.metric
    scored = objective.evaluate(Path(trained.bundle_dir), examples, config)
    champion, version, error, bootstrap = None, None, None, None
    name = config.registry.model_name
    if not config.evaluation.compare_champion:
        version = registry.get_alias_version(name, registry.CHAMPION)
        if version is not None:  # unscored, it cannot be beaten: never promote over it
            error = (
                f"champion v{version} not scored (evaluation.compare_champion=false); "
                "promote by hand if wanted"
            )
    else:
        try:
            loaded = registry.load_champion(name)
            if loaded is not None:
                version, model = loaded
                champion_scored = objective.score_model(model, examples, config)
        except Exception as err:  # the champion cannot be loaded: never promote over it
            version = registry.get_alias_version(name, registry.CHAMPION)
            error = f"champion v{version} could not be scored: {err}"
            logger.warning(error)
        else:
            if loaded is not None:
                champion = champion_scored.metrics
                if config.registry.bootstrap_confidence is not None:
                    bootstrap = paired_bootstrap(
                        objective.metric_fn(metric, examples),
                        scored.predictions,
                        champion_scored.predictions,
                        objective.references(examples),
                        confidence=config.registry.bootstrap_confidence,
                        n_resamples=config.evaluation.bootstrap_resamples,
                        seed=config.training.seed,
                    )
    result = Evaluation(
        scored.metrics,
        baseline.strongest(metric),
        champion,
        version,
        error,
        baselines=baseline.metrics,
        bootstrap=bootstrap,
    )
    shown = objective.shown
    for prefix, m in (("test", result.metrics), ("champion", result.champion)):
        if m:  # every scalar (per-field scores too); per-class tables go to artifacts
            scalars = {k: v for k, v in m.items() if isinstance(v, int | float)}
            tracking.log_metrics(run_id, {f"{prefix}.{k}": v for k, v in scalars.items()})
    if bootstrap is not None:
        tracking.log_metrics(run_id, {f"bootstrap.{k}": v for k, v in bootstrap.items()})
    for artifact, data in scored.artifacts.items():
        tracking.log_dict(run_id, data, artifact)
    rows = comparison_rows(
        {"fine-tuned": result.metrics, **baseline.metrics, "champion": result.champion}, shown
    )
    tracking.log_dict(run_id, rows, "evaluation/comparison.json")
    with tempfile.TemporaryDirectory() as tmp:
        title = f"{config.domain}: test split"
        for path in objective.save_evidence(scored, examples, Path(tmp), title):
            tracking.log_artifact(run_id, path, "evaluation")
    create_table_artifact(rows, key=f"{config.domain}-evaluation", description="test split")
    if config.data.group_columns:
        result.slices = _log_slices(scored.predictions, examples, config, run_id)
    strongest = result.baseline or {}
    logger.info(
        "test %s %.4f (strongest baseline %.4f)",
        metric,
        result.metrics.get(metric, float("nan")),
        strongest.get(metric, float("nan")),
    )
    return result


def _log_slices(
    predictions: list, examples: Any, config: PipelineConfig, run_id: str
) -> SliceReport:
    """The fine-tuned model's metrics per group value: MLflow metrics, table and bar plot,
    and a Prefect table artifact."""
    policy = config.registry
    report = slice_metrics(
        examples.test.label_ids,
        predictions,
        examples.labels,
        examples.test.groups,
        metric=policy.metric,
        min_support=config.evaluation.min_slice_support,
    )
    tracking.log_metrics(run_id, report.metrics())
    rows = report.rows()
    tracking.log_table(run_id, rows, "evaluation/slices.json")
    tracking.log_dict(run_id, report.to_dict(), "evaluation/slice_report.json")
    with tempfile.TemporaryDirectory() as tmp:
        plot = save_slice_plot(
            report,
            Path(tmp) / "slices.png",
            f"{config.domain}: {policy.metric} per slice (test split)",
            policy.max_slice_gap,
            policy.min_slice_metric,
        )
        tracking.log_artifact(run_id, plot, "evaluation")
    create_table_artifact(
        rows, key=f"{config.domain}-slices", description="fairness slices (test split)"
    )
    for line in report.summary_lines():
        get_run_logger().info("slices: %s", line)
    return report
