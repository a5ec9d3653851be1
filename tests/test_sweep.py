"""`peftops sweep`: Optuna trials as Prefect tasks in nested MLflow runs, on a real Prefect
server (test harness), a real SQLite MLflow store, the demo data and a tiny random model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from components import registry, sweep, tracking
from components.config import ConfigError, load_preset
from conftest import DATA, tiny_config
from flows.sweep import sweep as sweep_flow
from tasks.sweep import TRAINING_LIMIT

PEFTOPS = str(Path(sys.executable).parent / "peftops")


def test_grid_and_space_parse_to_optuna_params(tmp_path):
    grid = sweep.parse_grid(["method.name=lora,ia3", "method.r=4,8"])
    assert grid["method.r"].choices == ("4", "8") and sweep.grid_size(grid) == 4
    space = sweep.parse_space(
        {
            "training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
            "method.r": {"low": 2, "high": 16},
            "training.epochs": [2, 3],
        }
    )
    assert space["method.r"].integer and not space["training.learning_rate"].integer
    assert sweep.grid_size(space) is None
    study = sweep.create_study(space, seed=0, trials=4, storage=tmp_path / "s.journal")
    trial = study.ask()
    overrides = sweep.trial_overrides(trial, space)
    lr = float(overrides[0].partition("=")[2])
    assert 1e-4 <= lr <= 1e-2 and overrides[2] in ("training.epochs=2", "training.epochs=3")
    # what a task in another process gets: the same trial through the journal file
    ref = sweep.trial_ref(study, trial, tmp_path / "s.journal")
    again = ref.trial()
    assert again.number == trial.number and again.params == trial.params
    again.report(-0.5, 1)
    assert study.trials[trial.number].intermediate_values == {1: -0.5}
    with pytest.raises(ConfigError, match=r"key\.path=v1,v2"):
        sweep.parse_grid(["method.r"])
    with pytest.raises(ConfigError, match="unknown key"):
        sweep.check_keys(load_preset("finance"), sweep.parse_grid(["method.rank=4"]))


@pytest.mark.usefixtures("prefect_harness")
def test_sweep_records_a_failed_trial_and_registers_only_the_best(workspace, tiny_bert):
    config = tiny_config("finance", tiny_bert, "registry.require_beats_baseline=false")
    # an operator's Prefect global concurrency limit of 1 training: the sweep submits 2
    # trials at once, yet their trainings run one after the other
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=TRAINING_LIMIT, limit=1)
        )
        try:
            # qlora is for causal LMs: that trial fails, the sweep goes on
            out = sweep_flow(
                config=config, trials=5, grid=["method.name=lora,ia3,qlora"], parallel=2
            )
            assert client.read_global_concurrency_limit_by_name(TRAINING_LIMIT).active_slots == 0
        finally:
            client.delete_global_concurrency_limit_by_name(TRAINING_LIMIT)
    rows = {r["overrides"][0]: r for r in out["trials"]}
    assert len(rows) == 3  # a grid of 3: no more trials than distinct configs
    assert rows["method.name=qlora"]["state"] == "FAIL"
    complete = [r for r in rows.values() if r["state"] == "COMPLETE"]
    assert len(complete) == 2
    first, second = sorted(complete, key=lambda r: r["started"])
    assert first["ended"] <= second["started"]
    best = max(complete, key=lambda r: r["value"])
    assert out["best"]["number"] == best["number"]

    c = tracking.client()
    parent = c.get_run(out["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    children = c.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    statuses = {r.data.tags.get("sweep.trial", "pipeline"): r.info.status for r in children}
    fail = str(rows["method.name=qlora"]["number"])
    assert statuses.pop("pipeline") == "FINISHED"  # the best config's pipeline run
    assert statuses.pop(fail) == "FAILED"
    assert set(statuses.values()) == {"FINISHED"} and len(statuses) == 2
    trial_run = c.get_run(best["run_id"])
    assert {"val.macro_f1", "train.seconds", "trainable_params"} <= set(trial_run.data.metrics)
    assert trial_run.data.params["sweep.method.name"] == best["overrides"][0].split("=")[1]
    artifacts = {a.path for a in c.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/comparison.png", "sweep/trials.json"} <= artifacts

    # exactly one version registered: the best trial's config, trained by the pipeline run
    name = config.registry.model_name
    versions = c.search_model_versions(f"name='{name}'")
    assert len(versions) == 1
    pipeline_run = c.get_run(out["summary"].mlflow_run_id)
    assert pipeline_run.data.params["method.name"] == best["method"]
    assert pipeline_run.data.tags["sweep.best_trial"] == str(best["number"])
    assert versions[0].run_id == pipeline_run.info.run_id
    # the pipeline did not train again: it resumed from the trial's last checkpoint
    assert pipeline_run.data.tags["training.resumed_from_epoch"] == "2"
    assert registry.get_alias_version(name, "champion") == "1"


def test_cli_sweeps_a_yaml_space_and_prints_the_trials(workspace, prefect_harness, tiny_bert):
    from prefect.settings import PREFECT_API_URL

    space = workspace / "space.yaml"
    space.write_text("training.learning_rate: {low: 0.0005, high: 0.005, log: true}\n")
    sets = [
        f"data.path={DATA / 'finance'}",
        f"model.base_model={tiny_bert}",
        "training.epochs=1",
        "training.batch_size=32",
        "evaluation.batch_size=128",
        "registry.require_beats_baseline=false",
    ]
    args = [PEFTOPS, "sweep", "finance", "--trials", "2", "--space", str(space)]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=workspace, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [ln for ln in done.stdout.splitlines() if "training.learning_rate=" in ln]
    assert len(lines) == 2 and all("COMPLETE" in ln for ln in lines)
    assert "best trial" in done.stdout
    bad = subprocess.run(
        [PEFTOPS, "sweep", "finance", "--grid", "method.rank=4,8"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
        timeout=600,
    )
    assert bad.returncode == 2 and "unknown key 'method.rank'" in bad.stderr


def test_sweep_deployment_has_a_typed_form():
    from prefect.utilities.callables import parameter_schema

    from flows.deployments import build_sweep_deployment

    deployment = build_sweep_deployment(overrides=["training.epochs=2"])
    assert deployment.name == "sweep" and not deployment.schedules
    assert deployment.parameters["config"]["training"]["epochs"] == 2
    # the schema Prefect builds the deployment's form from
    schema = parameter_schema(sweep_flow).model_dump_for_openapi()
    props = schema["properties"]
    assert props["trials"]["type"] == "integer" and props["parallel"]["type"] == "integer"
    grid_types = [t.get("type") for t in props["grid"].get("anyOf", [props["grid"]])]
    assert "array" in grid_types and props["grid"]["anyOf"][0]["items"]["type"] == "string"
    assert "PipelineConfig" in schema["definitions"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_hopeless_trial_is_pruned_on_validation_loss(workspace, tiny_bert):
    config = tiny_config("finance", tiny_bert, "registry.require_beats_baseline=false")
    # the seeded order runs lr 1.0 last, after two trials that set the median to beat
    out = sweep_flow(config=config, trials=3, grid=["training.learning_rate=0.001,0.002,1.0"])
    rows = {r["overrides"][0]: r for r in out["trials"]}
    pruned = rows["training.learning_rate=1.0"]
    assert [r["state"] for r in out["trials"]] == ["COMPLETE", "COMPLETE", "PRUNED"]
    run = tracking.client().get_run(pruned["run_id"])
    assert run.info.status == "KILLED" and run.data.tags["sweep.state"] == "PRUNED"
    # pruned after its first epoch: one validation loss logged of two epochs
    assert len(tracking.client().get_metric_history(pruned["run_id"], "val_loss")) == 1
    assert out["best"]["overrides"] != pruned["overrides"]


def test_the_pruner_compares_trials_at_the_same_point_of_their_schedules():
    """A 3-epoch trial's first epoch (33 %) is not compared with 2-epoch trials (50 %,
    100 %); a 2-epoch trial worse than the median at 50 % is pruned."""
    import optuna

    from components import sweep

    assert [sweep.schedule_step(e, 3) for e in (1, 2, 3)] == [33, 67, 100]
    assert sweep.schedule_step(1, 1) == sweep.schedule_step(2, 2) == 100
    study = optuna.create_study(direction="maximize", pruner=sweep._pruner())
    for loss in (0.5, 0.6):  # two finished 2-epoch trials (the study maximises -loss)
        trial = study.ask()
        for epoch in (1, 2):
            trial.report(-loss / epoch, sweep.schedule_step(epoch, 2))
        study.tell(trial, -loss / 2)
    longer = study.ask()
    longer.report(-5.0, sweep.schedule_step(1, 3))  # far worse, but nothing to compare at 33
    assert not longer.should_prune()
    worse = study.ask()
    worse.report(-5.0, sweep.schedule_step(1, 2))
    assert worse.should_prune()
