"""The causal-LM model the training loop trains, and its on-disk bundle.

A generative bundle holds the trained weights only (a peft adapter, or the tensors a `full`
method changed), the tokenizer with its chat template (so training, evaluation and serving
render conversations the same way), and the `peftops.json` manifest naming the base model,
which is resolved again at load time and never copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.generative.decoding import DecodingSettings, generate
from components.generative.models import (
    chat_template_source,
    load_causal_lm,
    place_for_inference,
)
from components.generative.templating import (
    IGNORE_INDEX,
    template_hash,
    trained_targets,
    with_system_prompt,
)
from components.modeling import (
    BUNDLE_FORMAT,
    MANIFEST,
    ModelLoadError,
    load_trained_weights,
    read_manifest,
    refuse_pickled_weights,
    save_trained_weights,
)


class CausalLM(nn.Module):
    """A causal LM as the training loop and selection see it: `backbone` (what selection
    wraps in an adapter) and `forward(input_ids, attention_mask) -> logits`. No head: the
    LM head is part of the backbone (and tied to the embeddings in most small models)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.training = backbone.training  # wrapping a model does not change its mode

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        loss_chunk_tokens: int | None = None,
    ) -> torch.Tensor:
        """All positions' logits; with `labels`, `trained_logits`, or with a chunk size too
        `trained_loss` (training calls them so, as a DDP wrapper only syncs what goes through
        the module call)."""
        if labels is not None and loss_chunk_tokens:
            return self.trained_loss(input_ids, attention_mask, labels, loss_chunk_tokens)
        if labels is not None:
            return self.trained_logits(input_ids, attention_mask, labels)
        logits = self.backbone(input_ids=input_ids, attention_mask=attention_mask).logits
        # prompt tuning prepends virtual tokens: keep the real tokens' positions
        return logits[:, -input_ids.size(1) :]

    def trained_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Next-token logits at the positions whose next token is trained only (rows in the
        order of `trained_targets`). The LM head over a 49k vocabulary is ~20 % of a small
        model's compute and most of its activation memory, and only the answer's ~25 % of
        positions need it (TRL and torchtune do the same): transformers' `logits_to_keep`
        with a boolean (batch, length) mask runs the head on those positions alone."""
        if self._decoding_model() is None:  # prompt learning: virtual tokens, peft's forward
            logits = self(input_ids, attention_mask)
            return logits[:, :-1][labels[:, 1:] != IGNORE_INDEX]
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep)
        return out.logits

    def trained_loss(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        chunk_tokens: int,
    ) -> torch.Tensor:
        """Mean next-token cross-entropy over the trained positions, the LM head and the
        loss taken `chunk_tokens` positions at a time (`generation.loss_chunk_tokens`).

        Each chunk runs under a non-reentrant `torch.utils.checkpoint`, so its logits (and
        their fp32 copy and log-softmax) are freed after the chunk and recomputed in the
        backward pass: at most one chunk's vocabulary-wide logits are alive, instead of every
        trained position's. Written here because transformers' `logits_to_keep` selects the
        positions but keeps all their logits at once, and the fused chunked losses (Liger's)
        are GPU kernels."""
        from torch.utils.checkpoint import checkpoint

        targets = trained_targets(labels)
        backbone = self._decoding_model()
        if backbone is None:
            logits = self.trained_logits(input_ids, attention_mask, labels)
            return nn.functional.cross_entropy(logits.float(), targets)
        hidden = self._trained_hidden(backbone, input_ids, attention_mask, labels)
        head = backbone.get_output_embeddings()

        def summed(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return nn.functional.cross_entropy(head(h).float(), t, reduction="sum")

        chunks = [
            checkpoint(
                summed,
                hidden[i : i + chunk_tokens],
                targets[i : i + chunk_tokens],
                use_reentrant=False,
            )
            for i in range(0, len(targets), chunk_tokens)
        ]
        return torch.stack(chunks).sum() / len(targets)

    def _decoding_model(self) -> nn.Module | None:
        """The transformers model whose decoder and LM head the trained positions go through
        (adapters are injected into its layers); None for prompt learning (virtual tokens)."""
        from peft import PeftModel

        backbone = self.backbone
        if isinstance(backbone, PeftModel):
            if backbone.active_peft_config.is_prompt_learning:
                return None
            backbone = backbone.get_base_model()
        return backbone

    @staticmethod
    def _trained_hidden(
        backbone: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """The decoder's last hidden state at the positions whose next token is trained."""
        hidden = backbone.get_decoder()(input_ids=input_ids, attention_mask=attention_mask)
        keep = labels[:, 1:] != IGNORE_INDEX
        return hidden.last_hidden_state[:, :-1][keep]


def save_generative_bundle(
    model: CausalLM, tokenizer: Any, folder: Path, manifest: dict[str, Any]
) -> Path:
    """Write the trained part of `model`, the tokenizer and the manifest to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = save_trained_weights(model.backbone, folder)
    tokenizer.save_pretrained(folder / "tokenizer")
    data = {
        **manifest,
        "format": BUNDLE_FORMAT,
        "task": "generation",
        "weights": kind,
        "chat_template_hash": template_hash(tokenizer),
        "chat_template": chat_template_source(tokenizer),  # the model's, or peftops' ChatML
    }
    (folder / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True))
    return folder


class Generator:
    """A loaded generative bundle: `generate(conversations)` → the assistant's answers."""

    def __init__(self, model: nn.Module, tokenizer: Any, manifest: dict[str, Any]) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.system_prompt: str | None = manifest.get("system_prompt")
        self.settings = DecodingSettings(**manifest.get("decoding", {}))

    def conversation(self, prompt: str) -> list[dict]:
        """One user message after the bundle's system prompt (as the model was trained)."""
        return with_system_prompt([{"role": "user", "content": prompt}], self.system_prompt)

    def generate(
        self, conversations: list[list[dict]], settings: DecodingSettings | None = None
    ) -> list[str]:
        return generate(self.model, self.tokenizer, conversations, settings or self.settings)


def load_generative_bundle(folder: Path, merge: bool = True) -> Generator:
    """Rebuild the generator of a bundle: the base model, the adapter (merged into the base
    layers with `merge`) or changed tensors, and the bundle's own tokenizer and template."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    manifest = read_manifest(folder)
    refuse_pickled_weights(folder, f"model bundle {folder}")
    backbone, _, _ = load_causal_lm(manifest["base_model"])
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    if template_hash(tokenizer) != manifest["chat_template_hash"]:
        raise ModelLoadError(f"bundle {folder}: its tokenizer's chat template was changed")
    backbone = load_trained_weights(backbone, folder, manifest["weights"], merge)
    backbone.config.pad_token_id = tokenizer.pad_token_id
    return Generator(place_for_inference(backbone), tokenizer, manifest)
