"""Peak memory of the current process, as the benchmarks report it, and where a training
step's memory goes (`memory_breakdown`, used by scripts/memory_profile.py)."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.examples import TextSplit

MB = 1024 * 1024


def jemalloc() -> str | None:
    """The jemalloc library to preload (`LD_PRELOAD`), if the system has one: Debian's
    `libjemalloc2` package. jemalloc reuses and returns freed buffers where glibc's heap
    keeps them (docs/benchmarks.md, memory profile)."""
    import ctypes.util

    return ctypes.util.find_library("jemalloc")


def loaded_allocator() -> str:
    """ "jemalloc" when this process has jemalloc mapped (a preload that failed only warns and
    leaves glibc's malloc in place), else "glibc"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return "unknown"
    return "jemalloc" if "libjemalloc" in maps else "glibc"


def expected_allocator(name: str) -> str:
    """What `loaded_allocator()` reports in a child run with allocator setting `name`."""
    return "jemalloc" if name == "jemalloc" else "glibc"


def allocator_env(name: str) -> dict[str, str] | None:
    """What a child process's environment adds for allocator setting `name` (`ALLOCATORS`);
    None when it is not available on this machine."""
    if name == "jemalloc":
        lib = jemalloc()
        return {"LD_PRELOAD": lib} if lib else None
    return dict(ALLOCATORS[name])


def with_allocator(env: dict[str, str], name: str) -> dict[str, str] | None:
    """`env` with allocator setting `name` and no other: settings inherited from this
    process (a preloaded library, glibc's MALLOC_* variables, and GLIBC_TUNABLES as a whole)
    are dropped, so that "default" means glibc's malloc as it comes. None when not
    available here."""
    extra = allocator_env(name)
    if extra is None:
        return None
    kept = {
        k: v
        for k, v in env.items()
        if k not in ("LD_PRELOAD", "GLIBC_TUNABLES") and not k.startswith("MALLOC_")
    }
    return {**kept, **extra}


# glibc's malloc as it comes; its mmap threshold pinned (buffers at least that large are mapped
# and returned to the system on free, instead of kept in the heap); or jemalloc preloaded
ALLOCATORS: dict[str, dict[str, str]] = {
    "default": {},
    "mmap-4mb": {"MALLOC_MMAP_THRESHOLD_": str(4 << 20)},
    "mmap-1mb": {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)},
    "jemalloc": {},  # LD_PRELOAD of the library found at run time (allocator_env)
}


def _vm(field: str) -> float:
    """A `Vm*` line of /proc/self/status, in MB (Linux only: OSError elsewhere)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(f"{field} not in /proc/self/status")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not `ru_maxrss`: Linux carries that over
    from the parent across fork+exec, so a child of a big benchmark process would report
    the parent's peak."""
    try:
        return _vm("VmHWM")
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (VmHWM) to its current RSS, so that a later
    `peak_rss_mb()` is the peak of what ran since (Linux >= 4.0: `5` into
    /proc/self/clear_refs). False where that is not possible: the peak then covers the
    whole process."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_breakdown(
    method: str,
    model_ref: str,
    train: TextSplit,
    labels: list[str],
    max_length: int,
    threads: int,
    batch_size: int = 32,
) -> dict:
    """Train one epoch of `train` with the pipeline's model, optimiser and batches (`method`
    "lora": r=8 on attention; "full": every parameter) in this process, and say where the
    memory went, in MB (Linux):

    - floor: the resident set before the model is built (imports, data);
    - weights: all parameters; optimizer: AdamW's moments, as held during the fullest forward
      pass; grads: the trainable parameters' gradients (created in backward while the
      activations are released);
    - activations: what autograd saved for backward in the fullest forward pass (saved-tensor
      hooks, parameters left out);
    - forward_end = floor + weights + optimizer + activations: held at the end of that forward
      pass, a lower bound of the peak;
    - peak: VmHWM. peak - forward_end is the step's transients, the gradients, and memory the
      allocator kept after it was freed.

    The shortest batch runs first, so every later step (the longest included) runs with the
    optimiser's state allocated, as in the steady state of a real epoch. `samples_per_s`
    leaves out that first step (it pays one-off set-up), so it leans to the longer
    batches; it is indicative, not a throughput benchmark."""
    import peft  # noqa: F401  (imported before the floor is read, as the rest is)
    import torch
    import transformers  # noqa: F401

    import components.training  # noqa: F401  (modeling, selection, methods)
    from components.batching import encode, iter_batches
    from peftops.bench.speed.steps import (
        FULL_FINETUNE,
        bench_config,
        train_steps,
        training_model,
    )

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    extra = FULL_FINETUNE if method == "full" else {}
    config = bench_config(labels, max_length, batch_size, threads, model_ref, **extra)
    floor = _vm("VmRSS")
    model, tokenizer, optimizer = training_model(config, len(labels))
    enc = encode(tokenizer, train.texts, max_length, train.label_ids, cache=False)
    batches = list(iter_batches(enc, batch_size, tokenizer.pad_token_id, shuffle=True, seed=1))
    shortest = min(range(len(batches)), key=lambda i: batches[i]["input_ids"].shape[1])
    batches.insert(0, batches.pop(shortest))

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}  # storage -> bytes, in the current step

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    def optimizer_bytes() -> int:
        return sum(
            t.numel() * t.element_size()
            for state in optimizer.state.values()
            for t in state.values()
            if torch.is_tensor(t)
        )

    fullest, steps = (0, 0), []  # (optimizer, activations) bytes of the fullest forward
    for batch in batches:
        saved.clear()
        held = optimizer_bytes()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            step = train_steps(model, optimizer, [batch], config.training.precision)
        if held + sum(saved.values()) > sum(fullest):
            fullest = (held, sum(saved.values()))
        steps.append(step[:2])  # (samples, seconds)

    trainable = [p for p in model.parameters() if p.requires_grad]
    # AdamW holds state only for parameters that got a gradient (not, e.g., an unused pooler)
    updated = [p for p in trainable if p in optimizer.state]
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / MB
    optimizer_mb, activations = fullest[0] / MB, fullest[1] / MB
    numbers = {
        "floor": floor,
        "weights": weights,
        "optimizer": optimizer_mb,
        "activations": activations,
        "forward_end": floor + weights + optimizer_mb + activations,
        "grads": sum(p.numel() * p.element_size() for p in updated) / MB,
    }
    numbers["peak"] = _vm("VmHWM")
    numbers = {k: round(v, 3) for k, v in numbers.items()}
    later = steps[1:] or steps  # the first step pays one-off set-up
    numbers["samples_per_s"] = round(sum(n for n, _ in later) / sum(s for _, s in later), 1)
    numbers["longest_batch"] = max(b["input_ids"].shape[1] for b in batches)
    numbers["trainable_params"] = sum(p.numel() for p in trainable)
    numbers["allocator"] = loaded_allocator()
    return numbers
