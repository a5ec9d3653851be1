"""Production services, as far as they run here: Debian's PostgreSQL (a throwaway cluster on a
free port), an MLflow tracking server with its store on it and proxied artifacts, and a Prefect
server on it; the finance flow runs against both, and the results are checked through their
APIs and in the PostgreSQL databases themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from components.config import load_preset
from conftest import DATA
from peftops.server import (
    free_port,
    mlflow_server_cmd,
    prefect_server_cmd,
    quiet_env,
    start,
    stop,
    tail,
    wait_for_http,
)

pytestmark = pytest.mark.services

NAME = "peftops-finance"
PG_USER = "peftops"


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql package")
    pytest.skip("needs Debian's postgresql package (apt-get install postgresql); CI installs it")


@pytest.fixture()
def postgres():
    """A PostgreSQL cluster of its own, in a temporary folder, listening on 127.0.0.1 only
    (trust authentication: nothing to leak), with the `mlflow` and `prefect` databases.
    initdb refuses to run as root, so as root it runs as the `postgres` system user."""
    bin_dir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="peftops-pg-"))
    data = root / "data"
    as_user: dict = {}
    if os.geteuid() == 0:
        as_user = {"user": "postgres", "group": "postgres"}
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
        **as_user,
    )
    log = root / "postgres.log"
    server = subprocess.Popen(
        [
            bin_dir / "postgres",
            "-D",
            data,
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={root}",
            "-c",
            "fsync=off",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
        start_new_session=True,
        **as_user,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            [bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        ).returncode:
            assert server.poll() is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.3)
        for db in ("mlflow", "prefect"):
            subprocess.run(
                [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, db],
                check=True,
                capture_output=True,
            )
        yield f"{PG_USER}@127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def services(postgres, tmp_path):
    """MLflow tracking server (PostgreSQL store, artifacts proxied to a folder) and a Prefect
    server (PostgreSQL database), started side by side. The MLflow URI names its driver:
    SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, not psycopg2."""
    mlflow_port, prefect_port = free_port(), free_port()
    env = quiet_env(
        {
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{postgres}/prefect",
        }
    )
    env.pop("PREFECT_API_URL", None)
    mlog, plog = tmp_path / "mlflow.log", tmp_path / "prefect.log"
    mlflow_cmd = mlflow_server_cmd(
        "127.0.0.1", mlflow_port, f"postgresql+psycopg2://{postgres}/mlflow", tmp_path / "artifacts"
    )
    mlflow_server = start(mlflow_cmd, mlog, env)
    prefect_server = start(prefect_server_cmd("127.0.0.1", prefect_port), plog, env)
    try:
        wait_for_http(f"http://127.0.0.1:{prefect_port}/api/health", prefect_server, plog, 300)
        wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", mlflow_server, mlog, 300)
        yield {
            "mlflow": f"http://127.0.0.1:{mlflow_port}",
            "prefect": f"http://127.0.0.1:{prefect_port}/api",
            "postgres": postgres,
        }
    finally:
        # throwaway servers: no graceful shutdown needed, SIGTERM ends both within seconds
        stop(prefect_server, signal.SIGTERM)
        stop(mlflow_server, signal.SIGTERM)


def _query(postgres: str, db: str, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(f"postgresql://{postgres}/{db}") as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_finance_flow_against_postgresql_backed_mlflow_and_prefect(services, tmp_path, tiny_bert):
    from mlflow import MlflowClient
    from prefect.client.orchestration import SyncPrefectClient

    # `peftops run`, pointed at the servers by the standard variables, as a team would use it
    # (a process of its own: Prefect's log/event workers are per-process singletons)
    env = quiet_env(
        {
            "PEFTOPS_HOME": str(tmp_path),
            "PREFECT_API_URL": services["prefect"],
            "MLFLOW_TRACKING_URI": services["mlflow"],
            "HF_HUB_OFFLINE": "1",
        }
    )
    env.pop("MLFLOW_REGISTRY_URI", None)
    overrides = [
        f"model.base_model={tiny_bert}",
        "data.max_train_examples=160",
        "validation.min_examples_per_class=5",
        "training.epochs=1",
        "training.batch_size=32",
        "evaluation.batch_size=128",
        "registry.require_beats_baseline=false",
        "registry.min_behaviour_pass=null",  # a tiny random model: no behavioural gate
    ]
    cmd = [str(Path(sys.executable).parent / "peftops"), "run", "finance"]
    cmd += ["--data", str(DATA / "finance"), "--summary-json", str(tmp_path / "summary.json")]
    for item in overrides:
        cmd += ["--set", item]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["champion_moved"]
    assert summary["tracking_uri"] == services["mlflow"]
    labels = load_preset("finance").data.labels

    # the registered version, through the MLflow tracking server
    client = MlflowClient(tracking_uri=services["mlflow"])
    version = client.get_model_version_by_alias(NAME, "champion")
    assert str(version.version) == str(summary["version"]) == "1"
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    assert float(run.data.metrics["test.macro_f1"]) == pytest.approx(summary["metrics"]["macro_f1"])
    # the champion loads back through the server (artifacts downloaded via its proxy)
    texts = ["my card was stolen yesterday", "please cancel my direct debit"]
    predict = [str(Path(sys.executable).parent / "peftops"), "predict", "finance", *texts]
    done = subprocess.run(predict, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.split("\t")[0] in labels for line in lines)
    assert (tmp_path / "artifacts").is_dir() and any((tmp_path / "artifacts").rglob("MLmodel"))

    # the flow run, through the Prefect server's API
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    with SyncPrefectClient(api=services["prefect"]) as prefect:
        flow_run = prefect.read_flow_run(flow_run_id)
        flow = prefect.read_flow(flow_run.flow_id)
        task_runs = prefect.read_task_runs()
    assert flow.name == "peftops-finance"
    assert flow_run.state.is_completed()
    assert {"train_adapter", "register_model"} <= {t.name.rsplit("-", 1)[0] for t in task_runs}

    # ... and both really live in PostgreSQL
    assert _query(services["postgres"], "mlflow", "select name, version from model_versions") == [
        (NAME, 1)
    ]
    rows = _query(services["postgres"], "prefect", "select id::text, state_type from flow_run")
    assert (flow_run_id, "COMPLETED") in rows
