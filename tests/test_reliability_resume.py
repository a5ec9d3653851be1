"""Kill and resume, for real: `peftops run` in a subprocess is SIGKILLed after its first epoch
checkpoint; the same command run again resumes from that checkpoint and ends with the same
model and metrics as a run that was never interrupted.

Tolerance (also stated in docs/reliability.md): test accuracy and macro-F1 equal exactly,
per-epoch losses within a relative 1e-6, final weights within an absolute 1e-6.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import DATA, tiny_config
from flows.pipeline import finance

EPOCHS = 3
PEFTOPS = str(Path(sys.executable).parent / "peftops")
SETTINGS = (
    f"training.epochs={EPOCHS}",
    "training.batch_size=16",
    "data.max_train_examples=96",
    "validation.min_examples_per_class=5",
    "evaluation.compare_champion=false",
    "evaluation.batch_size=128",
    "registry.require_beats_baseline=false",
)


def _command(tiny_bert: Path, summary: Path) -> list[str]:
    args = [PEFTOPS, "run", "finance", "--data", str(DATA / "finance")]
    for s in (f"model.base_model={tiny_bert}", *SETTINGS):
        args += ["--set", s]
    return [*args, "--summary-json", str(summary)]


def _env(home: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env.update(
        PEFTOPS_HOME=str(home),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        PREFECT_API_URL=str(PREFECT_API_URL.value()),  # the session's test server
    )
    env.pop("MLFLOW_REGISTRY_URI", None)
    return env


def _run(tiny_bert: Path, home: Path, summary: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        _command(tiny_bert, summary),
        env=_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _checkpoints(home: Path) -> list[Path]:
    """Complete checkpoints (`epoch-N/` with its state.json) of the one training job."""
    found = home.glob(".peftops/runs/*/checkpoints/epoch-*")
    complete = [p for p in found if (p / "state.json").exists()]
    return sorted(complete, key=lambda p: int(p.name.split("-")[1]))


def _history(home: Path) -> list[dict]:
    return json.loads((_checkpoints(home)[-1] / "state.json").read_text())["history"]


def _bundle_tensors(home: Path) -> dict:
    (bundle,) = home.glob(".peftops/runs/*/bundle")
    tensors = load_file(str(bundle / "head.safetensors"))
    adapter = load_file(str(bundle / "adapter" / "adapter_model.safetensors"))
    return {**{f"head.{k}": v for k, v in tensors.items()}, **adapter}


@pytest.mark.long
@pytest.mark.usefixtures("prefect_harness")
def test_sigkilled_training_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(
    workspace, tiny_bert, tmp_path
):
    # the reference: the same config, never interrupted (in this process, to save a start-up)
    whole_home, killed_home = workspace, tmp_path / "killed"
    killed_home.mkdir()
    whole = finance(config=tiny_config("finance", tiny_bert, *SETTINGS)).to_dict()

    # the same command again, SIGKILLed as soon as its first epoch checkpoint is complete
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(
        _command(tiny_bert, tmp_path / "killed.json"),
        env=_env(killed_home),
        cwd=killed_home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 600
    while not _checkpoints(killed_home) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    log.close()
    assert proc.returncode == -signal.SIGKILL
    survived = _checkpoints(killed_home)
    assert 1 <= len(survived) < EPOCHS, "the kill must land mid-training"
    assert not (tmp_path / "killed.json").exists()  # it really died before finishing
    kept = {p: (p / "trainable.safetensors").read_bytes() for p in survived}
    stamps = {p: (p / "state.json").stat().st_mtime_ns for p in survived}

    # the same command once more: it resumes from the last complete checkpoint
    done = _run(tiny_bert, killed_home, tmp_path / "resumed.json")
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    k = len(survived)
    assert f"resumed from checkpoint epoch {k} of {EPOCHS}" in done.stdout + done.stderr
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{killed_home / 'mlflow.db'}")
    run = client.get_run(resumed["mlflow_run_id"])
    assert run.data.tags["training.resumed_from_epoch"] == str(k)
    for p in survived:  # the epochs before the kill were not trained again
        assert (p / "state.json").stat().st_mtime_ns == stamps[p]
        assert (p / "trainable.safetensors").read_bytes() == kept[p]
    assert len(_checkpoints(killed_home)) == EPOCHS

    # ... and ends where the uninterrupted run ended
    for key in ("accuracy", "macro_f1"):
        assert resumed["metrics"][key] == whole["metrics"][key]
    for a, b in zip(_history(whole_home), _history(killed_home), strict=True):
        assert a["epoch"] == b["epoch"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-6)
        assert b["val_accuracy"] == a["val_accuracy"]
    ta, tb = _bundle_tensors(whole_home), _bundle_tensors(killed_home)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert (ta[name] - tb[name]).abs().max().item() <= 1e-6, name
    # the registry holds one model per finished run, none from the killed attempt
    versions = client.search_model_versions("name='peftops-finance'")
    assert [v.run_id for v in versions] == [resumed["mlflow_run_id"]]


def test_adalora_resume_restores_its_rank_allocator_and_matches_an_uninterrupted_run(
    tiny_bert, tmp_path
):
    """AdaLoRA's importance estimates and rank pattern are training state too: resuming after
    epoch 1 (mid rank pruning) ends with exactly the weights of an uninterrupted run."""
    import shutil

    from components.config import apply_overrides, load_preset
    from components.selection import run_selection
    from components.training import train_classifier
    from toy_data import LABELS, toy_split

    config = apply_overrides(
        load_preset("custom"),
        [
            f"model.base_model={tiny_bert}",
            "model.head_init=random",
            "training.epochs=3",
            "training.batch_size=8",
            "training.learning_rate=0.01",
            "training.head_learning_rate=0.05",
            f"data.labels={json.dumps(LABELS)}",
            "method.name=adalora",
            "method.r=8",
            "method.target_r=4",
        ],
    )
    train, val = toy_split(64, 0), toy_split(16, 1)
    selection = run_selection(config, train, len(LABELS))
    full = train_classifier(config, selection, train, val, LABELS, tmp_path / "a")
    first = tmp_path / "a" / "checkpoints" / "epoch-1"
    assert (first / "allocator.safetensors").is_file()
    shutil.copytree(first, tmp_path / "b" / "checkpoints" / "epoch-1")
    resumed = train_classifier(config, selection, train, val, LABELS, tmp_path / "b")
    assert resumed.resumed_from_epoch == 1
    for a, b in zip(full.history, resumed.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
    wa = load_file(str(tmp_path / "a" / "bundle" / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "bundle" / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert wa[name].shape == wb[name].shape
        if wa[name].numel():
            assert (wa[name] - wb[name]).abs().max().item() <= 1e-6, name
