"""The Great Expectations data-validation component, run for real on small frames."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pandas as pd
import pytest

from components.config import ValidationConfig
from components.validation import (
    CheckResult,
    DataValidationError,
    ValidationReport,
    save_report,
    validate_splits,
)

LABELS = ["neg", "pos", "neu"]

IN_SET = "expect_column_values_to_be_in_set"
NOT_NULL = "expect_column_values_to_not_be_null"
OF_TYPE = "expect_column_values_to_be_of_type"
LENGTH = "expect_column_value_lengths_to_be_between"
EXISTS = "expect_column_to_exist"
ROWS = "expect_table_row_count_to_be_between"
DISTINCT = "expect_column_unique_value_count_to_be_between"
CONTAINS = "expect_column_distinct_values_to_contain_set"
CLASS_SIZE = "expect_column_values_to_be_between"
LEAKAGE = "expect_column_values_to_be_null"
PHI = "expect_column_values_to_not_match_regex_list"


def make_split(n: int, name: str, labels: list[str] = LABELS, start: int = 0) -> pd.DataFrame:
    """`n` clean rows with distinct texts, labels cycling through `labels`, object columns."""
    index = pd.RangeIndex(start, start + n)
    return pd.DataFrame(
        {
            "id": list(index),
            "text": [f"{name} example text number {i}" for i in index],
            "label": [labels[i % len(labels)] for i in range(n)],
        },
        index=index,
        dtype=object,
    )


def clean_splits() -> dict[str, pd.DataFrame]:
    return {
        "train": make_split(30, "train"),
        "validation": make_split(9, "validation"),
        "test": make_split(9, "test"),
    }


def run(
    splits: dict[str, pd.DataFrame], labels: list[str] = LABELS, **settings: Any
) -> ValidationReport:
    config = ValidationConfig(**settings)
    return validate_splits(
        splits,
        text_column="text",
        label_column="label",
        labels=labels,
        config=config,
        suite_name="test-suite",
    )


def failure(report: ValidationReport, expectation: str, split: str) -> CheckResult:
    found = [c for c in report.failures() if c.expectation == expectation and c.split == split]
    assert len(found) == 1, report.summary()
    return found[0]


def rows(check: CheckResult) -> list[int]:
    return [e["row"] for e in check.examples]


def expectations(report: ValidationReport, split: str) -> list[str]:
    return [c.expectation for c in report.checks if c.split == split]


def test_clean_splits_pass() -> None:
    report = run(clean_splits(), check_phi=True)
    assert report.success, report.summary()
    assert report.failures() == []
    assert {c.split for c in report.checks} == {"train", "validation", "test"}
    train, test = expectations(report, "train"), expectations(report, "test")
    for name in (EXISTS, ROWS, NOT_NULL, OF_TYPE, LENGTH, IN_SET, PHI):
        assert name in train and name in test
    assert {DISTINCT, CONTAINS, CLASS_SIZE} <= set(train)
    assert not {DISTINCT, CONTAINS, CLASS_SIZE} & set(test)
    assert LEAKAGE in test and LEAKAGE in expectations(report, "validation")
    assert LEAKAGE not in train
    assert all(c.element_count == 30 for c in report.checks if c.split == "train")
    assert "passed" in report.summary()


def test_inputs_are_not_modified() -> None:
    splits = clean_splits()
    before = {k: v.copy() for k, v in splits.items()}
    run(splits)
    for name, frame in splits.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_missing_column_is_reported_and_its_checks_skipped() -> None:
    splits = clean_splits()
    splits["train"] = splits["train"].rename(columns={"text": "body"})
    splits["test"] = splits["test"].drop(columns="label")
    report = run(splits)

    missing_text = failure(report, EXISTS, "train")
    assert missing_text.column == "text"
    assert "'text' is missing" in missing_text.description
    assert "'body'" in missing_text.description  # the columns that were found
    assert not [c for c in report.checks if c.split == "train" and c.column == "text"][1:]
    assert IN_SET in expectations(report, "train")  # label checks still ran

    missing_label = failure(report, EXISTS, "test")
    assert missing_label.column == "label"
    assert not [c for c in report.checks if c.split == "test" and c.column == "label"][1:]
    # without train texts the leakage check cannot run
    assert LEAKAGE not in expectations(report, "test")
    assert len(report.failures()) == 2


def test_empty_and_header_only_splits_fail_the_row_count() -> None:
    splits = clean_splits()
    splits["test"] = splits["test"].iloc[0:0]
    report = run(splits)
    check = failure(report, ROWS, "test")
    assert check.column is None
    assert "0 rows" in check.description
    assert [c.split for c in report.failures()] == ["test"]

    nothing = run({})
    assert not nothing.success
    assert {c.split for c in nothing.checks} == {"all"}


def test_missing_and_non_string_texts() -> None:
    splits = clean_splits()
    train = splits["train"]
    train.loc[2, "text"] = None
    train.loc[4, "text"] = 12345
    train.loc[7, "text"] = float("nan")
    report = run(splits)

    nulls = failure(report, NOT_NULL, "train")
    assert (nulls.column, nulls.unexpected_count, rows(nulls)) == ("text", 2, [3, 8])
    types = failure(report, OF_TYPE, "train")
    assert (types.column, rows(types)) == ("text", [5])
    assert types.examples[0]["value"] == 12345
    assert types.examples[0]["type"] == "int"


def test_blank_short_and_long_texts_fail_the_length_check() -> None:
    splits = clean_splits()
    test = splits["test"]
    test.loc[1, "text"] = "   \t "
    test.loc[3, "text"] = "ab"
    test.loc[5, "text"] = "x" * 120
    test.loc[6, "text"] = "  ok  "  # 2 characters once stripped
    report = run(splits, min_text_length=3, max_text_length=100)
    check = failure(report, LENGTH, "test")
    assert check.column == "text"
    assert check.unexpected_count == 4
    assert rows(check) == [2, 4, 6, 7]
    assert [e["length"] for e in check.examples] == [0, 2, 120, 2]
    assert [c.split for c in report.failures()] == ["test"]


def test_missing_labels_and_labels_outside_the_set() -> None:
    splits = clean_splits()
    validation = splits["validation"]
    validation.loc[0, "label"] = None
    validation.loc[3, "label"] = "maybe"
    validation.loc[4, "label"] = "NEG"
    report = run(splits)
    nulls = failure(report, NOT_NULL, "validation")
    assert (nulls.column, rows(nulls)) == ("label", [1])
    outside = failure(report, IN_SET, "validation")
    assert (outside.column, rows(outside)) == ("label", [4, 5])
    assert [e["value"] for e in outside.examples] == ["maybe", "NEG"]
    assert "declared label set" in outside.description


def test_integer_labels_fail_the_set_check_clearly() -> None:
    splits = clean_splits()
    splits["train"]["label"] = [i % 3 for i in range(30)]
    report = run(splits)
    check = failure(report, IN_SET, "train")
    assert check.unexpected_count == 30
    assert check.examples[0] == {"row": 1, "value": 0, "type": "int"}
    assert "0, type=int" in report.summary()
    absent = failure(report, CONTAINS, "train")
    assert [e["value"] for e in absent.examples] == LABELS

    # integer labels against declared digit strings compare as strings
    numeric = {k: v.assign(label=[i % 2 for i in range(len(v))]) for k, v in clean_splits().items()}
    assert run(numeric, labels=["0", "1"]).success


def test_without_declared_labels_the_set_checks_are_skipped() -> None:
    splits = clean_splits()
    splits["test"].loc[0, "label"] = "anything"
    report = run(splits, labels=[])
    assert report.success, report.summary()
    assert IN_SET not in expectations(report, "train")
    assert CONTAINS not in expectations(report, "train")
    assert CLASS_SIZE in expectations(report, "train")


def test_training_split_needs_two_labels() -> None:
    splits = clean_splits()
    splits["train"]["label"] = "pos"
    report = run(splits, labels=[])
    check = failure(report, DISTINCT, "train")
    assert "1 distinct label" in check.description
    assert check.examples == [{"row": None, "value": "pos", "count": 30}]
    # the same frame as validation split is fine: the check is train-only
    assert DISTINCT not in expectations(report, "validation")


def test_short_and_absent_classes() -> None:
    splits = clean_splits()
    labels = ["neg"] * 12 + ["pos"] * 12 + ["neu", "neu", "neu"] + ["neg"] * 3
    splits["train"]["label"] = labels  # neu: 3 rows (25, 26, 27); 'rare' absent
    report = run(splits, labels=[*LABELS, "rare"], min_examples_per_class=5)

    short = failure(report, CLASS_SIZE, "train")
    assert short.column == "label"
    assert short.unexpected_count == 3  # the rows of short classes
    assert short.examples == [{"row": 25, "value": "neu", "count": 3}]
    assert "'neu' (3)" in short.description

    absent = failure(report, CONTAINS, "train")
    assert absent.examples == [{"row": None, "value": "rare", "count": 0}]
    assert "'rare'" in absent.description
    assert {c.expectation for c in report.failures()} == {CLASS_SIZE, CONTAINS}


def test_leakage_between_test_or_validation_and_train() -> None:
    splits = clean_splits()
    train_text = splits["train"].loc[10, "text"]
    splits["test"].loc[3, "text"] = "  " + train_text.upper().replace(" ", "  \n ") + " "
    splits["validation"].loc[8, "text"] = splits["train"].loc[0, "text"]
    report = run(splits)

    test = failure(report, LEAKAGE, "test")
    assert test.column == "text"
    assert test.examples[0]["row"] == 4
    assert test.examples[0]["train_row"] == 11
    validation = failure(report, LEAKAGE, "validation")
    assert validation.examples == [
        {"row": 9, "value": splits["train"].loc[0, "text"], "train_row": 1}
    ]
    assert not run(splits, check_leakage=False).failures()


PHI_TEXTS = {
    0: ("contact jane.doe@example.org tomorrow", "email"),
    1: ("call (555) 123-4567 after lunch", "phone"),
    2: ("ssn on file 123-45-6789 ok", "ssn"),
    3: ("patient MRN: 004521 admitted", "record number"),
    4: ("see medical record number 88231", "record number"),
    5: ("ticket #1234567 closed", "record number"),
    6: ("account 99887766 flagged", "long digit run"),
}


def test_phi_patterns_are_detected_and_redacted() -> None:
    splits = clean_splits()
    for i, (text, _) in PHI_TEXTS.items():
        splits["train"].loc[i + 10, "text"] = text
    report = run(splits, check_phi=True, report_rows=10)
    check = failure(report, PHI, "train")
    assert check.column == "text"
    assert check.unexpected_count == len(PHI_TEXTS)
    assert rows(check) == [i + 11 for i in PHI_TEXTS]
    for example, (_, kind) in zip(check.examples, PHI_TEXTS.values(), strict=True):
        assert kind in example["pattern"]
    assert "jane.doe@example.org" not in json.dumps(report.to_dict())
    assert "<email>" in check.examples[0]["value"]
    assert PHI not in expectations(run(splits), "train")  # check_phi defaults to off


def test_row_numbers_follow_the_frame_index() -> None:
    splits = clean_splits()
    splits["test"] = make_split(9, "test", start=100)  # rows 101..109 of one source file
    splits["test"].loc[104, "text"] = None
    check = failure(run(splits), NOT_NULL, "test")
    assert rows(check) == [105]


def test_report_rows_limits_the_examples() -> None:
    splits = clean_splits()
    splits["train"]["text"] = None
    check = failure(run(splits, report_rows=3), NOT_NULL, "train")
    assert check.unexpected_count == 30
    assert rows(check) == [1, 2, 3]


def test_weird_cells_do_not_crash() -> None:
    train = make_split(6, "train", labels=["neg", "pos"])
    train["text"] = pd.Series([["a"], {"b": 1}, "fine text", b"bytes", 1.5, True], dtype=object)
    train["label"] = pd.Series([["neg"], "pos", {"x": 1}, None, 2.0, "neg"], dtype=object)
    report = run({"train": train, "test": make_split(3, "test").rename(columns={0: "x"})})
    assert rows(failure(report, OF_TYPE, "train")) == [1, 2, 4, 5, 6]
    assert rows(failure(report, IN_SET, "train")) == [1, 3, 5]
    json.dumps(report.to_dict())
    report.to_markdown()


def test_summary_names_failures_and_rows() -> None:
    splits = clean_splits()
    splits["test"].loc[2, "label"] = "maybe"
    splits["test"].loc[4, "text"] = "  "
    report = run(splits)
    summary = report.summary()
    assert "2 of" in summary.splitlines()[0]
    assert "[test] expect_column_values_to_be_in_set column 'label'" in summary
    assert "row 3: 'maybe'" in summary
    assert "[test] expect_column_value_lengths_to_be_between column 'text'" in summary
    assert "row 5: '  '" in summary

    long = clean_splits()
    long["test"].loc[0, "text"] = "y" * 6000
    assert "'" + "y" * 60 + "…'" in run(long).summary()


def test_data_validation_error_carries_the_report() -> None:
    splits = clean_splits()
    splits["train"].loc[0, "label"] = "maybe"
    report = run(splits)
    error = DataValidationError(report)
    assert error.report is report
    assert str(error) == report.summary()
    with pytest.raises(DataValidationError, match="expect_column_values_to_be_in_set"):
        raise error
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.report == report


def test_dict_markdown_and_saved_files(tmp_path) -> None:
    splits = clean_splits()
    splits["validation"].loc[1, "label"] = "maybe|odd"
    report = run(splits)

    data = json.loads(json.dumps(report.to_dict()))
    assert data["suite_name"] == "test-suite"
    assert data["success"] is False
    assert data["failed"] == 1
    assert len(data["checks"]) == len(report.checks)
    assert data["checks"][0].keys() >= {"split", "expectation", "column", "examples"}

    markdown = report.to_markdown()
    assert "| split | expectation |" in markdown
    assert markdown.count("**FAIL**") == 1
    assert "## Failures" in markdown
    assert "### `expect_column_values_to_be_in_set` (validation, column `label`)" in markdown
    assert "| 2 | 'maybe\\|odd' |" in markdown  # pipes escaped inside the table

    paths = save_report(report, tmp_path / "reports")
    assert [p.name for p in paths] == ["validation_report.json", "validation_report.md"]
    assert json.loads(paths[0].read_text()) == data
    assert paths[1].read_text() == markdown
