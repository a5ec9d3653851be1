"""The strongest simple baseline: frozen pooled embeddings + logistic regression.

The same probe initialises the fine-tuned model's head (LP-FT), so computing it costs the
pipeline nothing extra and every fine-tuned model is judged against it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from components.batching import encode, iter_batches
from components.evaluation import classification_metrics
from components.examples import TextSplit
from components.modeling import PooledClassifier, build_classifier


@dataclass
class Probe:
    """A fitted linear probe in head shape: weight (labels × hidden) and bias (labels)."""

    weight: np.ndarray
    bias: np.ndarray
    train_accuracy: float


@torch.inference_mode()
def embed_texts(
    model: PooledClassifier, tokenizer, texts: list[str], max_length: int, batch_size: int = 64
) -> np.ndarray:
    """Pooled, L2-normalised embeddings of `texts` from the (frozen) backbone, in input order."""
    model.eval()
    data = encode(tokenizer, texts, max_length)
    out = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
    for batch in iter_batches(data, batch_size, tokenizer.pad_token_id):
        vec = model.embed(batch["input_ids"], batch["attention_mask"])
        out[batch["index"].numpy()] = vec.float().cpu().numpy()
    return out


def fit_probe(features: np.ndarray, labels: np.ndarray, num_labels: int, c: float = 10.0) -> Probe:
    """Multinomial logistic regression; classes absent from `labels` get a very low bias."""
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(features, labels)
    weight = np.zeros((num_labels, features.shape[1]), dtype=np.float32)
    bias = np.full(num_labels, -10.0, dtype=np.float32)
    classes = clf.classes_.astype(int)
    if len(classes) == 2:  # sklearn keeps one row for binary problems
        weight[classes[1]], bias[classes[1]] = clf.coef_[0] / 2, clf.intercept_[0] / 2
        weight[classes[0]], bias[classes[0]] = -clf.coef_[0] / 2, -clf.intercept_[0] / 2
    else:
        weight[classes], bias[classes] = clf.coef_, clf.intercept_
    return Probe(weight, bias, float(clf.score(features, labels)))


def probe_predict(probe: Probe, features: np.ndarray) -> np.ndarray:
    """Label ids predicted by the probe."""
    return (features @ probe.weight.T + probe.bias).argmax(axis=1)


@dataclass
class BaselineResult:
    """The probe (for the head) and its scores on the test split (the baseline)."""

    probe: Probe
    test_predictions: list[int]
    metrics: dict
    seconds: float


def run_baseline(
    base_model: str,
    pooling: str,
    max_length: int,
    labels: list[str],
    train: TextSplit,
    test: TextSplit,
    batch_size: int = 64,
) -> BaselineResult:
    """Embed train and test once with the frozen base model, fit the probe, score it."""
    started = time.perf_counter()
    model, tokenizer, _ = build_classifier(base_model, len(labels), pooling)
    train_x = embed_texts(model, tokenizer, train.texts, max_length, batch_size)
    test_x = embed_texts(model, tokenizer, test.texts, max_length, batch_size)
    probe = fit_probe(train_x, np.asarray(train.label_ids), len(labels))
    preds = probe_predict(probe, test_x)
    metrics = classification_metrics(test.label_ids, preds, labels)
    return BaselineResult(probe, preds.tolist(), metrics, time.perf_counter() - started)
