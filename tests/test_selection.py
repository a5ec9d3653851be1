"""Selection strategies on BERT-style and Llama-style module names, and `auto`."""

import pytest
import torch

from components.batching import encode, iter_batches
from components.config import MethodConfig, SelectionConfig
from components.modeling import build_classifier, count_parameters
from components.selection import (
    SelectionError,
    apply_selection,
    discover_modules,
    importance_scores,
    select_parameters,
)

TEXTS = ["card stolen", "transfer late", "refund please", "cannot log in"] * 4
LABELS = [0, 1, 2, 3] * 4


@pytest.fixture(params=["bert", "llama"])
def tiny(request, tiny_bert, tiny_llama):
    return {"bert": tiny_bert, "llama": tiny_llama}[request.param], request.param


def test_discovery_finds_attention_and_feed_forward_per_layer(tiny):
    path, kind = tiny
    model, _, _ = build_classifier(str(path), 4)
    modules = discover_modules(model.backbone)
    kinds = {m.kind for m in modules}
    assert kinds == {"attention", "feed_forward"}
    assert {m.layer for m in modules} == {0, 1}
    attention = [m.name for m in modules if m.kind == "attention"]
    expected = ("query", "key", "value") if kind == "bert" else ("q_proj", "k_proj", "v_proj")
    assert all(any(e in name for name in attention) for e in expected)
    assert not any("pooler" in m.name for m in modules)


@pytest.mark.parametrize(
    ("strategy", "method", "modules_per_layer"),
    [("attention", "lora", 4), ("all_linear", "lora", None), ("top_n_layers", "lora", None)],
)
def test_adapter_strategies_choose_modules(tiny, strategy, method, modules_per_layer):
    path, _ = tiny
    model, _, _ = build_classifier(str(path), 4)
    sel = select_parameters(
        model.backbone,
        SelectionConfig(strategy=strategy, top_n_layers=1),
        MethodConfig(name=method),
    )
    chosen = [row for row in sel.table if row["chosen"]]
    assert [r["module"] for r in chosen] == sel.target_modules
    if modules_per_layer:
        assert len(sel.target_modules) == 2 * modules_per_layer
    if strategy == "top_n_layers":
        assert {r["layer"] for r in chosen} == {1}
    if strategy == "all_linear":
        assert len(sel.target_modules) == len(sel.table)


def test_estimates_match_the_trainable_count_after_applying(tiny):
    path, _ = tiny
    for strategy, method in [
        ("attention", "lora"),
        ("bias_only", "full"),
        ("top_n_layers", "full"),
    ]:
        model, _, _ = build_classifier(str(path), 4)
        cfg, meth = SelectionConfig(strategy=strategy), MethodConfig(name=method)
        sel = select_parameters(model.backbone, cfg, meth)
        model = apply_selection(model, sel, meth)
        trainable, _ = count_parameters(model)
        head = sum(p.numel() for p in model.head.parameters())
        assert trainable - head == sel.estimated_trainable, (strategy, method)


def test_head_only_trains_only_the_head(tiny_bert):
    model, _, _ = build_classifier(str(tiny_bert), 4)
    meth = MethodConfig(name="full")
    sel = select_parameters(model.backbone, SelectionConfig(strategy="head_only"), meth)
    model = apply_selection(model, sel, meth)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names == ["head.weight", "head.bias"]


def test_explicit_module_regexes_and_no_match_error(tiny_bert):
    model, _, _ = build_classifier(str(tiny_bert), 4)
    meth = MethodConfig()
    sel = select_parameters(
        model.backbone, SelectionConfig(strategy="modules", modules=[r"layer\.1\..*value"]), meth
    )
    assert sel.target_modules == ["encoder.layer.1.attention.self.value"]
    with pytest.raises(SelectionError, match="matched no module"):
        select_parameters(
            model.backbone, SelectionConfig(strategy="modules", modules=["zzz"]), meth
        )


def _calibration(path):
    model, tokenizer, _ = build_classifier(str(path), 4)
    data = encode(tokenizer, TEXTS, 16, LABELS)
    return model, list(iter_batches(data, 8, tokenizer.pad_token_id))


@pytest.mark.parametrize("measure", ["grad_x_weight", "fisher"])
def test_auto_scores_every_module_and_respects_the_budget(tiny, measure):
    path, _ = tiny
    torch.manual_seed(0)
    model, batches = _calibration(path)
    cfg = SelectionConfig(strategy="auto", budget=0.005, importance=measure)
    meth = MethodConfig(r=4)

    def importance(modules):
        return importance_scores(model, modules, batches, measure)

    sel = select_parameters(model.backbone, cfg, meth, importance)
    scores = [row["score"] for row in sel.table]
    assert all(s is not None and s >= 0 for s in scores) and max(scores) > 0
    assert 0 < sel.estimated_trainable <= 0.005 * sel.base_parameters
    assert sel.target_modules
    # parameters stay frozen/unfrozen as they were before scoring
    assert all(p.requires_grad for p in model.parameters())


def test_auto_without_scores_is_an_error(tiny_bert):
    model, _, _ = build_classifier(str(tiny_bert), 4)
    with pytest.raises(SelectionError, match="importance"):
        select_parameters(model.backbone, SelectionConfig(strategy="auto"), MethodConfig())
