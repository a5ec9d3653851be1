"""Validated frames → conversations per split, and what evaluation can tell from them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from components.config import DataConfig
from components.generative.metrics import distinct_labels, label_key
from components.generative.templating import prompt_messages, reference, to_messages


@dataclass
class ChatExamples:
    """Conversations (lists of role/content messages, ending with the assistant's answer)
    per split; `labels` is the closed set of answers when there is one."""

    train: list[list[dict]]
    validation: list[list[dict]]
    test: list[list[dict]]
    labels: list[str] | None = None
    expect_json: bool = False
    system_prompt: str | None = None

    def test_prompts(self) -> list[list[dict]]:
        return [prompt_messages(c) for c in self.test]

    def test_references(self) -> list[str]:
        return [reference(c) for c in self.test]

    def content_lines(self) -> list[str]:
        """What identifies these examples (for cache and training keys)."""
        import json

        lines = [json.dumps([self.labels, self.expect_json, self.system_prompt])]
        for split in (self.train, self.validation, self.test):
            lines.append("\x00split")
            lines += [json.dumps(c, sort_keys=True, ensure_ascii=False) for c in split]
        return lines


def frames_to_messages(frames: dict[str, pd.DataFrame], data: DataConfig) -> dict[str, list]:
    """Each split's conversations: from `data.messages_column` when the training split has
    it, else from the prompt and response columns (a missing column raises ValueError)."""
    use_messages = data.messages_column in frames["train"].columns
    out = {}
    for name, frame in frames.items():
        if use_messages:
            out[name] = to_messages(
                frame,
                prompt_column=None,
                response_column=None,
                messages_column=data.messages_column,
                system_prompt=data.system_prompt,
            )
        else:
            missing = [c for c in (data.prompt_column, data.response_column) if c not in frame]
            if missing:
                raise ValueError(
                    f"{name} split has no column {', '.join(map(repr, missing))} (columns: "
                    f"{list(frame.columns)}); set --prompt-column/--response-column, or give "
                    f"a {data.messages_column!r} column of chat messages"
                )
            out[name] = to_messages(
                frame,
                prompt_column=data.prompt_column,
                response_column=data.response_column,
                system_prompt=data.system_prompt,
            )
    return out


def closed_label_set(train: list[list[dict]], test: list[list[dict]], limit: int) -> list | None:
    """The distinct training answers when there are 2 to `limit` and every test answer is one
    of them (a classification task phrased as generation); None otherwise. Answers that
    differ only in case or end punctuation ("Yes", "yes.") are one label, as scoring
    compares them (`distinct_labels`)."""
    if limit <= 0:
        return None
    labels = distinct_labels([reference(c) for c in train])
    keys = {label_key(label) for label in labels}
    if "" in keys or not 2 <= len(labels) <= limit:
        return None  # an answer of punctuation alone names nothing; one answer is no choice
    if any(label_key(reference(c)) not in keys for c in test):
        return None
    return labels
