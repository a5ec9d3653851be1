"""Validated frames → plain examples: texts and label ids per split, plus the label list."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from components.errors import DataLoadError


@dataclass
class TextSplit:
    texts: list[str]
    label_ids: list[int]
    # group column -> one value per text (fairness slices); never model input, and not part
    # of the training key (they do not change what is trained)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Examples:
    labels: list[str]
    train: TextSplit
    validation: TextSplit
    test: TextSplit

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def label_key(value: Any) -> str | None:
    """A label cell as the string it is matched by; None when empty.

    The one rule used by validation, label inference and encoding: `1`, `1.0`, `np.float32(1)`
    and `"1"` are all `"1"`, so float label columns (Parquet, JSON, pandas upcasts) match
    declared or inferred labels. Strings are kept as they are (no stripping).
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value if isinstance(value, str) else str(value)


def infer_labels(train: pd.DataFrame, label_column: str, declared: list[str]) -> list[str]:
    """The declared label set, or the sorted label keys of the training split."""
    if declared:
        return list(declared)
    return sorted({k for v in train[label_column] if (k := label_key(v)) is not None})


def encode_labels(
    frames: Mapping[str, pd.DataFrame], label_column: str, labels: Sequence[str] = ()
) -> tuple[list[str], dict[str, list[int]]]:
    """The label list and each split's label ids.

    The list is `labels` when declared, else the sorted distinct labels of the train split.
    Labels match by `label_key` (1, 1.0 and "1" alike), as in validation. An empty or
    undeclared label raises DataLoadError naming the split and rows (validation should have
    reported these first).
    """
    if labels:
        label_list = [str(label) for label in labels]
        if len(set(label_list)) != len(label_list):
            raise DataLoadError(f"data.labels has duplicates: {label_list}")
    else:
        train = frames.get("train")
        if train is None or label_column not in train.columns:
            raise DataLoadError(
                f"cannot take the label set from the train split: no column {label_column!r}"
            )
        label_list = sorted({k for v in train[label_column] if (k := label_key(v)) is not None})
    ids_of = {label: i for i, label in enumerate(label_list)}
    encoded: dict[str, list[int]] = {}
    for split, frame in frames.items():
        if label_column not in frame.columns:
            raise DataLoadError(
                f"split {split!r} has no label column {label_column!r}; its columns are "
                f"{[str(c) for c in frame.columns]} (set data.label_column)"
            )
        ids, bad = [], []
        for row, value in zip(frame.index, frame[label_column], strict=True):
            key = label_key(value)
            if key in ids_of:
                ids.append(ids_of[key])
            else:
                bad.append(f"row {row}: " + ("empty" if key is None else repr(value)))
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise DataLoadError(
                f"split {split!r}: {len(bad)} label(s) are empty or not in {label_list} "
                f"({shown}); fix those rows or declare the labels in data.labels"
            )
        encoded[split] = ids
    return label_list, encoded


def require_rows(frames: Mapping[str, pd.DataFrame]) -> None:
    """A `DataLoadError` naming each empty split, for runs whose validation suite (which
    reports it first) is off: training needs rows, the best epoch is chosen on the validation
    split and the model is scored on the test split."""
    empty = [name for name in ("train", "validation", "test") if not len(frames[name])]
    if empty:
        names = ", ".join(empty[:-1]) + " and " + empty[-1] if len(empty) > 1 else empty[0]
        which = f"the {names} split{'s have' if len(empty) > 1 else ' has'}"
        raise DataLoadError(
            f"{which} no rows: training needs train rows, the best epoch is chosen on "
            "validation and the model is scored on test"
        )


def to_examples(
    frames: dict[str, pd.DataFrame],
    text_column: str,
    label_column: str,
    labels: list[str],
    group_columns: Sequence[str] = (),
) -> Examples:
    """Pick the text and label columns (and `group_columns`, kept beside the texts as
    strings, an empty cell as ""); labels become ids in `labels` order.

    Labels match by `label_key` (as in validation). Call after validation: an empty or
    undeclared label raises `DataLoadError` naming the split and rows.
    """
    splits = ("train", "validation", "test")
    label_list, ids = encode_labels({s: frames[s] for s in splits}, label_column, labels)

    def split(name: str) -> TextSplit:
        frame = frames[name]
        texts = frame[text_column].astype(str).str.strip().tolist()
        missing = [c for c in group_columns if c not in frame.columns]
        if missing:
            raise DataLoadError(
                f"split {name!r} has no group column(s) {missing}; its columns are "
                f"{[str(c) for c in frame.columns]} (check data.group_columns)"
            )
        groups = {c: [(label_key(v) or "").strip() for v in frame[c]] for c in group_columns}
        return TextSplit(texts, ids[name], groups)

    return Examples(label_list, *(split(s) for s in splits))
