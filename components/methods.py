"""Methods: the single place where a method's settings become a peft config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.config import MethodConfig

if TYPE_CHECKING:
    from components.selection import Selection


class MethodError(ValueError):
    """A method that cannot be applied to this model/selection; raised before training."""


def peft_config(selection: Selection, method: MethodConfig):
    """The single place where a method's settings become a peft config."""
    from peft import IA3Config, LoraConfig

    targets = list(selection.target_modules)
    if not targets:
        raise MethodError(f"method {method.name!r} needs at least one target module")
    if method.name == "ia3":
        kinds = {row["module"]: row["kind"] for row in selection.table}
        ff = [t for t in targets if kinds.get(t) == "feed_forward"]
        return IA3Config(target_modules=targets, feedforward_modules=ff)
    return LoraConfig(
        r=method.r,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=targets,
        use_dora=method.name == "dora",
        bias="none",
    )
