"""Selection strategies on BERT-style and Llama-style module names, and `auto`."""

import numpy as np
import pytest
import torch

from components.batching import encode, iter_batches
from components.config import MethodConfig, SelectionConfig
from components.methods import MethodError
from components.modeling import build_classifier, count_parameters
from components.selection import (
    ModuleInfo,
    SelectionError,
    adapter_cost,
    allocate_ranks,
    apply_selection,
    discover_modules,
    importance_scores,
    importance_table,
    run_selection,
    save_selection_plot,
    select_parameters,
    selection_tags,
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
    path, kind = tiny
    for strategy, method in [
        ("attention", "lora"),
        ("all_linear", "rslora"),
        ("all_linear", "dora"),
        ("attention", "adalora"),
        ("all_linear", "ia3"),
        ("all_linear", "loha"),
        ("all_linear", "lokr"),
        ("all_linear", "vera"),
        ("attention", "prompt_tuning"),
        ("attention", "prefix_tuning"),
        ("bias_only", "full"),
        ("top_n_layers", "full"),
        ("head_only", "full"),
    ]:
        model, _, _ = build_classifier(str(path), 4)
        cfg, meth = SelectionConfig(strategy=strategy), MethodConfig(name=method)
        if kind == "llama" and strategy == "bias_only":  # Llama has no biases: refused
            with pytest.raises(MethodError, match="no bias terms"):
                select_parameters(model.backbone, cfg, meth)
            continue
        sel = select_parameters(model.backbone, cfg, meth)
        model = apply_selection(model, sel, meth, total_steps=10)
        trainable, _ = count_parameters(model)
        head = sum(p.numel() for p in model.head.parameters())
        assert trainable - head == sel.estimated_trainable, (strategy, method)
        assert sum(r["trainable"] for r in sel.layer_table) == sel.estimated_trainable or (
            method.endswith("_tuning")  # virtual tokens belong to no module
        )


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


def _auto(path, budget=0.005, **overrides):
    torch.manual_seed(0)
    model, batches = _calibration(path)
    cfg = SelectionConfig(strategy="auto", budget=budget, **overrides)
    meth = MethodConfig(r=4)

    def importance(modules):
        return importance_table(model, modules, batches)

    return model, select_parameters(model.backbone, cfg, meth, importance), meth


def test_auto_records_both_measures_per_module_and_per_layer(tiny):
    path, _ = tiny
    _, sel, _ = _auto(path)
    for row in sel.table:
        assert row["grad_x_weight"] >= 0 and row["fisher"] >= 0
        assert row["score"] == row["grad_x_weight"]  # the configured measure chooses
    assert any(row["grad_x_weight"] != row["fisher"] for row in sel.table)
    assert sel.importance == "grad_x_weight"
    assert [r["layer"] for r in sel.layer_table] == [0, 1]
    for layer in sel.layer_table:
        rows = [r for r in sel.table if r["layer"] == layer["layer"]]
        assert layer["modules"] == len(rows)
        assert layer["chosen"] == sum(r["chosen"] for r in rows)
        assert layer["fisher"] == pytest.approx(sum(r["fisher"] for r in rows))
        assert layer["grad_x_weight"] == pytest.approx(sum(r["grad_x_weight"] for r in rows))
    assert sum(r["trainable"] for r in sel.layer_table) == sel.estimated_trainable


def test_rank_allocation_follows_the_scores_under_the_budget():
    modules = [ModuleInfo(f"layers.{i}.q", i, "attention", 64, 64, 4096) for i in range(6)]
    scores = {m.name: s for m, s in zip(modules, [0.1, 5.0, 1.0, 2.0, 0.5, 3.0], strict=True)}
    meth = MethodConfig(r=8)
    budget = sum(adapter_cost(m, meth) for m in modules)  # what rank 8 everywhere costs
    ranks = allocate_ranks(modules, scores, meth, budget)
    assert sum(adapter_cost(m, meth, ranks[m.name]) for m in modules) <= budget
    by_score = [ranks[name] for name in sorted(scores, key=scores.get)]
    assert by_score == sorted(by_score) and by_score[0] < 8 < by_score[-1]
    assert all(1 <= r <= 32 for r in ranks.values())


def test_auto_gives_lora_a_rank_pattern_that_peft_builds(tiny):
    path, _ = tiny
    model, sel, meth = _auto(path, budget=0.01)
    assert sel.rank_pattern and set(sel.rank_pattern) == set(sel.target_modules)
    assert len(set(sel.rank_pattern.values())) > 1
    budget = int(0.01 * sel.base_parameters)
    assert sel.budget_params == budget and sel.estimated_trainable <= budget
    chosen = [r for r in sel.table if r["chosen"]]
    assert {r["module"]: r["rank"] for r in chosen} == sel.rank_pattern
    ranks_by_score = [r["rank"] for r in sorted(chosen, key=lambda r: r["score"])]
    assert ranks_by_score[-1] == max(ranks_by_score) and ranks_by_score[0] == min(ranks_by_score)
    model = apply_selection(model, sel, meth)
    lookup = dict(model.backbone.named_modules())
    for name, rank in sel.rank_pattern.items():
        layer = lookup[f"base_model.model.{name}"]
        assert layer.lora_A["default"].out_features == rank
        assert layer.scaling["default"] == pytest.approx(meth.alpha / meth.r)  # via alpha_pattern
    trainable, _ = count_parameters(model)
    assert trainable - sum(p.numel() for p in model.head.parameters()) == sel.estimated_trainable


def test_absolute_budget_overrides_the_fraction(tiny_bert):
    _, sel, _ = _auto(tiny_bert, budget=0.5, budget_params=600, allocate_ranks=False)
    assert sel.budget_params == 600
    assert len(sel.target_modules) == 2 and sel.estimated_trainable <= 600  # 256 per module
    assert not sel.rank_pattern


def test_proxy_runs_keep_the_candidate_with_the_lowest_validation_loss(tiny_bert):
    torch.manual_seed(0)
    model, batches = _calibration(tiny_bert)
    cfg = SelectionConfig(strategy="auto", budget=0.005, proxy_candidates=4)
    seen = []

    def proxy(candidate):  # a stand-in validation loss: the more modules, the better
        seen.append(candidate)
        return 10.0 - len(candidate.target_modules) + 0.001 * candidate.estimated_trainable

    sel = select_parameters(
        model.backbone,
        cfg,
        MethodConfig(r=4),
        lambda modules: importance_table(model, modules, batches),
        proxy=proxy,
    )
    assert [c["name"] for c in sel.candidates][:2] == ["grad_x_weight+ranks", "fisher"]
    assert 2 <= len(sel.candidates) <= 4 and len(seen) == len(sel.candidates)
    best = min(range(len(seen)), key=lambda i: sel.candidates[i]["val_loss"])
    assert [c["chosen"] for c in sel.candidates] == [i == best for i in range(len(seen))]
    assert sel.target_modules == seen[best].target_modules
    assert sel.estimated_trainable == seen[best].estimated_trainable
    assert selection_tags(sel)["selection.proxy_winner"] == sel.candidates[best]["name"]


def test_real_proxy_runs_score_candidates_on_the_validation_split(tiny_llama):
    from components.config import PipelineConfig, apply_overrides
    from components.examples import TextSplit

    config = apply_overrides(
        PipelineConfig(),
        [
            f"model.base_model={tiny_llama}",
            "model.head_init=random",
            "selection.strategy=auto",
            "selection.proxy_steps=2",
            "selection.proxy_candidates=2",
            "training.batch_size=8",
            "training.learning_rate=0.01",
        ],
    )
    train, val = TextSplit(TEXTS, LABELS), TextSplit(TEXTS[:8], LABELS[:8])
    with pytest.raises(SelectionError, match="validation"):
        run_selection(config, train, 4)
    sel = run_selection(config, train, 4, validation=val)
    assert len(sel.candidates) == 2
    losses = [c["val_loss"] for c in sel.candidates]
    assert all(np.isfinite(losses)) and losses[0] != losses[1]
    assert sel.candidates[int(np.argmin(losses))]["chosen"]


def test_selection_plot_is_a_png_and_tags_are_strings(tiny, tmp_path):
    path, _ = tiny
    _, sel, _ = _auto(path)
    out = save_selection_plot(sel, tmp_path / "plots" / "selection.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, _, _ = build_classifier(str(path), 4)
    plain = select_parameters(model.backbone, SelectionConfig(), MethodConfig())
    assert save_selection_plot(plain, tmp_path / "plain.png").read_bytes()[:4] == b"\x89PNG"
    tags = selection_tags(sel)
    assert tags["selection.strategy"] == "auto" and tags["selection.importance"] == "grad_x_weight"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())


def test_methods_imports_only_the_leaf_types_and_every_export_resolves():
    """No circle: `components.methods` needs only `components.selection.types`."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, components.methods\n"
        "print(sorted(k for k in sys.modules if k.startswith('components.selection')))\n"
        "import components.selection as s\n"
        "assert sorted(s.__all__) == sorted(s._HOME), 'exports and their homes disagree'\n"
        "assert all(getattr(s, n) is not None for n in s.__all__)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True
    )
    assert out.stdout.split("\n")[0] == "['components.selection', 'components.selection.types']"


class _Bare(torch.nn.Module):
    """A backbone wrapper with a head of no parameters, or none at all (like a causal LM's)."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        if head is not None:
            self.head = head

    def forward(self, input_ids, attention_mask):
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _hidden_energy(model, batch):  # a stand-in objective that needs no labels
    return model(batch["input_ids"], batch["attention_mask"]).pow(2).mean()


@pytest.mark.parametrize("head", [None, torch.nn.Identity()], ids=["no_head", "empty_head"])
def test_a_loss_fn_scores_and_proxies_a_model_without_a_trainable_head(tiny_llama, head):
    from components.config import PipelineConfig
    from components.selection import classification_loss, proxy_validation_loss

    classifier, batches = _calibration(tiny_llama)
    modules = discover_modules(classifier.backbone)
    torch.manual_seed(0)
    default = importance_table(classifier, modules, batches)
    torch.manual_seed(0)
    assert importance_table(classifier, modules, batches, loss_fn=classification_loss) == default

    model = _Bare(classifier.backbone, head)
    scores = importance_table(model, modules, batches, loss_fn=_hidden_energy)
    assert max(scores["fisher"].values()) > 0
    config = PipelineConfig()
    cfg = SelectionConfig(strategy="auto", budget=0.01)
    sel = select_parameters(model.backbone, cfg, config.method, lambda _: scores)
    loss = proxy_validation_loss(model, sel, config, batches[:1], batches, loss_fn=_hidden_energy)
    assert np.isfinite(loss) and loss > 0
    model = apply_selection(model, sel, config.method)
    assert count_parameters(model)[0] == sel.estimated_trainable
