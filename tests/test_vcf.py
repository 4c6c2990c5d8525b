"""VCF writing (GT and GT:DS:GP) and reading (cyvcf2, batches, region, site filters)."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest

from impbench.genotypes import CODE_GT, GenotypeMatrix, probs_calls, probs_dosage
from impbench.imputer import Imputation
from impbench.vcf import dosage_r2, write_vcf

needs_bcftools = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")


def random_matrix(n_samples=7, n_variants=23, seed=0, missing=0.1) -> GenotypeMatrix:
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 5, size=(n_samples, n_variants)).astype(np.uint8)
    codes[rng.random(codes.shape) < missing] = 0
    positions = np.sort(rng.choice(np.arange(1, 10_000), size=n_variants, replace=False))
    return GenotypeMatrix(
        codes=codes,
        positions=positions,
        contig="chr22",
        ref=rng.choice(list("ACGT"), n_variants).astype(object),
        alt=np.full(n_variants, "T", dtype=object),
        variant_ids=np.array([f"rs{i}" if i % 3 else "." for i in range(n_variants)], dtype=object),
        sample_ids=np.array([f"S{i}" for i in range(n_samples)], dtype=object),
    )


def parse_vcf(path):
    """Plain-Python parse: (header lines, list of record field lists)."""
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    header = [line for line in lines if line.startswith("#")]
    records = [line.split("\t") for line in lines if not line.startswith("#")]
    return header, records


def test_write_gt_only_text(tmp_path):
    matrix = random_matrix()
    out = write_vcf(matrix, tmp_path / "x.vcf.gz")
    header, records = parse_vcf(out)
    assert header[0] == "##fileformat=VCFv4.2"
    assert any(h.startswith("##contig=<ID=chr22") for h in header)
    assert header[-1].split("\t")[9:] == list(matrix.sample_ids)
    assert len(records) == matrix.n_variants
    for j, fields in enumerate(records):
        assert fields[0] == "chr22" and int(fields[1]) == matrix.positions[j]
        assert fields[2] == matrix.variant_ids[j] and fields[3] == matrix.ref[j] and fields[4] == "T"
        assert fields[8] == "GT"
        assert fields[9:] == [CODE_GT[c] for c in matrix.codes[:, j]]
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_write_sample_index(tmp_path):
    matrix = random_matrix()
    out = write_vcf(matrix, tmp_path / "x.vcf.gz", sample_index=np.array([4, 1]))
    header, records = parse_vcf(out)
    assert header[-1].split("\t")[9:] == ["S4", "S1"]
    assert [r[9:] for r in records] == [[CODE_GT[matrix.codes[4, j]], CODE_GT[matrix.codes[1, j]]] for j in range(matrix.n_variants)]


def test_write_imputation_fields(tmp_path):
    matrix = random_matrix(missing=0.0)
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=matrix.codes.shape).astype(np.float32)
    imputation = Imputation(calls=probs_calls(probs), dosage=probs_dosage(probs), probs=probs)
    masked = rng.random(matrix.codes.shape) < 0.3
    out = write_vcf(matrix, tmp_path / "imp.vcf.gz", imputation=imputation, masked=masked)
    header, records = parse_vcf(out)
    for field in ("GT", "DS", "GP", "MK"):
        assert any(h.startswith(f"##FORMAT=<ID={field},") for h in header)
    for field in ("AF", "DR2"):
        assert any(h.startswith(f"##INFO=<ID={field},") for h in header)
    unphased = np.stack([probs[..., 0], probs[..., 1] + probs[..., 2], probs[..., 3]], axis=-1)
    for j, fields in enumerate(records):
        assert fields[8] == "GT:DS:GP:MK"
        info = dict(item.split("=") for item in fields[7].split(";"))
        assert float(info["AF"]) == pytest.approx(imputation.dosage[:, j].mean() / 2, abs=1e-4)
        # DR2 recomputed by the plain formula from the dosage and GP
        d = imputation.dosage[:, j].astype(float)
        e = (unphased[:, j, 1] + 4 * unphased[:, j, 2]).astype(float)
        n = len(d)
        expected_r2 = max(0.0, (d @ d - d.sum() ** 2 / n)) / (e.sum() - d.sum() ** 2 / n)
        assert float(info["DR2"]) == pytest.approx(expected_r2, abs=1e-3)
        for i, cell in enumerate(fields[9:]):
            gt, ds, gp, mk = cell.split(":")
            assert gt == CODE_GT[imputation.calls[i, j]]
            assert float(ds) == pytest.approx(imputation.dosage[i, j], abs=6e-4)
            assert [float(x) for x in gp.split(",")] == pytest.approx(unphased[i, j], abs=6e-4)
            assert mk == ("1" if masked[i, j] else "0")


def test_write_imputation_without_probs_uses_hard_calls(tmp_path):
    matrix = random_matrix(missing=0.0)
    calls = matrix.codes.copy()
    imputation = Imputation(calls=calls, dosage=np.asarray([0, 0, 1, 1, 2])[calls].astype(np.float32))
    out = write_vcf(matrix, tmp_path / "imp.vcf.gz", imputation=imputation)
    _, records = parse_vcf(out)
    expected_gp = {1: [1, 0, 0], 2: [0, 1, 0], 3: [0, 1, 0], 4: [0, 0, 1]}
    for j, fields in enumerate(records):
        assert fields[8] == "GT:DS:GP"
        polymorphic = np.ptp(imputation.dosage[:, j]) > 0
        assert float(dict(i.split("=") for i in fields[7].split(";"))["DR2"]) == (1.0 if polymorphic else 0.0)
        for i, cell in enumerate(fields[9:]):
            gt, ds, gp = cell.split(":")
            assert [float(x) for x in gp.split(",")] == expected_gp[int(calls[i, j])]


def test_dosage_r2_edge_cases():
    # certain, polymorphic genotypes: DR2 = 1; monomorphic: 0; all dosage at the mean: 0
    probs = np.zeros((4, 3, 3))
    probs[[0, 1], 0, 0] = 1
    probs[[2, 3], 0, 2] = 1
    probs[:, 1, 0] = 1
    probs[:, 2, :] = [0.25, 0.5, 0.25]
    dosage = probs[..., 1] + 2 * probs[..., 2]
    assert dosage_r2(dosage, probs) == pytest.approx([1.0, 0.0, 0.0])


@needs_bcftools
def test_written_vcf_reads_in_bcftools(tmp_path):
    matrix = random_matrix(n_samples=5, n_variants=40, seed=2)
    out = write_vcf(matrix, tmp_path / "x.vcf.gz")
    query = subprocess.run(
        ["bcftools", "query", "-f", "%POS[\\t%GT]\\n", str(out)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert [int(line.split("\t")[0]) for line in query] == list(matrix.positions)
    assert [line.split("\t")[1:] for line in query] == [[CODE_GT[c] for c in matrix.codes[:, j]] for j in range(40)]
    if shutil.which("tabix"):
        assert (tmp_path / "x.vcf.gz.tbi").exists()
        lo, hi = int(matrix.positions[10]), int(matrix.positions[20])
        region = subprocess.run(
            ["bcftools", "query", "-r", f"chr22:{lo}-{hi}", "-f", "%POS\\n", str(out)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert [int(p) for p in region] == list(matrix.positions[10:21])
