"""Every method, one config switch each, on a BERT-style and a Llama-style model: it selects,
trains, saves a bundle and reloads with the same predictions; unsupported combinations are
refused before training."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from components.config import ConfigError, MethodConfig, PipelineConfig, apply_overrides
from components.methods import MethodError, peft_config
from components.modeling import build_classifier, load_bundle
from components.selection import Selection, apply_selection, run_selection, select_parameters
from components.training import train_classifier
from toy_data import LABELS, toy_split

METHODS = [
    "lora",
    "rslora",
    "dora",
    "adalora",
    "ia3",
    "loha",
    "lokr",
    "vera",
    "prompt_tuning",
    "prefix_tuning",
    "bitfit",
    "layer_freeze",
    "head_only",
    "full",
]
# (method, model) pairs refused on purpose, and what the message says
REFUSED = {("bitfit", "llama"): "no bias terms"}


def _config(path, *overrides: str) -> PipelineConfig:
    return apply_overrides(
        PipelineConfig(),
        [
            f"model.base_model={path}",
            "model.head_init=random",
            "model.max_length=32",
            "training.epochs=1",
            "training.batch_size=8",
            "training.learning_rate=0.01",
            "training.head_learning_rate=0.05",
            "method.r=4",
            "method.target_r=2",
            "method.num_virtual_tokens=4",
            f"data.labels={json.dumps(LABELS)}",
            *overrides,
        ],
    )


@pytest.mark.parametrize("kind", ["bert", "llama"])
@pytest.mark.parametrize("method", METHODS)
def test_method_trains_saves_and_reloads_with_identical_predictions(
    method, kind, tiny_bert, tiny_llama, tmp_path
):
    path = {"bert": tiny_bert, "llama": tiny_llama}[kind]
    # full: everything; ia3/vera on all linear layers (VeRA then spans unequal shapes)
    strategy = {"full": ["selection.strategy=all"]}.get(method, [])
    if method in ("ia3", "vera"):
        strategy = ["selection.strategy=all_linear"]
    config = _config(path, f"method.name={method}", *strategy)
    train, val = toy_split(24, 0), toy_split(8, 1)
    if (method, kind) in REFUSED:
        with pytest.raises(MethodError, match=REFUSED[method, kind]):
            run_selection(config, train, len(LABELS))
        return
    selection = run_selection(config, train, len(LABELS))
    result = train_classifier(config, selection, train, val, LABELS, tmp_path, resume=False)
    head = 32 * len(LABELS) + len(LABELS)  # the tiny models' hidden size is 32
    assert result.trainable_params - head == selection.estimated_trainable

    # the trained model, rebuilt from its checkpoint exactly as training initialised it
    torch.manual_seed(config.training.seed)
    model, tokenizer, _ = build_classifier(str(path), len(LABELS))
    model = apply_selection(model, selection, config.method, total_steps=3)
    initial = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trained = load_file(str(tmp_path / "checkpoints" / "epoch-1" / "trainable.safetensors"))
    model.load_state_dict(trained, strict=False)
    changed = [
        n for n in trained if not n.startswith("head.") and not (trained[n] == initial[n]).all()
    ]
    assert bool(changed) == (method != "head_only"), changed
    model.eval()
    enc = tokenizer(val.texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(model(enc["input_ids"], enc["attention_mask"]), -1).numpy()

    for merge in (False, True):
        clf = load_bundle(result.bundle_dir, merge=merge)
        np.testing.assert_allclose(clf.predict_proba(val.texts), expected, atol=1e-4)
    assert clf.manifest["method"] == method
    if method == "adalora":  # training called update_and_allocate: the ranks were pruned
        saved = json.loads((tmp_path / "bundle" / "adapter" / "adapter_config.json").read_text())
        assert saved["rank_pattern"]


def test_convenience_methods_imply_their_strategy_and_full_still_combines():
    implied = {"bitfit": "bias_only", "layer_freeze": "top_n_layers", "head_only": "head_only"}
    for name, strategy in implied.items():
        config = apply_overrides(PipelineConfig(), [f"method.name={name}"])
        assert config.selection.strategy == strategy
        same = apply_overrides(
            PipelineConfig(), [f"method.name={name}", f"selection.strategy={strategy}"]
        )
        assert same.selection.strategy == strategy
    with pytest.raises(ConfigError, match=r"implies selection.strategy='bias_only'"):
        apply_overrides(PipelineConfig(), ["method.name=bitfit", "selection.strategy=all_linear"])
    full = apply_overrides(PipelineConfig(), ["method.name=full", "selection.strategy=bias_only"])
    assert full.selection.strategy == "bias_only"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method.name=prompt_tuning", "selection.strategy=auto"], "nothing to choose"),
        (["method.name=adalora", "method.r=4", "method.target_r=8"], "target_r"),
        (["method.name=vera", "selection.strategy=head_only"], r"method\.name=full"),
    ],
)
def test_incoherent_method_configs_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(PipelineConfig(), overrides)


def test_prefix_tuning_needs_attention_with_a_cache():
    from transformers import DistilBertConfig, DistilBertModel

    backbone = DistilBertModel(
        DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    )
    with pytest.raises(MethodError, match="past_key_values"):
        select_parameters(backbone, PipelineConfig().selection, MethodConfig(name="prefix_tuning"))


def test_refusals_happen_at_selection_time(tiny_bert, tmp_path):
    # virtual tokens push the sequence past the model's positions
    config = _config(tiny_bert, "method.name=prompt_tuning", "method.num_virtual_tokens=120")
    with pytest.raises(MethodError, match="positions"):
        run_selection(config, toy_split(8, 0), len(LABELS))
    # AdaLoRA cannot schedule its rank budget without the training length
    model, _, _ = build_classifier(str(tiny_bert), 2)
    meth = MethodConfig(name="adalora")
    sel = select_parameters(model.backbone, PipelineConfig().selection, meth)
    with pytest.raises(MethodError, match="total_steps"):
        peft_config(sel, meth)
    with pytest.raises(MethodError, match="no peft config"):
        peft_config(sel, MethodConfig(name="full"))
    # what peft itself refuses (VeRA on an embedding) comes back as a MethodError
    bad = Selection("modules", "vera", ["embeddings.word_embeddings"])
    with pytest.raises(MethodError, match="peft cannot apply 'vera'"):
        apply_selection(model, bad, MethodConfig(name="vera"))


def test_prompt_tuning_pools_only_the_real_tokens(tiny_bert):
    from components.modeling import pool

    model, tokenizer, _ = build_classifier(str(tiny_bert), 2, "cls")
    meth = MethodConfig(name="prompt_tuning", num_virtual_tokens=3)
    sel = select_parameters(model.backbone, PipelineConfig().selection, meth)
    model = apply_selection(model, sel, meth).eval()
    enc = tokenizer(["short", "a somewhat longer text"], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model.backbone(**enc).last_hidden_state
        vec = model.embed(enc["input_ids"], enc["attention_mask"])
    assert states.size(1) == enc["input_ids"].size(1) + 3  # the virtual tokens come first
    torch.testing.assert_close(vec, pool(states[:, 3:], enc["attention_mask"], "cls"))
