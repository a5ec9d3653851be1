"""The generative MLflow pyfunc: prompts or chat messages in, generated text out.

Input: a `prompt` column (or a list of strings). A value that is a JSON list of role/content
messages is a conversation (multi-turn; the bundle's system prompt leads it unless it has its
own); any other value is one user message, after the bundle's system prompt. One string column keeps
`mlflow models serve`'s `{"inputs": ["..."]}` working for both shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.generative.bundle import Generator, load_generative_bundle
from components.generative.templating import parse_messages, with_system_prompt


def conversations_from_input(model_input: Any, generator: Generator) -> list[list[dict]]:
    """One conversation per input value: a list of role/content messages (or its JSON text)
    is parsed as training data is (roles, content parts) and gets the bundle's system prompt
    where it has none; any other value is one user message after that system prompt."""
    if isinstance(model_input, pd.DataFrame):
        column = "prompt" if "prompt" in model_input.columns else model_input.columns[0]
        values = model_input[column].tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    out = []
    for i, value in enumerate(values):
        if not isinstance(value, list | tuple | np.ndarray):  # a list column's cell
            text = str(value)
            value = _json_messages(text)
            if value is None:
                out.append(generator.conversation(text))
                continue
        out.append(with_system_prompt(parse_messages(value, i), generator.system_prompt))
    return out


def _json_messages(text: str) -> list | None:
    """The list a text holds when it is a JSON list of objects (messages), else None."""
    if not text.lstrip().startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
        return parsed
    return None


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
