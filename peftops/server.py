"""`peftops server`: a local Prefect server with its UI, the MLflow UI on the project's store,
and the served deployments, as three child processes that stop together.

Each child runs in a session of its own, so Ctrl-C reaches only this process, which then stops
the children in order: the deployments first, then the two servers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

# Telemetry and analytics off, for every child (MLflow reads MLFLOW_DISABLE_TELEMETRY; its
# DO_NOT_TRACK check only accepts "true").
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    # no MLflow background job runner (GenAI online scoring / trace archival, unused here): it
    # costs CPU and keeps `mlflow server` from stopping for ~20 s
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


class ServiceError(RuntimeError):
    """A service did not start (port taken, crashed, or not up in time)."""


def _bin(name: str) -> str:
    """A console script of this environment (the venv's `prefect`, `mlflow`, `peftops`)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `port` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **QUIET_ENV}
    env.update(extra or {})
    return env


def start(cmd: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a child in its own session, output to `log`."""
    out = log.open("ab")
    try:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    finally:
        out.close()


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Poll `url` until it answers 2xx; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{proc.args[:3]} exited with {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ServiceError(f"{url} did not answer within {timeout:.0f} s (log: {log})")


def wait_for_deployments(
    api_url: str, names: Sequence[str], proc: subprocess.Popen, log: Path, timeout: float = 300
) -> None:
    """Poll the Prefect API until deployments `names` exist; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    wanted = set(names)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{proc.args[:2]} exited with {proc.returncode}:\n{tail(log)}")
        request = urllib.request.Request(
            f"{api_url}/deployments/filter",
            data=json.dumps({"limit": 200}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                found = {d["name"] for d in json.load(response)}
            if wanted <= found:
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(1)
    raise ServiceError(f"deployments {sorted(wanted)} not registered within {timeout:.0f} s")


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def stop(proc: subprocess.Popen, first: int = signal.SIGINT, grace: float = 20) -> int | None:
    """Stop a child started by `start` and everything it spawned (its process group)."""
    if proc.poll() is None:
        for sig, wait in ((first, grace), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    # the group may outlive its leader (e.g. uvicorn workers); end what is left of it
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _set_handlers(signals: Sequence[int], handler) -> dict:
    """Install `handler` for `signals` (only possible in the main thread); returns the old ones."""
    old = {}
    for sig in signals:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            old[sig] = signal.signal(sig, handler)
    return old


def _interrupt_on(signals: Sequence[int]) -> dict:
    """SIGTERM/SIGHUP (`kill`, a closed terminal) stop the stack like Ctrl-C does."""
    return _set_handlers(signals, _raise_interrupt)


def _ignore(signals: Sequence[int]) -> dict:
    return _set_handlers(signals, signal.SIG_IGN)


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(sig, handler)


def prefect_server_cmd(host: str, port: int) -> list[str]:
    return [_bin("prefect"), "server", "start", "--host", host, "--port", str(port)]


def mlflow_server_cmd(host: str, port: int, backend_uri: str, artifacts: Path) -> list[str]:
    return [
        _bin("mlflow"),
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        artifacts.as_uri(),
    ]


def serve_cmd(schedules: bool, domains: Sequence[str], overrides: Sequence[str]) -> list[str]:
    cmd = [_bin("peftops"), "serve"]
    if not schedules:
        cmd.append("--no-schedules")
    for domain in domains:
        cmd += ["--domain", domain]
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def run_local_stack(
    host: str,
    prefect_port: int,
    mlflow_port: int,
    tracking_uri: str,
    project: Path,
    schedules: bool = True,
    domains: Sequence[str] = ("finance", "healthcare", "finance-assistant", "healthcare-assistant"),
    overrides: Sequence[str] = (),
    echo=print,
) -> int:
    """Start Prefect server + UI, the MLflow UI (when the store is local) and `peftops serve`;
    block until Ctrl-C or until a child dies; stop all of them. Returns an exit code."""
    local_store = tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri
    wanted = [("Prefect", prefect_port)] + ([("MLflow", mlflow_port)] if local_store else [])
    for name, port in wanted:
        if not port_is_free(host, port):
            raise ServiceError(f"port {port} for the {name} server is taken (choose another)")
    logs = project / ".peftops" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    prefect_url = f"http://{host}:{prefect_port}"
    env = quiet_env({"PREFECT_API_URL": f"{prefect_url}/api", "MLFLOW_TRACKING_URI": tracking_uri})
    # (name, process, the signal it stops on fastest): MLflow's uvicorn is quicker on SIGTERM
    children: list[tuple[str, subprocess.Popen, int]] = []
    previous = _interrupt_on((signal.SIGTERM, signal.SIGHUP))
    # Ctrl-C raises KeyboardInterrupt here even when started with SIGINT ignored (`cmd &` in a
    # script); a handled signal is reset to its default in the children, so they stop on it too
    previous.update(_set_handlers((signal.SIGINT,), signal.default_int_handler))
    try:
        log = logs / "prefect-server.log"
        proc = start(prefect_server_cmd(host, prefect_port), log, env)
        children.append(("Prefect server", proc, signal.SIGINT))
        if local_store:
            mlog = logs / "mlflow-server.log"
            artifacts = project / "mlartifacts"
            mproc = start(mlflow_server_cmd(host, mlflow_port, tracking_uri, artifacts), mlog, env)
            children.append(("MLflow server", mproc, signal.SIGTERM))
        wait_for_http(f"{prefect_url}/api/health", proc, log)
        slog = logs / "serve.log"
        sproc = start(serve_cmd(schedules, domains, overrides), slog, env)
        children.append(("deployments", sproc, signal.SIGINT))
        if local_store:
            wait_for_http(f"http://{host}:{mlflow_port}/health", mproc, mlog)
        wait_for_deployments(f"{prefect_url}/api", [f"{d}-retrain" for d in domains], sproc, slog)
        echo(f"Prefect UI  {prefect_url}   (deployments: {prefect_url}/deployments)")
        if local_store:
            echo(f"MLflow UI   http://{host}:{mlflow_port}   (store: {tracking_uri})")
        else:
            echo(f"MLflow      {tracking_uri} (not local: no MLflow UI started)")
        echo(f"serving     {', '.join(f'{d}-retrain' for d in domains)}   (logs: {logs})")
        echo(f"export PREFECT_API_URL={prefect_url}/api   # so `peftops run` reports there too")
        echo("Ctrl-C stops all of it.")
        while True:
            for name, child, _ in children:
                if child.poll() is not None:
                    echo(f"{name} exited with {child.returncode}; stopping the rest (logs: {logs})")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        echo("stopping ...")
        return 0
    finally:
        # stop in order even if Ctrl-C is pressed again; `stop` escalates to SIGKILL itself
        for sig, handler in _ignore((signal.SIGINT, signal.SIGTERM, signal.SIGHUP)).items():
            previous.setdefault(sig, handler)
        try:
            for name, child, first in reversed(children):
                began = time.monotonic()
                stop(child, first)
                echo(f"stopped {name} ({time.monotonic() - began:.0f} s)")
        finally:
            _restore(previous)
