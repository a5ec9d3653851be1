"""Scores for generated text: known values, closed label sets, JSON fields, bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from rouge_score import rouge_scorer

from components.generative.metrics import (
    exact_match,
    generation_metrics,
    json_field_label_sets,
    json_metrics,
    label_metrics,
    metric_function,
    normalize,
    per_example_scores,
    perplexity,
    rouge_l,
    token_f1,
)


def test_normalize_strips_case_edge_punctuation_articles_and_spaces():
    assert normalize("  The Cat,  sat on a mat! ") == "cat sat on mat"
    # Punctuation inside a word stays: label names and numbers keep their meaning.
    assert normalize("Card_Arrival.") == "card_arrival"
    assert normalize("It costs 3.5 euros.") == "it costs 3.5 euros"
    assert normalize("?!") == ""


def test_exact_match_and_token_f1_known_values():
    assert exact_match(["The answer.", "no"], ["answer", "yes"]) == 0.5
    # pred tokens: cat sat on mat; ref: cat on mat → P=3/4, R=1, F1=6/7. Both empty → 1.
    assert token_f1(["the cat sat on the mat"], ["cat on the mat"]) == pytest.approx(6 / 7)
    assert token_f1(["the cat sat on the mat", ""], ["cat on the mat", ""]) == pytest.approx(
        (6 / 7 + 1) / 2
    )
    assert token_f1(["dog"], ["cat"]) == 0.0
    assert token_f1([""], ["cat"]) == 0.0
    assert exact_match([], []) == 0.0
    with pytest.raises(ValueError, match="2 predictions but 1"):
        exact_match(["a", "b"], ["a"])


def test_rouge_l_matches_rouge_score_and_a_hand_computed_value():
    preds = ["the cat was found under the bed", "completely different words", "Hello, world!"]
    refs = ["the cat was under the bed", "nothing shared here", "hello world"]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = np.mean(
        [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs, strict=True)]
    )
    assert rouge_l(preds, refs) == pytest.approx(expected)
    # LCS 6 of 7 predicted and 6 of 6 reference tokens: F = 12/13.
    assert rouge_l(preds[:1], refs[:1]) == pytest.approx(12 / 13)
    assert per_example_scores(preds, refs, "rouge_l")[1:] == [0.0, 1.0]


def test_per_example_scores_accepts_a_callable_and_refuses_unknown_names():
    assert per_example_scores(["ab", "c"], ["ab", "d"], lambda p, r: len(p) + len(r)) == [4, 2]
    with pytest.raises(ValueError, match="unknown metric"):
        per_example_scores(["a"], ["a"], "bleu")


def test_perplexity():
    assert perplexity(10 * math.log(4), 10) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        perplexity(0.0, 0)


LABELS = ["positive", "negative", "neutral"]


def test_label_metrics_counts_outputs_outside_the_set_as_invalid_and_wrong():
    preds = ["Positive.", "negative", "I think positive", "neutral"]
    refs = ["positive", "positive", "negative", "neutral"]
    m = label_metrics(preds, refs, LABELS)
    assert m["accuracy"] == 0.5
    assert m["invalid_output_rate"] == 0.25
    assert m["per_class"]["positive"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    # The invalid output misses "negative"'s only example; the one "negative" guess was wrong.
    assert m["per_class"]["negative"]["recall"] == 0.0
    assert m["per_class"]["neutral"]["f1"] == 1.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m["kappa"] == pytest.approx((2 / 4 - 4 / 16) / (1 - 4 / 16))  # chance 4/16


def test_label_metrics_refuses_references_outside_the_set_and_clashing_labels():
    with pytest.raises(ValueError, match="outside the label set"):
        label_metrics(["positive"], ["mixed"], LABELS)
    with pytest.raises(ValueError, match="normalize alike"):
        label_metrics(["yes"], ["yes"], ["Yes", "yes."])


def test_single_letter_labels_stay_themselves_and_an_empty_output_names_none():
    # normalize() drops articles, so "A" would read as "" and match an empty output
    m = label_metrics(["", "The", "a.", " B "], ["A", "A", "A", "B"], ["A", "B", "C"])
    assert m["accuracy"] == pytest.approx(2 / 4)  # "a." names A, " B " names B
    assert m["invalid_output_rate"] == pytest.approx(2 / 4)  # "" and "The" name no label
    with pytest.raises(ValueError, match="only punctuation"):
        label_metrics(["+"], ["+"], ["+", "-"])


def test_json_metrics_per_field():
    refs = [
        json.dumps({"intent": "refund", "urgent": True, "amount": 20}),
        json.dumps({"intent": "cancel", "urgent": False, "amount": 5}),
        json.dumps({"intent": "refund", "urgent": False}),
        json.dumps({"intent": "cancel", "urgent": True}),
    ]
    preds = [
        '{"intent": "Refund", "urgent": true, "amount": 20, "extra": 1}',  # all right
        '```json\n{"intent": "cancel", "urgent": 0, "amount": 5.0}\n```',  # urgent: wrong type
        "the intent is refund",  # not JSON
        '["cancel", true]',  # JSON, but not an object
    ]
    m = json_metrics(preds, refs)
    assert m["json_valid_rate"] == 0.5
    assert m["field.intent"] == 0.5
    assert m["field.urgent"] == 0.25
    assert m["field.amount"] == 1.0  # over the two references that have it
    assert m["all_fields_accuracy"] == 0.25
    with pytest.raises(ValueError, match="not JSON objects"):
        json_metrics(["{}"], ["plain text"])


def test_json_field_label_sets_keeps_small_closed_string_fields():
    refs = [
        json.dumps({"intent": i, "note": n, "n": k, "answer": a})
        for i, n, k, a in [
            ("refund", "late parcel", 1, "Yes"),
            ("cancel", "wrong size", 2, "yes"),
            ("refund", "broken", 1, "no"),
            ("refund", "late parcel", 1, "No"),
        ]
    ]
    # note: 3 distinct values in 4 (free text); n: not strings; answer: Yes/yes are one label.
    assert json_field_label_sets(refs) == {"intent": ["cancel", "refund"], "answer": ["No", "Yes"]}
    assert json_field_label_sets(refs, max_labels=1) == {}
    # one field, scored: "the refund" is not "refund" (articles count for labels), and its
    # macro-F1 is computed over the set the field's own values make (was: a ValueError)
    refs = [json.dumps({"intent": i}) for i in ("refund", "the refund", "refund", "the refund")]
    assert json_field_label_sets(refs) == {"intent": ["refund", "the refund"]}
    metrics = generation_metrics(refs, refs, expect_json=True)
    assert metrics["field.intent.macro_f1"] == 1.0


def test_generation_metrics_is_flat_and_has_invalid_output_rate_always():
    plain = generation_metrics(["a cat"], ["the cat"])
    assert plain == {
        "exact_match": 1.0,
        "token_f1": 1.0,
        "rouge_l": 0.5,
        "invalid_output_rate": 0.0,
    }

    m = generation_metrics(["positive", "maybe"], ["positive", "negative"], labels=LABELS)
    assert m["accuracy"] == 0.5 and m["invalid_output_rate"] == 0.5
    assert m["min_recall"] == 0.0
    assert m["kappa"] == pytest.approx(1 / 3)  # agreement 1/2 against chance 1/4
    assert all(isinstance(v, float) for v in m.values())

    refs = [json.dumps({"intent": i}) for i in ["refund", "cancel", "refund", "cancel"]]
    preds = ['{"intent": "refund"}', '{"intent": "refund"}', "oops", '{"intent": "cancel"}']
    j = generation_metrics(preds, refs, expect_json=True)
    assert j["invalid_output_rate"] == 0.25 and j["json_valid_rate"] == 0.75
    assert j["field.intent"] == 0.5 and j["all_fields_accuracy"] == 0.5
    # refund: P=1/2 R=1/2; cancel: P=1 R=1/2 → F1 1/2 and 2/3.
    assert j["field.intent.macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="cannot both"):
        generation_metrics(preds, refs, labels=LABELS, expect_json=True)


def test_json_boolean_fields_must_match_in_value_and_type():
    refs = ['{"red_flag": true}', '{"red_flag": false}', '{"red_flag": true}']
    preds = ['{"red_flag": true}', '{"red_flag": true}', '{"red_flag": 1}']
    scored = json_metrics(preds, refs)
    assert scored["field.red_flag"] == pytest.approx(1 / 3)  # a wrong bool and a 1 are wrong
    assert scored["all_fields_accuracy"] == pytest.approx(1 / 3)


def test_metric_function_equals_generation_metrics_on_every_resample(monkeypatch):
    """What the bootstrap calls per resample: the same value as the whole metrics dict, for
    each registry metric, on resampled (repeated) examples."""
    import components.generative.metrics as metrics

    rng = np.random.default_rng(0)
    refs = ["positive", "negative", "neutral", "positive", "negative"]
    preds = ["positive", "the negative", "maybe", "neutral", "negative."]
    jrefs = [json.dumps({"intent": i}) for i in ["refund", "cancel", "refund", "cancel", "x"]]
    jpreds = ['{"intent": "refund"}', "oops", '{"intent": "Refund"}', "{}", '{"intent": "x"}']
    cases = [
        (preds, refs, {"labels": LABELS}, ("exact_match", "token_f1", "rouge_l", "accuracy")),
        (preds, refs, {"labels": LABELS}, ("macro_f1",)),
        (jpreds, jrefs, {"expect_json": True}, ("json_valid_rate", "all_fields_accuracy")),
        (preds, refs, {}, ("rouge_l", "exact_match")),
    ]
    for p, r, kw, names in cases:
        for name in names:
            fn = metric_function(name, **kw)
            for _ in range(5):
                idx = rng.integers(0, len(r), len(r))
                pick_p, pick_r = [p[i] for i in idx], [r[i] for i in idx]
                assert fn(pick_p, pick_r) == pytest.approx(
                    generation_metrics(pick_p, pick_r, **kw)[name]
                ), name
    calls = []
    real = metrics._PAIR_METRICS["rouge_l"]
    monkeypatch.setitem(
        metrics._PAIR_METRICS, "rouge_l", lambda p, r: calls.append(1) or real(p, r)
    )
    fn = metric_function("rouge_l")
    for _ in range(20):
        fn(preds, refs)
    assert len(calls) == len(set(zip(preds, refs, strict=True)))  # each pair scored once
    with pytest.raises(ValueError, match="no metric 'accuracy'"):
        metric_function("accuracy")(preds, refs)  # no label set: no accuracy
