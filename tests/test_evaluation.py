"""Metrics, the confusion-matrix image, the comparison table and the run summary."""

import numpy as np
import pytest

from components.evaluation import (
    classification_metrics,
    comparison_rows,
    ids_from_names,
    markdown_table,
    min_recall,
    save_confusion_matrix,
)
from components.report import RunSummary, format_summary, model_card

LABELS = ["a", "b", "c"]


def test_metrics_per_class_and_unknown_predictions():
    truth = [0, 0, 1, 1, 2, 2]
    predicted = ids_from_names(["a", "a", "b", "zzz", "c", "a"], LABELS)
    assert predicted == [0, 0, 1, -1, 2, 0]
    m = classification_metrics(truth, predicted, LABELS)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"]["support"] == 2
    assert min_recall(m) == pytest.approx(0.5)
    assert 0 < m["macro_f1"] < 1
    # agreement 4/6 against chance 10/36 (the unknown guess is its own category)
    assert m["kappa"] == pytest.approx((4 / 6 - 10 / 36) / (1 - 10 / 36))


def test_kappa_gives_no_credit_for_the_class_prior():
    truth = [0] * 55 + [1] * 34 + [2] * 11
    majority = classification_metrics(truth, [0] * 100, LABELS)
    assert majority["accuracy"] == pytest.approx(0.55)
    assert majority["kappa"] == 0.0
    # guesses with the prior's shares, shuffled against the truth: accuracy ~ sum p^2, kappa ~ 0
    guesses = classification_metrics(
        truth, list(np.random.default_rng(0).permutation(truth)), LABELS
    )
    assert guesses["kappa"] == pytest.approx(0.0, abs=0.15)
    assert classification_metrics(truth, truth, LABELS)["kappa"] == 1.0
    assert classification_metrics([0, 0], [0, 0], LABELS)["kappa"] == 0.0  # undefined: no skill


def test_confusion_matrix_png(tmp_path):
    path = save_confusion_matrix([0, 1, 2], [0, 2, 2], LABELS, tmp_path / "cm.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_comparison_table_skips_missing_models():
    m = classification_metrics([0, 1], [0, 1], LABELS[:2])
    rows = comparison_rows({"fine-tuned": m, "champion": None})
    assert [r["model"] for r in rows] == ["fine-tuned"]
    assert "| fine-tuned | 1.0 | 1.0 | 1.0 |" in markdown_table(rows)


def test_summary_and_model_card_say_what_happened():
    m = {**classification_metrics([0, 1], [0, 1], LABELS[:2]), "min_recall": 1.0}
    s = RunSummary(
        domain="finance",
        model_name="peftops-finance",
        mlflow_run_id="r1",
        metrics=m,
        baseline=m,
        trainable_params=10,
        total_params=1000,
        version="3",
        model_uri="models:/peftops-finance/3",
        champion_moved=True,
        decision=["no champion"],
        tracking_uri="sqlite:///x.db",
        precision="bf16",
    )
    text = format_summary(s)
    for needle in (
        "finance",
        "samples/s, bf16 on cpu)",
        "1.00%",
        "models:/peftops-finance/3",
        "moved yes",
        "mlflow ui",
        "prefect server start",
        "champion before none yet",
    ):
        assert needle in text
    assert "| fine-tuned |" in model_card(s)
    assert "samples/s, bf16 on cpu" in model_card(s)


def test_summary_and_model_card_say_how_many_processes_trained():
    s = RunSummary(
        domain="finance",
        model_name="peftops-finance",
        mlflow_run_id="r1",
        world_size=2,
        strategy="ddp",
        backend="gloo",
        launcher="torch-elastic",
    )
    how = "samples/s, fp32 on cpu, ddp over 2 processes (gloo, torch-elastic)"
    assert how in format_summary(s) and how in model_card(s)
    one = RunSummary(domain="finance", model_name="m", mlflow_run_id="r1")
    assert "processes" not in format_summary(one) + model_card(one)


def test_paired_bootstrap_brackets_the_difference_and_is_reproducible():
    from components.evaluation import paired_bootstrap

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200).tolist()
    a = [t if rng.random() < 0.9 else (t + 1) % 3 for t in truth]  # ~0.9 accuracy
    b = [t if rng.random() < 0.6 else (t + 1) % 3 for t in truth]  # ~0.6
    accuracy = lambda p, r: float(np.mean(np.array(p) == np.array(r)))  # noqa: E731
    result = paired_bootstrap(accuracy, a, b, truth, n_resamples=500, seed=1)
    assert result["low"] < result["mean_diff"] < result["high"]
    assert result["low"] > 0.15 and result["high"] < 0.45
    assert paired_bootstrap(accuracy, a, b, truth, n_resamples=500, seed=1) == result
    same = paired_bootstrap(accuracy, a, a, truth, n_resamples=200)
    assert same == {"mean_diff": 0.0, "low": 0.0, "high": 0.0}


def test_the_summary_says_plainly_when_the_untrained_start_was_kept():
    m = {**classification_metrics([0, 1], [0, 1], LABELS[:2]), "min_recall": 1.0}
    base = {"domain": "finance", "model_name": "m", "mlflow_run_id": "r", "metrics": m}
    kept = RunSummary(**base, best_epoch=0)
    assert "the starting point (the probe's head" in format_summary(kept)
    assert "kept: the starting point" in model_card(kept)
    trained = RunSummary(**base, best_epoch=2)
    assert "starting point" not in format_summary(trained) + model_card(trained)
