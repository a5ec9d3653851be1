"""Methods: the single place where a method's settings become a peft config.

`check_method` refuses combinations peft or the model cannot do, at selection time (before any
training); `peft_config` builds the config; `step_hook` is the per-step call a method needs
(AdaLoRA's rank allocation), or None.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from torch import nn

from components.config import ADAPTER_METHODS, PROMPT_METHODS, RANKED_METHODS, MethodConfig
from components.selection.types import Selection


class MethodError(ValueError):
    """A method that cannot be applied to this model/selection; raised before training."""


def check_method(
    backbone: nn.Module, method: MethodConfig, strategy: str, max_length: int | None = None
) -> None:
    """Raise `MethodError` when `method` cannot train this backbone with this strategy."""
    name, model = method.name, type(backbone).__name__
    if name in PROMPT_METHODS:
        if strategy == "auto":
            raise MethodError(f"method {name!r} adds virtual tokens: 'auto' has nothing to choose")
        config = getattr(backbone, "config", None)
        missing = [
            key
            for key in ("num_hidden_layers", "num_attention_heads", "hidden_size")
            if getattr(config, key, None) is None
        ]
        if missing:
            raise MethodError(f"method {name!r} needs {missing} in the config of {model}")
        positions = getattr(config, "max_position_embeddings", None)
        if max_length and positions and max_length + method.num_virtual_tokens > positions:
            raise MethodError(
                f"method {name!r}: model.max_length={max_length} + method.num_virtual_tokens="
                f"{method.num_virtual_tokens} exceeds {model}'s {positions} positions"
            )
    if name == "prefix_tuning":
        accepted = inspect.signature(backbone.forward).parameters
        if not {"past_key_values", "cache"} & set(accepted):
            raise MethodError(
                f"method 'prefix_tuning' needs attention that takes cached keys/values "
                f"(past_key_values); {model}.forward does not: use prompt_tuning or lora"
            )
    if strategy == "bias_only" and not any(
        n.endswith("bias") for n, _ in backbone.named_parameters()
    ):
        raise MethodError(
            f"method {name!r} with selection.strategy='bias_only' (BitFit): {model} has no bias "
            "terms, so only the head would train; use head_only or an adapter method"
        )


def peft_config(selection: Selection, method: MethodConfig, total_steps: int | None = None) -> Any:
    """The peft config of `method` on `selection`; `total_steps` is AdaLoRA's schedule length."""
    import peft

    name = method.name
    if name not in ADAPTER_METHODS:
        raise MethodError(f"method {name!r} trains parameters directly: it has no peft config")
    if name == "prompt_tuning":
        return peft.PromptTuningConfig(
            task_type="FEATURE_EXTRACTION", num_virtual_tokens=method.num_virtual_tokens
        )
    if name == "prefix_tuning":
        return peft.PrefixTuningConfig(
            task_type="FEATURE_EXTRACTION", num_virtual_tokens=method.num_virtual_tokens
        )
    targets = list(selection.target_modules)
    if not targets:
        raise MethodError(f"method {name!r} needs at least one target module")
    if name == "ia3":
        kinds = {row["module"]: row["kind"] for row in selection.table}
        ff = [t for t in targets if kinds.get(t) == "feed_forward"]
        return peft.IA3Config(target_modules=targets, feedforward_modules=ff)
    if name == "adalora":
        if not total_steps:
            raise MethodError("method 'adalora' needs total_steps (its rank schedule length)")
        tfinal = min(max(1, total_steps // 5), total_steps - 1)  # last steps: ranks fixed
        tinit = min(total_steps // 10, total_steps - tfinal - 1)  # first steps: no pruning
        return peft.AdaLoraConfig(
            init_r=method.r,
            target_r=method.target_r,
            lora_alpha=method.alpha,
            lora_dropout=method.dropout,
            target_modules=targets,
            total_step=total_steps,
            tinit=tinit,
            tfinal=tfinal,
            deltaT=1,
        )
    if name == "loha":
        return peft.LoHaConfig(r=method.r, alpha=method.alpha, target_modules=targets)
    if name == "lokr":
        return peft.LoKrConfig(r=method.r, alpha=method.alpha, target_modules=targets)
    if name == "vera":
        return peft.VeraConfig(r=method.r, vera_dropout=method.dropout, target_modules=targets)
    ranks = dict(selection.rank_pattern) if name in RANKED_METHODS else {}
    # rsLoRA scales by alpha/sqrt(r), which is meant to vary with rank; lora/dora keep alpha/r.
    alphas = {} if name == "rslora" else {k: method.alpha * v / method.r for k, v in ranks.items()}
    return peft.LoraConfig(
        r=method.r,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=targets,
        use_dora=name == "dora",
        use_rslora=name == "rslora",
        rank_pattern={re.escape(k): v for k, v in ranks.items()},
        alpha_pattern={re.escape(k): v for k, v in alphas.items()},
        bias="none",
    )


def wrap_backbone(
    backbone: nn.Module, selection: Selection, method: MethodConfig, total_steps: int | None = None
) -> nn.Module:
    """The backbone as a peft model; peft's own refusals become `MethodError`."""
    from peft import get_peft_model

    config = peft_config(selection, method, total_steps)
    can_generate = getattr(backbone, "can_generate", None)
    if method.name in PROMPT_METHODS and can_generate is not None and can_generate():
        # a causal LM: peft's CAUSAL_LM model keeps virtual tokens in `generate` too
        config.task_type = "CAUSAL_LM"
    try:
        return get_peft_model(backbone, config)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise MethodError(
            f"peft cannot apply {method.name!r} to {type(backbone).__name__}: {err}"
        ) from None


def step_hook(backbone: nn.Module) -> Callable[[int], None] | None:
    """What training calls after each optimiser step with the global step (AdaLoRA), or None."""
    from peft import PeftModel

    if isinstance(backbone, PeftModel) and backbone.active_peft_config.peft_type == "ADALORA":
        return backbone.base_model.update_and_allocate
    return None
