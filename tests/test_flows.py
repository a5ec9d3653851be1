"""The flows end to end on a real Prefect server (test harness), a real SQLite MLflow store,
the DVC-tracked demo data and tiny random models."""

import shutil

import pandas as pd
import pytest

from components import registry, tracking
from components.training import native_bf16, pick_device
from components.validation import DataValidationError
from conftest import DATA, tiny_config
from flows.pipeline import finance, healthcare

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _versions(name):
    return tracking.client().search_model_versions(f"name='{name}'")


def test_finance_flow_registers_a_champion_with_lineage_then_a_worse_run_does_not_move_it(
    workspace, tiny_bert
):
    config = tiny_config("finance", tiny_bert, "registry.require_beats_baseline=false")
    first = finance(config=config)
    name = config.registry.model_name
    assert first.version == "1" and first.champion_moved
    assert registry.get_alias_version(name, "champion") == "1"
    assert registry.get_alias_version(name, "challenger") == "1"
    tags = tracking.client().get_model_version(name, "1").tags
    for key in (
        "data.dvc_md5",
        "data.git_commit",
        "data.content_hash",
        "git_commit",
        "config",
        "validation.success",
        "selection.modules",
        "trainable_percent",
        "base_model",
    ):
        assert tags.get(key), key
    assert tags["data.dvc_md5"].endswith(".dir")
    assert 0 < float(tags["trainable_percent"]) < 5

    run = tracking.client().get_run(first.mlflow_run_id)
    assert run.info.status == "FINISHED"
    device = pick_device().type
    assert run.data.tags["train.device"] == device
    # training.precision=auto: bf16 where native (AMX CPUs, most GPUs), fp16 on other GPUs
    fallback = "fp16" if device == "cuda" else "fp32"
    assert run.data.tags["train.precision"] == ("bf16" if native_bf16(device) else fallback)
    assert {"test.accuracy", "baseline.accuracy", "val_macro_f1", "trainable_params"} <= set(
        run.data.metrics
    )
    assert len(tracking.client().get_metric_history(run.info.run_id, "val_loss")) == 2
    artifacts = {a.path for a in tracking.client().list_artifacts(run.info.run_id)}
    assert {"model", "validation", "evaluation", "selection", "model_card.md"} <= artifacts
    logged = {a.path for a in tracking.client().list_artifacts(run.info.run_id, "selection")}
    assert {f"selection/{f}" for f in ("selection.csv", "layers.csv", "selection.png")} <= logged

    # The registered model loads through pyfunc and predicts label names.
    model = registry.load_model(name, "champion")
    out = model.predict(pd.DataFrame({"text": ["I lost my card on the bus"]}))
    assert out["label"].iloc[0] in config.data.labels

    worse = tiny_config(
        "finance",
        tiny_bert,
        "model.head_init=random",
        "training.epochs=1",
        "training.learning_rate=1e-6",
        "training.head_learning_rate=1e-6",
        "registry.require_beats_baseline=false",
    )
    second = finance(config=worse)
    assert second.version == "2" and not second.champion_moved
    assert second.champion["macro_f1"] > second.metrics["macro_f1"]
    assert registry.get_alias_version(name, "champion") == "1"
    assert registry.get_alias_version(name, "challenger") == "2"


def test_invalid_data_stops_before_training_and_registers_nothing(workspace, tiny_bert, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(DATA / "finance", bad)
    frame = pd.read_csv(bad / "train.csv")
    frame.loc[3, "label"] = "crypto_question"  # outside the declared label set
    frame.loc[5, "text"] = "   "
    frame.to_csv(bad / "train.csv", index=False)
    config = tiny_config("finance", tiny_bert, f"data.path={bad}")
    with pytest.raises(DataValidationError) as err:
        finance(config=config)
    message = str(err.value)
    assert "expect_column_values_to_be_in_set" in message and "crypto_question" in message
    assert "row 4" in message and "row 6" in message
    assert _versions(config.registry.model_name) == []
    assert registry.get_alias_version(config.registry.model_name, "champion") is None
    runs = tracking.client().search_runs(
        [tracking.client().get_experiment_by_name(config.registry.experiment).experiment_id]
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "train.seconds" not in runs[0].data.metrics  # training never started
    reports = {a.path for a in tracking.client().list_artifacts(runs[0].info.run_id, "validation")}
    assert "validation/validation_report.md" in reports


def test_healthcare_flow_on_a_llama_style_model(workspace, tiny_llama):
    config = tiny_config(
        "healthcare",
        tiny_llama,
        "model.pooling=last",
        "registry.min_class_recall=null",
        "registry.require_beats_baseline=false",
        "registry.max_slice_gap=null",  # a tiny random model is not fair to every age band
        "registry.min_slice_metric=null",
    )
    summary = healthcare(config=config)
    assert summary.version == "1" and summary.champion_moved
    assert registry.get_alias_version("peftops-healthcare", "champion") == "1"


def test_domain_flow_refuses_another_domains_config(workspace, tiny_bert):
    with pytest.raises(ValueError, match="domain"):
        healthcare(config=tiny_config("finance", tiny_bert))
