"""Helpers for PyTorch's distributed engine (torchrun): rank, world size, reductions."""

from __future__ import annotations

import gc
import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def setup_from_env() -> torch.device | None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); returns the device
    this rank should use (its GPU, or the CPU with the gloo backend), or None when not
    distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def cleanup() -> None:
    """Leave the process group together: a rank that tears down gloo while another still uses
    it aborts ("terminate called without an active exception"). Callers should drop their
    DistributedDataParallel models first: collected here, they release their hold on the
    group while the interpreter is whole, not during its shutdown (where destroying gloo's
    leftover work objects can abort the process, as described in pytorch/pytorch#179291)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of floats over all ranks (identity when not distributed)."""
    if world_size() == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / world_size() for k, v in zip(keys, t.tolist(), strict=True)}


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's `obj` on rank 0 (None elsewhere)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: Any) -> Any:
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
