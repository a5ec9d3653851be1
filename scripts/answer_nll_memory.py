"""Peak RSS of scoring answers (the NLL behind validation loss and `perplexity`) on one
evaluation batch: the LM head on every position (`model(...).logits`, what the pipeline did
before 2026-12-04) against the pipeline's `CausalLM`, which runs it on the trained positions
only. One side per process, so each peak is its own:

    PYTHONPATH=. .venv/bin/python scripts/answer_nll_memory.py all_positions
    PYTHONPATH=. .venv/bin/python scripts/answer_nll_memory.py trained_positions

Default shape: PubMedQA decision's full mode (64 rows, `evaluation.batch_size`, of 384
tokens, the last 2 trained: the answer and the end of turn) on SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from components.generative.bundle import CausalLM
from components.generative.models import load_causal_lm
from components.generative.templating import trained_targets
from peftops.bench.memory import peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=["all_positions", "trained_positions"])
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=384)
    parser.add_argument("--trained", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _, _ = load_causal_lm(args.model)
    model.eval()
    torch.manual_seed(0)
    ids = torch.randint(100, model.config.vocab_size, (args.rows, args.tokens))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[:, -args.trained :] = ids[:, -args.trained :]
    targets = trained_targets(labels)
    Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
    loaded = peak_rss_mb()
    started = time.perf_counter()
    with torch.inference_mode():
        if args.side == "all_positions":
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            logits = logits[labels[:, 1:] != -100]
        else:
            logits = CausalLM(model)(ids, mask, labels)
        nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    print(
        f"{args.side}: summed NLL {float(nll):.4f} over {targets.numel()} tokens; peak RSS "
        f"{peak_rss_mb():,.0f} MB, {peak_rss_mb() - loaded:+,.0f} MB over the loaded model; "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
