"""Training past one machine: the same `train_worker` as `training.num_processes` on one
machine, run by Ray Train's `TorchTrainer` on the Ray cluster at `training.ray_address` (or
`RAY_ADDRESS`; none: a local Ray started for the run).

Ray Train starts one worker actor per process (`training.num_processes` of them, each with
`training.ray_cpus_per_worker` CPUs and `ray_gpus_per_worker` GPUs), sets the torchrun
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and joins them in a process
group (gloo on CPU, NCCL on GPUs), which accelerate then uses: no launcher of ours. Rank 0
trains and writes as with the local launcher (peftops' own checkpoints under the run's
workdir), then hands the bundle back as a Ray checkpoint persisted to `training.ray_storage`
(Ray's `storage_path`: a folder every node and the driver can reach on a cluster, e.g. s3://
or NFS), from which the driver copies it when rank 0 ran on another node. Resuming across
nodes needs the workdir on shared storage too (`PEFTOPS_HOME` on NFS); on one node it is the
same folder as for the local launcher. Ray is an optional extra: `pip install "peftops[ray]"`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from components import tracking
from components.config import PipelineConfig
from components.distributed import (
    DistributedTrainingError,
    TrainJob,
    agreed_result,
    check_distributed,
    train_worker,
    write_job,
)
from components.selection import Selection
from components.tracking import project_dir
from components.training import TrainResult

LAUNCHER = "ray"


def _ray() -> Any:
    try:
        import ray
        import ray.train.torch
    except ImportError:
        raise DistributedTrainingError(
            'training.launcher=ray needs Ray Train: pip install "peftops[ray]"'
        ) from None
    return ray


def ray_loop(loop_config: dict) -> None:
    """What each Ray Train worker runs: `train_worker`, then one collective report (Ray
    needs every rank to report): rank 0's result, every rank's weight digest, and rank 0's
    bundle as a Ray checkpoint."""
    import ray.train
    import torch.distributed as dist

    report = train_worker(loop_config["job"])
    digests: list = [None] * dist.get_world_size()
    dist.all_gather_object(digests, report["trained_digest"])
    checkpoint = None
    if report["result"] is not None:  # rank 0
        checkpoint = ray.train.Checkpoint.from_directory(report["result"]["bundle_dir"])
    metrics = {"report": json.dumps({"result": report["result"], "digests": digests})}
    ray.train.report(metrics, checkpoint=checkpoint)


def scaling(config: PipelineConfig) -> dict:
    cfg = config.training
    per_worker = {"CPU": cfg.ray_cpus_per_worker}
    if cfg.ray_gpus_per_worker:
        per_worker["GPU"] = cfg.ray_gpus_per_worker
    return {
        "num_workers": cfg.num_processes,
        "use_gpu": bool(cfg.ray_gpus_per_worker),
        "resources_per_worker": per_worker,
    }


def train_on_ray(
    objective: Any,
    examples: Any,
    selection: Selection,
    baselines: Any,
    config: PipelineConfig,
    workdir: Path,
    manifest: dict | None = None,
    mlflow_run_id: str | None = None,
) -> TrainResult:
    """`objective.train` as a Ray Train job of `training.num_processes` workers; returns rank
    0's result with the bundle in this machine's `workdir`. A worker that fails fails the
    job at once (no retries) with Ray's message naming the worker's rank."""
    check_distributed(config)
    ray = _ray()
    from ray.train import Checkpoint, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    job: TrainJob = write_job(
        objective, examples, selection, baselines, config, workdir, manifest, mlflow_run_id
    )
    job.launcher = LAUNCHER
    cfg = config.training
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS") or None
    storage = cfg.ray_storage or str(Path(workdir) / "ray")
    started = time.monotonic()
    # the workers log and write where this run does (the Ray nodes' own environment
    # supplies credentials, e.g. MLFLOW_TRACKING_PASSWORD, never this process)
    env = {"MLFLOW_TRACKING_URI": tracking.tracking_uri(), "PEFTOPS_HOME": str(project_dir())}
    env |= {k: os.environ[k] for k in ("HF_HUB_OFFLINE",) if k in os.environ}
    ray.init(
        address=address,
        ignore_reinit_error=True,
        include_dashboard=False,
        runtime_env={"env_vars": env},
    )
    try:
        trainer = TorchTrainer(
            ray_loop,
            train_loop_config={"job": job.to_dict()},
            scaling_config=ScalingConfig(**scaling(config)),
            # Ray Train joins the workers in the process group (accelerate finds it made):
            # the same bounded wait in any collective as the local launcher's
            torch_config=TorchConfig(timeout_s=cfg.distributed_timeout_s),
            run_config=RunConfig(
                name=f"peftops-{config.domain}-{uuid.uuid4().hex[:8]}",
                storage_path=storage,
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        try:
            result = trainer.fit()
        except Exception as err:  # Ray raises TrainingFailedError with the worker's error
            raise DistributedTrainingError(
                f"Ray training failed after {time.monotonic() - started:.0f} s: {err}. "
                "A re-run resumes from the last checkpoint (with any training.num_processes)."
            ) from None
    finally:
        ray.shutdown()
    report = json.loads(result.metrics["report"])
    trained = agreed_result(report["digests"], report["result"])
    bundle = Path(trained.bundle_dir)
    if not bundle.is_dir():  # rank 0 ran on another node: take the bundle from Ray's storage
        checkpoint: Checkpoint = result.checkpoint
        shutil.rmtree(bundle, ignore_errors=True)
        checkpoint.to_directory(str(bundle))
    return trained
