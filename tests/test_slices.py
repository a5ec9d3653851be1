"""Fairness slices: metrics per group value, the slice gates in the promotion policy, the
summary and model card, and the Great Expectations checks on group columns."""

import pandas as pd
import pytest

from components import registry
from components.config import RegistryConfig, ValidationConfig, build_config
from components.evaluation import classification_metrics
from components.examples import to_examples
from components.report import RunSummary, format_summary, model_card
from components.slices import save_slice_plot, slice_gate, slice_metrics
from components.validation import validate_splits

LABELS = ["card", "transfer", "refund"]
# 12 examples; group "band": young (0-5) all right, old (6-11) half wrong; "sex" mixed
Y_TRUE = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
Y_PRED = [0, 1, 2, 0, 1, 2, 0, 2, 1, 0, 2, -1]
GROUPS = {"band": ["young"] * 6 + ["old"] * 6, "sex": ["f", "m"] * 6}


def _report(min_support=4, metric="macro_f1"):
    return slice_metrics(Y_TRUE, Y_PRED, LABELS, GROUPS, metric=metric, min_support=min_support)


def test_slice_metrics_on_known_predictions():
    report = _report()
    by = {s.name: s for s in report.slices}
    assert [s.name for s in report.slices] == ["band=old", "band=young", "sex=f", "sex=m"]
    young, old = by["band=young"], by["band=old"]
    assert (young.support, young.accuracy, young.macro_f1) == (6, 1.0, 1.0)
    assert old.support == 6 and old.accuracy == pytest.approx(2 / 6)
    # old: card 2/2 right; transfer 0/2 (predicted refund twice); refund 0/2 (transfer, -1)
    assert old.per_class_recall == {"card": 1.0, "transfer": 0.0, "refund": 0.0}
    assert old.macro_f1 == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    # the overall figures are those of the whole test split
    whole = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert report.overall["accuracy"] == pytest.approx(whole["accuracy"])
    assert report.overall["macro_f1"] == pytest.approx(whole["macro_f1"])
    assert report.worst() is old
    assert report.gap(old) == pytest.approx(report.overall["macro_f1"] - old.macro_f1)
    metrics = report.metrics()
    assert metrics["slice.band.old.macro_f1"] == pytest.approx(old.macro_f1)
    assert metrics["slice.band.young.support"] == 6
    assert metrics["slice.worst.macro_f1"] == pytest.approx(old.macro_f1)


def test_small_slices_are_shown_but_not_judged():
    report = _report(min_support=7)  # every slice has 6
    assert report.slices and not report.judged()
    assert {r["judged"] for r in report.rows()} == {"too small"}
    assert report.worst() is None
    assert slice_gate(report, 0.0, 0.99) == [(True, "slice gates: no slice has 7+ test examples")]


def test_slice_gate_names_the_failing_slice():
    report = _report()
    failed = slice_gate(report, max_gap=0.1, min_metric=0.5)
    assert [ok for ok, _ in failed] == [False, False]
    assert all("band=old" in reason for _, reason in failed)
    widest = report.gap(report.worst())
    passed = slice_gate(report, max_gap=widest + 0.01, min_metric=report.worst().macro_f1)
    assert [ok for ok, _ in passed] == [True, True]
    assert slice_gate(report, None, None) == []


def _candidate():
    return {**classification_metrics(Y_TRUE, Y_PRED, LABELS)}


def test_decide_promotion_with_slice_gates():
    report = _report()
    policy = RegistryConfig(require_beats_baseline=False, max_slice_gap=0.1)
    decision = registry.decide_promotion(_candidate(), None, None, policy, slices=report)
    assert not decision.promote
    assert any("band=old" in r and "max_slice_gap" in r for r in decision.reasons)
    loose = RegistryConfig(require_beats_baseline=False, max_slice_gap=0.9, min_slice_metric=0.3)
    assert registry.decide_promotion(_candidate(), None, None, loose, slices=report).promote
    # gates on but nothing sliced: never promote blind
    blind = registry.decide_promotion(_candidate(), None, None, loose)
    assert not blind.promote and "no slices" in blind.reasons[-1]
    # gates off: slices do not matter
    off = RegistryConfig(require_beats_baseline=False)
    assert registry.decide_promotion(_candidate(), None, None, off, slices=report).promote


def test_summary_and_model_card_show_the_slice_table(tmp_path):
    report = _report(min_support=4)
    summary = RunSummary(
        "healthcare",
        "m",
        "run",
        metrics=_candidate(),
        slice_rows=report.rows(),
        slice_notes=report.summary_lines(),
    )
    text = format_summary(summary)
    assert "band=old" in text and "worst band=old" in text and "largest gap" in text
    card = model_card(summary)
    assert "## Fairness slices" in card and "| band | old | 6 |" in card
    plot = save_slice_plot(report, tmp_path / "s.png", "t", max_gap=0.1, min_metric=0.5)
    assert plot.stat().st_size > 1000


def test_group_columns_are_carried_beside_texts_not_as_input():
    frame = pd.DataFrame(
        {"text": ["a b c", "d e f"], "label": ["card", "refund"], "band": ["old", " young "]}
    )
    examples = to_examples(
        {s: frame for s in ("train", "validation", "test")}, "text", "label", LABELS, ["band"]
    )
    assert examples.test.texts == ["a b c", "d e f"]
    assert examples.test.groups == {"band": ["old", "young"]}
    with pytest.raises(Exception, match="no group column"):
        to_examples(
            {s: frame for s in ("train", "validation", "test")}, "text", "label", LABELS, ["region"]
        )


def test_config_rejects_the_text_column_as_a_group_and_group_columns_for_generation():
    with pytest.raises(ValueError, match="fairness slices"):
        build_config({"task": "generation", "data": {"group_columns": ["band"]}})
    with pytest.raises(ValueError, match="text or label"):
        build_config({"data": {"group_columns": ["text"]}})


def _splits(test_bands):
    texts = [f"message number {i} about my card" for i in range(40)]
    train = pd.DataFrame(
        {"text": texts[:20], "label": ["card", "refund"] * 10, "band": ["old", "young"] * 10}
    )
    test = pd.DataFrame(
        {
            "text": texts[20 : 20 + len(test_bands)],
            "label": ["card"] * len(test_bands),
            "band": test_bands,
        }
    )
    return {"train": train, "test": test}


def _validate(splits, declared=(), support=3):
    return validate_splits(
        splits,
        text_column="text",
        label_column="label",
        labels=["card", "refund"],
        config=ValidationConfig(min_examples_per_class=2),
        suite_name="groups",
        groups={"band": list(declared)},
        min_group_support=support,
    )


def test_ge_suite_flags_an_empty_group_and_an_unknown_value_and_warns_on_small_groups():
    good = _validate(_splits(["old"] * 3 + ["young"] * 3), declared=["old", "young"])
    assert good.success and not good.warnings(), good.summary()
    empty = _validate(_splits(["old"] * 3 + ["young", "  ", None]))
    assert not empty.success
    failure = empty.failures()[0]
    assert failure.split == "test" and failure.column == "band"
    assert failure.expectation == "expect_column_values_to_not_be_null"
    assert failure.unexpected_count == 2
    unknown = _validate(
        _splits(["old"] * 3 + ["young"] * 2 + ["elderly"]), declared=["old", "young"]
    )
    assert not unknown.success
    assert "elderly" in unknown.summary()
    # a value with fewer test examples than min_slice_support: a warning, not a failure
    small = _validate(_splits(["old"] * 5 + ["young"]))
    assert small.success
    [warning] = small.warnings()
    assert "'young' (1)" in warning.description
    assert "## Warnings" in small.to_markdown()


@pytest.mark.parametrize("domain", ["finance", "healthcare"])
def test_demo_data_carries_the_presets_group_columns_and_passes_their_checks(domain):
    from components.config import load_preset
    from components.data import load_splits
    from conftest import REPO

    config = load_preset(domain)
    raw = load_splits(config.data, REPO)
    assert len(config.data.group_columns) == 2
    for frame in raw.frames.values():
        for column in config.data.group_columns:
            assert set(frame[column]) == set(config.data.group_values[column]), column
    report = validate_splits(
        raw.frames,
        text_column="text",
        label_column="label",
        labels=config.data.labels,
        config=config.validation,
        suite_name=domain,
        groups=config.data.group_values,
        min_group_support=config.evaluation.min_slice_support,
    )
    assert report.success, report.summary()
    group_checks = [c for c in report.checks if c.column in config.data.group_columns]
    assert len(group_checks) == 2 * 3 * 3 + 2  # 3 checks x 2 columns x 3 splits + 2 on test
    # the small slices are warned about, on the test split only
    small = {"finance": "premier", "healthcare": "other"}[domain]
    assert any(small in w.description and w.split == "test" for w in report.warnings())


def test_a_missing_group_column_fails_validation_saying_how_to_go_on():
    splits = _splits(["old"] * 3)
    splits["test"] = splits["test"].drop(columns=["band"])
    report = _validate(splits)
    assert not report.success
    [failure] = report.failures()
    assert failure.split == "test" and "group column 'band' is missing" in failure.description
    assert "data.group_columns=[]" in failure.description
