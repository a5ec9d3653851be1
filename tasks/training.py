"""Fit the baseline, choose what to train, and train it."""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from components import launch, tracking
from components.config import PipelineConfig
from components.objectives import Baselines, objective_for
from components.selection import Selection, save_selection_plot
from components.training import TrainResult
from tasks.policy import cached


@task(**cached())
def fit_baseline(examples: Any, config: PipelineConfig, run_id: str) -> Baselines:
    """The simple models to beat on the test split (the classifier's probe also starts its
    head; a generative model's are the base model zero-shot and few-shot)."""
    baselines = objective_for(config).fit_baselines(examples, config)
    metrics = {"baseline.seconds": baselines.seconds}
    for name, scores in baselines.metrics.items():
        prefix = "baseline" if name == "baseline" else f"baseline.{name}"
        metrics |= {f"{prefix}.{k}": v for k, v in scores.items() if isinstance(v, int | float)}
    tracking.log_metrics(run_id, metrics)
    for artifact, data in baselines.artifacts.items():  # e.g. the baselines' answers
        tracking.log_dict(run_id, data, artifact)
    for name, scores in baselines.metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
        get_run_logger().info("%s on the test split: %s", name, shown)
    return baselines


@task(**cached())
def select_trainable_parameters(
    examples: Any, baseline: Baselines, config: PipelineConfig, run_id: str
) -> Selection:
    """Apply the selection strategy and log the module and layer tables and the score plot."""
    selection = objective_for(config).select(examples, baseline, config)
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in (
            ("selection.csv", selection.table),
            ("layers.csv", selection.layer_table),
        ):
            path = Path(tmp) / name
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            tracking.log_artifact(run_id, path, "selection")
        plot = save_selection_plot(selection, Path(tmp) / "selection.png")
        tracking.log_artifact(run_id, plot, "selection")
    tracking.log_dict(run_id, selection.to_dict(), "selection/selection.json")
    tracking.log_metrics(
        run_id,
        {
            "selection.modules": len(selection.target_modules),
            "selection.estimated_trainable": selection.estimated_trainable,
        },
    )
    create_table_artifact(
        selection.table, key=f"{config.domain}-selection", description=selection.summary()
    )
    get_run_logger().info("selection: %s", selection.summary())
    return selection


@task(**cached())
def train_adapter(
    examples: Any,
    selection: Selection,
    baseline: Baselines,
    config: PipelineConfig,
    run_id: str,
) -> TrainResult:
    """Train with per-epoch metrics on the MLflow run and checkpoints under `.peftops/`, in
    this process or, with `training.num_processes` > 1, in that many (rank 0 logs)."""
    on_epoch_end = tracking.epoch_logger(run_id)
    objective = objective_for(config)
    key = objective.training_key(examples, config)
    tracking.set_tags(run_id, {"training.key": key})
    workdir = tracking.project_dir() / ".peftops" / "runs" / key
    started = time.perf_counter()
    result = launch.train(
        objective,
        examples,
        selection,
        baseline,
        config,
        workdir=workdir,
        on_epoch_end=on_epoch_end,
        manifest={"domain": config.domain, "mlflow_run_id": run_id},
        mlflow_run_id=run_id,
    )
    if result.resumed_from_epoch is not None:
        # the restored epochs' curves belong on this run too
        for record in result.history[: result.resumed_from_epoch]:
            on_epoch_end(record)
        tracking.set_tags(run_id, {"training.resumed_from_epoch": result.resumed_from_epoch})
        get_run_logger().info(
            "resumed from checkpoint epoch %d of %d (%s)",
            result.resumed_from_epoch,
            config.training.epochs,
            workdir,
        )
    tracking.set_tags(
        run_id,
        {
            "train.device": result.device,
            "train.precision": result.precision,
            # how many processes trained, how, and what launched them
            "train.world_size": result.world_size,
            "train.strategy": result.strategy,
            **({"train.backend": result.backend} if result.backend else {}),
            **({"train.launcher": result.launcher} if result.launcher else {}),
        },
    )
    tracking.log_metrics(
        run_id,
        {
            "train.seconds": result.train_seconds,
            # the whole step: with several processes, also their start-up (tens of seconds)
            "train.wall_seconds": time.perf_counter() - started,
            "train.samples_per_second": result.samples_per_second,
            "train.best_epoch": result.best_epoch,
            "trainable_params": result.trainable_params,
            "total_params": result.total_params,
            "trainable_percent": 100 * result.trainable_fraction,
        },
    )
    return result
