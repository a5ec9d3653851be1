"""One slower test: the real default base model (MiniLM, shipped in a PyPI package), offline."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from components import registry
from components.config import DEFAULT_BASE_MODEL, apply_overrides, load_preset
from conftest import DATA
from flows.pipeline import finance


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_finance_flow_with_minilm_on_a_small_sample(workspace):
    config = apply_overrides(
        load_preset("finance"),
        [
            f"data.path={DATA / 'finance'}",
            "data.max_train_examples=96",
            "validation.min_examples_per_class=5",
            "training.epochs=1",
            "model.max_length=48",
            "registry.min_behaviour_pass=null",  # 96 examples, 1 epoch: not the gate's case
        ],
    )
    assert config.model.base_model == DEFAULT_BASE_MODEL
    summary = finance(config=config)
    # Real embeddings separate the demo intents far above chance (1/8), even from 96 examples.
    assert summary.baseline["accuracy"] > 0.45
    assert summary.metrics["accuracy"] > 0.45
    assert summary.trainable_percent < 1.0
    assert registry.get_alias_version("peftops-finance", "champion") == summary.version
    _served_predictions_are_correct(workspace, config)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _served_predictions_are_correct(workspace, config) -> None:
    """`mlflow models serve` on models:/peftops-finance@champion, offline, answers /invocations
    with labels and scores that match the demo test split."""
    test = pd.read_csv(DATA / "finance" / "test.csv").groupby("label").head(3)
    port = _free_port()
    log = workspace / "serve.log"
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen(
        [
            mlflow_bin,
            "models",
            "serve",
            "-m",
            "models:/peftops-finance@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        # mlflow starts `uvicorn` from PATH, as in an activated venv
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        cwd=workspace,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            pytest.fail(f"mlflow models serve did not come up:\n{log.read_text()[-3000:]}")
        reply = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": [{"text": t} for t in test["text"]]},
            timeout=120,
        )
        assert reply.ok, reply.text
        rows = reply.json()["predictions"]
        assert len(rows) == len(test)
        assert all(0 < r["score"] <= 1 for r in rows)
        correct = sum(r["label"] == t for r, t in zip(rows, test["label"], strict=True))
        assert correct / len(test) > 0.45
        local = registry.load_model("peftops-finance", "champion").predict(test[["text"]])
        assert [r["label"] for r in rows] == local["label"].tolist()
    finally:
        server.terminate()
        server.wait(timeout=30)
