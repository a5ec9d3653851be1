"""A sweep trial as a Prefect task: a nested MLflow run around the pipeline's training."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from components import sweep, tracking
from components.config import PipelineConfig, apply_overrides
from components.data import RawSplits

# the Prefect global concurrency limit a trial's training holds a slot of, where the server
# has one: an operator caps trainings across all sweeps (`prefect gcl create ... --limit N`);
# without one, a sweep's own `parallel` is the only cap
TRAINING_LIMIT = "peftops-training"


@task(cache_policy=NO_CACHE, retries=0, task_run_name="trial-{number}")
def run_trial(
    base: PipelineConfig,
    overrides: list[str],
    raw: RawSplits,
    parent_run_id: str,
    number: int,
    trial: Any,
) -> dict:
    """Train one trial's config in a child run of the sweep's MLflow run and report each
    epoch's validation loss to Optuna (negated: the study maximises), which may prune it.
    A failure ends the child run FAILED and fails this task run (the flow goes on). `trial`:
    a `sweep.TrialRef` (any process: it reopens the study's journal file) or an Optuna
    trial of this process."""
    optuna = sweep._optuna()
    if isinstance(trial, sweep.TrialRef):
        trial = trial.trial()
    experiment = tracking.ensure_experiment(base.registry.experiment)
    run = tracking.client().create_run(
        experiment,
        tags={"mlflow.parentRunId": parent_run_id, "sweep.trial": number, "domain": base.domain},
        run_name=f"trial-{number}",
    )
    run_id = run.info.run_id
    tracking.log_params(
        run_id, {"sweep." + o.partition("=")[0]: o.partition("=")[2] for o in overrides}
    )
    started = time.perf_counter()
    row: dict = {"number": number, "run_id": run_id, "overrides": overrides, "method": "?"}
    row["worker"] = f"{socket.gethostname()}:{os.getpid()}"  # where it ran (a Ray worker...)

    def on_epoch_end(record: dict) -> None:  # called by training, after `config` is set
        tracking.log_metrics(
            run_id, {k: v for k, v in record.items() if k != "epoch"}, step=record["epoch"]
        )
        step = sweep.schedule_step(record["epoch"], config.training.epochs)
        trial.report(-record["val_loss"], step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {record['epoch']}")

    try:
        config = apply_overrides(base, overrides)  # a bad combination fails this trial only
        row["method"] = config.method.name
        tracking.log_params(run_id, config.model_dump())
        with concurrency(TRAINING_LIMIT, occupy=1, strict=False):
            row["started"] = time.time()
            result = sweep.train_candidate(config, raw.frames, on_epoch_end)
            row["ended"] = time.time()
        value = sweep.validation_score(result.history, result.best_epoch, base.registry.metric)
    except optuna.TrialPruned as pruned:
        tracking.set_tags(run_id, {"sweep.state": "PRUNED", "sweep.pruned": str(pruned)})
        tracking.client().set_terminated(run_id, "KILLED")
        return row | {"state": "PRUNED", "seconds": time.perf_counter() - started}
    except Exception as err:
        tracking.set_tags(
            run_id, {"sweep.state": "FAIL", "error": f"{type(err).__name__}: {err}"[:4000]}
        )
        tracking.client().set_terminated(run_id, "FAILED")
        raise
    row |= {
        "state": "COMPLETE",
        "value": value,
        "trainable_params": result.trainable_params,
        "trainable_percent": 100 * result.trainable_fraction,
        "train_seconds": result.train_seconds,
        "best_epoch": result.best_epoch,
        "seconds": time.perf_counter() - started,
    }
    tracking.log_metrics(
        run_id,
        {
            f"val.{base.registry.metric}": value,
            "train.seconds": result.train_seconds,
            "trainable_params": result.trainable_params,
            "trainable_percent": row["trainable_percent"],
            "train.best_epoch": result.best_epoch,
            "trial.seconds": row["seconds"],
        },
    )
    tracking.set_tags(run_id, {"sweep.state": "COMPLETE"})
    tracking.client().set_terminated(run_id, "FINISHED")
    get_run_logger().info(
        "trial %d %s: val %s %.4f", number, overrides, base.registry.metric, value
    )
    return row
