"""Where and how the model runs: the device, the numeric precision, and torchrun's process group.

Every command resolves these the same way: `auto` devices, autocast by precision name, and the
rank, world size and local rank that torchrun puts in the environment.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(device: str = "auto") -> torch.device:
    """auto picks cuda, then mps, then cpu; anything else is passed to torch.device (errors are ValueError)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "mps" and not _mps_available():
        raise ValueError(f"device {device!r} requested but MPS is not available")
    return resolved


def default_workers(device: torch.device) -> int:
    """Decode worker processes when none are asked for: 2, but none on a CPU of 2 cores or fewer, where
    the workers take the cores the model runs on (README, "Speed and memory", has the measurements)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if device.type == "cpu" and cores <= 2 else 2


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for `precision` on `device` (None: plain fp32). auto keeps CPUs exact."""
    if precision == "auto":
        return None if device.type == "cpu" else torch.float16 if device.type == "cuda" else torch.bfloat16
    if precision not in _PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose auto, {', '.join(_PRECISIONS)}")
    return _PRECISIONS[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast for `dtype`, or nothing for fp32."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def backend_for(device: torch.device) -> str:
    """The collective backend for tensors on `device`: NCCL for CUDA, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


@dataclass(frozen=True)
class World:
    """This process's place among torchrun's processes (RANK, WORLD_SIZE, LOCAL_RANK; one process alone
    without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "World":
        env = os.environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """One GPU per process: a bare auto/cuda becomes cuda:LOCAL_RANK when several processes run."""
        if self.size > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return device

    def take(self, items: list) -> list:
        """This rank's share: items rank, rank + size, rank + 2 size..."""
        return items[self.rank::self.size]

    def join(self, backend: str, timeout: timedelta | None = None) -> None:
        """Join the process group once (see `backend_for`); nothing to do alone."""
        if self.size > 1 and not dist.is_initialized():
            options = {"timeout": timeout} if timeout else {}
            dist.init_process_group(backend, **options)

    def broadcast(self, value):
        """Rank 0's `value` (any picklable object) on every rank."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics) everywhere: DDP syncs them before each forward, not after the last."""
        if self.size > 1:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def leave(self) -> None:
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()
