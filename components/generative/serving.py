"""The generative MLflow pyfunc: prompts or chat messages in, generated text out.

Input: a `prompt` column (or a list of strings). A value that is a JSON list of role/content
messages is a conversation (multi-turn, own system message); any other value is one user
message, after the bundle's system prompt. One string column keeps
`mlflow models serve`'s `{"inputs": ["..."]}` working for both shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from components.generative.bundle import Generator, load_generative_bundle


def conversations_from_input(model_input: Any, generator: Generator) -> list[list[dict]]:
    if isinstance(model_input, pd.DataFrame):
        column = "prompt" if "prompt" in model_input.columns else model_input.columns[0]
        values = model_input[column].tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    out = []
    for value in values:
        if isinstance(value, list):
            out.append([dict(m) for m in value])
            continue
        text = str(value)
        if text.lstrip().startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(m, dict) for m in parsed):
                out.append(parsed)
                continue
        out.append(generator.conversation(text))
    return out


class PeftopsGenerator:
    """`mlflow.pyfunc` model: prompts or messages in (a `prompt` column), `text` out."""

    def load_context(self, context: Any) -> None:
        self.generator = load_generative_bundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        conversations = conversations_from_input(model_input, self.generator)
        return pd.DataFrame({"text": self.generator.generate(conversations)})


def generator_signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "prompt")]),
        outputs=Schema([ColSpec("string", "text")]),
    )
