"""`peftops bench speed` internals on a tiny model: the ratio orientation, the hand-written
baseline loop, padding, and the plain (no Prefect, no MLflow) pipeline script. The benchmark
itself is a command, not a test (docs/benchmarks.md)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from components.batching import encode, iter_batches
from peftops.bench import speed
from peftops.bench.speed import harness, orchestration, steps, throughput
from toy_data import LABELS, toy_split


def _ctx(tmp_path, model: str = "unused") -> harness.Context:
    return harness.Context(harness.QUICK, "test", 1, "cpu", tmp_path, base_model=model)


def test_ratio_is_oriented_so_higher_favours_the_pipeline(tmp_path, capsys):
    ctx = _ctx(tmp_path)
    fast = harness.comparison(ctx, "training_throughput", 96.0, "bare", 100.0, "samples/s")
    assert fast["ratio"] == 0.96 and fast["target_met"] is True
    slow = harness.comparison(ctx, "orchestration_warm", 50.0, "plain", 40.0, "s", False)
    assert slow["ratio"] == 0.8 and slow["target_met"] is False  # 20 % overhead > 10 %
    rss = harness.comparison(ctx, "memory_peak_rss", 700.0, "full", 1000.0, "MB", False)
    assert rss["ratio"] == round(1000 / 700, 3) and rss["target_met"] is True
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["benchmark"] for r in printed] == [
        "training_throughput",
        "orchestration_warm",
        "memory_peak_rss",
    ]
    for row in printed:
        assert {"benchmark", "value", "baseline", "baseline_value", "ratio", "unit"} <= set(row)


def test_a_gpu_context_keeps_a_torch_device_type_and_reports_the_gpu_name(tmp_path):
    """The benchmarks build `torch.device(ctx.device)`: "cuda:NVIDIA H200" is no device string,
    so the GPU's name travels beside the type and is joined only in the printed rows."""
    import torch

    ctx = harness.Context(harness.QUICK, "test", 1, "cuda", tmp_path, device_name="NVIDIA H200")
    assert torch.device(ctx.device).type == "cuda"
    row = harness.comparison(ctx, "training_throughput", 1.0, "bare", 1.0, "samples/s")
    assert row["device"] == "cuda:NVIDIA H200"
    assert harness.comparison(_ctx(tmp_path), "x", 1.0, "y", 1.0, "s")["device"] == "cpu"


def test_rate_pair_reports_wall_and_cpu_rates(tmp_path, capsys):
    ctx = _ctx(tmp_path)
    ours = [(100, 2.0, 4.0), (100, 1.0, 4.0), (100, 4.0, 4.0)]  # best wall 100/s; cpu 25/s
    base = [(100, 1.25, 5.0), (100, 2.0, 5.0), (100, 3.0, 5.0)]  # best wall 80/s; cpu 20/s
    harness.rate_pair(ctx, "training_throughput", ours, base, "bare", "samples/s")
    wall, cpu = ctx.rows
    assert (wall["value"], wall["baseline_value"], wall["ratio"]) == (100.0, 80.0, 1.25)
    # round by round 50/80, 100/50, 25/33.3: the median of those is not the ratio of bests
    assert wall["paired_ratio"] == 0.75
    assert cpu["benchmark"] == "training_throughput_cpu" and cpu["unit"] == "samples/cpu-s"
    assert (cpu["value"], cpu["baseline_value"], cpu["ratio"]) == (25.0, 20.0, 1.25)
    assert cpu["target_met"] is True


def test_alternating_rounds_reverse_the_order(tmp_path):
    calls: list[str] = []
    sides = {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0}
    out = harness.alternate(sides, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert out == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}


def test_a_warm_up_call_of_each_side_is_made_first_and_not_counted():
    calls: list[str] = []
    results = iter(range(100))
    sides = {"a": lambda: calls.append("a") or next(results), "b": lambda: calls.append("b") or 0}
    out = harness.alternate(sides, 2, warmup=True)
    assert calls == ["a", "b", "a", "b", "b", "a"]
    assert out == {"a": [1, 2], "b": [0, 0]}  # a's warm-up result (0) is dropped


def test_bare_loop_and_pipeline_steps_run_on_a_tiny_model(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    train = toy_split(48, 0)
    samples, wall, cpu = throughput.bare_loop(
        str(tiny_bert),
        ["query", "value"],
        train.texts,
        train.label_ids,
        len(LABELS),
        max_length=32,
        batch_size=16,
        seed=1,
        lr=1e-3,
        head_lr=1e-3,
        weight_decay=0.01,
        warmup_ratio=0.1,
        r=4,
        alpha=8,
        dropout=0.0,
    )
    assert samples == 48 and wall > 0 and cpu > 0 and math.isfinite(samples / wall)

    config = steps.bench_config(LABELS, 32, 16, 1, str(tiny_bert))
    model, _, optimizer = steps.training_model(config, len(LABELS))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    enc = encode(tokenizer, train.texts, 32, train.label_ids, cache=False)
    fixed = list(iter_batches(enc, 16, 0, shuffle=True, seed=1, group_by_length=False, pad_to=32))
    grouped = list(iter_batches(enc, 16, 0, shuffle=True, seed=1, group_by_length=True))
    assert {b["input_ids"].shape[1] for b in fixed} == {32}
    assert sum(b["input_ids"].numel() for b in grouped) < sum(b["input_ids"].numel() for b in fixed)
    samples, wall, cpu = steps.train_steps(model, optimizer, iter(grouped))
    assert samples == 48 and wall > 0 and cpu > 0


def test_plain_pipeline_runs_the_flow_components_without_prefect_or_mlflow(
    tiny_bert, tmp_path, monkeypatch
):
    from conftest import tiny_config

    monkeypatch.setenv("PEFTOPS_HOME", str(tmp_path))
    config = tiny_config("finance", tiny_bert, "training.epochs=1", "data.max_train_examples=200")
    result = orchestration.plain_pipeline(config, tmp_path)
    assert list(result["stages"]) == [
        "load_data",
        "validate_data",
        "fit_baseline",
        "select_trainable_parameters",
        "train_adapter",
        "evaluate",
    ]
    assert 0.0 <= result["accuracy"] <= 1.0
    assert (tmp_path / "plain" / "confusion.png").is_file()
    assert not (tmp_path / "mlflow.db").exists()


def test_cli_rejects_an_unknown_benchmark():
    from peftops.cli import app

    result = CliRunner().invoke(app, ["bench", "speed", "--only", "nope"])
    assert result.exit_code == 2
    assert "unknown benchmark" in result.output


def test_benchmarks_on_the_demo_data_say_how_to_get_it(tmp_path, monkeypatch):
    from peftops.cli import app

    monkeypatch.setattr(speed, "DEMO", tmp_path / "data" / "finance")  # not pulled
    result = CliRunner().invoke(app, ["bench", "speed", "--quick", "--only", "scaling"])
    assert result.exit_code == 3
    assert "make data" in result.output and "scaling" in result.output
    assert "Traceback" not in result.output


def test_memory_breakdown_accounts_for_what_each_method_holds(tiny_bert):
    """The profile behind the memory target: LoRA holds a sliver of optimiser state, full
    fine-tuning two AdamW moments per updated parameter; the saved activations grow with the
    sequence length and leave the parameters out; the process's peak covers the tensors."""
    from components.examples import TextSplit
    from peftops.bench.memory import memory_breakdown

    train = toy_split(48, seed=3)
    lora = memory_breakdown("lora", str(tiny_bert), train, LABELS, 32, threads=1, batch_size=16)
    full = memory_breakdown("full", str(tiny_bert), train, LABELS, 32, threads=1, batch_size=16)
    assert lora["trainable_params"] < full["trainable_params"]
    assert lora["weights"] >= full["weights"]  # LoRA adds its adapters to the same model
    # AdamW: exp_avg and exp_avg_sq per updated parameter (plus a scalar step each)
    assert full["optimizer"] == pytest.approx(2 * full["grads"], rel=0.01)
    assert lora["optimizer"] == pytest.approx(2 * lora["grads"], rel=0.05)
    assert lora["optimizer"] < full["optimizer"] / 10
    for row in (lora, full):
        assert row["peak"] >= row["floor"] + row["optimizer"] + row["activations"]
        assert row["samples_per_s"] > 0

    # the same texts, six times longer, cut at 8 and at 32 tokens
    long = TextSplit([" ".join([t] * 6) for t in train.texts], train.label_ids)
    runs = {
        n: memory_breakdown("lora", str(tiny_bert), long, LABELS, n, threads=1, batch_size=16)
        for n in (8, 32)
    }
    assert runs[8]["longest_batch"] == 8 and runs[32]["longest_batch"] == 32
    assert runs[32]["activations"] > 2.5 * runs[8]["activations"]
    assert runs[8]["activations"] < runs[8]["weights"] / 4  # parameters are not activations


def test_allocator_settings_reach_the_child_process():
    """The memory benchmark's allocator sides run their child under that allocator: glibc's
    threshold through its environment variable, jemalloc preloaded (mapped in the child)."""
    import os
    import subprocess
    import sys

    from peftops.bench.memory import ALLOCATORS, allocator_env, jemalloc, with_allocator

    assert allocator_env("default") == {}
    assert allocator_env("mmap-1mb") == {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    assert set(ALLOCATORS) == {"default", "mmap-4mb", "mmap-1mb", "jemalloc"}
    # settings inherited from the parent do not leak into another setting's child
    inherited = {"PATH": "/bin", "LD_PRELOAD": "libx.so", "MALLOC_ARENA_MAX": "2"}
    assert with_allocator(inherited, "default") == {"PATH": "/bin"}
    assert with_allocator(inherited, "mmap-4mb") == {
        "PATH": "/bin",
        "MALLOC_MMAP_THRESHOLD_": str(4 << 20),
    }
    if jemalloc() is None:
        if os.environ.get("CI"):
            pytest.fail("libjemalloc2 missing: .ci/run installs it")
        pytest.skip("needs Debian's libjemalloc2 (apt-get install libjemalloc2)")
    probe = "from peftops.bench.memory import loaded_allocator; print(loaded_allocator())"
    for setting, expected in (("jemalloc", "jemalloc"), ("default", "glibc")):
        child = subprocess.run(
            [sys.executable, "-c", probe],
            env=with_allocator(dict(os.environ), setting),
            capture_output=True,
            text=True,
            check=True,
        )
        assert child.stdout.strip() == expected


def test_inference_benchmark_adds_onnx_sides_that_agree_with_the_torch_model(tmp_path, tiny_bert):
    from components.modeling import TextClassifier, build_classifier
    from peftops.bench.speed.inference import _export_sides

    model, tokenizer, _ = build_classifier(str(tiny_bert), len(LABELS))
    classifier = TextClassifier(model, tokenizer, {"labels": LABELS, "max_length": 32})
    sides: dict = {}
    sizes = _export_sides(classifier, tmp_path / "export", sides, batch=8)
    assert set(sides) == {"onnx_fp32", "onnx_int8"}
    assert set(sizes) == {"merged", "onnx_fp32", "onnx_int8"}
    assert sizes["onnx_int8"] < sizes["onnx_fp32"]
    texts = toy_split(16, seed=3).texts
    want = classifier.predict_proba(texts, 8)
    assert sides["onnx_fp32"](texts) == pytest.approx(want, abs=1e-5)


def test_scaling_replicates_the_data_into_distinct_rows_that_pass_validation():
    """Plain copies are duplicates, which the suite rightly fails (the scaling row once timed
    that failure); the scaled frames keep rows, labels and lengths but make every text
    distinct, so validation passes at 10x and its cost is measured on work that succeeds."""
    import pandas as pd

    from components.config import ValidationConfig
    from components.validation import validate_splits
    from peftops.bench.speed.scaling import scaled_frames

    def split(name: str, n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "text": [f"{name} message number {i} about {LABELS[i % 4]}" for i in range(n)],
                "label": [LABELS[i % 4] for i in range(n)],
            }
        )

    frames = {"train": split("train", 80), "validation": split("val", 24), "test": split("t", 24)}

    def validate(scaled: dict) -> bool:
        return validate_splits(
            scaled,
            text_column="text",
            label_column="label",
            labels=LABELS,
            config=ValidationConfig(),
            suite_name="scaling-test",
        ).success

    assert validate(frames)
    assert not validate({s: pd.concat([f] * 10, ignore_index=True) for s, f in frames.items()})
    scaled = scaled_frames(frames, 10, "text")
    for name, frame in frames.items():
        assert len(scaled[name]) == 10 * len(frame)
        assert scaled[name]["text"].is_unique
        assert (scaled[name]["label"].to_numpy() == list(frame["label"]) * 10).all()
    assert (scaled["train"]["text"][:80] == frames["train"]["text"]).all()  # copy 0 unchanged
    assert validate(scaled)


def test_bare_causal_lm_loop_trains_with_either_loss(tiny_causal_lm):
    from transformers import AutoTokenizer

    from peftops.bench.speed.gen_speed import bare_causal_loop
    from peftops.bench.speed.generative import synthetic_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    rows = [(r.input_ids, r.labels) for r in synthetic_rows(6, 24, seed=0, vocab=len(tokenizer))]
    rows[0] = (rows[0][0][:16], rows[0][1][:16])  # one shorter row: padding is exercised
    for trained_only in (True, False):
        samples, wall, cpu = bare_causal_loop(
            str(tiny_causal_lm),
            ["q_proj", "v_proj"],
            rows,
            pad_id=tokenizer.pad_token_id,
            batch_size=4,
            seed=0,
            lr=1e-3,
            weight_decay=0.01,
            warmup_ratio=0.1,
            r=4,
            alpha=8,
            dropout=0.0,
            trained_only=trained_only,
        )
        assert samples == 6 and wall > 0 and cpu > 0


def test_generative_memory_child_measures_the_training_phase(tiny_causal_lm):
    """One side of `gen_memory` in this process on a tiny causal LM: the peak is read after
    the high-water mark was reset past the load, and the two methods train what they say."""
    from peftops.bench.speed.generative import TRAINED_SHARE, gen_memory_child, synthetic_rows

    rows = synthetic_rows(3, 40, seed=0)
    assert {len(r.input_ids) for r in rows} == {40}
    assert all(r.trainable == int(40 * TRAINED_SHARE) for r in rows)
    lora = gen_memory_child("lora", 40, "best", 1, model=str(tiny_causal_lm))
    full = gen_memory_child("full", 40, "chunked", 1, model=str(tiny_causal_lm))
    for side in (lora, full):
        assert side["peak_reset_after_load"] is True
        assert side["peak_rss_mb"] >= side["rss_after_load_mb"] > 0
        assert side["precision"] == "bf16"
    assert 0 < lora["trainable_params"] < full["trainable_params"] == full["total_params"]


def test_generative_and_distributed_benchmarks_run_only_when_named(monkeypatch):
    """SmolLM2 on CPU takes tens of minutes, process start-ups minutes: `bench speed --quick`
    keeps its budget by leaving gen_* and distributed out unless `--only` names them."""
    import torch

    threads = torch.get_num_threads()
    calls: list[str] = []
    for name in speed.BENCHMARKS:
        monkeypatch.setitem(speed.RUNNERS, name, lambda ctx, name=name: calls.append(name))
    try:
        speed.run_speed_benchmark(quick=True, threads=1)
        on_request = [n for n in speed.BENCHMARKS if n.startswith("gen_") or n == "distributed"]
        assert calls and calls == [n for n in speed.BENCHMARKS if n not in on_request]
        calls.clear()
        only = ["gen_memory", "scaling", "distributed"]
        speed.run_speed_benchmark(quick=True, only=only, threads=1)
        assert calls == ["scaling", "distributed", "gen_memory"]
    finally:
        torch.set_num_threads(threads)


def test_gen_throughput_runs_on_the_model_named_on_the_command_line(tiny_causal_lm, capsys):
    """`bench speed --gen-model FOLDER` (how scripts/gpu_bench.sh measures another base): the
    pipeline's causal-LM step and the bare loop both train that model, and the rows say so."""
    import json

    from typer.testing import CliRunner

    from peftops.cli import app

    result = CliRunner().invoke(
        app,
        [
            "bench",
            "speed",
            "--quick",
            "--only",
            "gen_throughput",
            "--threads",
            "1",
            "--gen-model",
            str(tiny_causal_lm),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    names = {row["benchmark"] for row in rows}
    assert {"gen_training_throughput", "gen_training_throughput_vs_hf_loss"} <= names, rows
    for row in rows:
        assert "error" not in row, row
        assert row["model"] == str(tiny_causal_lm)
        assert row["value"] > 0 and row["baseline_value"] > 0
