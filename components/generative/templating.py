"""Chat examples for instruction tuning: rows → messages → token ids with a loss mask.

The loss is on what the model should say: by default each assistant message's content and the
end-of-turn token after it (so the model learns to stop), not the prompt, the role headers or
the separators. Which tokens those are is found by rendering the model's own chat template on
message prefixes, so it works for any template, not only ChatML.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

IGNORE_INDEX = -100  # label of a token the loss skips (torch's cross-entropy default)
ROLES = ("system", "user", "assistant")


@dataclass
class EncodedChat:
    """One training row: `labels` is `input_ids` with IGNORE_INDEX where no loss is taken.
    `full_length` is the length before the `max_length` cap; `truncated` says what the cap
    removed (None when nothing)."""

    input_ids: list[int]
    labels: list[int]
    full_length: int
    trainable: int
    truncated: str | None = None


# --------------------------------------------------------------------------- rows → messages


def to_messages(
    frame: pd.DataFrame,
    *,
    prompt_column: str | None,
    response_column: str | None,
    messages_column: str = "messages",
    system_prompt: str | None,
) -> list[list[dict]]:
    """One conversation per row: `[system?, user, assistant]` from a prompt and a response
    column, or else the row's OpenAI-style messages list (role/content dicts, multi-turn; a
    JSON string of one works too). `system_prompt` is prepended where a conversation has no
    system message of its own."""
    if (prompt_column is None) != (response_column is None):
        raise ValueError("give both prompt_column and response_column, or neither")
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    out: list[list[dict]] = []
    if prompt_column is not None:
        for label, prompt, response in zip(
            frame.index, frame[prompt_column], frame[response_column], strict=True
        ):
            out.append(
                [
                    *head,
                    {"role": "user", "content": _text(prompt, label, prompt_column)},
                    {"role": "assistant", "content": _text(response, label, response_column)},
                ]
            )
        return out
    if messages_column not in frame.columns:
        raise ValueError(f"no column {messages_column!r} (and no prompt/response columns given)")
    for label, value in zip(frame.index, frame[messages_column], strict=True):
        out.append(with_system_prompt(parse_messages(value, label), system_prompt))
    return out


def with_system_prompt(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """`messages` led by `system_prompt` where they have no system message of their own (as
    training rows are, so served conversations are prompted as the model was trained)."""
    if system_prompt and (not messages or messages[0]["role"] != "system"):
        return [{"role": "system", "content": system_prompt}, *messages]
    return messages


def _missing(value: Any) -> bool:
    # None, NaN of any float type, pd.NA and NaT (nullable columns), not a list of messages
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _text(value: Any, label: Any, what: str) -> str:
    if _missing(value):
        raise ValueError(f"row {label!r}: {what} is missing")
    return str(value)


def parse_messages(value: Any, label: Any) -> list[dict]:
    """One conversation's role/content messages from a list (or its JSON text), checked: a
    ValueError naming `label` (the row) and the message for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"row {label!r}: messages is not valid JSON ({err})") from None
    if isinstance(value, np.ndarray):  # a list column read from Parquet
        value = value.tolist()
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"row {label!r}: messages must be a non-empty list of role/content")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or "role" not in message:
            raise ValueError(f"row {label!r}: message {i} has no role")
        role = str(message["role"])
        if role not in ROLES:
            raise ValueError(f"row {label!r}: message {i} has role {role!r}, not one of {ROLES}")
        messages.append({"role": role, "content": _content(message.get("content"), label, i)})
    return messages


def _content(content: Any, label: Any, i: int) -> str:
    if isinstance(content, np.ndarray):
        content = content.tolist()
    if isinstance(content, list):  # OpenAI content parts: keep the text parts
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(str(p) for p in parts)
    if _missing(content):
        raise ValueError(f"row {label!r}: message {i} has no content")
    return str(content)


# --------------------------------------------------------------------------- messages → ids


def _render(tokenizer: Any, messages: list[dict], generation: bool = False) -> str:
    if not messages and not generation:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    # the rendered template already holds its special tokens (BOS too where it wants one)
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _special_strings(tokenizer: Any) -> list[str]:
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    names = set(tokenizer.all_special_tokens) | {t.content for t in added.values() if t.special}
    return sorted((n for n in names if n), key=len, reverse=True)


def _assistant_spans(tokenizer: Any, messages: list[dict], text: str) -> list[tuple[int, int]]:
    """Character spans of `text` to train on: each assistant message's content and the
    end-of-turn marker after it, without the whitespace that follows the marker."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation=True)
        through = _render(tokenizer, messages[: i + 1]).rstrip()
        if text.startswith(before) and text.startswith(through) and len(before) >= pos:
            span = (len(before), max(len(before), len(through)))
        else:  # the template renders a prefix differently (e.g. drops earlier reasoning)
            span = _search_span(tokenizer, text, message["content"], pos)
        spans.append(span)
        pos = span[1]
    return spans


def _search_span(tokenizer: Any, text: str, content: str, pos: int) -> tuple[int, int]:
    """Fallback: find the content itself, plus a special token right after it."""
    for candidate in (content, content.strip()):
        start = text.find(candidate, pos) if candidate else -1
        if start >= 0:
            end = start + len(candidate)
            for special in _special_strings(tokenizer):
                if text.startswith(special, end):
                    end += len(special)
                    break
            return start, end
    return pos, pos  # not found: nothing trained (counted by the validation suite)


def _token_bounds(tokenizer: Any, text: str, ids: list[int], chars: list[int]) -> list[int]:
    """Token index for each character position of `text`: the length of the tokenised prefix
    when that is a prefix of `ids` (the usual case); else, from the character offsets, the
    first token that ends after the position (a token straddling it counts as after)."""
    unique = sorted(set(chars))
    found: dict[int, int] = {}
    offsets = None
    for char, prefix in zip(unique, _tokenize(tokenizer, [text[:c] for c in unique]), strict=True):
        if ids[: len(prefix)] == prefix:
            found[char] = len(prefix)
            continue
        if offsets is None:
            try:
                offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
                    "offset_mapping"
                ]
            except (NotImplementedError, ValueError, KeyError):  # slow tokenizers: best effort
                offsets = []
        if offsets:
            found[char] = next((t for t, (_, end) in enumerate(offsets) if end > char), len(ids))
        else:
            found[char] = min(len(prefix), len(ids))
    return [found[c] for c in chars]


@dataclass
class _Layout:
    ids: list[int]
    labels: list[int]
    user: tuple[int, int] | None  # token span of the last user message's content


def _layout(tokenizer: Any, messages: list[dict], train_on_prompt: bool) -> _Layout:
    text = _render(tokenizer, messages)
    ids = _tokenize(tokenizer, [text])[0]
    spans = _assistant_spans(tokenizer, messages, text)
    response_char = spans[-1][0] if spans else len(text)
    user_chars: tuple[int, int] | None = None
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    users = [m for m in messages[:last] if m["role"] == "user"]
    if users:
        # its content is the last occurrence before the final response, whatever the template
        content = users[-1]["content"]
        for candidate in (content, content.strip()):
            start = text.rfind(candidate, 0, response_char) if candidate else -1
            if start >= 0:
                user_chars = (start, start + len(candidate))
                break
    chars = [c for span in spans for c in span]
    chars += list(user_chars) if user_chars else []
    bounds = _token_bounds(tokenizer, text, ids, chars)
    if train_on_prompt:
        labels = list(ids)
    else:
        labels = [IGNORE_INDEX] * len(ids)
        for k in range(len(spans)):
            start, end = bounds[2 * k], bounds[2 * k + 1]
            labels[start:end] = ids[start:end]
    user = (bounds[-2], bounds[-1]) if user_chars else None
    return _Layout(ids, labels, user)


def _oldest_exchange(messages: list[dict], prompt: bool = False) -> tuple[int, int] | None:
    """Message slice of the oldest user/assistant exchange before the last one: a training
    conversation's last exchange is its final answer's (from the user message before it), a
    `prompt`'s is its last user message (a few-shot prompt's oldest solved example goes)."""
    first = 1 if messages and messages[0]["role"] == "system" else 0
    answer = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    users = [i for i, m in enumerate(messages) if m["role"] == "user" and (prompt or i < answer)]
    last = max(users, default=-1)
    assistants = [
        i for i, m in enumerate(messages) if m["role"] == "assistant" and first <= i < last
    ]
    if not assistants:
        return None
    return first, assistants[0] + 1


def encode_chat(
    tokenizer: Any, messages: list[dict], max_length: int, train_on_prompt: bool = False
) -> EncodedChat:
    """Token ids and labels of one conversation, rendered with the tokenizer's chat template.

    Only the assistant turns are trained (content + end-of-turn token) unless
    `train_on_prompt`, which trains every token. Over `max_length`, the cap never silently
    removes a whole response: it first drops the oldest exchanges (the system message and the
    last exchange stay), then cuts the front of the last user message (its header stays), and
    only cuts the end of the final response when that alone does not fit."""
    layout = _layout(tokenizer, messages, train_on_prompt)
    full_length = len(layout.ids)
    notes = []
    kept = list(messages)
    dropped = 0
    while len(layout.ids) > max_length and (cut := _oldest_exchange(kept)) is not None:
        del kept[cut[0] : cut[1]]
        dropped += 1
        layout = _layout(tokenizer, kept, train_on_prompt)
    if dropped:
        notes.append(f"dropped the {dropped} oldest exchange(s)")
    ids, labels = layout.ids, layout.labels
    over = len(ids) - max_length
    if over > 0 and layout.user is not None:
        start, end = layout.user
        cut_tokens = min(over, end - start)
        if cut_tokens:
            ids = ids[:start] + ids[start + cut_tokens :]
            labels = labels[:start] + labels[start + cut_tokens :]
            notes.append(f"cut the first {cut_tokens} token(s) of the last user message")
    if len(ids) > max_length:
        notes.append(f"cut {len(ids) - max_length} token(s) off the end: the response did not fit")
        ids, labels = ids[:max_length], labels[:max_length]
    trainable = sum(label != IGNORE_INDEX for label in labels)
    return EncodedChat(ids, labels, full_length, trainable, "; ".join(notes) or None)


def fit_prompt(
    tokenizer: Any, messages: list[dict], max_tokens: int
) -> tuple[list[int], str | None]:
    """Token ids of `messages` rendered as a generation prompt, at most `max_tokens` long, and
    what the cap removed (None when nothing). As `encode_chat` caps training rows: the oldest
    exchanges go first (a few-shot prompt's oldest examples), then the front of the last user
    message; the system message, the role headers and the generation prompt stay. A prompt
    whose fixed part alone is too long is refused (ValueError)."""

    def encode(turns: list[dict]) -> list[int]:
        return _tokenize(tokenizer, [_render(tokenizer, turns, generation=True)])[0]

    ids = encode(messages)
    if len(ids) <= max_tokens:
        return ids, None
    full, kept, dropped, notes = len(ids), list(messages), 0, []
    while len(ids) > max_tokens and (cut := _oldest_exchange(kept, prompt=True)) is not None:
        del kept[cut[0] : cut[1]]
        dropped += 1
        ids = encode(kept)
    if dropped:
        notes.append(f"dropped the {dropped} oldest exchange(s)")
    last_user = max((i for i, m in enumerate(kept) if m["role"] == "user"), default=None)
    if len(ids) > max_tokens and last_user is not None:
        content = _tokenize(tokenizer, [kept[last_user]["content"]])[0]
        cut_tokens = 0
        # decoding a token suffix and rendering it again can merge tokens differently: repeat
        while len(ids) > max_tokens and cut_tokens < len(content):
            cut_tokens = min(len(content), cut_tokens + len(ids) - max_tokens)
            text = tokenizer.decode(content[cut_tokens:], skip_special_tokens=False)
            kept[last_user] = {**kept[last_user], "content": text}
            ids = encode(kept)
        notes.append(f"cut the first {cut_tokens} token(s) of the last user message")
    if len(ids) > max_tokens:
        raise ValueError(
            f"a prompt of {full} tokens does not fit in {max_tokens}: even without its user "
            f"message's text and earlier exchanges it takes {len(ids)} (system message, headers)"
        )
    return ids, "; ".join(notes)


def response_token_ids(tokenizer: Any, response: str) -> list[int]:
    """The token ids training takes `response` as, when it is an assistant answer: the
    trained tokens of a one-exchange conversation, end-of-turn marker included. A response
    tokenised on its own can differ (a template that writes a space before the answer makes
    byte-level BPE spell "Ġyes", not "yes"; SentencePiece adds "▁")."""
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": response}]
    layout = _layout(tokenizer, messages, train_on_prompt=False)
    pairs = zip(layout.ids, layout.labels, strict=True)
    trained = [t for t, label in pairs if label != IGNORE_INDEX]
    return trained or _tokenize(tokenizer, [response])[0]


def token_counts(
    tokenizer: Any, max_length: int, train_on_prompt: bool = False
) -> Callable[[list[dict]], tuple[int, int]]:
    """For the validation suite: messages → (full length in tokens, trainable tokens after
    the cap)."""

    def count(messages: list[dict]) -> tuple[int, int]:
        encoded = encode_chat(tokenizer, messages, max_length, train_on_prompt)
        return encoded.full_length, encoded.trainable

    return count


def template_hash(tokenizer: Any) -> str:
    """First 16 hex digits of the chat template's sha256 (a template change changes what the
    model is trained and prompted on)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if not isinstance(template, str):  # a dict of named templates
        template = json.dumps(template, sort_keys=True)
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


def _last_assistant(messages: list[dict]) -> int | None:
    return max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)


def prompt_messages(messages: list[dict]) -> list[dict]:
    """What to generate from: the conversation without its trailing assistant turn(s) (a
    conversation that already ends with the user's turn is returned as it is)."""
    end = len(messages)
    while end and messages[end - 1].get("role") == "assistant":
        end -= 1
    return list(messages[:end])


def reference(messages: list[dict]) -> str:
    """The expected answer: the last assistant message's content."""
    last = _last_assistant(messages)
    if last is None:
        raise ValueError("the conversation has no assistant message")
    return messages[last]["content"]


# --------------------------------------------------------------------------- batches


def pack(examples: list[EncodedChat], max_length: int) -> list[EncodedChat]:
    """Pack short examples into rows of at most `max_length` tokens (best fit, longest first).

    Without position-id resets or a block-diagonal mask, the examples in a row attend to each
    other, as TRL's classic packing did. For short, independent examples that is acceptable:
    each begins with its own role headers, so the model learns to ignore what came before, and
    the saving in padding is what makes packing worth it. Labels are kept as they are."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row), sorted, for a best-fit search
    for i in order:
        size = len(examples[i].input_ids)
        if not size:
            continue
        at = bisect.bisect_left(free, (size, -1))
        if at < len(free):
            room, row = free.pop(at)
            rows[row].append(i)
            bisect.insort(free, (room - size, row))
        else:
            rows.append([i])
            bisect.insort(free, (max_length - size, len(rows) - 1))
    return [_concat([examples[i] for i in members]) for members in rows]


def _concat(parts: list[EncodedChat]) -> EncodedChat:
    notes = [p.truncated for p in parts if p.truncated]
    return EncodedChat(
        input_ids=[t for p in parts for t in p.input_ids],
        labels=[t for p in parts for t in p.labels],
        full_length=sum(p.full_length for p in parts),
        trainable=sum(p.trainable for p in parts),
        truncated=" | ".join(notes) or None,
    )


def collate(rows: list[EncodedChat], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask` and `labels` (IGNORE_INDEX on padding)."""
    width = max((len(r.input_ids) for r in rows), default=0)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        input_ids[i, :n] = torch.tensor(row.input_ids, dtype=torch.long)
        attention_mask[i, :n] = 1
        labels[i, :n] = torch.tensor(row.labels, dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def masked_preview(tokenizer: Any, encoded: EncodedChat) -> str:
    """The example as text, trained tokens wrapped in `[[...]]` (one span per run)."""
    out = []
    for trained, run in _runs(encoded):
        text = tokenizer.decode(run, skip_special_tokens=False)
        out.append(f"[[{text}]]" if trained else text)
    return "".join(out)


def _runs(encoded: EncodedChat) -> Iterable[tuple[bool, list[int]]]:
    run: list[int] = []
    state = None
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        trained = label != IGNORE_INDEX
        if run and trained != state:
            yield bool(state), run
            run = []
        state = trained
        run.append(token)
    if run:
        yield bool(state), run


def trained_targets(labels: torch.Tensor) -> torch.Tensor:
    """The trained next tokens (labels shifted by one, IGNORE_INDEX left out), in the order of
    `bundle.CausalLM.trained_logits`."""
    targets = labels[:, 1:]
    return targets[targets != IGNORE_INDEX]
