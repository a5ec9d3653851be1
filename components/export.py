"""Edge export of a registered classifier, behind a gate.

A registered version's adapter is merged into its base model (`merge_and_unload`), exported
to ONNX by torch's exporter (`torch.onnx.export(dynamo=True)`, onnxscript underneath), and
optionally quantized to int8 (`onnxruntime.quantization.quantize_dynamic`). The gate runs the
exported model on the version's own test split (read again at the data version its lineage
tags record) against the registered adapter model, unmerged, as it was trained:

- label agreement of the fp32 ONNX model ≥ `export.min_agreement`;
- the shipped model's (int8, or fp32 without quantization) drop in `registry.metric`
  ≤ `export.max_metric_drop`;
- recorded beside them: file sizes and latency p50/p95 at batch 1 on this CPU.

A passing export is logged to MLflow as `<name>-onnx`, an onnxruntime-backed pyfunc with
the tokenizer beside it and lineage tags; a failing one raises `ExportGateError` carrying the
figures, and nothing is registered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components import registry, tracking
from components.config import ExportConfig, PipelineConfig, build_config
from components.evaluation import classification_metrics
from components.modeling import PooledClassifier, TextClassifier, load_bundle, read_manifest
from components.onnx_runtime import (
    EXPORT_MANIFEST,
    ONNX_FILE,
    TOKENIZER_DIR,
    OnnxClassifier,
)

ONNX_SUFFIX = "-onnx"
EXTRA = "export"
_LIBS = ("onnx", "onnxruntime", "onnxscript")
# what the edge model needs at serving time: no torch, no peft
_PIP = ("onnxruntime", "transformers", "tokenizers", "mlflow", "pandas", "numpy")


class ExportError(RuntimeError):
    """The version cannot be exported (task type, missing extra, data not readable)."""


class ExportGateError(ExportError):
    """The exported model failed the gate; `result` holds the figures. Nothing registered."""

    def __init__(self, result: ExportResult) -> None:
        super().__init__("export gate failed: " + "; ".join(r for r in result.reasons))
        self.result = result


@dataclass
class ModelFigures:
    """One model's figures on the test split."""

    metric: float
    agreement: float  # share of test texts with the registered adapter model's label
    size_bytes: int
    latency_p50_ms: float
    latency_p95_ms: float


@dataclass
class ExportResult:
    model_name: str
    source_version: str
    metric_name: str
    test_size: int
    data_version: dict[str, str]
    quantize: str
    reference: ModelFigures  # the registered adapter model (torch)
    fp32: ModelFigures
    int8: ModelFigures | None = None
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    registered_name: str | None = None
    registered_version: str | None = None
    registered_alias: str | None = None
    mlflow_run_id: str | None = None

    @property
    def shipped(self) -> ModelFigures:
        return self.int8 if self.int8 is not None else self.fp32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def figures(self) -> dict[str, float]:
        """Flat `export.*` numbers: MLflow metrics and version tags."""
        out: dict[str, float] = {"export.test_size": float(self.test_size)}
        for name in ("reference", "fp32", "int8"):
            figures = getattr(self, name)
            if figures is None:
                continue
            for key, value in asdict(figures).items():
                out[f"export.{name}.{key}"] = float(value)
        out["export.metric_drop"] = self.reference.metric - self.shipped.metric
        out["export.size_ratio"] = self.shipped.size_bytes / max(self.reference.size_bytes, 1)
        return out


def require_export_libraries() -> None:
    """onnx, onnxruntime and onnxscript come with the optional extra `export`."""
    missing = []
    for name in _LIBS:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(
            f"export needs {', '.join(missing)}: install the extra with "
            f"`pip install -e '.[{EXTRA}]'`"
        )


# --------------------------------------------------------------------------- the source


def resolve_version(name: str, alias_or_version: str) -> tuple[str, dict[str, str]]:
    """(version, its tags) of `name` at an alias or version number."""
    from mlflow.exceptions import MlflowException

    c = tracking.client()
    try:
        if alias_or_version.isdigit():
            found = c.get_model_version(name, alias_or_version)
        else:
            found = c.get_model_version_by_alias(name, alias_or_version)
    except MlflowException:
        raise ExportError(
            f"{registry.model_uri(name, alias_or_version)} does not exist "
            f"(`peftops run` registers versions)"
        ) from None
    return str(found.version), dict(found.tags)


def download_bundle(name: str, version: str, folder: Path) -> Path:
    """The registered version's bundle (adapter + head + manifest), checked for pickles."""
    import mlflow.artifacts
    from mlflow.models import Model

    from components.modeling import refuse_pickled_weights

    mlflow.set_tracking_uri(tracking.tracking_uri())
    uri = registry.model_uri(name, version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    refuse_pickled_weights(local, uri)
    artifacts = Model.load(str(local)).flavors["python_function"].get("artifacts", {})
    if "bundle" not in artifacts:
        raise ExportError(f"{uri} holds no peftops bundle: it was not registered by peftops")
    bundle = local / artifacts["bundle"]["path"]
    manifest = read_manifest(bundle)
    if manifest.get("task", "classification") != "classification":
        raise ExportError(
            f"{uri} is a {manifest['task']} model: export covers classifiers only (a "
            "generative model needs ONNX Runtime GenAI's generate loop; see README, Export)"
        )
    return bundle


@dataclass
class TestSplit:
    texts: list[str]
    label_ids: list[int]
    labels: list[str]
    config: PipelineConfig


def read_test_split(tags: dict[str, str], project_dir: Path) -> TestSplit:
    """The version's own test split, at the data version its lineage tags record: the data
    as it is now if its content hash matches, else the data at the recorded git commit."""
    from components.data import DataLoadError, load_splits
    from components.objectives import objective_for

    if "config" not in tags:
        raise ExportError("the version has no `config` lineage tag: cannot find its test split")
    config = build_config(json.loads(tags["config"]))
    want = tags.get("data.content_hash")
    try:
        raw = load_splits(config.data, project_dir)
        commit = tags.get("data.git_commit")
        if want and raw.version.content_hash != want and commit and not config.data.rev:
            at_commit = config.data.model_copy(update={"rev": commit})
            raw = load_splits(at_commit, project_dir)
    except DataLoadError as err:
        raise ExportError(f"cannot read the version's data ({config.data.path}): {err}") from None
    if want and raw.version.content_hash != want:
        raise ExportError(
            f"the data at {config.data.path} is not the version this model was trained on "
            f"(content hash {raw.version.content_hash[:12]} != {want[:12]}): restore it "
            "(`git checkout <commit> -- data.dvc && dvc checkout`)"
        )
    examples = objective_for(config).prepare(raw.frames, config)
    return TestSplit(examples.test.texts, examples.test.label_ids, examples.labels, config)


# --------------------------------------------------------------------------- conversion


def export_onnx(model: PooledClassifier, tokenizer: Any, path: Path) -> Path:
    """The (merged) classifier as one ONNX file: `input_ids`, `attention_mask` (dynamic batch
    and sequence) → `logits`. torch's dynamo exporter, the maintained path (onnxscript)."""
    import torch
    from torch.export import Dim

    model = model.eval()
    example = tokenizer(["an example text", "two"], padding=True, return_tensors="pt")
    batch, sequence = Dim("batch"), Dim("sequence")
    dynamic = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    # the exporter's chatter (torchvision ops it skips, axis names it merges) is not the user's
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        torch.onnx.export(
            model,
            (example["input_ids"], example["attention_mask"]),
            str(path),
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes=dynamic,
            external_data=False,  # one file: what an edge device and MLflow carry
            verbose=False,
        )
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization (weights int8 per output channel, activations quantized on
    the fly), after onnxruntime's recommended pre-processing (shape inference, graph
    optimisation)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = source.resolve(), target.resolve()
    prepared = target.with_name(target.stem + ".pre.onnx")
    # both steps drop scratch files (sym_shape_infer_temp.onnx, <uuid>.data) into the working
    # directory and leave some behind: run them in a scratch one
    with tempfile.TemporaryDirectory(prefix="peftops-quant-") as scratch, contextlib.chdir(scratch):
        # onnxruntime's symbolic shape inference cannot follow the dynamo exporter's symbolic
        # sequence bounds (Min(512, sequence)); ONNX's own shape inference can
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        # per-channel weight scales: per-tensor ones cost the finance LoRA model 2 points of
        # macro-F1 (0.972 → 0.950, 97.9 % agreement); per-channel kept every label
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=True)
    prepared.unlink()
    return target


def write_export_folder(
    onnx_file: Path, tokenizer: Any, labels: list[str], max_length: int, folder: Path, info: dict
) -> Path:
    """What the `<name>-onnx` pyfunc carries: the graph, the tokenizer and a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_file, folder / ONNX_FILE)
    tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
    manifest = {"labels": list(labels), "max_length": int(max_length), **info}
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return folder


# --------------------------------------------------------------------------- the gate


def latency_ms(predict: Any, texts: list[str]) -> tuple[float, float]:
    """p50 and p95 of one text per call (tokenisation included), after one warm-up call."""
    predict(texts[:1])
    times = []
    for text in texts:
        start = time.perf_counter()
        predict([text])
        times.append(1000 * (time.perf_counter() - start))
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def torch_size_bytes(model: PooledClassifier) -> int:
    """Bytes of every parameter and buffer: what a torch deployment of the merged model
    loads (the registered bundle holds the adapter only and references the base model)."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def score(
    predict_proba: Any,
    split: TestSplit,
    reference: list[int] | None,
    metric: str,
    size: int,
    timed: list[str],
) -> tuple[ModelFigures, list[int]]:
    predicted = predict_proba(split.texts).argmax(axis=1).tolist()
    value = classification_metrics(split.label_ids, predicted, split.labels)[metric]
    agree = 1.0 if reference is None else float(np.mean(np.equal(predicted, reference)))
    p50, p95 = latency_ms(predict_proba, timed) if timed else (0.0, 0.0)
    return ModelFigures(float(value), agree, size, p50, p95), predicted


def judge(result: ExportResult, policy: ExportConfig) -> ExportResult:
    """The gate's rules, every one recorded with its figures, pass or fail."""
    reasons = []
    ok = result.fp32.agreement >= policy.min_agreement
    reasons.append(
        f"fp32 label agreement {result.fp32.agreement:.4f} {'>=' if ok else '<'} "
        f"{policy.min_agreement}"
    )
    drop = result.reference.metric - result.shipped.metric
    shipped = "int8" if result.int8 is not None else "fp32"
    fits = drop <= policy.max_metric_drop + 1e-12
    reasons.append(
        f"{shipped} {result.metric_name} drop {drop:+.4f} ({result.reference.metric:.4f} → "
        f"{result.shipped.metric:.4f}) {'<=' if fits else '>'} {policy.max_metric_drop}"
    )
    result.passed = ok and fits
    result.reasons = reasons
    return result


def run_gate(
    bundle: Path,
    split: TestSplit,
    policy: ExportConfig,
    workdir: Path,
    name: str,
    version: str,
    data_version: dict[str, str],
) -> tuple[ExportResult, Path]:
    """Merge, export, quantize and judge. Returns the result and the export folder (the
    shipped graph, tokenizer, manifest) in `workdir`."""
    manifest = read_manifest(bundle)
    if list(manifest["labels"]) != list(split.labels):
        raise ExportError(
            f"the version's labels {manifest['labels']} are not its test split's {split.labels}"
        )
    # the registered adapter model as trained (unmerged): the gate sees merging too
    adapter: TextClassifier = load_bundle(bundle, merge=False)
    merged: TextClassifier = load_bundle(bundle, merge=True)
    metric = split.config.registry.metric
    timed = split.texts[: policy.latency_samples]

    fp32_file = export_onnx(merged.model, merged.tokenizer, workdir / "model.fp32.onnx")
    # the reference's latency is the merged torch model's: what the registered pyfunc serves
    reference, ref_labels = score(
        adapter.predict_proba, split, None, metric, torch_size_bytes(merged.model), []
    )
    reference.latency_p50_ms, reference.latency_p95_ms = latency_ms(merged.predict_proba, timed)

    def onnx_model(path: Path) -> OnnxClassifier:
        return OnnxClassifier(path, merged.tokenizer, split.labels, merged.max_length)

    fp32, _ = score(
        onnx_model(fp32_file).predict_proba,
        split,
        ref_labels,
        metric,
        fp32_file.stat().st_size,
        timed,
    )
    int8 = None
    shipped_file = fp32_file
    if policy.quantize == "int8":
        shipped_file = quantize_int8(fp32_file, workdir / "model.int8.onnx")
        int8, _ = score(
            onnx_model(shipped_file).predict_proba,
            split,
            ref_labels,
            metric,
            shipped_file.stat().st_size,
            timed,
        )
    result = ExportResult(
        model_name=name,
        source_version=version,
        metric_name=metric,
        test_size=len(split.texts),
        data_version=data_version,
        quantize=policy.quantize,
        reference=reference,
        fp32=fp32,
        int8=int8,
    )
    judge(result, policy)
    info = {
        "source_model": name,
        "source_version": version,
        "base_model": manifest["base_model"],
        "quantize": policy.quantize,
    }
    folder = write_export_folder(
        shipped_file, merged.tokenizer, split.labels, merged.max_length, workdir / "edge", info
    )
    return result, folder


# --------------------------------------------------------------------------- registration


def register_export(
    result: ExportResult, folder: Path, source_tags: dict[str, str], experiment: str
) -> ExportResult:
    """Log the export folder as an onnxruntime-backed pyfunc on an MLflow run of its own and
    register it as `<name>-onnx`, with lineage tags: the source version, its data version,
    the gate's figures. Its alias mirrors the source's: `@champion` when the source version
    is the `@champion` now, else `@challenger`."""
    import mlflow.pyfunc
    import pandas as pd

    components_dir = Path(__file__).resolve().parent
    name, version = result.model_name, result.source_version
    target = f"{name}{ONNX_SUFFIX}"
    c = tracking.client()
    run_id = c.create_run(
        tracking.ensure_experiment(experiment),
        run_name=f"export-{name}-v{version}",
        tags={"peftops.kind": "export", "export.source": f"models:/{name}/{version}"},
    ).info.run_id
    try:
        figures = result.figures()
        tracking.log_metrics(run_id, figures)
        tracking.log_params(run_id, {"export.format": "onnx", "export.quantize": result.quantize})
        tracking.log_dict(run_id, result.to_dict(), "export/gate.json")
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "model"
            mlflow.pyfunc.save_model(
                str(saved),
                python_model=str(components_dir / "onnx_pyfunc.py"),
                artifacts={"export": str(folder)},
                signature=registry.pyfunc_signature(),
                input_example=pd.DataFrame({"text": ["an example text"]}),
                pip_requirements=registry.pinned_requirements(_PIP),
                code_paths=[str(components_dir)],
            )
            c.log_artifacts(run_id, str(saved), "model")
        source = f"{c.get_run(run_id).info.artifact_uri}/model"
        tags = {
            "source.model": name,
            "source.version": version,
            "source.run_id": source_tags.get("run_id", ""),
            "export.format": "onnx",
            "export.quantize": result.quantize,
            "export.gate": "; ".join(result.reasons),
            **result.data_version,
            **{k: f"{v:.6g}" for k, v in figures.items()},
            **{k: source_tags[k] for k in ("base_model", "domain", "task") if k in source_tags},
        }
        alias = (
            registry.CHAMPION
            if registry.get_alias_version(name, registry.CHAMPION) == version
            else registry.CHALLENGER
        )
        registered = registry.register_version(
            target,
            source,
            run_id,
            tags,
            description=f"ONNX ({result.quantize}) export of {name} v{version}.",
            alias=alias,
        )
        c.set_model_version_tag(name, version, "export.onnx_version", registered)
        c.set_terminated(run_id, "FINISHED")
    except Exception:
        c.set_terminated(run_id, "FAILED")
        raise
    result.registered_name, result.registered_version = target, registered
    result.registered_alias, result.mlflow_run_id = alias, run_id
    return result


def export_version(
    name: str,
    alias_or_version: str,
    policy: ExportConfig,
    project_dir: Path | None = None,
    register: bool = True,
) -> ExportResult:
    """Export `name` at an alias or version; register `<name>-onnx` if the gate passes.
    Raises ExportGateError (nothing registered) when it fails."""
    require_export_libraries()
    version, tags = resolve_version(name, alias_or_version)
    if tags.get("task", "classification") != "classification":
        raise ExportError(
            f"{name} v{version} is a {tags['task']} model: export covers classifiers only (a "
            "generative model needs ONNX Runtime GenAI's generate loop; see README, Export)"
        )
    run_id = tracking.client().get_model_version(name, version).run_id
    tags = {**tags, "run_id": run_id or ""}
    split = read_test_split(tags, project_dir or tracking.project_dir())
    data_version = {k: v for k, v in tags.items() if k.startswith("data.")}
    with tempfile.TemporaryDirectory(prefix="peftops-export-") as tmp:
        workdir = Path(tmp)
        bundle = download_bundle(name, version, workdir / "source")
        result, folder = run_gate(bundle, split, policy, workdir, name, version, data_version)
        if not result.passed:
            raise ExportGateError(result)
        if register:
            register_export(result, folder, tags, split.config.registry.experiment)
    return result


# --------------------------------------------------------------------------- report


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def format_report(result: ExportResult) -> str:
    """The gate's figures as a small table, then the verdict and where the model went."""
    rows = [("torch (adapter)", result.reference), ("onnx fp32", result.fp32)]
    if result.int8 is not None:
        rows.append(("onnx int8", result.int8))
    metric = result.metric_name
    line = "=" * 78
    data = result.data_version
    data_id = data.get("data.dvc_md5") or data.get("data.content_hash", "?")[:12]
    out = [
        line,
        f" peftops export · {result.model_name} v{result.source_version} · "
        f"{'passed' if result.passed else 'FAILED'}",
        line,
        f" test split      {result.test_size} texts (data version {data_id})",
        f" {'model':<16}{metric:>9}{'agreement':>11}{'size':>10}{'ratio':>7}"
        f"{'p50 ms':>9}{'p95 ms':>9}",
    ]
    for label, f in rows:
        ratio = f.size_bytes / max(result.reference.size_bytes, 1)
        out.append(
            f" {label:<16}{f.metric:>9.4f}{f.agreement:>11.4f}{_mb(f.size_bytes):>10}"
            f"{ratio:>7.2f}{f.latency_p50_ms:>9.2f}{f.latency_p95_ms:>9.2f}"
        )
    out.append(" gate            " + "\n                 ".join(result.reasons))
    if result.registered_version:
        out.append(
            f" registered      models:/{result.registered_name}/{result.registered_version} "
            f"(@{result.registered_alias})"
        )
    elif not result.passed:
        out.append(" registered      nothing (the gate failed)")
    out.append(line)
    return "\n".join(out)
