"""Generative speed: the pipeline's causal-LM training step against a bare torch + peft loop
(`gen_throughput`), and generation tokens/s of the registered pyfunc against raw
`model.generate`, batched and one prompt at a time, and of a LoRA merged into the base
against unmerged (`gen_inference`). SmolLM2-135M, the finance-assistant demo data."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from peftops.bench.speed.generative import gen_config
from peftops.bench.speed.harness import (
    REPO,
    Context,
    Measure,
    alternate,
    comparison,
    log,
    median,
    rate_pair,
    timed,
)

ASSISTANT_DATA = REPO / "data" / "finance-assistant"


def _assistant_conversations(split: str, n: int) -> list[list[dict]]:
    """The first `n` conversations of a finance-assistant split, as the pipeline reads them."""
    import pandas as pd

    from components.config import load_preset
    from components.generative.examples import frames_to_messages

    config = load_preset("finance-assistant")
    if not (ASSISTANT_DATA / "train.jsonl").is_file():
        raise FileNotFoundError(f"no demo data in {ASSISTANT_DATA}: run `make data` (dvc pull)")
    frame = pd.read_json(ASSISTANT_DATA / f"{split}.jsonl", lines=True).head(n)
    return frames_to_messages({"train": frame}, config.data)["train"]


def bare_causal_loop(
    location: str,
    target_modules: list[str],
    rows: list[tuple[list[int], list[int]]],
    *,
    pad_id: int,
    batch_size: int,
    seed: int,
    lr: float,
    weight_decay: float,
    warmup_ratio: float,
    r: int,
    alpha: int,
    dropout: float,
    trained_only: bool,
) -> Measure:
    """One epoch of a plain torch + peft causal-LM loop written by hand over pre-tokenised
    `rows` ((input_ids, labels) with -100 where no loss is taken); (rows, wall s, CPU s) of
    the loop. Length-grouped shuffled batches padded to their longest row, AdamW with linear
    warm-up/decay, bf16 autocast where bf16 is native (as the pipeline's auto precision).
    `trained_only`: the LM head and loss on the trained positions only (the pipeline's
    trick, written by hand); else the usual `model(..., labels=labels).loss` (every
    position's logits). Nothing from `components` is used."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda:
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private: may go away
        bf16 = bool(amx and amx())
    amp_dtype = torch.bfloat16 if bf16 else torch.float16 if cuda else None
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and not bf16)
    lora = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, bias="none"
    )
    base = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    model = get_peft_model(base, lora).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps = -(-len(rows) // batch_size)
    warmup = int(warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / max(warmup, 1) if s < warmup else max(0.0, (steps - s) / (steps - warmup))
        ),
    )
    rng = np.random.default_rng(seed + 1)
    lengths = np.array([len(ids) for ids, _ in rows])
    order = rng.permutation(len(rows))
    mega = batch_size * 50
    order = np.concatenate(
        [
            c[np.argsort(-lengths[c], kind="stable")]
            for c in np.split(order, range(mega, len(order), mega))
        ]
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]

    model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    for idx in batches:
        width = int(lengths[idx].max())
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        labels = torch.full((len(idx), width), -100, dtype=torch.long)
        for row, i in enumerate(idx):
            ids, lab = rows[i]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
            labels[row, : len(ids)] = torch.tensor(lab)
        input_ids, mask, labels = input_ids.to(device), mask.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            if trained_only:
                inner = model.get_base_model()
                hidden = inner.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                keep = labels[:, 1:] != -100
                logits = inner.lm_head(hidden[:, :-1][keep])
            else:
                loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        if trained_only:
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[:, 1:][keep])
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
    if cuda:
        torch.cuda.synchronize()
    return len(rows), time.perf_counter() - started, time.process_time() - cpu_started


def bench_gen_throughput(
    ctx: Context, examples: int | None = None, rounds: int | None = None, hf_loss: bool = True
) -> None:
    """The pipeline's causal-LM training (`causal_lm_recipe` through `fit`) vs the bare loop
    (both loss variants), on the same encoded finance-assistant rows, batch 8, LoRA r=8 on
    q/k/v/o, the pipeline's auto precision; alternating rounds, one uncounted call each.
    `examples`, `rounds`, `hf_loss` (the second bare side) override the mode's choices."""
    import torch

    from components.generative.bundle import CausalLM
    from components.generative.models import load_causal_lm, resolve_causal_lm
    from components.objectives.generation import _encode, causal_lm_recipe
    from components.selection import select_parameters
    from components.selection.apply import apply_selection
    from components.training import fit, precision_name, training_dtype

    n = examples or (32 if ctx.mode == "quick" else 64)
    config = gen_config("lora", 192, ctx.threads, "training.precision=auto")
    _, tokenizer, _ = load_causal_lm(ctx.gen_model)
    rows = _encode(tokenizer, _assistant_conversations("train", n), config)
    pad_id = tokenizer.pad_token_id
    location = resolve_causal_lm(ctx.gen_model).location
    t, m = config.training, config.method
    modules: list[str] = []

    def pipeline() -> Measure:
        backbone, _, _ = load_causal_lm(ctx.gen_model)
        selection = select_parameters(
            backbone, config.selection, config.method, None, max_length=192, proxy=None
        )
        modules[:] = sorted({name.rsplit(".", 1)[-1] for name in selection.target_modules})
        model = apply_selection(CausalLM(backbone), selection, config.method, len(rows))
        recipe = causal_lm_recipe(model, rows, rows[:2], pad_id, config)
        with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
            _, result = fit(config, recipe, Path(tmp), resume=False)
        epoch = result.history[-1]
        return len(rows), epoch["seconds"], epoch["cpu_seconds"]

    def bare(trained_only: bool) -> Measure:
        return bare_causal_loop(
            location,
            modules,
            [(r.input_ids, r.labels) for r in rows],
            pad_id=pad_id,
            batch_size=t.batch_size,
            seed=t.seed,
            lr=t.learning_rate,
            weight_decay=t.weight_decay,
            warmup_ratio=t.warmup_ratio,
            r=m.r,
            alpha=m.alpha,
            dropout=m.dropout,
            trained_only=trained_only,
        )

    sides = {
        "pipeline": pipeline,
        "bare_trained": lambda: bare(True),
        "bare_hf_loss": lambda: bare(False),
    }
    if not hf_loss:
        del sides["bare_hf_loss"]
    runs = alternate(sides, rounds or (3 if ctx.mode == "quick" else 5), warmup=True)
    common = {
        "warmup": "one uncounted call per side",
        "precision": precision_name(training_dtype(torch.device(ctx.device), t.precision)),
        "data": "finance-assistant demo (train)",
        "examples": len(rows),
        "batch_size": t.batch_size,
        "max_length": 192,
        "model": ctx.gen_model,
        "target_modules": modules,
    }
    rate_pair(
        ctx,
        "gen_training_throughput",
        runs["pipeline"],
        runs["bare_trained"],
        "bare torch+peft loop, LM head on trained positions (as the pipeline)",
        "samples/s",
        **common,
    )
    if not hf_loss:
        return
    rate_pair(
        ctx,
        "gen_training_throughput_vs_hf_loss",
        runs["pipeline"],
        runs["bare_hf_loss"],
        "bare torch+peft loop, model(labels=...).loss (every position's logits)",
        "samples/s",
        **common,
    )


def _raw_generate(model, tokenizer, conversations, max_new_tokens: int, batch: int) -> list:
    """Plain transformers generation, written by hand: chat template, left padding, greedy."""
    import torch

    tokenizer.padding_side = "left"
    texts = [
        tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
        for c in conversations
    ]
    out: list[str] = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tokenizer(
                texts[i : i + batch], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)  # the bundle's model may be on a GPU
            ids = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = ids[:, enc["input_ids"].shape[1] :]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
    return out


def _saved_bundle(ctx: Context, max_new_tokens: int, batch: int) -> tuple[Path, object]:
    """A LoRA (r=8, q/k/v/o) bundle of SmolLM2 with non-zero adapter weights (so merging
    matters), saved as the pipeline saves one, and the pyfunc model the registry would log
    for it (`mlflow.pyfunc.save_model` with the same arguments), loaded back."""
    import mlflow.pyfunc
    import torch

    from components.generative.bundle import CausalLM, save_generative_bundle
    from components.generative.models import load_causal_lm
    from components.objectives.generation import Generation
    from components.selection import select_parameters
    from components.selection.apply import apply_selection

    config = gen_config("lora", 192, ctx.threads)
    backbone, tokenizer, resolved = load_causal_lm(ctx.gen_model)
    selection = select_parameters(
        backbone, config.selection, config.method, None, max_length=192, proxy=None
    )
    model = apply_selection(CausalLM(backbone), selection, config.method, 1)
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=1e-3)
    folder = ctx.workdir / "gen-bundle"
    save_generative_bundle(
        model,
        tokenizer,
        folder,
        {
            "base_model": resolved.reference,
            "base_model_provenance": resolved.provenance,
            "max_length": 192,
            "method": "lora",
            "selection": selection.strategy,
            "target_modules": selection.target_modules,
            "system_prompt": config.data.system_prompt,
            "decoding": {"max_new_tokens": max_new_tokens, "batch_size": batch},
            "labels": None,
            "expect_json": True,
        },
    )
    spec = Generation().pyfunc(_fake_examples())
    target = ctx.workdir / "gen-pyfunc"
    mlflow.pyfunc.save_model(
        str(target),
        python_model=str(spec.python_model),
        artifacts={"bundle": str(folder)},
        signature=spec.signature,
        code_paths=[str(REPO / "components")],
    )
    return folder, mlflow.pyfunc.load_model(str(target))


def _fake_examples():
    from components.generative.examples import ChatExamples

    conv = _assistant_conversations("test", 2)
    return ChatExamples(conv, conv, conv, labels=None, expect_json=True, system_prompt=None)


def bench_gen_inference(ctx: Context) -> None:
    """Tokens/s of generation: the pyfunc (what `mlflow models serve` and `peftops predict`
    run) vs raw `model.generate` on the same merged model, batched (16 prompts a call) and
    one prompt a call; and the bundle's LoRA merged into the base vs unmerged (batched).
    Quick: 8 prompts (one batch), 2 of them one at a time, 2 rounds (each call is tens of
    seconds on 2 CPU cores).
    Tokens are counted the same way on every side: the tokenizer's ids of the output."""
    import pandas as pd

    from components.generative.bundle import load_generative_bundle

    quick = ctx.mode == "quick"
    max_new, batch = 36, 8 if quick else 16  # the preset's budget (its longest answer: 32)
    folder, pyfunc = _saved_bundle(ctx, max_new, batch)
    merged = load_generative_bundle(folder, merge=True)
    unmerged = load_generative_bundle(folder, merge=False)
    tokenizer = merged.tokenizer
    conversations = _assistant_conversations("test", 8 if quick else 32)
    prompts = [c[-1]["content"] for c in conversations]
    # what the pyfunc builds from a prompt: the bundle's system prompt, then the user's text
    full = [merged.conversation(p) for p in prompts]
    singles = prompts[: 2 if quick else 8]

    def tokens(texts: list[str]) -> int:
        return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    def measure(call, items) -> tuple[float, float, float]:
        with timed() as took:
            texts = call(items)
        return tokens(texts), took[0], took[1]

    def pyfunc_call(items: list[str]) -> list[str]:
        return pyfunc.predict(pd.DataFrame({"prompt": items}))["text"].astype(str).tolist()

    def raw_call(convs: list[list[dict]], size: int = batch) -> list[str]:
        return _raw_generate(merged.model, tokenizer, convs, max_new, size)

    def one_by_one(call, items) -> list[str]:
        return [text for item in items for text in call([item])]

    sides = {
        "pyfunc_batched": lambda: measure(pyfunc_call, prompts),
        "raw_batched": lambda: measure(raw_call, full),
        "pyfunc_single": lambda: measure(lambda xs: one_by_one(pyfunc_call, xs), singles),
        "raw_single": lambda: measure(
            lambda xs: one_by_one(lambda c: raw_call(c, 1), xs), full[: len(singles)]
        ),
        "merged": lambda: measure(merged.generate, full),
        "unmerged": lambda: measure(unmerged.generate, full),
    }
    runs = alternate(sides, 2 if quick else 4, warmup=True)
    common = {
        "model": ctx.gen_model,
        "max_new_tokens": max_new,
        "greedy": True,
        "data": "finance-assistant demo (test prompts)",
        "adapter": "LoRA r=8 q/k/v/o, random non-zero B",
    }
    for name, ours, theirs, baseline, extra in (
        (
            "gen_inference_pyfunc_batched",
            "pyfunc_batched",
            "raw_batched",
            "raw model.generate, merged LoRA",
            {"prompts": len(prompts), "batch_size": batch},
        ),
        (
            "gen_inference_pyfunc_single",
            "pyfunc_single",
            "raw_single",
            "raw model.generate, merged LoRA",
            {"prompts": len(singles), "batch_size": 1},
        ),
        (
            "gen_inference_merged",
            "merged",
            "unmerged",
            "LoRA unmerged (peft layers)",
            {"prompts": len(prompts), "batch_size": batch},
        ),
    ):
        rate_pair(ctx, name, runs[ours], runs[theirs], baseline, "tokens/s", **common, **extra)
    latency = {
        k: median([w / len(singles) for _, w, _ in runs[k]])
        for k in ("pyfunc_single", "raw_single")
    }
    comparison(
        ctx,
        "gen_inference_single_latency",
        latency["pyfunc_single"],
        "raw model.generate, one prompt",
        latency["raw_single"],
        "s/prompt",
        higher_is_better=False,
        statistic="median over rounds of the mean seconds per prompt",
        **common,
    )
    log(f"gen_inference rounds: {json.dumps(runs)}")
