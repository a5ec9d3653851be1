"""The data-efficiency curve for the generation task: at each (k, seed), the base model
prompted with solved examples from the k-shot sample (`few-shot`) against the preset's PEFT
method (and full fine-tuning) trained on that sample, on the same fixed test split.

k counts examples per class. A class is the answer (its `label_key`) when the answers form a closed
label set; the value of the object's first key when answers are JSON objects (the intent for
the assistant presets); else there is one
class and k counts conversations. A seed's k-shot sample contains its smaller ones
(`components.curve.sample_indices`). The prompt holds at most
`generation.few_shot` solved examples (a 135 M model's context and time cannot hold a
hundred), drawn from the sample covering distinct classes first, as the pipeline's few-shot
baseline draws them: past that k the few-shot line cannot improve, which is the prompt's real
limit, not a sampling artefact. The zero-shot base model is the k = 0 reference, computed
once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from components.config import ConfigError, PipelineConfig
from components.curve import (
    FULL,
    CurvePoint,
    fit_point,
    method_config,
    point_fields,
    sample_indices,
    stratified_rows,
)
from components.generative.examples import ChatExamples
from components.generative.metrics import label_key
from components.generative.templating import reference

FEW_SHOT, ZERO_SHOT = "few-shot", "zero-shot"


def class_of(conversation: list[dict], examples: ChatExamples) -> str:
    """The class a conversation counts towards for k (see the module docstring)."""
    answer = reference(conversation)
    if examples.labels:
        return label_key(answer)  # "Yes" and "yes." are one label, as they are scored
    if examples.expect_json:
        try:
            answer_object = json.loads(answer)
        except ValueError:
            return "<invalid>"
        if not isinstance(answer_object, dict) or not answer_object:  # not an object
            return "<invalid>"
        return json.dumps(next(iter(answer_object.values())), sort_keys=True)
    return ""


def class_ids(examples: ChatExamples) -> list[int]:
    names = [class_of(c, examples) for c in examples.train]
    index = {name: i for i, name in enumerate(sorted(set(names)))}
    return [index[name] for name in names]


def sample_chats(examples: ChatExamples, point: CurvePoint) -> ChatExamples:
    """The point's k-shot training conversations (validation and test unchanged)."""
    rows = sample_indices(class_ids(examples), point.k, point.seed)
    return replace(examples, train=[examples.train[i] for i in rows])


def subsample_chats(split: list, examples: ChatExamples, size: int | None, seed: int = 13) -> list:
    """`size` conversations of `split` in their order (all when None or larger), stratified
    by `class_of` as the classifier's curve samples by label: caps the test and validation
    cost without changing the mix of answers."""
    classes = [class_of(c, examples) for c in split]
    if size is not None and size < len(split) and len(set(classes)) < 2:
        # open-ended answers: nothing to stratify, the same plain sample as earlier curves
        rows = sorted(np.random.default_rng(seed).choice(len(split), size=size, replace=False))
    else:
        rows = stratified_rows(classes, size, seed)
    return [split[i] for i in rows]


def default_methods(config: PipelineConfig) -> list[str]:
    peft = config.method.name
    return [FEW_SHOT, peft] if peft == FULL else [FEW_SHOT, peft, FULL]


def check_methods(config: PipelineConfig, methods: Sequence[str]) -> list[str]:
    """Validate the method names before any work: few-shot needs a prompt size, every
    trained one must build a config."""
    if not methods:
        raise ConfigError("no methods given: e.g. --methods few-shot,lora,full")
    for method in methods:
        if method == FEW_SHOT:
            if config.generation.few_shot < 1:
                raise ConfigError(
                    "the few-shot curve needs generation.few_shot >= 1 (the most solved "
                    "examples a prompt holds)"
                )
        elif method == ZERO_SHOT:
            raise ConfigError("zero-shot is the curve's k = 0 reference, computed once")
        elif method == "probe":
            raise ConfigError(
                "probe is the classifier's baseline; a generation preset's is few-shot "
                "(e.g. --methods few-shot,lora,full)"
            )
        else:
            method_config(config, method)
    return list(dict.fromkeys(methods))


def scores(metrics: dict) -> dict:
    """The numbers a row keeps: every scalar metric of the generation objective."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


def base_model_row(
    sampled: ChatExamples, config: PipelineConfig, shots: int, seed: int
) -> tuple[dict, float]:
    """The base model's test metrics prompted with `shots` solved examples of `sampled`
    (0: zero-shot), and the seconds it took."""
    from components.generative.decoding import generate
    from components.generative.models import load_causal_lm, place_for_inference
    from components.generative.prompting import few_shot, pick_shots
    from components.objectives import objective_for

    started = time.perf_counter()
    model, tokenizer, _ = load_causal_lm(config.model.base_model)
    model = place_for_inference(model)
    picked = pick_shots(sampled.train, shots, seed, lambda c: class_of(c, sampled))
    prompts = [few_shot(p, picked) for p in sampled.test_prompts()]
    preds = generate(model, tokenizer, prompts, _decoding(config, sampled.labels))
    metrics = objective_for(config)._scored(preds, sampled).metrics
    return {**scores(metrics), "shots": len(picked)}, time.perf_counter() - started


def _decoding(config: PipelineConfig, labels: list[str] | None = None):
    from components.objectives.generation import _decoding as decoding

    return decoding(config, labels)


def few_shot_point(sampled: ChatExamples, config: PipelineConfig, point: CurvePoint) -> dict:
    """The few-shot row of one point: up to `generation.few_shot` shots from its sample."""
    shots = min(config.generation.few_shot, len(sampled.train))
    metrics, seconds = base_model_row(sampled, config, shots, config.training.seed + point.seed)
    return {
        **point_fields(point, sampled),
        "method": FEW_SHOT,
        **metrics,
        "trainable_params": 0,
        "train_seconds": seconds,
        "best_epoch": None,
    }


def train_point(
    sampled: ChatExamples,
    config: PipelineConfig,
    method: str,
    point: CurvePoint,
    workroot: Path,
    min_steps: int = 0,
) -> dict:
    """One trained method at one point through the generation objective (no baseline state:
    a causal LM's training starts from the base model)."""
    from components.objectives import Baselines

    return fit_point(sampled, Baselines({}), config, method, point, workroot, min_steps, scores)


def classes(examples: ChatExamples) -> int:
    return len(set(class_ids(examples))) or 1
