"""Batched generation from chat prompts, and the likelihood of reference responses.

Plain functions over a transformers causal LM (peft-wrapped or not) and its tokenizer.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from components.generative.templating import (
    IGNORE_INDEX,
    fit_prompt,
    response_token_ids,
    trained_targets,
)

log = logging.getLogger(__name__)

# End-of-turn tokens of common chat templates: generation stops at them as well as at eos,
# because a chat model ends its answer with the turn marker, not always with eos.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
# Prompts sharing at least this many leading tokens (a system message, k-shot examples) have
# them encoded once; below it the copies of the cache cost about what they save.
SHARED_PREFIX_MIN_TOKENS = 16


@dataclass
class DecodingSettings:
    """How responses are generated; greedy by default so scores are reproducible."""

    max_new_tokens: int = 64
    do_sample: bool = False
    num_beams: int = 1
    batch_size: int = 16
    # a closed answer set: generation may only spell one of these, then end its turn
    # (generation.constrain_to_labels); None: free text
    choices: list[str] | None = None

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "num_beams", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"decoding.{name} must be at least 1, got {getattr(self, name)}")

    def as_tags(self) -> dict[str, str]:
        """Flat `decoding.*` string tags for MLflow (the choices by count)."""
        tags = {f"decoding.{k}": str(v) for k, v in asdict(self).items() if k != "choices"}
        tags["decoding.choices"] = str(len(self.choices)) if self.choices else "free"
        return tags


def choice_tree(tokenizer, choices: list[str], stops: list[int]) -> dict:
    """A prefix tree of the choices' token ids as training sees them after the template's
    assistant header (`response_token_ids`, end-of-turn tokens dropped); `None` marks where
    a choice is complete and a stop may follow."""
    tree: dict = {}
    for choice in choices:
        ids = response_token_ids(tokenizer, choice)
        while ids and ids[-1] in stops:
            ids = ids[:-1]
        node = tree
        for token in ids:
            node = node.setdefault(token, {})
        node[None] = True
    return tree


def choice_length(tree: dict) -> int:
    """Tokens in the longest choice of a `choice_tree`."""
    return max((1 + choice_length(n) for t, n in tree.items() if t is not None), default=0)


def choice_constraint(tree: dict, stops: list[int], prompt_length: int):
    """A `prefix_allowed_tokens_fn` for transformers' `generate`: after the prompt (left
    padded to `prompt_length` columns) only token sequences spelling one of the choices in
    `tree` may follow, then a stop token. transformers masks every other token's logit, so
    greedy decoding picks the most likely choice token by token.

    Written here because transformers has no closed-set constraint with a stop (its
    `constraints`/`force_words_ids` need beam search and do not stop after the word)."""
    stop_ids = list(stops)

    def allowed(_batch: int, ids: torch.Tensor) -> list[int]:
        node = tree
        for token in ids[prompt_length:].tolist():
            if token in stop_ids:
                return stop_ids  # finished: the padding that follows is a stop token
            node = node.get(token)
            if node is None:
                return stop_ids
        nexts = [t for t in node if t is not None]
        return nexts + (stop_ids if None in node else [])

    return allowed


def stop_token_ids(model, tokenizer) -> list[int]:
    """eos ids of the tokenizer and the model's generation config, plus end-of-turn tokens."""
    ids: list[int] = []
    config = getattr(model, "generation_config", None)
    for source in (tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
        if source is None:
            continue
        ids.extend([source] if isinstance(source, int) else source)
    vocab = tokenizer.get_vocab()
    ids.extend(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return list(dict.fromkeys(ids))


@contextmanager
def _left_padding(tokenizer) -> Iterator[None]:
    """Left padding (and a pad token) for the duration of generation; restored afterwards."""
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield
    finally:
        tokenizer.padding_side = side
        if pad is None:
            tokenizer.pad_token = pad


@contextmanager
def _eval_mode(model) -> Iterator[None]:
    """No dropout while scoring; the caller's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def render_prompts(tokenizer, conversations: list[list[dict]]) -> list[str]:
    """Chat-template text of each conversation, ending with the assistant's generation prompt."""
    for i, conversation in enumerate(conversations):
        if conversation and conversation[-1].get("role") == "assistant":
            # The reference answer would be part of the prompt: pass the prompt turns only.
            raise ValueError(f"conversation {i} ends with an assistant turn; pass the prompt only")
    return [
        tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        for conv in conversations
    ]


def shared_prefix(encoded: list[list[int]]) -> list[int]:
    """The leading token ids every prompt shares, short of each prompt's last token (generation
    needs at least one uncached input token per row); [] for fewer than two prompts."""
    if len(encoded) < 2:
        return []
    # all prompts share what the lexicographically first and last ones share
    first, last = min(encoded), max(encoded)
    common = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first)
    )
    return list(first[: min(common, min(len(ids) for ids in encoded) - 1)])


def _prompt_learning(model) -> str | None:
    """The peft type of a prompt-learning model (prompt/prefix tuning, p-tuning), else None."""
    config = getattr(model, "active_peft_config", None)
    if not getattr(config, "is_prompt_learning", False):
        return None
    return getattr(config.peft_type, "value", config.peft_type)  # PeftType is a str Enum


def _with_virtual_tokens(
    model, kind: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, beams: int = 1
):
    """The base model and its `generate` inputs for a prompt-learning model: placeholder ids
    (masked in) for the virtual positions, and peft's own virtual tokens (`get_prompt`) as
    the cache (prefix tuning) or as embeddings before the prompt's (prompt tuning, p-tuning).

    Written here because peft 0.21's `generate` mishandles both under transformers 5 (the
    prefix is dropped; prompt embeddings are re-inserted at every new token)."""
    rows, virtual = input_ids.shape[0], model.active_peft_config.num_virtual_tokens
    held = torch.zeros((rows, virtual), dtype=input_ids.dtype, device=input_ids.device)
    base = model.get_base_model()
    if kind == "PREFIX_TUNING":
        # generate expands the inputs per beam, not a cache handed over: one per beam
        extra = {"cache": model.get_prompt(batch_size=rows * beams)}
    else:
        embeds = base.get_input_embeddings()(input_ids)
        prompts = model.get_prompt(batch_size=rows).to(embeds.dtype)
        extra = {"inputs_embeds": torch.cat([prompts, embeds], dim=1)}
    ids = torch.cat([held, input_ids], dim=1)
    return base, ids, torch.cat([torch.ones_like(held), attention_mask], dim=1), extra


def _prefix_cache(model, prefix: torch.Tensor):
    """The model's key/value cache after reading `prefix` (1 x P), to copy into each batch;
    None where a copy would not answer as the whole prompt does: sliding-window and linear
    layers count cache slots, not positions, so the padding after the prefix would narrow a
    padded row's window, and a generation config may fix a cache type of its own."""
    from transformers import DynamicCache

    if getattr(getattr(model, "generation_config", None), "cache_implementation", None):
        return None
    cache = DynamicCache(config=getattr(model, "config", None))
    if any(cache.is_sliding) or any(cache.is_linear):
        return None
    model(input_ids=prefix, cache=cache, use_cache=True, logits_to_keep=1)
    return cache


def context_size(model) -> int | None:
    """Tokens the model attends over: its config's position limit (a rope-scaled model that
    keeps its pre-scaling limit there is held to it), less prompt learning's virtual tokens;
    None where the config names no limit."""
    config = getattr(model, "config", None)
    if hasattr(config, "get_text_config"):  # a multimodal model's limit is its text model's
        config = config.get_text_config()
    size = getattr(config, "max_position_embeddings", None)
    if not isinstance(size, int):
        return None
    peft_config = getattr(model, "active_peft_config", None)
    if getattr(peft_config, "is_prompt_learning", False):
        size -= peft_config.num_virtual_tokens
    return size


def _fit_context(
    model, tokenizer, conversations: list[list[dict]], encoded: list[list[int]], budget: int
) -> None:
    """Cap each encoded prompt (in place) so that it and `budget` new tokens fit the model's
    context (`fit_prompt`: oldest few-shot examples first, then the front of the user
    message); a warning says how many were cut. Past the context a model with learned
    positions fails and a rotary one reads positions it never saw."""
    size = context_size(model)
    if size is None:
        return
    limit = size - budget
    if limit < 1:
        raise ValueError(
            f"max_new_tokens={budget} leaves no room for a prompt in the model's {size}-token "
            "context"
        )
    cut = [i for i, ids in enumerate(encoded) if len(ids) > limit]
    for i in cut:
        try:
            encoded[i], _ = fit_prompt(tokenizer, conversations[i], limit)
        except ValueError as err:
            raise ValueError(f"prompt {i}: {err}") from None
    if cut:
        log.warning(
            "%d of %d prompts were longer than the model's %d-token context less the %d-token "
            "answer budget: cut to fit (oldest examples first, then the start of the user "
            "message)",
            len(cut),
            len(encoded),
            size,
            budget,
        )


def generate_token_ids(
    model, tokenizer, conversations: list[list[dict]], settings: DecodingSettings
) -> list[list[int]]:
    """The new token ids generated for each conversation (in input order, stop token cut).

    Leading tokens all prompts share (the system message, k-shot examples) are encoded once
    and their key/value cache copied into every batch (transformers' prompt-cache reuse), so
    each row encodes only its own tail. The padding then sits between the prefix and each
    tail; position ids come from the attention mask, as for the unpadded prompt."""
    if not conversations:
        return []
    prompts = render_prompts(tokenizer, conversations)
    # The template already writes the special tokens the model expects (as
    # apply_chat_template(tokenize=True) does), so the tokenizer must not add bos again.
    encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    stops = stop_token_ids(model, tokenizer)
    tree = choice_tree(tokenizer, settings.choices, stops) if settings.choices else None
    budget = settings.max_new_tokens
    if tree is not None:  # a constrained answer is a whole label: a cut one would be invalid
        budget = max(budget, choice_length(tree))
    prompt_learning = _prompt_learning(model)
    if prompt_learning not in (None, "PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING"):
        raise ValueError(f"generation does not support peft type {prompt_learning}")
    _fit_context(model, tokenizer, conversations, encoded, budget)
    # Longest first: similar lengths share a batch (less padding), and memory peaks early.
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
    device = _device(model)
    results: list[list[int]] = [[] for _ in encoded]
    # not with beam search (generate expands the inputs per beam, not a cache handed over) or
    # prompt learning (its virtual tokens come first)
    prefix = shared_prefix(encoded) if settings.num_beams == 1 and not prompt_learning else []
    with _left_padding(tokenizer), _eval_mode(model), torch.inference_mode():
        head, cache = torch.tensor([prefix], dtype=torch.long, device=device), None
        if len(prefix) >= SHARED_PREFIX_MIN_TOKENS:
            cache = _prefix_cache(model, head)
        cached = head.shape[1] if cache is not None else 0  # leading tokens each row skips
        for start in range(0, len(order), settings.batch_size):
            chunk = order[start : start + settings.batch_size]
            batch = tokenizer.pad(
                {"input_ids": [encoded[i][cached:] for i in chunk]},
                padding=True,
                return_tensors="pt",
            )
            input_ids = batch["input_ids"].to(device)
            attention_mask = batch["attention_mask"].to(device)
            reuse = {}
            if cache is not None:
                rows = len(chunk)
                input_ids = torch.cat([head.expand(rows, -1), input_ids], dim=1)
                attention_mask = torch.cat(
                    [torch.ones_like(head).expand(rows, -1), attention_mask], 1
                )
                reuse["cache"] = copy.deepcopy(cache)  # generate extends the cache it is given
                reuse["cache"].batch_repeat_interleave(rows)
            generator = model
            if prompt_learning:
                generator, input_ids, attention_mask, reuse = _with_virtual_tokens(
                    model, prompt_learning, input_ids, attention_mask, settings.num_beams
                )
            constraint = None
            if tree is not None:
                constraint = choice_constraint(tree, stops, input_ids.shape[1])
            output = generator.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                **reuse,
                max_new_tokens=budget,
                do_sample=settings.do_sample,
                num_beams=settings.num_beams,
                eos_token_id=stops or None,
                pad_token_id=tokenizer.pad_token_id,
                prefix_allowed_tokens_fn=constraint,
            )
            # Left padding: every prompt ends at the same column, the new tokens follow it.
            for row, index in zip(output[:, input_ids.shape[1] :].tolist(), chunk, strict=True):
                cut = next((j for j, t in enumerate(row) if t in stops), len(row))
                results[index] = row[:cut]
    return results


def generate(
    model, tokenizer, conversations: list[list[dict]], settings: DecodingSettings
) -> list[str]:
    """The assistant's response to each conversation, in input order (special tokens removed,
    whitespace stripped). Conversations hold the prompt turns only ({"role", "content"})."""
    ids = generate_token_ids(model, tokenizer, conversations, settings)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]


def sequence_nll(model, batches: Iterable[dict]) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the label tokens (!= -100) and their count
    (`row_nll`'s sums)."""
    nll, tokens = row_nll(model, batches)
    return float(nll.sum()), int(tokens.sum())


def row_nll(model, batches: Iterable[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, in batch order: the summed negative log-likelihood (nats, float64) of its label
    tokens (!= -100) and their count.

    `model` is a `bundle.CausalLM` (wrap a transformers model in one). Called as a module with
    the labels, it returns the next-token logits of the scored positions only: the LM head
    and its fp32 copy never cover batch × length × vocabulary (GBs at evaluation batch sizes
    and a 49k vocabulary), prompt tuning's virtual tokens are left out, and an FSDP-sharded
    copy gathers its root's weights (a direct call to its backbone would skip that). Batches
    are dicts with input_ids, attention_mask and labels aligned with input_ids (as the
    training collator makes them).
    """
    device = _device(model)
    nll: list[torch.Tensor] = []
    tokens: list[torch.Tensor] = []
    with _eval_mode(model), torch.inference_mode():
        for batch in batches:
            labels = batch["labels"].to(device)
            logits = model(
                batch["input_ids"].to(device), batch["attention_mask"].to(device), labels
            )
            losses = F.cross_entropy(logits.float(), trained_targets(labels), reduction="none")
            # the row of each trained position, in `trained_targets`' (row-major) order
            row = (labels[:, 1:] != IGNORE_INDEX).nonzero()[:, 0]
            row, losses = row.cpu(), losses.cpu().double()
            nll.append(torch.zeros(len(labels), dtype=torch.float64).index_add_(0, row, losses))
            tokens.append(torch.bincount(row, minlength=len(labels)))
    if not nll:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
    return torch.cat(nll), torch.cat(tokens)
