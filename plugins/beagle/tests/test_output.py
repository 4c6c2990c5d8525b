"""Reading Beagle's output by contig/position/alleles (hand-written outputs, no Beagle needed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench_beagle.output import (
    allele_probs_to_code_probs,
    assemble_imputation,
    observed_mode,
    read_beagle_output,
)

HEADER = """##fileformat=VCFv4.2
##source="beagle.22Jul22.46e.jar"
##INFO=<ID=AF,Number=A,Type=Float,Description="Estimated ALT Allele Frequencies">
##INFO=<ID=DR2,Number=A,Type=Float,Description="Dosage R-Squared">
##INFO=<ID=IMP,Number=0,Type=Flag,Description="Imputed marker">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=DS,Number=A,Type=Float,Description="estimated ALT dose [P(RA) + 2*P(AA)]">
##FORMAT=<ID=AP1,Number=A,Type=Float,Description="estimated ALT dose on first haplotype">
##FORMAT=<ID=AP2,Number=A,Type=Float,Description="estimated ALT dose on second haplotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}
"""

# Samples in another order than the target's; records reordered; 22:400 dropped; records that
# match no target variant (other contig, other alleles, a panel-only marker); 22:500 imputed
# from the panel (IMP, with DS and AP1/AP2).
RECORDS = [
    "22\t300\t.\tA\tG\t.\tPASS\t.\tGT:DS\t1|1:2\t1|0:1\t0|1:0.9",
    "22\t100\t.\tC\tT\t.\tPASS\t.\tGT\t0|1\t0|0\t1|1",
    "21\t200\t.\tG\tA\t.\tPASS\t.\tGT\t1|1\t1|1\t1|1",
    "22\t200\t.\tG\tT\t.\tPASS\t.\tGT\t1|1\t1|1\t1|1",
    "22\t200\t.\tG\tA\t.\tPASS\t.\tGT\t0|0\t0|1\t1|1",
    "22\t250\t.\tA\tC\t.\tPASS\tIMP\tGT:DS:AP1:AP2\t1|1:2:1:1\t1|1:2:1:1\t1|1:2:1:1",
    "22\t500\t.\tT\tC\t.\tPASS\tDR2=0.5;AF=0.4;IMP\tGT:DS:AP1:AP2\t0|1:0.7:0.1:0.6\t0|0:0.2:0.05:0.15\t1|1:1.8:0.9:0.9",
]
OUTPUT_SAMPLES = ["s2", "s0", "s1"]


def make_target(codes) -> GenotypeMatrix:
    """Three samples s0..s2 at 22:100 C/T, 200 G/A, 300 A/G, 400 A/G, 500 T/C."""
    return GenotypeMatrix(
        codes=np.array(codes, dtype=np.uint8),
        positions=np.array([100, 200, 300, 400, 500]),
        contig="22",
        ref=np.array(["C", "G", "A", "A", "T"], dtype=object),
        alt=np.array(["T", "A", "G", "G", "C"], dtype=object),
        variant_ids=np.array(["v0", "v1", "v2", "v3", "v4"], dtype=object),
        sample_ids=np.array(["s0", "s1", "s2"], dtype=object),
    )


TARGET_CODES = [
    [1, 0, 2, 0, 0],
    [0, 4, 0, 3, 0],
    [2, 1, 0, 0, 0],
]


def write_output(path, records=RECORDS, samples=OUTPUT_SAMPLES):
    path.write_text(HEADER.format(samples="\t".join(samples)) + "\n".join(records) + "\n")
    return path


def test_read_matches_by_position_and_alleles_not_row_order(tmp_path):
    target = make_target(TARGET_CODES)
    out = read_beagle_output(write_output(tmp_path / "out.vcf"), target)
    np.testing.assert_array_equal(out.covered, [True, True, True, False, True])
    # Beagle's GT per target sample (rows s0, s1, s2), 0 where the variant is not covered.
    expected_calls = [
        [1, 2, 3, 0, 1],
        [4, 4, 2, 0, 4],
        [2, 1, 4, 0, 2],
    ]
    np.testing.assert_array_equal(out.calls, expected_calls)
    assert out.n_records == 7 and out.n_ignored == 3 and out.n_duplicated == 0
    # DS only where the record has it (22:300, 22:500).
    np.testing.assert_allclose(out.ds[:, 2], [1.0, 0.9, 2.0])
    np.testing.assert_allclose(out.ds[:, 4], [0.2, 1.8, 0.7])
    assert np.isnan(out.ds[:, [0, 1, 3]]).all()
    assert set(out.allele_probs) == {4}
    np.testing.assert_allclose(out.allele_probs[4], [[0.05, 0.15], [0.9, 0.9], [0.1, 0.6]])


def test_assemble_keeps_observed_and_fills_uncovered(tmp_path):
    target = make_target(TARGET_CODES)
    imputation = assemble_imputation(target, read_beagle_output(write_output(tmp_path / "out.vcf"), target))
    expected_calls = [
        [1, 2, 2, 3, 1],  # v3 not covered: the most frequent observed code there (s1's 1|0)
        [4, 4, 2, 3, 4],
        [2, 1, 4, 3, 2],
    ]
    np.testing.assert_array_equal(imputation.calls, expected_calls)
    assert imputation.calls.dtype == np.uint8
    expected_dosage = [
        [0.0, 1.0, 1.0, 1.0, 0.2],  # observed cells: the observed code's dosage; masked: DS, else GT
        [2.0, 2.0, 0.9, 1.0, 1.8],
        [1.0, 0.0, 2.0, 1.0, 0.7],
    ]
    np.testing.assert_allclose(imputation.dosage, expected_dosage, atol=1e-6)
    assert imputation.dosage.dtype == np.float32
    np.testing.assert_array_equal(imputation.covered, [True, True, True, False, True])
    probs = imputation.probs
    assert probs is not None and probs.shape == (3, 5, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs[0, 4], [0.95 * 0.85, 0.95 * 0.15, 0.05 * 0.85, 0.05 * 0.15], atol=1e-6)
    np.testing.assert_allclose(probs[2, 4], [0.9 * 0.4, 0.9 * 0.6, 0.1 * 0.4, 0.1 * 0.6], atol=1e-6)
    one_hot = np.eye(4, dtype=np.float32)[imputation.calls[:, :4].astype(int) - 1]
    np.testing.assert_array_equal(probs[:, :4], one_hot)


def test_observed_cells_kept_even_when_beagle_rephases(tmp_path):
    # s0 observed 0|1 at 22:100; Beagle wrote it back as 1|0: the observed code stays.
    target = make_target([[2, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    records = ["22\t100\t.\tC\tT\t.\tPASS\t.\tGT\t0|0\t1|0\t0|0"]
    imputation = assemble_imputation(target, read_beagle_output(write_output(tmp_path / "o.vcf", records), target))
    assert imputation.calls[0, 0] == 2
    assert imputation.calls[0, 4] == 1  # not covered, nothing observed there in s0; column mode 0|0


def test_no_ds_no_ap_gives_hard_calls_without_probs(tmp_path):
    target = make_target(TARGET_CODES)
    records = [r for r in RECORDS if "\tGT\t" in r]
    out = read_beagle_output(write_output(tmp_path / "o.vcf", records), target)
    assert out.ds is None and not out.allele_probs
    imputation = assemble_imputation(target, out)
    assert imputation.probs is None
    np.testing.assert_array_equal(imputation.covered, [True, True, False, False, False])


def test_duplicated_record_leaves_variant_uncovered(tmp_path):
    target = make_target(TARGET_CODES)
    records = RECORDS + ["22\t100\t.\tC\tT\t.\tPASS\t.\tGT\t1|1\t1|1\t1|1"]
    out = read_beagle_output(write_output(tmp_path / "o.vcf", records), target)
    np.testing.assert_array_equal(out.covered, [False, True, True, False, True])
    assert out.n_duplicated == 1
    assert (out.calls[:, 0] == 0).all()


def test_output_missing_a_target_sample_is_an_error(tmp_path):
    target = make_target(TARGET_CODES)
    records = [
        "\t".join(r.split("\t")[:-1]) for r in RECORDS
    ]
    path = write_output(tmp_path / "o.vcf", records, samples=["s2", "s0"])
    with pytest.raises(ImpbenchError, match="lacks 1 target sample"):
        read_beagle_output(path, target)


def test_unreadable_output_is_an_error(tmp_path):
    with pytest.raises(ImpbenchError, match="cannot read"):
        read_beagle_output(tmp_path / "absent.vcf.gz", make_target(TARGET_CODES))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5).map(lambda s: s + (2,)),
                  elements=st.floats(0, 1)))
def test_allele_probs_to_code_probs_matches_loop(allele_probs):
    probs = allele_probs_to_code_probs(allele_probs)
    flat_in = allele_probs.reshape(-1, 2)
    flat_out = probs.reshape(-1, 4)
    for (p0, p1), row in zip(flat_in, flat_out):
        expected = [(1 - p0) * (1 - p1), (1 - p0) * p1, p0 * (1 - p1), p0 * p1]  # codes 0|0, 0|1, 1|0, 1|1
        np.testing.assert_allclose(row, expected, atol=1e-6)
        assert abs(row.sum() - 1) < 1e-5


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=7), elements=st.integers(0, 4)))
def test_observed_mode_matches_loop(codes):
    mode = observed_mode(codes)
    for j in range(codes.shape[1]):
        observed = [int(c) for c in codes[:, j] if c != 0]
        if not observed:
            assert mode[j] == 1
            continue
        counts = {c: observed.count(c) for c in (1, 2, 3, 4)}
        best = max(counts.values())
        assert mode[j] == min(c for c in (1, 2, 3, 4) if counts[c] == best)
