"""Every method the classifier offers trains a causal LM too (or is refused before training
with a message), through the same selection and the same loop's loss."""

from __future__ import annotations

from typing import get_args

import pytest
import torch

from components.config import MethodName, apply_overrides, load_preset
from components.methods import MethodError

# every method but those a causal LM cannot take here (tested below): QLoRA needs CUDA,
# BitFit needs bias terms (Llama has none), head_only a classification head
METHODS = [m for m in get_args(MethodName) if m not in ("qlora", "bitfit", "head_only")]


def _batch(tokenizer):
    from components.generative.templating import collate, encode_chat

    conversations = [
        [{"role": "user", "content": "card gone"}, {"role": "assistant", "content": "block it"}],
        [{"role": "user", "content": "where is my refund"}, {"role": "assistant", "content": "ok"}],
    ]
    return collate([encode_chat(tokenizer, c, 96) for c in conversations], 0)


@pytest.mark.parametrize("name", METHODS)
def test_each_method_trains_a_causal_lm(tiny_causal_lm, name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.generative.bundle import CausalLM, trained_targets
    from components.generative.decoding import sequence_nll
    from components.selection import select_parameters
    from components.selection.apply import apply_selection

    extra = ["method.r=32"] if name == "vera" else []
    config = apply_overrides(
        load_preset("finance-assistant"),
        # attention: the default a method's implied strategy may replace
        [
            f"model.base_model={tiny_causal_lm}",
            "selection.strategy=attention",
            f"method.name={name}",
            *extra,
        ],
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    model = CausalLM(AutoModelForCausalLM.from_pretrained(tiny_causal_lm))
    selection = select_parameters(
        model.backbone, config.selection, config.method, None, max_length=96, proxy=None
    )
    model = apply_selection(model, selection, config.method, total_steps=10)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and len(trainable) < len(list(model.parameters()))
    batch = _batch(tokenizer)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    logits = model.trained_logits(batch["input_ids"], batch["attention_mask"], batch["labels"])
    loss = torch.nn.functional.cross_entropy(logits, trained_targets(batch["labels"]))
    loss.backward()
    optimizer.step()
    after = dict(model.named_parameters())
    changed = [n for n, before in trainable.items() if not torch.equal(after[n], before)]
    assert changed, f"{name}: no trainable tensor moved"
    # validation and evaluation score the answers on the trained positions alone (prompt
    # tuning's virtual tokens left out): the summed NLL is transformers' / peft's own mean
    # loss over the same tokens times their count, in eval mode
    model.eval()
    with torch.no_grad():
        expected = model.backbone(**batch).loss
    total, count = sequence_nll(model, [batch])
    assert count == len(trained_targets(batch["labels"]))
    assert total == pytest.approx(float(expected) * count, rel=1e-5)


def test_methods_a_causal_lm_cannot_take_are_refused_before_training(tiny_causal_lm):
    from transformers import AutoModelForCausalLM

    from components.config import ConfigError
    from components.objectives import objective_for
    from components.selection import select_parameters

    with pytest.raises(ConfigError, match="head"):
        apply_overrides(load_preset("finance-assistant"), ["method.name=head_only"])
    overrides = [
        f"model.base_model={tiny_causal_lm}",
        "selection.strategy=attention",
        "method.name=bitfit",
    ]
    config = apply_overrides(load_preset("finance-assistant"), overrides)
    backbone = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    with pytest.raises(MethodError, match="no bias"):  # Llama has no bias terms
        select_parameters(backbone, config.selection, config.method, None, max_length=96)
    if not torch.cuda.is_available():
        qlora = apply_overrides(config, ["method.name=qlora", "selection.strategy=attention"])
        with pytest.raises(MethodError, match="CUDA"):
            objective_for(qlora).select(None, None, qlora)
