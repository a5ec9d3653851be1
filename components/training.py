"""The training loop: short enough to read in one sitting.

Dynamic padding with length-grouped batches, AdamW with warm-up and linear decay, a fixed seed
per epoch (so a resumed run replays exactly), a checkpoint after every epoch, validation
metrics per epoch, and the best epoch's weights restored at the end.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from components import fsdp as sharding
from components.baseline import Probe
from components.batching import Encoded, encode, iter_batches
from components.config import PipelineConfig
from components.dropout import use_fast_dropout
from components.evaluation import classification_metrics
from components.examples import TextSplit
from components.methods import step_hook
from components.modeling import (
    PooledClassifier,
    build_classifier,
    count_parameters,
    enable_gradient_checkpointing,
    save_bundle,
)
from components.selection import Selection, apply_selection

EpochCallback = Callable[[dict], None]


@dataclass
class TrainResult:
    bundle_dir: str
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    resumed_from_epoch: int | None = None
    device: str = "cpu"
    precision: str = "fp32"  # what training computed in: fp32, bf16 or fp16
    # how many processes trained, and how: "single" (one process), "ddp" or "fsdp"; the
    # collective backend (gloo, nccl) and what started the processes (torch-elastic, ...)
    world_size: int = 1
    strategy: str = "single"
    backend: str | None = None
    launcher: str | None = None
    # sha256 of the trainable weights after the last epoch (before the best epoch is
    # restored), on this rank; distributed runs only: every rank must report the same
    trained_digest: str | None = None

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / max(self.total_params, 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "trainable_fraction": self.trainable_fraction}


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def place_for_training(
    model: nn.Module, config: PipelineConfig, device: torch.device | None = None
) -> torch.device:
    """Move `model` to the training device (`device`, else `pick_device()`); on CPU with
    `training.fast_dropout`, swap its dropout layers for `FastDropout` first."""
    device = device or pick_device()
    if config.training.fast_dropout and device.type == "cpu":
        use_fast_dropout(model)
    model.to(device)
    return device


def autocast_dtype(
    device_type: str, bf16_native: bool, precision: str = "auto"
) -> torch.dtype | None:
    """The dtype training's forward pass autocasts to, None for plain fp32.

    `precision` is `training.precision`. auto: on CUDA bf16 where the GPU computes it
    natively, else fp16 (with loss scaling); on CPU bf16 where it is native (AMX), else fp32;
    fp32 on other devices. bf16: always bf16. fp32: never autocast."""
    if precision == "fp32":
        return None
    if precision == "bf16" or (bf16_native and device_type in ("cuda", "cpu")):
        return torch.bfloat16
    return torch.float16 if device_type == "cuda" else None


@functools.cache  # asked once per device type, not on every step
def native_bf16(device_type: str) -> bool:
    """Whether this machine's `device_type` computes bf16 in hardware rather than emulating it:
    on CUDA, torch's check without emulation (V100/T4 report True with it, and want fp16);
    on CPU, AMX tiles (Sapphire Rapids and later, all with AMX-BF16), where oneDNN's bf16
    matmuls beat fp32."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private: may go away
        return bool(amx and amx())
    return False


def training_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """`autocast_dtype` for this machine's `device`."""
    return autocast_dtype(device.type, native_bf16(device.type), precision)


def precision_name(dtype: torch.dtype | None) -> str:
    """How runs record an autocast dtype: bf16, fp16, or fp32 for none."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def autocast_for(device: torch.device, precision: str = "auto"):
    """Autocast to `training_dtype` (a no-op for fp32). Weights and optimiser state stay
    fp32."""
    dtype = training_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def launched_processes() -> int:
    """The world size a launcher (torchrun/torch elastic, Ray Train) set in the environment;
    1 in a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """False on every rank but 0 of a distributed run: those write nothing (no checkpoint,
    bundle, MLflow entry or cache file)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def make_accelerator(device: torch.device, precision: str = "auto", timeout_s: float | None = None):
    """An `accelerate.Accelerator` for one training run on `device`: it owns autocast, fp16 loss
    scaling and the backward pass, with `training.precision`'s choice of dtype (bf16 only
    where native under auto). cpu=True on CPU, or accelerate would pick a GPU it may see.

    In a process a launcher started (`launched_processes()` > 1) it also joins the process
    group: gloo on CPU (cpu=True is what makes accelerate see a multi-CPU run; without it a
    CPU-only machine would train N unsynchronised copies), NCCL on CUDA, waiting at most
    `timeout_s` in any collective; `prepare_model` then wraps the model in DDP."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    dtype = training_dtype(device, precision)
    mixed = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "no")
    # AcceleratorState is a process-wide singleton that refuses a new mixed precision; one
    # process trains several runs (tests, sweeps), each with its own precision.
    AcceleratorState._reset_state()
    handlers = []
    if launched_processes() > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = timedelta(seconds=timeout_s or 1800)
        handlers = [
            InitProcessGroupKwargs(backend=backend, timeout=timeout),
            # some selections leave trainable tensors out of the graph (a pooler under mean
            # pooling): DDP must not wait for their gradients. No buffer is trained, so
            # none is broadcast on every step.
            DistributedDataParallelKwargs(find_unused_parameters=True, broadcast_buffers=False),
        ]
    return Accelerator(cpu=device.type == "cpu", mixed_precision=mixed, kwargs_handlers=handlers)


def grad_scaler(device: torch.device, precision: str = "auto") -> torch.amp.GradScaler:
    """Loss scaling for fp16 autocast (GPUs without bf16); a pass-through otherwise."""
    enabled = training_dtype(device, precision) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


def optimizer_step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer) -> bool:
    """`optimizer.step()` through `scaler`; False when fp16 loss scaling found inf/NaN
    gradients and skipped it (the scale then drops). Always True when `scaler` is disabled."""
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return not scaler.is_enabled() or scaler.get_scale() >= scale


def _linear_warmup_decay(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.0, (total - step) / max(total - warmup, 1))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
    }


def weights_digest(model: nn.Module) -> str:
    """sha256 of the trainable tensors, by name (equal on every rank of a DDP run)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(_trainable_state(model).items()):
        digest.update(name.encode())
        digest.update(tensor.float().numpy().tobytes())
    return digest.hexdigest()


def _shard(accelerator, batch: dict, units: Callable[[dict], int]) -> tuple[dict, float]:
    """This process's part of a global batch (accelerate's `split_between_processes`: rows
    in contiguous, near-equal chunks) and the weight its mean loss takes so that DDP's
    average of the processes' gradients is the gradient of the global batch's mean loss.
    `units` counts what a loss is a mean over (rows, trained tokens).

    Not `prepare_data_loader`: its batch sharding drops every short batch but the epoch's
    last, and our length-grouped epochs put the one short batch anywhere."""
    total = units(batch)
    with accelerator.split_between_processes(dict(batch)) as part:
        part = _trim_padding(part)
    if len(part["input_ids"]) and units(part):
        return part, units(part) * accelerator.num_processes / total
    # fewer rows than processes: a row of the batch, weighted 0, keeps every process in step
    return _trim_padding({k: v[:1] for k, v in batch.items()}), 0.0


def _trim_padding(batch: dict) -> dict:
    """Drop the padding columns a shard does not need (the global batch was padded to its
    longest row; right padding, so the columns past the shard's longest row)."""
    mask = batch.get("attention_mask")
    if mask is None or not len(mask):
        return batch
    width = int(mask.sum(1).max())
    return {
        k: v[:, :width] if isinstance(v, torch.Tensor) and v.dim() == 2 else v
        for k, v in batch.items()
    }


_ALLOCATOR_STATS = ("ipt", "exp_avg_ipt", "exp_avg_unc")


def _rank_allocator(model: nn.Module):
    """AdaLoRA's rank allocator (None for other methods): its importance estimates and the
    rank pattern it chose are training state too, so they go into the checkpoint."""
    backbone = getattr(model, "backbone", model)
    return getattr(getattr(backbone, "base_model", None), "rankallocator", None)


def _allocator_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict | None]:
    allocator = _rank_allocator(model)
    if allocator is None:
        return {}, None
    tensors = {
        f"{stat}/{name}": value.detach().cpu().contiguous()
        for stat in _ALLOCATOR_STATS
        for name, value in getattr(allocator, stat).items()
    }
    pattern = allocator.peft_config.rank_pattern
    return tensors, {k: [bool(x) for x in v] for k, v in (pattern or {}).items()}


def _restore_allocator(model: nn.Module, folder: Path, rank_pattern: dict | None) -> None:
    allocator = _rank_allocator(model)
    path = folder / "allocator.safetensors"
    if allocator is None or not path.is_file():
        return
    device = next(model.parameters()).device
    for key, value in load_file(str(path)).items():
        stat, name = key.split("/", 1)
        getattr(allocator, stat)[name] = value.to(device)
    if rank_pattern:
        allocator.peft_config.rank_pattern = rank_pattern


def _write_checkpoint(
    root: Path,
    epoch: int,
    model: nn.Module,
    optimizer,
    scheduler,
    history: list[dict],
    optimizer_state: dict | None = None,
) -> Path:
    """Write `epoch-N/` whole or not at all: into a hidden `.epoch-N.partial/` first, renamed
    when complete, so a process killed mid-write leaves no half checkpoint to resume from.
    `optimizer_state`: in place of `optimizer.state_dict()` (FSDP's, gathered)."""
    folder, partial = root / f"epoch-{epoch}", root / f".epoch-{epoch}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    save_file(_trainable_state(model), str(partial / "trainable.safetensors"))
    torch.save(
        {
            "optimizer": optimizer_state or optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        partial / "optimizer.pt",
    )
    allocator, rank_pattern = _allocator_state(model)
    if allocator:
        save_file(allocator, str(partial / "allocator.safetensors"))
    state = {"epoch": epoch, "history": history, "rank_pattern": rank_pattern}
    (partial / "state.json").write_text(json.dumps(state))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def _starting_point(root: Path, model: nn.Module, recipe: Recipe, resumed: int | None) -> dict:
    """Epoch 0: the model before any step, scored like an epoch and kept in `start/` (written
    once, before training, so a resumed run compares against the same start)."""
    folder = root / "start"
    record_file = folder / "record.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    if resumed is not None:  # a checkpoint from before this feature: no start to compare
        return {}
    record = {"epoch": 0, **recipe.validate(model)}
    partial = root / ".start.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    save_file(_trainable_state(model), str(partial / "trainable.safetensors"))
    (partial / "record.json").write_text(json.dumps(record))
    os.replace(partial, folder)
    return record


def _validate_shared(recipe: Recipe, model: nn.Module, accelerator, device: torch.device) -> dict:
    """Validation split between the processes: each scores a contiguous share of the rows
    (accelerate's `split_between_processes`, padded with the last row so that every share is
    as long: under FSDP each forward pass is a collective, so every rank must make the same
    number), the per-row statistics are gathered, and rank 0 summarises all rows once, each
    from the rank that owns it (the others get {})."""
    size, world = recipe.val_size, accelerator.num_processes
    if not size:
        return recipe.validate(model) if accelerator.is_main_process else {}
    with accelerator.split_between_processes(list(range(size)), apply_padding=True) as rows:
        stats = recipe.score(model, rows)
    share = len(rows)  # the same on every rank
    # accelerate's split: size // world rows a rank, one more for the first size % world;
    # the padding after them repeats the last row, scored again elsewhere in another batch
    per, extra = divmod(size, world)
    owned = torch.cat([torch.arange(share) < per + (r < extra) for r in range(world)])
    every: dict[str, torch.Tensor] = {}
    for name, values in stats.items():
        gathered = accelerator.gather(values.to(device)).cpu()
        every[name] = gathered[owned]  # ranks in order, shares contiguous: rows in order
    return recipe.summarize(every) if accelerator.is_main_process else {}


def _latest_checkpoint(folder: Path) -> Path | None:
    done = sorted(
        (p for p in folder.glob("epoch-*") if (p / "state.json").is_file()),
        key=lambda p: int(p.name.split("-")[1]),
    )
    return done[-1] if done else None


@torch.inference_mode()
def predict_ids(
    model: PooledClassifier, data: Encoded, pad_id: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted ids, each row's loss or nan), in input order. In fp32, as evaluation and
    serving run, so the epoch kept is chosen on the predictions the bundle will make."""
    model.eval()
    device = next(model.parameters()).device
    preds = np.zeros(len(data), dtype=np.int64)
    losses = np.full(len(data), np.nan)
    for batch in iter_batches(data, batch_size, pad_id):
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        index = batch["index"].numpy()
        preds[index] = logits.argmax(-1).cpu().numpy()
        if "labels" in batch:
            loss = nn.functional.cross_entropy(
                logits.float(), batch["labels"].to(device), reduction="none"
            )
            losses[index] = loss.double().cpu().numpy()
    return preds, losses


@dataclass
class Recipe:
    """What a task type hands the training loop: the model with its selection applied, its
    batches, its forward pass and loss, its validation and how the kept epoch is chosen.
    The loop (`fit`) owns the rest: device, precision, optimiser, schedule, checkpoints,
    resume, timing."""

    model: nn.Module
    param_groups: list[dict]
    train_size: int
    steps_per_epoch: int
    batches: Callable[[int], Iterable[dict]]  # epoch -> batches of CPU tensors
    forward: Callable[[nn.Module, dict, torch.device], torch.Tensor]  # inside autocast
    loss: Callable[[torch.Tensor, dict, torch.device], torch.Tensor]  # outside autocast
    val_size: int  # validation rows
    # per-row statistics (1-D tensors, one value a row, in the order given) of these
    # validation rows, in fp32 eval mode; under DDP/FSDP each process scores a share
    score: Callable[[nn.Module, Sequence[int]], dict[str, torch.Tensor]]
    # every validation row's statistics, in row order -> val_loss and the task's metrics
    summarize: Callable[[dict[str, torch.Tensor]], dict]
    best_key: Callable[[dict], tuple]  # the epoch with the largest key is kept
    desc: str = "train"
    # the untrained starting point competes with the epochs (epoch 0): a classifier whose
    # head starts as the probe keeps the probe where fine-tuning does not beat it
    start_candidate: bool = False
    # what `loss` is a mean over in a batch (rows; a language model: trained tokens), so a
    # batch split between processes weighs each part by its share
    units: Callable[[dict], int] = lambda b: len(b["input_ids"])

    def validate(self, model: nn.Module) -> dict:
        """Every validation row, scored in this process."""
        return self.summarize(self.score(model, range(self.val_size)))


def fit(
    config: PipelineConfig,
    recipe: Recipe,
    workdir: Path,
    on_epoch_end: EpochCallback | None = None,
    resume: bool = True,
) -> tuple[nn.Module, TrainResult]:
    """Train `recipe.model` for `training.epochs`, checkpoint each epoch, resume from the
    latest checkpoint in `workdir`, and restore the best epoch's weights at the end. Returns
    the model (on CPU) and its result, whose `bundle_dir` the caller fills in.

    In a process a launcher started (`components.distributed.train_worker`), the model is
    wrapped in DDP by accelerate and every global batch of `training.batch_size` rows is split
    between the processes. Every process scores a share of the validation rows (under FSDP
    with the sharded copy); rank 0 summarises them, writes checkpoints (the unwrapped
    model's tensors: any number of processes resumes from them), calls `on_epoch_end` and
    restores the best epoch."""
    cfg = config.training
    model = recipe.model
    ckpt_root = Path(workdir) / "checkpoints"
    distributed = launched_processes() > 1
    fsdp = distributed and cfg.distributed == "fsdp"  # components/fsdp.py says how
    # first: in a distributed run, constructing it joins the process group
    accelerator = make_accelerator(
        pick_device(), cfg.precision, cfg.distributed_timeout_s if distributed else None
    )
    main = accelerator.is_main_process
    if main:
        ckpt_root.mkdir(parents=True, exist_ok=True)
    allocate = step_hook(getattr(model, "backbone", model))  # AdaLoRA's rank budget, or None
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)  # non-reentrant: DDP-safe
    # one process: the device as before; distributed: this rank's (cuda:<local rank>). FSDP
    # on a GPU: `model` stays in host memory and a sharded copy trains on the device
    if fsdp and accelerator.device.type != "cpu":
        device = accelerator.device
    else:
        device = place_for_training(model, config, accelerator.device if distributed else None)
    trainable, total = count_parameters(model)
    frozen = (
        hold_frozen_in_bf16(model, device, cfg.precision) if cfg.frozen_precision == "bf16" else []
    )
    if frozen:  # fp32 validation would meet bf16 weights: it runs under training's autocast
        score = recipe.score

        def score_autocast(m: nn.Module, indices: Sequence[int]) -> dict[str, torch.Tensor]:
            with autocast_for(device, cfg.precision):
                return score(m, indices)

        recipe = replace(recipe, score=score_autocast)
    steps_per_epoch = recipe.steps_per_epoch
    total_steps = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(recipe.param_groups, weight_decay=cfg.weight_decay)
    scheduler = _linear_warmup_decay(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)

    history: list[dict] = []
    start_epoch, resumed, opt_state = 1, None, None
    latest = _latest_checkpoint(ckpt_root) if resume and ckpt_root.is_dir() else None
    if latest is not None:  # every rank reads it (DDP would broadcast rank 0's weights, but
        # each rank steps its own optimiser and scheduler)
        state = json.loads((latest / "state.json").read_text())
        model.load_state_dict(load_file(str(latest / "trainable.safetensors")), strict=False)
        # saved on whatever device trained; load_state_dict moves it onto the parameters'
        opt_state = torch.load(latest / "optimizer.pt", map_location="cpu", weights_only=True)
        if not fsdp:  # FSDP's sharded optimiser loads it below
            optimizer.load_state_dict(opt_state["optimizer"])
            scheduler.load_state_dict(opt_state["scheduler"])
        _restore_allocator(model, latest, state.get("rank_pattern"))
        history = state["history"]
        resumed = state["epoch"]
        start_epoch = resumed + 1
    elif not resume and main:
        shutil.rmtree(ckpt_root, ignore_errors=True)
        ckpt_root.mkdir(parents=True)

    start = None
    if recipe.start_candidate and main:  # before any sharding: under FSDP rank 0 scores this
        # one pass on its host copy (the classifier's probe-initialised start) as the others wait
        start = _starting_point(ckpt_root, model, recipe, resumed)
    # autocast, fp16 loss scaling and backward from accelerate. One process: the model stays
    # unwrapped, as before. Distributed: forward and backward go through accelerate's DDP
    # wrapper, while `model` (the same parameters, no `module.` prefix) is what is
    # checkpointed, validated and returned.
    trained = model
    if fsdp:  # the sharded copy trains, with an optimiser over its parameters
        trained = sharding.shard(model, device)
        groups = sharding.remap_param_groups(recipe.param_groups, model, trained)
        optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        scheduler = _linear_warmup_decay(
            optimizer, int(cfg.warmup_ratio * total_steps), total_steps
        )
        if opt_state is not None:
            sharding.load_optimizer_state(trained, optimizer, opt_state["optimizer"])
            scheduler.load_state_dict(opt_state["scheduler"])
    elif distributed:
        trained = accelerator.prepare_model(model)
        # under bf16/fp16 accelerate also autocasts `model.forward` itself; the step is
        # autocast below and validation runs in fp32, as in one process
        model.__dict__.pop("forward", None)
        model.__dict__.pop("_original_forward", None)
    optimizer = accelerator.prepare_optimizer(optimizer, device_placement=False)
    train_time = sum(h["seconds"] for h in history)
    progress = tqdm(
        total=steps_per_epoch * (cfg.epochs - start_epoch + 1),
        desc=recipe.desc,
        unit="step",
        mininterval=2.0,
        disable=not main,
    )
    rank = accelerator.process_index
    for epoch in range(start_epoch, cfg.epochs + 1):
        # dropout replays identically after a resume; other ranks draw other masks
        torch.manual_seed(cfg.seed + epoch + 100_003 * rank)
        trained.train()
        started, cpu_started = time.perf_counter(), time.process_time()
        # train_loss is a mean over `recipe.units` (rows; a language model's trained tokens,
        # as its validation loss is), whatever the batches' sizes and the processes' shares
        loss_sum, unit_sum = 0.0, 0
        for step, batch in enumerate(recipe.batches(epoch), start=(epoch - 1) * steps_per_epoch):
            weight = 1.0
            if distributed:
                batch, weight = _shard(accelerator, batch, recipe.units)
            with accelerator.autocast():
                out = recipe.forward(trained, batch, device)
            loss = recipe.loss(out, batch, device)
            accelerator.backward(loss * weight if distributed else loss)
            optimizer.step()
            stepped = not optimizer.step_was_skipped
            scheduler.step()
            if allocate is not None and stepped:  # AdaLoRA: scores from finite gradients only
                allocate(step)
            optimizer.zero_grad(set_to_none=True)
            units = recipe.units(batch) if weight else 0  # weight 0: a stand-in row
            loss_sum += loss.item() * units
            unit_sum += units
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
        if distributed:  # every rank's units count in the epoch's training loss
            totals = torch.tensor([loss_sum, unit_sum], dtype=torch.float64, device=device)
            loss_sum, unit_sum = accelerator.reduce(totals, "sum").tolist()
        epoch_opt_state = None
        if fsdp:  # every rank: the trained tensors into the host model, the optimiser state
            sharding.gather_into(trained, model)
            epoch_opt_state = sharding.optimizer_state(trained, optimizer.optimizer)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started  # robust to other jobs on the machine
        train_time += seconds
        if distributed:  # each rank scores a share; FSDP: of the sharded copy, on its device
            # (the host copy would run the whole model on the CPU, however large)
            scores = _validate_shared(recipe, trained if fsdp else model, accelerator, device)
        else:
            scores = recipe.validate(model)
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / max(unit_sum, 1),
            **(scores if main else {}),
            "seconds": seconds,
            "samples_per_second": recipe.train_size / seconds,
            "cpu_seconds": cpu_seconds,
        }
        history.append(record)
        if main:
            _write_checkpoint(
                ckpt_root, epoch, model, optimizer, scheduler, history, epoch_opt_state
            )
            if on_epoch_end is not None:
                on_epoch_end(record)
    progress.close()

    digest = None
    if distributed:
        digest = weights_digest(model)  # the synchronised weights, before the best epoch
        accelerator.wait_for_everyone()
    if main:
        best = max([*([start] if start else []), *history], key=recipe.best_key)
        best_dir = ckpt_root / ("start" if best["epoch"] == 0 else f"epoch-{best['epoch']}")
        model.load_state_dict(load_file(str(best_dir / "trainable.safetensors")), strict=False)
    for p in frozen:  # callers get fp32 weights back (bf16-rounded; bundles keep trained ones)
        p.data = p.data.float()
    model.to("cpu")
    epochs_run = len(history) - (resumed or 0)
    samples = epochs_run * recipe.train_size
    recent = sum(h["seconds"] for h in history[len(history) - epochs_run :]) if epochs_run else 0
    return model, TrainResult(
        bundle_dir="",
        history=history,
        best_epoch=best["epoch"] if main else 0,
        train_seconds=train_time,
        samples_per_second=samples / recent if recent else history[-1]["samples_per_second"],
        trainable_params=trainable,
        total_params=total,
        resumed_from_epoch=resumed,
        device=device.type,
        precision=precision_name(training_dtype(device, cfg.precision)),
        world_size=accelerator.num_processes,
        strategy=cfg.distributed if distributed else "single",
        backend=_backend() if distributed else None,
        trained_digest=digest,
    )


def _backend() -> str | None:
    import torch.distributed as dist

    return str(dist.get_backend()) if dist.is_initialized() else None


def hold_frozen_in_bf16(model: nn.Module, device: torch.device, precision: str) -> list:
    """Cast the frozen fp32 parameters of `model` to bf16 in place (training.frozen_precision);
    returns them. Under bf16 autocast every matmul reads bf16 weights anyway (autocast casts a
    copy per op), so only norms, embeddings and the residual stream see the rounding; the
    trained weights and their optimiser state stay fp32. Tied weights stay tied (the shared
    Parameter is cast once)."""
    if training_dtype(device, precision) != torch.bfloat16:
        raise ValueError(
            "training.frozen_precision=bf16 needs bf16 autocast: set training.precision=bf16 "
            "(this machine's auto precision is "
            f"{precision_name(training_dtype(device, precision))})"
        )
    # parameters() lists a tied (shared) Parameter once
    frozen = [p for p in model.parameters() if not p.requires_grad and p.dtype == torch.float32]
    for p in frozen:
        p.data = p.data.to(torch.bfloat16)
    return frozen


def head_and_body_groups(model: nn.Module, config: PipelineConfig) -> list[dict]:
    """AdamW groups: the head (when it has parameters) at `training.head_learning_rate`,
    every other trainable parameter at `training.learning_rate`."""
    cfg = config.training
    head = getattr(model, "head", None)
    head_params = list(head.parameters()) if head is not None else []
    body_params = [
        p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")
    ]
    groups = [{"params": head_params, "lr": cfg.head_learning_rate}] if head_params else []
    if body_params:
        groups.append({"params": body_params, "lr": cfg.learning_rate})
    return groups


def train_classifier(
    config: PipelineConfig,
    selection: Selection,
    train: TextSplit,
    validation: TextSplit,
    labels: list[str],
    workdir: Path,
    probe: Probe | None = None,
    on_epoch_end: EpochCallback | None = None,
    manifest: dict | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the selection, checkpoint each epoch, and save the best epoch as a bundle."""
    cfg = config.training
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    workdir = Path(workdir)

    head = probe if config.model.head_init == "probe" else None
    model, tokenizer, resolved = build_classifier(
        config.model.base_model, len(labels), config.model.pooling, head
    )
    steps_per_epoch = math.ceil(len(train.texts) / cfg.batch_size)
    model = apply_selection(model, selection, config.method, steps_per_epoch * cfg.epochs)
    pad_id = tokenizer.pad_token_id
    max_len = config.model.max_length
    train_enc = encode(tokenizer, train.texts, max_len, train.label_ids)
    val_enc = encode(tokenizer, validation.texts, max_len, validation.label_ids)

    def batches(epoch: int) -> Iterable[dict]:
        return iter_batches(
            train_enc,
            cfg.batch_size,
            pad_id,
            shuffle=True,
            seed=cfg.seed + epoch,
            group_by_length=cfg.group_by_length,
        )

    def score(model: nn.Module, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        part = Encoded(
            [val_enc.input_ids[i] for i in indices], [val_enc.labels[i] for i in indices]
        )
        preds, losses = predict_ids(model, part, pad_id, config.evaluation.batch_size)
        return {"pred": torch.from_numpy(preds), "loss": torch.from_numpy(losses)}

    def summarize(stats: dict[str, torch.Tensor]) -> dict:
        metrics = classification_metrics(validation.label_ids, stats["pred"].numpy(), labels)
        return {
            "val_loss": float(stats["loss"].mean()),
            "val_accuracy": metrics["accuracy"],
            "val_macro_f1": metrics["macro_f1"],
        }

    recipe = Recipe(
        model=model,
        param_groups=head_and_body_groups(model, config),
        train_size=len(train_enc),
        steps_per_epoch=steps_per_epoch,
        batches=batches,
        forward=lambda m, b, d: m(b["input_ids"].to(d), b["attention_mask"].to(d)),
        loss=lambda logits, b, d: nn.functional.cross_entropy(logits.float(), b["labels"].to(d)),
        val_size=len(val_enc),
        score=score,
        summarize=summarize,
        best_key=lambda h: (h["val_macro_f1"], -h["val_loss"]),
        desc=f"train {config.domain}",
        start_candidate=probe is not None and config.model.head_init == "probe",
    )
    model, result = fit(config, recipe, workdir, on_epoch_end, resume)
    if not is_main_process():
        return result  # rank 0 saves the bundle
    bundle = save_bundle(
        model,
        workdir / "bundle",
        {
            **(manifest or {}),
            "base_model": resolved.reference,
            "base_model_provenance": resolved.provenance,
            "labels": list(labels),
            "max_length": max_len,
            "method": config.method.name,
            "selection": selection.strategy,
            "target_modules": selection.target_modules,
        },
    )
    return replace(result, bundle_dir=str(bundle))


# generation settings that only decide how a trained model is evaluated
_EVALUATION_ONLY = (
    "max_new_tokens",
    "num_beams",
    "few_shot",
    "expect_json",
    "max_label_set",
    "constrain_to_labels",
)


def job_key(config: PipelineConfig, content: Iterable[str], sections: set[str]) -> str:
    """Identifies a training job by everything that determines its result (the data's
    `content` lines and the config's `sections`), so a re-run after a crash finds and resumes
    the same checkpoints, and a finished identical job is not recomputed."""
    import hashlib

    relevant = config.model_dump(mode="json", include=sections)
    relevant["data"].pop("path", None)  # the content below identifies the data
    relevant["data"].pop("rev", None)
    # recomputes the same activations: memory, not the result (tests/test_training.py)
    relevant["training"].pop("gradient_checkpointing", None)
    # the same global batches and optimisation in 1 or N processes (tests/test_distributed.py),
    # and a checkpoint resumes with any number of processes
    for key in ("num_processes", "distributed", "distributed_timeout_s"):
        relevant["training"].pop(key, None)
    # fast_dropout stays: on CPU it draws other masks, so another result (CUDA ignores it)
    for key in _EVALUATION_ONLY:
        relevant.get("generation", {}).pop(key, None)
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode())
    for line in content:
        digest.update(f"{line}\n".encode())
    return digest.hexdigest()[:20]


def training_key(config: PipelineConfig, train: TextSplit, validation: TextSplit) -> str:
    """`job_key` of a classifier: its training and validation texts and labels."""
    lines = (
        f"{label}\t{text}"
        for split in (train, validation)
        for text, label in zip(split.texts, split.label_ids, strict=True)
    )
    return job_key(config, lines, {"data", "model", "selection", "method", "training"})
