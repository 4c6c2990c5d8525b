"""Where and how training runs: the device, the process group, mixed precision, seeding.

One code path serves a single CPU process, a single GPU and ``torchrun`` DDP: ``DistEnv`` is
built from the ``torchrun`` environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
without them it describes one process of rank 0 in a world of 1.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from impbench.errors import ImpbenchError


def resolve_device(name: str) -> torch.device:
    """The torch device for a device string ("cpu", "cuda", "cuda:1", "auto").

    Raises ``ImpbenchError`` when CUDA is asked for and this torch cannot use it.
    """
    name = (name or "cpu").strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ImpbenchError(f"device {name!r} is not a device torch knows (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ImpbenchError(
                f"device {name!r} asked for, but torch {torch.__version__} ({build}) sees no usable GPU; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ImpbenchError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type != "cpu":
        raise ImpbenchError(f"device {name!r} is not supported (use cpu, cuda or cuda:N)")
    return device


@dataclass
class DistEnv:
    """This process's place in the (possibly one-process) training world."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    #: In a process group (started by ``torchrun``), even a world of one: then the model is
    #: wrapped in DDP and every collective runs (``torchrun --nproc-per-node 1`` checks NCCL).
    in_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.in_group

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``values`` over all ranks (``values`` itself in one process)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def all_gather(self, value: torch.Tensor) -> list[torch.Tensor]:
        """``value`` (same shape on every rank) from every rank, in rank order."""
        if not self.distributed:
            return [value]
        out = [torch.empty_like(value) for _ in range(self.world_size)]
        dist.all_gather(out, value)
        return out

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any rank (a MAX all-reduce): a decision
        that every rank must take together (stop, leave an epoch)."""
        if not self.distributed:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64, device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def in_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (its rendezvous variables are set), a
    world of one included."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def setup(device_name: str) -> DistEnv:
    """Join the process group if started by ``torchrun`` (NCCL on CUDA, gloo on CPU) and pick
    this process's device (``cuda:LOCAL_RANK`` under DDP on GPUs)."""
    device = resolve_device(device_name)
    if not in_torchrun():
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)
        return DistEnv(device=device)
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ImpbenchError(
                f"torchrun started local rank {local_rank} but only {torch.cuda.device_count()} GPU(s) are visible on this node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world_size, device=device, in_group=True)


def teardown(env: DistEnv) -> None:
    """Leave the process group (a no-op in one process)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Precision:
    """Mixed-precision settings: the autocast dtype (None: full float32) and whether a
    gradient scaler is needed (fp16)."""

    dtype: torch.dtype | None
    device_type: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def scaler(self) -> "torch.amp.GradScaler":
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_scaler)


def precision_for(mode: str, device: torch.device) -> Precision:
    """Resolve an ``amp`` option ("auto", "bf16", "fp16", "off") on a device.

    "auto": bf16 on a GPU that supports it, fp16 (with a gradient scaler) on an older GPU,
    full precision on CPU. "fp16-cuda": fp16 with a gradient scaler on CUDA (what the BiU-Net
    authors' archived runs used), full precision on CPU.
    """
    if mode == "off" or (mode == "fp16-cuda" and device.type != "cuda"):
        return Precision(None, device.type)
    if mode == "fp16-cuda":
        return Precision(torch.float16, "cuda")
    if mode == "auto":
        if device.type != "cuda":
            return Precision(None, device.type)
        return Precision(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16, "cuda")
    if mode == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ImpbenchError("option amp='bf16': this GPU does not support bfloat16; use amp=fp16 or amp=auto")
        return Precision(torch.bfloat16, device.type)
    if mode == "fp16":
        return Precision(torch.float16, device.type)
    raise ImpbenchError(f"option amp={mode!r}: must be one of auto, bf16, fp16, fp16-cuda, off")


def available_memory(device: torch.device) -> tuple[int, str]:
    """Bytes free for a new allocation on ``device`` and where the number came from.

    CUDA: ``torch.cuda.mem_get_info`` (free bytes on that GPU). CPU: psutil's
    ``virtual_memory().available`` when psutil is installed, else ``MemAvailable`` of
    ``/proc/meminfo``. Returns (bytes, source); bytes is -1 when nothing can tell.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device}"
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.virtual_memory().available), "available RAM (psutil)"
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except OSError:
        pass
    return -1, "unknown"


def format_bytes(n: float) -> str:
    """``n`` bytes as GiB/MiB with one decimal."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.1f} MiB"
