"""The machine a run ran on (CPU model, cores, memory, GPUs), for the manifest and the result
records (``impbench.bench.export``). Read from ``/proc`` and ``nvidia-smi`` where present;
what cannot be read is None, never guessed."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpus() -> list[str]:
    """GPU names from ``nvidia-smi`` ([] without it or without a GPU)."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return []
    try:
        done = subprocess.run([command, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def machine_info() -> dict:
    """``{"system", "cpu", "cores", "usable_cores", "memory_gb", "gpus"}`` (no host name: records
    are meant to be shared)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {"system": f"{platform.system()} {platform.machine()}".strip(),
            "cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable, "memory_gb": _memory_gb(),
            "gpus": _gpus()}
