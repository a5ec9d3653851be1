"""Token ids cached on disk, per dataset version: a re-run on unchanged data does not tokenize.

An entry is keyed by a hash of the texts themselves (so it follows the data's content, not
its path), the tokenizer's identity (its full serialised definition: vocabulary, normaliser,
special tokens; plus its class and the `tokenizers`/`transformers` versions), `max_length`
and the cache format. Entries are plain integer arrays in `.npz` files, written atomically and
read with `allow_pickle=False`, under `<project>/.peftops/tokens/` (`PEFTOPS_HOME`, else the
current directory). `PEFTOPS_TOKEN_CACHE` overrides the folder, or turns the cache off with
`off`.

`STATS` counts hits, misses and the texts actually handed to a tokenizer in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
MIN_ROWS = 32  # smaller calls (a few texts to predict) are not worth a file


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    tokenizer_calls: int = 0
    tokenized_texts: int = 0

    def reset(self) -> None:
        self.hits = self.misses = self.tokenizer_calls = self.tokenized_texts = 0


STATS = CacheStats()


def cache_dir() -> Path | None:
    """Where entries live; None when the cache is off (`PEFTOPS_TOKEN_CACHE=off`)."""
    setting = os.environ.get("PEFTOPS_TOKEN_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return Path(setting)
    home = Path(os.environ.get("PEFTOPS_HOME") or Path.cwd())  # as tracking.project_dir()
    return home.resolve() / ".peftops" / "tokens"


def tokenizer_identity(tokenizer: Any) -> str:
    """A hash of everything that decides the ids a tokenizer produces. Computed on every call
    (~20 ms for a BERT vocabulary), so a tokenizer changed in place (`add_tokens`) is seen."""
    import tokenizers
    import transformers

    parts: dict[str, Any] = {
        "class": type(tokenizer).__qualname__,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
        "truncation_side": getattr(tokenizer, "truncation_side", None),
    }
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # the serialised definition minus the call-time state ("truncation", "padding"), which
        # come before "added_tokens"; cut as a string (re-serialising the vocabulary is slow)
        spec = backend.to_str()
        start = spec.find('"added_tokens"')
        if start < 0:
            parsed = json.loads(spec)
            parsed.pop("truncation", None)
            parsed.pop("padding", None)
            spec = json.dumps(parsed, sort_keys=True)
        parts["backend"] = hashlib.sha256(spec[max(start, 0) :].encode()).hexdigest()
    else:  # a pure-Python tokenizer: its vocabulary and settings
        parts["vocab"] = sorted(tokenizer.get_vocab().items())
        parts["init"] = {k: str(v) for k, v in sorted(tokenizer.init_kwargs.items())}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cache_key(tokenizer: Any, texts: Sequence[str], max_length: int) -> str:
    digest = hashlib.sha256(f"{FORMAT}\0{tokenizer_identity(tokenizer)}\0{max_length}".encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _tokenize(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    STATS.tokenizer_calls += 1
    STATS.tokenized_texts += len(texts)
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def _read(path: Path, rows: int) -> list[list[int]] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, offsets = data["ids"], data["offsets"]
    except Exception:  # missing, truncated or foreign (BadZipFile, ...): tokenize again
        return None
    if len(offsets) != rows + 1 or int(offsets[-1]) != len(ids):
        return None
    flat = ids.tolist()
    bounds = offsets.tolist()
    return [flat[bounds[i] : bounds[i + 1]] for i in range(rows)]


def _write(path: Path, input_ids: list[list[int]]) -> None:
    offsets = np.zeros(len(input_ids) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in input_ids], out=offsets[1:])
    flat = np.fromiter((t for r in input_ids for t in r), dtype=np.int64, count=int(offsets[-1]))
    dtype = np.int32 if (flat.size == 0 or flat.max() < 2**31) else np.int64
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, ids=flat.astype(dtype), offsets=offsets)
        os.replace(tmp, path)  # atomic: readers see the whole file or none
    except OSError:  # a read-only or full disk only costs the next run a tokenization
        tmp.unlink(missing_ok=True)


def tokenize_cached(
    tokenizer: Any, texts: Sequence[str], max_length: int, folder: Path | None = None
) -> list[list[int]]:
    """Unpadded, truncated token ids of `texts`, from the cache when this exact tokenization
    was done before (any process, any run), else from the tokenizer (and then stored)."""
    texts = list(texts)
    folder = folder if folder is not None else cache_dir()
    # ranks but 0 of a distributed run write nothing: they read what rank 0 or an earlier
    # run stored (RANK: set by torchrun / torch elastic and Ray Train)
    writes = int(os.environ.get("RANK", "0")) == 0
    if folder is None or len(texts) < MIN_ROWS:
        return _tokenize(tokenizer, texts, max_length)
    path = Path(folder) / f"{cache_key(tokenizer, texts, max_length)}.npz"
    cached = _read(path, len(texts)) if path.is_file() else None
    if cached is not None:
        STATS.hits += 1
        return cached
    STATS.misses += 1
    input_ids = _tokenize(tokenizer, texts, max_length)
    if writes:
        _write(path, input_ids)
    return input_ids
