"""Running Beagle on one group of test samples: its target VCF, one Beagle process (or one per
region, ``chunks``), its output read back onto the group's samples and all variants.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench.io.vcf_write import write_vcf

from .chunks import Window, merge_outputs, plan_windows
from .groups import SampleGroup
from .locate import BeagleTool
from .output import BeagleOutput, read_beagle_output
from .parallel import run_parallel, share_threads
from .process import run_beagle


@dataclass(frozen=True)
class BeagleCall:
    """What every Beagle run of one impute call shares.

    tool : the Beagle to run. args : (target file name, region (start, end) or None, threads)
    -> Beagle's ``key=value`` arguments. options : the imputer's ``BeagleOptions`` (java_heap,
    timeout, keep_vcfs, chunk_mb, overlap_mb, chunk_jobs are read). logger : for messages.
    """

    tool: BeagleTool
    args: Callable[[str, tuple[int, int] | None, int], list[str]]
    options: Any
    logger: logging.Logger


def impute_group(call: BeagleCall, target: GenotypeMatrix, group: SampleGroup, run_dir: Path, name: str,
                 threads: int, cancel: threading.Event) -> tuple[BeagleOutput, dict]:
    """Beagle on ``group``'s samples of ``target``, its ``written`` variants in the target VCF;
    returns the output (on the group's samples, all variants) and the run's cost
    (``wall_s``, ``peak_rss_mb``, and ``regions`` / ``region_jobs`` when by region).

    ``name``: "" for the only group (files ``target.vcf.gz``, ``out.*``), else e.g. ``g0003``
    (``target-g0003.vcf.gz``, ``g0003.*``). ``threads``: Beagle's threads for this group.
    """
    opts = call.options
    members = target if group.samples.size == target.n_samples else target.take_samples(group.samples)
    written = members if group.written.all() else members.take_variants(group.written)
    target_vcf = run_dir / (f"target-{name}.vcf.gz" if name else "target.vcf.gz")
    try:
        write_vcf(written, target_vcf, index=False)
    except OSError as err:
        raise ImpbenchError(f"beagle: cannot write the target {target_vcf} ({err.strerror or err})") from None
    try:
        if opts.chunk_mb is not None:
            return impute_by_region(call, members, group.written, target_vcf.name, run_dir, threads, cancel,
                                    f"{name}-region" if name else "region")
        run = run_beagle(call.tool, call.args(target_vcf.name, None, threads), run_dir, out_name=name or "out",
                         java_heap=opts.java_heap, timeout=opts.timeout, cancel=cancel)
        output = read_beagle_output(run.output_vcf, members)
        if not opts.keep_vcfs:
            run.output_vcf.unlink(missing_ok=True)
        return output, {"wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb}
    finally:
        if not opts.keep_vcfs:
            target_vcf.unlink(missing_ok=True)


def impute_by_region(call: BeagleCall, target: GenotypeMatrix, written: np.ndarray, target_name: str, run_dir: Path,
                     threads: int, cancel: threading.Event, out_prefix: str) -> tuple[BeagleOutput, dict]:
    """One Beagle per window (``chunks``), ``chunk_jobs`` at a time (sharing ``threads``), merged
    onto ``target``; ``written`` bool (n_variants,): the variants in the target VCF."""
    opts = call.options
    chunk_bp = round(opts.chunk_mb * 1e6)
    overlap_bp = round((opts.chunk_mb / 5 if opts.overlap_mb is None else opts.overlap_mb) * 1e6)
    windows = plan_windows(target.positions, chunk_bp, overlap_bp)
    for window in windows:
        if not written[window.variants].any():
            raise ImpbenchError(
                f"beagle: region {target.contig}:{window.start}-{window.end} has no observed genotype in the "
                f"target; use a larger beagle.chunk_mb (now {opts.chunk_mb:g})")
    jobs, threads_each = share_threads(threads, len(windows), opts.chunk_jobs)

    def run_one(window: Window, cancel: threading.Event) -> tuple[BeagleOutput, float, float]:
        run = run_beagle(call.tool, call.args(target_name, (window.start, window.end), threads_each), run_dir,
                         out_name=f"{out_prefix}{window.index:04d}", java_heap=opts.java_heap,
                         timeout=opts.timeout, cancel=cancel)
        part = read_beagle_output(run.output_vcf, target.take_variants(window.variants))
        if not opts.keep_vcfs:
            run.output_vcf.unlink(missing_ok=True)
        return part, run.wall_s, run.peak_rss_mb

    call.logger.info("beagle: %d regions of %g Mb (+%g Mb each side), %d at a time",
                     len(windows), chunk_bp / 1e6, overlap_bp / 1e6, jobs)
    results = run_parallel(windows, run_one, jobs, cancel)
    output = merge_outputs(target, [(window, part) for window, (part, _, _) in results])
    stats = {"regions": len(windows), "region_jobs": jobs,
             "wall_s": sum(wall for _, (_, wall, _) in results),
             "peak_rss_mb": max(rss for _, (_, _, rss) in results)}
    return output, stats


def sum_stats(stats: list[dict]) -> dict:
    """The Beagle cost of one impute call from its runs' stats: seconds summed over the runs
    (Beagle seconds, not wall time when runs overlap), the peak memory of one run."""
    total = {"wall_s": round(sum(s["wall_s"] for s in stats), 3),
             "peak_rss_mb": round(max(s["peak_rss_mb"] for s in stats), 1)}
    if "regions" in stats[0]:
        total["regions"] = sum(s["regions"] for s in stats)
        total["region_jobs"] = max(s["region_jobs"] for s in stats)
    return total
