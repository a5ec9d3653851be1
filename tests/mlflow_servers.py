"""A real `mlflow server` in a subprocess (SQLite backend, local artifact folder, free port)
that tests can stop (SIGKILL, like a crash) and start again on the same port and store."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MLFLOW = str(Path(sys.executable).parent / "mlflow")
_TEMPLATE: dict[str, Path] = {}  # a freshly migrated store, copied instead of migrating again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, folder: Path, extra_args: tuple[str, ...] = (), env: dict | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.db = self.folder / "mlflow.db"
        self.extra_args = extra_args
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = self.folder / "server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 300) -> MlflowServer:
        template = _TEMPLATE.get("db")
        fresh = not self.db.exists()
        if fresh and template is not None:
            shutil.copy(template, self.db)
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            **self.env,
        }
        cmd = [
            MLFLOW,
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.db}",
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            *self.extra_args,
        ]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills all of it
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-3000:]}")
        if fresh and "db" not in _TEMPLATE:
            copy = Path(os.environ.get("TMPDIR", "/tmp")) / f"peftops-mlflow-{os.getpid()}.db"
            shutil.copy(self.db, copy)
            _TEMPLATE["db"] = copy
            atexit.register(copy.unlink, missing_ok=True)
        return self

    def stop(self) -> None:
        """SIGKILL the server's whole process group (a crash, not a shutdown)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
