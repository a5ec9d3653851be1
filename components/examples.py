"""Validated frames → plain examples: texts and label ids per split, plus the label list."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class TextSplit:
    texts: list[str]
    label_ids: list[int]

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


def infer_labels(train: pd.DataFrame, label_column: str, declared: list[str]) -> list[str]:
    """The declared label set, or the sorted labels of the training split."""
    if declared:
        return list(declared)
    return sorted(train[label_column].dropna().astype(str).unique().tolist())


def to_examples(
    frames: dict[str, pd.DataFrame], text_column: str, label_column: str, labels: list[str]
) -> Examples:
    """Pick the text and label columns; labels become ids in `labels` order.

    Call after validation: every label must be in `labels`.
    """
    index = {name: i for i, name in enumerate(labels)}

    def split(name: str) -> TextSplit:
        frame = frames[name]
        texts = frame[text_column].astype(str).str.strip().tolist()
        ids = [index[str(v)] for v in frame[label_column]]
        return TextSplit(texts, ids)

    return Examples(list(labels), split("train"), split("validation"), split("test"))
