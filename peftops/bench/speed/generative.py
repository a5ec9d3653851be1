"""Generative (causal-LM) cost: peak RSS of LoRA vs full fine-tuning of SmolLM2-135M by
sequence length and memory setting (`gen_memory`), the pipeline's causal-LM training step vs
a bare torch + peft loop (`gen_throughput`), and generation tokens/s of the registered pyfunc
vs raw `generate`, merged vs unmerged adapter (`gen_inference`).

Memory sides each run in a fresh process (`python -m peftops.bench.speed genmemory ...`):
the model is loaded and the selection applied, then the process's RSS high-water mark is
reset (Linux `clear_refs`), so the peak is the training phase's alone (the GGUF load's
transient does not count); the model's resident weights are in it on both sides."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from peftops.bench.speed.harness import Context, child_env, comparison, log, run_child

GEN_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
GEN_BATCH = 8
GEN_STEPS = 2  # AdamW's state exists from step 2 on: the second forward holds it all
TRAINED_SHARE = 0.25  # the response's share of each row (the loss is taken on it)
LOSS_CHUNK = 256  # generation.loss_chunk_tokens where a setting chunks the loss

# setting -> (overrides on both sides, overrides on the LoRA side only). Every setting keeps
# the pipeline's loss on the trained positions only (it has no other); bf16 autocast on both.
GEN_MEMORY_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "default": ((), ()),
    "checkpointing": (("training.gradient_checkpointing=true",), ()),
    "chunked": (
        ("training.gradient_checkpointing=true", f"generation.loss_chunk_tokens={LOSS_CHUNK}"),
        (),
    ),
    # a bf16 frozen base: LoRA only (full fine-tuning has no frozen weights to hold)
    "best": (
        ("training.gradient_checkpointing=true", f"generation.loss_chunk_tokens={LOSS_CHUNK}"),
        ("training.frozen_precision=bf16",),
    ),
}


def gen_config(method: str, tokens: int, threads: int, *overrides: str, model: str = GEN_MODEL):
    """The finance-assistant preset as the memory and throughput sides train it: LoRA r=8 on
    q/k/v/o (or every weight for `full`), batch 8, bf16 autocast, one epoch."""
    from components.config import apply_overrides, load_preset

    sets = [
        f"model.base_model={model}",
        f"model.max_length={tokens}",
        "selection.strategy=attention",
        "method.name=lora",
        "method.r=8",
        "training.epochs=1",
        f"training.batch_size={GEN_BATCH}",
        "training.precision=bf16",
        f"training.num_threads={threads}",
        "evaluation.batch_size=1",
    ]
    if method == "full":
        sets += ["method.name=full", "selection.strategy=all", "training.learning_rate=5e-5"]
    return apply_overrides(load_preset("finance-assistant"), [*sets, *overrides])


def synthetic_rows(n: int, tokens: int, seed: int, vocab: int = 49_152) -> list:
    """`n` rows of exactly `tokens` token ids, the last `TRAINED_SHARE` of each trained (a
    prompt and its response); memory and step time depend on shapes, not on the words."""
    import torch

    from components.generative.templating import IGNORE_INDEX, EncodedChat

    g = torch.Generator().manual_seed(seed)
    prompt = tokens - max(1, int(tokens * TRAINED_SHARE))
    rows = []
    for _ in range(n):
        ids = torch.randint(100, vocab, (tokens,), generator=g).tolist()
        labels = [IGNORE_INDEX] * prompt + ids[prompt:]
        rows.append(EncodedChat(ids, labels, tokens, tokens - prompt))
    return rows


def gen_memory_child(
    method: str, tokens: int, setting: str, threads: int, model: str = GEN_MODEL
) -> dict:
    """In a fresh process: load SmolLM2, apply the selection, reset the RSS high-water mark,
    then train `GEN_STEPS` steps of batch 8 at `tokens` tokens per row through the pipeline's
    recipe and loop (`causal_lm_recipe`, `fit`). Peak RSS of that training phase, RSS after
    the load, and the trainable parameter count."""
    import torch

    from components.generative.bundle import CausalLM
    from components.generative.models import load_causal_lm
    from components.objectives.generation import causal_lm_recipe
    from components.selection import select_parameters
    from components.selection.apply import apply_selection
    from components.training import fit
    from peftops.bench.memory import _vm, peak_rss_mb, reset_peak_rss

    both, lora_only = GEN_MEMORY_SETTINGS[setting]
    lora_extra = lora_only if method == "lora" else ()
    config = gen_config(method, tokens, threads, *both, *lora_extra, model=model)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    backbone, tokenizer, _ = load_causal_lm(config.model.base_model)
    train = synthetic_rows(GEN_BATCH * GEN_STEPS, tokens, seed=1, vocab=len(tokenizer))
    val = synthetic_rows(1, 32, seed=2)
    selection = select_parameters(
        backbone, config.selection, config.method, None, max_length=tokens, proxy=None
    )
    trained = apply_selection(CausalLM(backbone), selection, config.method, GEN_STEPS)
    after_load = _vm("VmRSS")
    reset = reset_peak_rss()
    recipe = causal_lm_recipe(trained, train, val, tokenizer.pad_token_id, config)
    recipe, saved = _profiled(recipe, len(tokenizer))
    with tempfile.TemporaryDirectory() as tmp:
        _, result = fit(config, recipe, Path(tmp), resume=False)
    trainable = result.trainable_params
    return {
        # where the memory goes (MB): the weights as held in training, AdamW's two fp32
        # moments and the fp32 gradients of the trained weights, and what autograd saved
        # for backward in the fullest step, by kind
        "profile_mb": {
            "weights": round(saved["weights"] / MB, 1),
            "adamw_state": round(8 * trainable / MB, 1),
            "grads": round(4 * trainable / MB, 1),
            **{f"saved_{k}": round(v / MB, 1) for k, v in saved["fullest"].items()},
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_load_mb": round(after_load, 1),
        "peak_reset_after_load": reset,
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "precision": result.precision,
        "seconds": round(result.train_seconds, 1),
    }


MB = 2**20


def _profiled(recipe, vocab: int) -> tuple[Any, dict]:
    """`recipe` with its forward pass and loss run under saved-tensor hooks that sort what
    autograd keeps for backward (parameters left out) into layer activations, the
    vocabulary-wide logits (and their fp32 copy, log-softmax), and copies of weights
    (autocast's bf16 casts); the fullest step's totals land in `out["fullest"]`, the
    weights' bytes in `out["weights"]`. The hooks only look: every tensor is returned as is."""
    import torch

    out: dict[str, Any] = {"fullest": {}, "weights": 0}
    step: dict[int, tuple[str, int]] = {}
    params: set[int] = set()
    shapes: set[tuple[int, ...]] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params:
            if t.dim() and t.shape[-1] == vocab:
                kind = "logits"
            elif tuple(t.shape) in shapes:
                kind = "weight_copies"
            else:
                kind = "activations"
            step[ptr] = (kind, storage.nbytes())
        return t

    def forward(m, b, d):
        params.clear()
        params.update(p.untyped_storage().data_ptr() for p in m.parameters())
        shapes.update(tuple(p.shape) for p in m.parameters() if p.dim() == 2)
        out["weights"] = sum(p.numel() * p.element_size() for p in m.parameters())
        step.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            return inner_forward(m, b, d)

    def loss(o, b, d):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            value = inner_loss(o, b, d)
        totals = {k: 0 for k in ("activations", "logits", "weight_copies")}
        for kind, nbytes in step.values():
            totals[kind] += nbytes
        if sum(totals.values()) > sum(out["fullest"].values()):
            out["fullest"] = totals
        return value

    inner_forward, inner_loss = recipe.forward, recipe.loss
    return replace(recipe, forward=forward, loss=loss), out


def gen_plan(ctx: Context) -> dict[int, tuple[str, ...]]:
    """Tokens per row -> the settings measured there. Every setting at 128 tokens; at 512
    (full mode) the pipeline's defaults and the best setting (a side takes minutes on 2 CPU
    cores); at 1024 the best setting only: without checkpointing, full fine-tuning's
    activations alone would be ~7 GB (3.6 GB at 512), too much to share a 24 GB machine."""
    every = tuple(GEN_MEMORY_SETTINGS)
    if ctx.mode == "quick":
        return {128: every}
    return {128: every, 512: ("default", "best"), 1024: ("best",)}


def bench_gen_memory(ctx: Context, lengths: tuple[int, ...] | None = None) -> None:
    """LoRA vs full fine-tuning of SmolLM2-135M, each side in its own process, at each
    length and setting (`gen_plan`; `lengths`: only those of the plan); one row per
    (setting, length)."""
    logs = ctx.workdir / "logs"
    logs.mkdir(exist_ok=True)
    plan = gen_plan(ctx)
    for tokens in lengths or tuple(plan):
        settings = {k: GEN_MEMORY_SETTINGS[k] for k in plan[tokens]}
        lora: dict[str, dict] = {}
        full: dict[tuple[str, ...], dict] = {}  # by the overrides both sides share

        def child(method: str, setting: str, tokens: int = tokens) -> dict:
            args = [sys.executable, "-m", "peftops.bench.speed", "genmemory", method]
            args += [str(tokens), setting, str(ctx.threads), ctx.gen_model]
            env = child_env(PEFTOPS_TOKEN_CACHE="off")
            got = run_child(args, env, logs / f"genmem-{method}-{setting}-{tokens}.log")
            log(f"gen_memory {method} {setting} {tokens} tokens: {got}")
            return got

        for setting, (both, _) in settings.items():
            lora[setting] = child("lora", setting)
            if both not in full:  # a LoRA-only override leaves the full side as it was
                full[both] = child("full", setting)
        for setting, (both, lora_only) in settings.items():
            a, b = lora[setting], full[both]
            comparison(
                ctx,
                f"gen_memory_peak_rss_{setting}_{tokens}",
                a["peak_rss_mb"],
                "full fine-tuning (AdamW)",
                b["peak_rss_mb"],
                "MB",
                higher_is_better=False,
                lora_to_full=round(a["peak_rss_mb"] / b["peak_rss_mb"], 3),
                statistic="peak RSS of the training phase (high-water mark reset after load)",
                settings=list(both) + [f"LoRA only: {x}" for x in lora_only],
                tokens_per_row=tokens,
                batch_size=GEN_BATCH,
                steps=GEN_STEPS,
                trained_share=TRAINED_SHARE,
                precision=a["precision"],
                rss_after_load_mb=[a["rss_after_load_mb"], b["rss_after_load_mb"]],
                increase_ratio=round(
                    (a["peak_rss_mb"] - a["rss_after_load_mb"])
                    / max(b["peak_rss_mb"] - b["rss_after_load_mb"], 1e-9),
                    3,
                ),
                peak_reset_after_load=[a["peak_reset_after_load"], b["peak_reset_after_load"]],
                trainable_params=[a["trainable_params"], b["trainable_params"]],
                train_seconds=[a["seconds"], b["seconds"]],
                model=ctx.gen_model,
            )
