"""Data-parallel helpers for the trainer under torchrun (CPU tensors, gloo backend).

Why manual gradient averaging instead of DistributedDataParallel: the learner calls its
actor and critics directly (several forwards per step, the critics frozen during the actor
step), which DDP's forward hooks do not follow. One flattened all-reduce per network and
step (`allreduce_mean_grads`, the learner's `grad_sync`) is all DDP would do here anyway.

Replicas start identical (same seed, or the same warm-start / resume state broadcast from
rank 0) and apply identical averaged gradients, so they stay identical; `param_digest`
lets the trainer check that at the end. With one process (no torchrun) everything here is a
no-op, so the trainer has a single code path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: rank and world size (1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_from_env() -> DistContext:
    """Join the process group torchrun describes (WORLD_SIZE / RANK / MASTER_ADDR ...)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # the learner runs on CPU tensors
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size())


def close(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def allreduce_mean_grads(params: list[nn.Parameter]) -> None:
    """Average the gradients of `params` over all ranks in place (one flat all-reduce;
    a missing gradient counts as zero)."""
    world = dist.get_world_size()
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's `obj` on every rank (pickled; used once at start for the initial state)."""
    if not ctx.active:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, ctx: DistContext) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere)."""
    if not ctx.active:
        return [obj]
    out: list[Any] | None = [None] * ctx.world if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def param_digest(*modules: nn.Module) -> str:
    """sha256 over the parameters and buffers of `modules`, in state_dict order."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
