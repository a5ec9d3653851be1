"""Selection end to end: load the base model, score on calibration batches if `auto`
needs it, select."""

from __future__ import annotations

from typing import Any

from components.batching import encode, iter_batches
from components.config import PROMPT_METHODS, PipelineConfig
from components.examples import TextSplit
from components.modeling import build_classifier
from components.selection.importance import importance_table
from components.selection.proxy import cycled_batches, proxy_validation_loss
from components.selection.strategies import select_parameters
from components.selection.types import ModuleInfo, Scores, Selection, SelectionError


def run_selection(
    config: PipelineConfig,
    train: TextSplit,
    num_labels: int,
    head: Any = None,
    validation: TextSplit | None = None,
) -> Selection:
    """Load the base model and select; `auto` scores modules on calibration batches of the
    training split with the head initialised from `head` (the probe), as training will, and
    with `selection.proxy_steps` compares candidates by loss on `validation` after short runs."""
    model, tokenizer, _ = build_classifier(
        config.model.base_model, num_labels, config.model.pooling, head
    )
    sel = config.selection
    importance, proxy = None, None
    if sel.strategy == "auto" and config.method.name not in PROMPT_METHODS:
        data = encode(tokenizer, train.texts, config.model.max_length, train.label_ids)
        pad, size, seed = tokenizer.pad_token_id, config.training.batch_size, config.training.seed
        batches = list(iter_batches(data, size, pad, shuffle=True, seed=seed))
        batches = batches[: sel.calibration_batches]

        def importance(modules: list[ModuleInfo]) -> dict[str, Scores]:
            return importance_table(model, modules, batches)

        if sel.proxy_steps:
            if validation is None or not len(validation.texts):
                raise SelectionError("selection.proxy_steps needs a validation split")
            steps = cycled_batches(data, size, pad, seed + 1, sel.proxy_steps)
            val = encode(tokenizer, validation.texts, config.model.max_length, validation.label_ids)
            val_batches = list(iter_batches(val, config.evaluation.batch_size, pad))

            def proxy(candidate: Selection) -> float:
                return proxy_validation_loss(model, candidate, config, steps, val_batches)

    return select_parameters(
        model.backbone,
        sel,
        config.method,
        importance,
        max_length=config.model.max_length,
        proxy=proxy,
    )
