"""The sweep flow: Optuna trials of the pipeline's training, then the normal pipeline (with
evaluation, registration and promotion policy) for the best trial's config only."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from components import sweep as sweeps
from components import tracking
from components.config import PipelineConfig, apply_overrides
from flows.pipeline import FINANCE_DEFAULTS, finetune
from tasks.data import load_data, validate_data
from tasks.sweep import run_trial
from tasks.tracking import end_mlflow_run, start_mlflow_run


@flow(name="peftops-sweep", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=16))
def sweep(
    config: PipelineConfig = FINANCE_DEFAULTS,
    trials: int = 8,
    grid: list[str] | None = None,
    space: dict | None = None,
    parallel: int = 1,
) -> dict:
    """Search `grid` (`key=v1,v2`) and/or `space` (YAML form: lists or {low, high, log}) for
    `trials` trials, each in a child MLflow run of one parent run; then run the pipeline on
    the best trial's config (its training resumes from the trial's checkpoints) so only it
    can be registered and promoted.

    `parallel` trials are in flight at once (a new one is asked of Optuna as soon as one
    ends, so TPE learns from every finished trial); each trial's training also holds a slot
    of the Prefect global concurrency limit `peftops-training` where the server has one
    (`prefect gcl create peftops-training --limit 2`), which caps trainings across every
    sweep on that server."""
    logger = get_run_logger()
    searched = sweeps.parse_grid(list(grid or [])) | (sweeps.parse_space(space) if space else {})
    if not searched:
        raise ValueError("nothing to search: give grid (key=v1,v2) or a space")
    sweeps.check_keys(config, searched)
    size = sweeps.grid_size(searched)
    trials = min(trials, size) if size else trials
    parent = start_mlflow_run(config)
    tracking.set_tags(parent, {"sweep": "parent", "sweep.trials": trials})
    # the study in a journal file of the project: trials report to it from any process
    storage = tracking.project_dir() / ".peftops" / "sweeps" / f"{parent}.journal"
    try:
        study = sweeps.create_study(searched, config.training.seed, trials, storage)
        raw = load_data(config, parent)
        validate_data(raw, config, parent)  # bad data stops the sweep before any trial
        rows: list[dict] = []
        running: dict = {}  # future → Optuna trial; a new trial is asked when one ends
        while len(rows) < trials:
            while len(running) < max(parallel, 1) and len(rows) + len(running) < trials:
                t = study.ask()
                overrides = sweeps.trial_overrides(t, searched)
                ref = sweeps.trial_ref(study, t, storage)
                running[run_trial.submit(config, overrides, raw, parent, t.number, ref)] = t
            future = next(as_completed(list(running)))
            t = running.pop(future)
            future.wait()  # as_completed may yield before the local future holds its state
            if future.state.is_completed():
                row = future.result()
            else:  # recorded as failed; the sweep goes on
                row = {"number": t.number, "state": "FAIL", "method": "?"}
                row["overrides"] = sweeps.trial_overrides(t, searched)
                row["error"] = str(future.state.message)[:500]
            sweeps.tell(study, t, row)
            rows.append(row)
        rows.sort(key=lambda r: r["number"])
        tracking.log_dict(parent, rows, "sweep/trials.json")
        with tempfile.TemporaryDirectory() as tmp:
            plot = sweeps.save_comparison_plot(
                rows, Path(tmp) / "comparison.png", config.registry.metric
            )
            tracking.log_artifact(parent, plot, "sweep")
        tracking.log_metrics(parent, sweeps.counts(rows))
        done = [r for r in rows if r["state"] == "COMPLETE"]
        if not done:
            raise RuntimeError(f"all {len(rows)} sweep trials failed or were pruned")
        best = max(done, key=lambda r: r["value"])
        tracking.set_tags(
            parent,
            {
                "sweep.best_trial": best["number"],
                "sweep.best_overrides": " ".join(best["overrides"]),
            },
        )
        tracking.log_metrics(parent, {f"sweep.best.val.{config.registry.metric}": best["value"]})
        logger.info("best trial %d %s: val %.4f", best["number"], best["overrides"], best["value"])
        summary = finetune(apply_overrides(config, best["overrides"]), force=True)
        tracking.set_tags(
            summary.mlflow_run_id,
            {"mlflow.parentRunId": parent, "sweep.best_trial": best["number"]},
        )
        tracking.set_tags(parent, {"sweep.best_run_id": summary.mlflow_run_id})
        end_mlflow_run(parent, "FINISHED")
    except BaseException as err:
        end_mlflow_run(parent, "FAILED", f"{type(err).__name__}: {err}")
        raise
    return {"mlflow_run_id": parent, "trials": rows, "best": best, "summary": summary}


def ray_task_runner(address: str | None = None) -> Any:
    """Prefect's Ray task runner on the cluster at `address` (else RAY_ADDRESS; none: a Ray
    started on this machine), for `sweep.with_options(task_runner=...)`: each trial runs as
    a Ray task. The workers need peftops installed and the project folder at the same path
    (a shared volume: the MLflow store, checkpoints and the study's journal live there);
    they are told this run's MLflow URI and project folder."""
    import os

    from prefect_ray import RayTaskRunner

    env = {
        "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
        "PEFTOPS_HOME": str(tracking.project_dir()),
    }
    # and where this flow's Prefect API is (task runs report their states to it)
    passed = ("HF_HUB_OFFLINE", "PYTHONPATH", "PREFECT_API_URL")
    env |= {k: os.environ[k] for k in passed if k in os.environ}
    return RayTaskRunner(
        address=address or os.environ.get("RAY_ADDRESS") or None,
        init_kwargs={"runtime_env": {"env_vars": env}, "include_dashboard": False},
    )
