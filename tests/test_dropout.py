"""FastDropout: torch's dropout semantics (rate, expectation, gradient, eval, seeding) with a
cheaper mask, swapped into the pipeline's models on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from components.dropout import FastDropout, keep_mask, use_fast_dropout


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_mask_drops_at_the_requested_rate_in_every_field(p):
    torch.manual_seed(0)
    keep, p_used = keep_mask((1000, 999), p)  # not a multiple of 4: the tail is cut off
    assert keep.shape == (1000, 999) and keep.dtype is torch.bool
    assert abs(p_used - p) <= 1 / 65536
    dropped = 1 - keep.float()
    # 999,000 draws: the standard error is at most 0.0005
    assert dropped.mean().item() == pytest.approx(p, abs=0.003)
    # each of the four 16-bit fields of a word is uniform, the top one included
    per_field = dropped.reshape(-1)[: 999_000 // 4 * 4].view(-1, 4).mean(0)
    assert torch.allclose(per_field, torch.full((4,), p), atol=0.006)
    # and neighbours are independent: P(both dropped) ~ p^2
    pairs = dropped.reshape(-1)[:-1] * dropped.reshape(-1)[1:]
    assert pairs.mean().item() == pytest.approx(p * p, abs=0.003)


def test_forward_backward_and_eval_match_dropout_semantics():
    torch.manual_seed(1)
    layer = FastDropout(0.1)
    x = torch.randn(64, 512, requires_grad=True)
    y = layer(x)
    kept = y != 0
    scale = y[kept] / x[kept]
    assert torch.allclose(scale, torch.full_like(scale, 1 / 0.9), rtol=1e-4)
    assert 0.08 < 1 - kept.float().mean().item() < 0.12
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)  # gradient flows only through kept elements
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.9), rtol=1e-4)
    # unbiased: the mean over many draws is the input
    torch.manual_seed(2)
    ones = torch.ones(200_000)
    assert layer(ones).mean().item() == pytest.approx(1.0, abs=0.01)
    layer.eval()
    assert layer(x) is x
    assert FastDropout(0.0).train()(x) is x


def test_masks_follow_torch_seeding():
    layer = FastDropout(0.3)
    x = torch.ones(1000)
    torch.manual_seed(7)
    a = layer(x)
    torch.manual_seed(7)
    assert torch.equal(layer(x), a)
    assert not torch.equal(layer(x), a)


def test_swaps_every_active_dropout_of_a_peft_model_and_trains(tiny_bert):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_bert)
    model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["query", "value"], lora_dropout=0.05)
    )
    before = [n for n, m in model.named_modules() if type(m) is nn.Dropout and m.p > 0]
    lora = [n for n in before if "lora_dropout" in n]
    assert len(lora) == 4  # 2 layers x (query, value)
    assert use_fast_dropout(model) == len(before)
    assert not any(type(m) is nn.Dropout and m.p > 0 for m in model.modules())
    swapped = dict(model.named_modules())
    assert all(isinstance(swapped[n], FastDropout) for n in before)
    assert swapped[lora[0]].p == 0.05
    assert use_fast_dropout(model) == 0  # idempotent

    mixed = nn.Sequential(nn.Dropout(0.1), nn.Dropout(1.0), nn.Dropout(0.2).eval())
    assert use_fast_dropout(mixed) == 2
    assert isinstance(mixed[0], FastDropout) and mixed[0].training
    assert type(mixed[1]) is nn.Dropout  # p=1 drops everything: torch's, exactly
    assert isinstance(mixed[2], FastDropout) and not mixed[2].training  # mode kept

    model.train()
    ids = torch.randint(1000, 2000, (4, 12))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    out.pow(2).mean().backward()
    # B starts at zero, so A's first gradient is zero too; B's is not
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        b = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert torch.equal(a, b)  # no dropout at inference
