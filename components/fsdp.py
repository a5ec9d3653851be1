"""`training.distributed=fsdp`: parameters, gradients and optimiser state sharded across the
training processes with torch's FSDP2 (`torch.distributed.fsdp.fully_shard`).

Why torch's `fully_shard` and not accelerate's FSDP plugin: accelerate 1.15 turns a run into
FSDP only on GPU-like device types (its AcceleratorState ignores the plugin for MULTI_CPU, so
a CPU run would silently train DDP and nothing could be tested on CPU machines);
`fully_shard` is what accelerate's FSDP2 path calls underneath, and it runs the same on gloo
(CPU) and NCCL (GPUs). accelerate still owns the process group, autocast and backward.

How it fits `fit`: each process keeps the unsharded model in host memory (it is what rank 0
checkpoints and returns, as in one process), and trains and validates a sharded copy on its
device (each rank scores its share of the validation rows with it, each forward a
collective; rank 0 summarises them): one FSDP unit per transformer block (each element of
the model's `nn.ModuleList`s) plus the root. After each epoch every process gathers the
trained tensors (`get_model_state_dict` / `get_optimizer_state_dict`, full state dicts) into
that host model and into the optimiser state a checkpoint holds, in the same format as DDP
and one process: a checkpoint resumes with any strategy and any number of processes. What
FSDP saves is accelerator memory: each device holds 1/N of the weights, gradients and AdamW
state, plus one block's gathered weights at a time.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from components.config import ConfigError


def check_fsdp(config) -> None:
    """Refuse the options FSDP cannot combine with, before any process starts."""
    cfg = config.training
    if cfg.frozen_precision == "bf16":
        raise ConfigError(
            "training.frozen_precision=bf16 cannot be combined with training.distributed=fsdp "
            "(FSDP shards each block's parameters as one flat tensor of one dtype); use "
            "frozen_precision=fp32, or distributed=ddp"
        )
    if config.method.name == "qlora":
        raise ConfigError(
            "method.name=qlora cannot train with training.distributed=fsdp: sharding the "
            "4-bit base would lose its quantisation state; use distributed=ddp"
        )
    if config.method.name == "adalora":
        raise ConfigError(
            "method.name=adalora cannot train with training.distributed=fsdp: its rank "
            "allocator reads and prunes whole (unsharded) matrices every step; use "
            "distributed=ddp"
        )


def shard(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of `model` sharded over every process of the default process group, on `device`
    (the original stays unsharded where it is)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    sharded = copy.deepcopy(model)
    world = torch.distributed.get_world_size()
    mesh = init_device_mesh(device.type, (world,))
    # innermost first: FSDP2 wants a nested list (T5's block[i].layer) sharded before the
    # block holding it, and reversed pre-order puts every module after its descendants
    for module in reversed(list(sharded.modules())):
        if isinstance(module, nn.ModuleList):
            for block in module:
                if any(True for _ in block.parameters()):
                    fully_shard(block, mesh=mesh)
    fully_shard(sharded, mesh=mesh)
    return sharded


def remap_param_groups(groups: list[dict], model: nn.Module, sharded: nn.Module) -> list[dict]:
    """The optimiser's parameter groups of `model`, pointing at `sharded`'s parameters (FSDP
    replaces every parameter with a sharded one of the same name)."""
    names = {id(p): n for n, p in model.named_parameters()}
    params = dict(sharded.named_parameters())
    return [{**g, "params": [params[names[id(p)]] for p in g["params"]]} for g in groups]


def _options(**extra):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # every process gets the full tensors (each keeps an unsharded host model in step); the
    # frozen ones never change, so they are never gathered (a whole model on every device)
    return StateDictOptions(full_state_dict=True, cpu_offload=False, **extra)


def gather_into(sharded: nn.Module, model: nn.Module) -> None:
    """Copy the sharded copy's trained tensors into the unsharded `model` (a collective: every
    process calls it)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    full = get_model_state_dict(sharded, options=_options(ignore_frozen_params=True))
    model.load_state_dict({k: v for k, v in full.items() if k in trained}, strict=False)


def _names(sharded: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Parameter names in the order a plain `optimizer.state_dict()` numbers them."""
    names = {id(p): n for n, p in sharded.named_parameters()}
    return [names[id(p)] for g in optimizer.param_groups for p in g["params"]]


def optimizer_state(sharded: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimiser's full state as a one-process `optimizer.state_dict()` would hold it
    (parameters numbered, tensors whole, on CPU): the checkpoint format of every strategy. A
    collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    full = get_optimizer_state_dict(sharded, optimizer, options=_options())
    index = {name: i for i, name in enumerate(_names(sharded, optimizer))}

    def cpu(value):
        return value.detach().cpu() if isinstance(value, torch.Tensor) else value

    return {
        "state": {
            index[name]: {k: cpu(v) for k, v in s.items()} for name, s in full["state"].items()
        },
        "param_groups": [
            {**g, "params": [index[name] for name in g["params"]]} for g in full["param_groups"]
        ],
    }


def load_optimizer_state(sharded: nn.Module, optimizer: torch.optim.Optimizer, state: dict):
    """Load a checkpoint's `optimizer_state` (any strategy's) into the sharded optimiser."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    names = _names(sharded, optimizer)
    by_name = {
        "state": {names[i]: s for i, s in state["state"].items()},
        "param_groups": [
            {**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]
        ],
    }
    # not strict: a trainable tensor that never had a gradient (an unused pooler under full
    # fine-tuning) has no AdamW state in any strategy's checkpoint
    set_optimizer_state_dict(sharded, optimizer, by_name, options=_options(strict=False))
