"""The training loop: it learns, checkpoints every epoch, resumes exactly, and LP-FT starts
from the probe."""

import json
import shutil

import numpy as np
import pytest

from components.baseline import embed_texts, fit_probe, probe_predict, run_baseline
from components.batching import batch_order, encode, iter_batches
from components.config import apply_overrides, load_preset
from components.modeling import build_classifier, load_bundle
from components.selection import run_selection
from components.training import train_classifier
from toy_data import LABELS, toy_split


@pytest.fixture()
def setup(tiny_bert):
    config = apply_overrides(
        load_preset("custom"),
        [
            f"model.base_model={tiny_bert}",
            "model.head_init=random",
            "training.epochs=3",
            "training.batch_size=8",
            "training.learning_rate=0.01",
            "training.head_learning_rate=0.05",
            f"data.labels={json.dumps(LABELS)}",
        ],
    )
    return config, toy_split(64, 0), toy_split(16, 1)


def test_training_learns_checkpoints_and_saves_the_best_epoch(setup, tmp_path):
    config, train, val = setup
    selection = run_selection(config, train, len(LABELS))
    seen = []
    result = train_classifier(
        config, selection, train, val, LABELS, tmp_path, on_epoch_end=seen.append
    )
    assert [h["epoch"] for h in seen] == [1, 2, 3]
    assert seen[-1]["train_loss"] < seen[0]["train_loss"]
    assert max(h["val_accuracy"] for h in seen) > 0.5  # four classes: chance is 0.25
    for epoch in (1, 2, 3):
        folder = tmp_path / "checkpoints" / f"epoch-{epoch}"
        assert (folder / "trainable.safetensors").is_file() and (folder / "state.json").is_file()
    best = max(seen, key=lambda h: (h["val_macro_f1"], -h["val_loss"]))
    assert result.best_epoch == best["epoch"]
    clf = load_bundle(result.bundle_dir)
    predicted = clf.predict(val.texts)
    acc = np.mean([LABELS.index(p) == t for p, t in zip(predicted, val.label_ids, strict=True)])
    assert acc == pytest.approx(best["val_accuracy"])
    assert 0 < result.trainable_params < result.total_params


def test_resume_from_a_checkpoint_matches_an_uninterrupted_run(setup, tmp_path):
    config, train, val = setup
    selection = run_selection(config, train, len(LABELS))
    full = train_classifier(config, selection, train, val, LABELS, tmp_path / "a")
    # an interrupted run: only epoch 1 finished before it died
    shutil.copytree(
        tmp_path / "a" / "checkpoints" / "epoch-1", tmp_path / "b" / "checkpoints" / "epoch-1"
    )
    resumed = train_classifier(config, selection, train, val, LABELS, tmp_path / "b")
    assert resumed.resumed_from_epoch == 1
    for a, b in zip(full.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"])


def test_probe_initialised_head_reproduces_the_probe(tiny_bert):
    train, test = toy_split(48, 0), toy_split(16, 1)
    baseline = run_baseline(str(tiny_bert), "mean", 32, LABELS, train, test)
    assert baseline.metrics["accuracy"] == pytest.approx(
        np.mean(np.array(baseline.test_predictions) == np.array(test.label_ids))
    )
    model, tokenizer, _ = build_classifier(str(tiny_bert), len(LABELS), "mean", baseline.probe)
    features = embed_texts(model, tokenizer, test.texts, 32)
    data = encode(tokenizer, test.texts, 32)
    logits = np.zeros((len(test), len(LABELS)))
    for batch in iter_batches(data, 8, tokenizer.pad_token_id):
        out = model(batch["input_ids"], batch["attention_mask"]).detach().numpy()
        logits[batch["index"].numpy()] = out
    np.testing.assert_array_equal(logits.argmax(1), probe_predict(baseline.probe, features))


def test_binary_probe_keeps_both_classes():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(-1, 0.3, (20, 4)), rng.normal(1, 0.3, (20, 4))])
    y = np.array([0] * 20 + [1] * 20)
    probe = fit_probe(x, y, 2)
    assert (probe_predict(probe, x) == y).mean() == 1.0


def test_length_grouped_batches_cover_every_example_once():
    lengths = list(np.random.default_rng(0).integers(1, 60, 203))
    batches = batch_order(lengths, 16, shuffle=True, seed=3, group_by_length=True)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(203))
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    plain = batch_order(lengths, 16, shuffle=True, seed=3, group_by_length=False)
    assert spread < np.mean([np.ptp([lengths[i] for i in b]) for b in plain])
    assert batch_order([], 16, shuffle=True, seed=3, group_by_length=True) == []  # no rows


def test_training_key_changes_with_data_and_config_only(setup):
    from components.training import training_key

    config, train, val = setup
    key = training_key(config, train, val)
    assert key == training_key(config, train, val)
    moved = config.model_copy(update={"data": config.data.model_copy(update={"path": "elsewhere"})})
    assert training_key(moved, train, val) == key  # where the data lives is not what it is
    faster = config.model_copy(
        update={"training": config.training.model_copy(update={"learning_rate": 0.5})}
    )
    assert training_key(faster, train, val) != key
    assert training_key(config, toy_split(64, 7), val) != key
    leaner = apply_overrides(config, ["training.gradient_checkpointing=true"])
    assert training_key(leaner, train, val) == key  # same result, less memory


@pytest.mark.parametrize("model_fixture", ["tiny_bert", "tiny_llama"])
def test_gradient_checkpointing_recomputes_layers_and_trains_the_same(
    model_fixture, setup, tmp_path, request
):
    from components.modeling import enable_gradient_checkpointing
    from components.selection import apply_selection

    base = request.getfixturevalue(model_fixture)
    config, train, val = setup
    config = apply_overrides(config, [f"model.base_model={base}", "training.epochs=2"])
    selection = run_selection(config, train, len(LABELS))

    def layer_calls(checkpointing: bool) -> int:
        model, tokenizer, _ = build_classifier(str(base), len(LABELS))
        model = apply_selection(model, selection, config.method)
        if checkpointing:
            enable_gradient_checkpointing(model)
        model.train()
        layer = next(m for n, m in model.named_modules() if n.endswith(("layers.0", "layer.0")))
        attention = next(iter(layer.children()))  # the layer's own forward is what is wrapped
        calls = []
        attention.register_forward_hook(lambda *_: calls.append(1))
        enc = tokenizer(train.texts[:4], return_tensors="pt", padding=True)
        model(enc["input_ids"], enc["attention_mask"]).sum().backward()
        assert any(p.grad is not None for p in model.parameters() if p.requires_grad)
        return len(calls)

    assert layer_calls(False) == 1
    assert layer_calls(True) == 2  # recomputed in the backward pass

    plain = train_classifier(config, selection, train, val, LABELS, tmp_path / "plain")
    on = apply_overrides(config, ["training.gradient_checkpointing=true"])
    checkpointed = train_classifier(on, selection, train, val, LABELS, tmp_path / "on")
    for a, b in zip(plain.history, checkpointed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_training_uses_fast_dropout_on_cpu_when_turned_on(setup, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("fast_dropout acts on CPU only; CUDA training keeps torch's dropout")

    from components.dropout import FastDropout
    from components.training import place_for_training, training_key

    config, train, val = setup
    torch_dropout = apply_overrides(config, ["training.epochs=1"])
    config = apply_overrides(torch_dropout, ["training.fast_dropout=true"])
    assert not torch_dropout.training.fast_dropout  # the default: torch's dropout
    assert training_key(torch_dropout, train, val) != training_key(config, train, val)

    def dropouts(cfg) -> set[type]:
        model, _, _ = build_classifier(cfg.model.base_model, len(LABELS))
        assert place_for_training(model, cfg).type == "cpu"
        return {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0}

    assert dropouts(config) == {FastDropout}
    assert dropouts(torch_dropout) == {torch.nn.Dropout}

    selection = run_selection(config, train, len(LABELS))
    fast = train_classifier(config, selection, train, val, LABELS, tmp_path / "fast")
    again = train_classifier(config, selection, train, val, LABELS, tmp_path / "again")
    plain = train_classifier(torch_dropout, selection, train, val, LABELS, tmp_path / "torch")
    assert fast.history[0]["train_loss"] == again.history[0]["train_loss"]  # seeded
    assert fast.history[0]["train_loss"] != plain.history[0]["train_loss"]  # other masks


@pytest.mark.parametrize(
    ("device", "native", "precision", "expected"),
    [
        ("cuda", True, "auto", "bf16"),
        ("cuda", False, "auto", "fp16"),  # V100/T4: fp16 with loss scaling
        ("cpu", True, "auto", "bf16"),  # AMX
        ("cpu", False, "auto", "fp32"),
        ("mps", True, "auto", "fp32"),
        ("cpu", False, "bf16", "bf16"),  # asked for, even emulated
        ("cuda", False, "bf16", "bf16"),
        ("cuda", True, "fp32", "fp32"),
        ("cpu", True, "fp32", "fp32"),
    ],
)
def test_precision_auto_is_bf16_where_native_and_the_setting_wins(
    device, native, precision, expected
):
    from components.training import autocast_dtype, precision_name

    assert precision_name(autocast_dtype(device, native, precision)) == expected


def test_native_bf16_on_cpu_means_amx_and_is_false_where_torch_cannot_tell(monkeypatch):
    import torch

    from components.training import native_bf16

    for amx, expected in ((lambda: True, True), (lambda: False, False), (None, False)):
        native_bf16.cache_clear()
        if amx is None:  # a torch without the private check
            monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
        else:
            monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", amx)
        assert native_bf16("cpu") is expected
    native_bf16.cache_clear()
    assert native_bf16("mps") is False
    monkeypatch.undo()
    native_bf16.cache_clear()  # later tests see this machine's answer again


def test_training_in_bf16_autocasts_the_forward_and_keeps_fp32_weights(setup, tmp_path):
    import torch

    from components.training import autocast_for, grad_scaler, native_bf16, training_dtype

    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 4)
    with autocast_for(cpu, "bf16"):
        assert layer(torch.randn(2, 4)).dtype is torch.bfloat16
    with autocast_for(cpu, "fp32"):
        assert layer(torch.randn(2, 4)).dtype is torch.float32
    assert not grad_scaler(cpu, "bf16").is_enabled()  # bf16 needs no loss scaling

    config, train, val = setup
    bf16, fp32 = (
        apply_overrides(config, ["training.epochs=2", f"training.precision={p}"])
        for p in ("bf16", "fp32")
    )
    assert config.training.precision == "auto"
    amx = native_bf16("cpu")
    assert training_dtype(cpu, "auto") is (torch.bfloat16 if amx else None)
    selection = run_selection(bf16, train, len(LABELS))
    half = train_classifier(bf16, selection, train, val, LABELS, tmp_path / "bf16")
    full = train_classifier(fp32, selection, train, val, LABELS, tmp_path / "fp32")
    assert (half.precision, full.precision) == ("bf16", "fp32")
    assert half.history[-1]["train_loss"] < half.history[0]["train_loss"]
    assert half.history[0]["train_loss"] != full.history[0]["train_loss"]  # other arithmetic
    assert half.history[0]["train_loss"] == pytest.approx(full.history[0]["train_loss"], rel=0.05)
    clf = load_bundle(half.bundle_dir)
    assert {p.dtype for p in clf.model.parameters()} == {torch.float32}  # the bundle: fp32


def test_optimizer_step_reports_a_step_that_fp16_loss_scaling_skipped():
    """fp16 training (GPUs without bf16) scales the loss; a step whose gradients overflow is
    skipped, and AdaLoRA's budget update must skip it too (its scores read the gradients)."""
    import torch

    from components.training import optimizer_step

    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)  # enabled, as fp16 would have it
    scaler.scale((weight * 2).sum()).backward()
    assert optimizer_step(scaler, optimizer) is True
    assert torch.allclose(weight.detach(), torch.full((3,), 0.8))
    optimizer.zero_grad()

    scaler.scale((weight * float("inf")).sum()).backward()
    assert optimizer_step(scaler, optimizer) is False
    assert torch.allclose(weight.detach(), torch.full((3,), 0.8))  # not moved
    optimizer.zero_grad()

    off = torch.amp.GradScaler("cpu", enabled=False)  # bf16 and fp32: a pass-through
    (weight * 2).sum().backward()
    assert optimizer_step(off, optimizer) is True
    assert torch.allclose(weight.detach(), torch.full((3,), 0.6))


def test_the_probe_start_is_kept_when_no_epoch_beats_it(tiny_bert, tmp_path):
    """A fine-tuned model is only kept where it beats what it started from: with a learning
    rate that wrecks the model, the probe-initialised start (epoch 0) is what the bundle holds."""
    config = apply_overrides(
        load_preset("custom"),
        [
            f"model.base_model={tiny_bert}",
            "model.max_length=32",
            "training.epochs=2",
            "training.batch_size=8",
            "training.learning_rate=1.0",
            "training.head_learning_rate=1.0",
            "training.warmup_ratio=0",
            f"data.labels={json.dumps(LABELS)}",
        ],
    )
    train, val = toy_split(64, 0), toy_split(32, 1)
    baseline = run_baseline(str(tiny_bert), "mean", 32, LABELS, train, val)
    selection = run_selection(config, train, len(LABELS), baseline.probe)
    result = train_classifier(config, selection, train, val, LABELS, tmp_path, probe=baseline.probe)
    start = json.loads((tmp_path / "checkpoints" / "start" / "record.json").read_text())
    assert start["epoch"] == 0 and start["val_accuracy"] == pytest.approx(
        baseline.metrics["accuracy"]
    )
    assert all(h["val_macro_f1"] < start["val_macro_f1"] for h in result.history)
    assert result.best_epoch == 0
    predicted = load_bundle(result.bundle_dir).predict(val.texts)
    assert [LABELS.index(p) for p in predicted] == baseline.test_predictions


def test_the_loop_s_accelerator_follows_training_precision_run_after_run():
    """accelerate keeps one process-wide state; each run still gets its own precision."""
    import torch

    from components.training import make_accelerator

    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 4)
    for precision, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        accelerator = make_accelerator(cpu, precision)
        assert accelerator.device.type == "cpu" and accelerator.num_processes == 1
        with accelerator.autocast():
            assert layer(torch.randn(2, 4)).dtype is dtype
