"""Batched greedy generation and reference likelihood on a tiny random Llama with the real
SmolLM2 chat tokenizer (ChatML)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

import tiny_models
from components.generative.bundle import CausalLM
from components.generative.decoding import (
    SHARED_PREFIX_MIN_TOKENS,
    DecodingSettings,
    context_size,
    generate,
    generate_token_ids,
    render_prompts,
    row_nll,
    sequence_nll,
    shared_prefix,
    stop_token_ids,
)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    return tiny_models.smollm2_tokenizer()


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory):
    """A random 2-layer Llama over SmolLM2's vocabulary whose greedy outputs depend on the
    prompt."""
    from transformers import LlamaForCausalLM

    folder = tiny_models.tiny_causal_lm(tmp_path_factory.mktemp("chat"), initializer_range=0.5)
    return LlamaForCausalLM.from_pretrained(folder).eval()


CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "What is the capital of France? Please answer in one word."}],
    [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}],
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Translate 'cat' into German, then into French and Italian."}],
]


def test_batched_left_padded_greedy_equals_one_by_one_in_input_order(
    tiny_chat_model, smollm2_tokenizer
):
    settings = DecodingSettings(max_new_tokens=6, batch_size=2)  # 3 batches, sorted by length
    smollm2_tokenizer.padding_side = "right"
    batched = generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, settings)
    alone = [generate(tiny_chat_model, smollm2_tokenizer, [c], settings)[0] for c in CONVERSATIONS]
    assert batched == alone
    assert len(set(batched)) == len(batched)  # prompts give different outputs: order is tested
    assert smollm2_tokenizer.padding_side == "right"  # restored
    assert all(isinstance(text, str) and text == text.strip() for text in batched)
    assert generate(tiny_chat_model, smollm2_tokenizer, [], settings) == []


def test_max_new_tokens_is_respected(tiny_chat_model, smollm2_tokenizer):
    ids = generate_token_ids(
        tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, DecodingSettings(max_new_tokens=3)
    )
    assert all(len(row) <= 3 for row in ids)
    assert max(len(row) for row in ids) == 3
    beams = DecodingSettings(max_new_tokens=3, num_beams=2, batch_size=2)
    assert all(
        len(r) <= 3
        for r in generate_token_ids(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, beams)
    )


def test_a_tokenizer_without_pad_token_pads_with_eos_and_is_restored(
    tiny_chat_model, smollm2_tokenizer
):
    settings = DecodingSettings(max_new_tokens=4, batch_size=4)
    with_pad = generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, settings)
    pad = smollm2_tokenizer.pad_token
    smollm2_tokenizer.pad_token = None
    try:
        assert generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, settings) == with_pad
        assert smollm2_tokenizer.pad_token is None
    finally:
        smollm2_tokenizer.pad_token = pad


def test_generation_stops_at_the_end_of_turn_token(tiny_chat_model, smollm2_tokenizer, monkeypatch):
    end_of_turn = smollm2_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn in stop_token_ids(tiny_chat_model, smollm2_tokenizer)
    seen = {}

    def fake_generate(input_ids, attention_mask, **kwargs):
        seen.update(kwargs, left_padded=bool((attention_mask[:, -1] == 1).all()))
        tail = torch.tensor([[9690, end_of_turn, 28, 28]] * len(input_ids))
        return torch.cat([input_ids, tail], dim=1)

    monkeypatch.setattr(tiny_chat_model, "generate", fake_generate)
    ids = generate_token_ids(
        tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, DecodingSettings(batch_size=8)
    )
    assert ids == [[9690]] * len(CONVERSATIONS)
    assert end_of_turn in seen["eos_token_id"] and seen["left_padded"]
    assert seen["do_sample"] is False and seen["num_beams"] == 1


def test_a_reference_answer_in_the_prompt_is_refused(tiny_chat_model, smollm2_tokenizer):
    solved = [*CONVERSATIONS[0], {"role": "assistant", "content": "Hello"}]
    with pytest.raises(ValueError, match="assistant turn"):
        generate(tiny_chat_model, smollm2_tokenizer, [solved], DecodingSettings())


def test_a_lora_wrapped_model_generates(tiny_chat_model, smollm2_tokenizer):
    from peft import LoraConfig, get_peft_model

    settings = DecodingSettings(max_new_tokens=4, batch_size=2)
    base = generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, settings)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    wrapped = get_peft_model(copy.deepcopy(tiny_chat_model), lora)
    # A fresh adapter (B = 0) does not change the model: same outputs through the wrapper.
    assert generate(wrapped, smollm2_tokenizer, CONVERSATIONS, settings) == base
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0)
    changed = generate(wrapped, smollm2_tokenizer, CONVERSATIONS, settings)
    assert changed != base
    alone = [generate(wrapped, smollm2_tokenizer, [c], settings)[0] for c in CONVERSATIONS]
    assert changed == alone


def _batch(tokenizer, pairs: list[tuple[str, str]]) -> dict:
    """Right-padded input_ids/attention_mask/labels, prompt tokens masked with -100."""
    rows = []
    for question, answer in pairs:
        prompt = [{"role": "user", "content": question}]
        full = [*prompt, {"role": "assistant", "content": answer}]
        p = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        f = tokenizer.apply_chat_template(full, tokenize=False)
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        f_ids = tokenizer(f, add_special_tokens=False)["input_ids"]
        assert f_ids[: len(p_ids)] == p_ids
        rows.append((f_ids, [-100] * len(p_ids) + f_ids[len(p_ids) :]))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
        "attention_mask": torch.tensor(
            [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]
        ),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows]),
    }


def test_sequence_nll_equals_a_direct_computation(tiny_chat_model, smollm2_tokenizer):
    batches = [
        _batch(smollm2_tokenizer, [("Hi", "Hello there!"), ("Capital of France?", "Paris")]),
        _batch(smollm2_tokenizer, [("2+2?", "4")]),
    ]
    tiny_chat_model.train()
    total, count = sequence_nll(CausalLM(tiny_chat_model), batches)
    assert tiny_chat_model.training  # the caller's mode is restored, either way
    tiny_chat_model.eval()
    sequence_nll(CausalLM(tiny_chat_model), batches)
    assert not tiny_chat_model.training

    expected, expected_count = [], []  # per row, in batch order
    with torch.no_grad():
        for batch in batches:
            for ids, mask, labels in zip(
                batch["input_ids"], batch["attention_mask"], batch["labels"], strict=True
            ):
                n = int(mask.sum())  # each example alone, unpadded
                log_probs = torch.log_softmax(tiny_chat_model(ids[None, :n]).logits[0], dim=-1)
                trained = [t for t in range(1, n) if labels[t] != -100]
                expected.append(-sum(float(log_probs[t - 1, labels[t]]) for t in trained))
                expected_count.append(len(trained))
            # transformers' own loss is the mean over the same tokens
            hf = tiny_chat_model(**batch).loss
            scored = int((batch["labels"][:, 1:] != -100).sum())
            assert float(hf) * scored == pytest.approx(
                sequence_nll(CausalLM(tiny_chat_model), [batch])[0], rel=1e-5
            )
    assert count == sum(expected_count) > 0
    assert total == pytest.approx(sum(expected), rel=1e-5)
    # each row's own sum and count (what distributed validation gathers), in batch order
    nll, tokens = row_nll(CausalLM(tiny_chat_model), batches)
    assert tokens.tolist() == expected_count
    assert nll.tolist() == pytest.approx(expected, rel=1e-5)


def test_row_nll_of_reordered_batches_comes_back_in_the_rows_order(
    tiny_chat_model, smollm2_tokenizer
):
    """Validation batches rows by length (longest first): `_row_nll` returns each row's
    NLL in the order of the rows given, equal to scoring that row alone."""
    from components.batching import batch_order
    from components.generative.templating import EncodedChat
    from components.objectives.generation import _nll, _row_nll

    pairs = [
        ("Hi", "Hello there, my friend"),
        ("Capital of France, please?", "Paris"),
        ("2+2?", "It is 4"),
    ]
    rows = []
    for prompt, answer in pairs:
        batch = _batch(smollm2_tokenizer, [(prompt, answer)])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        rows.append(EncodedChat(ids, labels, len(ids), sum(t != -100 for t in labels)))
    pad = smollm2_tokenizer.pad_token_id
    order = [
        int(i) for b in batch_order([len(r.input_ids) for r in rows], 2, False, 0, True) for i in b
    ]
    assert order != [0, 1, 2]  # the batches do reorder the rows
    nll, tokens = _row_nll(tiny_chat_model, rows, pad, 2)
    alone = [_nll(tiny_chat_model, [row], pad, 1) for row in rows]
    assert tokens.tolist() == [count for _, count in alone]
    assert nll.tolist() == pytest.approx([total for total, _ in alone], rel=1e-5)
    assert len(set(tokens.tolist())) == 3  # distinct rows, so a permutation would show


def test_decoding_settings_tags_and_validation():
    assert DecodingSettings(max_new_tokens=8, num_beams=2).as_tags() == {
        "decoding.max_new_tokens": "8",
        "decoding.do_sample": "False",
        "decoding.num_beams": "2",
        "decoding.batch_size": "16",
        "decoding.choices": "free",
    }
    with pytest.raises(ValueError, match="batch_size"):
        DecodingSettings(batch_size=0)


def test_decoding_constrained_to_choices_spells_one_of_them(tiny_chat_model, smollm2_tokenizer):
    """A random model, free, says anything; constrained to a closed set (labels sharing
    prefixes, of several tokens each) every answer is exactly one of them, and the batched
    constrained answers equal the one-by-one ones (left padding handled)."""
    choices = ["card_declined", "card_arrival", "exchange_rate", "yes", "maybe"]
    free = generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, DecodingSettings(8))
    assert not set(free) <= set(choices)
    settings = DecodingSettings(max_new_tokens=16, batch_size=3, choices=choices)
    batched = generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, settings)
    assert set(batched) <= set(choices), batched
    one = DecodingSettings(max_new_tokens=16, batch_size=1, choices=choices)
    assert [generate(tiny_chat_model, smollm2_tokenizer, [c], one)[0] for c in CONVERSATIONS] == (
        batched
    )
    assert DecodingSettings(choices=choices).as_tags()["decoding.choices"] == "5"
    # beam search (generation.num_beams) keeps each beam inside the set too
    beams = DecodingSettings(max_new_tokens=16, batch_size=3, num_beams=3, choices=choices)
    assert set(generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, beams)) <= set(choices)
    # a token budget shorter than every label still ends in a whole label, never a cut one
    long = choices[:3]  # several tokens each
    short = DecodingSettings(max_new_tokens=1, batch_size=3, choices=long)
    assert set(generate(tiny_chat_model, smollm2_tokenizer, CONVERSATIONS, short)) <= set(long)


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 4, 6]]) == [1, 2, 3]
    assert shared_prefix([[5, 1, 2], [1, 2], [1, 2, 3]]) == []
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == [1, 2]  # the last token stays uncached
    assert shared_prefix([[1, 2, 3], [1, 2, 3, 4]]) == [1, 2]
    assert shared_prefix([[1, 2, 3]]) == [] and shared_prefix([]) == []


# k-shot prompts: one system message and the same solved examples before each question
SHOTS = [
    {"role": "system", "content": "Answer each banking question with the intent's name only."},
    *[
        turn
        for question, intent in [
            ("My card has still not arrived, where is it?", "card_arrival"),
            ("Why was my card payment declined at the shop?", "card_declined"),
            ("What rate do you use to exchange euros?", "exchange_rate"),
        ]
        for turn in (
            {"role": "user", "content": question},
            {"role": "assistant", "content": intent},
        )
    ],
]
QUESTIONS = ["Where is my card?", "Declined again!", "Rate for dollars to pounds, please?", "Hm?"]
K_SHOT_PROMPTS = [[*SHOTS, {"role": "user", "content": q}] for q in QUESTIONS]


def _token_ids(tokenizer, prompts: list[list[dict]]) -> list[list[int]]:
    """The prompts' token ids as generation encodes them."""
    return tokenizer(render_prompts(tokenizer, prompts), add_special_tokens=False)["input_ids"]


@contextmanager
def _embedded_widths(model) -> Iterator[list[tuple[int, int]]]:
    """(rows, tokens) of every input the model's embedding layer reads while inside."""
    widths: list[tuple[int, int]] = []
    handle = model.get_input_embeddings().register_forward_hook(
        lambda _module, args, _out: widths.append(tuple(args[0].shape))
    )
    try:
        yield widths
    finally:
        handle.remove()


def test_a_shared_prefix_is_encoded_once_and_changes_no_answer(tiny_chat_model, smollm2_tokenizer):
    """The k-shot prefix all prompts share is read once (its cache copied into each batch,
    padding after it): the same answers as each prompt generated alone, free and
    constrained, through a LoRA wrapper too; beam search keeps the plain path."""
    from peft import LoraConfig, get_peft_model

    prompts = K_SHOT_PROMPTS
    encoded = _token_ids(smollm2_tokenizer, prompts)
    prefix = len(shared_prefix(encoded))
    assert prefix >= SHARED_PREFIX_MIN_TOKENS
    assert min(map(len, encoded)) < max(map(len, encoded))  # the tails pad to a batch

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    wrapped = get_peft_model(copy.deepcopy(tiny_chat_model), lora)
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0)
    choices = ["card_arrival", "card_declined", "exchange_rate"]
    for model in (tiny_chat_model, wrapped):
        for settings in (
            DecodingSettings(max_new_tokens=5, batch_size=3),
            DecodingSettings(max_new_tokens=5, batch_size=3, choices=choices),
        ):
            with _embedded_widths(model) as widths:
                batched = generate(model, smollm2_tokenizer, prompts, settings)
            # the prefix once, then only the tails (and new tokens), never the prefix again
            assert widths[0] == (1, prefix), widths
            assert all(tokens < prefix for _, tokens in widths[1:]), widths
            alone = [generate(model, smollm2_tokenizer, [p], settings)[0] for p in prompts]
            assert batched == alone, settings
            if settings.choices:
                assert set(batched) <= set(choices)
    assert generate(wrapped, smollm2_tokenizer, prompts, DecodingSettings(5)) != generate(
        tiny_chat_model, smollm2_tokenizer, prompts, DecodingSettings(5)
    )  # the adapter's outputs differ: the comparison above is not of one model twice
    beams = DecodingSettings(max_new_tokens=4, num_beams=2, batch_size=4)
    with _embedded_widths(tiny_chat_model) as widths:
        beamed = generate(tiny_chat_model, smollm2_tokenizer, prompts, beams)
    assert widths[0][1] == max(map(len, encoded))  # whole prompts: no prefix cache
    assert beamed == [generate(tiny_chat_model, smollm2_tokenizer, [p], beams)[0] for p in prompts]


def test_prompts_longer_than_the_context_are_cut_to_fit_it(
    tiny_chat_model, smollm2_tokenizer, caplog
):
    """A k-shot prompt past the model's positions less the answer budget drops its oldest
    examples (and answers as that shorter prompt does); the others are untouched."""
    long = [*SHOTS, {"role": "user", "content": "The last question?"}]
    short = [{"role": "user", "content": "Hi"}]
    fitted = [long[0], *long[3:]]  # the system message stays, the first example goes
    settings = DecodingSettings(max_new_tokens=4, batch_size=2)
    lengths = _token_ids(smollm2_tokenizer, [long, fitted])
    model = copy.deepcopy(tiny_chat_model)
    model.config.max_position_embeddings = len(lengths[1]) + 4  # the shorter prompt fits
    assert context_size(model) == len(lengths[1]) + 4 < len(lengths[0]) + 4
    with caplog.at_level("WARNING", logger="components.generative.decoding"):
        cut = generate(model, smollm2_tokenizer, [long, short], settings)
    assert cut == [
        generate(tiny_chat_model, smollm2_tokenizer, [fitted], settings)[0],
        generate(tiny_chat_model, smollm2_tokenizer, [short], settings)[0],
    ]
    assert "1 of 2 prompts were longer than the model's" in caplog.text
    with pytest.raises(ValueError, match="leaves no room"):
        generate(model, smollm2_tokenizer, [short], DecodingSettings(max_new_tokens=10_000))
    system_only = [{"role": "system", "content": "Be brief. " * 200}, *short]
    with pytest.raises(ValueError, match=r"^prompt 1: a prompt of .* does not fit"):
        generate(model, smollm2_tokenizer, [short, system_only], settings)


def test_prompt_learning_virtual_tokens_count_against_the_context(tiny_chat_model):
    from peft import PromptTuningConfig, get_peft_model

    tuned = get_peft_model(
        copy.deepcopy(tiny_chat_model),
        PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=7),
    )
    size = tiny_chat_model.config.max_position_embeddings
    assert context_size(tiny_chat_model) == size and context_size(tuned) == size - 7


@pytest.mark.parametrize("kind", ["prompt_tuning", "prefix_tuning"])
def test_a_prompt_learning_adapter_answers_with_its_virtual_tokens(
    tiny_chat_model, smollm2_tokenizer, kind
):
    """Batched answers of a prompt/prefix-tuned model are what its own forward pass gives
    token by token (no cache, no padding): the virtual tokens are read (prefix tuning's were
    ignored by generate, peft 0.21 with transformers 5) and padding does not shift them
    (prompt tuning's batched answers differed from one-by-one ones before)."""
    from peft import PrefixTuningConfig, PromptTuningConfig, get_peft_model

    kinds = {"prompt_tuning": PromptTuningConfig, "prefix_tuning": PrefixTuningConfig}
    config = kinds[kind](task_type="CAUSAL_LM", num_virtual_tokens=4)
    tuned = get_peft_model(copy.deepcopy(tiny_chat_model), config).eval()
    with torch.no_grad():
        for param in tuned.prompt_encoder.parameters():
            param.normal_(0, 3.0)
    prompts = K_SHOT_PROMPTS
    settings = DecodingSettings(max_new_tokens=5, batch_size=3)  # batches of mixed lengths
    answers = generate_token_ids(tuned, smollm2_tokenizer, prompts, settings)
    stops = stop_token_ids(tiny_chat_model, smollm2_tokenizer)
    for prompt_ids, got in zip(_token_ids(smollm2_tokenizer, prompts), answers, strict=True):
        ids = torch.tensor([prompt_ids])
        expected: list[int] = []
        with torch.no_grad():
            while len(expected) < settings.max_new_tokens:
                token = int(tuned(input_ids=ids).logits[0, -1].argmax())
                if token in stops:
                    break
                expected.append(token)
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        assert got == expected
    base = generate_token_ids(tiny_chat_model, smollm2_tokenizer, prompts, settings)
    assert answers != base  # the virtual tokens change the answers
    choices = ["card_arrival", "card_declined", "exchange_rate"]
    for other in (
        DecodingSettings(max_new_tokens=4, batch_size=3, choices=choices),
        DecodingSettings(max_new_tokens=4, batch_size=3, num_beams=2),
    ):
        batched = generate(tuned, smollm2_tokenizer, prompts, other)
        assert batched == [generate(tuned, smollm2_tokenizer, [p], other)[0] for p in prompts]
        assert not other.choices or set(batched) <= set(choices)
        if other.num_beams > 1:  # the virtual tokens are read under beam search too
            assert batched != generate(tiny_chat_model, smollm2_tokenizer, prompts, other)


def test_a_sliding_window_model_reads_whole_prompts(smollm2_tokenizer):
    """A sliding window counts cache slots, not positions: padding after a shared prefix
    would narrow a padded row's window, so such a model gets no prefix cache."""
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=len(smollm2_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        sliding_window=8,
        initializer_range=0.5,
        pad_token_id=smollm2_tokenizer.pad_token_id,
        eos_token_id=smollm2_tokenizer.eos_token_id,
    )
    model = MistralForCausalLM(config).eval()
    prompts = K_SHOT_PROMPTS
    settings = DecodingSettings(max_new_tokens=4, batch_size=4)
    with _embedded_widths(model) as widths:
        batched = generate(model, smollm2_tokenizer, prompts, settings)
    longest = max(map(len, _token_ids(smollm2_tokenizer, prompts)))
    assert widths[0][1] == longest  # whole prompts in one pass, no prefix read on its own
    assert batched == [generate(model, smollm2_tokenizer, [p], settings)[0] for p in prompts]


# A template that writes a space before the answer (as Llama-2's does): byte-level BPE then
# trains "Ġyes", not the "yes" a label tokenised on its own would be.
SPACED_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}User: {{ m['content'] }}\nAnswer:"
    "{% else %} {{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
)


def test_constrained_choices_are_the_tokens_training_takes(tiny_chat_model, smollm2_tokenizer):
    """With a template that puts a space before the answer, the constraint follows the
    trained tokens ("Ġyes"), not the label tokenised alone; answers still read as labels."""
    from components.generative.decoding import choice_tree
    from components.generative.templating import encode_chat, response_token_ids

    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.chat_template = SPACED_TEMPLATE
    alone = tokenizer("yes", add_special_tokens=False)["input_ids"]
    spaced = tokenizer(" yes", add_special_tokens=False)["input_ids"]
    assert alone != spaced
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert response_token_ids(tokenizer, "yes") == [*spaced, end]
    encoded = encode_chat(
        tokenizer, [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "yes"}], 64
    )
    pairs = zip(encoded.input_ids, encoded.labels, strict=True)
    assert [t for t, label in pairs if label >= 0] == [*spaced, end]
    stops = stop_token_ids(tiny_chat_model, tokenizer)
    tree = choice_tree(tokenizer, ["yes", "no"], stops)
    assert spaced[0] in tree and alone[0] not in tree
    settings = DecodingSettings(max_new_tokens=8, batch_size=2, choices=["yes", "no", "maybe"])
    ids = generate_token_ids(tiny_chat_model, tokenizer, CONVERSATIONS[:3], settings)
    first = choice_tree(tokenizer, settings.choices, stops)
    assert ids and all(row and row[0] in first for row in ids), ids
    answers = generate(tiny_chat_model, tokenizer, CONVERSATIONS[:3], settings)
    assert set(answers) <= {"yes", "no", "maybe"}, answers
    # ChatML (SmolLM2's own template) puts the answer after a newline: unchanged there
    assert response_token_ids(smollm2_tokenizer, "yes")[:-1] == alone


def test_constrain_to_labels_reaches_the_baselines_and_the_bundle(tmp_path):
    from components.config import apply_overrides, load_preset
    from components.objectives.generation import _decoding

    config = apply_overrides(load_preset("custom"), ["task=generation"])
    assert _decoding(config, ["a", "b"]).choices is None  # off by default
    on = apply_overrides(config, ["generation.constrain_to_labels=true"])
    assert _decoding(on, ["a", "b"]).choices == ["a", "b"]
    assert _decoding(on, None).choices is None  # JSON or open answers: nothing to constrain


def test_num_beams_reaches_the_decoding_but_not_the_training_key():
    """`generation.num_beams` and `constrain_to_labels` decide how answers decode, not what
    trains: a rerun with other decoding reuses the trained job."""
    from components.config import ConfigError, apply_overrides, load_preset
    from components.generative.examples import ChatExamples
    from components.objectives.generation import Generation, _decoding

    config = apply_overrides(load_preset("custom"), ["task=generation"])
    assert _decoding(config).num_beams == 1  # greedy by default
    beams = apply_overrides(
        config, ["generation.num_beams=4", "generation.constrain_to_labels=true"]
    )
    assert _decoding(beams, ["a", "b"]).num_beams == 4
    conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    examples = ChatExamples(train=[conversation], validation=[conversation], test=[conversation])
    key = Generation().training_key
    assert key(examples, beams) == key(examples, config)
    assert key(examples, apply_overrides(config, ["generation.packing=true"])) != key(
        examples, config
    )
    with pytest.raises(ConfigError, match="num_beams"):
        apply_overrides(config, ["generation.num_beams=0"])


def test_served_messages_are_checked_and_get_the_training_system_prompt(
    tiny_chat_model, smollm2_tokenizer
):
    """The pyfunc's input: a JSON list of messages gets the bundle's system prompt where it
    has none (as training rows did) and is checked as training data is; plain text is a user
    message; a text that only looks like JSON stays text."""
    import json

    import pandas as pd

    from components.generative.bundle import Generator
    from components.generative.serving import conversations_from_input

    generator = Generator(tiny_chat_model, smollm2_tokenizer, {"system_prompt": "Be brief."})
    system = {"role": "system", "content": "Be brief."}
    own = [{"role": "system", "content": "Be formal."}, {"role": "user", "content": "Hi"}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hel"}, {"text": "lo"}]}]
    parts_as_text = {"role": "user", "content": "Hello"}
    frame = pd.DataFrame(
        {
            "prompt": [
                "Where is my card?",
                json.dumps([{"role": "user", "content": "Where?"}]),
                json.dumps(own),
                json.dumps(parts),
                "[not json",
                "[1, 2]",
            ]
        }
    )
    assert conversations_from_input(frame, generator) == [
        [system, {"role": "user", "content": "Where is my card?"}],
        [system, {"role": "user", "content": "Where?"}],
        own,
        [system, {"role": "user", "content": "Hello"}],
        [system, {"role": "user", "content": "[not json"}],
        [system, {"role": "user", "content": "[1, 2]"}],
    ]
    bad = json.dumps([{"role": "tool", "content": "x"}])
    with pytest.raises(ValueError, match="row 1: message 0 has role 'tool'"):
        conversations_from_input(["fine", bad], generator)
    assert conversations_from_input([parts], generator)[0][-1]["content"] == "Hello"
    import numpy as np

    cell = np.array(parts, dtype=object)  # a list column's cell read from Parquet
    assert conversations_from_input([cell], generator) == [[system, parts_as_text]]
