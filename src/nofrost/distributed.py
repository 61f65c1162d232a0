"""Multi-process training under ``torchrun`` (PyTorch DDP), one process per device.

``torchrun --nproc_per_node=K -m nofrost train ...`` starts K processes and sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in each one's environment (multi-node: add torchrun's
``--nnodes``/``--node_rank``/``--rdzv_endpoint`` flags; nothing else changes). The trainer calls
:func:`init_distributed`, which reads them, joins the process group (NCCL on CUDA, gloo on CPU)
and pins each process to ``cuda:LOCAL_RANK``. Without those variables it returns the
single-process context and touches nothing, so the same code path serves both.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this context created the process group (and so destroys it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` in place over all processes (a no-op for one process); returns it."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather_object(self, obj: object) -> list[object]:
        """Every process's ``obj`` (picklable, on the CPU), in rank order; ``[obj]`` for one."""
        if not self.enabled:
            return [obj]
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a device, or a
    ValueError that says what is available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but there are {torch.cuda.device_count()} CUDA devices")
    return device


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in _ENV) and int(os.environ["WORLD_SIZE"]) > 1


def process_rank() -> int:
    """This process's global rank under torchrun (0 otherwise), readable before or after training."""
    return int(os.environ["RANK"]) if launched_by_torchrun() else 0


def init_distributed(device: torch.device, *, timeout_minutes: float = 30.0) -> DistContext:
    """Join the process group torchrun set up, or return the single-process context.

    ``device`` is the device the config asked for: under torchrun a CUDA device becomes
    ``cuda:LOCAL_RANK`` (one GPU per process), and the backend is NCCL for CUDA, gloo for CPU.
    """
    if not launched_by_torchrun():
        return DistContext(device=device)
    rank, world_size, local_rank = (int(os.environ[name]) for name in _ENV)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK={local_rank} but this node has {torch.cuda.device_count()} CUDA device(s); "
                "start at most that many processes per node (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"distributed training supports cuda and cpu devices, not {device.type!r}")
    owns_group = not dist.is_initialized()  # a caller may have set up the group already
    if owns_group:
        timeout = datetime.timedelta(minutes=timeout_minutes)
        # torchrun keeps its rendezvous store across --max-restarts attempts, with the keys of the
        # attempt that failed: gloo then dials the dead workers' old ports and never connects (seen
        # with torch 2.14.1 on CPU, also without nofrost). Each attempt joins under its own prefix.
        store, _, _ = next(dist.rendezvous("env://", rank, world_size, timeout=timeout))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            backend, store=dist.PrefixStore(f"nofrost/attempt{attempt}", store), rank=rank, world_size=world_size,
            timeout=timeout, device_id=device if backend == "nccl" else None,
        )
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device, owns_group=owns_group)


def shutdown_distributed(context: DistContext, *, wait: bool = True) -> None:
    """Leave the process group if this context created it.

    ``wait`` first meets the other ranks at a barrier, so no rank exits while rank 0 still
    writes; after an error there is no waiting, since the other ranks may never arrive.
    """
    if context.owns_group and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
