"""`peftops bench quality`: PEFT configurations side by side on real data, one JSON line each.

Every configuration runs the pipeline's own components (baseline probe, selection, training,
bundle reload, prediction) in a fresh subprocess, so its peak RSS is its own. The frozen-
embedding baseline is computed once and also initialises every model's head (LP-FT), exactly
as the pipeline does.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.baseline import BaselineResult, run_baseline
from components.config import DEFAULT_BASE_MODEL, PipelineConfig, build_config
from components.evaluation import classification_metrics, ids_from_names
from peftops.bench.datasets import BenchData, load_bench_dataset
from peftops.bench.memory import peak_rss_mb


@dataclass(frozen=True)
class Mode:
    max_train: int | None
    max_test: int | None
    epochs: int
    max_length: int | None = None  # None: the dataset's default
    proxy_steps: int = 40  # `auto`'s short runs per candidate selection


# quick: under 15 minutes per dataset on 2 CPU cores (medical_abstracts at 500/300/128 tokens
# and 40 proxy steps took 27 min, the proxy runs then costing more than the training itself;
# at 400/200/96 tokens and 10 proxy steps it takes 12.8 min). Full medical_abstracts: all
# 2,021 training abstracts, 2 epochs at 128 tokens, about an hour on 2 cores; at the 256
# tokens MiniLM was trained with, it is ~25 min per configuration, ~3 h in all. PubMedQA:
# its 450 questions are small, so both modes take them all (quick: 2 epochs at 128 tokens).
QUICK = {
    "banking77": Mode(max_train=1600, max_test=1000, epochs=2, proxy_steps=20),
    "medical_abstracts": Mode(max_train=400, max_test=200, epochs=2, max_length=96, proxy_steps=10),
    "pubmedqa": Mode(max_train=None, max_test=None, epochs=2, max_length=128, proxy_steps=10),
}
FULL = {
    "banking77": Mode(max_train=None, max_test=None, epochs=2),
    "medical_abstracts": Mode(max_train=None, max_test=None, epochs=2, max_length=128),
    "pubmedqa": Mode(max_train=None, max_test=None, epochs=3),
}

# name -> config overrides; learning rates are each method's usual working range (LoRA-family
# 3e-3: on banking77 quick, 3e-3 scored 0.884 vs 0.881 at 1e-3 with the LP-FT head)
# Most informative first: a long full-mode run stopped early still answers what matters
# (PEFT vs baseline, auto vs attention, PEFT vs full fine-tuning).
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "lora_attention": {
        "method": {"name": "lora", "r": 8},
        "selection": {"strategy": "attention"},
        "training": {"learning_rate": 3e-3},
    },
    # importance scores choose modules and ranks; short proxy runs then compare the scored
    # layouts (and the attention modules) at the same budget and keep the best by val loss
    "lora_auto": {
        "method": {"name": "lora", "r": 8},
        "selection": {"strategy": "auto", "proxy_candidates": 4},
        "training": {"learning_rate": 3e-3},
    },
    "full_finetune": {
        "method": {"name": "full"},
        "selection": {"strategy": "all"},
        "training": {"learning_rate": 5e-5},
    },
    "dora_attention": {
        "method": {"name": "dora", "r": 8},
        "selection": {"strategy": "attention"},
        "training": {"learning_rate": 3e-3},
    },
    "ia3_all_linear": {
        "method": {"name": "ia3"},
        "selection": {"strategy": "all_linear"},
        "training": {"learning_rate": 1e-2},
    },
    "head_only": {"method": {"name": "full"}, "selection": {"strategy": "head_only"}},
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _dir_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _run_configuration(
    config_data: dict, data: BenchData, baseline: BaselineResult, queue: mp.Queue
) -> None:
    """Child process: select, train, reload and score one configuration."""
    from components.modeling import load_bundle
    from components.selection import run_selection
    from components.training import train_classifier

    try:
        config = build_config(config_data)
        ex = data.examples
        selection = run_selection(config, ex.train, len(ex.labels), baseline.probe, ex.validation)
        with tempfile.TemporaryDirectory() as tmp:
            result = train_classifier(
                config,
                selection,
                ex.train,
                ex.validation,
                ex.labels,
                Path(tmp),
                probe=baseline.probe,
                resume=False,
            )
            bundle = Path(result.bundle_dir)
            predicted = load_bundle(bundle).predict(ex.test.texts, 128)
            adapter_bytes = _dir_bytes(bundle)
        metrics = classification_metrics(
            ex.test.label_ids, ids_from_names(predicted, ex.labels), ex.labels
        )
        queue.put(
            {
                "accuracy": round(metrics["accuracy"], 4),
                "macro_f1": round(metrics["macro_f1"], 4),
                "kappa": round(metrics["kappa"], 4),
                "trainable_params": result.trainable_params,
                "trainable_fraction": round(result.trainable_fraction, 6),
                "train_seconds": round(result.train_seconds, 1),
                "train_samples_per_second": round(result.samples_per_second, 2),
                "precision": result.precision,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "adapter_bytes": adapter_bytes,
                "best_epoch": result.best_epoch,
                "modules": len(selection.target_modules),
                **_proxy_summary(selection.candidates),
            }
        )
    except Exception as err:  # reported as a row, the benchmark goes on
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _proxy_summary(candidates: list[dict]) -> dict:
    """`auto` with proxy runs: which candidate won, and each one's validation loss."""
    if not candidates:
        return {}
    winner = next(c["name"] for c in candidates if c["chosen"])
    losses = {c["name"]: round(c["val_loss"], 4) for c in candidates}
    return {"proxy_winner": winner, "proxy_val_loss": losses}


def _in_subprocess(config_data: dict, data: BenchData, baseline: BaselineResult) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_configuration, args=(config_data, data, baseline, queue))
    proc.start()
    row = queue.get()
    proc.join()
    return row


def run_quality_benchmark(
    dataset: str, quick: bool = True, only: list[str] | None = None, threads: int | None = None
) -> list[dict]:
    """Run every configuration on `dataset`; print one JSON line each; return the rows."""
    mode = (QUICK if quick else FULL)[dataset]
    data = load_bench_dataset(dataset, mode.max_train, mode.max_test)
    max_length = mode.max_length or data.max_length
    ex = data.examples
    base = {
        "domain": "custom",
        "data": {"labels": ex.labels},
        "model": {"base_model": DEFAULT_BASE_MODEL, "max_length": max_length},
        "training": {"epochs": mode.epochs, "batch_size": 32, "num_threads": threads},
        "evaluation": {"batch_size": 128},
    }
    common = {
        "dataset": dataset,
        "mode": "quick" if quick else "full",
        "train_examples": len(ex.train),
        "test_examples": len(ex.test),
        "epochs": mode.epochs,
        "max_length": max_length,
        "date": datetime.now(UTC).date().isoformat(),
    }
    rows = []
    started = time.perf_counter()
    baseline = run_baseline(
        DEFAULT_BASE_MODEL, "mean", max_length, ex.labels, ex.train, ex.test, 128
    )
    head = baseline.probe.weight.size + baseline.probe.bias.size
    model_bytes = _base_model_bytes()
    rows.append(
        _emit(
            {
                **common,
                "method": "frozen_embeddings_lr",
                "selection": "none",
                "accuracy": round(baseline.metrics["accuracy"], 4),
                "macro_f1": round(baseline.metrics["macro_f1"], 4),
                "kappa": round(baseline.metrics["kappa"], 4),
                "trainable_params": int(head),
                "trainable_fraction": round(head / _base_params(), 6),
                "train_seconds": round(baseline.seconds, 1),
                "train_samples_per_second": None,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "adapter_bytes": int(head * 4),
                "model_bytes": model_bytes,
            }
        )
    )
    attention_budget = _attention_budget(base)
    for name, overrides in CONFIGURATIONS.items():
        if only and name not in only:
            continue
        config = _merge(base, overrides)
        if name == "lora_auto":  # same (or smaller) budget as the attention preset
            budget = {"budget_params": attention_budget, "proxy_steps": mode.proxy_steps}
            config = _merge(config, {"selection": budget})
        method = config["method"]["name"]
        row = _in_subprocess(config, data, baseline)
        rows.append(
            _emit(
                {
                    **common,
                    "method": method,
                    "selection": config["selection"]["strategy"],
                    "config": name,
                    **row,
                    "model_bytes": model_bytes,
                }
            )
        )
    _print_ratios(rows, time.perf_counter() - started)
    return rows


def _emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def _base_params() -> int:
    from components.modeling import load_backbone

    backbone, _, _ = load_backbone(DEFAULT_BASE_MODEL)
    return sum(p.numel() for p in backbone.parameters())


def _base_model_bytes() -> int:
    from components.modeling import resolve_base_model

    location = Path(resolve_base_model(DEFAULT_BASE_MODEL).location)
    return sum(f.stat().st_size for f in location.glob("*.safetensors"))


def _attention_budget(base: dict) -> int:
    """Parameters the attention preset trains (adapters, without the head): `auto`'s budget."""
    from components.modeling import load_backbone
    from components.selection import select_parameters

    config = PipelineConfig.model_validate(_merge(base, CONFIGURATIONS["lora_attention"]))
    backbone, _, _ = load_backbone(DEFAULT_BASE_MODEL)
    return select_parameters(backbone, config.selection, config.method).estimated_trainable


def _print_ratios(rows: list[dict], seconds: float) -> None:
    """A readable comparison on stderr: each configuration against baseline and full FT."""
    scored = [r for r in rows if "accuracy" in r]
    baseline = next((r for r in scored if r["method"] == "frozen_embeddings_lr"), None)
    full = next((r for r in scored if r.get("config") == "full_finetune"), None)
    out = sys.stderr
    print(
        f"\n{'configuration':<22}{'acc':>8}{'F1':>8}{'kappa':>8}{'vs base':>9}{'vs full':>9}"
        f"{'train %':>10}{'adapter/model':>15}",
        file=out,
    )
    for r in scored:
        name = r.get("config", r["method"])
        vs_base = r["accuracy"] - baseline["accuracy"] if baseline else float("nan")
        vs_full = r["accuracy"] - full["accuracy"] if full else float("nan")
        share = r["adapter_bytes"] / r["model_bytes"] if r.get("model_bytes") else float("nan")
        print(
            f"{name:<22}{r['accuracy']:>8.4f}{r['macro_f1']:>8.4f}{r['kappa']:>+8.4f}"
            f"{vs_base:>+9.4f}{vs_full:>+9.4f}{100 * r['trainable_fraction']:>9.3f}%"
            f"{100 * share:>14.2f}%",
            file=out,
        )
    failed = [r for r in rows if "error" in r]
    for r in failed:
        print(f"{r.get('config')}: FAILED {r['error']}", file=out)
    print(f"total {seconds:.0f} s", file=out)
