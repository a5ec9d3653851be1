"""Operating peftops: skip-unchanged retraining, deployments with typed forms, promotion and
rollback with an audit trail, prediction, and the optional approval step."""

import threading
import time

import pytest
from typer.testing import CliRunner

from components import registry, tracking
from conftest import tiny_config
from flows.pipeline import finance
from peftops.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")
NAME = "peftops-finance"
POLICY_OFF = ("registry.require_beats_baseline=false",)
WORSE = (
    "model.head_init=random",
    "training.epochs=1",
    "training.learning_rate=1e-6",
    "training.head_learning_rate=1e-6",
)


def test_scheduled_run_with_unchanged_inputs_is_skipped_unless_forced(workspace, tiny_bert):
    config = tiny_config("finance", tiny_bert, *POLICY_OFF)
    first = finance(config=config, force=False)
    assert first.status == "completed" and first.champion_moved
    again = finance(config=config, force=False)
    assert again.status == "skipped" and "nothing changed" in again.message
    assert len(tracking.client().search_model_versions(f"name='{NAME}'")) == 1
    run = tracking.client().get_run(again.mlflow_run_id)
    assert run.data.tags["skipped"] == "true" and run.info.status == "FINISHED"
    # a change in config is a change: it retrains
    changed = tiny_config("finance", tiny_bert, *POLICY_OFF, "training.epochs=1")
    assert finance(config=changed, force=False).status == "completed"
    # force retrains even when nothing changed
    forced = finance(config=config, force=True)
    assert forced.status == "completed" and forced.version == "3"
    # a champion that was not scored cannot be beaten: no automatic promotion over it
    champion = registry.get_alias_version(NAME, registry.CHAMPION)
    unscored = tiny_config("finance", tiny_bert, *POLICY_OFF, "evaluation.compare_champion=false")
    blind = finance(config=unscored)
    assert blind.status == "completed" and blind.version == "4" and not blind.champion_moved
    assert any(f"champion v{champion} not scored" in r for r in blind.decision), blind.decision
    assert registry.get_alias_version(NAME, registry.CHAMPION) == champion


def test_promote_rollback_and_predict_from_the_cli(workspace, tiny_bert):
    config = tiny_config("finance", tiny_bert, *POLICY_OFF)
    finance(config=config)
    worse = tiny_config("finance", tiny_bert, *POLICY_OFF, *WORSE)
    assert not finance(config=worse).champion_moved
    assert registry.get_alias_version(NAME, "champion") == "1"
    runner = CliRunner()

    result = runner.invoke(app, ["promote", "finance", "2", "--reason", "ab test won"])
    assert result.exit_code == 0, result.output
    assert registry.get_alias_version(NAME, "champion") == "2"
    tags = tracking.client().get_model_version(NAME, "2").tags
    assert tags["promotion.reason"] == "ab test won"
    assert tags["promotion.by"].startswith("user:") and tags["promotion.at"]
    assert tags["promotion.previous_champion"] == "1"

    result = runner.invoke(app, ["rollback", "finance", "--reason", "complaints"])
    assert result.exit_code == 0, result.output
    assert "rolled back from v2" in result.output
    assert registry.get_alias_version(NAME, "champion") == "1"
    tags = tracking.client().get_model_version(NAME, "1").tags
    assert tags["promotion.action"] == "rollback" and tags["promotion.reason"] == "complaints"
    assert tags["promotion.rolled_back_from"] == "2"

    result = runner.invoke(app, ["promote", "finance", "99"])
    assert result.exit_code != 0 and "no version 99" in result.output
    assert registry.get_alias_version(NAME, "champion") == "1"

    result = runner.invoke(app, ["predict", "finance", "my card was stolen", "where is my money"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert all(line.split("\t")[0] in config.data.labels for line in lines)


def test_deployments_register_with_schedules_limits_and_typed_forms(workspace):
    from prefect.client.orchestration import get_client

    from flows.deployments import build_deployments

    deployments = build_deployments()
    for deployment in deployments:
        deployment.apply()
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("peftops-finance/finance-retrain")
    assert dep.parameters == {"force": False}
    assert dep.schedules and dep.schedules[0].schedule.cron == "0 3 * * 1"
    assert dep.concurrency_limit == 1 or dep.global_concurrency_limit.limit == 1
    schema = dep.parameter_openapi_schema
    method = schema["definitions"]["MethodConfig"]["properties"]["name"]
    assert "lora" in method["enum"] and method["description"]


def test_promotion_waits_for_approval_when_required(workspace, tiny_bert):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )
    from prefect.flow_runs import resume_flow_run

    config = tiny_config(
        "finance",
        tiny_bert,
        *POLICY_OFF,
        "registry.require_approval=true",
        "registry.approval_timeout_minutes=5",
    )
    result = {}
    thread = threading.Thread(target=lambda: result.update(s=finance(config=config)))
    thread.start()
    paused = []
    deadline = time.time() + 300
    with get_client(sync_client=True) as client:
        while not paused and time.time() < deadline and thread.is_alive():
            time.sleep(1)
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"]))
                )
            )
    assert paused, "the flow never paused for approval"
    assert registry.get_alias_version(NAME, "champion") is None  # not before approval
    resume_flow_run(paused[0].id, run_input={"approve": True, "reviewer": "dana", "comment": "ok"})
    thread.join(timeout=300)
    summary = result["s"]
    assert summary.champion_moved
    assert any("approved by dana" in r for r in summary.decision)
    tags = tracking.client().get_model_version(NAME, summary.version).tags
    assert tags["promotion.by"] == "user:dana"


def test_assistant_presets_deploy_through_their_domain_flow(workspace):
    from prefect.client.orchestration import get_client

    from flows.deployments import build_deployments

    for deployment in build_deployments(domains=["finance-assistant", "healthcare-assistant"]):
        deployment.apply()
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("peftops-finance/finance-assistant-retrain")
        other = client.read_deployment_by_name("peftops-healthcare/healthcare-assistant-retrain")
    assert dep.parameters["force"] is False
    assert dep.parameters["config"]["task"] == "generation"  # the preset is the default
    assert dep.parameters["config"]["data"]["path"] == "data/finance-assistant"
    assert other.parameters["config"]["validation"]["check_phi"] is True
    assert dep.schedules[0].schedule.cron == "0 5 * * 1"
    task = dep.parameter_openapi_schema["definitions"]["PipelineConfig"]["properties"]["task"]
    assert set(task["enum"]) == {"classification", "generation"}
