"""Where a run trains: in this process, in `training.num_processes` processes on this machine
(`components.distributed`), or as a Ray Train job on a cluster (`components.ray_training`,
`training.launcher=ray`). The training task calls `train`; each launcher runs the same
`distributed.train_worker` per process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.config import PipelineConfig
from components.distributed import train_in_processes
from components.ray_training import train_on_ray
from components.selection import Selection
from components.training import EpochCallback, TrainResult


def train(
    objective: Any,
    examples: Any,
    selection: Selection,
    baselines: Any,
    config: PipelineConfig,
    workdir: Path,
    on_epoch_end: EpochCallback | None = None,
    manifest: dict | None = None,
    mlflow_run_id: str | None = None,
) -> TrainResult:
    """Train in this process (`training.num_processes` 1: nothing is spawned) or in several
    (`train_in_processes`; rank 0 logs the epochs on `mlflow_run_id` itself, so
    `on_epoch_end` is not called), or as a Ray Train job (`training.launcher=ray`)."""
    if config.training.launcher == "ray":
        return train_on_ray(
            objective, examples, selection, baselines, config, workdir, manifest, mlflow_run_id
        )
    if config.training.num_processes <= 1:
        return objective.train(
            examples,
            selection,
            baselines,
            config,
            workdir=workdir,
            on_epoch_end=on_epoch_end,
            manifest=manifest,
        )
    return train_in_processes(
        objective, examples, selection, baselines, config, workdir, manifest, mlflow_run_id
    )
