"""The memory options of causal-LM training: the LM head and loss on trained positions only,
chunked (`generation.loss_chunk_tokens`), gradient checkpointing on the generative path, and
a frozen base held in bf16 (`training.frozen_precision`). Each must leave the loss and its
gradients as they were (within rounding), and still train."""

from __future__ import annotations

import pytest
import torch

from components.config import apply_overrides, load_preset


def _config(model, *overrides: str):
    return apply_overrides(
        load_preset("finance-assistant"),
        [
            f"model.base_model={model}",
            "selection.strategy=attention",
            "method.dropout=0",  # equal losses need equal (no) dropout masks
            "training.epochs=1",
            "training.batch_size=2",
            "evaluation.batch_size=2",
            *overrides,
        ],
    )


def _rows(tokenizer, n: int = 4):
    from components.generative.templating import encode_chat

    answers = ["block the card now", "the refund takes five days", "ok", "reset it in the app"]
    return [
        encode_chat(
            tokenizer,
            [
                {"role": "user", "content": f"question {i} about my account and card"},
                {"role": "assistant", "content": answers[i % 4]},
            ],
            96,
        )
        for i in range(n)
    ]


def _lora_model(model_dir, config):
    from transformers import AutoModelForCausalLM

    from components.generative.bundle import CausalLM
    from components.selection import select_parameters
    from components.selection.apply import apply_selection

    torch.manual_seed(0)
    model = CausalLM(AutoModelForCausalLM.from_pretrained(model_dir))
    selection = select_parameters(
        model.backbone, config.selection, config.method, None, max_length=96, proxy=None
    )
    model = apply_selection(model, selection, config.method, total_steps=10)
    for name, p in model.named_parameters():  # lora_B starts at zero: give the adapter a say
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    return model


def _loss_and_grads(model, batch, how: str, chunk: int = 0):
    from components.generative.bundle import trained_targets
    from tiny_models import reference_lm_loss

    model.zero_grad(set_to_none=True)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    if how == "full":  # every position's logits, masked afterwards
        loss = reference_lm_loss(model(ids, mask), labels)
    elif how == "trained":
        logits = model.trained_logits(ids, mask, labels)
        loss = torch.nn.functional.cross_entropy(logits.float(), trained_targets(labels))
    else:
        loss = model.trained_loss(ids, mask, labels, chunk)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def _batch(tokenizer):
    from components.generative.templating import collate

    return collate(_rows(tokenizer), tokenizer.pad_token_id)


@pytest.mark.parametrize("chunk", [1, 3, 10_000])
def test_trained_position_and_chunked_losses_equal_the_full_logits_loss(tiny_causal_lm, chunk):
    from transformers import AutoTokenizer

    config = _config(tiny_causal_lm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    model = _lora_model(tiny_causal_lm, config)
    batch = _batch(tokenizer)
    full, full_grads = _loss_and_grads(model, batch, "full")
    trained, trained_grads = _loss_and_grads(model, batch, "trained")
    chunked, chunked_grads = _loss_and_grads(model, batch, "chunked", chunk)
    assert full.item() > 1.0  # a random model: far from a trivial loss
    torch.testing.assert_close(trained, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)
    assert full_grads and set(chunked_grads) == set(full_grads)
    for name, grad in full_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(
            trained_grads[name], grad, rtol=1e-3, atol=1e-6
        )  # fp32 summation order
        torch.testing.assert_close(
            chunked_grads[name], grad, rtol=1e-3, atol=1e-6
        )  # fp32 summation order


def test_chunks_keep_fewer_vocabulary_wide_tensors_for_backward(tiny_causal_lm):
    """What chunking is for: the tensors autograd keeps for backward no longer include
    every trained position's logits (a chunk's are recomputed)."""
    from transformers import AutoTokenizer

    config = _config(tiny_causal_lm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    model = _lora_model(tiny_causal_lm, config)
    batch = _batch(tokenizer)
    vocab = model.backbone.get_base_model().config.vocab_size

    def saved_vocab_bytes(chunk: int) -> int:
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.dim() and t.shape[-1] == vocab and t.dim() == 2 and t.shape[0] != vocab:
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            if chunk:
                model.trained_loss(
                    batch["input_ids"], batch["attention_mask"], batch["labels"], chunk
                )
            else:
                _loss_and_grads(model, batch, "trained")
        return sum(seen.values())

    assert saved_vocab_bytes(0) > 0
    assert saved_vocab_bytes(4) == 0  # only the chunk's inputs are kept; logits recomputed


def test_gradient_checkpointing_on_a_causal_lm_keeps_the_gradients_and_saves_less(
    tiny_causal_lm,
):
    from transformers import AutoTokenizer

    from components.modeling import enable_gradient_checkpointing

    config = _config(tiny_causal_lm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    batch = _batch(tokenizer)

    def run(checkpointing: bool) -> tuple[torch.Tensor, dict, int]:
        model = _lora_model(tiny_causal_lm, config)
        model.train()
        if checkpointing:
            enable_gradient_checkpointing(model)
        saved = [0]

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss, grads = _loss_and_grads(model, batch, "chunked", 8)
        return loss, grads, saved[0]

    loss, grads, saved = run(False)
    ck_loss, ck_grads, ck_saved = run(True)
    torch.testing.assert_close(ck_loss, loss)
    for name, grad in grads.items():
        torch.testing.assert_close(
            ck_grads[name], grad, rtol=1e-3, atol=1e-6
        )  # fp32 summation order
    assert ck_saved < saved / 2, (ck_saved, saved)


def test_fit_trains_a_causal_lm_with_every_memory_option(tiny_causal_lm, tmp_path):
    """Checkpointing, chunked loss and a bf16 frozen base together, through the pipeline's
    recipe and loop: the adapter moves, the loss stays finite, and the caller gets its
    frozen weights back in fp32."""
    from transformers import AutoTokenizer

    from components.objectives.generation import causal_lm_recipe
    from components.training import fit

    config = _config(
        tiny_causal_lm,
        "training.gradient_checkpointing=true",
        "generation.loss_chunk_tokens=4",
        "training.precision=bf16",
        "training.frozen_precision=bf16",
        "training.learning_rate=0.01",
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    model = _lora_model(tiny_causal_lm, config)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    dtypes: list[set] = []
    recipe = causal_lm_recipe(model, _rows(tokenizer), _rows(tokenizer, 2), 0, config)
    score = recipe.score

    def spying(m, indices):  # what the weights are while validation runs
        dtypes.append({p.dtype for p in m.parameters() if not p.requires_grad})
        return score(m, indices)

    recipe.score = spying
    trained, result = fit(config, recipe, tmp_path, resume=False)
    assert dtypes == [{torch.bfloat16}]
    assert torch.isfinite(torch.tensor(result.history[-1]["train_loss"]))
    assert torch.isfinite(torch.tensor(result.history[-1]["val_loss"]))
    after = dict(trained.named_parameters())
    assert any(not torch.equal(after[n], b) for n, b in before.items())
    assert {p.dtype for p in trained.parameters()} == {torch.float32}


def test_a_bf16_frozen_base_needs_bf16_autocast(tiny_causal_lm, tmp_path):
    from transformers import AutoTokenizer

    from components.objectives.generation import causal_lm_recipe
    from components.training import fit

    config = _config(tiny_causal_lm, "training.precision=fp32", "training.frozen_precision=bf16")
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    model = _lora_model(tiny_causal_lm, config)
    recipe = causal_lm_recipe(model, _rows(tokenizer), _rows(tokenizer, 2), 0, config)
    with pytest.raises(ValueError, match=r"training\.precision=bf16"):
        fit(config, recipe, tmp_path, resume=False)
