"""Genotype codes, their dosage tables, and the ``GenotypeMatrix`` container.

This module is the one place where the encoding lives. Codes (the BiU-Net paper's encoding):

=====  ==========  ============
code   genotype    ALT dosage
=====  ==========  ============
0      missing     (undefined)
1      0|0         0
2      0|1         1
3      1|0         1
4      1|1         2
5      padding     (undefined)
=====  ==========  ============

Everything else (ingest, masking, metrics, models, VCF output) converts through the tables
and helpers here instead of re-deriving them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

MISSING = 0
HOM_REF = 1
HET_01 = 2
HET_10 = 3
HOM_ALT = 4
PAD = 5
N_CODES = 6
#: The four phased genotype codes a call may take, in order.
CALL_CODES = np.array([HOM_REF, HET_01, HET_10, HOM_ALT], dtype=np.uint8)
N_CALL_CODES = 4

#: ALT dosage per code, float32 indexed by code; NaN for missing and padding.
CODE_DOSAGE = np.array([np.nan, 0.0, 1.0, 1.0, 2.0, np.nan], dtype=np.float32)
#: Dosage class (0, 1, 2) per code, int8 indexed by code; -1 for missing and padding.
CODE_DOSAGE_CLASS = np.array([-1, 0, 1, 1, 2, -1], dtype=np.int8)
#: First (left) haplotype's allele per code, int8; -1 where undefined.
CODE_ALLELE0 = np.array([-1, 0, 0, 1, 1, -1], dtype=np.int8)
#: Second (right) haplotype's allele per code, int8; -1 where undefined.
CODE_ALLELE1 = np.array([-1, 0, 1, 0, 1, -1], dtype=np.int8)
#: Code for a pair of phased alleles: ``ALLELES_CODE[a0, a1]``.
ALLELES_CODE = np.array([[HOM_REF, HET_01], [HET_10, HOM_ALT]], dtype=np.uint8)
#: Per-code dosage weights over the four call codes (for probabilities ``(..., 4)``).
CALL_DOSAGE = np.array([0.0, 1.0, 1.0, 2.0], dtype=np.float32)
#: VCF GT string per code.
CODE_GT = np.array(["./.", "0|0", "0|1", "1|0", "1|1", "./."], dtype=object)


def code_dosage(codes: np.ndarray) -> np.ndarray:
    """ALT dosage of each code.

    codes : uint8, any shape. Returns float32 of the same shape, NaN at codes 0 and 5.
    """
    return CODE_DOSAGE[np.asarray(codes)]


def dosage_class(codes: np.ndarray) -> np.ndarray:
    """Unphased dosage class (0 hom-ref, 1 het, 2 hom-alt) of each code; -1 for 0 and 5."""
    return CODE_DOSAGE_CLASS[np.asarray(codes)]


def codes_from_alleles(allele0: np.ndarray, allele1: np.ndarray) -> np.ndarray:
    """Codes from phased alleles.

    allele0, allele1 : integer arrays of one shape, values 0 (REF), 1 (ALT) or negative
    (missing). Returns uint8 codes of that shape, 0 where either allele is missing.
    """
    a0 = np.asarray(allele0)
    a1 = np.asarray(allele1)
    missing = (a0 < 0) | (a1 < 0)
    codes = ALLELES_CODE[np.clip(a0, 0, 1), np.clip(a1, 0, 1)]
    codes[missing] = MISSING
    return codes


def probs_dosage(probs: np.ndarray) -> np.ndarray:
    """Expected ALT dosage from probabilities over the four call codes.

    probs : float, shape (..., 4) ordered as ``CALL_CODES``. Returns float32 shape (...).
    """
    return (np.asarray(probs, dtype=np.float32) @ CALL_DOSAGE).astype(np.float32)


def probs_calls(probs: np.ndarray) -> np.ndarray:
    """Most probable call code (1-4) from probabilities of shape (..., 4); uint8 shape (...)."""
    return (np.argmax(probs, axis=-1) + 1).astype(np.uint8)


def is_call(codes: np.ndarray) -> np.ndarray:
    """True where a code is one of the four genotype calls (1-4)."""
    codes = np.asarray(codes)
    return (codes >= HOM_REF) & (codes <= HOM_ALT)


def alt_allele_frequency(codes: np.ndarray) -> np.ndarray:
    """ALT allele frequency per variant over the called genotypes.

    codes : uint8, shape (n_samples, n_variants). Returns float64 shape (n_variants,);
    NaN for a variant with no called genotype.
    """
    codes = np.asarray(codes)
    called = is_call(codes)
    n_called = called.sum(axis=0)
    alt = np.where(called, CODE_DOSAGE_CLASS[codes], 0).sum(axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return alt / (2.0 * n_called)


def variant_maf(codes: np.ndarray) -> np.ndarray:
    """Folded minor-allele frequency per variant (0..0.5); NaN where nothing is called."""
    freq = alt_allele_frequency(codes)
    return np.minimum(freq, 1.0 - freq)


@dataclass
class GenotypeMatrix:
    """Phased genotypes of a set of samples at a set of biallelic variants.

    Attributes
    ----------
    codes : uint8, shape (n_samples, n_variants)
        Genotype codes (see module table). Rows are samples so that a sample's sequence is
        contiguous.
    positions : int64, shape (n_variants,)
        1-based base-pair positions, non-decreasing.
    contig : str
        Chromosome name as in the source VCF.
    ref, alt : str arrays (object), shape (n_variants,)
    variant_ids : str array (object), shape (n_variants,)
    sample_ids : str array (object), shape (n_samples,)
    cohort, sex : str arrays (object), shape (n_samples,)
        Cohort label and sex ("male", "female" or "unknown") per sample.
    """

    codes: np.ndarray
    positions: np.ndarray
    contig: str
    ref: np.ndarray
    alt: np.ndarray
    variant_ids: np.ndarray
    sample_ids: np.ndarray
    cohort: np.ndarray = field(default=None)  # type: ignore[assignment]
    sex: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes, dtype=np.uint8)
        self.positions = np.asarray(self.positions, dtype=np.int64)
        self.ref = np.asarray(self.ref, dtype=object)
        self.alt = np.asarray(self.alt, dtype=object)
        self.variant_ids = np.asarray(self.variant_ids, dtype=object)
        self.sample_ids = np.asarray(self.sample_ids, dtype=object)
        n = len(self.sample_ids)
        if self.cohort is None:
            self.cohort = np.full(n, "all", dtype=object)
        if self.sex is None:
            self.sex = np.full(n, "unknown", dtype=object)
        self.cohort = np.asarray(self.cohort, dtype=object)
        self.sex = np.asarray(self.sex, dtype=object)
        self.validate()

    @property
    def n_samples(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_variants(self) -> int:
        return int(self.codes.shape[1])

    def validate(self) -> None:
        """Raise ``ValueError`` if the arrays disagree in shape or the codes are out of range."""
        if self.codes.ndim != 2:
            raise ValueError(f"codes must be 2-D (n_samples, n_variants), got {self.codes.shape}")
        n, m = self.codes.shape
        for name in ("positions", "ref", "alt", "variant_ids"):
            if len(getattr(self, name)) != m:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, codes has {m} variants")
        for name in ("sample_ids", "cohort", "sex"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, codes has {n} samples")
        if self.codes.size and int(self.codes.max()) > PAD:
            raise ValueError(f"codes must be in 0..{PAD}, found {int(self.codes.max())}")

    def take_samples(self, index: np.ndarray) -> "GenotypeMatrix":
        """A new matrix with the samples at ``index`` (int indices or a bool mask); arrays copied."""
        return replace(
            self,
            codes=self.codes[index].copy(),
            sample_ids=self.sample_ids[index],
            cohort=self.cohort[index],
            sex=self.sex[index],
        )

    def take_variants(self, index: np.ndarray) -> "GenotypeMatrix":
        """A new matrix with the variants at ``index`` (int indices or a bool mask); arrays copied."""
        return replace(
            self,
            codes=self.codes[:, index].copy(),
            positions=self.positions[index],
            ref=self.ref[index],
            alt=self.alt[index],
            variant_ids=self.variant_ids[index],
        )

    def with_codes(self, codes: np.ndarray) -> "GenotypeMatrix":
        """The same samples and variants with other codes (shape must match)."""
        if codes.shape != self.codes.shape:
            raise ValueError(f"codes shape {codes.shape} != {self.codes.shape}")
        return replace(self, codes=codes)

    def same_variants(self, other: "GenotypeMatrix") -> bool:
        """True when ``other`` has the same contig, positions and alleles in the same order."""
        return (
            self.contig == other.contig
            and self.n_variants == other.n_variants
            and np.array_equal(self.positions, other.positions)
            and np.array_equal(self.ref, other.ref)
            and np.array_equal(self.alt, other.alt)
        )
