"""Classification: text → one label of a closed set, by a pooled encoder with a linear head.

Baseline: frozen embeddings + logistic regression (the probe, which also starts the head).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from components.baseline import BaselineResult, Probe, run_baseline
from components.config import CLASSIFICATION_METRICS, PipelineConfig
from components.evaluation import (
    classification_metrics,
    ids_from_names,
    min_recall,
    save_confusion_matrix,
)
from components.examples import Examples, TextSplit, infer_labels, require_rows, to_examples
from components.modeling import load_bundle
from components.objectives.base import Baselines, EpochCallback, PyfuncSpec, Scored
from components.selection import Selection, run_selection
from components.training import TrainResult, train_classifier, training_key
from components.validation import ValidationReport, validate_splits

_HERE = Path(__file__).resolve().parent.parent


def with_min_recall(metrics: dict) -> dict:
    return {**metrics, "min_recall": min_recall(metrics)}


def majority_metrics(examples: Examples) -> dict:
    """The prior: every test text gets the most frequent training label (on skewed data it
    can beat a model on accuracy, so a fine-tuned model must beat it too)."""
    counts = Counter(examples.train.label_ids)
    majority = max(sorted(counts), key=counts.__getitem__)
    test = examples.test.label_ids
    return classification_metrics(test, [majority] * len(test), examples.labels)


class Classification:
    name: ClassVar[str] = "classification"
    metrics: ClassVar[tuple[str, ...]] = CLASSIFICATION_METRICS
    shown: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "min_recall")

    @staticmethod
    def _labels(frames: dict[str, pd.DataFrame], config: PipelineConfig) -> list[str]:
        data, train = config.data, frames["train"]
        return data.labels or (
            infer_labels(train, data.label_column, []) if data.label_column in train else []
        )

    def validate(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> ValidationReport:
        return validate_splits(
            frames,
            text_column=config.data.text_column,
            label_column=config.data.label_column,
            labels=self._labels(frames, config),
            config=config.validation,
            suite_name=f"peftops-{config.domain}",
            groups={c: config.data.group_values.get(c, []) for c in config.data.group_columns},
            min_group_support=config.evaluation.min_slice_support,
        )

    def prepare(self, frames: dict[str, pd.DataFrame], config: PipelineConfig) -> Examples:
        require_rows(frames)
        data = config.data
        return to_examples(
            frames,
            data.text_column,
            data.label_column,
            self._labels(frames, config),
            data.group_columns,
        )

    def preview(self, examples: Examples, config: PipelineConfig) -> None:
        return None  # texts are trained as they are

    def fit_baselines(self, examples: Examples, config: PipelineConfig) -> Baselines:
        m = config.model
        result = run_baseline(
            m.base_model, m.pooling, m.max_length, examples.labels, examples.train, examples.test
        )
        metrics = {
            "baseline": with_min_recall(result.metrics),
            "majority": with_min_recall(majority_metrics(examples)),
        }
        return Baselines(metrics, result.seconds, result)

    def select(self, examples: Examples, baselines: Baselines, config: PipelineConfig) -> Selection:
        return run_selection(
            config,
            examples.train,
            len(examples.labels),
            baselines.state.probe,
            examples.validation,
        )

    def training_key(self, examples: Examples, config: PipelineConfig) -> str:
        return training_key(config, examples.train, examples.validation)

    def train(
        self,
        examples: Examples,
        selection: Selection,
        baselines: Baselines,
        config: PipelineConfig,
        workdir: Path,
        on_epoch_end: EpochCallback | None = None,
        manifest: dict | None = None,
    ) -> TrainResult:
        return train_classifier(
            config,
            selection,
            examples.train,
            examples.validation,
            examples.labels,
            workdir=workdir,
            probe=baselines.state.probe,
            on_epoch_end=on_epoch_end,
            manifest=manifest,
        )

    def job_inputs(self, examples: Examples, baselines: Baselines) -> dict:
        probe = baselines.state.probe if baselines.state is not None else None
        return {
            "labels": list(examples.labels),
            **{
                name: {"texts": list(split.texts), "label_ids": [int(i) for i in split.label_ids]}
                for name, split in (("train", examples.train), ("validation", examples.validation))
            },
            # float32 through JSON's float64 and back: exact
            "probe": None
            if probe is None
            else {
                "weight": probe.weight.tolist(),
                "bias": probe.bias.tolist(),
                "train_accuracy": probe.train_accuracy,
            },
        }

    def from_job_inputs(self, data: dict) -> tuple[Examples, Baselines]:
        splits = {
            k: TextSplit(data[k]["texts"], data[k]["label_ids"]) for k in ("train", "validation")
        }
        examples = Examples(
            data["labels"], splits["train"], splits["validation"], TextSplit([], [])
        )
        p = data["probe"]
        probe = None
        if p is not None:
            weight, bias = (np.asarray(p[k], dtype=np.float32) for k in ("weight", "bias"))
            probe = Probe(weight, bias, p["train_accuracy"])
        return examples, Baselines({}, state=BaselineResult(probe, [], {}, 0.0))

    def _scored(self, predicted: list[str], examples: Examples) -> Scored:
        pred_ids = ids_from_names(predicted, examples.labels)
        metrics = classification_metrics(examples.test.label_ids, pred_ids, examples.labels)
        return Scored(
            with_min_recall(metrics),
            pred_ids,
            artifacts={"evaluation/per_class.json": metrics["per_class"]},
        )

    def evaluate(self, bundle_dir: Path, examples: Examples, config: PipelineConfig) -> Scored:
        classifier = load_bundle(Path(bundle_dir))
        return self._scored(
            classifier.predict(examples.test.texts, config.evaluation.batch_size), examples
        )

    def score_model(self, model: Any, examples: Examples, config: PipelineConfig) -> Scored:
        predictions = model.predict(pd.DataFrame({"text": examples.test.texts}))
        return self._scored(predictions["label"].astype(str).tolist(), examples)

    def references(self, examples: Examples) -> list[int]:
        return list(examples.test.label_ids)

    def metric_fn(self, metric: str, examples: Examples) -> Callable[[list, list], float]:
        ids = list(range(len(examples.labels)))
        if metric == "accuracy":
            return lambda pred, ref: float(accuracy_score(ref, pred))
        if metric == "macro_f1":
            return lambda pred, ref: float(
                f1_score(ref, pred, labels=ids, average="macro", zero_division=0)
            )
        raise ValueError(f"no paired bootstrap for the classification metric {metric!r}")

    def pyfunc(self, examples: Examples) -> PyfuncSpec:
        from components.registry import pyfunc_signature

        return PyfuncSpec(
            _HERE / "mlflow_model.py",
            pyfunc_signature(),
            pd.DataFrame({"text": examples.test.texts[:3]}),
        )

    def save_evidence(
        self, scored: Scored, examples: Examples, folder: Path, title: str
    ) -> list[Path]:
        image = save_confusion_matrix(
            examples.test.label_ids,
            scored.predictions,
            examples.labels,
            folder / "confusion_matrix.png",
            title,
        )
        return [image]
