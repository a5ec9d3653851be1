"""`peftops bench quality --task generation`: a causal LM's rows side by side on real data.

Rows: the base model zero-shot and k-shot in context, then LoRA on attention, LoRA `auto` at
the attention budget, DoRA, IA3 and full fine-tuning. Every row goes through the generation
objective's own steps (`fit_baselines`, `select`, `train`, `evaluate`: what `peftops run`
calls), each in a fresh subprocess so its peak RSS is its own. One JSON line per row.

Decoding is greedy. Free by default: an output that names no label counts as wrong and shows
in invalid_output_rate. With `constrained` (`--constrained`, the pipeline's
`generation.constrain_to_labels`) it may only spell one of the closed label set's answers:
no invalid outputs, so the rows score what a model knows apart from how it formats.
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

import pandas as pd

from peftops.bench.datasets import SEED, datasets_dir, load_bench_dataset
from peftops.bench.memory import peak_rss_mb

# Published anchors on the PubMedQA PQA-L test set (Jin et al., 2019, Table 4 / section 5).
PUBMEDQA_ANCHORS = {
    "majority class": {"accuracy": 0.552},
    "single human": {"accuracy": 0.780},
    "BioBERT, best fine-tuned (paper)": {"accuracy": 0.681, "macro_f1": 0.527},
}


@dataclass(frozen=True)
class GenMode:
    max_train: int | None
    max_test: int | None
    max_validation: int | None
    epochs: int
    max_length: int
    context_words: int | None  # PubMedQA abstracts cut to this many words (None: whole)
    max_new_tokens: int
    few_shot: int
    batch_size: int = 8


# quick: the must-fit-on-2-cores sizes (stated in every row); full: every test row.
QUICK = {
    "pubmedqa": GenMode(96, 60, 20, 1, 192, 90, 4, 2),
    "pubmedqa_long": GenMode(96, 30, 20, 1, 256, 90, 48, 1),
    "banking77": GenMode(400, 200, 100, 1, 64, None, 16, 4),
}
FULL = {
    "pubmedqa": GenMode(None, None, None, 2, 384, 220, 4, 3),
    "pubmedqa_long": GenMode(None, None, None, 2, 512, 220, 96, 2),
    "banking77": GenMode(None, None, 1000, 1, 64, None, 16, 8),
}

# name -> config overrides (learning rates: each method's usual range for a small causal LM)
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "lora_attention": {
        "method": {"name": "lora", "r": 8},
        "selection": {"strategy": "attention"},
        "training": {"learning_rate": 1e-3},
    },
    "lora_auto": {
        "method": {"name": "lora", "r": 8},
        "selection": {"strategy": "auto"},
        "training": {"learning_rate": 1e-3},
    },
    "dora_attention": {
        "method": {"name": "dora", "r": 8},
        "selection": {"strategy": "attention"},
        "training": {"learning_rate": 1e-3},
    },
    "ia3_all_linear": {
        "method": {"name": "ia3"},
        "selection": {"strategy": "all_linear"},
        "training": {"learning_rate": 1e-2},
    },
    "full_finetune": {
        "method": {"name": "full"},
        "selection": {"strategy": "all"},
        "training": {"learning_rate": 2e-5},
    },
}
BASELINES = "base_prompted"  # zero-shot and k-shot rows, from one baselines process


def _words(text: str, limit: int | None) -> str:
    words = str(text).split()
    if limit is None or len(words) <= limit:
        return " ".join(words)
    return " ".join(words[:limit]) + " …"


def pubmedqa_frames(
    mode: GenMode, long_answer: bool = False, root: Path | None = None
) -> dict[str, pd.DataFrame]:
    """PubMedQA PQA-L as prompt/response frames: question + (truncated) context → the decision,
    or → the long answer. Quick sizes are a seeded sample stratified by decision."""
    folder = (root or datasets_dir()) / "pubmedqa"
    instruction = (
        "Answer the question in one or two sentences, as the abstract's conclusion."
        if long_answer
        else "Answer with one word: yes, no, or maybe."
    )
    sizes = {"train": mode.max_train, "validation": mode.max_validation, "test": mode.max_test}
    frames = {}
    for split, size in sizes.items():
        raw = pd.read_json(folder / f"{split}.jsonl", lines=True)
        if size is not None and size < len(raw):
            raw = raw.groupby("decision", group_keys=False).sample(
                frac=size / len(raw), random_state=SEED
            )
        prompts = [
            f"Context: {_words(c, mode.context_words)}\nQuestion: {q}\n{instruction}"
            for c, q in zip(raw["context"], raw["question"], strict=True)
        ]
        answers = raw["long_answer"] if long_answer else raw["decision"]
        frames[split] = pd.DataFrame({"prompt": prompts, "response": answers.astype(str)})
    return frames


def banking77_frames(mode: GenMode) -> dict[str, pd.DataFrame]:
    """banking77 with the intent name as the response, on the classifier benchmark's splits
    (the same 3,080 test rows in full mode)."""
    data = load_bench_dataset("banking77", mode.max_train, mode.max_test)
    ex = data.examples
    frames = {}
    for split, part in (("train", ex.train), ("validation", ex.validation), ("test", ex.test)):
        if split == "validation" and mode.max_validation is not None:
            part = type(part)(
                part.texts[: mode.max_validation], part.label_ids[: mode.max_validation]
            )
        prompts = [
            f"Customer message: {t}\nName the banking intent of this message (snake_case)."
            for t in part.texts
        ]
        frames[split] = pd.DataFrame(
            {"prompt": prompts, "response": [ex.labels[i] for i in part.label_ids]}
        )
    return frames


def _dir_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _metric_row(metrics: dict) -> dict:
    keys = (
        "accuracy",
        "macro_f1",
        "kappa",  # agreement beyond chance: about 0 for answering from the class prior alone
        "exact_match",
        "rouge_l",
        "perplexity",
        "invalid_output_rate",
    )
    return {k: (round(metrics[k], 4) if k in metrics else None) for k in keys}


def _outputs(predictions: list[str]) -> dict:
    """The first three outputs and the mean output length in words (ROUGE-L's precision
    falls with length: a row's score reads differently for short and long answers)."""
    words = [len(str(p).split()) for p in predictions]
    return {
        "output_words": round(sum(words) / len(words), 1) if words else None,
        "examples": list(predictions[:3]),
    }


def _baselines_child(config_data: dict, frames: dict, queue: mp.Queue) -> None:
    from components.config import build_config
    from components.objectives.generation import Generation

    try:
        config = build_config(config_data)
        objective = Generation()
        examples = objective.prepare(frames, config)
        started = time.perf_counter()
        baselines = objective.fit_baselines(examples, config)
        answers = {
            name: baselines.artifacts[f"baselines/{name}_predictions.json"]
            for name in baselines.metrics
        }
        outputs = {name: [row["output"] for row in rows] for name, rows in answers.items()}
        queue.put(
            {
                "seconds": round(time.perf_counter() - started, 1),
                "metrics": baselines.metrics,
                "outputs": {name: _outputs(preds) for name, preds in outputs.items()},
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        )
    except Exception as err:  # reported as a row, the benchmark goes on
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _attention_budget(objective: Any, examples: Any, config_data: dict) -> int:
    """Parameters LoRA on attention trains: `auto`'s budget, so the two compare fairly."""
    from components.config import build_config
    from components.objectives.base import Baselines

    attention = _merge(config_data, {"selection": {"strategy": "attention"}})
    selection = objective.select(examples, Baselines({}), build_config(attention))
    return selection.estimated_trainable


def _train_child(config_data: dict, frames: dict, queue: mp.Queue) -> None:
    from components.config import build_config
    from components.objectives.base import Baselines
    from components.objectives.generation import Generation

    try:
        objective = Generation()
        config = build_config(config_data)
        examples = objective.prepare(frames, config)
        if config.selection.strategy == "auto":
            budget = _attention_budget(objective, examples, config_data)
            config_data = _merge(config_data, {"selection": {"budget_params": budget}})
            config = build_config(config_data)
        selection = objective.select(examples, Baselines({}), config)
        with tempfile.TemporaryDirectory() as tmp:
            result = objective.train(examples, selection, Baselines({}), config, Path(tmp))
            bundle = Path(result.bundle_dir)
            scored = objective.evaluate(bundle, examples, config)
            adapter_bytes = _dir_bytes(bundle)
        queue.put(
            {
                **_metric_row(scored.metrics),
                "trainable_params": result.trainable_params,
                "trainable_fraction": round(result.trainable_fraction, 6),
                "train_seconds": round(result.train_seconds, 3),
                "train_samples_per_second": round(result.samples_per_second, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "adapter_bytes": adapter_bytes,
                "modules": len(selection.target_modules),
                **_outputs(scored.predictions),
            }
        )
    except Exception as err:  # reported as a row, the benchmark goes on
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _in_subprocess(target: Any, config_data: dict, frames: dict) -> dict:
    """`target`'s report from a fresh process; a process that dies without one (killed, out
    of memory, a crash in native code) becomes an error row at once, never a hang."""
    import queue as queues

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(config_data, frames, queue))
    proc.start()
    while True:
        try:
            row = queue.get(timeout=1.0)
            break
        except queues.Empty:
            if not proc.is_alive():
                try:  # it may have reported just before it ended
                    row = queue.get(timeout=1.0)
                except queues.Empty:
                    row = {
                        "error": f"the row's process ended (exit code {proc.exitcode}) "
                        "without a result"
                    }
                break
    proc.join()
    return row


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_generation_quality(
    dataset: str,
    quick: bool = True,
    only: list[str] | None = None,
    threads: int | None = None,
    long_answer: bool = False,
    base_model: str | None = None,
    modes: dict[str, GenMode] | None = None,
    constrained: bool = False,
) -> list[dict]:
    """Every row on `dataset` (pubmedqa or banking77); print one JSON line each; return them.
    `only` names rows to run (base_prompted, lora_attention, ...); `base_model` and `modes`
    replace the default model and sizes (tests use a tiny random Llama)."""
    key = "pubmedqa_long" if long_answer else dataset
    mode = (modes or (QUICK if quick else FULL))[key]
    if dataset == "pubmedqa":
        frames = pubmedqa_frames(mode, long_answer)
    elif dataset == "banking77":
        if long_answer:
            raise ValueError("--long-answer is for pubmedqa")
        frames = banking77_frames(mode)
    else:
        raise ValueError(f"unknown generation benchmark dataset {dataset!r}")
    base: dict[str, Any] = {
        "domain": "custom",
        "task": "generation",
        "model": {"max_length": mode.max_length},
        "training": {
            "epochs": mode.epochs,
            "batch_size": mode.batch_size,
            "num_threads": threads,
        },
        "generation": {
            "max_new_tokens": mode.max_new_tokens,
            "few_shot": mode.few_shot,
            "max_label_set": 100,  # banking77's 77 intents are a closed set
            "constrain_to_labels": constrained,
        },
        "evaluation": {"batch_size": 16},
        "registry": {"metric": "rouge_l" if long_answer else "accuracy"},
    }
    if base_model:
        base["model"]["base_model"] = base_model
    common = {
        "dataset": dataset,
        "task": "generation",
        "target": "long_answer"
        if long_answer
        else ("decision" if dataset == "pubmedqa" else "intent"),
        "mode": "quick" if quick else "full",
        "decoding": "constrained to the labels" if constrained else "free",
        "train_examples": len(frames["train"]),
        "test_examples": len(frames["test"]),
        "epochs": mode.epochs,
        "max_length": mode.max_length,
        "context_words": mode.context_words,
        "date": datetime.now(UTC).date().isoformat(),
    }
    rows: list[dict] = []
    started = time.perf_counter()
    if not only or BASELINES in only:
        out = _in_subprocess(_baselines_child, base, frames)
        for name, method in (("zero-shot", "base_zero_shot"), ("few-shot", "base_k_shot")):
            if "error" in out:
                rows.append(_emit({**common, "method": method, "selection": "none", **out}))
                continue
            if name not in out["metrics"]:
                continue
            metrics = out["metrics"][name]
            rows.append(
                _emit(
                    {
                        **common,
                        "method": method,
                        "selection": "none",
                        "shots": int(metrics.get("shots", 0)),
                        **_metric_row(metrics),
                        "trainable_params": 0,
                        "trainable_fraction": 0.0,
                        "train_seconds": 0.0,
                        "train_samples_per_second": None,
                        "baselines_seconds": out["seconds"],
                        **out["outputs"].get(name, {}),
                        "peak_rss_mb": out["peak_rss_mb"],
                        "adapter_bytes": 0,
                    }
                )
            )
    for name, overrides in CONFIGURATIONS.items():
        if only and name not in only:
            continue
        config = _merge(base, overrides)
        row = _in_subprocess(_train_child, config, frames)
        rows.append(
            _emit(
                {
                    **common,
                    "method": config["method"]["name"],
                    "selection": config["selection"]["strategy"],
                    "config": name,
                    **row,
                }
            )
        )
    _print_table(rows, time.perf_counter() - started, dataset, long_answer)
    return rows


def _emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _print_table(rows: list[dict], seconds: float, dataset: str, long_answer: bool) -> None:
    """A readable table on stderr, with the published anchors under PubMedQA's decision."""
    out = sys.stderr
    print(
        f"\n{'row':<18}{'acc':>8}{'F1':>8}{'kappa':>8}{'EM':>8}{'R-L':>8}{'ppl':>9}{'invalid':>9}",
        file=out,
    )
    for r in rows:
        name = r.get("config", r["method"])
        if "error" in r:
            print(f"{name:<18} FAILED {r['error']}", file=out)
            continue
        ppl = "—" if r.get("perplexity") is None else f"{r['perplexity']:.2f}"
        print(
            f"{name:<18}{_fmt(r.get('accuracy')):>8}{_fmt(r.get('macro_f1')):>8}"
            f"{_fmt(r.get('kappa')):>8}{_fmt(r.get('exact_match')):>8}{_fmt(r.get('rouge_l')):>8}{ppl:>9}"
            f"{_fmt(r.get('invalid_output_rate')):>9}",
            file=out,
        )
    if dataset == "pubmedqa" and not long_answer:
        for name, anchor in PUBMEDQA_ANCHORS.items():
            f1 = anchor.get("macro_f1")
            print(f"anchor: {name:<34}{anchor['accuracy']:.3f}  F1 {_fmt(f1)}", file=out)
    print(f"total {seconds:.0f} s", file=out)
