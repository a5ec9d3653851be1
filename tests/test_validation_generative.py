"""The generative (chat `messages`) Great Expectations suite, run for real on small frames.

`token_counts` is faked: tokens are whitespace words; the trainable part is the last assistant
content, cut where prompt plus answer passes `max_length` (so a long prompt leaves none).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from components.config import ValidationConfig
from components.validation import (
    CheckResult,
    DataValidationError,
    ValidationReport,
    save_report,
    validate_chat_splits,
)

MAX_LENGTH = 40
EXISTS = "expect_column_to_exist"
ROWS = "expect_table_row_count_to_be_between"
NULL = "expect_column_values_to_be_null"  # well-formed, templating, train leakage
BETWEEN = "expect_column_values_to_be_between"  # empty content, trainable tokens, length
REGEX = "expect_column_values_to_match_regex"
UNIQUE = "expect_column_values_to_be_unique"
NOT_IN_SET = "expect_column_values_to_not_be_in_set"
PHI = "expect_column_values_to_not_match_regex_list"

SSN, EMAIL = "123-45-6789", "jane.doe@example.org"


def turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def conversation(name: str, i: int, system: bool = True) -> list[dict]:
    head = [turn("system", "You are a helpful assistant.")] if system else []
    return [
        *head,
        turn("user", f"{name} question number {i}: what is it?"),
        turn("assistant", f"It is answer {i} for {name}."),
    ]


def frame(name: str, n: int) -> pd.DataFrame:
    """`n` clean, distinct conversations; every third one has two exchanges, no system."""
    rows = []
    for i in range(n):
        if i % 3 == 2:
            rows.append(
                [
                    *conversation(name, i, system=False),
                    turn("user", "And more?"),
                    turn("assistant", f"More {i}."),
                ]
            )
        else:
            rows.append(conversation(name, i))
    return pd.DataFrame({"messages": rows})


def clean_frames() -> dict[str, pd.DataFrame]:
    return {
        "train": frame("train", 20),
        "validation": frame("validation", 10),
        "test": frame("test", 10),
    }


def put(frames: dict[str, pd.DataFrame], split: str, values: dict[int, Any]) -> None:
    """Replace the conversations at the given positions of one split."""
    messages = list(frames[split]["messages"])
    for pos, value in values.items():
        messages[pos] = value
    frames[split] = pd.DataFrame({"messages": messages})


def at(frames: dict[str, pd.DataFrame], split: str, pos: int) -> list[dict]:
    return frames[split]["messages"].iat[pos]


def words(text: str) -> int:
    return len(text.split())


def fake_token_counts(messages: list[dict]) -> tuple[int, int]:
    prompt = sum(words(m["content"]) for m in messages[:-1])
    answer = words(messages[-1]["content"])
    return prompt + answer, max(0, min(answer, MAX_LENGTH - prompt))


def run(
    frames: dict[str, pd.DataFrame], tokens: Any = fake_token_counts, **settings: Any
) -> ValidationReport:
    return validate_chat_splits(
        frames,
        config=ValidationConfig(**settings),
        suite_name="chat-suite",
        max_length=MAX_LENGTH,
        token_counts=tokens,
    )


def failure(report: ValidationReport, expectation: str, split: str, about: str = "") -> CheckResult:
    found = [
        c
        for c in report.failures()
        if c.expectation == expectation and c.split == split and about in c.description
    ]
    assert len(found) == 1, report.summary()
    return found[0]


def rows(check: CheckResult) -> list[int]:
    return [e["row"] for e in check.examples]


def test_clean_dataset_passes() -> None:
    report = run(clean_frames(), check_phi=True)
    assert report.success, report.summary()
    assert "passed" in report.summary()
    train = [c.expectation for c in report.checks if c.split == "train"]
    assert train == [EXISTS, ROWS, NULL, BETWEEN, REGEX, NULL, BETWEEN, BETWEEN, UNIQUE, PHI]
    test = [c.expectation for c in report.checks if c.split == "test"]
    assert test == [*train[:-1], NULL, NOT_IN_SET, PHI]  # leakage on train and on validation
    assert all(c.column == "messages" for c in report.checks if c.expectation != ROWS)
    length = next(
        c
        for c in report.checks
        if c.split == "train" and "max_length" in c.description and "longer" in c.description
    )
    assert "0% of examples (0 of 20) longer than max_length=40 tokens" in length.description


def test_without_token_counts_the_token_checks_are_skipped() -> None:
    report = run(clean_frames(), tokens=None)
    assert report.success, report.summary()
    assert not [c for c in report.checks if "token" in c.description]


def test_arrays_of_dicts_as_parquet_gives_them_pass() -> None:
    frames = clean_frames()
    frames["train"]["messages"] = [np.array(m, dtype=object) for m in frames["train"]["messages"]]
    assert run(frames).success


def test_empty_split_and_missing_column_fail() -> None:
    frames = clean_frames()
    frames["validation"] = frames["validation"].iloc[:0]
    frames["test"] = frames["test"].rename(columns={"messages": "chat"})
    report = run(frames)
    empty = failure(report, ROWS, "validation")
    assert "split is empty" in empty.description
    missing = failure(report, EXISTS, "test")
    assert "'messages' is missing (columns found: 'chat')" in missing.description
    assert [c.expectation for c in report.checks if c.split == "test"] == [EXISTS, ROWS]


def test_malformed_messages_fail_with_each_problem() -> None:
    frames = clean_frames()
    bad = {
        1: "hello",
        2: [],
        4: None,
        6: [turn("user", "hi"), "not a dict"],
        7: [{"role": "user"}, turn("assistant", "x")],
        9: [turn("user", "hi"), {"role": "assistant", "content": None}],
    }
    put(frames, "train", bad)
    report = run(frames, report_rows=10)
    check = failure(report, NULL, "train", "non-empty list of dicts")
    assert check.unexpected_count == 6
    assert [(e["row"], e["problem"]) for e in check.examples] == [
        (2, "not a list of messages (got str)"),
        (3, "empty list of messages"),
        (5, "messages missing"),
        (7, "message 2 is not a dict (got str)"),
        (8, "message 1 has no 'content'"),
        (10, "message 2: content is not a string (got NoneType)"),
    ]
    assert len(report.failures()) == 1  # malformed rows are not counted again by other checks
    assert "- [train] expect_column_values_to_be_null column 'messages'" in report.summary()


def test_empty_content_fails() -> None:
    frames = clean_frames()
    put(frames, "test", {3: [turn("user", "hello?"), turn("assistant", " \n\t ")]})
    report = run(frames, tokens=None)
    check = failure(report, BETWEEN, "test", "empty (whitespace-only) content")
    assert check.unexpected_count == 1
    assert check.examples == [
        {"row": 4, "value": "user: hello?\nassistant:  \n\t ", "message": 2, "role": "assistant"}
    ]
    assert len(report.failures()) == 1


@pytest.mark.parametrize(
    ("roles", "problem"),
    [
        (["user", "bot"], "message 2: unknown role 'bot' (system, user or assistant)"),
        (["user", "system", "assistant"], "message 2: a system message after the first message"),
        (["user", "user", "assistant"], "message 2: user where assistant was expected"),
        (["system", "assistant"], "message 2: assistant where user was expected"),
        (["user", "assistant", "user"], "the last message is from the user, not the assistant"),
        (["system"], "no user or assistant turn"),
    ],
)
def test_role_rules(roles: list[str], problem: str) -> None:
    frames = clean_frames()
    put(frames, "train", {5: [turn(r, f"{r} says something") for r in roles]})
    report = run(frames)
    check = failure(report, REGEX, "train")
    assert check.unexpected_count == 1
    assert rows(check) == [6]
    assert check.examples[0]["value"] == " > ".join(roles)
    assert check.examples[0]["problem"].startswith(problem)
    assert len(report.failures()) == 1  # rows with bad roles are not templated


def test_zero_trainable_tokens_are_counted_and_shown() -> None:
    frames = clean_frames()
    long_prompt = " ".join(["word"] * MAX_LENGTH)
    put(
        frames,
        "train",
        {pos: [turn("user", long_prompt), turn("assistant", "ok")] for pos in (2, 11)},
    )
    report = run(frames, max_truncated_share=1)
    check = failure(report, BETWEEN, "train", "trainable")
    assert check.unexpected_count == 2
    assert check.description.startswith("2 of 20 examples keep no trainable (assistant) tokens")
    assert "max_length=40" in check.description
    assert [(e["row"], e["tokens"], e["trainable"]) for e in check.examples] == [
        (3, 41, 0),
        (12, 41, 0),
    ]
    assert "row 3: 'user: word word" in report.summary()


def test_share_of_truncated_examples() -> None:
    frames = clean_frames()
    answer = " ".join(["long"] * 40)  # prompt + answer > 40 words, still trainable
    question = turn("user", "short question here please")
    put(frames, "train", {p: [question, turn("assistant", f"{answer} {p}")] for p in (4, 8)})
    check = failure(run(frames), BETWEEN, "train", "max_truncated_share")
    assert check.description.startswith("10% of examples (2 of 20) are longer than max_length=40")
    assert "at most 5% allowed (validation.max_truncated_share)" in check.description
    assert [(e["row"], e["tokens"]) for e in check.examples] == [(5, 45), (9, 45)]

    assert run(frames, max_truncated_share=0.1).success
    off = run(frames, max_truncated_share=1)
    assert off.success and not [c for c in off.checks if "longer than" in c.description]


def test_prompt_leakage_between_splits() -> None:
    frames = clean_frames()
    train_prompt = at(frames, "train", 0)[:-1]
    # same prompt up to case and whitespace, another answer
    shouted = [
        turn(m["role"], "  " + m["content"].upper().replace(" ", "   ")) for m in train_prompt
    ]
    put(frames, "validation", {1: [*shouted, turn("assistant", "A new answer.")]})
    put(frames, "test", {4: [*at(frames, "validation", 3)[:-1], turn("assistant", "Other.")]})
    report = run(frames)

    leak = failure(report, NULL, "validation", "training split")
    assert leak.examples == [
        {
            "row": 2,
            "value": "system:   YOU   ARE   A   HELPFUL   ASSISTANT.\n"
            "user:   TRAIN   QUESTION   NUMBER   0:   WHAT   IS   IT?",
            "train_row": 1,
        }
    ]
    overlap = failure(report, NOT_IN_SET, "test")
    assert overlap.examples[0]["row"] == 5 and overlap.examples[0]["validation_row"] == 4
    assert (
        "[validation] expect_column_values_to_be_null column 'messages': no prompt"
        in report.summary()
    )
    assert run(frames, check_leakage=False).success


def test_repeated_conversations_fail() -> None:
    frames = clean_frames()
    put(frames, "train", {pos: at(frames, "train", 0) for pos in (3, 7, 12)})
    check = failure(run(frames), UNIQUE, "train")
    assert check.description.startswith("20% of rows hold a conversation (lowercased")
    assert "at most 10% allowed (validation.max_duplicate_share)" in check.description
    assert check.examples == [
        {
            "row": 1,
            "value": "system: You are a helpful assistant.\n"
            "user: train question number 0: what is it?\n"
            "assistant: It is answer 0 for train.",
            "count": 4,
        }
    ]
    assert run(frames, max_duplicate_share=0.25).success


def test_report_rows_limit() -> None:
    frames = clean_frames()
    put(frames, "train", dict.fromkeys(range(8), "broken"))
    check = failure(run(frames, report_rows=3), NULL, "train", "non-empty list")
    assert check.unexpected_count == 8
    assert rows(check) == [1, 2, 3]


def test_phi_is_found_and_redacted_everywhere(tmp_path: Path) -> None:
    frames = clean_frames()
    secret = [turn("user", f"My SSN is {SSN}, write to {EMAIL}"), turn("assistant", "Noted.")]
    put(frames, "train", {2: secret})
    put(frames, "validation", {0: secret})  # a leaked prompt: shown by the leakage check too
    put(frames, "test", {1: [*secret[:1], turn("assistant", "  ")]})  # and a blank answer
    report = run(frames, check_phi=True)

    phi = failure(report, PHI, "train")
    assert phi.examples == [
        {
            "row": 3,
            "value": "user: My SSN is <ssn>, write to <email>\nassistant: Noted.",
            "pattern": "email, ssn",
        }
    ]
    leak = failure(report, NULL, "validation", "training split")
    assert leak.examples[0]["value"] == "user: My SSN is <ssn>, write to <email>"
    blank = failure(report, BETWEEN, "test", "whitespace-only")
    assert "<ssn>" in blank.examples[0]["value"]

    paths = save_report(report, tmp_path)
    shown = "\n".join(
        [
            report.summary(),
            report.to_markdown(),
            json.dumps(report.to_dict()),
            str(DataValidationError(report)),
            str(pickle.loads(pickle.dumps(DataValidationError(report)))),
            *(p.read_text() for p in paths),
        ]
    )
    for fragment in (SSN, "123-45", EMAIL, "jane.doe"):
        assert fragment not in shown


def test_token_counts_errors_are_reported_not_raised() -> None:
    def explode(messages: list[dict]) -> tuple[int, int]:
        if any("train question number 5:" in m["content"] for m in messages):
            raise ValueError("template failed")
        return fake_token_counts(messages)

    check = failure(run(clean_frames(), tokens=explode), NULL, "train", "token counting")
    assert [(e["row"], e["error"]) for e in check.examples] == [(6, "ValueError: template failed")]
