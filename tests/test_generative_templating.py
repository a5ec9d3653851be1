"""Chat templating for instruction tuning: loss masks, the length cap, packing, previews.

All on SmolLM2's real tokenizer and ChatML template (saved with the tiny causal LM)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch

from components.generative.models import CHATML_TEMPLATE, chat_template_source, ensure_chat_template
from components.generative.templating import (
    IGNORE_INDEX,
    EncodedChat,
    collate,
    encode_chat,
    fit_prompt,
    masked_preview,
    pack,
    prompt_messages,
    reference,
    template_hash,
    to_messages,
    token_counts,
)

END = "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer(tiny_causal_lm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_causal_lm)


def chat(*turns: str, system: str | None = None) -> list[dict]:
    head = [{"role": "system", "content": system}] if system else []
    roles = ["user", "assistant"] * len(turns)
    return head + [{"role": r, "content": c} for r, c in zip(roles, turns, strict=False)]


def trained_runs(tokenizer, encoded: EncodedChat) -> list[str]:
    """The decoded text of each run of consecutive trained tokens."""
    runs, run = [], []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        if label != IGNORE_INDEX:
            run.append(token)
        elif run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return [tokenizer.decode(r, skip_special_tokens=False) for r in runs]


def test_single_turn_trains_the_response_and_its_end_of_turn_only(tokenizer):
    messages = chat("What is the capital of France?", "Paris.")
    encoded = encode_chat(tokenizer, messages, max_length=256)
    assert trained_runs(tokenizer, encoded) == ["Paris." + END]
    assert encoded.trainable == len(tokenizer("Paris." + END, add_special_tokens=False).input_ids)
    assert encoded.full_length == len(encoded.input_ids) and encoded.truncated is None
    first = encoded.labels.index(next(x for x in encoded.labels if x != IGNORE_INDEX))
    # the assistant header is context, not target; nor is the newline after <|im_end|>
    assert tokenizer.decode(encoded.input_ids[:first]).endswith("<|im_start|>assistant\n")
    assert encoded.labels[-1] == IGNORE_INDEX
    assert tokenizer.decode(encoded.input_ids[-1:]) == "\n"


def test_multi_turn_trains_every_assistant_turn(tokenizer):
    answers = [
        "Hello! How can I help?",
        "Why did the cat sit on the computer? To keep an eye on the mouse.",
        "You're welcome.",
    ]
    messages = chat("Hi", answers[0], "Tell me a joke about cats", answers[1], "Thanks", answers[2])
    encoded = encode_chat(tokenizer, messages, max_length=512)
    assert trained_runs(tokenizer, encoded) == [a + END for a in answers]


def test_train_on_prompt_trains_every_token(tokenizer):
    messages = chat("Hi", "Hello.", "Bye", "Goodbye.")
    encoded = encode_chat(tokenizer, messages, max_length=512, train_on_prompt=True)
    assert encoded.labels == encoded.input_ids
    assert encoded.trainable == len(encoded.input_ids)


def test_encoded_ids_are_the_chat_templates_rendering(tokenizer):
    messages = chat("Hi there", "Hello!", "Two\nlines  and  spaces ", " ok ", system="Be brief.")
    encoded = encode_chat(tokenizer, messages, max_length=512)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.decode(encoded.input_ids, skip_special_tokens=False) == rendered
    assert encoded.input_ids == tokenizer(rendered, add_special_tokens=False).input_ids


def test_system_prompt_from_config(tokenizer):
    frame = pd.DataFrame({"q": ["2+2?"], "a": ["4"]})
    (messages,) = to_messages(
        frame, prompt_column="q", response_column="a", system_prompt="You add numbers."
    )
    assert messages == [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    encoded = encode_chat(tokenizer, messages, max_length=128)
    text = tokenizer.decode(encoded.input_ids)
    # ours replaces the template's default system message, and is not trained on
    assert "You add numbers." in text and "SmolLM" not in text
    assert trained_runs(tokenizer, encoded) == ["4" + END]
    (plain,) = to_messages(frame, prompt_column="q", response_column="a", system_prompt=None)
    assert [m["role"] for m in plain] == ["user", "assistant"]


def test_messages_column_lists_and_json_strings(tokenizer):
    conversation = chat("Hi", "Hello.", "Bye", "Goodbye.")
    frame = pd.DataFrame({"messages": [conversation, json.dumps(conversation)]})
    as_list, as_json = to_messages(
        frame, prompt_column=None, response_column=None, system_prompt=None
    )
    assert as_list == as_json == conversation
    with_system = to_messages(frame, prompt_column=None, response_column=None, system_prompt="S")
    assert with_system[0] == [{"role": "system", "content": "S"}, *conversation]
    own = [{"role": "system", "content": "Mine"}, *conversation]
    kept = to_messages(
        pd.DataFrame({"m": [own]}),
        prompt_column=None,
        response_column=None,
        messages_column="m",
        system_prompt="S",
    )
    assert kept == [own]  # a conversation's own system message wins


def test_bad_rows_are_refused_with_their_row(tokenizer):
    for dtype in (object, "string"):  # "string": the gap is pd.NA, not the text "<NA>"
        with pytest.raises(ValueError, match="row 1: q is missing"):
            to_messages(
                pd.DataFrame({"q": ["a", None], "a": ["b", "c"]}, dtype=dtype),
                prompt_column="q",
                response_column="a",
                system_prompt=None,
            )
    with pytest.raises(ValueError, match="role 'tool'"):
        to_messages(
            pd.DataFrame({"messages": [[{"role": "tool", "content": "x"}]]}),
            prompt_column=None,
            response_column=None,
            system_prompt=None,
        )
    with pytest.raises(ValueError, match="not valid JSON"):
        to_messages(
            pd.DataFrame({"messages": ["[{"]}),
            prompt_column=None,
            response_column=None,
            system_prompt=None,
        )
    with pytest.raises(ValueError, match="both"):
        to_messages(
            pd.DataFrame({"q": ["a"]}), prompt_column="q", response_column=None, system_prompt=None
        )


def test_length_cap_drops_the_oldest_exchanges_first(tokenizer):
    messages = chat(
        "First question " * 5,
        "First answer " * 5,
        "Second question " * 5,
        "Second answer " * 5,
        "Last question",
        "Last answer.",
        system="Be brief.",
    )
    whole = encode_chat(tokenizer, messages, max_length=1024)
    without_first = encode_chat(tokenizer, [messages[0], *messages[3:]], max_length=1024)
    encoded = encode_chat(tokenizer, messages, max_length=len(without_first.input_ids))
    assert encoded.input_ids == without_first.input_ids
    assert encoded.full_length == len(whole.input_ids)
    assert encoded.truncated == "dropped the 1 oldest exchange(s)"
    text = tokenizer.decode(encoded.input_ids)
    assert "Be brief." in text and "First" not in text and "Second answer" in text
    last_only = encode_chat(tokenizer, messages, max_length=len(without_first.input_ids) - 1)
    assert trained_runs(tokenizer, last_only) == ["Last answer." + END]
    assert "Second" not in tokenizer.decode(last_only.input_ids)


def test_length_cap_cuts_the_front_of_the_prompt_before_the_response(tokenizer):
    prompt = " ".join(f"word{i}" for i in range(200))
    messages = chat("Earlier", "Earlier answer.", prompt, "The answer is short.")
    encoded = encode_chat(tokenizer, messages, max_length=96)
    assert len(encoded.input_ids) == 96
    assert trained_runs(tokenizer, encoded) == ["The answer is short." + END]
    text = tokenizer.decode(encoded.input_ids)
    assert "<|im_start|>user\n" in text  # the header stays
    assert "word0 " not in text and "word199" in text  # the front of the prompt went
    assert "Earlier" not in text
    assert encoded.truncated.startswith("dropped the 1 oldest exchange(s); cut the first")


def test_length_cap_cuts_the_end_of_a_response_that_alone_is_too_long(tokenizer):
    response = " ".join(f"fact{i}" for i in range(300))
    encoded = encode_chat(tokenizer, chat("Tell me everything.", response), max_length=64)
    assert len(encoded.input_ids) == 64
    assert encoded.trainable > 0
    (run,) = trained_runs(tokenizer, encoded)
    assert response.startswith(run)
    assert "did not fit" in encoded.truncated
    assert "<|im_start|>user\n<|im_end|>" in tokenizer.decode(encoded.input_ids)


def test_token_counts(tokenizer):
    messages = chat("Hi", "Hello.")
    count = token_counts(tokenizer, max_length=512)
    encoded = encode_chat(tokenizer, messages, max_length=512)
    assert count(messages) == (encoded.full_length, encoded.trainable)
    full, trainable = token_counts(tokenizer, 512, train_on_prompt=True)(messages)
    assert full == trainable == encoded.full_length


def test_prompt_messages_and_reference():
    messages = chat("Hi", "Hello.", "Bye", "Goodbye.", system="S")
    assert prompt_messages(messages) == messages[:-1]
    assert reference(messages) == "Goodbye."
    with pytest.raises(ValueError):
        reference(chat("Hi"))


def test_a_template_that_breaks_the_prefix_property_falls_back(tokenizer):
    """A template whose rendering of a prefix is not a prefix of the whole (here: a turn
    count at the top), and content whose first token merges with the header's newline."""
    odd = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    odd.chat_template = "{{ messages | length }} messages\n" + CHATML_TEMPLATE
    messages = chat("Hi", "Hello.", "Bye", "Goodbye.")
    encoded = encode_chat(odd, messages, max_length=512)
    assert trained_runs(odd, encoded) == ["Hello." + END, "Goodbye." + END]
    # "\n" (header) + "\nNo." (content): one token straddles, and is trained
    straddling = encode_chat(tokenizer, chat("Hi", "\nNo."), max_length=128)
    (run,) = trained_runs(tokenizer, straddling)
    assert run.endswith("\nNo." + END) and len(run) <= len("\n\nNo." + END)


def test_pack_and_collate(tokenizer):
    examples = [
        encode_chat(tokenizer, chat(f"Question {i}", "Answer " * (i + 1)), max_length=128)
        for i in range(7)
    ]
    rows = pack(examples, max_length=128)
    assert len(rows) < len(examples)
    assert all(len(r.input_ids) <= 128 for r in rows)
    assert sum(len(r.input_ids) for r in rows) == sum(len(e.input_ids) for e in examples)
    assert sum(r.trainable for r in rows) == sum(e.trainable for e in examples)
    assert sorted(run for r in rows for run in trained_runs(tokenizer, r)) == sorted(
        run for e in examples for run in trained_runs(tokenizer, e)
    )
    batch = collate(rows, pad_id=tokenizer.pad_token_id)
    width = max(len(r.input_ids) for r in rows)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        k: (len(rows), width) for k in ("input_ids", "attention_mask", "labels")
    }
    assert batch["attention_mask"].sum(dim=1).tolist() == [len(r.input_ids) for r in rows]
    pad = batch["attention_mask"] == 0
    assert (batch["labels"][pad] == IGNORE_INDEX).all()
    assert (batch["input_ids"][pad] == tokenizer.pad_token_id).all()
    assert batch["input_ids"].dtype == torch.long
    assert torch.equal(batch["labels"][0, : len(rows[0].labels)], torch.tensor(rows[0].labels))


def test_masked_preview(tokenizer):
    encoded = encode_chat(tokenizer, chat("Hi", "Hello.", "Bye", "Goodbye."), max_length=128)
    preview = masked_preview(tokenizer, encoded)
    assert re.findall(r"\[\[(.*?)\]\]", preview, flags=re.S) == ["Hello." + END, "Goodbye." + END]
    assert preview.replace("[[", "").replace("]]", "") == tokenizer.decode(encoded.input_ids)


def test_ensure_chat_template_on_a_tokenizer_without_one(tokenizer):
    bare = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    bare.chat_template = None
    assert chat_template_source(bare) == "model"
    assert ensure_chat_template(bare) is True
    assert bare.chat_template == CHATML_TEMPLATE and chat_template_source(bare) == "peftops:chatml"
    assert ensure_chat_template(bare) is False  # already has one
    assert ensure_chat_template(tokenizer) is False
    encoded = encode_chat(bare, chat("Hi", "Hello."), max_length=64)
    assert tokenizer.decode(encoded.input_ids).startswith("<|im_start|>user\nHi")  # no default
    assert trained_runs(bare, encoded) == ["Hello." + END]


def test_a_vocabulary_without_chatml_tokens_ends_each_turn_with_eos():
    """`<|im_end|>` spelt as plain text is no stop token: such a model's turns end with eos,
    which is trained after each answer and stops generation."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from components.generative.decoding import stop_token_ids

    words = ["<unk>", "</s>", "<|im_start|>", "user", "assistant", "Hi", "Hello", "\n"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("<|im_start|>", "isolated"), pre_tokenizers.Split("\n", "isolated")]
    )
    bare = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", unk_token="<unk>")
    assert "<|im_end|>" not in bare.get_vocab() and ensure_chat_template(bare) is True
    assert chat_template_source(bare) == "peftops:chatml-eos"
    encoded = encode_chat(bare, chat("Hi", "Hello"), max_length=64)
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label >= 0]
    assert bare.convert_ids_to_tokens(trained) == ["Hello", "</s>"]
    assert bare.eos_token_id in stop_token_ids(None, bare)


def test_template_hash_is_stable_and_follows_the_template(tokenizer):
    again = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    digest = template_hash(tokenizer)
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert template_hash(again) == digest
    again.chat_template = CHATML_TEMPLATE
    assert template_hash(again) != digest


def test_a_prompt_over_the_context_loses_its_oldest_shots_then_its_start(tokenizer):
    def rendered(messages):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompt = chat(
        "First question " * 5,
        "First answer " * 5,
        "Second question " * 5,
        "Second answer " * 5,
        "Last question",
        system="Be brief.",
    )
    whole = rendered(prompt)
    assert fit_prompt(tokenizer, prompt, len(whole)) == (whole, None)
    without_first = rendered([prompt[0], *prompt[3:]])
    ids, note = fit_prompt(tokenizer, prompt, len(without_first))
    assert (ids, note) == (without_first, "dropped the 1 oldest exchange(s)")

    long = chat(" ".join(f"word{i}" for i in range(200)), system="Be brief.")
    ids, note = fit_prompt(tokenizer, long, 64)
    assert len(ids) <= 64
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.")
    assert text.endswith("<|im_start|>assistant\n")  # the generation prompt stays
    assert "word0 " not in text and "word199" in text
    assert note.startswith("cut the first ")
    assert long[-1]["content"].startswith("word0 ")  # the caller's messages are not changed
    # a training row keeps its final answer: only exchanges before it are dropped
    row = chat(" ".join(f"word{i}" for i in range(200)), "Kept answer.", "A trailing question")
    assert trained_runs(tokenizer, encode_chat(tokenizer, row, 64)) == ["Kept answer." + END]
    with pytest.raises(ValueError, match="does not fit in 8"):
        fit_prompt(tokenizer, long, 8)  # the system message and headers alone are longer
