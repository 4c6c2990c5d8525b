"""Quality control of ingested genotypes: biallelic SNPs, missingness, HWE, MAF.

The vectorised pieces (``genotype_counts``, ``hwe_exact_pvalues``, ``variant_maf_from_counts``,
``variant_pass``) work on one batch of variants at a time so that ``prepare`` can stream; every
step's effect is recorded in a ``QCReport``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from impbench.files import to_jsonable
from impbench.genotypes import HOM_ALT, HOM_REF, MISSING


#: Where the HWE test runs: within each cohort, or over the pooled samples.
HWE_SCOPES = ("cohort", "pooled")


@dataclass(frozen=True)
class QCSettings:
    """QC settings of a dataset card (defaults from the BiU-Net paper).

    snps_only : keep biallelic SNPs only (indels, multiallelic sites dropped and counted).
    max_sample_missing : drop samples with a larger fraction of missing genotypes.
    drop_variant_missing : drop variants with any missing genotype (after the sample filter).
    hwe_p : drop variants whose HWE exact-test p-value is <= this (0 disables).
    min_maf : drop variants whose folded MAF is < this.
    per_split : False (default): HWE and MAF on the training split; True reproduces the
        paper: each split filtered on its own, then the intersection of kept variants.
    allow_unphased : accept unphased genotypes (read as if phased, in VCF order).
    hwe_scope : "cohort" (default): the HWE test runs within each cohort of the (training)
        split and a variant failing in any cohort is dropped, so that a mixture of populations
        (Wahlund effect: a heterozygote deficit) does not remove SNPs; "pooled": one test over
        all samples of the split, as the paper did. With a single cohort both are the same.
    """

    snps_only: bool = True
    max_sample_missing: float = 0.05
    drop_variant_missing: bool = True
    hwe_p: float = 1e-6
    min_maf: float = 0.001
    per_split: bool = False
    allow_unphased: bool = False
    hwe_scope: str = "cohort"

    def __post_init__(self) -> None:
        if self.hwe_scope not in HWE_SCOPES:
            from impbench.errors import ImpbenchError

            raise ImpbenchError(f"qc.hwe_scope must be one of {', '.join(map(repr, HWE_SCOPES))}, not {self.hwe_scope!r}")


# --------------------------------------------------------------------------------------------
# Genotype counts and the HWE exact test
# --------------------------------------------------------------------------------------------


def genotype_counts(codes: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts of hom-ref, het (either phase), hom-alt and missing codes along ``axis``.

    codes : uint8, any 2-D shape; ``axis`` is the samples axis (0 for (n_samples, n_variants),
    1 for variant-major batches). Returns four int64 arrays over the other axis.
    """
    codes = np.asarray(codes)
    hom_ref = np.count_nonzero(codes == HOM_REF, axis=axis).astype(np.int64)
    hom_alt = np.count_nonzero(codes == HOM_ALT, axis=axis).astype(np.int64)
    missing = np.count_nonzero(codes == MISSING, axis=axis).astype(np.int64)
    other = np.count_nonzero(codes > HOM_ALT, axis=axis).astype(np.int64)  # padding: neither
    het = codes.shape[axis] - hom_ref - hom_alt - missing - other  # codes HET_01 and HET_10
    return hom_ref, het, hom_alt, missing


#: Relative tolerance under which a configuration's probability counts as equal to the observed
#: one (floating-point ties, e.g. in symmetric null distributions).
HWE_TIE_TOLERANCE = 1e-7
#: Cells of the (groups x configurations) table computed at once.
_HWE_CELLS_PER_CHUNK = 1 << 22


def hwe_exact_pvalues(n_hom_ref, n_het, n_hom_alt) -> np.ndarray:
    """Two-sided Hardy-Weinberg exact test p-values (Wigginton, Cutler & Abecasis 2005, AJHG 76:887).

    For ``n`` genotypes with ``r`` copies of the rarer allele, the null distribution of the
    heterozygote count ``h`` (same parity as ``r``) is

        P(h | n, r) ∝ n! / (h! homr! homc!) * 2^h,   homr = (r - h) / 2,  homc = n - h - homr,

    and the p-value is the total probability of the configurations no more likely than the
    observed one (probabilities within a relative ``HWE_TIE_TOLERANCE`` count as ties, i.e. are
    included), capped at 1 — the standard (not mid-p) test as PLINK computes it.

    n_hom_ref, n_het, n_hom_alt : integer arrays of one shape (n_snps,). Returns float64
    (n_snps,); 1.0 where there are no genotypes. See ``HweExactTest`` for the method.
    """
    return HweExactTest().pvalues(n_hom_ref, n_het, n_hom_alt)


class HweExactTest:
    """``hwe_exact_pvalues`` with a cache of null distributions, for calls batch after batch.

    Vectorised: the distribution is computed once per distinct (n, r) pair (in log space with
    ``gammaln``, all new pairs at once) and kept sorted with its cumulative sums from the
    smallest term; each SNP's p-value is read with a binary search run over all SNPs at once.
    Batches of one dataset share (n, r) pairs, so later batches mostly hit the cache.
    """

    #: Cached cells above which the cache is emptied.
    MAX_CACHED_CELLS = 1 << 25

    def __init__(self) -> None:
        self._rows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cells = 0

    def pvalues(self, n_hom_ref, n_het, n_hom_alt) -> np.ndarray:
        hom_ref = np.asarray(n_hom_ref, dtype=np.int64).ravel()
        het = np.asarray(n_het, dtype=np.int64).ravel()
        hom_alt = np.asarray(n_hom_alt, dtype=np.int64).ravel()
        if not (hom_ref.shape == het.shape == hom_alt.shape):
            raise ValueError("n_hom_ref, n_het and n_hom_alt must have the same shape")
        if (hom_ref < 0).any() or (het < 0).any() or (hom_alt < 0).any():
            raise ValueError("genotype counts must be non-negative")
        pvalues = np.ones(len(hom_ref), dtype=np.float64)
        if len(hom_ref) == 0:
            return pvalues
        n = hom_ref + het + hom_alt
        hom_rare = np.minimum(hom_ref, hom_alt)
        rare = 2 * hom_rare + het
        stride = int(rare.max()) + 1
        keys, snp_group = np.unique(n * stride + rare, return_inverse=True)
        snp_group = snp_group.ravel()
        pairs = [(int(k // stride), int(k % stride)) for k in keys]
        if self._cells > self.MAX_CACHED_CELLS:
            self._rows.clear()
            self._cells = 0
        self._compute([p for p in pairs if p not in self._rows])
        # Groups in chunks whose (groups x width) table stays small.
        order = np.argsort([r for _, r in pairs], kind="stable")
        start = 0
        while start < len(order):
            stop = start + 1
            while stop < len(order) and (stop - start + 1) * (pairs[order[stop]][1] // 2 + 1) <= _HWE_CELLS_PER_CHUNK:
                stop += 1
            self._lookup(order[start:stop], pairs, snp_group, hom_rare, pvalues)
            start = stop
        return pvalues

    def _compute(self, new_pairs: list[tuple[int, int]]) -> None:
        """Null distributions of new (n, r) pairs, in chunks, into the cache."""
        from scipy.special import gammaln  # here: reading a card (impbench datasets) must not import scipy

        new_pairs = sorted(new_pairs, key=lambda p: p[1])
        start = 0
        while start < len(new_pairs):
            stop = start + 1
            while stop < len(new_pairs) and (stop - start + 1) * (new_pairs[stop][1] // 2 + 1) <= _HWE_CELLS_PER_CHUNK:
                stop += 1
            chunk = new_pairs[start:stop]
            n = np.array([p[0] for p in chunk], dtype=np.float64)[:, None]
            r = np.array([p[1] for p in chunk], dtype=np.float64)[:, None]
            width = int(r.max()) // 2 + 1
            # Configuration k = number of rare homozygotes: h = r - 2k, homc = n - r + k.
            k = np.arange(width, dtype=np.float64)[None, :]
            valid = k <= np.floor(r / 2)
            h = np.where(valid, r - 2 * k, 0.0)
            log_prob = h * np.log(2.0) - gammaln(h + 1) - gammaln(k + 1) - gammaln(np.where(valid, n - r + k, 0.0) + 1)
            log_prob = np.where(valid, log_prob, -np.inf)
            log_prob -= log_prob.max(axis=1, keepdims=True)
            prob = np.exp(log_prob)
            prob /= prob.sum(axis=1, keepdims=True)
            for i, pair in enumerate(chunk):
                row = prob[i, : pair[1] // 2 + 1].copy()
                ordered = np.sort(row)
                self._rows[pair] = (row, ordered, np.cumsum(ordered))
                self._cells += 3 * len(row)
            start = stop

    def _lookup(self, groups: np.ndarray, pairs: list, snp_group: np.ndarray, hom_rare: np.ndarray, pvalues: np.ndarray) -> None:
        """p-values of the SNPs whose group is in ``groups`` (indices into ``pairs``)."""
        width = max(pairs[g][1] // 2 + 1 for g in groups)
        prob = np.zeros((len(groups), width))
        ordered = np.full((len(groups), width), np.inf)  # padding sorts last, never <= threshold
        cumulative = np.zeros((len(groups), width))
        for i, g in enumerate(groups):
            row, row_sorted, row_cum = self._rows[pairs[g]]
            prob[i, : len(row)] = row
            ordered[i, : len(row)] = row_sorted
            cumulative[i, : len(row)] = row_cum
        local = np.full(len(pairs), -1, dtype=np.int64)
        local[groups] = np.arange(len(groups))
        row_of_snp = local[snp_group]
        snps = np.nonzero(row_of_snp >= 0)[0]
        row_of_snp = row_of_snp[snps]
        threshold = prob[row_of_snp, hom_rare[snps]] * (1.0 + HWE_TIE_TOLERANCE)
        # count of entries <= threshold in each SNP's sorted row (binary search, all SNPs at once)
        lo = np.zeros(len(snps), dtype=np.int64)
        hi = np.full(len(snps), width, dtype=np.int64)
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            below = ordered[row_of_snp, np.minimum(mid, width - 1)] <= threshold
            lo = np.where(active & below, mid + 1, lo)
            hi = np.where(active & ~below, mid, hi)
        pvalues[snps] = np.minimum(cumulative[row_of_snp, lo - 1], 1.0)


def allele_counts_maf(n_hom_ref: np.ndarray, n_het: np.ndarray, n_hom_alt: np.ndarray) -> np.ndarray:
    """Folded minor-allele frequency from genotype counts (float64; NaN where no genotype)."""
    n_alleles = 2.0 * (np.asarray(n_hom_ref) + n_het + n_hom_alt)
    alt = 2.0 * np.asarray(n_hom_alt) + n_het
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = alt / n_alleles
    return np.minimum(freq, 1.0 - freq)


# --------------------------------------------------------------------------------------------
# QC report
# --------------------------------------------------------------------------------------------


@dataclass
class QCStep:
    """One QC step: what it removed and what was left after it."""

    step: str
    variants_removed: int = 0
    samples_removed: int = 0
    variants_left: int | None = None
    samples_left: int | None = None
    note: str = ""


@dataclass
class QCReport:
    """Every QC step counted, in order. ``as_dict`` is JSON-able; ``table`` renders it (rich)."""

    steps: list[QCStep] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def add(self, step: str, *, variants_removed: int = 0, samples_removed: int = 0, variants_left=None, samples_left=None, note: str = "") -> None:
        self.steps.append(
            QCStep(step, int(variants_removed), int(samples_removed),
                   None if variants_left is None else int(variants_left),
                   None if samples_left is None else int(samples_left), note)
        )  # fmt: skip

    def as_dict(self) -> dict:
        return {"steps": [dict(s.__dict__) for s in self.steps], "info": to_jsonable(self.info)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "QCReport":
        return cls(steps=[QCStep(**s) for s in data.get("steps", [])], info=dict(data.get("info", {})))

    def table(self, title: str = "QC"):
        """A ``rich.table.Table`` with one row per step."""
        from rich.table import Table

        table = Table(title=title)
        table.add_column("step")
        table.add_column("variants removed", justify="right")
        table.add_column("samples removed", justify="right")
        table.add_column("variants left", justify="right")
        table.add_column("samples left", justify="right")
        table.add_column("note")

        def fmt(value):
            return "" if value is None else f"{value:,}"

        for s in self.steps:
            table.add_row(s.step, fmt(s.variants_removed), fmt(s.samples_removed), fmt(s.variants_left), fmt(s.samples_left), s.note)
        return table
