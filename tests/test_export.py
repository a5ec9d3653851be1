"""Edge export on a tiny random BERT with a LoRA adapter, against a real MLflow registry:
merge → ONNX → (int8) → the gate on the version's own test split → `<name>-onnx`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from components import registry, tracking
from components.config import ExportConfig, apply_overrides
from components.data import load_splits
from components.export import ExportError, export_version, format_report
from components.modeling import build_classifier, save_bundle
from conftest import DATA, tiny_config

NAME = "peftops-finance"


def _lora_classifier(tiny_bert: Path, labels: list[str], outliers: float = 1.0):
    """The tiny encoder with a LoRA adapter whose B matrices are random (peft starts them
    at zero, which would make merging a no-op and the test blind to it). `outliers` scales
    B up: large low-rank updates give the outlier activations that int8 quantization,
    with one activation scale per tensor, cannot represent (the known int8 failure)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model, _, resolved = build_classifier(str(tiny_bert), len(labels))
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value", "dense"])
    lora.init_lora_weights = False
    model.backbone = get_peft_model(model.backbone, lora)
    with torch.no_grad():
        for name, param in model.backbone.named_parameters():
            if "lora_B" in name:
                param.mul_(outliers)
    return model, resolved


def _register(workspace: Path, tiny_bert: Path, data_dir: Path, outliers: float = 1.0) -> str:
    """A registered version of the finance classifier with the lineage tags a flow run
    writes (config and data version), as `@champion`; returns its version."""
    config = tiny_config("finance", tiny_bert, f"data.path={data_dir}")
    raw = load_splits(config.data, workspace)
    labels = list(config.data.labels)
    model, resolved = _lora_classifier(tiny_bert, labels, outliers)
    bundle = save_bundle(
        model,
        workspace / "bundle",
        {"base_model": resolved.reference, "labels": labels, "max_length": 64},
    )
    run_id = tracking.client().create_run(tracking.ensure_experiment("test")).info.run_id
    source = registry.log_pyfunc_model(run_id, bundle, ["my card is gone"])
    tags = {"config": config.model_dump_json(), **raw.version.as_tags(), "domain": "finance"}
    version = registry.register_version(NAME, source, run_id, tags)
    registry.promote_version(NAME, version, "test", "export test")
    return version


def _relabelled_data(folder: Path, tiny_bert: Path, outliers: float) -> Path:
    """The finance demo data with test labels replaced by the adapter model's own
    predictions: the registered model scores 1.0, so any label int8 changes is a drop."""
    import torch

    frames = {s: pd.read_csv(DATA / "finance" / f"{s}.csv") for s in ("train", "validation")}
    test = pd.read_csv(DATA / "finance" / "test.csv")
    config = tiny_config("finance", tiny_bert)
    labels = list(config.data.labels)
    model, _ = _lora_classifier(tiny_bert, labels, outliers)
    from components.modeling import TextClassifier

    with torch.no_grad():
        predicted = TextClassifier(model, _tokenizer(tiny_bert), {"labels": labels}).predict(
            test["text"].astype(str).str.strip().tolist()
        )
    test["label"] = predicted
    folder.mkdir(parents=True)
    for split, frame in {**frames, "test": test}.items():
        frame.to_csv(folder / f"{split}.csv", index=False)
    return folder


def _tokenizer(tiny_bert: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert))


def test_export_round_trip_registers_an_onnx_model_that_predicts_the_same_labels(
    workspace, tiny_bert
):
    version = _register(workspace, tiny_bert, DATA / "finance")
    result = export_version(NAME, "champion", ExportConfig(quantize="none"), workspace)

    assert result.passed, result.reasons
    assert result.fp32.agreement >= 0.995
    assert result.test_size == len(pd.read_csv(DATA / "finance" / "test.csv"))
    assert result.fp32.size_bytes > 0 and result.fp32.latency_p95_ms > 0
    assert result.int8 is None
    assert (result.registered_name, result.registered_version) == (f"{NAME}-onnx", "1")
    assert result.registered_alias == registry.CHAMPION  # the source is @champion

    c = tracking.client()
    tags = c.get_model_version(f"{NAME}-onnx", "1").tags
    assert tags["source.model"] == NAME and tags["source.version"] == version
    source_tags = c.get_model_version(NAME, version).tags
    assert tags["data.content_hash"] == source_tags["data.content_hash"]
    assert float(tags["export.fp32.agreement"]) == pytest.approx(result.fp32.agreement)
    assert source_tags["export.onnx_version"] == "1"

    # the registered ONNX pyfunc loads like any registered model and labels the test split
    # as the registered adapter model does
    texts = pd.read_csv(DATA / "finance" / "test.csv")["text"].astype(str).str.strip().tolist()
    onnx_model = registry.load_model(f"{NAME}-onnx", "champion")
    adapter_model = registry.load_model(NAME, version)
    frame = pd.DataFrame({"text": texts})
    onnx_out, adapter_out = onnx_model.predict(frame), adapter_model.predict(frame)
    assert list(onnx_out.columns) == ["label", "score"]
    agreement = (onnx_out["label"] == adapter_out["label"]).mean()
    assert agreement >= 0.995
    assert onnx_out["score"].to_numpy() == pytest.approx(adapter_out["score"].to_numpy(), abs=1e-4)
    assert "onnx fp32" in format_report(result) and "passed" in format_report(result)


def test_a_failing_gate_fails_the_command_with_its_figures_and_registers_nothing(
    workspace, tiny_bert
):
    import os
    import subprocess
    import sys

    from conftest import REPO
    from peftops.cli import EXIT_FAILED

    data = _relabelled_data(workspace / "relabelled", tiny_bert, outliers=100)
    version = _register(workspace, tiny_bert, data, outliers=100)
    figures = workspace / "gate.json"
    args = ["export", "finance", "--version", version, "--quantize", "int8"]
    args += ["--set", "export.max_metric_drop=0", "--json", str(figures)]
    # a process of its own, as a person runs it (and as tests/test_cli.py does)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "peftops.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
        timeout=600,
    )
    assert done.returncode == EXIT_FAILED, done.stderr[-3000:]
    assert "FAILED" in done.stdout and "nothing was registered" in done.stderr
    result = json.loads(figures.read_text())
    assert result["fp32"]["agreement"] >= 0.995  # conversion kept the labels ...
    assert result["int8"]["agreement"] < 1.0  # ... int8 did not
    assert result["reference"]["metric"] - result["int8"]["metric"] > 0
    assert result["int8"]["size_bytes"] < result["fp32"]["size_bytes"]
    assert result["passed"] is False and result["registered_version"] is None
    assert any("int8 macro_f1 drop" in r and "> 0.0" in r for r in result["reasons"])
    with pytest.raises(MlflowException):  # nothing registered
        tracking.client().get_registered_model(f"{NAME}-onnx")
    assert "export.onnx_version" not in tracking.client().get_model_version(NAME, version).tags


def test_export_refuses_data_that_is_not_the_versions(workspace, tiny_bert):
    data = workspace / "data"
    data.mkdir()
    for split in ("train", "validation", "test"):
        (data / f"{split}.csv").write_text((DATA / "finance" / f"{split}.csv").read_text())
    version = _register(workspace, tiny_bert, data)
    test = pd.read_csv(data / "test.csv")
    test.iloc[:5].to_csv(data / "test.csv", index=False)  # the data changed since training
    with pytest.raises(ExportError, match="not the version this model was trained on"):
        export_version(NAME, version, ExportConfig(), workspace)


def test_export_config_bounds():
    config = tiny_config("finance", Path("x"))
    assert config.export.enabled is False and config.export.quantize == "int8"
    with pytest.raises(ValueError, match=r"export\.min_agreement"):
        apply_overrides(config, ["export.min_agreement=1.5"])
    with pytest.raises(ValueError, match=r"export\.quantize"):
        apply_overrides(config, ["export.quantize=int4"])
    assert json.loads(config.model_dump_json())["export"]["max_metric_drop"] == 0.01


@pytest.mark.usefixtures("prefect_harness")
def test_the_finance_flow_ships_an_edge_model_with_its_new_champion(workspace, tiny_bert):
    from flows.pipeline import finance

    config = tiny_config(
        "finance",
        tiny_bert,
        "registry.require_beats_baseline=false",
        "training.epochs=1",
        "export.enabled=true",
        "export.quantize=none",
    )
    summary = finance(config=config)
    assert summary.champion_moved and summary.version == "1"
    run = tracking.client().get_run(summary.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["export.status"] == f"registered {NAME}-onnx v1", run.data.tags
    assert run.data.metrics["export.fp32.agreement"] >= 0.995
    edge = tracking.client().get_model_version_by_alias(f"{NAME}-onnx", registry.CHAMPION)
    assert edge.tags["source.version"] == "1"
    assert edge.tags["data.dvc_md5"] == run.data.tags["data.dvc_md5"]


def test_a_generative_version_is_refused_before_anything_is_loaded(workspace, tiny_bert):
    run_id = tracking.client().create_run(tracking.ensure_experiment("test")).info.run_id
    registry.register_version(
        "peftops-finance-assistant", "file:///nowhere", run_id, {"task": "generation"}
    )
    with pytest.raises(ExportError, match="export covers classifiers only"):
        export_version("peftops-finance-assistant", "1", ExportConfig(), workspace)
