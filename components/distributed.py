"""Training in several processes: a job description, the function every process runs, and
the launcher for one machine.

`train_worker(job)` is the worker entry point: a plain function of a JSON-able `TrainJob`
(the config, the file holding the training inputs, the output folder). Each process a
launcher starts calls it; it reads the inputs, trains through the run's objective (the same
`fit` loop as one process: accelerate wraps the model in DDP and joins the process group from
the launcher's environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and returns a
report. Rank 0 alone writes: checkpoints and bundle under `workdir`, per-epoch metrics on the
MLflow run, `workdir/result.json`.

`launch(job, n)` starts n such processes on this machine with torch's elastic agent
in-process (what `torchrun --standalone` runs). Chosen over `accelerate launch`, which is a
CLI that starts ONE process with `--cpu --num_processes 2`, and over accelerate's
`notebook_launcher`, which forks a process that holds threads (Prefect's, MLflow's). The
agent spawns fresh interpreters, restarts nothing (`max_restarts=0`), and when a process dies
stops the others and says which rank died and how.

Past one machine, `components/ray_training.py` runs the same function once per worker of a
Ray Train `TorchTrainer` (`training.launcher=ray`): Ray sets the same environment variables
and initialises the process group, which accelerate then uses.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from components.config import PipelineConfig
from components.selection import Selection
from components.training import TrainResult, is_main_process

JOB_FOLDER = "job"  # under the training workdir: the inputs file every process reads
RESULT_FILE = "result.json"  # under the training workdir: rank 0's TrainResult
LAUNCHER = "torch-elastic"


class DistributedTrainingError(RuntimeError):
    """A training process failed (or the processes disagree); the message names the rank."""


@dataclass
class TrainJob:
    """One training job, JSON-able, so any launcher can hand it to `train_worker`."""

    config: dict  # PipelineConfig.model_dump(mode="json")
    inputs: str  # JSON file: the selection and the objective's `job_inputs`
    workdir: str  # checkpoints/ and bundle/ (rank 0 writes; every rank reads checkpoints)
    manifest: dict = field(default_factory=dict)  # written into the bundle
    mlflow_run_id: str | None = None  # rank 0 logs per-epoch metrics on it
    launcher: str = LAUNCHER  # recorded as train.launcher

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainJob:
        return cls(**data)


def write_job(
    objective: Any,
    examples: Any,
    selection: Selection,
    baselines: Any,
    config: PipelineConfig,
    workdir: Path,
    manifest: dict | None = None,
    mlflow_run_id: str | None = None,
) -> TrainJob:
    """Write the job's inputs under `workdir/job/` (JSON, atomically) and describe the job."""
    folder = Path(workdir) / JOB_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    inputs = folder / "inputs.json"
    data = {"selection": selection.to_dict(), "examples": objective.job_inputs(examples, baselines)}
    partial = folder / f".inputs.{os.getpid()}.partial"
    partial.write_text(json.dumps(data))
    os.replace(partial, inputs)
    return TrainJob(
        config=config.model_dump(mode="json"),
        inputs=str(inputs),
        workdir=str(workdir),
        manifest=dict(manifest or {}),
        mlflow_run_id=mlflow_run_id,
    )


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _record(worker):
    """torch elastic's `record`: a worker's exception goes into the error file the agent
    reads, so the launcher's message carries it."""
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(worker)


def train_worker(job: TrainJob | dict) -> dict:
    """Train one process's part of `job` (see the module docstring) and return its report:
    rank, world size, the digest of its trained weights and, on rank 0, the `TrainResult`
    (as a dict). Every launcher calls this, once per process."""
    return _record(_train_worker)(job)


def _train_worker(job: TrainJob | dict) -> dict:
    import torch

    from components import tracking
    from components.config import build_config
    from components.objectives import objective_for

    job = TrainJob.from_dict(job) if isinstance(job, dict) else job
    config = build_config(job.config)
    # N processes share the cores (torch would give each all of them, and they would fight)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = config.training.num_threads or max(1, _cpus() // local)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # else accelerate sets its own count
    torch.set_num_threads(threads)
    objective = objective_for(config)
    data = json.loads(Path(job.inputs).read_text())
    examples, baselines = objective.from_job_inputs(data["examples"])
    on_epoch_end = tracking.epoch_logger(job.mlflow_run_id) if job.mlflow_run_id else None
    result = objective.train(
        examples,
        Selection(**data["selection"]),
        baselines,
        config,
        workdir=Path(job.workdir),
        on_epoch_end=on_epoch_end,  # fit calls it on rank 0 only
        manifest=job.manifest,
    )
    result = replace(result, launcher=job.launcher)
    main = is_main_process()
    if job.launcher == LAUNCHER and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # ours to end (Ray ends its own)
    if main:
        out = Path(job.workdir) / RESULT_FILE
        partial = out.with_name(f".{RESULT_FILE}.partial")
        partial.write_text(json.dumps(result.to_dict()))
        os.replace(partial, out)
    return {
        "rank": int(os.environ.get("RANK", "0")),
        "world_size": result.world_size,
        "trained_digest": result.trained_digest,
        "result": result.to_dict() if main else None,
    }


def _failure_message(err: Any, elapsed: float) -> str:
    """Which rank failed first, how (exit code, signal), and its error, from torch elastic's
    ChildFailedError."""
    rank, first = err.get_first_failure()
    how = f"exit code {first.exitcode}"
    if first.exitcode < 0:
        how += f" (killed by {first.signal_name()})"
    others = sorted(r for r in err.failures if r != rank)
    detail = ""
    if os.path.isfile(first.error_file):  # a Python exception, written by `record`
        message = first.message
        detail = message.get("message", "") if isinstance(message, dict) else str(message)
    return (
        f"distributed training failed after {elapsed:.0f} s: rank {rank} (pid {first.pid}) "
        f"ended with {how}"
        + (f"; ranks {others} failed too" if others else "; the other ranks were stopped")
        + (f". Its error: {detail}" if detail else "")
        + ". A re-run resumes from the last checkpoint (with any training.num_processes)."
    )


def launch(
    job: TrainJob,
    num_processes: int,
    worker: Callable[[dict], dict] | None = None,
    monitor_interval: float = 0.5,
) -> list[dict]:
    """Run `worker(job)` (default `train_worker`; a module-level function, as it is pickled
    into the spawned processes) in `num_processes` processes on this machine (torch elastic
    agent, standalone rendezvous) and return their reports by rank. A process that fails
    stops the others and raises `DistributedTrainingError` naming its rank and exit code,
    within about `monitor_interval` plus the others' shutdown (SIGTERM, then SIGKILL after
    10 s): never a hang, never a restart."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch_config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=num_processes,
        run_id=uuid.uuid4().hex,
        # torchrun --standalone: a local c10d store on a free port
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=monitor_interval,
        start_method="spawn",  # fresh interpreters: the launching process holds threads
        shutdown_timeout=10,
    )
    started = time.monotonic()
    # the agent installs its own SIGTERM/SIGINT/SIGHUP/SIGQUIT handlers (a signal to this
    # process then stops the workers) and leaves them: ours (Prefect's, Ctrl-C) come back
    names = launch_config.signals_to_handle.split(",")
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.getsignal(s) for s in (getattr(signal, n.strip()) for n in names)}
    try:
        outputs = elastic_launch(launch_config, worker or train_worker)(job.to_dict())
    except ChildFailedError as err:
        raise DistributedTrainingError(_failure_message(err, time.monotonic() - started)) from None
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return [outputs[rank] for rank in sorted(outputs)]


def check_distributed(config: PipelineConfig) -> None:
    """Refuse what cannot run here, before any process starts."""
    import torch

    cfg = config.training
    if cfg.distributed == "fsdp":
        from components.fsdp import check_fsdp

        check_fsdp(config)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and cfg.num_processes > gpus:
        raise DistributedTrainingError(
            f"training.num_processes={cfg.num_processes} but this machine has {gpus} CUDA "
            "GPU(s): one process per GPU"
        )


def train_in_processes(
    objective: Any,
    examples: Any,
    selection: Selection,
    baselines: Any,
    config: PipelineConfig,
    workdir: Path,
    manifest: dict | None = None,
    mlflow_run_id: str | None = None,
) -> TrainResult:
    """`objective.train` in `training.num_processes` processes on this machine: write the
    job, launch, check that every rank ended with the same weights, return rank 0's result."""
    check_distributed(config)
    job = write_job(
        objective, examples, selection, baselines, config, workdir, manifest, mlflow_run_id
    )
    reports = launch(job, config.training.num_processes)
    return agreed_result([r["trained_digest"] for r in reports], reports[0]["result"])


def agreed_result(digests: list, result: dict) -> TrainResult:
    """Rank 0's `TrainResult` (as `train_worker` reported it), once every rank's weight
    digest (in rank order) is the same; any launcher's processes must agree."""
    if len(set(digests)) != 1:
        per_rank = dict(enumerate(digests))
        raise DistributedTrainingError(
            f"the ranks ended with different weights (digest per rank: {per_rank}): "
            "gradients were not synchronised"
        )
    data = dict(result)
    data.pop("trainable_fraction", None)  # a property of TrainResult, not a field
    return TrainResult(**data)
