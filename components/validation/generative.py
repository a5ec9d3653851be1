"""The generative (instruction-tuning) suite: `validate_chat_splits` on `messages` columns.

Each row's `messages` is a list of `{"role", "content"}` dicts: an optional system message, then
user and assistant turns alternating from user and ending with the assistant. Prompt/response
data is turned into this shape by the caller. The checks run through GE on derived columns (the
problem with a malformed row, the shortest content, the role sequence, token counts, the
normalised conversation and prompt) and are reported like the classification suite's: same
`ValidationReport`, markdown, PHI redaction and `report_rows` limit.

Token checks need the caller's `token_counts(messages) -> (full_tokens, trainable_tokens)`:
`full_tokens` is the templated length before truncation, `trainable_tokens` the tokens the loss
counts after truncation to `max_length`. Without it they are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from components.config import ValidationConfig
from components.validation.checks import column_exists, rows
from components.validation.engine import (
    Check,
    Split,
    derived,
    describe_repeated,
    gx_modules,
    leak_examples,
    mark_leakage,
    new_split,
    object_column,
    ordered,
    phi_examples,
    repeated_examples,
    run_suite,
)
from components.validation.phi import PHI_PATTERNS, phi_kind_names
from components.validation.report import ValidationReport, cell, percent

MESSAGES = "messages"
ROLES = ("system", "user", "assistant")
_SEP = " > "  # joins a row's roles into one string GE matches against `_ROLE_ORDER`
_ROLE_ORDER = rf"^(?:system{_SEP})?user{_SEP}assistant(?:{_SEP}user{_SEP}assistant)*$"

TokenCounts = Callable[[list[dict]], tuple[int, int]]

# derived columns
_PROBLEM = derived(MESSAGES, "problem")  # why a row is not a list of role/content dicts
_SHORTEST = derived(MESSAGES, "shortest_content")  # stripped length of the shortest content
_ROLES = derived(MESSAGES, "roles")  # "system > user > assistant"
_TEXT = derived(MESSAGES, "text")  # "role: content" lines (shown; searched for PHI)
_DUP_KEY = derived(MESSAGES, "dup_key")  # whole conversation, lowercased, whitespace-collapsed
_PROMPT = derived(MESSAGES, "prompt")  # the messages before the last assistant turn (shown)
_PROMPT_KEY = derived(MESSAGES, "prompt_key")  # the prompt normalised (leakage)
_TOKENS = derived(MESSAGES, "tokens")  # templated length before truncation
_TRAINABLE = derived(MESSAGES, "trainable")  # loss tokens after truncation
_TOKEN_ERROR = derived(MESSAGES, "token_error")  # what `token_counts` raised


def validate_chat_splits(
    frames: Mapping[str, pd.DataFrame],
    *,
    config: ValidationConfig,
    suite_name: str,
    max_length: int,
    token_counts: TokenCounts | None = None,
) -> ValidationReport:
    """Run the generative suite on every given split; a failed report is returned, never raised."""
    _, gxe = gx_modules()
    prepared = {
        name: _prepare(name, frame, token_counts) for name, frame in ordered(frames).items()
    }
    train, validation = mark_leakage(prepared, MESSAGES, _PROMPT_KEY)
    context = _Context(gxe, config, max_length, token_counts is not None, train, validation)
    checks = [check for make in CHECKS if (check := make(context)) is not None]
    return run_suite(prepared, checks, config=config, suite_name=suite_name)


# ---------------------------------------------------------------------------------------------
# Preparing splits


def _prepare(name: str, frame: pd.DataFrame, token_counts: TokenCounts | None) -> Split:
    split = new_split(name, frame)
    if MESSAGES not in split.columns:
        return split
    work = split.frame
    values = object_column(work, MESSAGES)
    work[MESSAGES] = values
    rows = [_derive(value, token_counts) for value in values]
    columns = (_PROBLEM, _SHORTEST, _ROLES, _TEXT, _DUP_KEY, _PROMPT, _PROMPT_KEY)
    if token_counts is not None:
        columns += (_TOKENS, _TRAINABLE, _TOKEN_ERROR)
    for column in columns:
        series = pd.Series([row.get(column) for row in rows], dtype=object)
        numeric = column in (_SHORTEST, _TOKENS, _TRAINABLE)
        work[column] = series.astype(float) if numeric else series
    return split


def _derive(value: Any, token_counts: TokenCounts | None) -> dict[str, Any]:
    """The derived columns of one row (absent keys: null)."""
    messages, problem = _parse(value)
    if messages is None:
        return {_PROBLEM: problem}
    roles = [m["role"] for m in messages]
    text = _render(messages)
    assistant = [i for i, role in enumerate(roles) if role == "assistant"]
    prompt = messages[: assistant[-1]] if assistant else messages
    out: dict[str, Any] = {
        _SHORTEST: min(len(m["content"].strip()) for m in messages),
        _ROLES: _SEP.join(roles),
        _TEXT: text,
        _DUP_KEY: _normalise(text),
        _PROMPT: _render(prompt) if prompt else None,
        _PROMPT_KEY: _normalise(_render(prompt)) if prompt else None,
    }
    # templates reject a malformed role order: such rows are left to the role check
    if token_counts is not None and _role_problem(roles) is None:
        try:
            full, trainable = token_counts([dict(m) for m in messages])
            out[_TOKENS], out[_TRAINABLE] = int(full), int(trainable)
        except Exception as err:  # reported by the templating check, not raised
            out[_TOKEN_ERROR] = f"{type(err).__name__}: {err}"[:300]
    return out


def _parse(value: Any) -> tuple[list[dict] | None, str | None]:
    """`value` as a list of role/content dicts with string values, or None and why not."""
    if isinstance(value, np.ndarray | tuple):  # Parquet/Arrow and HF datasets give arrays
        value = list(value)
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None, "messages missing"
    if not isinstance(value, list):
        return None, f"not a list of messages (got {type(value).__name__})"
    if not value:
        return None, "empty list of messages"
    for i, message in enumerate(value, 1):
        if not isinstance(message, Mapping):
            return None, f"message {i} is not a dict (got {type(message).__name__})"
        for key in ("role", "content"):
            if key not in message:
                return None, f"message {i} has no {key!r}"
            if not isinstance(message[key], str):
                kind = type(message[key]).__name__
                return None, f"message {i}: {key} is not a string (got {kind})"
    return [dict(m) for m in value], None


def _role_problem(roles: list[str]) -> str | None:
    """The first broken role rule, in words (None: the order matches `_ROLE_ORDER`)."""
    for i, role in enumerate(roles, 1):
        if role not in ROLES:
            return f"message {i}: unknown role {role!r} (system, user or assistant)"
        if role == "system" and i > 1:
            return f"message {i}: a system message after the first message"
    first = 2 if roles[0] == "system" else 1
    turns = roles[first - 1 :]
    if not turns:
        return "no user or assistant turn"
    for i, role in enumerate(turns):
        expected = ("user", "assistant")[i % 2]
        if role != expected:
            return (
                f"message {first + i}: {role} where {expected} was expected "
                "(turns alternate user, assistant, starting with user)"
            )
    if turns[-1] != "assistant":
        return f"the last message is from the {turns[-1]}, not the assistant"
    return None


def _render(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


# ---------------------------------------------------------------------------------------------
# Checks: one function each, listed in suite order in CHECKS


@dataclass(frozen=True)
class _Context:
    gxe: Any  # great_expectations.expectations
    config: ValidationConfig
    max_length: int
    token_counts: bool  # the caller gave `token_counts`: the token checks apply
    train: bool  # a train split with `messages` exists (train leakage applies)
    validation: bool  # likewise for the validation split


def messages_exists(c: _Context) -> Check:
    return column_exists("messages_exists", c.gxe, MESSAGES)


def well_formed(c: _Context) -> Check:
    return Check(
        "well_formed",
        c.gxe.ExpectColumnValuesToBeNull(column=_PROBLEM),
        "each row's messages are a non-empty list of dicts with string 'role' and 'content'",
        MESSAGES,
        examples=_examples(MESSAGES, problem=_PROBLEM),
    )


def no_empty_content(c: _Context) -> Check:
    def examples(split: Split, info: dict, limit: int) -> list[dict]:
        out = []
        for p in info["positions"][:limit]:
            messages, _ = _parse(split.frame[MESSAGES].iat[p])
            i = next(i for i, m in enumerate(messages or []) if not m["content"].strip())
            out.append(
                {
                    "row": int(split.rows[p]),
                    "value": split.frame[_TEXT].iat[p],
                    "message": i + 1,
                    "role": messages[i]["role"] if messages else None,
                }
            )
        return out

    return Check(
        "no_empty_content",
        c.gxe.ExpectColumnValuesToBeBetween(column=_SHORTEST, min_value=1),
        "no message has empty (whitespace-only) content",
        MESSAGES,
        examples=examples,
    )


def role_order(c: _Context) -> Check:
    def examples(split: Split, info: dict, limit: int) -> list[dict]:
        roles = split.frame[_ROLES]
        return [
            {
                "row": int(split.rows[p]),
                "value": roles.iat[p],
                "problem": _role_problem(roles.iat[p].split(_SEP)),
            }
            for p in info["positions"][:limit]
        ]

    return Check(
        "role_order",
        c.gxe.ExpectColumnValuesToMatchRegex(column=_ROLES, regex=_ROLE_ORDER),
        "roles are system, user or assistant: an optional system message first, then user and "
        "assistant turns alternating from user, the last one from the assistant",
        MESSAGES,
        examples=examples,
    )


def templating(c: _Context) -> Check | None:
    if not c.token_counts:
        return None
    return Check(
        "templating",
        c.gxe.ExpectColumnValuesToBeNull(column=_TOKEN_ERROR),
        "token counting (chat template, loss mask) raises no error",
        MESSAGES,
        examples=_examples(_TEXT, error=_TOKEN_ERROR),
    )


def trainable_tokens(c: _Context) -> Check | None:
    if not c.token_counts:
        return None
    limit = c.max_length

    def describe(split: Split, info: dict) -> str:
        counted = int(split.frame[_TRAINABLE].notna().sum())
        zero = int((split.frame[_TRAINABLE] < 1).sum())
        return (
            f"{zero} of {counted} examples keep no trainable (assistant) tokens after chat "
            f"templating and truncation to max_length={limit} tokens: the loss ignores them"
        )

    return Check(
        "trainable_tokens",
        c.gxe.ExpectColumnValuesToBeBetween(column=_TRAINABLE, min_value=1),
        f"every example keeps at least 1 trainable (assistant) token after chat templating and "
        f"truncation to max_length={limit} tokens",
        MESSAGES,
        examples=_examples(_TEXT, tokens=_TOKENS, trainable=_TRAINABLE),
        describe=describe,
    )


def length(c: _Context) -> Check | None:
    share, limit = c.config.max_truncated_share, c.max_length
    if not c.token_counts or share >= 1:  # 1: the check is off
        return None

    def observed(split: Split) -> tuple[pd.Series, pd.Series]:
        tokens = split.frame[_TOKENS].dropna()
        return tokens, tokens[tokens > limit]

    def describe(split: Split, info: dict) -> str:
        tokens, over = observed(split)
        return (
            f"{percent(len(over) / len(tokens))} of examples ({len(over)} of {len(tokens)}) are "
            f"longer than max_length={limit} tokens after chat templating (the longest "
            f"{int(over.max())}) and get truncated; at most {percent(share)} allowed "
            "(validation.max_truncated_share)"
        )

    def describe_pass(split: Split, info: dict) -> str:
        tokens, over = observed(split)
        seen = percent(len(over) / len(tokens)) if len(tokens) else "0%"
        return (
            f"{seen} of examples ({len(over)} of {len(tokens)}) longer than max_length={limit} "
            f"tokens after chat templating; at most {percent(share)} allowed"
        )

    def examples(split: Split, info: dict, limit_rows: int) -> list[dict]:
        _, over = observed(split)
        longest = over.sort_values(ascending=False, kind="stable").head(limit_rows)
        return [
            {"row": int(split.rows[p]), "value": split.frame[_TEXT].iat[p], "tokens": int(n)}
            for p, n in longest.items()
        ]

    return Check(
        "length",
        c.gxe.ExpectColumnValuesToBeBetween(column=_TOKENS, max_value=limit, mostly=1 - share),
        f"at most {percent(share)} of examples longer than max_length={limit} tokens after chat "
        "templating (truncated)",
        MESSAGES,
        examples=examples,
        describe=describe,
        describe_pass=describe_pass,
    )


def duplicates(c: _Context) -> Check | None:
    share = c.config.max_duplicate_share
    if share >= 1:  # 1: the check is off
        return None
    return Check(
        "duplicates",
        c.gxe.ExpectColumnValuesToBeUnique(column=_DUP_KEY, mostly=1 - share),
        f"at most {percent(share)} of rows hold a conversation (lowercased, "
        "whitespace-collapsed) that occurs more than once in the split",
        MESSAGES,
        examples=repeated_examples(_DUP_KEY, _TEXT),
        describe=describe_repeated(_DUP_KEY, share, "conversation"),
    )


def leakage(c: _Context) -> Check | None:
    if not (c.config.check_leakage and c.train):
        return None
    return Check(
        "leakage",
        c.gxe.ExpectColumnValuesToBeNull(column=derived(MESSAGES, "train_row")),
        "no prompt (the messages before the last assistant turn, lowercased, "
        "whitespace-collapsed) also occurs in the training split",
        MESSAGES,
        where="eval",
        examples=leak_examples(MESSAGES, "train", value_column=_PROMPT),
    )


def validation_leakage(c: _Context) -> Check | None:
    if not (c.config.check_leakage and c.validation):
        return None
    return Check(
        "validation_leakage",
        c.gxe.ExpectColumnValuesToNotBeInSet(
            column=derived(MESSAGES, "in_validation"), value_set=[True]
        ),
        "no prompt (the messages before the last assistant turn, lowercased, "
        "whitespace-collapsed) also occurs in the validation split (epoch selection and "
        "promotion would be judged on test data)",
        MESSAGES,
        where="test",
        examples=leak_examples(MESSAGES, "validation", value_column=_PROMPT),
    )


def phi(c: _Context) -> Check | None:
    if not c.config.check_phi:
        return None
    return Check(
        "phi",
        c.gxe.ExpectColumnValuesToNotMatchRegexList(
            column=_TEXT, regex_list=[rx for _, rx in PHI_PATTERNS]
        ),
        f"no PHI-like patterns in message contents ({phi_kind_names()}); shown values are redacted",
        MESSAGES,
        examples=phi_examples(_TEXT),
    )


# Suite order: the report lists each split's checks in this order.
CHECKS: tuple[Callable[[_Context], Check | None], ...] = (
    messages_exists,
    rows,
    well_formed,
    no_empty_content,
    role_order,
    templating,
    trainable_tokens,
    length,
    duplicates,
    leakage,
    validation_leakage,
    phi,
)


def _examples(value_column: str, **extra: str) -> Callable[[Split, dict, int], list[dict]]:
    """GE's unexpected rows: `value_column`'s value plus the named derived columns."""

    def build(split: Split, info: dict, limit: int) -> list[dict]:
        out = []
        for p in info["positions"][:limit]:
            item = {"row": int(split.rows[p]), "value": cell(split.frame[value_column].iat[p])}
            for key, column in extra.items():
                value = cell(split.frame[column].iat[p])
                is_count = isinstance(value, float) and value.is_integer()
                item[key] = int(value) if is_count else value  # token counts held as floats
            out.append(item)
        return out

    return build
