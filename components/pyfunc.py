"""What the classifier pyfuncs (the adapter model and its ONNX export) share: texts in, `label`
and `score` out. Light on purpose: the ONNX model serves without torch or peft."""

from __future__ import annotations

from typing import Any

import pandas as pd


class TextClassifierPyfunc:
    """`mlflow.pyfunc` predict over `self.classifier` (anything with `labels` and
    `predict_proba(texts)`), set by the subclass's `load_context`."""

    classifier: Any

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            column = "text" if "text" in model_input.columns else model_input.columns[0]
            texts = model_input[column].astype(str).tolist()
        elif isinstance(model_input, str):
            texts = [model_input]
        else:
            texts = [str(t) for t in model_input]
        probs = self.classifier.predict_proba(texts)
        labels = self.classifier.labels
        return pd.DataFrame(
            {
                "label": [labels[i] for i in probs.argmax(axis=1)],
                "score": probs.max(axis=1).astype(float),
            }
        )
