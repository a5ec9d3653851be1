"""A tiny, learnable four-intent text task for training tests (fixed seeds)."""

from __future__ import annotations

import numpy as np

from components.examples import TextSplit

LABELS = ["card", "transfer", "refund", "login"]
WORDS = {
    "card": "my card was stolen lost missing",
    "transfer": "transfer money sent pending arrived",
    "refund": "refund return money back merchant",
    "login": "login password app locked access",
}


def toy_split(n: int, seed: int) -> TextSplit:
    """`n` texts cycling through the labels, 3–6 words drawn from each label's vocabulary."""
    rng = np.random.default_rng(seed)
    texts, ids = [], []
    for i in range(n):
        label = i % len(LABELS)
        words = WORDS[LABELS[label]].split()
        texts.append(" ".join(rng.choice(words, size=rng.integers(3, 7))))
        ids.append(label)
    return TextSplit(texts, ids)
