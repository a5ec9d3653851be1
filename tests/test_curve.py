"""The data-efficiency curve: k-shot sampling, the crossings, and the flow end to end on a real
Prefect server (test harness), a real SQLite MLflow store, the demo data and a tiny model."""

import json
from collections import Counter
from pathlib import Path

import pytest

from components import tracking
from components.config import ConfigError
from components.curve import (
    CurvePoint,
    crossovers,
    parse_ks,
    plan_points,
    sample_indices,
    summarise,
    verdict,
)
from conftest import tiny_config

LABELS = [c for c in range(4) for _ in range(10)] + [4, 4]  # class 4 has only 2 rows


@pytest.mark.parametrize("k", [1, 2, 5])
def test_sampling_takes_exactly_k_per_class_and_is_reproducible_per_seed(k):
    rows = sample_indices(LABELS, k, seed=3)
    counts = Counter(LABELS[i] for i in rows)
    assert counts == {0: k, 1: k, 2: k, 3: k, 4: min(k, 2)}  # a rare class gives what it has
    assert rows == sorted(set(rows))
    assert sample_indices(LABELS, k, seed=3) == rows
    assert sample_indices(LABELS, k, seed=4) != rows
    # a seed's larger sample contains its smaller one: the curve adds data, not luck
    assert set(sample_indices(LABELS, 1, seed=3)) <= set(rows)


def test_all_takes_every_row_and_points_get_seeds_only_for_small_k():
    assert sample_indices(LABELS, None, seed=0) == list(range(len(LABELS)))
    ks = parse_ks("all, 16,2,1,2")
    assert ks == [1, 2, 16, None]
    points = plan_points(ks, seeds=3, seeds_up_to=8)
    assert [(p.k, p.seed) for p in points] == [
        (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (16, 0), (None, 0)
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="positive integer"):
        parse_ks("1,0")
    assert CurvePoint(None, 0).name == "k=all seed=0"


def _rows(scores: dict[str, list[float]], ks=("1", "4", "16", "all")) -> list[dict]:
    return [
        {"method": m, "k": k, "seed": 0, "train_examples": 10, "accuracy": v}
        for m, values in scores.items()
        for k, v in zip(ks, values, strict=True)
    ]


def test_crossings_are_computed_from_the_means():
    rows = _rows(
        {
            "probe": [0.50, 0.60, 0.70, 0.80],
            "lora": [0.45, 0.65, 0.78, 0.82],
            "full": [0.30, 0.55, 0.79, 0.85],
        }
    )
    found = crossovers(summarise(rows, "accuracy"), "lora")
    assert found["overtakes_probe_at"] == "4"
    assert found["best_gain_at"] == "16" and found["best_gain"] == pytest.approx(0.08)
    assert found["full_catches_up_at"] == "16"
    text = " ".join(verdict(found, "accuracy"))
    assert "overtakes the probe from k=4" in text and "from k=16" in text
    # a tie does not count as full fine-tuning catching up (PEFT is the cheaper of the two)
    tied = _rows({"probe": [0.5, 0.6, 0.7, 0.8], "lora": [0.5, 0.7, 0.8, 0.9]})
    tied += _rows({"full": [0.4, 0.8, 0.9, 0.9]})
    assert crossovers(summarise(tied, "accuracy"), "lora")["full_catches_up_at"] is None
    kept = [
        {"method": "lora", "k": "1", "best_epoch": 0},
        {"method": "lora", "k": "4", "best_epoch": 2},
    ]
    assert "at 1 of 2 points" in " ".join(verdict(found, "accuracy", kept))

    # PEFT above the probe only in the middle: no overtaking, and the last win is named
    rows = _rows({"probe": [0.5, 0.6, 0.7, 0.9], "lora": [0.4, 0.7, 0.8, 0.85]})
    found = crossovers(summarise(rows, "accuracy"), "lora")
    assert found["overtakes_probe_at"] is None and found["last_gain_at"] == "16"
    assert not found["full_compared"]


def test_summary_gives_mean_and_spread_over_seeds():
    rows = [
        {"method": "probe", "k": "1", "seed": s, "train_examples": 8, "accuracy": v}
        for s, v in enumerate([0.2, 0.4, 0.6])
    ] + [{"method": "probe", "k": "1", "seed": 3, "train_examples": 8, "error": "boom"}]
    (entry,) = summarise(rows, "accuracy")
    assert entry["n"] == 3 and entry["failed"] == 1
    assert entry["mean"] == pytest.approx(0.4) and entry["std"] == pytest.approx(0.2)
    assert (entry["min"], entry["max"]) == (0.2, 0.6)


@pytest.mark.usefixtures("prefect_harness")
def test_curve_flow_logs_a_parent_run_with_a_child_per_point_and_method(workspace, tiny_bert):
    from flows.curve import curve

    # min_examples_per_class=20 stays: the whole split is validated once, before sampling
    config = tiny_config("finance", tiny_bert, "training.epochs=1")
    report = curve(config=config, ks="1,2,all", seeds=2, methods=["probe", "lora", "full"])

    points = 2 + 2 + 1  # k=1 and k=2 with 2 seeds, all with one
    assert len(report.rows) == points * 3
    assert not [r for r in report.rows if "error" in r]
    classes = len(config.data.labels)
    for row in report.rows:
        if row["k"] != "all":
            assert row["train_examples"] == int(row["k"]) * classes
        assert 0.0 <= row["accuracy"] <= 1.0
    trained = {r["method"]: r["trainable_params"] for r in report.rows if r["k"] == "1"}
    assert trained["probe"] < trained["lora"] < trained["full"]
    assert {(s["method"], s["k"]): s["n"] for s in report.summary}[("lora", "1")] == 2

    c = tracking.client()
    parent = c.get_run(report.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["peftops.kind"] == "curve"
    children = c.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{report.mlflow_run_id}'",
        max_results=100,
    )
    assert len(children) == points * 3
    assert all(r.info.status == "FINISHED" for r in children)
    assert {r.data.tags["curve.method"] for r in children} == {"probe", "lora", "full"}
    assert all("test.accuracy" in r.data.metrics for r in children)
    logged = {a.path for a in c.list_artifacts(report.mlflow_run_id, "curve")}
    assert {f"curve/{f}" for f in ("curve.png", "points.csv", "curve.json", "table.txt")} <= logged
    png = Path(report.folder) / "curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((Path(report.folder) / "points.csv").read_text().splitlines()) == points * 3 + 1
    table = report.table.splitlines()
    assert len(table) == 2 + 3  # title, header, one line per k
    assert report.verdict and "probe" in report.verdict[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "1,0"], "positive integer or 'all'"),
        (["--seeds", "0"], "seeds must be at least 1"),
        (["--methods", "probe,lorra"], "method.name"),
        (["--methods", "few-shot,lora"], "method.name"),  # few-shot: generation presets only
        (["--preset", "finance-assistant", "--methods", "probe,lora"], "few-shot,lora,full"),
        (["--preset", "finance-assistant", "--methods", "zero-shot"], "k = 0 reference"),
    ],
)
def test_curve_command_refuses_bad_k_seeds_and_methods_before_running(args, message):
    from typer.testing import CliRunner

    from peftops.cli import app

    preset = "finance"
    if args[0] == "--preset":
        preset, args = args[1], args[2:]
    result = CliRunner().invoke(app, ["curve", preset, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_curve_deployment_has_a_typed_form():
    from prefect.utilities.callables import parameter_schema

    from flows.curve import curve
    from flows.deployments import CURVE_PARAMETERS, build_curve_deployment

    deployment = build_curve_deployment("healthcare", overrides=["training.epochs=2"])
    assert deployment.name == "curve" and not deployment.schedules
    assert deployment.parameters["config"]["domain"] == "healthcare"
    assert deployment.parameters["config"]["training"]["epochs"] == 2
    assert {k: deployment.parameters[k] for k in CURVE_PARAMETERS} == CURVE_PARAMETERS
    curve.validate_parameters(deployment.parameters)
    schema = parameter_schema(curve).model_dump_for_openapi()
    props = schema["properties"]
    assert props["ks"]["type"] == "string" and props["seeds"]["type"] == "integer"
    assert "PipelineConfig" in schema["definitions"]


@pytest.mark.usefixtures("prefect_harness")
def test_generative_curve_sets_the_few_shot_prompt_against_peft(workspace, tiny_causal_lm):
    """The generation task's curve: k conversations per intent (the JSON answers' first
    field), the base model prompted with up to generation.few_shot of them against LoRA
    trained on them, the zero-shot base model logged once as the k = 0 reference."""
    from flows.curve import curve

    config = tiny_config(
        "finance-assistant",
        tiny_causal_lm,
        "training.epochs=1",
        "training.batch_size=16",
        "training.learning_rate=0.01",
        "model.max_length=192",
        "generation.max_new_tokens=8",
        "generation.few_shot=2",
        "evaluation.batch_size=32",
    )
    report = curve(config=config, ks="1,2", seeds=1, max_test=12, max_validation=8)
    metric = config.registry.metric
    assert report.methods == ["few-shot", "lora", "full"]
    assert len(report.rows) == 2 * 3 and not [r for r in report.rows if "error" in r]
    assert report.test_examples == 12 and report.validation_examples == 8
    by = {(r["method"], r["k"]): r for r in report.rows}
    assert by[("lora", "1")]["train_examples"] < by[("lora", "2")]["train_examples"]
    assert by[("few-shot", "1")]["train_examples"] == by[("lora", "1")]["train_examples"]
    assert [by[("few-shot", k)]["shots"] for k in ("1", "2")] == [2, 2]
    assert by[("few-shot", "1")]["trainable_params"] == 0 < by[("lora", "1")]["trainable_params"]
    assert by[("lora", "1")]["trainable_params"] < by[("full", "1")]["trainable_params"]
    for row in report.rows:
        assert 0.0 <= row[metric] <= 1.0 and 0.0 <= row["rouge_l"] <= 1.0
    assert report.crossovers["baseline"] == "few-shot"
    assert "few-shot prompt" in " ".join(report.verdict)

    c = tracking.client()
    parent = c.get_run(report.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert f"curve.zero-shot.{metric}" in parent.data.metrics
    children = c.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{report.mlflow_run_id}'",
    )
    assert {r.data.tags["curve.method"] for r in children} == {"few-shot", "lora", "full"}
    assert all(f"test.{metric}" in r.data.metrics for r in children)
    assert (Path(report.folder) / "curve.png").is_file()


def test_generative_k_counts_conversations_per_intent():
    from components.curve import CurvePoint
    from components.generative.curve import class_ids, sample_chats
    from components.generative.examples import ChatExamples

    def chat(i: int, intent: str) -> list[dict]:
        answer = json.dumps({"intent": intent, "urgency": "low"})
        return [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": answer}]

    train = [chat(i, ["a", "b", "c"][i % 3]) for i in range(12)] + [chat(99, "d")]
    examples = ChatExamples(train, [], [], expect_json=True)
    assert len(set(class_ids(examples))) == 4
    two = sample_chats(examples, CurvePoint(2, 0))
    intents = sorted(json.loads(c[-1]["content"])["intent"] for c in two.train)
    assert intents == ["a", "a", "b", "b", "c", "c", "d"]  # a rare class gives what it has
    assert all(c in two.train for c in sample_chats(examples, CurvePoint(1, 0)).train)


def test_the_generative_test_cap_keeps_the_mix_of_answers():
    """A capped test split keeps each intent's share (stratified, as the classifier's curve
    caps its test split), in the split's order, the same for the same seed."""
    from components.generative.curve import subsample_chats
    from components.generative.examples import ChatExamples

    def chat(i: int, intent: str) -> list[dict]:
        answer = json.dumps({"intent": intent})
        return [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": answer}]

    test = [chat(i, "rare" if i % 10 == 0 else "common") for i in range(100)]
    examples = ChatExamples([], [], test, expect_json=True)
    for seed in range(8):  # a plain random sample of 20 holds 2 rare rows about 3 times in 10
        capped = subsample_chats(test, examples, 20, seed=seed)
        intents = Counter(json.loads(c[-1]["content"])["intent"] for c in capped)
        assert intents == {"common": 18, "rare": 2}, seed
    capped = subsample_chats(test, examples, 20, seed=5)
    assert capped == [c for c in test if c in capped]  # the split's order
    assert subsample_chats(test, examples, 20, seed=5) == capped
    assert subsample_chats(test, examples, None) == test
    assert subsample_chats(test, examples, 500) == test
