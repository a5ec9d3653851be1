"""Few-shot prompts and the choice of shots."""

from __future__ import annotations

import pytest

from components.generative.prompting import few_shot, pick_shots


def conv(question: str, answer: str | None = None, system: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def test_few_shot_puts_solved_examples_before_the_prompt_with_one_system_message():
    test = conv("Is it raining?", "yes", system="Answer yes or no.")
    shots = [conv("Is the sky green?", "no", system="Answer yes or no."), conv("Is 2 > 1?", "yes")]
    messages = few_shot(test, shots)
    assert messages == [
        {"role": "system", "content": "Answer yes or no."},
        {"role": "user", "content": "Is the sky green?"},
        {"role": "assistant", "content": "no"},
        {"role": "user", "content": "Is 2 > 1?"},
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "Is it raining?"},  # the reference answer is dropped
    ]
    # Without a system message of its own, the test prompt takes the first shot's.
    assert few_shot(conv("Q?"), shots)[0] == {"role": "system", "content": "Answer yes or no."}
    assert few_shot(conv("Q?"), []) == conv("Q?")
    with pytest.raises(ValueError, match="shot 0"):
        few_shot(test, [conv("unanswered")])


def test_few_shot_does_not_share_message_dicts_with_its_inputs():
    shot = conv("a", "b")
    messages = few_shot(conv("c"), [shot])
    messages[0]["content"] = "changed"
    assert shot[0]["content"] == "a"


TRAIN = [conv(f"q{i}", label) for i, label in enumerate(["a"] * 6 + ["b"] * 3 + ["c"])]


def test_pick_shots_is_deterministic_and_covers_distinct_labels_first():
    shots = pick_shots(TRAIN, 3, seed=0)
    assert shots == pick_shots(TRAIN, 3, seed=0)
    assert sorted(s[-1]["content"] for s in shots) == ["a", "b", "c"]
    five = pick_shots(TRAIN, 5, seed=0)
    assert sorted(s[-1]["content"] for s in five).count("a") == 2
    assert len({id(s) for s in five}) == 5  # no example twice
    # Other seeds pick other examples (order and members), still one per label.
    picks = {tuple(s[0]["content"] for s in pick_shots(TRAIN, 3, seed=seed)) for seed in range(5)}
    assert len(picks) > 1
    assert len(pick_shots(TRAIN, 50, seed=0)) == len(TRAIN)
    assert pick_shots(TRAIN, 0, seed=0) == []


def test_pick_shots_uses_labels_of_and_skips_unsolved_conversations():
    train = [*TRAIN, conv("unanswered")]
    by_parity = pick_shots(train, 2, seed=0, labels_of=lambda c: int(c[0]["content"][1:]) % 2)
    assert sorted(int(s[0]["content"][1:]) % 2 for s in by_parity) == [0, 1]
    assert all(s[-1]["role"] == "assistant" for s in pick_shots(train, 20, seed=0))
