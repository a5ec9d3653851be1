"""Generation: instruction tuning of a causal LM on prompt → response or chat data.

Loss on the assistant's tokens (the chat template's rendering, stored with the adapter);
greedy decoding for evaluation; baselines are the base model zero-shot and few-shot.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from components.batching import batch_order
from components.config import GENERATION_METRICS, ConfigError, PipelineConfig
from components.errors import DataLoadError
from components.examples import require_rows
from components.generative.bundle import (
    CausalLM,
    load_generative_bundle,
    save_generative_bundle,
    trained_targets,
)
from components.generative.decoding import DecodingSettings, generate, row_nll, sequence_nll
from components.generative.examples import ChatExamples, closed_label_set, frames_to_messages
from components.generative.metrics import (
    generation_metrics,
    label_key,
    metric_function,
    perplexity,
)
from components.generative.models import (
    check_4bit,
    load_causal_lm,
    load_chat_tokenizer,
    place_for_inference,
)
from components.generative.prompting import few_shot, pick_shots
from components.generative.serving import (
    PeftopsGenerator,
    conversations_from_input,
    generator_signature,
)
from components.generative.templating import (
    EncodedChat,
    collate,
    encode_chat,
    masked_preview,
    pack,
    prompt_messages,
    reference,
    token_counts,
)
from components.objectives.base import Baselines, EpochCallback, PyfuncSpec, Scored
from components.selection import Selection, select_parameters
from components.selection.apply import apply_selection
from components.selection.importance import importance_table
from components.training import (
    Recipe,
    TrainResult,
    fit,
    head_and_body_groups,
    is_main_process,
    job_key,
)
from components.validation import ValidationReport
from components.validation.generative import validate_chat_splits

_HERE = Path(__file__).resolve().parent.parent


PREVIEW_EXAMPLES = 3  # training examples shown with their trained tokens marked
PREDICTIONS = "evaluation/predictions.json"
# registry metrics that exist only over a closed set of answers (`closed_label_set`)
LABEL_SET_METRICS = ("accuracy", "macro_f1")


def _decoding(config: PipelineConfig, labels: list[str] | None = None) -> DecodingSettings:
    """Generation's settings; with `generation.constrain_to_labels` and a closed label set,
    answers restricted to those labels."""
    constrain = config.generation.constrain_to_labels and labels
    return DecodingSettings(
        max_new_tokens=config.generation.max_new_tokens,
        num_beams=config.generation.num_beams,
        batch_size=config.evaluation.batch_size,
        choices=list(labels) if constrain else None,
    )


def _shot_class(examples: ChatExamples) -> Callable[[list[dict]], str] | None:
    """The class a few-shot example counts towards: its label after `label_key` where the
    answers are a closed set ("Yes" and "yes." are one label, as they are scored), else
    `pick_shots`' default (the answer itself)."""
    if not examples.labels:
        return None
    return lambda conversation: label_key(reference(conversation))


def _python_model(model: Any) -> Any:
    """The Python object behind an MLflow pyfunc model; None for other flavours."""
    try:
        return model.unwrap_python_model()
    except Exception:  # not a python_function model (or not a pyfunc at all)
        return None


def _loss_fn(model: CausalLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The training loss (selection's importance scores use it too)."""
    logits = model.trained_logits(batch["input_ids"], batch["attention_mask"], batch["labels"])
    return nn.functional.cross_entropy(logits.float(), trained_targets(batch["labels"]))


def _encode(
    tokenizer: Any, conversations: list[list[dict]], config: PipelineConfig, packed: bool = False
) -> list:
    """Encoded rows; rows with nothing to train (validation reports them) are left out.
    `packed` (training only, with `generation.packing`): short rows packed together."""
    rows = [
        encode_chat(tokenizer, c, config.model.max_length, config.generation.train_on_prompt)
        for c in conversations
    ]
    rows = [r for r in rows if r.trainable > 0]
    return pack(rows, config.model.max_length) if packed and config.generation.packing else rows


def _scored_rows(
    tokenizer: Any, conversations: list[list[dict]], config: PipelineConfig, split: str
) -> list[EncodedChat]:
    """`_encode`'s rows of a split that a loss or perplexity is computed on, refused when none
    has an answer token left (every answer empty or cut by `model.max_length`; reachable with
    the validation suite off, which reports it): the baselines check both splits before they
    generate, training and evaluation check theirs before they start."""
    rows = _encode(tokenizer, conversations, config)
    if not rows:
        raise DataLoadError(
            f"no {split} example has an answer token to score within "
            f"model.max_length={config.model.max_length}: check the {split} answers, or raise "
            "model.max_length (validation.enabled=true reports the rows)"
        )
    return rows


def _batches(rows: list[EncodedChat], size: int, pad_id: int, **order: Any) -> Iterable[dict]:
    lengths = [len(r.input_ids) for r in rows]
    for idx in batch_order(lengths, size, **order):
        yield collate([rows[i] for i in idx], pad_id)


def _row_nll(
    model: nn.Module, rows: list[EncodedChat], pad_id: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of `rows`, in their order: the summed NLL of its trained tokens and their
    count, in fp32 eval mode; `model` is the training's `CausalLM` (or its FSDP-sharded copy)
    or a transformers model."""
    lengths = [len(r.input_ids) for r in rows]
    order = batch_order(lengths, size, shuffle=False, seed=0, group_by_length=True)
    batches = (collate([rows[i] for i in idx], pad_id) for idx in order)
    nll, tokens = row_nll(model if isinstance(model, CausalLM) else CausalLM(model), batches)
    where = torch.as_tensor(np.concatenate(order) if order else np.zeros(0, dtype=np.int64))
    nll_in_order, tokens_in_order = torch.zeros_like(nll), torch.zeros_like(tokens)
    nll_in_order[where] = nll
    tokens_in_order[where] = tokens
    return nll_in_order, tokens_in_order


def _nll(model: nn.Module, rows: list[EncodedChat], pad_id: int, size: int) -> tuple[float, int]:
    """Summed NLL of the trained tokens of `rows` and their count, in fp32 eval mode (a sum
    needs no row order: `sequence_nll` over the batches)."""
    batches = _batches(rows, size, pad_id, shuffle=False, seed=0, group_by_length=True)
    return sequence_nll(model if isinstance(model, CausalLM) else CausalLM(model), batches)


def causal_lm_recipe(
    model: nn.Module,
    train_rows: list[EncodedChat],
    val_rows: list[EncodedChat],
    pad_id: int,
    config: PipelineConfig,
) -> Recipe:
    """What `fit` needs to train a causal LM (`CausalLM` with its selection applied): the
    batches, the loss on the trained tokens (chunked with `generation.loss_chunk_tokens`),
    validation loss and perplexity. `train` uses it; so does `bench speed`."""
    cfg = config.training
    chunk = config.generation.loss_chunk_tokens

    def batches(epoch: int) -> Iterable[dict]:
        return _batches(
            train_rows,
            cfg.batch_size,
            pad_id,
            shuffle=True,
            seed=cfg.seed + epoch,
            group_by_length=cfg.group_by_length,
        )

    def score(model: nn.Module, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        part = [val_rows[i] for i in indices]
        nll, tokens = _row_nll(model, part, pad_id, config.evaluation.batch_size)
        return {"nll": nll, "tokens": tokens}

    def summarize(stats: dict[str, torch.Tensor]) -> dict:
        nll, count = float(stats["nll"].sum()), int(stats["tokens"].sum())
        return {"val_loss": nll / max(count, 1), "val_perplexity": perplexity(nll, count)}

    def inputs(b: dict, d: torch.device) -> tuple[torch.Tensor, ...]:
        return b["input_ids"].to(d), b["attention_mask"].to(d), b["labels"].to(d)

    def forward(m: nn.Module, b: dict, d: torch.device) -> torch.Tensor:
        # through the module call (`CausalLM.forward` with labels), so a DDP wrapper syncs
        # it; with a chunk size the loss itself comes out of it (autocast, chunk by chunk)
        return m(*inputs(b, d), chunk) if chunk else m(*inputs(b, d))

    def loss(out: torch.Tensor, b: dict, d: torch.device) -> torch.Tensor:
        if chunk:
            return out
        return nn.functional.cross_entropy(out.float(), trained_targets(b["labels"]).to(d))

    return Recipe(
        model=model,
        param_groups=head_and_body_groups(model, config),
        train_size=len(train_rows),
        steps_per_epoch=math.ceil(len(train_rows) / cfg.batch_size),
        batches=batches,
        forward=forward,
        loss=loss,
        # a distributed step weighs each process's part by its trained tokens
        units=lambda b: trained_targets(b["labels"]).numel(),
        val_size=len(val_rows),
        score=score,
        summarize=summarize,
        best_key=lambda h: (-h["val_loss"],),
        desc=f"train {config.domain} (generation)",
    )


class Generation:
    name: ClassVar[str] = "generation"
    metrics: ClassVar[tuple[str, ...]] = GENERATION_METRICS
    shown: ClassVar[tuple[str, ...]] = (*GENERATION_METRICS, "invalid_output_rate", "perplexity")

    # ------------------------------------------------------------------ data

    def _conversations(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> dict:
        try:
            return frames_to_messages(frames, config.data)
        except ValueError as err:
            raise DataLoadError(f"cannot read the data as conversations: {err}") from None

    def validate(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> ValidationReport:
        conversations = self._conversations(frames, config)
        tokenizer = load_chat_tokenizer(config.model.base_model)
        return validate_chat_splits(
            {k: pd.DataFrame({"messages": v}) for k, v in conversations.items()},
            config=config.validation,
            suite_name=f"peftops-{config.domain}-generation",
            max_length=config.model.max_length,
            token_counts=token_counts(
                tokenizer, config.model.max_length, config.generation.train_on_prompt
            ),
        )

    def prepare(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> ChatExamples:
        require_rows(frames)
        splits = self._conversations(frames, config)
        expect_json = config.generation.expect_json
        labels = (
            None
            if expect_json
            else closed_label_set(splits["train"], splits["test"], config.generation.max_label_set)
        )
        metric = config.registry.metric
        if labels is None and metric in LABEL_SET_METRICS:
            # refused here, not as a missing metric after training and evaluation
            if expect_json:
                why = "JSON answers (generation.expect_json)"
                use = "exact_match, token_f1, rouge_l, all_fields_accuracy or json_valid_rate"
            else:
                why = (
                    f"none (at most generation.max_label_set={config.generation.max_label_set} "
                    "distinct training answers, at least 2, every test answer among them)"
                )
                use = "exact_match, token_f1 or rouge_l"
            raise ConfigError(
                f"registry.metric={metric!r} needs a closed set of answers, and these data "
                f"have {why}; use {use}"
            )
        return ChatExamples(
            splits["train"],
            splits["validation"],
            splits["test"],
            labels=labels,
            expect_json=expect_json,
            system_prompt=config.data.system_prompt,
        )

    def preview(self, examples: ChatExamples, config: PipelineConfig) -> str:
        """A few training examples with the tokens the loss is taken on in [[...]]."""
        tokenizer = load_chat_tokenizer(config.model.base_model)
        parts = ["# Trained tokens", "Tokens inside [[...]] are trained; the rest is context."]
        for i, conversation in enumerate(examples.train[:PREVIEW_EXAMPLES], start=1):
            encoded = encode_chat(
                tokenizer, conversation, config.model.max_length, config.generation.train_on_prompt
            )
            shown = masked_preview(tokenizer, encoded)
            parts += [
                f"## Example {i} ({encoded.trainable} of {len(encoded.input_ids)} tokens trained)",
                f"```\n{shown}\n```",
            ]
        return "\n\n".join(parts)

    # ------------------------------------------------------------------ baselines

    def _metrics(self, preds: list[str], examples: ChatExamples) -> dict:
        return generation_metrics(
            preds,
            examples.test_references(),
            labels=examples.labels,
            expect_json=examples.expect_json,
        )

    def fit_baselines(self, examples: ChatExamples, config: PipelineConfig) -> Baselines:
        started = time.perf_counter()
        model, tokenizer, _ = load_causal_lm(config.model.base_model)
        model = place_for_inference(model)
        rows = _scored_rows(tokenizer, examples.test, config, "test")
        if examples.validation:  # training will need it; say so before generating
            _scored_rows(tokenizer, examples.validation, config, "validation")
        settings = _decoding(config, examples.labels)
        prompts = examples.test_prompts()
        answers = {"zero-shot": generate(model, tokenizer, prompts, settings)}
        k = config.generation.few_shot
        shots = pick_shots(examples.train, k, config.training.seed, _shot_class(examples))
        if shots:
            prompted = [few_shot(p, shots) for p in prompts]
            answers["few-shot"] = generate(model, tokenizer, prompted, settings)
        metrics, artifacts = {}, {}
        for name, preds in answers.items():
            scored = self._scored(preds, examples)
            metrics[name] = scored.metrics
            artifacts[f"baselines/{name}_predictions.json"] = scored.artifacts[PREDICTIONS]
        metrics["zero-shot"]["perplexity"] = perplexity(
            *_nll(model, rows, tokenizer.pad_token_id, config.evaluation.batch_size)
        )
        if shots:
            metrics["few-shot"]["shots"] = float(len(shots))
        return Baselines(metrics, time.perf_counter() - started, artifacts=artifacts)

    # ------------------------------------------------------------------ selection

    def select(
        self, examples: ChatExamples, baselines: Baselines, config: PipelineConfig
    ) -> Selection:
        if config.method.name == "qlora":
            check_4bit()  # before anything loads: refused on a machine without CUDA
        backbone, tokenizer, _ = load_causal_lm(config.model.base_model)
        model = CausalLM(backbone)
        sel = config.selection
        importance = None
        if sel.strategy == "auto":
            rows = _encode(tokenizer, examples.train, config)
            order = {"shuffle": True, "seed": config.training.seed, "group_by_length": True}
            batches = list(
                islice(
                    _batches(rows, config.training.batch_size, tokenizer.pad_token_id, **order),
                    sel.calibration_batches,
                )
            )

            def importance(modules: list) -> dict:
                return importance_table(model, modules, batches, loss_fn=_loss_fn)

        return select_parameters(
            model.backbone,
            sel,
            config.method,
            importance,
            max_length=config.model.max_length,
            proxy=None,
        )

    # ------------------------------------------------------------------ training

    def training_key(self, examples: ChatExamples, config: PipelineConfig) -> str:
        lines = (
            json.dumps(c, sort_keys=True)
            for split in (examples.train, examples.validation)
            for c in split
        )
        sections = {"data", "model", "selection", "method", "training", "generation"}
        return job_key(config, lines, sections)

    def train(
        self,
        examples: ChatExamples,
        selection: Selection,
        baselines: Baselines,
        config: PipelineConfig,
        workdir: Path,
        on_epoch_end: EpochCallback | None = None,
        manifest: dict | None = None,
    ) -> TrainResult:
        cfg = config.training
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        backbone, tokenizer, resolved = load_causal_lm(
            config.model.base_model, quantize_4bit=config.method.name == "qlora"
        )
        pad_id = tokenizer.pad_token_id
        train_rows = _encode(tokenizer, examples.train, config, packed=True)
        if not train_rows:
            raise DataLoadError("no training example has a token to train on")
        val_rows = _scored_rows(tokenizer, examples.validation, config, "validation")
        steps_per_epoch = math.ceil(len(train_rows) / cfg.batch_size)
        model = apply_selection(
            CausalLM(backbone), selection, config.method, steps_per_epoch * cfg.epochs
        )

        recipe = causal_lm_recipe(model, train_rows, val_rows, pad_id, config)
        model, result = fit(config, recipe, workdir, on_epoch_end)
        if not is_main_process():
            return result  # rank 0 saves the bundle
        decoding = _decoding(config, examples.labels)
        bundle = save_generative_bundle(
            model,
            tokenizer,
            Path(workdir) / "bundle",
            {
                **(manifest or {}),
                "base_model": resolved.reference,
                "base_model_provenance": resolved.provenance,
                "max_length": config.model.max_length,
                "method": config.method.name,
                "selection": selection.strategy,
                "target_modules": selection.target_modules,
                "system_prompt": examples.system_prompt,
                # every setting, so a new one reaches the served model; serving batches 16
                "decoding": asdict(replace(decoding, batch_size=16)),
                "labels": examples.labels,
                "expect_json": examples.expect_json,
            },
        )
        return replace(result, bundle_dir=str(bundle))

    def job_inputs(self, examples: ChatExamples, baselines: Baselines) -> dict:
        return {
            "train": examples.train,
            "validation": examples.validation,
            "labels": examples.labels,
            "expect_json": examples.expect_json,
            "system_prompt": examples.system_prompt,
        }

    def from_job_inputs(self, data: dict) -> tuple[ChatExamples, Baselines]:
        examples = ChatExamples(
            data["train"],
            data["validation"],
            [],
            labels=data["labels"],
            expect_json=data["expect_json"],
            system_prompt=data["system_prompt"],
        )
        return examples, Baselines({})  # training uses no baseline state

    # ------------------------------------------------------------------ evaluation

    def _scored(self, preds: list[str], examples: ChatExamples) -> Scored:
        rows = [
            {"prompt": prompt_messages(c)[-1]["content"], "reference": reference(c), "output": p}
            for c, p in zip(examples.test, preds, strict=True)
        ]
        return Scored(
            self._metrics(preds, examples),
            preds,
            artifacts={PREDICTIONS: rows},
        )

    def evaluate(self, bundle_dir: Path, examples: ChatExamples, config: PipelineConfig) -> Scored:
        generator = load_generative_bundle(Path(bundle_dir))
        rows = _scored_rows(generator.tokenizer, examples.test, config, "test")
        preds = generator.generate(examples.test_prompts(), _decoding(config, examples.labels))
        scored = self._scored(preds, examples)
        nll = _nll(
            generator.model, rows, generator.tokenizer.pad_token_id, config.evaluation.batch_size
        )
        scored.metrics["perplexity"] = perplexity(*nll)
        return scored

    def score_model(self, model: Any, examples: ChatExamples, config: PipelineConfig) -> Scored:
        """The champion's answers, decoded with this run's settings, not those its manifest
        kept (another `max_new_tokens`, free or constrained): the comparison with the
        challenger is then between models alone. A pyfunc that is not peftops' generator
        answers through its own `predict`."""
        prompts = pd.DataFrame(
            {"prompt": [json.dumps(p, ensure_ascii=False) for p in examples.test_prompts()]}
        )
        served = _python_model(model)
        if isinstance(served, PeftopsGenerator):
            generator = served.generator
            preds = generator.generate(
                conversations_from_input(prompts, generator), _decoding(config, examples.labels)
            )
        else:
            preds = model.predict(prompts)["text"].astype(str).tolist()
        return self._scored(preds, examples)

    def references(self, examples: ChatExamples) -> list[str]:
        return examples.test_references()

    def metric_fn(self, metric: str, examples: ChatExamples) -> Callable[[list, list], float]:
        return metric_function(metric, labels=examples.labels, expect_json=examples.expect_json)

    def pyfunc(self, examples: ChatExamples) -> PyfuncSpec:
        return PyfuncSpec(
            _HERE / "generative" / "mlflow_model.py",
            generator_signature(),
            pd.DataFrame(
                {"prompt": [prompt_messages(c)[-1]["content"] for c in examples.test[:2]]}
            ),
        )

    def save_evidence(
        self, scored: Scored, examples: ChatExamples, folder: Path, title: str
    ) -> list[Path]:
        return []  # the predictions table is logged from `scored.artifacts`
