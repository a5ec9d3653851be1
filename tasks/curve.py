"""The data-efficiency curve's steps: embed once, score each (k, seed) point in its own nested
MLflow run, then publish the curve on the parent run."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from components import tracking
from components.config import PipelineConfig
from components.curve import (
    FULL,
    PROBE,
    CurvePoint,
    CurveReport,
    Features,
    crossovers,
    embed_splits,
    format_table,
    k_label,
    point_fields,
    point_probe,
    rows_needed,
    subsample_split,
    summarise,
    train_point,
    verdict,
    write_results,
)
from components.examples import Examples
from components.generative import curve as gen_curve
from components.generative.examples import ChatExamples
from tasks.policy import transient


@task(cache_policy=NO_CACHE)
def prepare_curve(
    examples: Examples,
    config: PipelineConfig,
    max_test: int | None,
    max_validation: int | None,
    points: list[CurvePoint],
    run_id: str,
) -> tuple[Examples, Features]:
    """The fixed test and validation splits (stratified samples of `max_test` and
    `max_validation` rows when given, to bound the cost) and the frozen embeddings every
    k-shot probe is fitted on (only the training rows some point samples)."""
    seed = config.data.split.seed
    test = subsample_split(examples.test, max_test, seed)
    validation = subsample_split(examples.validation, max_validation, seed)
    examples = Examples(examples.labels, examples.train, validation, test)
    features = embed_splits(examples, config, rows_needed(examples, points))
    tracking.set_tags(run_id, {"peftops.kind": "curve"})
    tracking.log_metrics(
        run_id,
        {
            "curve.embed_seconds": features.seconds,
            "curve.test_examples": len(test),
            "curve.validation_examples": len(validation),
            "curve.train_examples": len(examples.train),
        },
    )
    return examples, features


def _child_run(parent_id: str, point: CurvePoint, method: str, config: PipelineConfig) -> str:
    """A nested MLflow run (mlflow.parentRunId) for one method at one point."""
    c = tracking.client()
    experiment = c.get_run(parent_id).info.experiment_id
    tags = {
        "mlflow.parentRunId": parent_id,
        "peftops.kind": "curve-point",
        "curve.k": k_label(point.k),
        "curve.seed": str(point.seed),
        "curve.method": method,
        "domain": config.domain,
    }
    run = c.create_run(experiment, tags=tags, run_name=f"{method} {point.name}")
    return run.info.run_id


# a row's numbers that describe the point, not its test scores (logged without `test.`)
_NOT_SCORES = (
    "train_examples",
    "trainable_params",
    "train_seconds",
    "best_epoch",
    "epochs",
    "shots",
)


def _record(child: str, row: dict) -> None:
    tracking.log_params(child, {k: row[k] for k in ("k", "seed", "method", "train_examples")})
    numbers = {k: v for k, v in row.items() if isinstance(v, int | float) and k != "seed"}
    tracking.log_metrics(
        child, {k if k in _NOT_SCORES else f"test.{k}": v for k, v in numbers.items()}
    )


def _score_methods(
    methods: list[str],
    score: Callable[[str], dict],
    point: CurvePoint,
    fields: dict,
    config: PipelineConfig,
    parent_id: str,
) -> list[dict]:
    """Each method's row at one point (`score(method)`), each in a nested run; a method that
    fails is recorded as failed (its row has `error`) and the curve goes on."""
    logger = get_run_logger()
    metric = config.registry.metric
    rows = []
    for method in methods:
        child = _child_run(parent_id, point, method, config)
        try:
            row = score(method)
        except Exception as err:
            row = {**fields, "method": method, "error": f"{err}"[:500]}
            tracking.set_tags(child, {"error": f"{type(err).__name__}: {err}"[:4000]})
            tracking.client().set_terminated(child, "FAILED")
            logger.warning("%s %s failed: %s", method, point.name, err, exc_info=True)
        else:
            _record(child, row)
            tracking.client().set_terminated(child, "FINISHED")
            logger.info("%s %s: %s %.4f", method, point.name, metric, row.get(metric, math.nan))
        rows.append({**row, "mlflow_run_id": child})
    return rows


@task(cache_policy=NO_CACHE)
def curve_point(
    examples: Examples,
    features: Features,
    config: PipelineConfig,
    point: CurvePoint,
    methods: list[str],
    min_steps: int,
    parent_id: str,
) -> list[dict]:
    """The probe and every trained method at one (k, seed), each in a nested run. A method
    that fails is recorded as failed (its row has `error`) and the curve goes on."""
    sampled, baseline, probe_row = point_probe(examples, features, point)
    workroot = tracking.project_dir() / ".peftops" / "runs"

    def score(method: str) -> dict:
        if method == PROBE:
            return probe_row
        return train_point(sampled, baseline, config, method, point, workroot, min_steps)

    return _score_methods(methods, score, point, point_fields(point, sampled), config, parent_id)


@task(cache_policy=NO_CACHE)
def prepare_generative_curve(
    examples: ChatExamples,
    config: PipelineConfig,
    max_test: int | None,
    max_validation: int | None,
    run_id: str,
) -> ChatExamples:
    """The fixed test and validation conversations (capped), and the zero-shot base model on
    them, logged on the parent run as the curve's k = 0 reference."""
    seed = config.data.split.seed
    examples = replace(
        examples,
        test=gen_curve.subsample_chats(examples.test, examples, max_test, seed),
        validation=gen_curve.subsample_chats(examples.validation, examples, max_validation, seed),
    )
    zero, seconds = gen_curve.base_model_row(examples, config, 0, config.training.seed)
    tracking.set_tags(run_id, {"peftops.kind": "curve"})
    tracking.log_metrics(
        run_id,
        {
            **{f"curve.{gen_curve.ZERO_SHOT}.{k}": v for k, v in zero.items()},
            "curve.zero_shot_seconds": seconds,
            "curve.test_examples": len(examples.test),
            "curve.validation_examples": len(examples.validation),
            "curve.train_examples": len(examples.train),
        },
    )
    return examples


@task(cache_policy=NO_CACHE)
def generative_curve_point(
    examples: ChatExamples,
    config: PipelineConfig,
    point: CurvePoint,
    methods: list[str],
    min_steps: int,
    parent_id: str,
) -> list[dict]:
    """The few-shot prompt and every trained method at one (k, seed), each in a nested run;
    a method that fails is recorded as failed and the curve goes on."""
    sampled = gen_curve.sample_chats(examples, point)
    workroot = tracking.project_dir() / ".peftops" / "runs"

    def score(method: str) -> dict:
        if method == gen_curve.FEW_SHOT:
            return gen_curve.few_shot_point(sampled, config, point)
        return gen_curve.train_point(sampled, config, method, point, workroot, min_steps)

    return _score_methods(methods, score, point, point_fields(point, sampled), config, parent_id)


@task(cache_policy=NO_CACHE, **transient())
def publish_curve(
    rows: list[dict],
    examples: Examples | ChatExamples,
    config: PipelineConfig,
    methods: list[str],
    run_id: str,
) -> CurveReport:
    """Summarise the points, find the crossings, and log the PNG, CSV and JSON to the parent
    run (local copies under `.peftops/curves/<run id>/`)."""
    metric = config.registry.metric
    summary = summarise(rows, metric)
    generative = isinstance(examples, ChatExamples)
    baseline = gen_curve.FEW_SHOT if generative else PROBE
    trained = [m for m in methods if m != baseline]
    peft = next((m for m in trained if m != FULL), trained[0] if trained else None)
    found = crossovers(summary, peft, baseline) if peft else {}
    folder = tracking.project_dir() / ".peftops" / "curves" / run_id
    report = CurveReport(
        mlflow_run_id=run_id,
        metric=metric,
        methods=list(methods),
        rows=rows,
        summary=summary,
        crossovers=found,
        verdict=verdict(found, metric, rows) if peft else [],
        table=format_table(summary, metric, methods),
        folder=str(folder),
        test_examples=len(examples.test),
        validation_examples=len(examples.validation),
    )
    title = f"{config.domain}: test {metric} vs examples per class ({len(examples.test)} test)"
    classes = gen_curve.classes(examples) if generative else len(examples.labels)
    for path in write_results(report, Path(folder), title, classes):
        tracking.log_artifact(run_id, path, "curve")
    tracking.log_text(run_id, report.table + "\n\n" + "\n".join(report.verdict), "curve/table.txt")
    for s in summary:
        if s["n"]:
            tracking.log_metrics(run_id, {f"curve.{s['method']}.k{s['k']}.{metric}": s["mean"]})
    tracking.set_tags(
        run_id, {f"curve.{k}": v for k, v in found.items() if v is not None and k != "peft"}
    )
    table = [{k: s[k] for k in ("method", "k", "n", "mean", "std")} for s in summary]
    create_table_artifact(table, key=f"{config.domain}-curve", description=" ".join(report.verdict))
    get_run_logger().info("%s\n%s", report.table, "\n".join(report.verdict))
    return report
