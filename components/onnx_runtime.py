"""An exported classifier run by ONNX Runtime: tokenizer + `model.onnx` + `export.json`.

Plain numpy/onnxruntime/tokenizers code with no torch import, so an edge deployment of a
`<name>-onnx` model needs neither torch nor peft. `components/onnx_pyfunc.py` wraps it as an
MLflow pyfunc.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from components.pyfunc import TextClassifierPyfunc

EXPORT_MANIFEST = "export.json"
ONNX_FILE = "model.onnx"
TOKENIZER_DIR = "tokenizer"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class OnnxClassifier:
    """`predict_proba(texts)` like `components.modeling.TextClassifier`, on an ONNX graph."""

    def __init__(self, model_path: Path, tokenizer: Any, labels: list[str], max_length: int):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_length = int(max_length)

    @classmethod
    def from_folder(cls, folder: Path) -> OnnxClassifier:
        """A folder written by `components.export`: `model.onnx`, `tokenizer/`, `export.json`."""
        from transformers import AutoTokenizer

        folder = Path(folder)
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text())
        tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR))
        return cls(folder / ONNX_FILE, tokenizer, manifest["labels"], manifest["max_length"])

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        order = np.argsort([len(t) for t in texts])  # similar lengths share a batch
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {name: enc[name].astype(np.int64) for name in self.inputs}
            (logits,) = self.session.run(["logits"], feed)
            probs[idx] = softmax(logits.astype(np.float32))
        return probs

    def predict(self, texts: list[str], batch_size: int = 64) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts, batch_size).argmax(axis=1)]


class PeftopsOnnxClassifier(TextClassifierPyfunc):
    """`mlflow.pyfunc` model: texts in (a `text` column or a list), `label` and `score` out,
    the same signature as the registered adapter model."""

    def load_context(self, context: Any) -> None:
        self.classifier = OnnxClassifier.from_folder(Path(context.artifacts["export"]))
