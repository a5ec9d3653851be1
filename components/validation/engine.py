"""The Great Expectations 1.x engine: one GE suite per split, each result reported.

A suite (classification: `suite.py` with `checks.py`; generative: `generative.py`) prepares
each split as a `Split` (source columns plus derived `__<column>__<what>` columns GE can check)
and lists its `Check`s; `run_suite` runs them through an in-memory GE context and turns each
GE result into a `CheckResult`. Offending rows are reported as 1-based record numbers
(`frame index + 1`).

With the PHI check on, every value any check reports (examples and data-derived descriptions,
hence `summary()`, the saved reports and `DataValidationError`'s message) is redacted in
`to_result`, the one place results are made: no check echoes PHI, not only the PHI check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from components.config import ValidationConfig
from components.validation.phi import phi_kinds, redact_phi
from components.validation.report import SHOWN_CHARS, CheckResult, ValidationReport, cell, percent

SPLIT_ORDER = ("train", "validation", "test")


@dataclass
class Split:
    """A split prepared for GE: source columns plus derived `__…` columns, positional index."""

    name: str
    frame: pd.DataFrame
    rows: np.ndarray  # 1-based record number per position
    columns: list[str]  # source columns


Examples = Callable[[Split, dict, int], list[dict]]  # (split, GE info + positions, limit)
Describe = Callable[[Split, dict], str]  # description of a failure


@dataclass
class Check:
    """One expectation of a suite plus what is needed to report it."""

    key: str
    expectation: Any  # a great_expectations.expectations.Expectation
    description: str
    column: str | None
    where: str = "all"  # "all" splits, "eval": every split but train, or one split's name
    requires: tuple[str, ...] | None = None  # source columns the split must have; None: column
    examples: Examples | None = None  # default: the column's values at GE's unexpected indices
    describe: Describe | None = None
    describe_pass: Describe | None = None  # description of a success (e.g. an observed share)
    severity: str = "critical"  # "warning": reported, never fails the suite

    def __post_init__(self) -> None:
        if self.requires is None:
            self.requires = (self.column,) if self.column else ()


def derived(name: str, what: str) -> str:
    """The name of a derived column computed from source column `name`."""
    return f"__{name}__{what}"


def gx_modules() -> tuple[Any, Any]:
    """`great_expectations` and its `expectations` module, with analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def ordered(splits: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Splits in train/validation/test order (others after); none: one empty split `all`."""
    order = [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]
    if not order:  # nothing to validate: the table checks still run, on an empty frame
        return {"all": pd.DataFrame()}
    return {name: splits[name] for name in order}


def new_split(name: str, frame: pd.DataFrame) -> Split:
    """A `Split` of `frame`'s source columns (string names, a duplicated name: the first one)."""
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    frame = frame.loc[:, ~frame.columns.duplicated()]
    index = frame.index
    if pd.api.types.is_integer_dtype(index.dtype):
        rows = index.to_numpy(dtype=np.int64) + 1
    else:
        rows = np.arange(1, len(frame) + 1, dtype=np.int64)
    return Split(name=name, frame=frame.reset_index(drop=True), rows=rows, columns=list(frame))


def object_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column `name` as an object series on a fresh positional index."""
    return pd.Series(frame[name].to_numpy(dtype=object), dtype=object)


def mark_leakage(prepared: Mapping[str, Split], source: str, key: str) -> tuple[bool, bool]:
    """Add `train_row` (eval splits) and `validation_row`/`in_validation` (test) columns.

    `key` is a derived column of normalised values (None: not compared); the added columns hold
    the record number of the same key in the train / validation split. Returns whether a train
    and a validation split with `source` exist (the leakage checks apply only then).
    """
    train_rows = _first_rows(prepared.get("train"), source, key)
    validation_rows = _first_rows(prepared.get("validation"), source, key)
    for name, split in prepared.items():
        if source not in split.columns:
            continue
        norm = split.frame[key]
        if name != "train" and train_rows is not None:
            split.frame[derived(source, "train_row")] = norm.map(train_rows).astype(float)
        if name == "test" and validation_rows is not None:
            rows = norm.map(validation_rows).astype(float)
            split.frame[derived(source, "validation_row")] = rows
            split.frame[derived(source, "in_validation")] = rows.notna()
    return train_rows is not None, validation_rows is not None


def _first_rows(split: Split | None, source: str, key: str) -> dict[str, int] | None:
    """Key of a split -> first record number holding it (None: no such split or column)."""
    if split is None or source not in split.columns:
        return None
    norm = split.frame[key]
    keep = norm.notna() & ~norm.duplicated()
    return dict(zip(norm[keep], split.rows[keep.to_numpy()].tolist(), strict=True))


def run_suite(
    prepared: Mapping[str, Split],
    checks: Sequence[Check],
    *,
    config: ValidationConfig,
    suite_name: str,
) -> ValidationReport:
    """Run the applicable `checks` on every prepared split; results in split, then suite order."""
    gx, _ = gx_modules()
    for c in checks:
        c.expectation.meta = {"check": c.key}
    context = gx.get_context(mode="ephemeral")  # in memory: writes no project files
    _quiet(context)
    batch_definition = (
        context.data_sources.add_pandas("peftops")
        .add_dataframe_asset("splits")
        .add_batch_definition_whole_dataframe("split")
    )
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": config.report_rows,
        "return_unexpected_index_query": False,
        "exclude_unexpected_values": True,
    }
    results: list[CheckResult] = []
    for name, split in prepared.items():
        applicable = [
            c
            for c in checks
            if (c.where in ("all", name) or (c.where == "eval" and name != "train"))
            and set(c.requires or ()) <= set(split.columns)
        ]
        suite = gx.ExpectationSuite(
            name=f"{suite_name}.{name}", expectations=[c.expectation for c in applicable]
        )
        batch = batch_definition.get_batch(batch_parameters={"dataframe": split.frame})
        outcome = batch.validate(suite, result_format=result_format)
        found = {(r.expectation_config.meta or {}).get("check"): r for r in outcome.results}
        for c in applicable:  # suite order, not GE's result order
            results.append(to_result(c, split, found.get(c.key), config))
    success = all(r.success or r.severity == "warning" for r in results)
    return ValidationReport(suite_name=suite_name, success=success, checks=results)


def _quiet(context: Any) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)


# ---------------------------------------------------------------------------------------------
# Results


def to_result(check: Check, split: Split, result: Any, config: ValidationConfig) -> CheckResult:
    """A GE validation result as a `CheckResult`, redacted when the PHI check is on."""
    if result is None:  # GE dropped the expectation: report it rather than pass silently
        return CheckResult(
            split.name,
            str(check.expectation.expectation_type),
            f"{check.description} (no result from GE)",
            check.column,
            False,
            0,
            len(split.frame),
        )
    info = dict(result.result or {})
    error = _gx_error(result.exception_info)
    success = bool(result.success) and error is None
    unexpected = int(info.get("unexpected_count") or 0)
    element = int(info.get("element_count", len(split.frame)) or 0)
    description = check.description
    examples: list[dict] = []
    # Everything taken from the data (GE's error text, data-derived descriptions, examples) is
    # redacted here when the PHI check is on: the one place results are made, so no check,
    # present or future, echoes PHI into summary(), the saved reports or the exception.
    shown = redact_phi if config.check_phi else _unchanged
    if error is not None:
        description = f"{description} (GE error: {shown(error)})"
    elif success and check.describe_pass is not None:
        description = shown(check.describe_pass(split, info))
    elif not success:
        if check.describe is not None:
            description = shown(check.describe(split, info))
        positions = [int(p) for p in info.get("partial_unexpected_index_list") or []]
        builder = check.examples or source_examples(check.column)
        found = builder(split, {"positions": positions, **info}, config.report_rows)
        examples = [_finish_example(e, shown) for e in found]
    return CheckResult(
        split=split.name,
        expectation=result.expectation_config.type,
        description=description,
        column=check.column,
        success=success,
        unexpected_count=unexpected,
        element_count=element,
        examples=examples,
        severity=check.severity,
    )


def _unchanged(text: str) -> str:
    return text


def _finish_example(example: dict, shown: Callable[[str], str]) -> dict:
    """Redact (`shown`) then cap an example's strings; redacting first leaves no PHI fragment.

    A non-string `value` (a number where text belongs) is redacted through its string form.
    """
    out = {}
    for key, value in example.items():
        if key == "value" and value is not None and not isinstance(value, str):
            redacted = shown(str(value))
            value = value if redacted == str(value) else redacted
        if isinstance(value, str):
            value = shown(value)
            value = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
        out[key] = value
    return out


def _gx_error(info: Any) -> str | None:
    """The first error message in GE's exception info, flat or keyed by metric (GE 1.x)."""
    if not isinstance(info, dict):
        return None
    entries = [info, *(v for v in info.values() if isinstance(v, dict))]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error").strip()[:500]
    return None


# ---------------------------------------------------------------------------------------------
# Example collectors and descriptions shared by the suites


def source_examples(
    column: str | None, *, with_type: bool = False, with_length: bool = False
) -> Examples:
    """The values of `column` at GE's unexpected positions (type / stripped length on request)."""

    def build(split: Split, info: dict, limit: int) -> list[dict]:
        if column is None or column not in split.frame:
            return []
        values = split.frame[column]
        out = []
        for pos in info["positions"][:limit]:
            value = values.iat[pos]
            item = {"row": int(split.rows[pos]), "value": cell(value)}
            if with_type and value is not None and not isinstance(value, str):
                item["type"] = type(value).__name__
            if with_length and isinstance(value, str):
                item["length"] = len(value.strip())
            out.append(item)
        return out

    return build


def leak_examples(source: str, other: str, value_column: str | None = None) -> Examples:
    """Leaked rows with the record number of the same key in split `other` (`mark_leakage`)."""

    def build(split: Split, info: dict, limit: int) -> list[dict]:
        values = split.frame[value_column or source]
        other_row = split.frame[derived(source, f"{other}_row")]
        return [
            {
                "row": int(split.rows[p]),
                "value": cell(values.iat[p]),
                f"{other}_row": int(other_row.iat[p]),
            }
            for p in info["positions"][:limit]
        ]

    return build


def _repeats(split: Split, key_column: str) -> pd.DataFrame:
    """One row per key held by more than one row: first position, count; most copies first."""
    key = split.frame[key_column]
    key = key[key.notna()]
    groups = pd.DataFrame({"key": key, "pos": key.index}).groupby("key", sort=False)["pos"]
    table = pd.DataFrame({"first": groups.min(), "count": groups.size()})
    table = table[table["count"] > 1]
    return table.sort_values(["count", "first"], ascending=[False, True])


def repeated_examples(key_column: str, value_column: str) -> Examples:
    """The most repeated keys: first row holding each, its value, how many rows hold it."""

    def build(split: Split, info: dict, limit: int) -> list[dict]:
        values = split.frame[value_column]
        return [
            {
                "row": int(split.rows[int(first)]),
                "value": cell(values.iat[int(first)]),
                "count": int(count),
            }
            for first, count in _repeats(split, key_column).head(limit).itertuples(index=False)
        ]

    return build


def describe_repeated(key_column: str, share: float, thing: str) -> Describe:
    """'x% of rows hold a <thing> (…) that occurs more than once …; at most y% allowed'."""

    def describe(split: Split, info: dict) -> str:
        repeats = _repeats(split, key_column)
        held = int(repeats["count"].sum())
        most = int(repeats["count"].max()) if held else 0
        total = int(split.frame[key_column].notna().sum())
        return (
            f"{percent(held / total if total else 0.0)} of rows hold a {thing} (lowercased, "
            f"whitespace-collapsed) that occurs more than once in the split ({len(repeats)} "
            f"such {thing}s; the most repeated one {most} times); at most {percent(share)} "
            "allowed (validation.max_duplicate_share)"
        )

    return describe


def phi_examples(column: str) -> Examples:
    """Rows of `column` with PHI-like patterns: the value redacted, the kinds found."""

    def build(split: Split, info: dict, limit: int) -> list[dict]:
        out = []
        for p in info["positions"][:limit]:
            value = str(split.frame[column].iat[p])
            item = {"row": int(split.rows[p]), "value": redact_phi(value)}
            item["pattern"] = ", ".join(phi_kinds(value))
            out.append(item)
        return out

    return build
