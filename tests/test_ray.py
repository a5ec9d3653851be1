"""`training.launcher=ray`: the finance flow trains as a Ray Train TorchTrainer of 2 workers
on a real local Ray cluster the test starts (`ray start --head`, 2 CPUs: one per worker; Ray
Train's controller takes none), and registers the version rank 0 trained."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from components import registry, tracking
from conftest import tiny_config
from flows.pipeline import finance

# not imported here: Ray reads RAY_AUTH_MODE when first imported, which must follow the
# fixture's environment (a real deployment sets it before the process starts)
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason='needs the ray extra: pip install "peftops[ray]"',
)
RAY = str(Path(sys.executable).parent / "ray")
# one token for every cluster of this session: the ray module keeps the token it first read,
# so a second cluster with a new token would refuse this process's next connection
TOKEN = secrets.token_hex(16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def ray_cluster(monkeypatch):
    """A one-node Ray cluster with 2 CPUs and token auth (a token made for the test session,
    shared by the cluster and the driver through the environment), stopped after the test. Started
    before the test's workspace exists: the run tells the workers where to log and write."""
    port = _free_port()
    temp = Path("/tmp") / f"ray-{os.getpid()}"  # Ray's socket paths must stay short
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    started = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.usefixtures("prefect_harness")
def test_the_finance_flow_trains_on_a_ray_cluster_and_registers(ray_cluster, workspace, tiny_bert):
    config = tiny_config(
        "finance",
        tiny_bert,
        "registry.require_beats_baseline=false",
        "training.launcher=ray",
        "training.num_processes=2",
        "training.ray_cpus_per_worker=1",
    )
    summary = finance(config=config)
    assert summary.version == "1"
    assert registry.get_alias_version(config.registry.model_name, "champion") == "1"
    run = tracking.client().get_run(summary.mlflow_run_id)
    tags = run.data.tags
    assert tags["train.launcher"] == "ray" and tags["train.world_size"] == "2"
    assert tags["train.backend"] == "gloo" and tags["train.strategy"] == "ddp"
    # rank 0 logged every epoch on the run (the other rank logged nothing: one value a step)
    history = tracking.client().get_metric_history(summary.mlflow_run_id, "val_loss")
    assert [m.step for m in history] == list(range(1, config.training.epochs + 1))


@pytest.mark.usefixtures("prefect_harness")
def test_sweep_trials_run_as_ray_tasks_and_report_to_one_study(ray_cluster, workspace, tiny_bert):
    """`peftops sweep --ray-address`: each trial is a Ray task in a worker process of the
    cluster, reporting its epochs to the study through the journal file; the best trial then
    runs the pipeline here and is the one registered."""
    from flows.sweep import ray_task_runner
    from flows.sweep import sweep as sweep_flow

    config = tiny_config(
        "finance", tiny_bert, "registry.require_beats_baseline=false", "training.epochs=1"
    )
    flow = sweep_flow.with_options(task_runner=ray_task_runner(ray_cluster))
    out = flow(config=config, trials=2, grid=["method.r=4,8"], parallel=2)
    rows = out["trials"]
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"], rows
    pids = {int(r["worker"].rpartition(":")[2]) for r in rows}
    assert os.getpid() not in pids  # trained in Ray's workers, not in this process
    journal = Path(os.environ["PEFTOPS_HOME"]) / ".peftops" / "sweeps"
    assert [p.suffix for p in journal.iterdir()] == [".journal"]
    assert out["summary"].version == "1"
    children = tracking.client().search_runs(
        [tracking.client().get_run(out["mlflow_run_id"]).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{out['mlflow_run_id']}'",
    )
    assert len(children) >= 2
