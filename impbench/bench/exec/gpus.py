"""GPU slots: whether this machine has a GPU driver, which GPUs are visible, and whether an
imputer's work holds one (its class says so with ``Imputer.uses_gpu``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def gpu_driver_present() -> bool:
    """False when this Linux machine plainly has no NVIDIA or ROCm GPU driver; True otherwise."""
    if not sys.platform.startswith("linux"):
        return True
    markers = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")
    return any(os.path.exists(path) for path in markers)


def visible_gpus(device: str) -> list[str | None]:
    """GPU slots for ``device``: one per visible device (ids from ``CUDA_VISIBLE_DEVICES`` or
    ``/dev/nvidiaN``), or a single unmapped slot for an explicit ``cuda:N``."""
    if device.startswith("cuda:"):
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    else:
        ids = sorted((p.name[len("nvidia"):] for p in Path("/dev").glob("nvidia[0-9]*")), key=int)
    return list(ids) or [None]


def wants_gpu(cls: type, device: str) -> bool:
    """Whether an imputer's work holds a GPU: a class with ``uses_gpu`` (the torch imputers of
    ``impbench.nn``) on a machine with a GPU driver, unless ``--device cpu``."""
    if device == "cpu" or not gpu_driver_present():
        return False
    return bool(getattr(cls, "uses_gpu", False))
