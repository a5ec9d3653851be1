"""Behavioural suites: loading errors are clear, pass rates are right on a known predictor,
the promotion gate names failing cases, and a flow whose model fails a suite registers but
does not promote (and says so); without a suite the step is skipped and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from components import behaviour, registry, tracking
from components.behaviour import (
    BehaviourError,
    Prediction,
    behaviour_verdict,
    calibrate_unsure_threshold,
    load_suite,
    run_suite,
)
from components.config import RegistryConfig, load_preset
from components.report import format_summary
from conftest import DATA, tiny_config


def _write(tmp_path: Path, data, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


# --- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["finance", "healthcare"])
def test_preset_suites_load_and_name_only_their_presets_labels(domain):
    path = behaviour.resolve_suite_path("", domain, "classification")
    assert path == behaviour.PRESETS / f"{domain}.behaviour.yaml"
    suite = load_suite(path)
    labels = load_preset(domain).data.labels
    suite.check_labels(labels)
    assert set(suite.minimum_functionality) == set(labels)  # every label has canonical cases
    assert suite.invariance and suite.directional and suite.out_of_scope
    # a suite file beside the presets is not a preset
    from components.config import preset_names

    assert f"{domain}.behaviour" not in preset_names()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("minimum_functionality: [unclosed", "not valid YAML"),
        ("- just a list", "must be a mapping"),
        ({"minimum_functionalty": {"a": ["x"]}}, "'minimum_functionalty': unknown key"),
        ({"directional": [{"base": "x", "edit": "y"}]}, "exactly one of 'to', 'raises'"),
        ({"directional": [{"base": "x", "to": "a"}]}, "exactly one of 'edit'"),
        ({"invariance": [{"base": "x", "variants": []}]}, "'invariance.0.variants'"),
        ({"description": "nothing else"}, "has no cases"),
    ],
)
def test_suite_errors_name_the_file_and_the_key(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(BehaviourError, match="behaviour suite") as err:
        load_suite(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_file_and_unknown_labels_are_clear_errors(tmp_path):
    with pytest.raises(BehaviourError, match="does not exist"):
        load_suite(tmp_path / "nope.yaml")
    suite = load_suite(_write(tmp_path, {"minimum_functionality": {"fruit": ["apple"]}}))
    with pytest.raises(BehaviourError, match=r"\['fruit'\] are not among the model's labels"):
        suite.check_labels(["a", "b"])
    # a path that does not exist is an error when loaded, never a silent skip
    assert behaviour.resolve_suite_path("mine.yaml", "custom", "classification") == Path(
        "mine.yaml"
    )
    assert behaviour.resolve_suite_path("none", "finance", "classification") is None
    assert behaviour.resolve_suite_path("", "custom", "classification") is None
    assert behaviour.resolve_suite_path("", "finance", "generation") is None


# --- pass rates on a known predictor ---------------------------------------------------------


def _keyword_predictor(texts: list[str]) -> list[Prediction]:
    """'a' when the text mentions an apple (case-insensitive), else 'b'; sure (0.9) only
    when it names a fruit."""
    out = []
    for text in texts:
        low = text.lower()
        label = "a" if "apple" in low else "b"
        top = 0.9 if ("apple" in low or "banana" in low) else 0.55
        scores = {label: top, ("b" if label == "a" else "a"): 1 - top}
        out.append(Prediction(label, top, scores))
    return out


SUITE = {
    "minimum_functionality": {"a": ["apple pie", "banana"], "b": ["banana split"]},
    "invariance": [{"label": "a", "base": "apple", "variants": ["APPLE", "aple"]}],
    "directional": [
        {"base": "banana", "edit": "and an apple", "to": "a"},
        {"base": "banana", "edit": "apple", "raises": "a"},
        {"base": "apple", "edited": "banana", "lowers": "a"},
        {"base": "banana", "edit": "apple", "to": "b"},
    ],
    "out_of_scope": ["a chair", "an apple chair"],
}


def test_pass_rates_per_suite_and_label_on_a_known_predictor(tmp_path):
    suite = load_suite(_write(tmp_path, SUITE))
    report = run_suite(suite, _keyword_predictor, ["a", "b"], unsure_below=0.6)
    assert report.pass_rates == pytest.approx(
        {
            "minimum_functionality": 2 / 3,  # "banana" is not an a
            "invariance": 2 / 3,  # the base and APPLE keep a; the typo "aple" does not
            "directional": 3 / 4,  # the fourth asks for b after adding an apple
            "out_of_scope": 1 / 2,  # "an apple chair" scores 0.9, above 0.6
        }
    )
    # a: apple pie ✓, banana ✗, invariance 2 of 3, to a ✓, raises a ✓, lowers a ✓: 6 of 8
    # b: banana split ✓, directional to b ✗
    assert report.label_pass_rates == pytest.approx(
        {"a": 6 / 8, "b": 1 / 2, behaviour.OUT_OF_SCOPE: 1 / 2}
    )
    failing = {(c.suite, c.text, c.predicted) for c in report.failures()}
    assert failing == {
        ("minimum_functionality", "banana", "b"),
        ("invariance", "aple", "b"),
        ("directional", "banana apple", "a"),
        ("out_of_scope", "an apple chair", "a"),
    }
    lines = behaviour.summary_lines(report)
    assert lines[0].startswith("minimum_functionality") and "2/3" in lines[0]
    assert "'banana' → b" in lines[0]
    # without a calibrated threshold an out-of-scope case cannot pass
    unsure = run_suite(suite, _keyword_predictor, ["a", "b"], unsure_below=None)
    assert unsure.pass_rates["out_of_scope"] == 0


def test_a_none_of_these_label_passes_out_of_scope_cases_and_must_be_a_model_label(tmp_path):
    # "an apple chair" is confidently a (0.9 ≥ 0.6): it fails without a "none of these"
    # route, and passes when a is the suite's none_label; "a chair" (0.55) passes either way
    suite = load_suite(_write(tmp_path, SUITE | {"none_label": "a"}))
    report = run_suite(suite, _keyword_predictor, ["a", "b"], unsure_below=0.6)
    assert report.pass_rates["out_of_scope"] == 1.0
    assert {c.expected for c in report.cases if c.suite == "out_of_scope"} == {"a or score < 0.600"}
    # a "none of these" answer of b's is still wrong when b is not the none label
    suite = load_suite(_write(tmp_path, SUITE | {"none_label": "b"}))
    assert run_suite(suite, _keyword_predictor, ["a", "b"], 0.6).pass_rates["out_of_scope"] == 0.5
    suite = load_suite(_write(tmp_path, SUITE | {"none_label": "other"}))
    with pytest.raises(behaviour.BehaviourError, match=r"\['other'\] are not among"):
        run_suite(suite, _keyword_predictor, ["a", "b"], 0.6)


def test_the_unsure_threshold_is_a_low_percentile_of_correct_top_scores():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.95, 0.05]])
    truth = [0, 0, 1, 0, 0]  # the fourth is wrong (0.7 for b) and does not count
    assert calibrate_unsure_threshold(probs, truth, 0) == pytest.approx(0.6)
    assert calibrate_unsure_threshold(probs, truth, 50) == pytest.approx(0.85)
    assert calibrate_unsure_threshold(probs[:0], [], 5) is None


def test_the_gate_refuses_below_the_minimum_and_names_failing_cases(tmp_path):
    report = run_suite(load_suite(_write(tmp_path, SUITE)), _keyword_predictor, ["a", "b"], 0.6)
    ok, reasons = behaviour_verdict(report, 0.7)
    assert not ok
    mft = next(r for r in reasons if r.startswith("behaviour minimum_functionality"))
    assert "2/3 = 0.67 < 0.7" in mft and "'banana' → b (want a)" in mft
    ok, reasons = behaviour_verdict(report, {"directional": 0.75})
    assert ok and reasons == ["behaviour directional 3/4 = 0.75 >= 0.75"]
    # a suite named by the policy must have cases
    no_inv = run_suite(
        load_suite(_write(tmp_path, {"minimum_functionality": SUITE["minimum_functionality"]})),
        _keyword_predictor,
        ["a", "b"],
    )
    ok, reasons = behaviour_verdict(no_inv, {"invariance": 0.5})
    assert not ok and "no cases" in reasons[0]
    # the promotion policy applies it beside the metric rules
    policy = RegistryConfig(min_behaviour_pass={"out_of_scope": 0.9})
    decision = registry.decide_promotion({"macro_f1": 0.9}, None, None, policy, behaviour=report)
    assert not decision.promote
    assert any("'an apple chair' → a" in r for r in decision.reasons)
    assert registry.decide_promotion({"macro_f1": 0.9}, None, None, policy).promote


# --- in the flow -----------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_a_model_failing_its_suite_is_registered_not_promoted_and_predict_can_say_unsure(
    workspace, tiny_bert, tmp_path
):
    # the console script in a subprocess (as tests/test_cli.py): an in-process CliRunner
    # would leave Prefect's log handlers on its closed stdout for later flows
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}

    def cli(*args: str) -> subprocess.CompletedProcess:
        peftops = str(Path(sys.executable).parent / "peftops")
        return subprocess.run(
            [peftops, *args], capture_output=True, text=True, env=env, cwd=workspace, timeout=600
        )

    # the same message cannot be two labels: no model passes both, whatever it learned
    impossible = _write(
        tmp_path,
        {
            "minimum_functionality": {
                "card_declined": ["my card does not work"],
                "transfer_pending": ["my card does not work"],
            },
            "out_of_scope": ["what time do you open on Sunday?"],
        },
        "impossible.yaml",
    )
    args = ["run", "finance", "--data", str(DATA / "finance"), "--behaviour", str(impossible)]
    for item in (
        f"model.base_model={tiny_bert}",
        "training.epochs=1",
        "training.batch_size=32",
        "evaluation.batch_size=128",
        "registry.require_beats_baseline=false",
        "registry.min_behaviour_pass={minimum_functionality: 1.0}",
    ):
        args += ["--set", item]
    summary_json = tmp_path / "summary.json"
    result = cli(*args, "--summary-json", str(summary_json))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    name = "peftops-finance"
    assert registry.get_alias_version(name, "challenger") == "1"  # registered
    assert registry.get_alias_version(name, "champion") is None  # not promoted
    assert "@champion moved no" in result.stdout
    assert "behaviour       minimum_functionality    1/2" in result.stdout
    decision = tracking.client().get_model_version(name, "1").tags["promotion.decision"]
    assert "behaviour minimum_functionality 1/2 = 0.50 < 1.0" in decision
    assert "'my card does not work' →" in decision
    # evidence: the MLflow table, the model card, the calibrated threshold as a version tag
    import json

    run_id = json.loads(summary_json.read_text())["mlflow_run_id"]
    logged = {a.path for a in tracking.client().list_artifacts(run_id, "behaviour")}
    assert {"behaviour/cases.json", "behaviour/summary.json"} <= logged
    card = tracking.client().get_model_version(name, "1").description
    assert "## Behavioural checks" in card and "my card does not work" in card
    tags = tracking.client().get_model_version(name, "1").tags
    threshold = float(tags[behaviour.UNSURE_TAG])
    assert 0 < threshold <= 1

    # `peftops predict` says unsure below the version's threshold, and not above it
    client = tracking.client()
    client.set_model_version_tag(name, "1", behaviour.UNSURE_TAG, "1.0")
    out = cli("predict", "finance", "I lost my card", "--alias", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("unsure (best guess ")
    client.set_model_version_tag(name, "1", behaviour.UNSURE_TAG, "0.0")
    out = cli("predict", "finance", "I lost my card", "--alias", "1")
    assert "unsure" not in out.stdout and "\tI lost my card" in out.stdout


@pytest.mark.usefixtures("prefect_harness")
def test_without_a_suite_the_step_is_skipped_and_says_so(workspace, tiny_bert):
    from flows.pipeline import finance

    config = tiny_config(
        "finance",
        tiny_bert,
        "training.epochs=1",
        "registry.require_beats_baseline=false",
        "evaluation.behaviour=none",
        "registry.min_behaviour_pass=0.9",  # not checked without a suite, and said so
    )
    summary = finance(config=config)
    assert summary.behaviour["skipped"] == "evaluation.behaviour=none"
    assert " behaviour       skipped: evaluation.behaviour=none" in format_summary(summary)
    assert summary.champion_moved
    assert "behaviour not checked (evaluation.behaviour=none)" in summary.decision
    run = tracking.client().get_run(summary.mlflow_run_id)
    assert run.data.tags["behaviour.skipped"] == "evaluation.behaviour=none"


def test_generative_answers_are_judged_by_their_json_field(tmp_path):
    """A generative model's answer is compared by one JSON field (`field` in the suite); it
    is unsure about an out-of-scope message when that field is no label of the set."""
    answers = {
        "my card was stolen": '{"intent": "lost_or_stolen_card", "urgency": "high"}',
        "card stolen!!": '{"intent": "lost_or_stolen_card"}',
        "where is my money": "not json at all",
        "can I buy a house": '{"intent": "other"}',
    }

    def generate(texts: list[str]) -> list[Prediction]:
        return [Prediction(behaviour.answer_label(answers[t], "intent")) for t in texts]

    suite = load_suite(
        _write(
            tmp_path,
            {
                "field": "intent",
                "minimum_functionality": {
                    "lost_or_stolen_card": ["my card was stolen"],
                    "transfer_status": ["where is my money"],
                },
                "invariance": [{"base": "my card was stolen", "variants": ["card stolen!!"]}],
                "out_of_scope": ["can I buy a house"],
            },
        )
    )
    assert suite.field == "intent"
    report = run_suite(suite, generate, ["lost_or_stolen_card", "transfer_status"])
    assert report.pass_rates == {
        "minimum_functionality": 0.5,
        "invariance": 1.0,
        "out_of_scope": 1.0,
    }
    assert report.failures()[0].predicted == "(not JSON)"


@pytest.mark.parametrize("preset", ["finance-assistant", "healthcare-assistant"])
def test_assistant_presets_suites_judge_one_field_of_their_own_answers(preset):
    import json

    config = load_preset(preset)
    path = behaviour.resolve_suite_path(config.evaluation.behaviour, config.domain, config.task)
    suite = load_suite(path)
    assert path.name == f"{preset}.behaviour.yaml" and suite.field
    answers = (DATA / preset / "test.jsonl").read_text().splitlines()
    values = {str(json.loads(json.loads(a)["response"])[suite.field]) for a in answers}
    suite.check_labels(sorted(values))
    assert config.registry.min_behaviour_pass is None  # reported, not a gate
