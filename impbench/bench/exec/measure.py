"""Measuring a stage of work: wall-clock seconds and peak memory (``StageMeter``), and the
versions of the libraries a run used (``package_versions``).

``seconds`` is wall-clock (``time.perf_counter``). ``peak_mb`` is the peak resident set size of
this process during the stage, above its size when the stage began, sampled every 10 ms from
``/proc/self/statm`` (elsewhere: the growth of ``ru_maxrss``); freed heap memory is returned to
the OS first (glibc ``malloc_trim``) so that a stage reusing memory an earlier one freed still
shows it. It counts numpy and torch (CPU) allocations alike, not GPU memory. A spike shorter
than the sampling interval is caught only when it sets a new high-water mark of the process
(``ru_maxrss``). ``child_peak_mb`` is the largest resident size of a child process (Beagle's
JVM, ``torchrun`` workers) that ended during the stage, when it set a new maximum
(``RUSAGE_CHILDREN``), else None.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
import threading
import time
from typing import Any

_MALLOC_TRIM: Any = None


class StageMeter:
    """Wall-clock seconds and peak memory growth of a block of code (see the module docstring)."""

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.seconds = 0.0
        self.peak_mb = 0.0
        self.child_peak_mb: float | None = None

    @staticmethod
    def _rss_bytes() -> int | None:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _maxrss_bytes(who: int) -> int:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(who).ru_maxrss * scale

    @staticmethod
    def _release_free_memory() -> None:
        """Give freed heap pages back to the OS (glibc ``malloc_trim``), so that memory a stage
        allocates shows as growth of the resident size even when an earlier stage freed it."""
        global _MALLOC_TRIM
        if _MALLOC_TRIM is None:
            try:
                import ctypes

                _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                _MALLOC_TRIM = False
        if _MALLOC_TRIM:
            _MALLOC_TRIM(0)

    def __enter__(self) -> "StageMeter":
        self._release_free_memory()
        self._stop = threading.Event()
        self._start_rss = self._rss_bytes()
        self._peak_rss = self._start_rss or 0
        self._start_maxrss = self._maxrss_bytes(resource.RUSAGE_SELF)
        self._start_children = self._maxrss_bytes(resource.RUSAGE_CHILDREN)
        if self._start_rss is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            rss = self._rss_bytes()
            if rss is not None and rss > self._peak_rss:
                self._peak_rss = rss

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._start_rss is not None:
            self._stop.set()
            self._thread.join()
            rss = self._rss_bytes() or 0
            grown = max(self._peak_rss, rss) - self._start_rss
        else:
            grown = 0
        # a new process high-water mark set during the stage counts even if no sample saw it
        maxrss = self._maxrss_bytes(resource.RUSAGE_SELF)
        if maxrss > self._start_maxrss:
            grown = max(grown, maxrss - (self._start_rss or self._start_maxrss))
        self.peak_mb = round(max(grown, 0) / 2**20, 3)
        children = self._maxrss_bytes(resource.RUSAGE_CHILDREN)
        self.child_peak_mb = round(children / 2**20, 3) if children > self._start_children else None


def package_versions() -> dict[str, str | None]:
    """Python and the main libraries' versions, read from package metadata (nothing imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("numpy", "pandas", "h5py", "cyvcf2", "msprime", "pluggy", "click", "rich", "scipy", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions
