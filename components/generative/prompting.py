"""Few-shot prompts: solved training conversations placed before a test prompt."""

from __future__ import annotations

import random
from collections.abc import Callable

from components.generative.templating import prompt_messages


def _split(conversation: list[dict]) -> tuple[list[dict], list[dict]]:
    """(system messages, the other turns)."""
    system = [m for m in conversation if m.get("role") == "system"]
    return system, [m for m in conversation if m.get("role") != "system"]


def _answer(conversation: list[dict]) -> str:
    """The final assistant turn's content ("" when the conversation does not end with one)."""
    if conversation and conversation[-1].get("role") == "assistant":
        return str(conversation[-1].get("content", ""))
    return ""


def few_shot(conversation: list[dict], shots: list[list[dict]]) -> list[dict]:
    """The test conversation's prompt preceded by solved examples as earlier user/assistant
    turns. The system message comes first, once: the test conversation's, else the first
    shot's. A reference answer at the end of `conversation` is dropped."""
    system, turns = _split(prompt_messages(conversation))
    messages: list[dict] = []
    for i, shot in enumerate(shots):
        shot_system, shot_turns = _split(shot)
        if not shot_turns or shot_turns[-1].get("role") != "assistant":
            raise ValueError(f"shot {i} does not end with an assistant answer")
        system = system or shot_system[:1]
        messages.extend(dict(m) for m in shot_turns)
    return [dict(m) for m in system] + messages + [dict(m) for m in turns]


def pick_shots(
    train: list[list[dict]],
    k: int,
    seed: int,
    labels_of: Callable[[list[dict]], str] | None = None,
) -> list[list[dict]]:
    """k solved training conversations, the same for the same inputs and seed.

    Distinct labels (`labels_of`, by default the reference response) are covered first, one
    example each in a seeded random order, before any label is repeated; the shots alternate
    between labels rather than running in blocks. Fewer than k come back when `train` has
    fewer solved conversations."""
    if k <= 0:
        return []
    label = labels_of or _answer
    solved = [i for i, conv in enumerate(train) if _answer(conv)]
    random.Random(seed).shuffle(solved)
    groups: dict[str, list[int]] = {}
    for i in solved:
        groups.setdefault(str(label(train[i])), []).append(i)
    picked: list[int] = []
    queues = list(groups.values())
    while len(picked) < k and queues:
        for queue in queues:
            if len(picked) < k and queue:
                picked.append(queue.pop(0))
        queues = [q for q in queues if q]
    return [train[i] for i in picked]
