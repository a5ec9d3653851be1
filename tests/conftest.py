"""Shared fixtures: offline, telemetry off, a real Prefect test harness, tiny random models,
and a temporary SQLite MLflow store per test (set through the environment)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before prefect/mlflow/transformers are imported anywhere.
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    DO_NOT_TRACK="1",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    GX_ANALYTICS_ENABLED="false",
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
    MLFLOW_DISABLE_TELEMETRY="true",
    TOKENIZERS_PARALLELISM="false",
)

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import make_tiny_model

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_model("bert", tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_model("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> Path:
    """A tiny random LlamaForCausalLM saved with SmolLM2's tokenizer and chat template."""
    return make_tiny_model("causal_lm", tmp_path_factory.mktemp("tiny-causal-lm"))


@pytest.fixture(scope="session")
def prefect_harness():
    """A real (temporary) Prefect server for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Path:
    """A project folder of its own: MLflow SQLite store, artifacts and checkpoints inside."""
    monkeypatch.setenv("PEFTOPS_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return tmp_path


def tiny_config(domain: str, model: Path, *overrides: str):
    """A domain preset pointed at the repo's demo data and a tiny model, fast settings."""
    from components.config import apply_overrides, load_preset

    base = [
        f"data.path={DATA / domain}",
        f"model.base_model={model}",
        "training.epochs=2",
        "training.batch_size=32",
        "evaluation.batch_size=128",
        # a tiny random model cannot pass a behavioural suite: the suite runs, the gate is
        # off (tests of the gate set it back)
        "registry.min_behaviour_pass=null",
    ]
    return apply_overrides(load_preset(domain), base + list(overrides))
