"""Authentication, as `infra/` runs it. MLflow: a real `mlflow server --app-name basic-auth`
using `infra/mlflow-auth.ini`, the admin's credentials from the environment only. Requests
without (or with wrong) credentials are refused with 401; peftops, given
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, tracks and registers as usual. Prefect:
a real `prefect server start` with PREFECT_SERVER_API_AUTH_STRING refuses clients without
PREFECT_API_AUTH_STRING and runs flows for clients with it."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from mlflow.exceptions import MlflowException
from mlflow_servers import MlflowServer

from components import registry, tracking
from conftest import REPO

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"


@pytest.fixture()
def auth_server(tmp_path, workspace):
    folder = tmp_path / "mlflow-auth"
    folder.mkdir()
    ini = (REPO / "infra" / "mlflow-auth.ini").read_text()
    assert not [line for line in ini.splitlines() if line.startswith("admin_password")]
    ini = ini.replace("sqlite:////var/lib/mlflow-auth/", f"sqlite:///{folder}/")
    (folder / "auth.ini").write_text(ini)
    password = secrets.token_urlsafe(16)  # made up here: no credentials in the repository
    srv = MlflowServer(
        folder,
        extra_args=("--app-name", "basic-auth"),
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"),
            "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
            "MLFLOW_AUTH_ADMIN_PASSWORD": password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        },
    ).start()
    srv.password = password
    yield srv
    srv.stop()


def _request(url: str, auth: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (or, with `body`, a JSON POST), with basic auth "user:pass"."""
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def _get(url: str, user: str | None = None, password: str | None = None) -> int:
    return _request(url, None if user is None else f"{user}:{password}")[0]


def test_unauthenticated_requests_are_refused_and_authenticated_ones_work(auth_server, monkeypatch):
    url = auth_server.uri + SEARCH
    assert _get(url) == 401
    assert _get(url, "admin", "wrong-password") == 401
    assert _get(url, "admin", auth_server.password) == 200

    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server.uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(MlflowException, match=r"401|not authenticated"):
        tracking.ensure_experiment("peftops-auth")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth_server.password)
    run_id = tracking.client().create_run(tracking.ensure_experiment("peftops-auth")).info.run_id
    tracking.log_metrics(run_id, {"test.macro_f1": 0.5})
    assert tracking.client().get_run(run_id).data.metrics["test.macro_f1"] == 0.5
    tracking.client().create_registered_model("peftops-auth")
    assert registry.get_alias_version("peftops-auth", registry.CHAMPION) is None
    assert _get(url, "admin", auth_server.password) == 200


# --------------------------------------------------------------------------- Prefect API auth

FLOW_SCRIPT = """
from prefect import flow

@flow(name="peftops-auth-check")
def check() -> int:
    return 42

print("result", check())
"""


def _prefect_status(url: str, auth: str | None) -> int:
    return _request(url, auth, b"{}")[0]


def _client_run(tmp_path, api_url: str, auth: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(tmp_path / "client-home"))
    if auth is not None:
        env["PREFECT_API_AUTH_STRING"] = auth
    return subprocess.run(
        [sys.executable, "-c", FLOW_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.long
def test_prefect_server_with_api_auth_refuses_anonymous_clients(tmp_path):
    """The server as infra/ configures it with PREFECT_SERVER_API_AUTH_STRING: the API answers
    only requests carrying that user:password; a client with PREFECT_API_AUTH_STRING runs a
    flow on it, one without is refused; health probes stay open."""
    from peftops.bench.speed.orchestration import prefect_server

    auth = f"peftops:{secrets.token_urlsafe(12)}"  # made up here: nothing in the repository
    server_env = {"PREFECT_SERVER_API_AUTH_STRING": auth}
    with prefect_server(tmp_path / "server-home", tmp_path / "server.log", server_env) as (
        api_url,
        _,
    ):
        flow_runs = f"{api_url}/flow_runs/filter"
        assert _prefect_status(flow_runs, None) == 401
        assert _prefect_status(flow_runs, "peftops:wrong") == 401
        assert _prefect_status(flow_runs, auth) == 200
        with urllib.request.urlopen(f"{api_url}/health", timeout=30) as response:
            assert response.status == 200  # probes (Kubernetes) need no credentials

        refused = _client_run(tmp_path, api_url, None)
        assert refused.returncode != 0
        assert "401" in refused.stderr + refused.stdout

        ran = _client_run(tmp_path, api_url, auth)
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert "result 42" in ran.stdout

        completed = b'{"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}'
        status, body = _request(flow_runs, auth, completed)
        assert status == 200
        runs = json.loads(body)
        assert len(runs) == 1
