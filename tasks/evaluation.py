"""Score the fine-tuned model on the test split beside the baseline and the champion."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from components import registry, tracking
from components.baseline import BaselineResult
from components.config import PipelineConfig
from components.evaluation import (
    classification_metrics,
    comparison_rows,
    ids_from_names,
    min_recall,
    save_confusion_matrix,
)
from components.examples import Examples
from components.modeling import load_bundle
from components.training import TrainResult
from tasks.policy import transient


@dataclass
class Evaluation:
    metrics: dict
    baseline: dict
    champion: dict | None
    champion_version: str | None
    champion_error: str | None = None


def _with_min_recall(metrics: dict | None) -> dict | None:
    return None if metrics is None else {**metrics, "min_recall": min_recall(metrics)}


@task(cache_policy=NO_CACHE, **transient())
def evaluate(
    trained: TrainResult,
    examples: Examples,
    baseline: BaselineResult,
    config: PipelineConfig,
    run_id: str,
) -> Evaluation:
    """Accuracy, macro-F1, per-class scores and a confusion matrix, side by side."""
    logger = get_run_logger()
    labels, test = examples.labels, examples.test
    classifier = load_bundle(Path(trained.bundle_dir))
    predicted = classifier.predict(test.texts, config.evaluation.batch_size)
    pred_ids = ids_from_names(predicted, labels)
    metrics = classification_metrics(test.label_ids, pred_ids, labels)
    champion, version, error = None, None, None
    if not config.evaluation.compare_champion:
        version = registry.get_alias_version(config.registry.model_name, registry.CHAMPION)
        if version is not None:  # unscored, it cannot be beaten: never promote over it
            error = (
                f"champion v{version} not scored (evaluation.compare_champion=false); "
                "promote by hand if wanted"
            )
    else:
        try:
            scored = registry.score_champion(config.registry.model_name, test.texts)
        except Exception as err:  # the champion cannot be loaded: never promote over it
            version = registry.get_alias_version(config.registry.model_name, registry.CHAMPION)
            error = f"champion v{version} could not be scored: {err}"
            logger.warning(error)
        else:
            if scored is not None:
                version = scored[0]
                champion = classification_metrics(
                    test.label_ids, ids_from_names(scored[1], labels), labels
                )
    result = Evaluation(
        _with_min_recall(metrics),
        _with_min_recall(baseline.metrics),
        _with_min_recall(champion),
        version,
        error,
    )
    for prefix, m in (("test", result.metrics), ("champion", result.champion)):
        if m:
            tracking.log_metrics(
                run_id, {f"{prefix}.{k}": m[k] for k in ("accuracy", "macro_f1", "min_recall")}
            )
    tracking.log_dict(run_id, metrics["per_class"], "evaluation/per_class.json")
    rows = comparison_rows(
        {"fine-tuned": result.metrics, "baseline": result.baseline, "champion": result.champion}
    )
    tracking.log_dict(run_id, rows, "evaluation/comparison.json")
    with tempfile.TemporaryDirectory() as tmp:
        image = save_confusion_matrix(
            test.label_ids,
            pred_ids,
            labels,
            Path(tmp) / "confusion_matrix.png",
            f"{config.domain}: test confusion matrix",
        )
        tracking.log_artifact(run_id, image, "evaluation")
    create_table_artifact(rows, key=f"{config.domain}-evaluation", description="test split")
    logger.info(
        "test accuracy %.4f (baseline %.4f)", metrics["accuracy"], baseline.metrics["accuracy"]
    )
    return result
