"""Guards of data validation, on real GE suites and real files (no mocks):

* with the PHI check on, no check echoes PHI (not only the PHI check): summary, saved reports,
  exception text, and through the flow the MLflow error tag and logged reports;
* float label columns match inferred and declared labels (validation and encoding agree);
* a test split overlapping the validation split fails;
* a split made mostly of repeated texts fails (`validation.max_duplicate_share`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from test_validation import (
    IN_SET,
    LABELS,
    LEAKAGE,
    LENGTH,
    PHI,
    clean_splits,
    make_split,
    run,
)

from components import tracking
from components.config import DataConfig, ValidationConfig
from components.data import DataLoadError, load_splits
from components.examples import infer_labels, label_key, to_examples
from components.validation import (
    CheckResult,
    DataValidationError,
    ValidationReport,
    save_report,
)
from conftest import DATA, tiny_config

VALIDATION_LEAKAGE = "expect_column_values_to_not_be_in_set"
UNIQUE = "expect_column_values_to_be_unique"

SSN, EMAIL, PHONE = "123-45-6789", "jane.doe@example.org", "(555) 867-5309"
SECRETS = (SSN, "123-45", EMAIL, "jane.doe", PHONE, "867-5309", "5558675309")


def failure(report: ValidationReport, expectation: str, split: str) -> CheckResult:
    found = [c for c in report.failures() if c.expectation == expectation and c.split == split]
    assert len(found) == 1, report.summary()
    return found[0]


def everything_shown(report: ValidationReport, folder: Path) -> str:
    """All text a person or a log could see: summary, exception, saved files, dict."""
    paths = save_report(report, folder)
    return "\n".join(
        [
            report.summary(),
            str(DataValidationError(report)),
            repr(DataValidationError(report)),
            report.to_markdown(),
            json.dumps(report.to_dict()),
            *(p.read_text() for p in paths),
        ]
    )


# --------------------------------------------------------------------------- 1. PHI


def phi_everywhere() -> dict[str, pd.DataFrame]:
    """PHI reaching the report through checks other than the PHI check."""
    splits = clean_splits()
    private = f"patient ssn {SSN}, write to {EMAIL} please"
    splits["train"].loc[3, "text"] = private
    splits["test"].loc[1, "text"] = "  " + private.upper() + " "  # leaks from train
    phone = f"call me back on {PHONE} about the results"
    splits["validation"].loc[2, "text"] = phone
    splits["test"].loc[5, "text"] = phone  # test overlaps validation
    splits["train"].loc[20, "text"] = "x" * 296 + f" {SSN} and more"  # SSN across the cap
    splits["train"].loc[7, "text"] = 5558675309  # a phone number as a number: wrong type
    splits["validation"].loc[4, "label"] = f"ssn {SSN}"  # outside the label set
    for i in (10, 11, 12, 13):  # 4 of 30 rows repeat one text: over a 10 % limit
        splits["train"].loc[i, "text"] = f"email {EMAIL} for refills"
    return splits


def test_phi_is_redacted_in_every_check_when_the_phi_check_is_on(tmp_path) -> None:
    report = run(phi_everywhere(), check_phi=True, max_text_length=250)
    shown = everything_shown(report, tmp_path / "reports")
    for secret in SECRETS:
        assert secret not in shown, f"{secret!r} echoed:\n{report.summary()}"

    # the non-PHI checks still fail, name their rows and show the redacted text
    leak = failure(report, LEAKAGE, "test")
    assert leak.examples == [
        {"row": 2, "value": "  PATIENT SSN <ssn>, WRITE TO <email> PLEASE ", "train_row": 4}
    ]
    overlap = failure(report, VALIDATION_LEAKAGE, "test")
    assert overlap.examples == [
        {"row": 6, "value": "call me back on <phone> about the results", "validation_row": 3}
    ]
    repeated = failure(report, UNIQUE, "train")
    assert repeated.examples == [{"row": 11, "value": "email <email> for refills", "count": 4}]
    label = failure(report, IN_SET, "validation")
    assert label.examples[0]["value"] == "ssn <ssn>"
    length = failure(report, LENGTH, "train")  # redacted before the 300-character cap
    assert length.examples == [{"row": 21, "value": "x" * 296 + " <ss…", "length": 317}]
    number = [e for c in report.failures() for e in c.examples if e.get("row") == 8]
    assert number and all(e["value"] == "<long digit run>" for e in number)
    assert failure(report, PHI, "train").unexpected_count >= 1


def test_phi_in_a_column_name_is_redacted_too(tmp_path) -> None:
    # a CSV without a header: its first record becomes the column names
    splits = clean_splits()
    splits["test"] = splits["test"].rename(columns={"text": f"My SSN is {SSN}"})
    report = run(splits, check_phi=True)
    assert "required column 'text' is missing" in report.summary()
    assert "<ssn>" in report.summary()
    assert SSN not in everything_shown(report, tmp_path)


def test_without_the_phi_check_texts_are_shown_as_before(tmp_path) -> None:
    report = run(phi_everywhere(), max_text_length=250)  # finance: check_phi off
    assert PHI not in {c.expectation for c in report.checks}
    leak = failure(report, LEAKAGE, "test")
    assert leak.examples[0]["value"] == f"  PATIENT SSN {SSN}, WRITE TO {EMAIL.upper()} PLEASE "
    assert SSN in report.summary() and PHONE in report.summary()
    assert SSN in everything_shown(report, tmp_path)


def test_flow_leaks_no_phi_into_the_error_tag_or_logged_reports(
    prefect_harness, workspace, tiny_bert, tmp_path
) -> None:
    from flows.pipeline import healthcare

    folder = tmp_path / "data"
    shutil.copytree(DATA / "healthcare", folder)
    frames = {s: pd.read_csv(folder / f"{s}.csv", dtype=str) for s in ("train", "test")}
    private = f"My SSN is {SSN} and my email {EMAIL}, please update my records."
    frames["train"].loc[4, "text"] = private
    frames["test"].loc[2, "text"] = private  # train/test leakage of a PHI text
    for split, frame in frames.items():
        frame.to_csv(folder / f"{split}.csv", index=False)

    config = tiny_config("healthcare", tiny_bert, f"data.path={folder}")
    with pytest.raises(DataValidationError) as err:
        healthcare(config=config)
    message = str(err.value)
    assert "also occurs in the training split" in message and "train_row=5" in message
    client = tracking.client()
    experiment = client.get_experiment_by_name(config.registry.experiment)
    (run_,) = client.search_runs([experiment.experiment_id])
    assert "data validation failed" in run_.data.tags.get("error", "")
    out = Path(client.download_artifacts(run_.info.run_id, "validation", str(tmp_path / "dl")))
    logged = "\n".join(p.read_text() for p in sorted(out.iterdir()))
    assert "train_row" in logged
    for secret in (SSN, EMAIL):
        assert secret not in message
        assert secret not in run_.data.tags.get("error", "")
        assert secret not in logged


# --------------------------------------------------------------------------- 2. float labels


def test_label_key_is_one_rule() -> None:
    import numpy as np

    assert {label_key(v) for v in (1, 1.0, "1", np.float32(1), np.int64(1))} == {"1"}
    assert label_key(1.5) == "1.5" and label_key(" a ") == " a "
    assert label_key(None) is None and label_key(float("nan")) is None


def test_float_label_column_from_parquet_validates_and_encodes(tmp_path) -> None:
    labels_of = {"train": 24, "validation": 8, "test": 8}
    for split, n in labels_of.items():
        frame = make_split(n, split)
        frame["label"] = [float(i % 8) for i in range(n)]  # 0.0 .. 7.0, as pandas upcasts
        frame.to_parquet(tmp_path / f"{split}.parquet")
    raw = load_splits(DataConfig(path=str(tmp_path)), tmp_path)
    assert raw.frames["train"]["label"].dtype == float

    inferred = infer_labels(raw.frames["train"], "label", [])
    assert inferred == [str(i) for i in range(8)]
    declared = [str(i) for i in range(8)]
    for labels in (inferred, declared):
        report = run(raw.frames, labels=labels, min_examples_per_class=3)
        assert report.success, report.summary()
        examples = to_examples(raw.frames, "text", "label", labels)
        assert examples.labels == declared
        assert examples.train.label_ids == [i % 8 for i in range(24)]
        assert examples.test.label_ids == [i % 8 for i in range(8)]


def test_to_examples_names_split_and_row_of_an_unknown_label() -> None:
    splits = clean_splits()
    splits["test"].loc[4, "label"] = "maybe"
    with pytest.raises(DataLoadError, match=r"split 'test'.*row 4: 'maybe'"):
        to_examples(splits, "text", "label", LABELS)


# --------------------------------------------------------------------------- 3. validation/test


def test_test_split_overlapping_validation_fails() -> None:
    splits = clean_splits()
    splits["test"] = splits["validation"].copy()
    splits["test"].loc[4, "text"] = " " + splits["test"].loc[4, "text"].upper() + "  "
    report = run(splits)
    check = failure(report, VALIDATION_LEAKAGE, "test")
    assert check.column == "text"
    assert check.unexpected_count == 9 and check.element_count == 9
    assert [e["row"] for e in check.examples] == [1, 2, 3, 4, 5]
    assert [e["validation_row"] for e in check.examples] == [1, 2, 3, 4, 5]
    assert check.examples[0]["value"] == "validation example text number 0"
    assert "also occurs in the validation split" in check.description
    assert "[test] expect_column_values_to_not_be_in_set column 'text'" in report.summary()
    assert [c.expectation for c in report.failures()] == [VALIDATION_LEAKAGE]
    # only the test split is compared with validation; off with the other leakage checks
    assert VALIDATION_LEAKAGE not in {c.expectation for c in report.checks if c.split != "test"}
    assert run(splits, check_leakage=False).success


def test_validation_overlap_check_needs_a_validation_split_with_texts() -> None:
    splits = clean_splits()
    del splits["validation"]
    assert VALIDATION_LEAKAGE not in {c.expectation for c in run(splits).checks}
    splits = clean_splits()
    splits["validation"] = splits["validation"].rename(columns={"text": "body"})
    assert VALIDATION_LEAKAGE not in {c.expectation for c in run(splits).checks}
    assert run(clean_splits()).success


# --------------------------------------------------------------------------- 4. duplicates


def test_a_split_of_repeated_texts_fails() -> None:
    splits = clean_splits()
    repeated = make_split(20, "often")  # 20 texts, 30 copies each
    splits["train"] = pd.concat([splits["train"], *[repeated] * 30], ignore_index=True)
    report = run(splits)
    check = failure(report, UNIQUE, "train")
    assert check.column == "text"
    assert check.unexpected_count == 600 and check.element_count == 630
    assert check.examples[0] == {"row": 31, "value": "often example text number 0", "count": 30}
    assert [e["row"] for e in check.examples] == [31, 32, 33, 34, 35]
    assert "95.24% of rows hold a text" in check.description
    assert "20 such texts; the most repeated one 30 times" in check.description
    assert "at most 10% allowed (validation.max_duplicate_share)" in check.description
    assert "[train] expect_column_values_to_be_unique column 'text'" in report.summary()
    assert [c.expectation for c in report.failures()] == [UNIQUE]
    assert run(splits, max_duplicate_share=1).success  # 1: the check is off
    assert UNIQUE not in {c.expectation for c in run(splits, max_duplicate_share=1).checks}


def test_duplicate_share_threshold_case_and_blanks() -> None:
    splits = clean_splits()
    splits["test"].loc[3, "text"] = "  TEST example   text number 0 "  # same as row 1
    report = run(splits)  # 2 of 9 rows (22 %) hold a repeated text
    check = failure(report, UNIQUE, "test")
    assert check.examples == [{"row": 1, "value": "test example text number 0", "count": 2}]
    assert run(splits, max_duplicate_share=0.25).success
    assert not run(splits, max_duplicate_share=0.2).success

    splits = clean_splits()
    splits["train"].loc[[0, 1], "text"] = splits["train"].loc[2, "text"]  # 3 of 30: 10 %
    assert run(splits).success  # at the limit passes
    assert not run(splits, max_duplicate_share=0).success

    splits = clean_splits()
    splits["train"].loc[[0, 1, 2, 3, 4], "text"] = "   "  # blank: the length check's, not this
    report = run(splits)
    assert UNIQUE not in {c.expectation for c in report.failures()}


def test_duplicate_share_is_a_described_bounded_form_field() -> None:
    field = ValidationConfig.model_fields["max_duplicate_share"]
    assert field.default == 0.1 and field.description
    assert "occurs more than once" in field.description
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError, match="max_duplicate_share"):
            ValidationConfig(max_duplicate_share=bad)
