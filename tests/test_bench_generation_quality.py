"""`peftops bench quality --task generation` on a tiny random Llama and a synthetic PubMedQA
laid out like /work/shared/datasets/pubmedqa (real objective, real training, real subprocesses);
and the same PubMedQA as the classifier benchmark's dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from peftops.bench.generation_quality import GenMode, pubmedqa_frames, run_generation_quality

DECISIONS = ("yes", "no", "maybe")


def _write_pubmedqa(root: Path) -> Path:
    folder = root / "pubmedqa"
    folder.mkdir(parents=True)
    for split, n in (("train", 24), ("validation", 6), ("test", 9)):
        with open(folder / f"{split}.jsonl", "w") as out:
            for i in range(n):
                decision = DECISIONS[i % 3]
                row = {
                    "id": f"{split}{i}",
                    "question": f"Does treatment {i} help?",
                    "context": f"Study {i} found a {decision} effect " + "word " * 40,
                    "decision": decision,
                    "long_answer": f"The effect was {decision}.",
                }
                out.write(json.dumps(row) + "\n")
    return root


def test_pubmedqa_frames_truncate_contexts_and_keep_decisions(tmp_path):
    root = _write_pubmedqa(tmp_path)
    mode = GenMode(12, 6, None, 1, 64, 10, 4, 2)
    frames = pubmedqa_frames(mode, root=root)
    assert {k: len(v) for k, v in frames.items()} == {"train": 12, "validation": 6, "test": 6}
    # stratified: each decision keeps its share of the sample
    assert sorted(frames["train"]["response"].value_counts().tolist()) == [4, 4, 4]
    prompt = frames["test"]["prompt"].iloc[0]
    assert prompt.endswith("Answer with one word: yes, no, or maybe.")
    context = prompt.split("\n")[0].removeprefix("Context: ")
    assert context.endswith(" …") and len(context.split()) == 11  # 10 words and the ellipsis
    long = pubmedqa_frames(mode, long_answer=True, root=root)
    assert long["test"]["response"].str.startswith("The effect was").all()


def test_pubmedqa_is_a_classifier_dataset_too_question_first(tmp_path, monkeypatch):
    """`bench quality --dataset pubmedqa` (the classifier): the published splits whole, the
    question before the abstract (truncation cuts the abstract), the decision as the label."""
    from peftops.bench.datasets import load_bench_dataset

    monkeypatch.setenv("PEFTOPS_DATASETS", str(_write_pubmedqa(tmp_path)))
    data = load_bench_dataset("pubmedqa")
    ex = data.examples
    assert ex.labels == ["maybe", "no", "yes"]
    assert (len(ex.train.texts), len(ex.validation.texts), len(ex.test.texts)) == (24, 6, 9)
    assert ex.test.texts[1].startswith("Does treatment 1 help?\nStudy 1 found a no effect")
    assert [ex.labels[i] for i in ex.test.label_ids[:3]] == ["yes", "no", "maybe"]
    assert data.max_length == 256


def test_cli_names_the_classifier_datasets_when_one_is_unknown():
    from typer.testing import CliRunner

    from peftops.cli import app

    result = CliRunner().invoke(app, ["bench", "quality", "--dataset", "pubmed"])
    assert result.exit_code == 2
    assert "use one of banking77, medical_abstracts, pubmedqa" in result.output


def test_generation_rows_run_through_the_objective(tmp_path, monkeypatch, tiny_causal_lm, capsys):
    monkeypatch.setenv("PEFTOPS_DATASETS", str(_write_pubmedqa(tmp_path)))
    modes = {"pubmedqa": GenMode(None, None, None, 1, 96, 12, 3, 2, batch_size=8)}
    rows = run_generation_quality(
        "pubmedqa",
        only=["base_prompted", "lora_attention", "lora_auto"],
        threads=1,
        base_model=str(tiny_causal_lm),
        modes=modes,
    )
    by = {r.get("config", r["method"]): r for r in rows}
    assert list(by) == ["base_zero_shot", "base_k_shot", "lora_attention", "lora_auto"]
    for r in rows:
        assert "error" not in r, r
        assert r["task"] == "generation" and r["target"] == "decision"
        assert r["test_examples"] == 9 and r["train_examples"] == 24
        for key in ("accuracy", "macro_f1", "exact_match", "rouge_l", "invalid_output_rate"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
        # an output is either a label or invalid: accuracy cannot exceed the valid share
        assert r["accuracy"] <= 1.0 - r["invalid_output_rate"] + 1e-9
        assert -1.0 <= r["kappa"] <= 1.0
        assert r["peak_rss_mb"] > 0
        assert len(r["examples"]) == 3 and all(isinstance(e, str) for e in r["examples"])
        assert r["output_words"] >= 0
    assert by["base_k_shot"]["shots"] == 2
    assert by["base_zero_shot"]["trainable_params"] == 0
    assert by["base_zero_shot"]["perplexity"] > 1.0 and by["base_k_shot"]["perplexity"] is None
    lora, auto = by["lora_attention"], by["lora_auto"]
    for r in (lora, auto):
        assert r["trainable_params"] > 0 and 0 < r["trainable_fraction"] < 0.5
        assert r["adapter_bytes"] > 0 and r["train_seconds"] > 0
        assert math.isfinite(r["perplexity"]) and r["perplexity"] > 1.0
    # `auto` is held to the attention preset's budget
    assert auto["trainable_params"] <= lora["trainable_params"]
    table = capsys.readouterr().err
    assert "anchor: majority class" in table and "lora_auto" in table


@pytest.mark.parametrize("dataset", ["medical_abstracts"])
def test_unknown_generation_dataset_is_refused(dataset):
    with pytest.raises(ValueError, match="unknown generation benchmark dataset"):
        run_generation_quality(dataset, modes={dataset: GenMode(1, 1, 1, 1, 8, None, 1, 0)})


def test_cli_refuses_a_dataset_the_generation_bench_does_not_have():
    from typer.testing import CliRunner

    from peftops.cli import app

    result = CliRunner().invoke(
        app, ["bench", "quality", "--task", "generation", "--dataset", "medical_abstracts"]
    )
    assert result.exit_code == 2
    assert "use pubmedqa or banking77" in result.output


def _dies(config_data: dict, frames: dict, queue) -> None:
    import os

    os._exit(3)  # as a SIGKILL or an out-of-memory kill would: no report


def test_a_row_whose_process_dies_is_an_error_row_not_a_hang():
    import time

    from peftops.bench.generation_quality import _in_subprocess

    started = time.perf_counter()
    row = _in_subprocess(_dies, {}, {})
    assert "exit code 3" in row["error"]
    assert time.perf_counter() - started < 60
