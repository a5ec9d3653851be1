"""Generation through the same flows: validate → baselines → select → train → evaluate →
register → promote on a tiny causal LM, the registered pyfunc generates, bad generative data
is refused with a report before training, and a SIGKILLed causal-LM training resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import DATA, tiny_config

FAST = (
    "training.epochs=2",
    "training.batch_size=16",
    "training.learning_rate=0.01",
    "data.max_train_examples=48",
    "model.max_length=192",
    "generation.max_new_tokens=8",
    "generation.few_shot=1",
    "evaluation.batch_size=32",
    "registry.require_beats_baseline=false",
)


def _config(model: Path, *extra: str, data: Path | None = None):
    config = tiny_config("finance-assistant", model, *FAST, *extra)
    if data is not None:
        from components.config import apply_overrides

        config = apply_overrides(config, [f"data.path={data}"])
    return config


@pytest.mark.usefixtures("prefect_harness")
def test_a_generative_run_registers_a_model_that_generates(workspace, tiny_causal_lm):
    from components import registry, tracking
    from flows.pipeline import finance

    summary = finance(config=_config(tiny_causal_lm))
    assert summary.task == "generation"
    assert {"exact_match", "token_f1", "rouge_l", "json_valid_rate", "perplexity"} <= set(
        summary.metrics
    )
    assert set(summary.baselines) == {"zero-shot", "few-shot"}
    assert summary.version == "1" and summary.champion_moved
    # the preset's behavioural suite ran on the answers' intent field (reported, not a gate)
    assert set(summary.behaviour["pass_rates"]) == {
        "minimum_functionality",
        "invariance",
        "directional",
    }
    version = tracking.client().get_model_version("peftops-finance-assistant", "1")
    assert version.tags["task"] == "generation"
    assert len(version.tags["chat_template_hash"]) == 16
    assert version.tags["chat_template"] == "model"  # SmolLM2's own, not peftops' ChatML
    assert version.tags["base_model.provenance"].startswith("local:")  # a folder, here
    assert version.tags["decoding.max_new_tokens"] == "8"  # how its served answers decode
    assert version.tags["decoding.choices"] == "free"
    assert version.tags["decoding.num_beams"] == "1"  # greedy unless generation.num_beams
    assert "base model few-shot" in version.description  # the model card, shown in the UI
    run = tracking.client().get_run(summary.mlflow_run_id)
    assert "baseline.zero-shot.exact_match" in run.data.metrics
    artifacts = {
        a.path for a in tracking.client().list_artifacts(summary.mlflow_run_id, "validation")
    }
    assert "validation/trained_tokens.md" in artifacts
    answers = {a.path for a in tracking.client().list_artifacts(summary.mlflow_run_id, "baselines")}
    assert answers == {
        "baselines/zero-shot_predictions.json",
        "baselines/few-shot_predictions.json",
    }

    model = registry.load_model("peftops-finance-assistant", "champion")
    messages = json.dumps([{"role": "user", "content": "my card is gone"}])
    out = model.predict(pd.DataFrame({"prompt": ["I lost my card yesterday", messages]}))
    assert list(out.columns) == ["text"] and len(out) == 2
    assert all(isinstance(t, str) for t in out["text"])

    # the champion is scored with this run's decoding, not the one its manifest kept (8 new
    # tokens): a later run with other settings compares models, not settings
    from components.config import apply_overrides
    from components.data import load_splits
    from components.objectives import objective_for

    config = _config(tiny_causal_lm)
    objective = objective_for(config)
    examples = objective.prepare(load_splits(config.data, DATA.parent).frames, config)
    one_token = apply_overrides(config, ["generation.max_new_tokens=1"])
    short = objective.score_model(model, examples, one_token).predictions
    full = objective.score_model(model, examples, config).predictions
    assert short != full
    assert all(len(a) <= len(b) for a, b in zip(short, full, strict=True))


@pytest.mark.usefixtures("prefect_harness")
def test_bad_generative_data_stops_before_training_with_a_report(
    workspace, tiny_causal_lm, tmp_path
):
    from components import tracking
    from components.validation import DataValidationError
    from flows.pipeline import finance

    folder = tmp_path / "bad"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        rows = pd.read_json(DATA / "finance-assistant" / f"{split}.jsonl", lines=True)
        if split == "train":
            rows.loc[:4, "response"] = "   "  # five empty answers
        rows.to_json(folder / f"{split}.jsonl", orient="records", lines=True)
    with pytest.raises(DataValidationError) as err:
        finance(config=_config(tiny_causal_lm, data=folder))
    text = err.value.report.summary()
    assert "train" in text and "empty" in text.lower()
    assert not list(workspace.glob(".peftops/runs/*"))  # nothing trained
    assert not tracking.client().search_registered_models()  # nothing registered


def _checkpoints(home: Path) -> list[Path]:
    found = [p for p in home.glob("run/checkpoints/epoch-*") if (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


TRAIN = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import tiny_config
from components.data import load_splits
from components.objectives import objective_for
from components.selection import run_selection  # noqa: F401 (imports as the flow does)
config = tiny_config("finance-assistant", Path({model!r}), *{settings!r})
objective = objective_for(config)
raw = load_splits(config.data, Path({home!r}))
examples = objective.prepare(raw.frames, config)
selection = objective.select(examples, None, config)
objective.train(examples, selection, None, config, Path({home!r}) / "run")
"""


@pytest.mark.long
def test_sigkilled_causal_lm_training_resumes_and_matches_an_uninterrupted_run(
    tiny_causal_lm, tmp_path
):
    from safetensors.torch import load_file

    settings = (*FAST, "training.epochs=3", "data.max_train_examples=64")

    def start(home: Path) -> subprocess.Popen:
        home.mkdir(exist_ok=True)
        script = TRAIN.format(
            tests=str(Path(__file__).parent),
            model=str(tiny_causal_lm),
            settings=settings,
            home=str(home),
        )
        return subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[1])

    whole = start(tmp_path / "whole")
    assert whole.wait(timeout=600) == 0
    killed = start(tmp_path / "killed")
    deadline = time.time() + 600
    while not _checkpoints(tmp_path / "killed") and killed.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert 1 <= len(_checkpoints(tmp_path / "killed")) < 3
    resumed = start(tmp_path / "killed")
    assert resumed.wait(timeout=600) == 0

    def history(home: Path) -> list[dict]:
        return json.loads((_checkpoints(home)[-1] / "state.json").read_text())["history"]

    for a, b in zip(history(tmp_path / "whole"), history(tmp_path / "killed"), strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-6)
    adapter = "run/bundle/adapter/adapter_model.safetensors"
    ta, tb = (
        load_file(str(tmp_path / "whole" / adapter)),
        load_file(str(tmp_path / "killed" / adapter)),
    )
    assert ta.keys() == tb.keys()
    for name in ta:
        assert (ta[name] - tb[name]).abs().max().item() <= 1e-6, name


def test_the_trained_positions_loss_equals_the_full_masked_loss(tiny_causal_lm):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.generative.bundle import CausalLM, trained_targets
    from components.generative.templating import collate, encode_chat
    from tiny_models import reference_lm_loss

    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    conversations = [
        [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello!"}],
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "a longer question about cards"},
            {"role": "assistant", "content": '{"intent": "card"}'},
        ],
    ]
    batch = collate([encode_chat(tokenizer, c, 128) for c in conversations], 0)
    base = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    for backbone in (base, get_peft_model(base, LoraConfig(target_modules=["q_proj"]))):
        model = CausalLM(backbone)
        full = reference_lm_loss(
            model(batch["input_ids"], batch["attention_mask"]), batch["labels"]
        )
        logits = model.trained_logits(batch["input_ids"], batch["attention_mask"], batch["labels"])
        kept = torch.nn.functional.cross_entropy(logits, trained_targets(batch["labels"]))
        assert logits.shape[0] == int((batch["labels"][:, 1:] != -100).sum())
        assert kept.item() == pytest.approx(full.item(), rel=1e-5)
