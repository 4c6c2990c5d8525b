"""impbench's NRD and GT r² against ``bcftools stats`` on the same cells.

Both files hold only the scored (masked) cells; every other cell is ``./.``, which bcftools
skips. Variants are restricted to those whose training ALT frequency is at most 0.5, so the
minor allele is the ALT allele and impbench's orientation equals bcftools' REF/ALT one.

Two bcftools conventions are matched on purpose: NRD is in percent, and its GT r² (``GCsAF``
"dosage r-squared") loses the ALT dose sum of sites with one ALT allele in the first file (the
singleton bin is merged without its ``x`` sum), so such sites are left out of the comparison
(docs/metrics.md).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from impbench.bench.masking import make_mask
from impbench.scoring.metrics import score
from impbench.data.simulate import simulate_matrix
from impbench.genotypes import MISSING, alt_allele_frequency, code_dosage
from impbench.imputers.baselines import KnnImputer
from impbench.imputers.base import RunContext
from impbench.io.vcf_write import write_vcf

pytestmark = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools is not installed")


def bcftools_numbers(truth_vcf, pred_vcf) -> tuple[float, float, int]:
    out = subprocess.run(["bcftools", "stats", "--af-bins", "0,1", "-s", "-", str(truth_vcf), str(pred_vcf)],
                         capture_output=True, text=True, check=True).stdout
    nrd = next(line.split("\t") for line in out.splitlines() if line.startswith("NRDs\t"))
    gcs = next(line.split("\t") for line in out.splitlines() if line.startswith("GCsAF\t"))
    return float(nrd[2]), float(gcs[9]), int(gcs[10])


def test_nrd_and_gt_r2_match_bcftools_stats(tmp_path):
    matrix = simulate_matrix(n_samples=120, sequence_length=300_000, seed=21)
    panel, target = matrix.take_samples(np.arange(80)), matrix.take_samples(np.arange(80, 120))
    freq = alt_allele_frequency(panel.codes)
    mask = make_mask(target.codes, 0.25, 7)
    alt_dose_masked = np.where(mask, code_dosage(target.codes), 0).sum(axis=0)
    keep = np.flatnonzero((freq <= 0.5) & (alt_dose_masked != 1))
    panel, target, mask, freq = panel.take_variants(keep), target.take_variants(keep), mask[:, keep], freq[keep]

    imputer = KnnImputer()
    ctx = RunContext(work_dir=tmp_path / "work")
    imputer.fit(panel, None, ctx)
    masked = target.with_codes(np.where(mask, MISSING, target.codes).astype(np.uint8))
    imputation = imputer.impute(masked, ctx)

    write_vcf(target.with_codes(np.where(mask, target.codes, MISSING).astype(np.uint8)), tmp_path / "truth.vcf.gz")
    write_vcf(target.with_codes(np.where(mask, imputation.calls, MISSING).astype(np.uint8)), tmp_path / "pred.vcf.gz")
    nrd_percent, gt_r2, n_genotypes = bcftools_numbers(tmp_path / "truth.vcf.gz", tmp_path / "pred.vcf.gz")

    overall = score(target.codes, imputation, mask, train_alt_freq=freq).metrics
    overall = overall[overall["bin"] == "overall"].set_index("metric")
    assert int(overall.loc["nrd", "n_genotypes"]) == n_genotypes == int(mask.sum())
    assert 100 * overall.loc["nrd", "value"] == pytest.approx(nrd_percent, abs=1e-4)
    assert overall.loc["gt_r2", "value"] == pytest.approx(gt_r2, abs=1e-5)
    assert 0.2 < overall.loc["gt_r2", "value"] < 0.999  # a real, imperfect imputation
