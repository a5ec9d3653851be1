"""The DVC-versioned demo data: in sync with data.dvc, big enough, and valid by its own suite."""

import importlib.util
import json
import re
import statistics
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


def _generator():
    path = REPO / "scripts" / "make_demo_data.py"
    spec = importlib.util.spec_from_file_location("make_demo_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The response contract of the instruction-tuning demo data: keys in order, closed value sets.
ASSISTANT_FIELDS = {
    "finance-assistant": {
        "intent": {
            "lost_or_stolen_card", "card_declined", "unrecognised_transaction", "transfer_delay",
            "refund_dispute", "login_issue", "cancel_recurring_payment", "fees_and_rates",
            "update_details", "complaint",
        },
        "urgency": {"low", "medium", "high"},
        "action": {
            "block_card", "open_fraud_case", "check_card_status", "trace_transfer",
            "start_dispute", "reset_access", "cancel_payment", "send_information",
            "update_profile", "escalate_to_agent",
        },
    },
    "healthcare-assistant": {
        "department": {
            "cardiology", "respiratory", "gastroenterology", "neurology", "dermatology",
            "musculoskeletal", "mental_health", "general_practice",
        },
        "urgency": {"routine", "soon", "urgent"},
        "red_flag": {True, False},
    },
}  # fmt: skip


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", sorted(ASSISTANT_FIELDS))
def test_assistant_data_is_big_enough_well_formed_and_closed(name):
    fields = ASSISTANT_FIELDS[name]
    assert {k: set(v) for k, v in _generator().load_spec(name)["fields"].items()} == fields
    splits = {
        s: _read_jsonl(REPO / "data" / name / f"{s}.jsonl") for s in ("train", "validation", "test")
    }
    assert len(splits["train"]) >= 400
    assert 50 <= len(splits["validation"]) <= 75 and 65 <= len(splits["test"]) <= 95
    seen = {}
    for split, rows in splits.items():
        for row in rows:
            assert list(row) == ["prompt", "response"]
            answer = json.loads(row["response"])
            # compact, keys in the contract's order, values from the closed sets only
            assert row["response"] == json.dumps(answer, separators=(", ", ": "))
            assert list(answer) == list(fields)
            assert all(answer[k] in fields[k] for k in fields), row
            key = " ".join(re.sub(r"[^a-z0-9]+", " ", row["prompt"].lower()).split())
            assert seen.setdefault(key, split) == split, f"in {seen[key]} and {split}: {row}"
        words = [len(row["prompt"].split()) for row in rows]
        assert max(words) <= 60 and 12 <= statistics.median(words) <= 35
    for split in ("train", "test"):  # every value of every field is learned and tested
        for k, values in fields.items():
            assert {json.loads(r["response"])[k] for r in splits[split]} == values, (split, k)


def test_healthcare_assistant_prompts_carry_no_phi_like_text():
    patterns = _generator().load_spec("healthcare-assistant")["reject_patterns"]
    assert len(patterns) >= 10
    for split in ("train", "validation", "test"):
        for row in _read_jsonl(REPO / "data" / "healthcare-assistant" / f"{split}.jsonl"):
            assert not any(re.search(p, row["prompt"], re.IGNORECASE) for p in patterns), row


def test_generator_is_deterministic_and_reproduces_the_tracked_data(tmp_path):
    generator = _generator()
    for out in ("a", "b"):
        generator.main(["--out", str(tmp_path / out), "--seed", "13"])
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(files) == 13
    for rel in files:
        made = (tmp_path / "a" / rel).read_bytes()
        assert made == (tmp_path / "b" / rel).read_bytes(), rel
        assert made == (REPO / "data" / rel).read_bytes(), f"data/{rel} differs from the generator"
