"""The task-type seam: each objective implements the whole `Objective` interface, is chosen
by `config.task`, and shows what it trains on."""

from __future__ import annotations

import inspect

import pytest

from components.config import apply_overrides, load_preset
from components.objectives import objective_for
from components.objectives.base import Objective
from conftest import DATA


@pytest.mark.parametrize("task", ["classification", "generation"])
def test_each_objective_implements_the_whole_interface(task):
    objective = objective_for(task)
    assert objective.name == task
    wanted = {
        n for n, f in vars(Objective).items() if inspect.isfunction(f) and not n.startswith("_")
    }
    assert len(wanted) >= 12
    for name in wanted:
        theirs = getattr(type(objective), name)
        ours = getattr(Objective, name)
        assert list(inspect.signature(theirs).parameters) == list(
            inspect.signature(ours).parameters
        ), name
    assert set(objective.metrics) <= set(objective.shown)


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task type"):
        objective_for("regression")


@pytest.mark.parametrize("preset", ["finance", "finance-assistant"])
def test_an_empty_split_is_refused_readably_when_validation_is_off(preset):
    """The validation suite's row check reports an empty split first; with the suite off,
    each task type's `prepare` still refuses it before training (was numpy's error)."""
    from components.data import load_splits
    from components.errors import DataLoadError

    config = apply_overrides(
        load_preset(preset), [f"data.path={DATA / preset}", "validation.enabled=false"]
    )
    objective = objective_for(config)
    frames = dict(load_splits(config.data, DATA.parent).frames)
    assert len(objective.prepare(frames, config).validation) > 0
    frames["validation"] = frames["validation"].iloc[:0]
    with pytest.raises(DataLoadError, match=r"^the validation split has no rows: training"):
        objective.prepare(frames, config)
    frames["test"] = frames["test"].iloc[:0]
    with pytest.raises(DataLoadError, match=r"^the validation and test splits have no rows"):
        objective.prepare(frames, config)
    frames["train"] = frames["train"].iloc[:0]
    with pytest.raises(DataLoadError, match=r"^the train, validation and test splits have no"):
        objective.prepare(frames, config)


def test_generation_preview_marks_only_the_answers(tiny_causal_lm):
    from components.data import load_splits

    config = apply_overrides(
        load_preset("finance-assistant"),
        [f"data.path={DATA / 'finance-assistant'}", f"model.base_model={tiny_causal_lm}"],
    )
    objective = objective_for(config)
    raw = load_splits(config.data, DATA.parent)
    examples = objective.prepare(raw.frames, config)
    assert examples.expect_json and examples.labels is None
    preview = objective.preview(examples, config)
    first = examples.train[0]
    assert f"[[{first[-1]['content']}<|im_end|>]]" in preview  # the answer and its end marker
    assert f"[[{first[1]['content']}" not in preview  # never the customer's message


def test_a_closed_set_of_answers_is_scored_as_labels():
    from components.generative.examples import closed_label_set

    def conv(answer):
        return [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]

    train = [conv(a) for a in ("yes", "no", "maybe", "no")]
    assert closed_label_set(train, [conv("no")], 50) == ["maybe", "no", "yes"]
    assert closed_label_set(train, [conv("perhaps")], 50) is None  # a test answer outside it
    assert closed_label_set(train, [conv("no")], 2) is None  # too many distinct answers
    # spellings that score alike are one label, named by the most common training spelling
    mixed = [conv(a) for a in ("Yes", "yes", "yes", "yes.", "No", "no")]
    assert closed_label_set(mixed, [conv("YES"), conv("no")], 50) == ["No", "yes"]
    assert closed_label_set([conv("yes"), conv("Yes")], [conv("yes")], 50) is None  # one label
    assert closed_label_set([conv("+"), conv("-")], [conv("+")], 50) is None  # no words


def test_a_label_metric_without_a_closed_set_of_answers_is_refused_before_training(
    tiny_causal_lm,
):
    import pandas as pd

    from components.config import ConfigError

    def frame(answers):
        return pd.DataFrame({"prompt": [f"q{i}" for i in range(len(answers))], "response": answers})

    open_ended = {k: frame([f"answer {i}" for i in range(4)]) for k in ("train", "validation")}
    config = apply_overrides(
        load_preset("custom"),
        [
            "task=generation",
            f"model.base_model={tiny_causal_lm}",
            "data.prompt_column=prompt",
            "data.response_column=response",
            "registry.metric=accuracy",
            "generation.max_label_set=3",
        ],
    )
    objective = objective_for(config)
    with pytest.raises(ConfigError, match=r"registry.metric='accuracy' needs a closed set"):
        objective.prepare({**open_ended, "test": frame(["answer 1"])}, config)
    labelled = {k: frame(["yes", "no", "yes", "no"]) for k in ("train", "validation", "test")}
    assert objective.prepare(labelled, config).labels == ["no", "yes"]


def test_generation_trains_with_packing_and_keeps_evaluation_unpacked(tiny_causal_lm, tmp_path):
    from components.data import load_splits

    config = apply_overrides(
        load_preset("finance-assistant"),
        [
            f"data.path={DATA / 'finance-assistant'}",
            f"model.base_model={tiny_causal_lm}",
            "data.max_train_examples=32",
            "generation.packing=true",
            "training.epochs=1",
            "selection.strategy=attention",
        ],
    )
    objective = objective_for(config)
    examples = objective.prepare(load_splits(config.data, DATA.parent).frames, config)
    selection = objective.select(examples, None, config)
    result = objective.train(examples, selection, None, config, tmp_path)
    (record,) = result.history
    assert record["train_loss"] > 0 and record["val_loss"] > 0
    assert result.samples_per_second > 0
    # packed: fewer training rows than examples (each row holds several conversations)
    assert record["samples_per_second"] * record["seconds"] < len(examples.train)


def test_the_majority_class_is_a_baseline_and_the_policy_names_the_one_it_failed():
    from components.config import RegistryConfig
    from components.examples import Examples, TextSplit
    from components.objectives.base import Baselines
    from components.objectives.classification import majority_metrics
    from components.registry import decide_promotion

    labels = ["a", "b", "c"]
    examples = Examples(
        labels,
        TextSplit(["x"] * 10, [1] * 7 + [0] * 3),
        TextSplit([], []),
        TextSplit(["y"] * 10, [1] * 8 + [2] * 2),
    )
    prior = majority_metrics(examples)
    assert prior["accuracy"] == pytest.approx(0.8)  # "b" for everything
    probe = {"accuracy": 0.7, "macro_f1": 0.5}
    baselines = Baselines({"baseline": probe, "majority": prior})
    strongest = baselines.strongest("accuracy")
    assert strongest["name"] == "majority"
    assert baselines.strongest("macro_f1")["name"] == "baseline"
    decision = decide_promotion(
        {"accuracy": 0.75, "macro_f1": 0.6}, strongest, None, RegistryConfig(metric="accuracy")
    )
    assert not decision.promote
    assert any("< majority 0.8000" in r for r in decision.reasons)
    assert any("fine-tuning did not beat the majority baseline: try" in r for r in decision.reasons)


def test_auto_selection_scores_a_causal_lm_on_its_training_loss(tiny_causal_lm):
    from components.data import load_splits

    config = apply_overrides(
        load_preset("finance-assistant"),
        [
            f"data.path={DATA / 'finance-assistant'}",
            f"model.base_model={tiny_causal_lm}",
            "selection.strategy=auto",
            "selection.budget=0.05",
        ],
    )
    objective = objective_for(config)
    examples = objective.prepare(load_splits(config.data, DATA.parent).frames, config)
    selection = objective.select(examples, None, config)
    assert selection.importance == "grad_x_weight"
    assert 0 < selection.estimated_trainable <= 0.05 * selection.base_parameters
    scores = [row["grad_x_weight"] for row in selection.table]
    assert max(scores) > 0  # gradients of the LM loss reached the scored modules


def test_a_split_with_no_answer_token_to_score_is_refused_before_training(tiny_causal_lm, tmp_path):
    """Validation rows with nothing to score (here: no answer turn; in practice answers cut by
    model.max_length with the suite off) stop training before it starts, naming the split;
    before, training ran a full epoch and then failed on perplexity's 'no scored token'."""
    from components.errors import DataLoadError
    from components.generative.examples import ChatExamples

    config = apply_overrides(
        load_preset("finance-assistant"),
        [f"data.path={DATA / 'finance-assistant'}", f"model.base_model={tiny_causal_lm}"],
    )
    solved = [{"role": "user", "content": "card lost"}, {"role": "assistant", "content": "ok"}]
    unanswered = [{"role": "user", "content": "card lost"}]
    examples = ChatExamples([solved] * 4, [unanswered] * 2, [solved])
    objective = objective_for(config)
    selection = objective.select(examples, None, config)
    with pytest.raises(DataLoadError, match="no validation example has an answer token"):
        objective.train(examples, selection, None, config, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing trained, no checkpoint written


def test_few_shot_examples_and_curve_classes_count_a_label_once_whatever_its_spelling():
    """With a closed answer set, "Yes" and "yes." are one label (as they are scored): k
    shots cover the distinct labels, not the distinct spellings, for every seed."""
    from components.generative.curve import class_of
    from components.generative.examples import ChatExamples
    from components.generative.prompting import pick_shots
    from components.objectives.generation import _shot_class

    def chat(answer: str) -> list[dict]:
        return [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]

    train = [chat("Yes"), chat("yes."), chat("YES"), chat("no")]
    examples = ChatExamples(train, [], [], labels=["no", "yes"])
    for seed in range(10):
        shots = pick_shots(train, 2, seed, _shot_class(examples))
        assert {s[-1]["content"] for s in shots} & {"no"}, seed
    assert class_of(chat("Yes"), examples) == class_of(chat("yes."), examples)
    assert class_of(chat("Yes"), examples) != class_of(chat("no"), examples)
    open_ended = ChatExamples(train, [], [])
    assert _shot_class(open_ended) is None  # pick_shots' default: the answer itself


def test_a_causal_lm_train_loss_is_a_mean_over_trained_tokens_like_its_val_loss(
    tiny_causal_lm, tmp_path
):
    """Scored on the same rows with unchanged weights, the epoch's training loss equals the
    validation loss: both are means over trained tokens (the training loss was a mean of
    per-batch means weighted by rows, so batches with short answers counted too much)."""
    from components.data import load_splits
    from components.generative.examples import ChatExamples

    config = apply_overrides(
        load_preset("finance-assistant"),
        [
            f"data.path={DATA / 'finance-assistant'}",
            f"model.base_model={tiny_causal_lm}",
            "data.max_train_examples=24",
            "generation.packing=false",
            "training.epochs=1",
            "training.batch_size=4",
            "training.learning_rate=1e-30",
            "training.precision=fp32",
            "selection.strategy=attention",
        ],
    )
    objective = objective_for(config)
    examples = objective.prepare(load_splits(config.data, DATA.parent).frames, config)
    # answers of very different lengths, so the two averages differ
    short = [[*c[:-1], {"role": "assistant", "content": "ok"}] for c in examples.train[:12]]
    train = short + examples.train[12:]
    same = ChatExamples(train, train, examples.test[:2], expect_json=False)
    selection = objective.select(same, None, config)
    (record,) = objective.train(same, selection, None, config, tmp_path).history
    assert record["train_loss"] == pytest.approx(record["val_loss"], rel=1e-4)
