"""QC: the HWE exact test against slow references and known values, genotype counts, report."""

from __future__ import annotations

import json
from fractions import Fraction
from math import factorial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impbench.data.qc import HWE_TIE_TOLERANCE, QCReport, allele_counts_maf, genotype_counts, hwe_exact_pvalues


def hwe_reference(hom_ref: int, het: int, hom_alt: int) -> float:
    """Wigginton et al. (2005) exactly as the paper's recursion, one SNP at a time (slow)."""
    hom_rare, hom_common = min(hom_ref, hom_alt), max(hom_ref, hom_alt)
    rare = 2 * hom_rare + het
    n = hom_ref + het + hom_alt
    if n == 0:
        return 1.0
    probs = [0.0] * (rare + 1)
    mid = rare * (2 * n - rare) // (2 * n)
    if (mid % 2) != (rare % 2):
        mid += 1
    probs[mid] = 1.0
    cur_hr, cur_hc = (rare - mid) // 2, n - mid - (rare - mid) // 2
    h = mid
    while h > 1:  # downwards
        probs[h - 2] = probs[h] * h * (h - 1) / (4.0 * (cur_hr + 1) * (cur_hc + 1))
        cur_hr += 1
        cur_hc += 1
        h -= 2
    cur_hr, cur_hc = (rare - mid) // 2, n - mid - (rare - mid) // 2
    h = mid
    while h <= rare - 2:  # upwards
        probs[h + 2] = probs[h] * 4.0 * cur_hr * cur_hc / ((h + 2) * (h + 1))
        cur_hr -= 1
        cur_hc -= 1
        h += 2
    total = sum(probs)
    probs = [p / total for p in probs]
    p_obs = probs[het]
    return min(1.0, sum(p for p in probs if p <= p_obs * (1 + HWE_TIE_TOLERANCE)))


def hwe_exact_fraction(hom_ref: int, het: int, hom_alt: int) -> Fraction:
    """The same p-value in exact rational arithmetic by enumerating every configuration."""
    n = hom_ref + het + hom_alt
    rare = 2 * min(hom_ref, hom_alt) + het

    def weight(h):
        hr = (rare - h) // 2
        hc = n - h - hr
        return Fraction(factorial(n) * 2**h, factorial(h) * factorial(hr) * factorial(hc))

    weights = {h: weight(h) for h in range(rare % 2, rare + 1, 2)}
    total = sum(weights.values())
    return sum((w for w in weights.values() if w <= weights[het]), Fraction(0)) / total


def test_hand_computed_values():
    # n=2, r=2: P(h=0) = 1/3, P(h=2) = 2/3.  n=3, r=2: P(h=0) = 3/15, P(h=2) = 12/15.
    p = hwe_exact_pvalues([1, 0, 2, 0, 0, 5], [0, 2, 0, 1, 0, 0], [1, 0, 1, 0, 0, 0])
    assert p == pytest.approx([1 / 3, 1.0, 0.2, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "counts",
    [(100, 0, 100), (50, 100, 50), (0, 200, 0), (990, 0, 10), (998, 2, 0), (1200, 500, 100), (30, 10, 60), (2000, 548, 0)],
)
def test_against_exact_rational_arithmetic(counts):
    exact = float(hwe_exact_fraction(*counts))
    assert hwe_exact_pvalues(*[[c] for c in counts])[0] == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_known_extremes():
    # No heterozygotes at a common variant: astronomically small; perfect HWE proportions: 1.
    p = hwe_exact_pvalues([100, 25], [0, 50], [100, 25])
    assert p[0] < 1e-50 and p[1] == pytest.approx(1.0)
    # the test is symmetric in the two homozygote counts
    assert hwe_exact_pvalues([30], [10], [60])[0] == pytest.approx(hwe_exact_pvalues([60], [10], [30])[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=30))
def test_matches_reference_recursion(counts):
    hom_ref, het, hom_alt = (np.array(c) for c in zip(*counts))
    # the het count must have the parity that makes the counts a possible configuration: any is
    expected = [hwe_reference(*c) for c in counts]
    np.testing.assert_allclose(hwe_exact_pvalues(hom_ref, het, hom_alt), expected, rtol=1e-9, atol=1e-15)


def test_many_snps_large_n_match_reference():
    rng = np.random.default_rng(7)
    n = 500
    freq = rng.uniform(0, 0.5, 400)
    het = rng.binomial(n, 2 * freq * (1 - freq))
    hom_alt = rng.binomial(n - het, freq**2 / (freq**2 + (1 - freq) ** 2))
    hom_ref = n - het - hom_alt
    expected = [hwe_reference(a, b, c) for a, b, c in zip(hom_ref, het, hom_alt)]
    np.testing.assert_allclose(hwe_exact_pvalues(hom_ref, het, hom_alt), expected, rtol=1e-8, atol=1e-300)


def test_genotype_counts_and_maf():
    codes = np.array([[1, 2, 0], [3, 4, 4], [4, 1, 1]], dtype=np.uint8)  # (samples, variants)
    hom_ref, het, hom_alt, missing = genotype_counts(codes, axis=0)
    assert list(hom_ref) == [1, 1, 1] and list(het) == [1, 1, 0] and list(hom_alt) == [1, 1, 1] and list(missing) == [0, 0, 1]
    assert list(genotype_counts(codes.T, axis=1)[1]) == [1, 1, 0]
    np.testing.assert_allclose(allele_counts_maf(hom_ref, het, hom_alt), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(allele_counts_maf([9], [1], [0]), [0.05])


def test_report_json_and_table():
    report = QCReport(info={"vcf": "x.vcf.gz", "n": np.int64(3)})
    report.add("records read", variants_left=10, samples_left=5)
    report.add("multiallelic", variants_removed=2, variants_left=8, samples_left=5)
    data = json.loads(report.to_json())
    assert data["steps"][1]["variants_removed"] == 2 and data["info"]["n"] == 3
    assert QCReport.from_dict(data).as_dict() == data
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(report.table())
    assert "multiallelic" in console.export_text()


# --------------------------------------------------------------------------- HWE scope


def _two_cohort_vcf(tmp_path):
    """100 + 100 samples. v0: HWE within each cohort, allele frequencies 0.05 and 0.95 (a
    Wahlund heterozygote deficit when pooled); v1: no heterozygote in cohort A (fails within
    A); v2: HWE within each cohort and pooled (same frequency)."""
    from impbench.genotypes import GenotypeMatrix
    from impbench.io.vcf_write import write_vcf

    rng = np.random.default_rng(0)

    def hwe_codes(n, f):
        a0 = rng.random(n) < f
        a1 = rng.random(n) < f
        return (1 + a1 + 2 * a0).astype(np.uint8)

    n = 100
    columns = [
        np.concatenate([hwe_codes(n, 0.05), hwe_codes(n, 0.95)]),
        np.concatenate([np.repeat([1, 4], n // 2), hwe_codes(n, 0.3)]).astype(np.uint8),
        np.concatenate([hwe_codes(n, 0.3), hwe_codes(n, 0.3)]),
    ]
    codes = np.stack(columns, axis=1)
    samples = np.array([f"s{i:03d}" for i in range(2 * n)], dtype=object)
    matrix = GenotypeMatrix(
        codes=codes, positions=np.array([100, 200, 300]), contig="1",
        ref=np.array(["A"] * 3, dtype=object), alt=np.array(["G"] * 3, dtype=object),
        variant_ids=np.array(["v0", "v1", "v2"], dtype=object), sample_ids=samples,
    )  # fmt: skip
    vcf = write_vcf(matrix, tmp_path / "two.vcf.gz")
    sheet = tmp_path / "sheet.tsv"
    cohort = ["A"] * n + ["B"] * n
    sheet.write_text("sample\tpop\tsex\n" + "".join(f"{s}\t{c}\tfemale\n" for s, c in zip(samples, cohort)))
    return vcf, sheet


def test_hwe_scope_cohort_keeps_a_wahlund_snp_that_pooled_drops(tmp_path):
    from impbench.data.ingest import IngestSettings, Source, ingest
    from impbench.data.qc import QCSettings
    from impbench.data.split import SplitSettings

    vcf, sheet = _two_cohort_vcf(tmp_path)
    stores = {
        scope: ingest(Source(vcf, sheet), IngestSettings(QCSettings(hwe_scope=scope), SplitSettings(seed=1)),
                      tmp_path / f"{scope}.h5", scope)
        for scope in ("cohort", "pooled")
    }
    kept = {scope: set(store.variants()["positions"].tolist()) for scope, store in stores.items()}
    assert kept["cohort"] == {100, 300}
    assert kept["pooled"] == {300}
    # why, from the training split: v0 (position 100) is in HWE within each cohort, not pooled
    train = stores["cohort"].read_split("train")
    v0 = train.codes[:, list(train.positions).index(100)]
    pooled_p = hwe_exact_pvalues(*[[c] for c in genotype_counts(v0[:, None])[:3]])[0]
    cohort_p = [hwe_exact_pvalues(*[[c] for c in genotype_counts(v0[train.cohort == c][:, None])[:3]])[0] for c in "AB"]
    assert pooled_p <= 1e-6 < min(cohort_p)
    for scope, store in stores.items():
        assert store.qc_report["info"]["hwe_scope"] == scope
        hwe_steps = [s for s in store.qc_report["steps"] if s["step"].startswith("HWE")]
        assert len(hwe_steps) == 1
        assert ("within each cohort" in hwe_steps[0]["step"]) == (scope == "cohort")
        assert hwe_steps[0]["variants_removed"] == 3 - len(kept[scope])


def test_hwe_scope_is_checked():
    from impbench.data.qc import QCSettings
    from impbench.errors import ImpbenchError

    assert QCSettings().hwe_scope == "cohort"
    with pytest.raises(ImpbenchError, match="hwe_scope"):
        QCSettings(hwe_scope="everywhere")
