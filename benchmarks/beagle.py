"""Beagle benchmark: wall time and peak memory of Beagle 5 through ``BeagleImputer``.

Datasets:

* the embedded ones (``--datasets``, default ``sim-1kgp,sim-los,sim-sgdp``): their cards are
  prepared (cached) and their train/val/test splits used as the harness uses them;
* a 1000 Genomes chr22-sized test set: ``--panel`` reference samples (2,285) and ``--test``
  target samples (263) simulated with msprime (constant size, fixed seed) at about
  ``--chr22-scale`` x 1M markers. ``--chr22-scale 1`` is the full size: the in-memory
  simulation then needs about 25 GB (msprime's int32 genotype matrix, 1M x 5,096 haplotypes)
  and Beagle's phasing of 263 x 1M genotypes takes hours on 2 cores (it grows about linearly
  with the markers: 0.01 took 2.5 min and 0.05 10 min on a loaded 2-core machine).

Each target gets ``--mask`` of its cells hidden (uniform, seeded). For every dataset the table
gives Beagle's fit and impute wall time as the harness sees them, the Java process's own wall
time and peak resident memory (``ru_maxrss`` of the child, from ``os.wait4``), the masked-cell
dosage R2 of Beagle and of the ``major`` baseline, and coverage. With ``--compare NAME`` (default
``biunet`` when installed) that imputer's fit and impute times are measured on the same data
(``--compare-opt KEY=VALUE`` sets its options; it is skipped on the chr22-sized set unless
``--compare-chr22``).

    .venv/bin/python benchmarks/beagle.py                            # embedded + chr22 at 1%
    .venv/bin/python benchmarks/beagle.py --datasets none --chr22-scale 0.05
    .venv/bin/python benchmarks/beagle.py --chr22-scale 0 --compare biunet --compare-opt epochs=2
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_PANEL_1KGP = 2285
N_TEST_1KGP = 263
N_VARIANTS_CHR22 = 1_000_000
CHR22_LENGTH = 35e6


@dataclass
class Data:
    name: str
    panel: object
    val: object
    truth: object
    masked: object
    mask: np.ndarray


def masked_r2(truth_codes: np.ndarray, dosage: np.ndarray, mask: np.ndarray) -> float:
    from impbench.genotypes import code_dosage

    true_dosage = code_dosage(truth_codes)[mask].astype(np.float64)
    imputed = np.asarray(dosage, dtype=np.float64)[mask]
    if true_dosage.std() == 0 or imputed.std() == 0:
        return float("nan")
    return float(np.corrcoef(true_dosage, imputed)[0, 1] ** 2)


def with_mask(name: str, panel, val, truth, rate: float, seed: int) -> Data:
    from impbench.genotypes import MISSING
    from impbench.bench.masking import make_mask

    mask = make_mask(truth.codes, rate, seed)
    codes = truth.codes.copy()
    codes[mask] = MISSING
    return Data(name, panel, val, truth, truth.with_codes(codes), mask)


def embedded(name: str, rate: float, seed: int) -> Data:
    from impbench.data.prepare import prepare

    store = prepare(name)
    return with_mask(name, store.read_split("train"), store.read_split("val"), store.read_split("test"), rate, seed)


def chr22_sized(scale: float, n_panel: int, n_test: int, rate: float, seed: int) -> Data:
    """``n_panel + n_test`` simulated samples, about ``scale`` x 1M markers over ``scale`` x 35 Mb."""
    from impbench.data.simulate import simulate_matrix

    population_size = 10_000
    n_samples = n_panel + n_test
    length = CHR22_LENGTH * scale
    harmonic = sum(1.0 / k for k in range(1, 2 * n_samples))
    mutation_rate = N_VARIANTS_CHR22 * scale / (4 * population_size * length * harmonic)
    t0 = time.perf_counter()
    full = simulate_matrix(n_samples=n_samples, sequence_length=length, seed=seed,
                           population_size=population_size, mutation_rate=mutation_rate)  # fmt: skip
    print(f"simulated {full.n_samples:,} samples x {full.n_variants:,} markers in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)  # fmt: skip
    panel = full.take_samples(np.arange(n_panel))
    truth = full.take_samples(np.arange(n_panel, n_samples))
    return with_mask(f"chr22-sized x{scale:g}", panel, None, truth, rate, seed)


def time_imputer(imputer, data: Data, work_dir: Path, threads: int, seed: int) -> dict:
    from impbench.imputers.base import RunContext, check_imputation

    ctx = RunContext(work_dir=work_dir, threads=threads, seed=seed, dataset=data.name)
    t0 = time.perf_counter()
    imputer.fit(data.panel, data.val, ctx)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = check_imputation(imputer.name, imputer.impute(data.masked, ctx), data.masked)
    impute_s = time.perf_counter() - t0
    covered = np.asarray(result.covered)
    return {
        "fit_s": fit_s,
        "impute_s": impute_s,
        "r2": masked_r2(data.truth.codes, result.dosage, data.mask & covered[None, :]),
        "coverage": float(covered.mean()),
        "info": imputer.manifest_info(),
    }


def make_imputer(name: str, option_pairs: list[str]):
    from impbench.imputers.base import make_options
    from impbench.imputers.registry import get_imputer

    cls = get_imputer(name)
    values = dict(pair.split("=", 1) for pair in option_pairs)
    return cls(make_options(cls.Options, values, name))


def run_one(data: Data, args, work_root: Path, compare: str | None) -> dict:
    from impbench_beagle import BeagleImputer, BeagleOptions

    from impbench.imputers.baselines import MajorImputer

    row = {"dataset": data.name, "panel": data.panel.n_samples,
           "test": data.truth.n_samples, "markers": data.truth.n_variants, "masked": int(data.mask.sum())}  # fmt: skip
    options = BeagleOptions(java_heap=args.java_heap)  # the harness's default: panel = training split
    beagle = time_imputer(BeagleImputer(options), data, work_root / data.name / "beagle", args.threads, args.seed)
    run = beagle["info"]["runs"][-1]
    row.update(beagle_fit_s=beagle["fit_s"], beagle_impute_s=beagle["impute_s"], java_wall_s=run["wall_s"],
               java_peak_mb=run["peak_rss_mb"], beagle_r2=beagle["r2"], coverage=beagle["coverage"],
               uncovered=run["uncovered_markers"])  # fmt: skip
    major = time_imputer(MajorImputer(), data, work_root / data.name / "major", args.threads, args.seed)
    row["major_r2"] = major["r2"]
    if compare:
        other = time_imputer(make_imputer(compare, args.compare_opt), data, work_root / data.name / compare,
                             args.threads, args.seed)  # fmt: skip
        row.update(other_fit_s=other["fit_s"], other_impute_s=other["impute_s"], other_r2=other["r2"])
    return row


def print_table(rows: list[dict], compare: str | None) -> None:
    columns = [
        ("dataset", "dataset", "{}"), ("panel", "panel", "{:,}"), ("test", "test", "{:,}"),
        ("markers", "markers", "{:,}"), ("masked", "masked cells", "{:,}"),
        ("beagle_fit_s", "beagle fit s", "{:.1f}"), ("beagle_impute_s", "beagle impute s", "{:.1f}"),
        ("java_wall_s", "java wall s", "{:.1f}"), ("java_peak_mb", "java peak MB", "{:,.0f}"),
        ("coverage", "coverage", "{:.4f}"), ("beagle_r2", "beagle R2", "{:.4f}"), ("major_r2", "major R2", "{:.4f}"),
    ]  # fmt: skip
    if compare:
        columns += [("other_fit_s", f"{compare} fit s", "{:.1f}"), ("other_impute_s", f"{compare} impute s", "{:.1f}"),
                    ("other_r2", f"{compare} R2", "{:.4f}")]  # fmt: skip
    header = [title for _, title, _ in columns]
    body = [[fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="sim-1kgp,sim-los,sim-sgdp", help="embedded cards, or 'none'")
    parser.add_argument("--chr22-scale", type=float, default=0.01,
                        help="fraction of chr22's ~1M markers for the 1000 Genomes-sized set (1 = full; 0 = skip)")
    parser.add_argument("--panel", type=int, default=N_PANEL_1KGP, help="reference samples of the chr22-sized set")
    parser.add_argument("--test", type=int, default=N_TEST_1KGP, help="target samples of the chr22-sized set")
    parser.add_argument("--mask", type=float, default=0.05, help="fraction of target cells hidden")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--java-heap", default=None, help="Java heap for Beagle, e.g. 8g (default: Java's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compare", default="auto", help="another imputer to time (default: biunet if installed; 'none')")
    parser.add_argument("--compare-opt", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--compare-chr22", action="store_true", help="also time --compare on the chr22-sized set")
    parser.add_argument("--workdir", type=Path, default=None, help="where Beagle's files go (default: a temp folder)")
    args = parser.parse_args(argv)

    compare = args.compare
    if compare == "auto":
        try:
            import impbench_biunet  # noqa: F401

            compare = "biunet"
        except ImportError:
            compare = None
    elif compare == "none":
        compare = None

    names = [] if args.datasets in ("", "none") else [n.strip() for n in args.datasets.split(",") if n.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-beagle-") as tmp:
        work_root = args.workdir or Path(tmp)
        for name in names:
            print(f"{name}: preparing", file=sys.stderr)
            rows.append(run_one(embedded(name, args.mask, args.seed), args, work_root, compare))
            print_table(rows[-1:], compare)
        if args.chr22_scale > 0:
            data = chr22_sized(args.chr22_scale, args.panel, args.test, args.mask, args.seed)
            rows.append(run_one(data, args, work_root, compare if args.compare_chr22 else None))
    print()
    print(f"Beagle via BeagleImputer, {args.threads} threads, {args.mask:g} of target cells masked; "
          f"R2 = dosage R2 on masked cells at covered markers.")  # fmt: skip
    print_table(rows, compare)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nthis Python process's peak RSS (simulation, parsing, baselines): {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
