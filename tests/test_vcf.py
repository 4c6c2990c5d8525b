"""VCF writing (GT and GT:DS:GP) and reading (cyvcf2, batches, region, site filters)."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest

from impbench.genotypes import CODE_GT, GenotypeMatrix, probs_calls, probs_dosage
from impbench.imputers.base import Imputation
from impbench.io.vcf_write import dosage_r2, write_vcf

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


# ------------------------------------------------------------------------------------- reading
from impbench.errors import ImpbenchError  # noqa: E402
from impbench.io.vcf_read import Region, VcfReader, read_vcf  # noqa: E402


@pytest.mark.parametrize("batch_size", [3, 8192])
def test_round_trip_write_then_read(tmp_path, batch_size):
    matrix = random_matrix(n_samples=9, n_variants=31, seed=5)
    out = write_vcf(matrix, tmp_path / "x.vcf.gz")
    back = read_vcf(out, batch_size=batch_size)
    np.testing.assert_array_equal(back.codes, matrix.codes)
    np.testing.assert_array_equal(back.positions, matrix.positions)
    assert list(back.ref) == list(matrix.ref) and list(back.alt) == list(matrix.alt)
    assert list(back.variant_ids) == list(matrix.variant_ids)
    assert list(back.sample_ids) == list(matrix.sample_ids)
    assert back.contig == "chr22"


def test_read_imputed_vcf_gives_calls(tmp_path):
    matrix = random_matrix(missing=0.0, seed=8)
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=matrix.codes.shape).astype(np.float32)
    imputation = Imputation(calls=probs_calls(probs), dosage=probs_dosage(probs), probs=probs)
    out = write_vcf(matrix, tmp_path / "imp.vcf.gz", imputation=imputation, masked=np.zeros(matrix.codes.shape, bool))
    np.testing.assert_array_equal(read_vcf(out).codes, imputation.calls)


@pytest.mark.parametrize("indexed", [True, False])
def test_region_with_and_without_index(tmp_path, indexed):
    matrix = random_matrix(n_samples=4, n_variants=50, seed=3)
    out = write_vcf(matrix, tmp_path / "x.vcf.gz", index=indexed)
    assert (tmp_path / "x.vcf.gz.tbi").exists() == (indexed and shutil.which("tabix") is not None)
    lo, hi = int(matrix.positions[7]), int(matrix.positions[30])
    for region in (f"chr22:{lo}-{hi}", f"22:{lo:,}-{hi:,}"):  # chr prefix and commas tolerated
        back = read_vcf(out, region)
        np.testing.assert_array_equal(back.positions, matrix.positions[7:31])
        np.testing.assert_array_equal(back.codes, matrix.codes[:, 7:31])


def test_region_parse():
    assert Region.parse("chr6:28,510,120-33,480,577") == Region("chr6", 28510120, 33480577)
    assert Region.parse("22") == Region("22")
    assert Region.parse("22:100-") == Region("22", 100, None)
    assert str(Region.parse("22:5-9")) == "22:5-9"
    for bad in ("22:a-b", ":5-6", "22:9-5"):
        with pytest.raises(ImpbenchError, match="region"):
            Region.parse(bad)


def test_site_filters_are_counted(text_vcf):
    path = text_vcf(
        ["a", "b"],
        [
            "100 A G 0|1 1|1",
            "200 A G,T 0|1 1|2",  # multiallelic
            "300 AT A 0|1 0|0",  # indel
            "400 A <DEL> 0|1 0|0",  # symbolic
            "500 A . 0|0 0|0",  # no ALT
            "600 A G 0|1 0|0",  # duplicated position: both dropped
            "600 A C 1|0 0|0",
            "700 AC GT 0|1 0|0",  # MNP
            "800 C T .|. 1|0",
        ],
    )
    reader = VcfReader(path)
    matrix = reader.read()
    assert list(matrix.positions) == [100, 800]
    np.testing.assert_array_equal(matrix.codes, [[2, 0], [4, 3]])
    c = reader.counts
    assert (c.n_records, c.n_multiallelic, c.n_non_snp, c.n_no_alt, c.n_duplicate_position, c.n_duplicate_sites, c.n_kept) == (
        9, 1, 3, 1, 2, 1, 2,
    )


def test_duplicate_position_across_batch_boundary(text_vcf):
    records = [f"{p} A G 0|1 1|0" for p in (10, 20, 30, 30, 30, 40, 50, 50, 60)]
    for batch_size in (1, 2, 3, 4, 100):
        reader = VcfReader(text_vcf(["a", "b"], records, name=f"b{batch_size}.vcf.gz"), batch_size=batch_size)
        assert list(reader.read().positions) == [10, 20, 40, 60]
        assert reader.counts.n_duplicate_position == 5 and reader.counts.n_duplicate_sites == 2


def test_keep_indels_when_not_snps_only(text_vcf):
    path = text_vcf(["a"], ["100 A G 0|1", "300 AT A 1|1", "400 A G,T 0|1"])
    assert list(read_vcf(path, snps_only=False).positions) == [100, 300]


def test_unphased_genotypes(text_vcf):
    path = text_vcf(["a", "b"], ["100 A G 0|1 0/0", "200 A G 0/1 1|1"])
    with pytest.raises(ImpbenchError, match=r"in\.vcf\.gz: unphased genotypes \(first at 22:200, sample a\)"):
        read_vcf(path)
    reader = VcfReader(path, allow_unphased=True)
    np.testing.assert_array_equal(reader.read().codes, [[2, 2], [1, 4]])
    assert reader.counts.n_unphased_het == 1


def test_plain_and_gzip_vcf(text_vcf):
    for compress in ("none", "gzip"):
        path = text_vcf(["a"], ["100 A G 1|0", "200 C T 0|0"], name=f"x-{compress}.vcf", compress=compress)
        np.testing.assert_array_equal(read_vcf(path).codes, [[3, 1]])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a VCF"),
        (b"hello world\n", "not a VCF"),
        (b"\x1f\x8b\x08\x00garbage", "not a VCF"),
    ],
)
def test_not_a_vcf(tmp_path, content, message):
    path = tmp_path / "bad.vcf.gz"
    path.write_bytes(content)
    with pytest.raises(ImpbenchError, match=f"bad.vcf.gz: {message}"):
        read_vcf(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImpbenchError, match="nope.vcf.gz: file not found"):
        read_vcf(tmp_path / "nope.vcf.gz")


def test_region_without_variants_and_unknown_contig(text_vcf):
    path = text_vcf(["a"], ["100 A G 1|0", "200 C T 0|0"])
    with pytest.raises(ImpbenchError, match=r"no usable variants in region 22:300-400"):
        read_vcf(path, "22:300-400")
    with pytest.raises(ImpbenchError, match=r"contig 'X' is not in the VCF"):
        read_vcf(path, "X:1-10")


def test_several_contigs_need_a_region(text_vcf):
    lines = ["22\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1", "X\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1"]
    path = text_vcf(["a"], lines, extra_header=["##contig=<ID=X>"])
    with pytest.raises(ImpbenchError, match="more than one contig"):
        read_vcf(path)
    assert list(read_vcf(path, "X").positions) == [100]


def test_unsorted_and_haploid(text_vcf):
    with pytest.raises(ImpbenchError, match="not sorted"):
        read_vcf(text_vcf(["a"], ["200 A G 0|1", "100 A G 0|1"], name="u.vcf.gz"))
    with pytest.raises(ImpbenchError, match="diploid"):
        read_vcf(text_vcf(["a", "b"], ["100 A G 0 0|1"], name="h.vcf.gz"))


def test_streaming_writer_matches_write_vcf(tmp_path):
    from impbench.io.vcf_write import GenotypeVcfWriter

    matrix = random_matrix(n_samples=6, n_variants=5000, seed=9)
    with GenotypeVcfWriter(tmp_path / "s.vcf.gz", matrix.contig, matrix.sample_ids) as writer:
        for start in range(0, 5000, 1500):
            cols = slice(start, start + 1500)
            writer.add(matrix.codes[:, cols].T, matrix.positions[cols], matrix.ref[cols], matrix.alt[cols], matrix.variant_ids[cols])
        writer.close()
    back = read_vcf(tmp_path / "s.vcf.gz", batch_size=1000)
    np.testing.assert_array_equal(back.codes, matrix.codes)
    assert list(back.variant_ids) == list(matrix.variant_ids)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.vcf.gz"] + (["s.vcf.gz.tbi"] if shutil.which("tabix") else []))


@pytest.mark.parametrize("compress", ["bgzip", "gzip"])
def test_region_counts_records_by_start_position(text_vcf, compress):
    if compress == "bgzip" and (shutil.which("bgzip") is None or shutil.which("tabix") is None):
        pytest.skip("bgzip/tabix not installed")
    # a deletion starting before the region overlaps it; it is not a record of the region
    path = text_vcf(["a"], ["95 ACGTACGTACGT A 0|1", "100 A G 1|0", "200 C T 0|0"], compress=compress)
    if compress == "bgzip":
        subprocess.run(["tabix", "-p", "vcf", str(path)], check=True)
    reader = VcfReader(path, "22:100-300")
    assert list(reader.read().positions) == [100, 200]
    assert reader.counts.n_records == 2
