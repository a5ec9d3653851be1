"""Data validation with Great Expectations 1.x: one suite, run on each split through a GE batch.

The suite checks the schema, row counts, text and label values, class balance (train), texts
repeated within a split, leakage between splits (train/validation, train/test, validation/test)
and PHI-like patterns. Checks GE cannot express on the raw columns run on derived columns
(stripped text, label key, per-row class count, matching train or validation row); offending rows
are reported as 1-based record numbers (`frame index + 1`).

With the PHI check on, every value any check reports (examples and data-derived descriptions,
hence `summary()`, the saved reports and `DataValidationError`'s message) is redacted in
`_to_result`, the one place results are made: no check echoes PHI, not only the PHI check.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.config import ValidationConfig
from components.examples import label_key

SPLIT_ORDER = ("train", "validation", "test")

# (kind, regex): each regex runs on its own (pandas `str.contains`), so inline flags are allowed.
PHI_PATTERNS: tuple[tuple[str, str], ...] = (
    ("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    ("phone", r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b"),
    ("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
    ("record number", r"(?i)\b(?:MRN|medical record(?: number)?|record ?#?)\s*[:#]?\s*\d{4,}"),
    ("record number", r"#\d{6,}"),
    ("long digit run", r"\d{7,}"),
)
_PHI_COMPILED = tuple((kind, re.compile(rx)) for kind, rx in PHI_PATTERNS)


def redact_phi(text: str) -> str:
    """`text` with every PHI-like match replaced by `<kind>` (e.g. `<ssn>`)."""
    for kind, rx in _PHI_COMPILED:
        text = rx.sub(f"<{kind}>", text)
    return text


_SHOWN_CHARS = 300  # longest value stored in an example
_SUMMARY_CHARS = 60  # longest value shown in summary()


@dataclass
class CheckResult:
    """The outcome of one expectation on one split."""

    split: str
    expectation: str
    description: str
    column: str | None
    success: bool
    unexpected_count: int
    element_count: int
    examples: list[dict] = field(default_factory=list)


@dataclass
class ValidationReport:
    """All checks of one `validate_splits` call."""

    suite_name: str
    success: bool
    checks: list[CheckResult]

    def failures(self) -> list[CheckResult]:
        """The failed checks, in suite order."""
        return [c for c in self.checks if not c.success]

    def to_dict(self) -> dict:
        """A JSON-serialisable copy."""
        return {
            "suite_name": self.suite_name,
            "success": self.success,
            "evaluated": len(self.checks),
            "failed": len(self.failures()),
            "checks": [asdict(c) for c in self.checks],
        }

    def to_markdown(self) -> str:
        """A table of all checks, then a section per failure with its offending rows."""
        failures = self.failures()
        status = "passed" if self.success else f"failed ({len(failures)} of {len(self.checks)})"
        lines = [
            f"# Data validation: {self.suite_name}",
            "",
            f"**Result:** {status}",
            "",
            "| split | expectation | column | result | unexpected | rows | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            lines.append(
                f"| {c.split} | `{c.expectation}` | {_md(c.column or '')} | "
                f"{'pass' if c.success else '**FAIL**'} | {c.unexpected_count} | "
                f"{c.element_count} | {_md(c.description)} |"
            )
        if failures:
            lines += ["", "## Failures"]
        for c in failures:
            where = f"{c.split}, column `{c.column}`" if c.column else c.split
            lines += ["", f"### `{c.expectation}` ({where})", "", _md(c.description), ""]
            if not c.examples:
                continue
            extra = sorted({k for e in c.examples for k in e} - {"row", "value"})
            lines.append("| " + " | ".join(["row", "value", *extra]) + " |")
            lines.append("|" + "---|" * (2 + len(extra)))
            for e in c.examples:
                cells = [_row_label(e.get("row")), _md(_show(e.get("value"), _SHOWN_CHARS))]
                cells += [_md("" if e.get(k) is None else e[k]) for k in extra]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """Plain text naming each failure (split, expectation, column, count, a few rows)."""
        failures = self.failures()
        if not failures:
            return f"data validation passed: suite {self.suite_name!r}, {len(self.checks)} checks"
        lines = [
            f"data validation failed: suite {self.suite_name!r}, "
            f"{len(failures)} of {len(self.checks)} checks failed"
        ]
        for c in failures:
            col = f" column {c.column!r}" if c.column else ""
            count = (
                f" ({c.unexpected_count} of {c.element_count} rows)" if c.unexpected_count else ""
            )
            lines.append(f"- [{c.split}] {c.expectation}{col}: {c.description}{count}")
            for e in c.examples:
                extra = "".join(f", {k}={v}" for k, v in e.items() if k not in ("row", "value"))
                head = f"row {e['row']}" if e.get("row") is not None else "value"
                lines.append(f"    {head}: {_show(e.get('value'), _SUMMARY_CHARS)}{extra}")
        return "\n".join(lines)


class DataValidationError(Exception):
    """Raised by callers when a `ValidationReport` failed; `str(exc)` is `report.summary()`."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


# ---------------------------------------------------------------------------------------------
# Suite


@dataclass
class _Check:
    """One expectation of the suite plus what is needed to report it."""

    key: str
    expectation: Any  # a great_expectations.expectations.Expectation
    description: str
    column: str | None
    where: str  # "all" splits, "eval": every split but train, or one split's name
    requires: tuple[str, ...] = ()  # source columns the split must have
    examples: Callable[[_Split, dict, int], list[dict]] | None = None  # default: from GE indices
    describe: Callable[[_Split, dict], str] | None = None  # description of a failure


@dataclass
class _Split:
    """A split prepared for GE: source columns plus derived `__…` columns, positional index."""

    name: str
    frame: pd.DataFrame
    rows: np.ndarray  # 1-based record number per position
    columns: list[str]  # source columns


def _derived(name: str, what: str) -> str:
    return f"__{name}__{what}"


def _gx_modules() -> tuple[Any, Any]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def validate_splits(
    splits: Mapping[str, pd.DataFrame],
    *,
    text_column: str,
    label_column: str,
    labels: Sequence[str],
    config: ValidationConfig,
    suite_name: str,
) -> ValidationReport:
    """Run the suite on every given split; a failed report is returned, never raised."""
    gx, gxe = _gx_modules()
    declared = list(dict.fromkeys(str(v) for v in labels))
    order = [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]
    if not order:  # nothing to validate: the table check still runs, on an empty frame
        order, splits = ["all"], {"all": pd.DataFrame()}
    prepared = {
        name: _prepare(name, splits[name], text_column, label_column, declared) for name in order
    }
    train_rows = _text_rows(prepared.get("train"), text_column)
    validation_rows = _text_rows(prepared.get("validation"), text_column)
    for name, split in prepared.items():
        if text_column not in split.columns:
            continue
        norm = split.frame[_derived(text_column, "normalised")]
        if name != "train" and train_rows is not None:
            split.frame[_derived(text_column, "train_row")] = norm.map(train_rows).astype(float)
        if name == "test" and validation_rows is not None:
            rows = norm.map(validation_rows).astype(float)
            split.frame[_derived(text_column, "validation_row")] = rows
            split.frame[_derived(text_column, "in_validation")] = rows.notna()

    checks = _build_checks(
        gxe,
        text_column,
        label_column,
        declared,
        config,
        train_texts=train_rows is not None,
        validation_texts=validation_rows is not None,
    )
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
            and set(c.requires) <= set(split.columns)
        ]
        suite = gx.ExpectationSuite(
            name=f"{suite_name}.{name}", expectations=[c.expectation for c in applicable]
        )
        batch = batch_definition.get_batch(batch_parameters={"dataframe": split.frame})
        outcome = batch.validate(suite, result_format=result_format)
        found = {(r.expectation_config.meta or {}).get("check"): r for r in outcome.results}
        for c in applicable:  # suite order, not GE's result order
            results.append(_to_result(c, split, found.get(c.key), config))
    return ValidationReport(
        suite_name=suite_name, success=all(r.success for r in results), checks=results
    )


def save_report(report: ValidationReport, folder: Path) -> list[Path]:
    """Write `validation_report.json` and `validation_report.md` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "validation_report.json"
    md_path = folder / "validation_report.md"
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    md_path.write_text(report.to_markdown())
    return [json_path, md_path]


def _quiet(context: Any) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)


def _build_checks(
    gxe: Any,
    text: str,
    label: str,
    declared: list[str],
    config: ValidationConfig,
    *,
    train_texts: bool,
    validation_texts: bool,
) -> list[_Check]:
    """The suite, once per call; `where`/`requires` decide on which splits each one runs."""
    lo, hi, least = config.min_text_length, config.max_text_length, config.min_examples_per_class
    stripped, label_str = _derived(text, "stripped"), _derived(label, "as_str")
    checks: list[_Check] = []

    def add(key: str, expectation: Any, description: str, column: str | None, **kw: Any) -> None:
        kw.setdefault("where", "all")
        kw.setdefault("requires", (column,) if column else ())
        checks.append(_Check(key, expectation, description, column, **kw))

    for key, col in (("text_exists", text), ("label_exists", label)):
        add(
            key,
            gxe.ExpectColumnToExist(column=col),
            f"required column {col!r} present",
            col,
            requires=(),
            describe=_missing_column(col),
        )
    add(
        "rows",
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        "split has at least 1 row",
        None,
        describe=lambda split, info: "split is empty (0 rows; header-only or empty file)",
    )
    add("text_not_null", gxe.ExpectColumnValuesToNotBeNull(column=text), "texts not missing", text)
    add(
        "text_is_str",
        gxe.ExpectColumnValuesToBeOfType(column=text, type_="str"),
        "texts are strings",
        text,
        examples=_source_examples(text, with_type=True),
    )
    add(
        "text_length",
        gxe.ExpectColumnValueLengthsToBeBetween(column=stripped, min_value=lo, max_value=hi),
        f"text length (stripped) between {lo} and {hi} characters; blank texts fail",
        text,
        examples=_source_examples(text, with_length=True),
    )
    add(
        "label_not_null",
        gxe.ExpectColumnValuesToNotBeNull(column=label),
        "labels not missing",
        label,
    )
    if declared:
        add(
            "label_in_set",
            gxe.ExpectColumnValuesToBeInSet(column=label_str, value_set=declared),
            f"labels inside the declared label set {declared} (compared as strings)",
            label,
            examples=_source_examples(label, with_type=True),
        )
    add(
        "train_two_labels",
        gxe.ExpectColumnUniqueValueCountToBeBetween(column=label_str, min_value=2),
        "training split has at least 2 distinct labels",
        label,
        where="train",
        examples=_distinct_labels(label),
        describe=lambda split, info: (
            f"training split has {info.get('observed_value', 0)} distinct label(s); "
            "at least 2 needed"
        ),
    )
    if declared:
        add(
            "train_all_classes",
            gxe.ExpectColumnDistinctValuesToContainSet(column=label_str, value_set=declared),
            "every declared class occurs in the training split",
            label,
            where="train",
            examples=_absent_classes(label, declared),
            describe=_describe_absent(label, declared),
        )
    add(
        "train_class_size",
        gxe.ExpectColumnValuesToBeBetween(column=_derived(label, "class_size"), min_value=least),
        f"every {'declared ' if declared else ''}class has at least {least} training examples "
        "(rows of short classes are unexpected)",
        label,
        where="train",
        examples=_short_classes(label, least),
        describe=_describe_short(label, least),
    )
    share = config.max_duplicate_share
    if share < 1:
        add(
            "duplicates",
            gxe.ExpectColumnValuesToBeUnique(column=_derived(text, "dup_key"), mostly=1 - share),
            f"at most {_percent(share)} of rows hold a text (lowercased, whitespace-collapsed) "
            "that occurs more than once in the split",
            text,
            examples=_repeated_texts(text),
            describe=_describe_repeated(text, share),
        )
    if config.check_leakage and train_texts:
        add(
            "leakage",
            gxe.ExpectColumnValuesToBeNull(column=_derived(text, "train_row")),
            "no text (lowercased, whitespace-collapsed) also occurs in the training split",
            text,
            where="eval",
            examples=_leak_examples(text, "train"),
        )
    if config.check_leakage and validation_texts:
        add(
            "validation_leakage",
            gxe.ExpectColumnValuesToNotBeInSet(
                column=_derived(text, "in_validation"), value_set=[True]
            ),
            "no text (lowercased, whitespace-collapsed) also occurs in the validation split "
            "(epoch selection and promotion would be judged on test data)",
            text,
            where="test",
            examples=_leak_examples(text, "validation"),
        )
    if config.check_phi:
        kinds = ", ".join(dict.fromkeys(kind for kind, _ in PHI_PATTERNS))
        add(
            "phi",
            gxe.ExpectColumnValuesToNotMatchRegexList(
                column=text, regex_list=[rx for _, rx in PHI_PATTERNS]
            ),
            f"no PHI-like patterns in texts ({kinds}); shown values are redacted",
            text,
            examples=_phi_examples(text),
        )
    for c in checks:
        c.expectation.meta = {"check": c.key}
    return checks


# ---------------------------------------------------------------------------------------------
# Preparing splits


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.Series(frame[name].to_numpy(dtype=object), dtype=object)


def _prepare(name: str, frame: pd.DataFrame, text: str, label: str, declared: list[str]) -> _Split:
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    frame = frame.loc[:, ~frame.columns.duplicated()]  # a duplicated name: the first one counts
    index = frame.index
    if pd.api.types.is_integer_dtype(index.dtype):
        rows = index.to_numpy(dtype=np.int64) + 1
    else:
        rows = np.arange(1, len(frame) + 1, dtype=np.int64)
    work = frame.reset_index(drop=True)
    columns = list(frame.columns)
    if text in frame.columns:
        values = _column(frame, text)
        is_str = values.map(lambda v: isinstance(v, str)).astype(bool)
        stripped = values.where(is_str).str.strip()
        work[text] = values
        work[_derived(text, "stripped")] = stripped.astype(object)
        normalised = stripped.str.replace(r"\s+", " ", regex=True).str.lower()
        work[_derived(text, "normalised")] = normalised.astype(object)
        # blank texts fail the length check; they are not also reported as repeated
        work[_derived(text, "dup_key")] = normalised.where(normalised != "").astype(object)
    if label in frame.columns:
        values = _column(frame, label)
        as_str = values.map(label_key, na_action="ignore").astype(object)
        work[label] = values
        work[_derived(label, "as_str")] = as_str
        if name == "train":
            classes = set(declared) if declared else set(as_str.dropna())
            sizes = as_str.map(as_str.value_counts()).where(as_str.isin(classes))
            work[_derived(label, "class_size")] = sizes.astype(float)
    return _Split(name=name, frame=work, rows=rows, columns=columns)


def _text_rows(split: _Split | None, text: str) -> dict[str, int] | None:
    """Normalised text of a split -> first record number holding it (None: no such texts)."""
    if split is None or text not in split.columns:
        return None
    norm = split.frame[_derived(text, "normalised")]
    keep = norm.notna() & ~norm.duplicated()
    return dict(zip(norm[keep], split.rows[keep.to_numpy()].tolist(), strict=True))


# ---------------------------------------------------------------------------------------------
# Results


def _to_result(check: _Check, split: _Split, result: Any, config: ValidationConfig) -> CheckResult:
    if result is None:  # GE dropped the expectation: report it rather than pass silently
        return CheckResult(
            split.name,
            _gx_type(check),
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
    elif not success:
        if check.describe is not None:
            description = shown(check.describe(split, info))
        positions = [int(p) for p in info.get("partial_unexpected_index_list") or []]
        builder = check.examples or _source_examples(check.column)
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
            value = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
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


def _gx_type(check: _Check) -> str:
    return str(check.expectation.expectation_type)


def _missing_column(column: str) -> Callable[[_Split, dict], str]:
    def describe(split: _Split, info: dict) -> str:
        found = ", ".join(repr(c) for c in split.columns) or "none"
        return (
            f"required column {column!r} is missing (columns found: {found}); "
            f"the checks on {column!r} were skipped"
        )

    return describe


def _source_examples(
    column: str | None, *, with_type: bool = False, with_length: bool = False
) -> Callable[[_Split, dict, int], list[dict]]:
    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        if column is None or column not in split.frame:
            return []
        values = split.frame[column]
        out = []
        for pos in info["positions"][:limit]:
            value = values.iat[pos]
            item = {"row": int(split.rows[pos]), "value": _cell(value)}
            if with_type and value is not None and not isinstance(value, str):
                item["type"] = type(value).__name__
            if with_length and isinstance(value, str):
                item["length"] = len(value.strip())
            out.append(item)
        return out

    return build


def _distinct_labels(label: str) -> Callable[[_Split, dict, int], list[dict]]:
    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        counts = split.frame[_derived(label, "as_str")].value_counts()
        return [{"row": None, "value": k, "count": int(v)} for k, v in counts.head(limit).items()]

    return build


def _absent_classes(label: str, declared: list[str]) -> Callable[[_Split, dict, int], list[dict]]:
    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        present = set(split.frame[_derived(label, "as_str")].dropna())
        absent = [c for c in declared if c not in present]
        return [{"row": None, "value": c, "count": 0} for c in absent[:limit]]

    return build


def _short_classes(label: str, least: int) -> Callable[[_Split, dict, int], list[dict]]:
    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        sizes = split.frame[_derived(label, "class_size")]
        names = split.frame[_derived(label, "as_str")]
        first = names[sizes.notna() & (sizes < least)].drop_duplicates()
        out = []
        for pos, name in first.head(limit).items():
            out.append({"row": int(split.rows[pos]), "value": name, "count": int(sizes.iat[pos])})
        return out

    return build


def _describe_absent(label: str, declared: list[str]) -> Callable[[_Split, dict], str]:
    def describe(split: _Split, info: dict) -> str:
        present = set(split.frame[_derived(label, "as_str")].dropna())
        absent = ", ".join(repr(c) for c in declared if c not in present)
        return f"declared classes absent from the training split: {absent}"

    return describe


def _describe_short(label: str, least: int) -> Callable[[_Split, dict], str]:
    def describe(split: _Split, info: dict) -> str:
        sizes = split.frame[_derived(label, "class_size")]
        names = split.frame[_derived(label, "as_str")][sizes.notna() & (sizes < least)]
        counts = names.value_counts().sort_values()
        shown = ", ".join(f"{k!r} ({v})" for k, v in counts.items())
        return f"classes with fewer than {least} training examples: {shown}"

    return describe


def _leak_examples(text: str, other: str) -> Callable[[_Split, dict, int], list[dict]]:
    """Leaked rows with the record number of the same text in split `other`."""

    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        values, other_row = split.frame[text], split.frame[_derived(text, f"{other}_row")]
        return [
            {
                "row": int(split.rows[p]),
                "value": _cell(values.iat[p]),
                f"{other}_row": int(other_row.iat[p]),
            }
            for p in info["positions"][:limit]
        ]

    return build


def _repeats(split: _Split, text: str) -> pd.DataFrame:
    """One row per text held by more than one row: first position, count; most copies first."""
    key = split.frame[_derived(text, "dup_key")]
    key = key[key.notna()]
    groups = pd.DataFrame({"key": key, "pos": key.index}).groupby("key", sort=False)["pos"]
    table = pd.DataFrame({"first": groups.min(), "count": groups.size()})
    table = table[table["count"] > 1]
    return table.sort_values(["count", "first"], ascending=[False, True])


def _repeated_texts(text: str) -> Callable[[_Split, dict, int], list[dict]]:
    """The most repeated texts: first row holding each, its text, how many rows hold it."""

    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        values = split.frame[text]
        return [
            {
                "row": int(split.rows[int(first)]),
                "value": _cell(values.iat[int(first)]),
                "count": int(count),
            }
            for first, count in _repeats(split, text).head(limit).itertuples(index=False)
        ]

    return build


def _describe_repeated(text: str, share: float) -> Callable[[_Split, dict], str]:
    def describe(split: _Split, info: dict) -> str:
        repeats = _repeats(split, text)
        held = int(repeats["count"].sum())
        most = int(repeats["count"].max()) if held else 0
        total = int(split.frame[_derived(text, "dup_key")].notna().sum())
        return (
            f"{_percent(held / total if total else 0.0)} of rows hold a text (lowercased, "
            f"whitespace-collapsed) that occurs more than once in the split ({len(repeats)} "
            f"such texts; the most repeated one {most} times); at most {_percent(share)} "
            "allowed (validation.max_duplicate_share)"
        )

    return describe


def _phi_examples(text: str) -> Callable[[_Split, dict, int], list[dict]]:
    def build(split: _Split, info: dict, limit: int) -> list[dict]:
        out = []
        for p in info["positions"][:limit]:
            value = str(split.frame[text].iat[p])
            kinds = [kind for kind, rx in _PHI_COMPILED if rx.search(value)]
            item = {"row": int(split.rows[p]), "value": redact_phi(value)}
            item["pattern"] = ", ".join(dict.fromkeys(kinds))
            out.append(item)
        return out

    return build


# ---------------------------------------------------------------------------------------------
# Formatting


def _cell(value: Any) -> Any:
    """A JSON-friendly copy of a cell value (capped later, in `_finish_example`)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _percent(share: float) -> str:
    """0.05 -> '5%', 0.4743 -> '47.43%'."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _show(value: Any, limit: int) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= limit else value[:limit] + "…"
        return repr(shown)
    return "null" if value is None else str(value)


def _row_label(row: Any) -> str:
    return "–" if row is None else str(row)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
