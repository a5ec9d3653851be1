"""Train/validation/test splits made here: seeded, stratified by label when possible, and
keeping each row's source index."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from components.config import SplitConfig
from components.data.versioning import DataVersion
from components.examples import label_key

SPLITS = ("train", "validation", "test")


@dataclass
class RawSplits:
    """Raw frames per split ("train", "validation", "test") and the version they came from.

    `was_split` is True when this loader made a split itself: a single file split three ways,
    or validation carved out of a train file.
    """

    frames: dict[str, pd.DataFrame]
    version: DataVersion
    was_split: bool


def _stratify_labels(frame: pd.DataFrame, label_column: str) -> pd.Series | None:
    if label_column not in frame.columns:
        return None
    labels = frame[label_column]
    if labels.isna().any():
        return None
    labels = labels.map(label_key)  # 1 and 1.0 are one class, as in validation
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        return None
    return labels


def split_off(
    frame: pd.DataFrame, size: float | int, seed: int, label_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, taken) with `size` rows (fraction or count) taken, stratified when possible.

    Falls back to an unstratified split, and for frames too small to split keeps every row.
    Both parts keep the original index, sorted.
    """
    stratify = _stratify_labels(frame, label_column)
    for labels in (stratify, None) if stratify is not None else (None,):
        try:
            kept, taken = train_test_split(
                frame, test_size=size, random_state=seed, shuffle=True, stratify=labels
            )
        except ValueError:
            continue
        return kept.sort_index(), taken.sort_index()
    return frame, frame.iloc[0:0]


def split_single(
    frame: pd.DataFrame, split: SplitConfig, label_column: str
) -> dict[str, pd.DataFrame]:
    rest, test = split_off(frame, split.test_fraction, split.seed, label_column)
    share = split.validation_fraction / (1 - split.test_fraction)
    train, validation = split_off(rest, share, split.seed, label_column)
    return {"train": train, "validation": validation, "test": test}


def subsample(frame: pd.DataFrame, limit: int, seed: int, label_column: str) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    kept, _ = split_off(frame, len(frame) - limit, seed, label_column)
    return kept
