"""Inference: the registered model through `mlflow.pyfunc` against the raw model forward,
LoRA merged into the base against unmerged, and the ONNX export (fp32, int8) against the
merged torch model (predictions/s, p50/p95 latency, size)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peftops.bench.speed.harness import (
    DEMO,
    Context,
    Measure,
    alternate,
    comparison,
    fresh_home,
    log,
    project_env,
    rate_pair,
    timed,
)
from peftops.bench.speed.steps import subset


def _register_small_model(ctx: Context) -> Path:
    """Train briefly on the demo data and register the bundle as the pipeline does."""
    from components import registry, tracking
    from components.config import apply_overrides, load_preset
    from components.data import load_splits
    from components.examples import to_examples
    from components.selection import run_selection
    from components.training import train_classifier

    home = fresh_home(ctx, "inference")
    os.environ.update(project_env(home))
    config = apply_overrides(
        load_preset("finance"),
        [
            f"data.path={json.dumps(str(DEMO))}",
            f"model.base_model={json.dumps(ctx.base_model)}",
            "training.epochs=1",
            "model.head_init=random",
        ],
    )
    raw = load_splits(config.data, home)
    d = config.data
    ex = to_examples(raw.frames, d.text_column, d.label_column, d.labels)
    train = subset(ex.train, 128)
    selection = run_selection(config, train, len(ex.labels))
    result = train_classifier(
        config, selection, train, subset(ex.validation, 32), ex.labels, home / "train"
    )
    experiment = tracking.ensure_experiment("bench")
    run_id = tracking.client().create_run(experiment).info.run_id
    source = registry.log_pyfunc_model(run_id, Path(result.bundle_dir), ex.test.texts[:3])
    registry.register_version(config.registry.model_name, source, run_id, {})
    return home


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    import numpy as np

    ms = np.asarray(latencies) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def bench_inference(ctx: Context) -> None:
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    import torch

    from components.modeling import load_bundle

    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    home = ctx.registered_home or _register_small_model(ctx)
    os.environ.update(project_env(home))
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/peftops-finance/1")
    classifier = model.unwrap_python_model().classifier  # the loaded bundle (LoRA merged)
    bundle = next(iter(sorted(home.glob("**/bundle/peftops.json")))).parent
    unmerged = load_bundle(bundle, merge=False)

    test = pd.read_csv(DEMO / "test.csv")["text"].astype(str).tolist()
    texts = (test * (ctx.settings.inference_texts // len(test) + 1))[: ctx.settings.inference_texts]
    frame = pd.DataFrame({"text": texts})
    batch = 64

    @torch.inference_mode()
    def raw(items: list[str]) -> np.ndarray:
        """The model's forward by hand: tokenize length-sorted batches, forward, argmax."""
        tok, net = classifier.tokenizer, classifier.model
        order = np.argsort([len(t) for t in items])
        out = np.zeros(len(items), dtype=np.int64)
        for start in range(0, len(items), batch):
            idx = order[start : start + batch]
            enc = tok(
                [items[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=classifier.max_length,
                return_tensors="pt",
            )
            out[idx] = net(enc["input_ids"], enc["attention_mask"]).argmax(-1).cpu().numpy()
        return out

    sides: dict[str, Callable[[list[str]], Any]] = {
        "pyfunc": lambda items: model.predict(pd.DataFrame({"text": items})),
        "raw": raw,
        "merged": lambda items: classifier.predict_proba(items, batch),
        "unmerged": lambda items: unmerged.predict_proba(items, batch),
    }
    sizes = _export_sides(classifier, home / "export", sides, batch)
    # same answers first (a wrong-but-fast path must not win)
    want = classifier.labels
    assert list(model.predict(frame)["label"]) == [want[i] for i in raw(texts)]
    for fn in sides.values():  # warm-up
        fn(texts[:batch])

    def throughput(fn) -> Callable[[], Measure]:
        def run() -> Measure:
            with timed() as took:
                fn(texts)
            return len(texts), took[0], took[1]

        return run

    rates = alternate({k: throughput(v) for k, v in sides.items()}, ctx.settings.inference_rounds)
    latencies: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(ctx.settings.latency_calls):
        text = [texts[i % len(texts)]]
        for name, fn in sides.items():
            started = time.perf_counter()
            fn(text)
            latencies[name].append(time.perf_counter() - started)
    p = {k: _percentiles(v) for k, v in latencies.items()}
    info = {"texts": len(texts), "batch_size": batch, "latency_calls": ctx.settings.latency_calls}
    pairs = [("pyfunc", "raw", "raw model forward"), ("merged", "unmerged", "unmerged LoRA")]
    pairs += [(name, "merged", "merged torch model") for name in sizes if name != "merged"]
    for ours, base, label in pairs:
        rate_pair(
            ctx,
            f"inference_{ours}_throughput",
            rates[ours],
            rates[base],
            label,
            "predictions/s",
            **info,
        )
        for q, name in ((0, "p50"), (1, "p95")):
            comparison(
                ctx,
                f"inference_{ours}_latency_{name}",
                p[ours][q],
                label,
                p[base][q],
                "ms",
                higher_is_better=False,
                latency_calls=ctx.settings.latency_calls,
            )
    for name, size in sizes.items():
        if name != "merged":
            comparison(
                ctx,
                f"inference_{name}_size",
                size / 1e6,
                "merged torch model",
                sizes["merged"] / 1e6,
                "MB",
                higher_is_better=False,
            )


def _export_sides(
    classifier: Any, folder: Path, sides: dict[str, Callable[[list[str]], Any]], batch: int
) -> dict[str, int]:
    """Add the merged model exported to ONNX (fp32, and int8 by dynamic quantization), as
    `peftops export` writes it, to `sides`; returns the sizes in bytes (torch's too). Without
    the `export` extra, nothing is added."""
    from components.export import (
        ExportError,
        export_onnx,
        quantize_int8,
        require_export_libraries,
        torch_size_bytes,
    )
    from components.onnx_runtime import OnnxClassifier

    try:
        require_export_libraries()
    except ExportError as err:
        log(f"inference: no ONNX rows ({err})")
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(classifier.model, classifier.tokenizer, folder / "model.fp32.onnx")
    int8 = quantize_int8(fp32, folder / "model.int8.onnx")
    sizes = {"merged": torch_size_bytes(classifier.model)}
    for name, path in (("onnx_fp32", fp32), ("onnx_int8", int8)):
        onnx = OnnxClassifier(path, classifier.tokenizer, classifier.labels, classifier.max_length)
        sides[name] = lambda items, onnx=onnx: onnx.predict_proba(items, batch)
        sizes[name] = path.stat().st_size
    return sizes
