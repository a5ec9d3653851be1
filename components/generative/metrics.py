"""Scores for generated text: string overlap, closed label sets, JSON fields, perplexity, and
a paired bootstrap interval for the difference between two systems on the same examples."""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from components.evaluation import classification_metrics, min_recall

_ARTICLES = {"a", "an", "the"}
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def label_key(text: str) -> str:
    """What names a label: lowercase, punctuation stripped from the ends of each word,
    whitespace collapsed; articles kept, so the labels "A"/"B"/"C" of a multiple-choice task
    stay themselves and an empty output names none of them."""
    words = (w.strip(string.punctuation) for w in str(text).lower().split())
    return " ".join(w for w in words if w)


def normalize(text: str) -> str:
    """`label_key` with articles dropped (SQuAD's answer normalisation, for exact match and
    token F1). Unlike SQuAD, punctuation inside a word stays ("3.5", "card_arrival")."""
    return " ".join(w for w in label_key(text).split() if w not in _ARTICLES)


def distinct_labels(answers: Sequence[str]) -> list[str]:
    """One spelling per label (answers with the same `label_key`, e.g. "Yes", "yes."): the
    most common, ties to the first in sorted order, so the set is reproducible; sorted."""
    spellings: dict[str, Counter] = {}
    for answer in answers:
        spellings.setdefault(label_key(answer), Counter())[answer] += 1
    return sorted(min(c, key=lambda s: (-c[s], s)) for c in spellings.values())


def _check(preds: Sequence[str], refs: Sequence[str]) -> None:
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references")


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def _exact(pred: str, ref: str) -> float:
    return float(normalize(pred) == normalize(ref))


def _f1(pred: str, ref: str) -> float:
    """SQuAD token F1 of one pair (both empty counts as a match)."""
    p, r = normalize(pred).split(), normalize(ref).split()
    if not p or not r:
        return float(p == r)
    same = sum((Counter(p) & Counter(r)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(r)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def _rouge_l(pred: str, ref: str) -> float:
    # rouge_score(target, prediction); its tokenizer lowercases and keeps [a-z0-9] runs only.
    return float(_rouge_scorer().score(ref, pred)["rougeL"].fmeasure)


_PAIR_METRICS: dict[str, Callable[[str, str], float]] = {
    "exact_match": _exact,
    "token_f1": _f1,
    "rouge_l": _rouge_l,
}


def per_example_scores(
    preds: Sequence[str], refs: Sequence[str], metric: str | Callable[[str, str], float]
) -> list[float]:
    """One score per example: `metric` is exact_match, token_f1, rouge_l or f(pred, ref)."""
    _check(preds, refs)
    if isinstance(metric, str):
        if metric not in _PAIR_METRICS:
            raise ValueError(f"unknown metric {metric!r}; one of {sorted(_PAIR_METRICS)}")
        metric = _PAIR_METRICS[metric]
    return [float(metric(p, r)) for p, r in zip(preds, refs, strict=True)]


def exact_match(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Share of predictions equal to their reference after `normalize`."""
    return _mean(per_example_scores(preds, refs, "exact_match"))


def token_f1(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Mean SQuAD-style token F1 over examples."""
    return _mean(per_example_scores(preds, refs, "token_f1"))


def rouge_l(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (rouge_score, no stemming) over examples."""
    return _mean(per_example_scores(preds, refs, "rouge_l"))


def perplexity(nll_sum: float, count: int) -> float:
    """exp(mean token NLL), from `decoding.sequence_nll`'s sum and count."""
    if count <= 0:
        raise ValueError("perplexity needs at least one scored token")
    return math.exp(nll_sum / count)


def label_ids(texts: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Index of the label each text names after `label_key`; -1 when it names none."""
    index: dict[str, int] = {}
    for i, label in enumerate(labels):
        key = label_key(label)
        if not key:
            raise ValueError(f"label {label!r} is only punctuation or space")
        if key in index:
            raise ValueError(f"labels {labels[index[key]]!r} and {label!r} normalize alike")
        index[key] = i
    return [index.get(label_key(t), -1) for t in texts]


def label_metrics(preds: Sequence[str], refs: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class scores of outputs over a closed label set, plus
    `invalid_output_rate`: outputs that name no label (counted as wrong for every class)."""
    _check(preds, refs)
    y_true = label_ids(refs, labels)
    if -1 in y_true:
        bad = sorted({r for r, y in zip(refs, y_true, strict=True) if y == -1})
        raise ValueError(f"references outside the label set: {bad[:5]}")
    y_pred = label_ids(preds, labels)
    metrics = classification_metrics(y_true, y_pred, list(labels))
    metrics["invalid_output_rate"] = _mean([float(y == -1) for y in y_pred])
    return metrics


def parse_json_object(text: str) -> dict | None:
    """The JSON object a text holds (one enclosing ``` fence allowed), else None."""
    text = str(text).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _same_value(pred, ref) -> bool:
    """Strings compare after `normalize`; other values compare equal with the same JSON type."""
    if isinstance(ref, str):
        return isinstance(pred, str) and normalize(pred) == normalize(ref)
    if isinstance(ref, bool) or isinstance(pred, bool):  # true is not 1
        return type(pred) is type(ref) and pred == ref
    return pred == ref


def _reference_objects(refs: Sequence[str]) -> list[dict]:
    objects = [parse_json_object(r) for r in refs]
    bad = [i for i, o in enumerate(objects) if o is None]
    if bad:
        raise ValueError(f"references {bad[:5]} are not JSON objects")
    return objects  # type: ignore[return-value]


def _fields(objects: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(k for o in objects for k in o))


def json_metrics(preds: Sequence[str], refs: Sequence[str]) -> dict:
    """`json_valid_rate` (output parses to an object), `field.<name>` accuracy over the
    examples whose reference has that field, and `all_fields_accuracy` (every reference field
    right; extra predicted fields are not penalised). References must be JSON objects."""
    _check(preds, refs)
    gold = _reference_objects(refs)
    parsed = [parse_json_object(p) for p in preds]
    result = {"json_valid_rate": _mean([float(p is not None) for p in parsed])}
    hits = [
        {k: p is not None and k in p and _same_value(p[k], v) for k, v in g.items()}
        for p, g in zip(parsed, gold, strict=True)
    ]
    for name in _fields(gold):
        result[f"field.{name}"] = _mean([float(h[name]) for h in hits if name in h])
    result["all_fields_accuracy"] = _mean([float(all(h.values())) for h in hits])
    return result


def json_field_label_sets(refs: Sequence[str], max_labels: int = 20) -> dict[str, list[str]]:
    """Fields whose reference values are strings from a small closed set: field → sorted values.

    Values are compared after `label_key`, as `label_metrics` scores them (`distinct_labels`).
    Closed means at most `max_labels` distinct values, each used twice on average (so a free-text
    field whose values happen to repeat once is not mistaken for a label)."""
    gold = _reference_objects(refs)
    sets = {}
    for name in _fields(gold):
        values = [g[name] for g in gold if name in g]
        if not all(isinstance(v, str) and label_key(v) for v in values):
            continue
        distinct = distinct_labels(values)
        if len(distinct) <= min(max_labels, len(values) // 2):
            sets[name] = distinct
    return sets


def _field_text(obj: dict | None, name: str) -> str:
    value = None if obj is None else obj.get(name)
    return value if isinstance(value, str) else ""


def generation_metrics(
    preds: Sequence[str],
    refs: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    expect_json: bool = False,
) -> dict[str, float]:
    """One flat dict of scalars: exact_match, token_f1, rouge_l and invalid_output_rate always;
    accuracy/macro_f1/kappa/min_recall with `labels`; json_valid_rate, field.<name>,
    field.<name>.macro_f1 (closed-set fields) and all_fields_accuracy with `expect_json`."""
    if labels is not None and expect_json:
        raise ValueError("a closed label set and JSON outputs cannot both be expected")
    result = {
        "exact_match": exact_match(preds, refs),
        "token_f1": token_f1(preds, refs),
        "rouge_l": rouge_l(preds, refs),
        "invalid_output_rate": 0.0,
    }
    if labels is not None:
        scored = label_metrics(preds, refs, labels)
        result |= {k: scored[k] for k in ("accuracy", "macro_f1", "kappa", "invalid_output_rate")}
        result["min_recall"] = min_recall(scored)
    if expect_json:
        scored = json_metrics(preds, refs)
        result |= scored
        result["invalid_output_rate"] = 1.0 - scored["json_valid_rate"]
        gold = _reference_objects(refs)
        parsed = [parse_json_object(p) for p in preds]
        for name, values in json_field_label_sets(refs).items():
            # Only the examples whose reference has the field; a missing field is invalid (-1).
            rows = [(p, g) for p, g in zip(parsed, gold, strict=True) if name in g]
            field_preds = [_field_text(p, name) for p, _ in rows]
            field_refs = [g[name] for _, g in rows]
            result[f"field.{name}.macro_f1"] = label_metrics(field_preds, field_refs, values)[
                "macro_f1"
            ]
    return result


def metric_function(
    metric: str, *, labels: Sequence[str] | None = None, expect_json: bool = False
) -> Callable[[Sequence[str], Sequence[str]], float]:
    """`generation_metrics(...)[metric]` as a function of (predictions, references), for a
    bootstrap that calls it once per resample: a mean of per-example scores (exact match,
    token F1, ROUGE-L) scores each distinct pair once and averages; a label or JSON metric
    computes that family only (not ROUGE-L over every example each time)."""
    if metric in _PAIR_METRICS:
        pair = lru_cache(maxsize=None)(_PAIR_METRICS[metric])
        return lambda preds, refs: _mean([pair(p, r) for p, r in zip(preds, refs, strict=True)])
    if labels is not None and metric in ("accuracy", "macro_f1", "kappa"):
        return lambda preds, refs: float(label_metrics(preds, refs, labels)[metric])
    if expect_json and metric in ("json_valid_rate", "all_fields_accuracy"):
        return lambda preds, refs: float(json_metrics(preds, refs)[metric])

    def whole(preds: Sequence[str], refs: Sequence[str]) -> float:
        scored = generation_metrics(preds, refs, labels=labels, expect_json=expect_json)
        if metric not in scored:
            raise ValueError(f"no metric {metric!r} for these outputs; one of {sorted(scored)}")
        return float(scored[metric])

    return whole
