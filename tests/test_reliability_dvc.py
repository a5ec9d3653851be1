"""DVC workspace drift, with a real temporary git + DVC project: data that differs from what
`data.dvc` records (or a `data.dvc` not committed to git) is refused before training, with a
message saying how to version it; data outside DVC is read as before."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.config import DataConfig
from components.data import DataLoadError, load_splits
from conftest import DATA

DVC = str(Path(sys.executable).parent / "dvc")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _sh(cwd: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@pytest.fixture()
def project(tmp_path) -> Path:
    """git + DVC project with `data/finance` tracked by `data.dvc`, all committed."""
    root = tmp_path / "project"
    shutil.copytree(DATA / "finance", root / "data" / "finance")
    _sh(root, "git", "init", "-q")
    _sh(root, DVC, "init", "-q")
    _sh(root, DVC, "config", "core.analytics", "false")
    _sh(root, DVC, "add", "-q", "data")
    _sh(root, "git", "add", "-A")
    _sh(root, "git", "commit", "-q", "-m", "data v1")
    return root


def _load(root: Path, path: str = "data/finance"):
    return load_splits(DataConfig(path=path, labels=[]), root)


def test_modified_uncommitted_dvc_data_is_refused_with_how_to_version_it(project):
    clean = _load(project)
    assert clean.version.dvc_md5 and clean.version.dvc_md5.endswith(".dir")

    train = project / "data" / "finance" / "train.csv"
    original = train.read_text()
    train.write_text(original + "my card vanished at the airport,card_lost_or_stolen\n")
    with pytest.raises(DataLoadError) as err:
        _load(project)
    message = str(err.value)
    assert "differs from what data.dvc records" in message
    assert "modified: data/finance/train.csv" in message
    assert "dvc add data && git add data.dvc && git commit" in message
    assert "dvc checkout data.dvc" in message

    train.write_text(original)  # back to the recorded content
    assert _load(project).version.dvc_md5 == clean.version.dvc_md5
    # a new file in the tracked folder is a change too
    (project / "data" / "finance" / "extra.csv").write_text("text,label\n")
    with pytest.raises(DataLoadError, match=r"added: data/finance/extra\.csv"):
        _load(project)
    (project / "data" / "finance" / "extra.csv").unlink()

    # `dvc add` without committing data.dvc: still not a version anyone can check out
    train.write_text(train.read_text() + "my card vanished at the airport,card_lost_or_stolen\n")
    _sh(project, DVC, "add", "-q", "data")
    with pytest.raises(DataLoadError, match=r"not committed to git.*git add data\.dvc"):
        _load(project)

    # versioned and committed: accepted, under a new data version
    _sh(project, "git", "commit", "-q", "-am", "data v2")
    versioned = _load(project)
    assert versioned.version.dvc_md5 != clean.version.dvc_md5
    assert len(versioned.frames["train"]) == len(clean.frames["train"]) + 1


def test_data_outside_dvc_is_not_checked(tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(DATA / "finance", plain)
    raw = _load(tmp_path, str(plain))
    assert raw.version.dvc_md5 is None and len(raw.frames["train"]) > 0


@pytest.mark.usefixtures("prefect_harness")
def test_the_cli_refuses_a_drifted_workspace_before_training(project, tiny_bert, monkeypatch):
    from peftops.cli import app

    monkeypatch.setenv("PEFTOPS_HOME", str(project))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    train = project / "data" / "finance" / "train.csv"
    train.write_text(train.read_text().replace("card", "kard", 1))
    result = CliRunner().invoke(app, ["run", "finance", "--set", f"model.base_model={tiny_bert}"])
    assert result.exit_code == 3, result.output
    assert "differs from what data.dvc records" in result.output
    assert "dvc add data && git add data.dvc" in result.output
    assert "Traceback" not in result.output
    assert not (project / ".peftops" / "runs").exists()  # nothing trained
