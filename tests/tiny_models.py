"""Tiny random models built from a config, saved like a hub checkpoint (no download).

They reuse the tokenizer files of a packaged model, so they tokenize real text: MiniLM's for
"bert"/"llama", SmolLM2's (from its GGUF file, with its ChatML template) for "causal_lm".
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import torch

from peftops.bench.models import copy_packaged_tokenizer, random_encoder


def make_tiny_model(kind: str, folder: Path, seed: int = 0) -> Path:
    """`kind` is "bert" (encoder), "llama" (decoder) or "causal_lm" (a Llama LM with SmolLM2's
    tokenizer); returns the model folder."""
    if kind == "bert":
        return random_encoder(folder, "tiny", seed)
    if kind == "causal_lm":
        return tiny_causal_lm(folder, seed)
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


@cache
def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer and chat template, read once from the packaged GGUF file (~7 s;
    the weights are not dequantised)."""
    import os

    from transformers import AutoTokenizer

    from components.generative.models import DEFAULT_GENERATIVE_MODEL, packaged_gguf

    if os.environ.get("PEFTOPS_TOKENIZERS"):  # see peftops.bench.models.copy_packaged_tokenizer
        return AutoTokenizer.from_pretrained(f"{os.environ['PEFTOPS_TOKENIZERS']}/smollm2-135m")
    folder, filename, _, _ = packaged_gguf(DEFAULT_GENERATIVE_MODEL)
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=filename)


def tiny_causal_lm(folder: Path, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """A 2-layer, 32-wide LlamaForCausalLM with random weights and SmolLM2's tokenizer.
    A large `initializer_range` (0.5) makes greedy outputs depend on the prompt (at 0.02
    every prompt yields the same tokens)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=initializer_range,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def reference_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The textbook masked LM loss the pipeline's losses must equal: every position's logits,
    mean next-token cross-entropy over the trained tokens (labels != -100)."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.size(-1)),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
    )
