"""The ingest pipeline end to end, and every bad input: one clear error, nothing half-written."""

from __future__ import annotations


import numpy as np
import pytest

from impbench.errors import ImpbenchError
from impbench.data.ingest import IngestSettings, Source, ingest
from impbench.data.qc import QCSettings, allele_counts_maf, genotype_counts, hwe_exact_pvalues
from impbench.data.simulate import simulate_matrix
from impbench.data.split import SPLITS, SplitSettings
from impbench.data.store import DatasetStore
from impbench.io.vcf_write import write_vcf


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A simulated phased VCF (60 samples, two cohorts) with a few missing genotypes, + sheet."""
    folder = tmp_path_factory.mktemp("src")
    matrix = simulate_matrix(n_samples=60, sequence_length=300_000, seed=11)
    codes = matrix.codes.copy()
    rng = np.random.default_rng(0)
    codes[rng.random(codes.shape) < 0.002] = 0  # sporadic missing genotypes
    codes[5, : codes.shape[1] // 10] = 0  # sample s0005: 10% missing -> dropped
    matrix = matrix.with_codes(codes)
    vcf = write_vcf(matrix, folder / "sim.vcf.gz")
    sheet = folder / "sheet.tsv"
    lines = ["sample\tpop\tsex"] + [f"{s}\t{c}\t{x}" for s, c, x in zip(matrix.sample_ids, matrix.cohort, matrix.sex)]
    lines.append("extra1\tA\tmale")  # a sheet sample not in the VCF
    sheet.write_text("\n".join(lines) + "\n")
    return matrix, vcf, sheet


def run(vcf, sheet, out, *, qc=QCSettings(), split=SplitSettings(seed=1), region=None, columns=None, **kw):
    source = Source(vcf, sheet)
    return ingest(source, IngestSettings(qc, split, region, columns or {}), out, "toy", **kw)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_pipeline_matches_plain_qc(source, tmp_path):
    matrix, vcf, sheet = source
    stages = []
    store = run(vcf, sheet, tmp_path / "toy.h5", progress=lambda s, d, t: stages.append(s))
    assert set(stages) == {"read", "read again"}  # a sample is dropped: the VCF is read twice
    assert store.qc_report["info"]["passes_over_vcf"] == 2
    # plain recomputation of the QC
    missing = (matrix.codes == 0).mean(axis=1)
    kept = missing <= 0.05
    assert not kept[5] and kept.sum() == 59
    samples = store.samples()
    assert list(samples["sample_ids"]) == list(matrix.sample_ids[kept])
    assert list(samples["cohort"]) == list(matrix.cohort[kept]) and list(samples["sex"]) == list(matrix.sex[kept])
    codes = matrix.codes[kept]
    no_missing = (codes != 0).all(axis=0)
    train = codes[samples["split"] == "train"]
    hom_ref, het, hom_alt, _ = genotype_counts(train, axis=0)
    p = hwe_exact_pvalues(hom_ref, het, hom_alt)
    maf = allele_counts_maf(hom_ref, het, hom_alt)
    keep = no_missing & (p > 1e-6) & (maf >= 0.001)
    assert store.n_variants == keep.sum() > 100
    for s in SPLITS:
        part = store.read_split(s)
        np.testing.assert_array_equal(part.codes, codes[samples["split"] == s][:, keep])
        np.testing.assert_array_equal(part.positions, matrix.positions[keep])
    steps = {step["step"]: step for step in store.qc_report["steps"]}
    assert steps["samples with > 0.05 missing genotypes"]["samples_removed"] == 1
    assert steps["variants with any missing genotype"]["variants_removed"] == (~no_missing).sum()
    assert steps["MAF < 0.001 (training split)"]["variants_removed"] == (no_missing & (p > 1e-6) & (maf < 0.001)).sum()
    assert store.qc_report["info"]["sheet_samples_not_in_vcf"] == 1  # extra sheet samples counted
    assert store.settings["qc"]["hwe_p"] == 1e-6 and store.settings["split"]["seed"] == 1
    assert listing(tmp_path) == ["toy.h5"]


def test_rebuild_replaces_and_changed_settings(source, tmp_path):
    # Reusing a store is prepare()'s decision (one store key); ingest always builds.
    _, vcf, sheet = source
    out = tmp_path / "toy.h5"
    first = run(vcf, sheet, out)
    mtime = out.stat().st_mtime_ns
    again = run(vcf, sheet, out)
    assert again.dataset_hash == first.dataset_hash and out.stat().st_mtime_ns != mtime
    other = run(vcf, sheet, out, split=SplitSettings(seed=2))
    assert other.dataset_hash != first.dataset_hash
    assert listing(tmp_path) == ["toy.h5"]


def test_per_split_qc_is_intersection(source, tmp_path):
    _, vcf, sheet = source
    train_only = run(vcf, sheet, tmp_path / "a.h5")
    per_split = run(vcf, sheet, tmp_path / "b.h5", qc=QCSettings(per_split=True))
    assert per_split.n_variants < train_only.n_variants  # monomorphic in a small split: dropped
    assert set(per_split.variants()["positions"]) <= set(train_only.variants()["positions"])
    for s in SPLITS:  # every kept variant is polymorphic in every split
        codes = per_split.read_split(s).codes
        assert (allele_counts_maf(*genotype_counts(codes)[:3]) >= 0.001).all()


def test_without_sample_sheet_and_with_region(source, tmp_path):
    matrix, vcf, _ = source
    lo, hi = int(matrix.positions[100]), int(matrix.positions[400])
    store = run(vcf, None, tmp_path / "r.h5", region=f"22:{lo}-{hi}")
    assert set(store.samples()["cohort"]) == {"all"} and set(store.samples()["sex"]) == {"unknown"}
    positions = store.variants()["positions"]
    assert positions.min() >= lo and positions.max() <= hi
    assert store.qc_report["steps"][0]["variants_left"] == 301


def test_cohort_subset_is_part_of_all_test(source, tmp_path):
    _, vcf, sheet = source
    store = run(vcf, sheet, tmp_path / "toy.h5")
    test_all = store.read_split("test")
    test_a = store.read_split("test", cohort="A")
    assert list(test_a.sample_ids) == [s for s, c in zip(test_all.sample_ids, test_all.cohort) if c == "A"]
    ids = [set(store.read_split(s).sample_ids) for s in SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


# ----------------------------------------------------------------------------------- bad input
SAMPLES = ["a", "b", "c", "d"]


def four_sample_sheet(tmp_path, rows=None, header="sample\tpop\tgender"):
    path = tmp_path / "sheet.tsv"
    rows = rows if rows is not None else [f"{s}\tX\tmale" for s in SAMPLES]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def bad(tmp_path, vcf, sheet, message, **kw):
    before = listing(tmp_path)
    with pytest.raises(ImpbenchError, match=message) as info:
        run(vcf, sheet, tmp_path / "out.h5", split=SplitSettings(seed=1), **kw)
    assert "\n" not in str(info.value)
    assert listing(tmp_path) == before  # nothing written, no temporary left
    return info.value


GOOD = ["100 A G 0|1 1|0 0|0 1|1", "200 C T 0|0 0|1 1|1 0|1", "300 G A 1|0 0|0 0|1 0|0"]


def test_bad_vcf_not_found(tmp_path):
    bad(tmp_path, tmp_path / "nope.vcf.gz", None, r"nope\.vcf\.gz: file not found")


def test_bad_not_a_vcf(tmp_path):
    path = tmp_path / "x.vcf.gz"
    path.write_text("chrom pos\n1 2\n")
    bad(tmp_path, path, None, r"x\.vcf\.gz: not a VCF")


def test_bad_unphased(tmp_path, text_vcf):
    vcf = text_vcf(SAMPLES, ["100 A G 0/1 1|0 0|0 1|1"])
    bad(tmp_path, vcf, four_sample_sheet(tmp_path), r"in\.vcf\.gz: unphased genotypes \(first at 22:100, sample a\)")
    store = run(vcf, four_sample_sheet(tmp_path), tmp_path / "ok.h5", qc=QCSettings(allow_unphased=True, hwe_p=0, min_maf=0))
    assert store.qc_report["info"]["unphased_het_genotypes"] == 1


def test_filtered_sites_are_counted(tmp_path, text_vcf):
    vcf = text_vcf(
        SAMPLES,
        GOOD + ["400 A G,T 0|1 1|2 0|0 0|0", "500 AT A 0|1 0|0 0|0 0|0", "600 A G 0|1 0|0 0|0 0|0", "600 A C 1|0 0|0 0|0 0|0"],
    )
    store = run(vcf, four_sample_sheet(tmp_path), tmp_path / "ok.h5", qc=QCSettings(hwe_p=0, min_maf=0))
    steps = {s["step"]: s["variants_removed"] for s in store.qc_report["steps"]}
    assert steps["multiallelic"] == 1 and steps["not a SNP (indel, MNP, symbolic)"] == 1
    assert steps["duplicated position (all records there)"] == 2
    assert list(store.variants()["positions"]) == [100, 200, 300]


def test_bad_sheet_missing_samples(tmp_path, text_vcf):
    vcf = text_vcf(SAMPLES, GOOD)
    sheet = four_sample_sheet(tmp_path, rows=["a\tX\tmale", "b\tX\tmale"])
    bad(tmp_path, vcf, sheet, r"sheet\.tsv: 2 of 4 samples of .*in\.vcf\.gz are not in the sample sheet \(c, d\)")


def test_sheet_with_extra_samples_is_fine_and_counted(tmp_path, text_vcf):
    vcf = text_vcf(SAMPLES, GOOD)
    sheet = four_sample_sheet(tmp_path, rows=[f"{s}\tX\tmale" for s in SAMPLES + ["e", "f"]])
    store = run(vcf, sheet, tmp_path / "ok.h5", qc=QCSettings(hwe_p=0, min_maf=0))
    assert store.qc_report["info"]["sheet_samples_not_in_vcf"] == 2
    assert store.qc_report["info"]["passes_over_vcf"] == 1  # nobody dropped: one pass


def test_bad_sheet_missing_column(tmp_path, text_vcf):
    vcf = text_vcf(SAMPLES, GOOD)
    sheet = four_sample_sheet(tmp_path)
    bad(tmp_path, vcf, sheet, r"sheet\.tsv: no cohort column 'super_pop'", columns={"cohort": "super_pop"})


def test_bad_region_without_variants(tmp_path, text_vcf):
    vcf = text_vcf(SAMPLES, GOOD)
    bad(tmp_path, vcf, None, r"in\.vcf\.gz: no usable variants in region 22:1000-2000 \(0 records read", region="22:1000-2000")


def test_bad_stratum_too_small(tmp_path, text_vcf):
    vcf = text_vcf(SAMPLES, GOOD)
    sheet = four_sample_sheet(tmp_path, rows=["a\tX\tmale", "b\tX\tmale", "c\tX\tmale", "d\tX\tfemale"])
    bad(tmp_path, vcf, sheet, r"sheet\.tsv: stratum too small to split .*cohort=X sex=female \(1\)")


def test_failure_keeps_existing_store(source, tmp_path):
    matrix, vcf, sheet = source
    out = tmp_path / "toy.h5"
    store = run(vcf, sheet, out)
    with pytest.raises(ImpbenchError):
        run(vcf, sheet, out, columns={"cohort": "nope"})
    assert DatasetStore.open(out).dataset_hash == store.dataset_hash
    assert listing(tmp_path) == ["toy.h5"]
