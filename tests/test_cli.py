"""The `peftops` console script, run for real in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from components import tracking
from conftest import DATA

PEFTOPS = str(Path(sys.executable).parent / "peftops")


@pytest.fixture()
def cli(workspace, prefect_harness):
    """Run `peftops` against the harness's Prefect server and the workspace's MLflow store."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PEFTOPS, *args], capture_output=True, text=True, env=env, cwd=workspace, timeout=600
        )

    return run


def _single_file(tmp_path: Path, mutate=None) -> Path:
    frames = [pd.read_csv(DATA / "finance" / f"{s}.csv") for s in ("train", "validation", "test")]
    frame = pd.concat(frames, ignore_index=True).rename(columns={"text": "msg", "label": "intent"})
    if mutate:
        mutate(frame)
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    return path


FAST = ["--set", "training.epochs=1", "--set", "registry.require_beats_baseline=false"]


def test_custom_task_from_one_file_is_split_trained_and_registered(cli, tmp_path, tiny_bert):
    path = _single_file(tmp_path)
    result = cli(
        "run",
        "custom",
        "--data",
        str(path),
        "--text-column",
        "msg",
        "--label-column",
        "intent",
        "--set",
        f"model.base_model={tiny_bert}",
        *FAST,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "peftops · custom · completed" in result.stdout
    assert "models:/peftops-custom/1" in result.stdout
    assert "@champion moved yes" in result.stdout
    assert "mlflow ui" in result.stdout and "prefect server start" in result.stdout


def test_malformed_data_stops_at_validation_with_a_report_and_no_version(cli, tmp_path, tiny_bert):
    def damage(frame):
        frame.loc[10, "text"] = None
        frame.loc[11, "label"] = "mortgage"

    path = _single_file(tmp_path, damage)
    labels = ",".join(sorted(set(pd.read_csv(path)["label"].dropna()) - {"mortgage"}))
    result = cli(
        "run",
        "custom",
        "--data",
        str(path),
        "--labels",
        labels,
        "--set",
        f"model.base_model={tiny_bert}",
        *FAST,
    )
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert "data validation failed" in result.stderr
    assert "mortgage" in result.stderr and "expect_column_values_to_not_be_null" in result.stderr
    assert "Traceback" not in result.stderr
    assert tracking.client().search_model_versions("name='peftops-custom'") == []


def test_unknown_config_key_is_rejected_by_name(cli):
    result = cli("run", "finance", "--set", "training.epochz=1")
    assert result.returncode == 2
    assert "unknown key 'training.epochz'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_path_is_a_clear_error(cli, tmp_path):
    result = cli("run", "finance", "--data", str(tmp_path / "nope.csv"))
    assert result.returncode == 3
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("sets", "names"),
    [
        (["training.epochs=true"], ["'training.epochs'", "expected a number"]),
        (["data.labels=[a,b,a]"], ["'data.labels'", "repeated: a"]),
        (["selection.strategy=modules", 'selection.modules=["("]'], ["'selection.modules'"]),
    ],
)
def test_config_mistakes_are_refused_before_the_run_naming_the_key(cli, sets, names):
    result = cli("run", "finance", *[x for s in sets for x in ("--set", s)])
    assert result.returncode == 2, result.stderr[-2000:]
    assert all(name in result.stderr for name in names), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_a_selection_the_model_cannot_take_is_a_config_error_without_traceback(cli, tiny_bert):
    result = cli(
        "run",
        "finance",
        "--data",
        str(DATA / "finance"),
        "--set",
        f"model.base_model={tiny_bert}",
        "--set",
        "selection.strategy=modules",
        "--set",
        'selection.modules=["no_such_module"]',
        *FAST,
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "no_such_module" in result.stderr and "selection." in result.stderr
    assert "Traceback" not in result.stderr


def test_a_custom_generation_task_from_one_file(cli, tmp_path, tiny_causal_lm):
    rows = pd.read_json(DATA / "finance-assistant" / "train.jsonl", lines=True).head(120)
    path = tmp_path / "qa.csv"
    rows.rename(columns={"prompt": "question", "response": "answer"}).to_csv(path, index=False)
    result = cli(
        "run",
        "custom",
        "--task",
        "generation",
        "--data",
        str(path),
        "--prompt-column",
        "question",
        "--response-column",
        "answer",
        "--set",
        f"model.base_model={tiny_causal_lm}",
        "--set",
        "generation.max_new_tokens=4",
        "--set",
        "generation.few_shot=1",
        *FAST,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "token F1" in result.stdout and "few-shot" in result.stdout
    version = tracking.client().get_model_version("peftops-custom", "1")
    assert version.tags["task"] == "generation"
    predicted = cli("predict", "custom", "my card is gone")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert predicted.stdout.startswith("> my card is gone")
