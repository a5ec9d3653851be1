"""Tiny random models built from a config, saved like a hub checkpoint (no download).

They reuse the tokenizer files of the packaged MiniLM model, so they tokenize real text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from peftops.bench.models import copy_packaged_tokenizer, random_encoder


def make_tiny_model(kind: str, folder: Path, seed: int = 0) -> Path:
    """`kind` is "bert" (encoder) or "llama" (decoder); returns the model folder."""
    if kind == "bert":
        return random_encoder(folder, "tiny", seed)
    if kind != "llama":
        raise ValueError(kind)
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    LlamaModel(config).save_pretrained(folder)
    copy_packaged_tokenizer(folder)
    return folder
