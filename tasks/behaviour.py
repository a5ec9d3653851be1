"""Run the behavioural suite against the trained model, after evaluation and before the
promotion decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from components import behaviour, tracking
from components.config import PipelineConfig
from components.evaluation import markdown_table
from components.training import TrainResult
from tasks.policy import transient


def _predictor_and_labels(
    trained: TrainResult, examples: Any, config: PipelineConfig, suite: behaviour.Suite
) -> tuple[behaviour.Predictor, list[str], float | None]:
    """The trained bundle as a predictor, its label set and the calibrated 'unsure'
    threshold (classifiers; a generative answer has no score)."""
    if config.task == "classification":
        from components.modeling import load_bundle

        classifier = load_bundle(Path(trained.bundle_dir))
        val = examples.validation
        threshold = None
        if len(val):
            probs = classifier.predict_proba(val.texts, config.evaluation.batch_size)
            threshold = behaviour.calibrate_unsure_threshold(
                probs, val.label_ids, config.evaluation.unsure_percentile
            )
        predict = behaviour.classifier_predictor(classifier, config.evaluation.batch_size)
        return predict, list(examples.labels), threshold
    from components.generative.bundle import load_generative_bundle
    from components.objectives import objective_for

    generator = load_generative_bundle(Path(trained.bundle_dir))
    references = objective_for(config).references(examples)
    labels = sorted({behaviour.answer_label(r, suite.field) for r in references})
    return behaviour.generator_predictor(generator, suite.field), labels, None


@task(cache_policy=NO_CACHE, **transient())
def check_behaviour(
    trained: TrainResult, examples: Any, config: PipelineConfig, run_id: str
) -> behaviour.BehaviourReport:
    """Pass rates per suite and per label, failing cases; an MLflow table and a Prefect
    artifact. Without a suite the step is skipped and says so."""
    logger = get_run_logger()
    path = behaviour.resolve_suite_path(config.evaluation.behaviour, config.domain, config.task)
    if path is None:
        why = (
            "evaluation.behaviour=none"
            if config.evaluation.behaviour.strip().lower() in behaviour.SKIP
            else "no behaviour suite (set evaluation.behaviour or --behaviour path.yaml)"
        )
        tracking.set_tags(run_id, {"behaviour.skipped": why})
        logger.info("behaviour: skipped (%s)", why)
        return behaviour.BehaviourReport(skipped=why)
    suite = behaviour.load_suite(path)
    predict, labels, threshold = _predictor_and_labels(trained, examples, config, suite)
    report = behaviour.run_suite(suite, predict, labels, threshold, behaviour.shown_path(path))
    rates = {f"behaviour.{k}.pass_rate": v for k, v in report.pass_rates.items()}
    if threshold is not None:
        rates["behaviour.unsure_below"] = threshold
    tracking.log_metrics(run_id, rates)
    tracking.client().log_table(run_id, pd.DataFrame(report.rows()), "behaviour/cases.json")
    tracking.log_dict(run_id, report.to_dict(), "behaviour/summary.json")
    per_label = [
        {"label": k, "pass_rate": f"{v:.2f}"} for k, v in sorted(report.label_pass_rates.items())
    ]
    failing = [
        {k: c[k] for k in ("suite", "text", "expected", "predicted")}
        for c in report.to_dict()["failures"][:50]
    ]
    create_markdown_artifact(
        "\n\n".join(
            [
                f"# {config.domain}: behaviour ({path.name})",
                "```\n" + "\n".join(behaviour.summary_lines(report)) + "\n```",
                "## Pass rate per label",
                markdown_table(per_label),
                "## Failing cases",
                markdown_table(failing) if failing else "none",
            ]
        ),
        key=f"{config.domain}-behaviour",
        description="behavioural suite",
    )
    create_table_artifact(
        report.rows(), key=f"{config.domain}-behaviour-cases", description="behaviour cases"
    )
    for line in behaviour.summary_lines(report):
        logger.info("behaviour: %s", line)
    return report
