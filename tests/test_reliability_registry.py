"""Registry faults for real: the MLflow tracking server (a real `mlflow server` subprocess) is
killed exactly when the registration task starts. Registration retries with backoff, then
fails cleanly: no version, no alias moved. A retry of the flow run, with the server back,
reuses the MLflow run and every finished expensive step (Prefect cache: state `Cached`) and
registers exactly one version for that run. Also: which tasks retry, and which never do."""

from __future__ import annotations

import itertools
import time

import pytest
from mlflow_servers import MlflowServer
from prefect.tasks import exponential_backoff

import flows.pipeline as pipeline
import tasks.registry
import tasks.training
from components import registry, tracking
from components.modeling import build_classifier, save_bundle
from conftest import tiny_config
from tasks import data as data_tasks
from tasks import evaluation as evaluation_tasks
from tasks import policy
from tasks import report as report_tasks
from tasks import tracking as tracking_tasks

NAME = "peftops-finance"
FAST = (
    "training.epochs=1",
    "data.max_train_examples=96",
    "validation.min_examples_per_class=5",
    "registry.require_beats_baseline=false",
)

EXPENSIVE = ("start_mlflow_run", "fit_baseline", "select_trainable_parameters", "train_adapter")


def _retry_delays(task_run_id, expected: int) -> list[float]:
    """The waits Prefect scheduled between a task run's attempts (its AwaitingRetry states)."""
    from prefect.client.orchestration import get_client

    deadline = time.time() + 60  # state changes reach the API asynchronously
    with get_client(sync_client=True) as client:
        while True:
            states = client.read_task_run_states(task_run_id)
            waits = [s for s in states if s.name == "AwaitingRetry"]
            if len(waits) >= expected or time.time() > deadline:
                break
            time.sleep(0.5)
    waits.sort(key=lambda s: s.timestamp)
    return [(s.state_details.scheduled_time - s.timestamp).total_seconds() for s in waits]


def _delays(task) -> list[float]:
    spec = task.retry_delay_seconds
    return list(spec(task.retries)) if callable(spec) else list(spec or [])


def test_transient_tasks_retry_with_backoff_and_validation_never_retries():
    transient = [
        tracking_tasks.start_mlflow_run,
        tracking_tasks.end_mlflow_run,
        tasks.registry.check_for_changes,
        tasks.registry.register_model,
        tasks.registry.promote_model,
        evaluation_tasks.evaluate,
        report_tasks.publish_model_card,
    ]
    for task in transient:
        assert task.retries >= 2, task.name
        delays = _delays(task)
        assert len(delays) == task.retries and delays[0] > 0, task.name
        assert all(b > a for a, b in itertools.pairwise(delays)), task.name  # backoff
    for task in (data_tasks.load_data, data_tasks.validate_data):
        assert task.retries == 0, task.name
    # the expensive steps persist their results and are keyed on run, config and data
    for task in (
        tasks.training.fit_baseline,
        tasks.training.select_trainable_parameters,
        tasks.training.train_adapter,
    ):
        assert task.persist_result and task.cache_key_fn is policy.run_scoped_key, task.name


@pytest.fixture()
def server(tmp_path, monkeypatch, workspace):
    srv = MlflowServer(tmp_path / "mlflow-server").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", srv.uri)
    # one HTTP attempt per call: the retries under test are the tasks' own
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    yield srv
    srv.stop()


def _champion_v1(tiny_bert, tmp_path, labels) -> str:
    """An (untrained) registered model as the current @champion."""
    model, _, resolved = build_classifier(str(tiny_bert), len(labels))
    manifest = {"base_model": resolved.reference, "labels": labels}
    bundle = save_bundle(model, tmp_path / "v1", manifest)
    run_id = tracking.client().create_run(tracking.ensure_experiment(NAME)).info.run_id
    source = registry.log_pyfunc_model(run_id, bundle, ["x"])
    version = registry.register_version(NAME, source, run_id, {})
    registry.promote(NAME, version, None, {"promotion.by": "test"})
    return version


@pytest.mark.long
@pytest.mark.usefixtures("prefect_harness")
def test_registry_down_during_registration_retries_fails_cleanly_and_rerun_registers_once(
    server, tiny_bert, tmp_path, monkeypatch
):
    config = tiny_config("finance", tiny_bert, *FAST)
    champion = _champion_v1(tiny_bert, tmp_path, config.data.labels)
    attempts: list = []  # the register task run (all its retries share it)
    seen: dict = {}
    steps: list[tuple[str, str]] = []

    def stop_server_once(task, task_run, state):
        attempts.append(task_run.id)
        if "stopped" not in seen:
            seen["stopped"] = True
            server.stop()

    def restart_and_look(task, task_run, state):
        seen["failure"] = state.message
        server.start()  # same store, same port
        c = tracking.client()
        found = c.search_model_versions(f"name='{NAME}'")
        seen["versions"] = [(str(v.version), v.run_id) for v in found]
        seen["champion"] = registry.get_alias_version(NAME, registry.CHAMPION)
        seen["challenger"] = registry.get_alias_version(NAME, registry.CHALLENGER)

    def record(task, task_run, state):
        steps.append((task.name, state.name))

    register = tasks.registry.register_model.with_options(
        retry_delay_seconds=exponential_backoff(backoff_factor=0.5),
        on_running=[stop_server_once],
        on_failure=[restart_and_look],
    )
    monkeypatch.setattr(pipeline, "register_model", register)
    for name in EXPENSIVE:
        task = getattr(pipeline, name)
        monkeypatch.setattr(pipeline, name, task.with_options(on_completion=[record]))

    # the flow run is retried once (as a deployment's "Retry" would); its first attempt meets
    # the outage
    summary = pipeline.finance.with_options(retries=1, retry_delay_seconds=1)(config=config)

    # first attempt: one try + the task's retries, each after a longer wait, then a clean failure
    retries = tasks.registry.register_model.retries
    assert len(attempts) >= retries + 1 and len(set(attempts[: retries + 1])) == 1
    delays = _retry_delays(attempts[0], retries)
    assert len(delays) == retries, delays
    assert all(b > a for a, b in itertools.pairwise(delays)), delays  # backoff: 0.5, 1, 2 s
    assert 0.3 < delays[0] < 0.7, delays
    assert "could not register peftops-finance" in seen["failure"]
    assert "@champion was not touched" in seen["failure"]
    # ... that left nothing behind: no version for the run, no alias moved
    assert seen["versions"] == [(champion, seen["versions"][0][1])]
    assert seen["champion"] == champion and seen["challenger"] == champion

    # the retried flow run reused the MLflow run and every finished expensive step ...
    assert summary.status == "completed" and summary.version is not None
    for name in EXPENSIVE:
        assert [s for n, s in steps if n == name] == ["Completed", "Cached"], (name, steps)
    c = tracking.client()
    runs = c.search_runs([tracking.ensure_experiment(NAME)])
    flow_runs = [r for r in runs if r.data.tags.get("prefect.flow_run_id")]
    assert [r.info.run_id for r in flow_runs] == [summary.mlflow_run_id]  # one run, reused
    run = c.get_run(summary.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert "could not register" in run.data.tags["retried_after_error"]
    assert "error" not in run.data.tags

    # ... and registered exactly one version for that run; registering again changes nothing
    def versions_of_run():
        found = c.search_model_versions(f"name='{NAME}'")
        return [str(v.version) for v in found if v.run_id == run.info.run_id]

    assert versions_of_run() == [summary.version]
    source = c.get_model_version(NAME, summary.version).source
    assert registry.register_version(NAME, source, run.info.run_id, {}) == summary.version
    assert versions_of_run() == [summary.version]
    assert registry.get_alias_version(NAME, registry.CHALLENGER) == summary.version


def test_a_version_left_without_its_alias_is_completed_by_the_rerun_not_duplicated(
    workspace, tiny_bert, tmp_path
):
    """An attempt that died after creating the version but before `@challenger` (and could not
    remove it): re-registering the run completes that version instead of adding another."""
    labels = ["card", "transfer"]
    model, _, resolved = build_classifier(str(tiny_bert), len(labels))
    bundle = save_bundle(
        model, tmp_path / "b", {"base_model": resolved.reference, "labels": labels}
    )
    run_id = tracking.client().create_run(tracking.ensure_experiment(NAME)).info.run_id
    source = registry.log_pyfunc_model(run_id, bundle, ["x"])
    c = tracking.client()
    c.create_registered_model(NAME)
    orphan = c.create_model_version(NAME, source, run_id=run_id).version  # the died attempt
    assert registry.get_alias_version(NAME, registry.CHALLENGER) is None

    assert registry.register_version(NAME, source, run_id, {}) == str(orphan)
    assert [str(v.version) for v in c.search_model_versions(f"name='{NAME}'")] == [str(orphan)]
    assert registry.get_alias_version(NAME, registry.CHALLENGER) == str(orphan)


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_failing_after_promotion_moves_no_alias_and_leaves_no_version(
    workspace, tiny_bert, tmp_path, monkeypatch
):
    """The model card (the step after `@champion` moved) fails for good: the flow fails, and
    the registry is as the run found it: both aliases on v1, the run's version deleted."""
    from prefect import task

    config = tiny_config("finance", tiny_bert, *FAST)
    champion = _champion_v1(tiny_bert, tmp_path, config.data.labels)
    promoted: list[bool] = []

    @task(name="publish_model_card")
    def disk_full(
        config, run_id, data_version, selection, trained, evaluation, registration, behaviour=None
    ):
        promoted.append(registry.get_alias_version(NAME, registry.CHAMPION) != champion)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "publish_model_card", disk_full)
    with pytest.raises(OSError, match="No space left"):
        pipeline.finance(config=config)

    assert promoted == [True]  # the untrained champion was beaten: @champion had moved
    assert registry.get_alias_version(NAME, registry.CHAMPION) == champion
    assert registry.get_alias_version(NAME, registry.CHALLENGER) == champion
    c = tracking.client()
    assert [str(v.version) for v in c.search_model_versions(f"name='{NAME}'")] == [champion]
    failed = [
        r
        for r in c.search_runs([tracking.ensure_experiment(NAME)])
        if r.data.tags.get("prefect.flow_run_id")
    ]
    assert [r.info.status for r in failed] == ["FAILED"]
    tags = failed[0].data.tags
    assert "No space left" in tags["error"]
    assert tags["registration.withdrawn"] == (
        f"@champion back to v{champion}; @challenger back to v{champion}; v2 deleted"
    )
