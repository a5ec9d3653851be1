"""The classification checks: one function per check, listed in suite order in `CHECKS`.

Each function returns its `Check` (the GE expectation on a source or derived column of
`suite.py`'s prepared splits, the description, and how a failure is shown) or None when it does
not apply to this call. A new check is one function here, added to `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from components.config import ValidationConfig
from components.validation.engine import (
    Check,
    Split,
    derived,
    describe_repeated,
    leak_examples,
    phi_examples,
    repeated_examples,
    source_examples,
)
from components.validation.phi import PHI_PATTERNS, phi_kind_names
from components.validation.report import percent


@dataclass(frozen=True)
class Context:
    """What the checks of one `validate_splits` call depend on."""

    gxe: Any  # great_expectations.expectations
    text: str
    label: str
    declared: list[str]
    config: ValidationConfig
    train_texts: bool  # a train split with the text column exists (train leakage applies)
    validation_texts: bool  # likewise for the validation split
    # fairness slices: group column -> its declared values (empty: any non-empty value)
    groups: dict[str, list[str]] = field(default_factory=dict)
    min_group_support: int = 1  # test examples a group value needs to be judged


def text_exists(c: Context) -> Check:
    return column_exists("text_exists", c.gxe, c.text)


def label_exists(c: Context) -> Check:
    return column_exists("label_exists", c.gxe, c.label)


def column_exists(key: str, gxe: Any, column: str) -> Check:
    """`column` is present (the checks on it are skipped, and say so, when it is not)."""

    def describe(split: Split, info: dict) -> str:
        found = ", ".join(repr(name) for name in split.columns) or "none"
        return (
            f"required column {column!r} is missing (columns found: {found}); "
            f"the checks on {column!r} were skipped"
        )

    return Check(
        key,
        gxe.ExpectColumnToExist(column=column),
        f"required column {column!r} present",
        column,
        requires=(),
        describe=describe,
    )


def rows(c: Context | Any) -> Check:
    """The split has rows (any suite's context with `gxe`)."""
    return Check(
        "rows",
        c.gxe.ExpectTableRowCountToBeBetween(min_value=1),
        "split has at least 1 row",
        None,
        describe=lambda split, info: "split is empty (0 rows; header-only or empty file)",
    )


def text_not_null(c: Context) -> Check:
    return Check(
        "text_not_null",
        c.gxe.ExpectColumnValuesToNotBeNull(column=c.text),
        "texts not missing",
        c.text,
    )


def text_is_str(c: Context) -> Check:
    return Check(
        "text_is_str",
        c.gxe.ExpectColumnValuesToBeOfType(column=c.text, type_="str"),
        "texts are strings",
        c.text,
        examples=source_examples(c.text, with_type=True),
    )


def text_length(c: Context) -> Check:
    lo, hi = c.config.min_text_length, c.config.max_text_length
    return Check(
        "text_length",
        c.gxe.ExpectColumnValueLengthsToBeBetween(
            column=derived(c.text, "stripped"), min_value=lo, max_value=hi
        ),
        f"text length (stripped) between {lo} and {hi} characters; blank texts fail",
        c.text,
        examples=source_examples(c.text, with_length=True),
    )


def label_not_null(c: Context) -> Check:
    return Check(
        "label_not_null",
        c.gxe.ExpectColumnValuesToNotBeNull(column=c.label),
        "labels not missing",
        c.label,
    )


def label_in_set(c: Context) -> Check | None:
    if not c.declared:
        return None
    return Check(
        "label_in_set",
        c.gxe.ExpectColumnValuesToBeInSet(column=derived(c.label, "as_str"), value_set=c.declared),
        f"labels inside the declared label set {c.declared} (compared as strings)",
        c.label,
        examples=source_examples(c.label, with_type=True),
    )


def train_two_labels(c: Context) -> Check:
    as_str = derived(c.label, "as_str")

    def examples(split: Split, info: dict, limit: int) -> list[dict]:
        counts = split.frame[as_str].value_counts()
        return [{"row": None, "value": k, "count": int(v)} for k, v in counts.head(limit).items()]

    return Check(
        "train_two_labels",
        c.gxe.ExpectColumnUniqueValueCountToBeBetween(column=as_str, min_value=2),
        "training split has at least 2 distinct labels",
        c.label,
        where="train",
        examples=examples,
        describe=lambda split, info: (
            f"training split has {info.get('observed_value', 0)} distinct label(s); "
            "at least 2 needed"
        ),
    )


def train_all_classes(c: Context) -> Check | None:
    if not c.declared:
        return None
    as_str, declared = derived(c.label, "as_str"), c.declared

    def absent(split: Split) -> list[str]:
        present = set(split.frame[as_str].dropna())
        return [name for name in declared if name not in present]

    def examples(split: Split, info: dict, limit: int) -> list[dict]:
        return [{"row": None, "value": name, "count": 0} for name in absent(split)[:limit]]

    def describe(split: Split, info: dict) -> str:
        shown = ", ".join(repr(name) for name in absent(split))
        return f"declared classes absent from the training split: {shown}"

    return Check(
        "train_all_classes",
        c.gxe.ExpectColumnDistinctValuesToContainSet(column=as_str, value_set=declared),
        "every declared class occurs in the training split",
        c.label,
        where="train",
        examples=examples,
        describe=describe,
    )


def train_class_size(c: Context) -> Check:
    least = c.config.min_examples_per_class
    size_column, as_str = derived(c.label, "class_size"), derived(c.label, "as_str")

    def examples(split: Split, info: dict, limit: int) -> list[dict]:
        sizes = split.frame[size_column]
        names = split.frame[as_str]
        first = names[sizes.notna() & (sizes < least)].drop_duplicates()
        return [
            {"row": int(split.rows[pos]), "value": name, "count": int(sizes.iat[pos])}
            for pos, name in first.head(limit).items()
        ]

    def describe(split: Split, info: dict) -> str:
        sizes = split.frame[size_column]
        names = split.frame[as_str][sizes.notna() & (sizes < least)]
        counts = names.value_counts().sort_values()
        shown = ", ".join(f"{k!r} ({v})" for k, v in counts.items())
        return f"classes with fewer than {least} training examples: {shown}"

    return Check(
        "train_class_size",
        c.gxe.ExpectColumnValuesToBeBetween(column=size_column, min_value=least),
        f"every {'declared ' if c.declared else ''}class has at least {least} training examples "
        "(rows of short classes are unexpected)",
        c.label,
        where="train",
        examples=examples,
        describe=describe,
    )


def duplicates(c: Context) -> Check | None:
    share = c.config.max_duplicate_share
    if share >= 1:  # 1: the check is off
        return None
    key = derived(c.text, "dup_key")
    return Check(
        "duplicates",
        c.gxe.ExpectColumnValuesToBeUnique(column=key, mostly=1 - share),
        f"at most {percent(share)} of rows hold a text (lowercased, whitespace-collapsed) "
        "that occurs more than once in the split",
        c.text,
        examples=repeated_examples(key, c.text),
        describe=describe_repeated(key, share, "text"),
    )


def leakage(c: Context) -> Check | None:
    if not (c.config.check_leakage and c.train_texts):
        return None
    return Check(
        "leakage",
        c.gxe.ExpectColumnValuesToBeNull(column=derived(c.text, "train_row")),
        "no text (lowercased, whitespace-collapsed) also occurs in the training split",
        c.text,
        where="eval",
        examples=leak_examples(c.text, "train"),
    )


def validation_leakage(c: Context) -> Check | None:
    if not (c.config.check_leakage and c.validation_texts):
        return None
    return Check(
        "validation_leakage",
        c.gxe.ExpectColumnValuesToNotBeInSet(
            column=derived(c.text, "in_validation"), value_set=[True]
        ),
        "no text (lowercased, whitespace-collapsed) also occurs in the validation split "
        "(epoch selection and promotion would be judged on test data)",
        c.text,
        where="test",
        examples=leak_examples(c.text, "validation"),
    )


def phi(c: Context) -> Check | None:
    if not c.config.check_phi:
        return None
    return Check(
        "phi",
        c.gxe.ExpectColumnValuesToNotMatchRegexList(
            column=c.text, regex_list=[rx for _, rx in PHI_PATTERNS]
        ),
        f"no PHI-like patterns in texts ({phi_kind_names()}); shown values are redacted",
        c.text,
        examples=phi_examples(c.text),
    )


# Suite order: the report lists each split's checks in this order.
CHECKS: tuple[Callable[[Context], Check | None], ...] = (
    text_exists,
    label_exists,
    rows,
    text_not_null,
    text_is_str,
    text_length,
    label_not_null,
    label_in_set,
    train_two_labels,
    train_all_classes,
    train_class_size,
    duplicates,
    leakage,
    validation_leakage,
    phi,
)


def group_checks(c: Context) -> list[Check]:
    """Per group column (`data.group_columns`): present, no empty value, declared values only
    (when declared), and a warning where a value has too few test examples to be judged."""
    checks: list[Check] = []
    for column, declared in c.groups.items():
        value = derived(column, "as_str")
        exists = column_exists(f"group_exists:{column}", c.gxe, column)
        exists.description = f"group column {column!r} present (data.group_columns)"
        exists.describe = _missing_group(column)
        checks.append(exists)
        checks.append(
            Check(
                f"group_not_empty:{column}",
                c.gxe.ExpectColumnValuesToNotBeNull(column=value),
                f"group column {column!r}: no empty value (every example belongs to a group)",
                column,
                examples=source_examples(column),
            )
        )
        if declared:
            checks.append(
                Check(
                    f"group_in_set:{column}",
                    c.gxe.ExpectColumnValuesToBeInSet(column=value, value_set=declared),
                    f"group column {column!r}: values inside {declared}",
                    column,
                    examples=source_examples(column),
                )
            )
        checks.append(_group_support(c, column))
    return checks


def _missing_group(column: str) -> Callable[[Split, dict], str]:
    def describe(split: Split, info: dict) -> str:
        found = ", ".join(repr(name) for name in split.columns) or "none"
        return (
            f"group column {column!r} is missing (columns found: {found}); evaluation slices "
            f"by it: add it, or set data.group_columns to the columns the data has "
            "(--set 'data.group_columns=[]' to not slice)"
        )

    return describe


def _group_support(c: Context, column: str) -> Check:
    least, size = c.min_group_support, derived(column, "group_size")

    def small(split: Split) -> dict[str, int]:
        values = split.frame[derived(column, "as_str")]
        counts = values.value_counts()
        return {str(k): int(v) for k, v in counts.items() if v < least}

    def examples(split: Split, info: dict, limit: int) -> list[dict]:
        return [
            {"row": None, "value": k, "count": v} for k, v in list(small(split).items())[:limit]
        ]

    def describe(split: Split, info: dict) -> str:
        shown = ", ".join(f"{k!r} ({v})" for k, v in small(split).items())
        return (
            f"group column {column!r}: values with fewer than {least} test examples are shown "
            f"but too small to judge (evaluation.min_slice_support): {shown}"
        )

    return Check(
        f"group_support:{column}",
        c.gxe.ExpectColumnValuesToBeBetween(column=size, min_value=least, severity="warning"),
        f"group column {column!r}: every value has at least {least} test examples (warning only)",
        column,
        where="test",
        examples=examples,
        describe=describe,
        severity="warning",
    )


def build_checks(context: Context) -> list[Check]:
    """The checks that apply to this call, in suite order."""
    checks = [check for make in CHECKS if (check := make(context)) is not None]
    return checks + group_checks(context)
