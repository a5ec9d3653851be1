"""Which parameters to train: module discovery, the simple strategies and `auto`.

Works on module names of BERT-style encoders (`encoder.layer.3.attention.self.query`),
Llama-style decoders (`layers.3.self_attn.q_proj`) and GPT-2 (`h.3.attn.c_attn`).

A `Selection` is plain data (names, counts, a score table) so it can cross task boundaries,
be logged, and be applied to a freshly loaded model by `apply_selection`.

`auto` scores every linear module on calibration batches by two measures at once
(|grad ⊙ weight| and the empirical Fisher grad²), picks the best modules per added parameter
under a budget, gives LoRA-family methods a per-module rank from the scores (peft
`rank_pattern`), and — with `selection.proxy_steps` — trains a few candidate selections briefly
and keeps the one with the lowest validation loss.

Modules: `types` (the data, a leaf), `discovery`, `cost`, `loss` (the objective scores and
proxies use), `importance`, `ranks`, `auto` (candidates under a budget), `strategies`
(`select_parameters`), `apply`, `proxy`, `evidence` (plot, tags) and `run` (`run_selection`).

The names below are loaded on first use: `components.methods` imports the leaf
`components.selection.types`, which runs this file first, and the selection modules import
`components.methods`; importing them here would close that circle.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# public name → the module of this package that defines it
_HOME = {
    "apply_selection": "apply",
    "choose_under_budget": "auto",
    "adapter_cost": "cost",
    "prompt_cost": "cost",
    "resolve_budget": "cost",
    "base_size": "discovery",
    "discover_modules": "discovery",
    "save_selection_plot": "evidence",
    "selection_tags": "evidence",
    "MEASURES": "importance",
    "importance_scores": "importance",
    "importance_table": "importance",
    "LossFn": "loss",
    "classification_loss": "loss",
    "proxy_validation_loss": "proxy",
    "allocate_ranks": "ranks",
    "run_selection": "run",
    "select_parameters": "strategies",
    "Importance": "types",
    "ModuleInfo": "types",
    "Proxy": "types",
    "Scores": "types",
    "Selection": "types",
    "SelectionError": "types",
}

__all__ = [  # noqa: RUF022  (grouped by module, as above)
    "apply_selection",
    "choose_under_budget",
    "adapter_cost",
    "prompt_cost",
    "resolve_budget",
    "base_size",
    "discover_modules",
    "save_selection_plot",
    "selection_tags",
    "MEASURES",
    "importance_scores",
    "importance_table",
    "LossFn",
    "classification_loss",
    "proxy_validation_loss",
    "allocate_ranks",
    "run_selection",
    "select_parameters",
    "Importance",
    "ModuleInfo",
    "Proxy",
    "Scores",
    "Selection",
    "SelectionError",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
