"""Peak RSS of LoRA against full fine-tuning on the same batches, each in its own process:
the defaults, gradient checkpointing, and jemalloc instead of glibc's malloc."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from peftops.bench.memory import loaded_allocator, peak_rss_mb
from peftops.bench.speed.harness import Context, child_env, comparison, log, run_child
from peftops.bench.speed.steps import FULL_FINETUNE, bench_config, subset

MEMORY_SIDES = {  # child name -> (method, gradient checkpointing, allocator)
    "lora": ("lora", False, "default"),
    "full": ("full", False, "default"),
    "lora_checkpointing": ("lora", True, "default"),
    "full_checkpointing": ("full", True, "default"),
    "lora_jemalloc": ("lora", False, "jemalloc"),
    "full_jemalloc": ("full", False, "jemalloc"),
}


def memory_child(kind: str, examples: int, threads: int, model: str) -> dict:
    """In a fresh process: train one `MEMORY_SIDES` configuration for one epoch on fixed
    banking77 batches; peak RSS before the model is loaded and at the end, and on CUDA the
    peak of GPU memory allocated (where training's tensors live there)."""
    import torch

    from components.selection import run_selection
    from components.training import train_classifier
    from peftops.bench.datasets import load_bench_dataset

    method, checkpointing, _ = MEMORY_SIDES[kind]
    data = load_bench_dataset("banking77", max_train=examples, max_test=32)
    ex = data.examples
    training: dict[str, Any] = {"gradient_checkpointing": checkpointing}
    extra: dict[str, Any] = {"training": training}
    if method == "full":
        extra = {**FULL_FINETUNE, "training": {**training, "learning_rate": 5e-5}}
    config = bench_config(ex.labels, data.max_length, 32, threads, model, **extra)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = peak_rss_mb()
    selection = run_selection(config, ex.train, len(ex.labels))
    with tempfile.TemporaryDirectory() as tmp:
        result = train_classifier(
            config, selection, ex.train, subset(ex.validation, 32), ex.labels, Path(tmp)
        )
    peak = peak_rss_mb()
    return {
        "peak_rss_mb": round(peak, 1),
        "rss_before_model_mb": round(before, 1),
        "trainable_params": result.trainable_params,
        "allocator": loaded_allocator(),
        **({"peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)} if cuda else {}),
    }


def bench_memory(ctx: Context) -> None:
    """LoRA vs full fine-tuning, each in its own process: with the pipeline's defaults, with
    `training.gradient_checkpointing` (LoRA only, and both sides), and with jemalloc instead
    of glibc's malloc (both sides; skipped where jemalloc is not installed)."""
    from peftops.bench.memory import expected_allocator, with_allocator

    logs = ctx.workdir / "logs"
    logs.mkdir(exist_ok=True)
    out = {}
    for kind, (_, _, allocator) in MEMORY_SIDES.items():
        env = with_allocator(child_env(PEFTOPS_TOKEN_CACHE="off"), allocator)
        if env is None:
            log(f"memory {kind}: skipped, {allocator} not installed (apt-get install libjemalloc2)")
            continue
        args = [sys.executable, "-m", "peftops.bench.speed", "memory", kind]
        args += [str(ctx.settings.memory_examples), str(ctx.threads), ctx.base_model]
        out[kind] = run_child(args, env, logs / f"memory-{kind}.log")
        log(f"memory {kind}: {out[kind]}")
        expected = expected_allocator(allocator)
        if out[kind]["allocator"] != expected:  # e.g. a preload the loader refused
            raise RuntimeError(f"memory {kind} ran under {out[kind]['allocator']}, not {expected}")
    for name, ours, theirs, variant, baseline in (
        ("memory_peak_rss", "lora", "full", "LoRA", "full fine-tuning"),
        (
            "memory_peak_rss_checkpointing",
            "lora_checkpointing",
            "full",
            "LoRA, gradient checkpointing",
            "full fine-tuning",
        ),
        (
            "memory_peak_rss_both_checkpointing",
            "lora_checkpointing",
            "full_checkpointing",
            "LoRA, gradient checkpointing",
            "full fine-tuning, gradient checkpointing",
        ),
        (
            "memory_peak_rss_jemalloc",
            "lora_jemalloc",
            "full_jemalloc",
            "LoRA, jemalloc",
            "full fine-tuning, jemalloc",
        ),
    ):
        if ours not in out or theirs not in out:
            continue
        a, b = out[ours], out[theirs]
        comparison(
            ctx,
            name,
            a["peak_rss_mb"],
            baseline,
            b["peak_rss_mb"],
            "MB",
            higher_is_better=False,
            variant=variant,
            examples=ctx.settings.memory_examples,
            batch_size=32,
            process_before_model_mb=[a["rss_before_model_mb"], b["rss_before_model_mb"]],
            increase_ratio=round(
                (a["peak_rss_mb"] - a["rss_before_model_mb"])
                / max(b["peak_rss_mb"] - b["rss_before_model_mb"], 1e-9),
                3,
            ),
            trainable_params=[a["trainable_params"], b["trainable_params"]],
        )
        if "peak_cuda_mb" in a and "peak_cuda_mb" in b and "jemalloc" not in name:
            comparison(  # on a GPU the weights, activations and optimiser state live there
                ctx,
                name.replace("_rss", "_cuda"),
                a["peak_cuda_mb"],
                baseline,
                b["peak_cuda_mb"],
                "MB",
                higher_is_better=False,
                variant=variant,
                statistic="torch.cuda.max_memory_allocated",
                examples=ctx.settings.memory_examples,
                batch_size=32,
            )
