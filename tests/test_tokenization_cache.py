"""Tokenization is cached per dataset version: a re-run on unchanged data does not call the
tokenizer at all, and changed data (or a changed tokenizer / max_length) tokenizes again.

The counter wraps the real tokenizer's `__call__` (every real call still tokenizes), so it
counts what the tokenizer actually did, whoever called it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from components import tokencache
from components.batching import encode
from components.config import apply_overrides, load_preset
from components.selection import run_selection
from components.training import train_classifier
from toy_data import LABELS, toy_split


@pytest.fixture()
def calls(monkeypatch):
    """Texts passed to any real tokenizer call in this test, one list per call."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    seen: list[list[str]] = []
    original = PreTrainedTokenizerBase.__call__

    def counting(self, text=None, *args, **kwargs):
        seen.append([text] if isinstance(text, str) else list(text or []))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", counting)
    return seen


@pytest.fixture()
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert))


def test_second_encode_of_the_same_texts_does_not_tokenize(workspace, tokenizer, calls):
    texts = toy_split(64, 0).texts
    first = encode(tokenizer, texts, 32, cache=True)
    assert len(calls) == 1 and len(calls[0]) == 64
    files = list((workspace / ".peftops" / "tokens").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as stored:  # plain arrays, no pickle
        assert set(stored.files) == {"ids", "offsets"}

    again = encode(tokenizer, texts, 32, cache=True)
    assert len(calls) == 1  # no new tokenizer call
    assert again.input_ids == first.input_ids
    assert again.input_ids == tokenizer(texts, truncation=True, max_length=32)["input_ids"]


def test_changed_data_tokenizer_or_length_tokenizes_again(workspace, tokenizer, calls):
    texts = toy_split(64, 0).texts
    encode(tokenizer, texts, 32)
    changed = [*texts[:-1], texts[-1] + " (edited)"]
    encode(tokenizer, changed, 32)
    assert len(calls) == 2 and calls[1] == changed
    encode(tokenizer, texts, 16)  # another max_length
    assert len(calls) == 3
    tokenizer.add_tokens(["zzqxword"])  # another tokenizer definition
    out = encode(tokenizer, texts, 32)
    assert len(calls) == 4
    assert out.input_ids == tokenizer(texts, truncation=True, max_length=32)["input_ids"]
    encode(tokenizer, texts, 32)
    assert len(calls) == 5  # that last one was cached
    assert len(list((workspace / ".peftops" / "tokens").glob("*.npz"))) == 4


def test_identity_is_stable_across_loads_and_a_damaged_entry_is_recomputed(
    workspace, tiny_bert, tokenizer, calls
):
    from transformers import AutoTokenizer

    texts = toy_split(48, 2).texts
    first = encode(tokenizer, texts, 24)
    reloaded = AutoTokenizer.from_pretrained(str(tiny_bert))  # another process would do this
    assert tokencache.tokenizer_identity(reloaded) == tokencache.tokenizer_identity(tokenizer)
    assert encode(reloaded, texts, 24).input_ids == first.input_ids
    assert len(calls) == 1
    (entry,) = (workspace / ".peftops" / "tokens").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:40])  # truncated by a crash or a full disk
    assert encode(reloaded, texts, 24).input_ids == first.input_ids
    assert len(calls) == 2


def test_cache_can_be_turned_off(workspace, tokenizer, calls, monkeypatch):
    monkeypatch.setenv("PEFTOPS_TOKEN_CACHE", "off")
    texts = toy_split(40, 3).texts
    encode(tokenizer, texts, 32)
    encode(tokenizer, texts, 32)
    assert len(calls) == 2
    assert not (workspace / ".peftops" / "tokens").exists()


def test_a_training_rerun_on_unchanged_data_does_not_tokenize(workspace, tiny_bert, calls):
    config = apply_overrides(
        load_preset("custom"),
        [
            f"model.base_model={tiny_bert}",
            "model.head_init=random",
            "training.epochs=1",
            "training.batch_size=16",
            f"data.labels={json.dumps(LABELS)}",
        ],
    )
    train, val = toy_split(64, 0), toy_split(40, 1)
    selection = run_selection(config, train, len(LABELS))
    before = len(calls)
    first = train_classifier(config, selection, train, val, LABELS, workspace / "a", resume=False)
    tokenized = [c for c in calls[before:] if len(c) > 1]
    assert sorted(map(len, tokenized)) == [40, 64]  # validation and train, once each

    mark = len(calls)
    second = train_classifier(config, selection, train, val, LABELS, workspace / "b", resume=False)
    assert calls[mark:] == []  # the re-run did not tokenize at all
    assert second.history[0]["train_loss"] == pytest.approx(first.history[0]["train_loss"])

    edited = toy_split(64, 0)
    edited.texts[5] = edited.texts[5] + " please"
    mark = len(calls)
    train_classifier(config, selection, edited, val, LABELS, workspace / "c", resume=False)
    assert calls[mark:] == [edited.texts]  # only the changed split is tokenized again
