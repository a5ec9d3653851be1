"""The classification suite: `validate_splits` prepares each split and runs `checks.CHECKS`.

The suite checks the schema, row counts, text and label values, class balance (train), texts
repeated within a split, leakage between splits (train/validation, train/test, validation/test)
and PHI-like patterns. Checks GE cannot express on the raw columns run on derived columns
(stripped text, label key, per-row class count, matching train or validation row), made here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from components.config import ValidationConfig
from components.examples import label_key
from components.validation.checks import Context, build_checks
from components.validation.engine import (
    Split,
    derived,
    gx_modules,
    mark_leakage,
    new_split,
    object_column,
    ordered,
    run_suite,
)
from components.validation.report import ValidationReport


def validate_splits(
    splits: Mapping[str, pd.DataFrame],
    *,
    text_column: str,
    label_column: str,
    labels: Sequence[str],
    config: ValidationConfig,
    suite_name: str,
    groups: Mapping[str, Sequence[str]] | None = None,
    min_group_support: int = 1,
) -> ValidationReport:
    """Run the suite on every given split; a failed report is returned, never raised.

    `groups` maps each group column (fairness slices) to its declared values (empty: any)."""
    _, gxe = gx_modules()
    declared = list(dict.fromkeys(str(v) for v in labels))
    groups = {column: [str(v) for v in values] for column, values in (groups or {}).items()}
    prepared = {
        name: _prepare(name, frame, text_column, label_column, declared, list(groups))
        for name, frame in ordered(splits).items()
    }
    train_texts, validation_texts = mark_leakage(
        prepared, text_column, derived(text_column, "normalised")
    )
    context = Context(
        gxe=gxe,
        text=text_column,
        label=label_column,
        declared=declared,
        config=config,
        train_texts=train_texts,
        validation_texts=validation_texts,
        groups=groups,
        min_group_support=min_group_support,
    )
    return run_suite(prepared, build_checks(context), config=config, suite_name=suite_name)


def _prepare(
    name: str,
    frame: pd.DataFrame,
    text: str,
    label: str,
    declared: list[str],
    group_columns: Sequence[str] = (),
) -> Split:
    split = new_split(name, frame)
    work = split.frame
    for column in group_columns:
        if column in split.columns:
            # the value as a string; empty or blank cells are null (an example with no group)
            values = object_column(work, column).map(label_key, na_action="ignore")
            values = values.map(lambda v: v.strip() or None, na_action="ignore").astype(object)
            work[derived(column, "as_str")] = values
            work[derived(column, "group_size")] = values.map(values.value_counts()).astype(float)
    if text in split.columns:
        values = object_column(work, text)
        is_str = values.map(lambda v: isinstance(v, str)).astype(bool)
        stripped = values.where(is_str).str.strip()
        work[text] = values
        work[derived(text, "stripped")] = stripped.astype(object)
        normalised = stripped.str.replace(r"\s+", " ", regex=True).str.lower()
        work[derived(text, "normalised")] = normalised.astype(object)
        # blank texts fail the length check; they are not also reported as repeated
        work[derived(text, "dup_key")] = normalised.where(normalised != "").astype(object)
    if label in split.columns:
        values = object_column(work, label)
        as_str = values.map(label_key, na_action="ignore").astype(object)
        work[label] = values
        work[derived(label, "as_str")] = as_str
        if name == "train":
            classes = set(declared) if declared else set(as_str.dropna())
            sizes = as_str.map(as_str.value_counts()).where(as_str.isin(classes))
            work[derived(label, "class_size")] = sizes.astype(float)
    return split
