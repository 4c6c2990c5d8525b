"""Quick real check of the array scheme on shapeit4-example's 1000 Genomes chr20 data.

Reads reference.vcf.gz (biallelic SNPs), takes the last 30 samples as the target and the
other 270 as the panel, types the target at the scaffold's sites (``scaffold.vcf.gz``), runs
the Beagle and Minimac4 plugins (genetic map chr20.b37.gmap.gz) and prints, per imputer, the
minor-allele dosage r² over the hidden cells, the share of non-integer dosages there, the mean
of its own quality estimate (DR2 / R2) and the wall time.

    python benchmarks/array_quick.py [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

EXAMPLES = Path("/usr/share/doc/shapeit4/examples/test")


def read_panel(path: Path):
    from cyvcf2 import VCF

    from impbench.genotypes import GenotypeMatrix, codes_from_alleles

    vcf = VCF(str(path), threads=1)
    samples = np.array(vcf.samples, dtype=object)
    columns, positions, refs, alts = [], [], [], []
    for record in vcf:
        if not record.is_snp or len(record.ALT) != 1:
            continue
        g = record.genotype.array()
        columns.append(codes_from_alleles(g[:, 0], g[:, 1]))
        positions.append(record.POS)
        refs.append(record.REF)
        alts.append(record.ALT[0])
    codes = np.stack(columns, axis=1).astype(np.uint8)
    n = len(samples)
    return GenotypeMatrix(
        codes=codes, positions=np.array(positions, dtype=np.int64), contig="20",
        ref=np.array(refs, dtype=object), alt=np.array(alts, dtype=object),
        variant_ids=np.array([f"20:{p}" for p in positions], dtype=object), sample_ids=samples,
        cohort=np.full(n, "all", dtype=object), sex=np.full(n, "unknown", dtype=object),
    )


def minor_dosage_r2(truth_codes, dosage, mask, panel_codes) -> float:
    from impbench.genotypes import alt_allele_frequency, code_dosage

    alt_is_minor = alt_allele_frequency(panel_codes) <= 0.5
    true = code_dosage(truth_codes).astype(np.float64)
    pred = np.asarray(dosage, dtype=np.float64)
    true = np.where(alt_is_minor[None, :], true, 2 - true)[mask]
    pred = np.where(alt_is_minor[None, :], pred, 2 - pred)[mask]
    return float(np.corrcoef(true, pred)[0, 1] ** 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from impbench.bench.masking import apply_mask, make_mask
    from impbench.genotypes import is_call
    from impbench.imputers.base import RunContext, check_imputation
    from impbench.io.sites import match_typed_sites, read_typed_sites

    full = read_panel(EXAMPLES / "reference.vcf.gz")
    match = match_typed_sites(read_typed_sites(EXAMPLES / "scaffold.vcf.gz"), full.contig, full.positions)
    panel = full.take_samples(np.arange(full.n_samples - 30))
    truth = full.take_samples(np.arange(full.n_samples - 30, full.n_samples))
    mask = make_mask(truth.codes, 0.9, 0, "array", typed=match.typed)
    target = truth.with_codes(apply_mask(truth.codes, mask))
    print(f"data: {full.n_samples} samples x {full.n_variants} biallelic SNPs; panel {panel.n_samples}, "
          f"target {truth.n_samples}; {match.describe()}; hidden cells {int(mask.sum())}")

    from impbench_beagle import BeagleImputer, BeagleOptions
    from impbench_minimac4 import Minimac4Imputer, Minimac4Options

    gmap = str(EXAMPLES / "chr20.b37.gmap.gz")
    imputers = {
        "beagle": BeagleImputer(BeagleOptions(map=gmap, nthreads=args.threads)),
        "minimac4": Minimac4Imputer(Minimac4Options(map=gmap, threads=args.threads)),
    }
    print(f"{'imputer':10} {'r2_minor':>9} {'non-integer DS':>15} {'own quality':>12} {'fit s':>7} {'impute s':>9}")
    with tempfile.TemporaryDirectory() as work:
        for name, imputer in imputers.items():
            ctx = RunContext(work_dir=Path(work) / name, threads=args.threads, seed=1)
            ctx.scheme, ctx.typed = "array", match.typed
            t0 = time.perf_counter()
            imputer.fit(panel, None, ctx)
            t1 = time.perf_counter()
            result = check_imputation(name, imputer.impute(target, ctx), target)
            t2 = time.perf_counter()
            scored = mask & result.covered[None, :]
            r2 = minor_dosage_r2(truth.codes, result.dosage, scored, panel.codes)
            ds = result.dosage[scored]
            fractional = float(np.mean(np.abs(ds - np.round(ds)) > 1e-6))
            hidden = ~match.typed & result.covered
            quality = float(np.nanmean(result.quality[hidden])) if result.quality is not None else float("nan")
            print(f"{name:10} {r2:9.4f} {fractional:15.1%} {quality:12.3f} {t1 - t0:7.2f} {t2 - t1:9.2f}")
            assert is_call(result.calls).all()


if __name__ == "__main__":
    main()
