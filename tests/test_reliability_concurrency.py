"""Two runs of one domain at once, against one real MLflow server: both finish, and `@champion`
ends on the better model, also in the worst interleaving, where the worse run read "no
champion" before the better run promoted and tries to promote after it (compare-and-set)."""

from __future__ import annotations

import threading

import pytest
from mlflow_servers import MlflowServer

import flows.pipeline as pipeline
from components import registry, tracking
from conftest import tiny_config

pytestmark = [pytest.mark.long, pytest.mark.usefixtures("prefect_harness")]
NAME = "peftops-finance"
COMMON = (
    "data.max_train_examples=96",
    "validation.min_examples_per_class=5",
    "registry.require_beats_baseline=false",
)
BETTER = ("training.epochs=2",)
WORSE = (
    "model.head_init=random",
    "training.epochs=1",
    "training.learning_rate=1e-6",
    "training.head_learning_rate=1e-6",
)
WAIT = 600  # seconds a gate waits before the test fails instead of hanging


@pytest.fixture()
def server(tmp_path, monkeypatch, workspace):
    srv = MlflowServer(tmp_path / "mlflow-server").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", srv.uri)
    yield srv
    srv.stop()


def test_two_concurrent_runs_end_with_the_better_champion_and_cas_stops_the_slower_worse(
    server, tiny_bert, monkeypatch
):
    worse_evaluated, better_promoted = threading.Event(), threading.Event()
    threads_seen: list[tuple[str, str]] = []

    def me() -> str:
        return threading.current_thread().name

    def after_evaluate(task, task_run, state):
        threads_seen.append((me(), task.name))
        if me() == "worse":  # it has read the champion (none): hold it until the better promoted
            worse_evaluated.set()
            assert better_promoted.wait(WAIT)

    def after_register(task, task_run, state):
        threads_seen.append((me(), task.name))
        if me() == "better":  # promote only once the worse run has read the champion
            assert worse_evaluated.wait(WAIT)

    def after_promote(task, task_run, state):
        threads_seen.append((me(), task.name))
        if me() == "better":
            better_promoted.set()

    for name, hook in (
        ("evaluate", after_evaluate),
        ("register_model", after_register),
        ("promote_model", after_promote),
    ):
        task = getattr(pipeline, name)
        monkeypatch.setattr(pipeline, name, task.with_options(on_completion=[hook]))

    results: dict[str, object] = {}

    def run(label: str, overrides: tuple[str, ...]) -> None:
        try:
            results[label] = pipeline.finance(config=tiny_config("finance", tiny_bert, *overrides))
        except BaseException as err:  # reported below
            results[label] = err
        finally:  # never leave the other run waiting on a gate
            worse_evaluated.set()
            better_promoted.set()

    threads = [
        threading.Thread(target=run, name=label, args=(label, (*COMMON, *extra)))
        for label, extra in (("better", BETTER), ("worse", WORSE))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert not any(t.is_alive() for t in threads)
    better, worse = results["better"], results["worse"]
    assert not isinstance(better, BaseException), better
    assert not isinstance(worse, BaseException), worse
    # the gates really ran in each run's own thread, in the adversarial order
    assert ("worse", "evaluate") in threads_seen and ("better", "promote_model") in threads_seen

    # both finished and registered; the better one is better
    assert better.status == worse.status == "completed"
    assert better.version != worse.version
    assert better.metrics["macro_f1"] > worse.metrics["macro_f1"]
    # the worse run saw no champion, so its policy said "promote" ...
    assert worse.champion_version is None and "no current champion" in worse.decision
    # ... but compare-and-set refused: the champion moved under it
    assert not worse.champion_moved
    assert any("moved from vNone" in reason for reason in worse.decision), worse.decision
    assert better.champion_moved
    assert registry.get_alias_version(NAME, registry.CHAMPION) == better.version
    tags = tracking.client().get_model_version(NAME, worse.version).tags
    assert "not overwriting" in tags["promotion.decision"]
    assert "promotion.action" not in tags  # no alias move was recorded for it
