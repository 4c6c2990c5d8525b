"""Beagle by region vs one Beagle call: wall time, peak memory and masked-cell concordance.

The dataset is sim-1kgp's card with a longer ``length`` (``--variants``, default ~100k variants:
sim-1kgp gives about 6,400 SNPs per 1.2 Mb), written to a temporary cards folder and prepared
through the harness (``prepare(..., extra_dirs=[folder])``, i.e. ``--cards``). Beagle is fitted
on the training split and imputes the test split with ``--mask`` of its cells hidden, once
whole and once per region (``chunk_mb``/``overlap_mb``/``chunk_jobs``), same threads in total.

Peak memory: the largest summed resident memory of this process's descendants (every Beagle
JVM running at the time), sampled from /proc every 0.2 s; and the largest single Beagle
(``ru_maxrss``).

    .venv/bin/python benchmarks/beagle_chunks.py
    .venv/bin/python benchmarks/beagle_chunks.py --variants 30000 --chunk-mb 2 --overlap-mb 0.5
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SNPS_PER_BP = 6_400 / 1_200_000  # sim-1kgp: about 6,400 SNPs over its 1.2 Mb


def descendants_rss_mb() -> float:
    """Summed VmRSS (MiB) of every descendant of this process."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as f:
                found = re.search(r"VmRSS:\s+(\d+)", f.read())
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(found.group(1)) if found else 0
    total, stack = 0, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1024


class PeakSampler:
    def __init__(self, every_s: float = 0.2):
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.peak_mb = max(self.peak_mb, descendants_rss_mb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def scaled_card(folder: Path, variants: int) -> tuple[str, int]:
    """sim-1kgp's card with ``length`` for ~``variants`` SNPs, as ``sim-1kgp-scaled`` in ``folder``."""
    from impbench.data.cards import get_card

    text = Path(get_card("sim-1kgp").path).read_text()
    length = int(round(variants / SNPS_PER_BP, -3))
    text, n = re.subn(r"(?m)^length\s*=\s*[\d_]+", f"length = {length}", text)
    assert n == 1, "sim-1kgp's card has no length line"
    (folder / "sim-1kgp-scaled.toml").write_text(text)
    return "sim-1kgp-scaled", length


def run(data, options, work_dir: Path, threads: int, seed: int) -> dict:
    from impbench.genotypes import code_dosage
    from impbench.imputers.base import RunContext, check_imputation
    from impbench_beagle import BeagleImputer

    panel, masked, truth, mask = data
    imputer = BeagleImputer(options)
    ctx = RunContext(work_dir=work_dir, threads=threads, seed=seed)
    imputer.fit(panel, None, ctx)
    with PeakSampler() as sampler:
        t0 = time.perf_counter()
        imputation = check_imputation("beagle", imputer.impute(masked, ctx), masked)
        wall = time.perf_counter() - t0
    info = imputer.manifest_info()["runs"][-1]
    concordance = float((code_dosage(truth.codes)[mask] == code_dosage(imputation.calls)[mask]).mean())
    return {"wall_s": wall, "peak_tree_mb": sampler.peak_mb, "peak_one_mb": info["peak_rss_mb"],
            "regions": info.get("regions", 1), "jobs": info.get("region_jobs", 1), "concordance": concordance}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100_000, help="about this many simulated SNPs")
    parser.add_argument("--chunk-mb", type=float, default=5.0)
    parser.add_argument("--overlap-mb", type=float, default=1.0)
    parser.add_argument("--chunk-jobs", type=int, default=None, help="default: --threads")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mask", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from impbench.bench.masking import make_mask
    from impbench.data.prepare import prepare
    from impbench.genotypes import MISSING
    from impbench_beagle import BeagleOptions

    with tempfile.TemporaryDirectory(prefix="beagle-chunks-") as tmp:
        tmp = Path(tmp)
        name, length = scaled_card(tmp, args.variants)
        t0 = time.perf_counter()
        store = prepare(name, extra_dirs=[tmp])
        panel, truth = store.read_split("train"), store.read_split("test")
        print(f"{name}: length {length:,} bp, {truth.n_variants:,} variants, panel {panel.n_samples}, "
              f"target {truth.n_samples} (prepared in {time.perf_counter() - t0:.0f} s)")
        mask = make_mask(truth.codes, args.mask, args.seed)
        codes = truth.codes.copy()
        codes[mask] = MISSING
        data = (panel, truth.with_codes(codes), truth, mask)
        rows = {
            "whole": run(data, BeagleOptions(), tmp / "whole", args.threads, args.seed),
            "regions": run(data, BeagleOptions(chunk_mb=args.chunk_mb, overlap_mb=args.overlap_mb,
                                               chunk_jobs=args.chunk_jobs), tmp / "regions", args.threads, args.seed),
        }
    print(f"\nregions: {args.chunk_mb:g} Mb + {args.overlap_mb:g} Mb each side; {args.threads} threads in total; "
          f"mask {args.mask:g}")
    print(f"{'run':<8} {'regions':>7} {'jobs':>4} {'wall s':>8} {'peak MB (all)':>13} {'peak MB (one)':>13} {'concordance':>11}")
    for label, row in rows.items():
        print(f"{label:<8} {row['regions']:>7} {row['jobs']:>4} {row['wall_s']:>8.1f} {row['peak_tree_mb']:>13.0f} "
              f"{row['peak_one_mb']:>13.0f} {row['concordance']:>11.4f}")
    whole, regions = rows["whole"], rows["regions"]
    print(f"ratio regions/whole: wall {regions['wall_s'] / whole['wall_s']:.2f}, peak (all) "
          f"{regions['peak_tree_mb'] / whole['peak_tree_mb']:.2f}, peak (one) {regions['peak_one_mb'] / whole['peak_one_mb']:.2f}; "
          f"concordance difference {regions['concordance'] - whole['concordance']:+.4f}")


if __name__ == "__main__":
    main()
