"""Fairness slices end to end: the healthcare flow on its DVC-tracked demo data (group columns
age_band and sex), a tiny random model, a real Prefect server and MLflow store. A model that
fails a slice gate is not promoted and the decision names the slice; the same model under
gates it meets is promoted; the slice table, metrics and plot are on the MLflow run and the
table is a Prefect artifact."""

import json
from pathlib import Path

import pandas as pd
import pytest
from prefect.artifacts import Artifact

from components import registry, tracking
from conftest import tiny_config
from flows.pipeline import healthcare

pytestmark = pytest.mark.usefixtures("prefect_harness")

# the tiny random model cannot reach the preset's recall floor or beat the baseline: only the
# slice gates decide here
FREE = ("registry.min_class_recall=null", "registry.require_beats_baseline=false")


def test_a_model_failing_a_slice_is_not_promoted_then_one_meeting_the_gates_is(
    workspace, tiny_bert
):
    strict = tiny_config(
        "healthcare",
        tiny_bert,
        *FREE,
        "training.epochs=1",
        "registry.max_slice_gap=null",
        "registry.min_slice_metric=0.999",  # no tiny model is perfect on every slice
    )
    first = healthcare(config=strict)
    name = strict.registry.model_name
    assert first.version == "1" and not first.champion_moved
    assert registry.get_alias_version(name, "champion") is None
    path = tracking.client().download_artifacts(
        first.mlflow_run_id, "evaluation/slice_report.json", str(workspace)
    )
    with open(path) as f:
        report = json.load(f)
    judged = [s for s in report["slices"] if s["judged"]]
    assert {s["column"] for s in report["slices"]} == {"age_band", "sex"}
    worst = min(judged, key=lambda s: s["macro_f1"])
    failing = [r for r in first.decision if "min_slice_metric" in r]
    assert failing and f"{worst['column']}={worst['value']}" in failing[0]
    # sex=other has 4 test examples: shown, marked too small, never judged
    other = next(s for s in report["slices"] if s["value"] == "other")
    assert other["support"] < strict.evaluation.min_slice_support and not other["judged"]
    assert any("too small" in r["judged"] for r in first.slice_rows)

    # on the MLflow run: per-slice metrics, the table artifact (MLflow's table view), the plot
    run = tracking.client().get_run(first.mlflow_run_id)
    metrics = run.data.metrics
    assert metrics["slice.age_band.65_.support"] > 0
    key = f"slice.{worst['column']}.{worst['value']}.macro_f1".replace("+", "_")
    assert metrics[key] == pytest.approx(worst["macro_f1"])
    assert metrics["slice.worst.macro_f1"] == pytest.approx(worst["macro_f1"])
    logged = {a.path for a in tracking.client().list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/slices.json", "evaluation/slices.png"} <= logged
    # a table artifact (MLflow's table view): the run's logged-artifacts tag says so
    logged_tables = json.loads(run.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "evaluation/slices.json", "type": "table"} in logged_tables
    table_file = tracking.client().download_artifacts(
        run.info.run_id, "evaluation/slices.json", str(workspace)
    )
    table = pd.read_json(table_file, orient="split")
    assert len(table) == len(report["slices"]) and "65+" in set(table["value"])
    card = tracking.client().download_artifacts(run.info.run_id, "model_card.md", str(workspace))
    assert "## Fairness slices" in Path(card).read_text()
    # the Prefect table artifact of the slices
    artifact = Artifact.get("healthcare-slices")
    assert artifact is not None and artifact.type == "table" and "age_band" in artifact.data

    # the same training under gates set just around what it scored: promoted
    gap = max(report["overall"]["macro_f1"] - s["macro_f1"] for s in judged)
    passing = tiny_config(
        "healthcare",
        tiny_bert,
        *FREE,
        "training.epochs=1",
        f"registry.max_slice_gap={gap + 0.01:.4f}",
        f"registry.min_slice_metric={max(worst['macro_f1'] - 0.01, 0):.4f}",
    )
    second = healthcare(config=passing)
    assert second.version == "2" and second.champion_moved, second.decision
    assert any("largest slice gap" in r and "<= max_slice_gap" in r for r in second.decision)
    assert registry.get_alias_version(name, "champion") == "2"
