"""Tokenise once, then batch with dynamic padding (optionally grouping similar lengths)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from components.tokencache import tokenize_cached


@dataclass
class Encoded:
    """Token ids per example (unpadded) and optional label ids."""

    input_ids: list[list[int]]
    labels: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(
    tokenizer, texts: Sequence[str], max_length: int, labels=None, cache: bool = True
) -> Encoded:
    """Tokenise without padding: padding happens per batch, to the batch's longest text.

    With `cache`, token ids come from the on-disk tokenization cache when these exact texts
    were tokenized before with this tokenizer and `max_length` (`components.tokencache`)."""
    if cache:
        ids = tokenize_cached(tokenizer, texts, max_length)
    else:
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return Encoded(ids, None if labels is None else [int(x) for x in labels])


def pad_batch(rows: list[list[int]], pad_id: int, pad_to: int | None = None) -> dict:
    """Right-pad to the longest row (or to `pad_to`)."""
    width = pad_to or max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def batch_order(
    lengths: Sequence[int],
    batch_size: int,
    shuffle: bool,
    seed: int,
    group_by_length: bool,
) -> list[np.ndarray]:
    """Index batches. Grouped: shuffle, sort within mega-batches of 50 batches by length,
    cut into batches, then shuffle the batches (the Hugging Face `group_by_length` recipe)."""
    if not len(lengths):
        return []
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    lengths = np.asarray(lengths)
    if group_by_length:
        mega = batch_size * 50
        chunks = [idx[i : i + mega] for i in range(0, len(idx), mega)]
        idx = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in chunks])
    out = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    if shuffle and group_by_length:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def iter_batches(
    data: Encoded,
    batch_size: int,
    pad_id: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    group_by_length: bool = True,
    pad_to: int | None = None,
) -> Iterator[dict]:
    """Padded tensor batches with `input_ids`, `attention_mask`, `index` and maybe `labels`."""
    lengths = [len(r) for r in data.input_ids]
    for idx in batch_order(lengths, batch_size, shuffle, seed, group_by_length):
        batch = pad_batch([data.input_ids[i] for i in idx], pad_id, pad_to)
        batch["index"] = torch.as_tensor(idx)
        if data.labels is not None:
            batch["labels"] = torch.as_tensor([data.labels[i] for i in idx], dtype=torch.long)
        yield batch
