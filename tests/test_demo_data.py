"""The DVC-versioned demo data: in sync with data.dvc, big enough, and valid by its own suite."""

import subprocess
import sys

import pytest

from components.config import load_preset
from components.data import load_splits
from components.validation import validate_splits
from conftest import REPO


def test_workspace_data_matches_data_dvc():
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "data.dvc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in out.stdout.lower() or out.stdout.strip() == "", out.stdout


@pytest.mark.parametrize("domain", ["finance", "healthcare"])
def test_demo_dataset_is_large_varied_and_passes_its_suite(domain):
    config = load_preset(domain)
    raw = load_splits(config.data, REPO)
    assert not raw.was_split
    assert raw.version.dvc_md5 and raw.version.dvc_md5.endswith(".dir")
    total = sum(len(f) for f in raw.frames.values())
    assert total >= 600
    labels = set(raw.frames["train"][config.data.label_column])
    assert labels == set(config.data.labels) and len(labels) >= 6
    report = validate_splits(
        raw.frames,
        text_column=config.data.text_column,
        label_column=config.data.label_column,
        labels=config.data.labels,
        config=config.validation,
        suite_name=domain,
    )
    assert report.success, report.summary()
    # repeated texts and validation/test overlap are checked too, and far from their limits
    ran = {(c.split, c.expectation) for c in report.checks}
    unique, overlap = "expect_column_values_to_be_unique", "expect_column_values_to_not_be_in_set"
    assert {("train", unique), ("validation", unique), ("test", unique)} <= ran
    assert ("test", overlap) in ran
    for frame in raw.frames.values():
        norm = frame["text"].str.strip().str.replace(r"\s+", " ", regex=True).str.lower()
        assert norm.duplicated(keep=False).mean() <= config.validation.max_duplicate_share / 2
    if domain == "healthcare":
        assert any("PHI" in c.description or "phi" in c.expectation for c in report.checks)
