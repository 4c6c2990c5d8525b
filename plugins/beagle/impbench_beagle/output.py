"""Reading Beagle's output VCF back onto the target's cells.

Records are matched to target variants by contig, position, REF and ALT, never by row order:
Beagle drops target markers that the reference panel lacks, adds the panel's markers that the
target lacks (imputed, ``IMP`` flag) and may order records differently from the target. Samples
are matched by id.

What Beagle writes (5.4):
- at markers in the target VCF (genotyped): phased GT. Sporadic missing cells (the masked ones)
  are filled during phasing as hard calls; DS there, when the FORMAT has it, is a whole number.
  (The default ``sporadic=soft`` mode therefore leaves each sample's masked markers out of its
  target VCF: ``groups``.)
- at markers imputed from the panel (absent from the target VCF; INFO flag ``IMP``): GT, DS,
  with ``ap=true`` AP1/AP2 (the ALT probability of each haplotype) and with ``gp=true`` GP
  (the three unphased genotypes). The plugin asks for both: AP1/AP2 give the probabilities of
  the four phased codes; GP is kept as a fallback (its heterozygous mass split evenly between
  0|1 and 1|0) for records without AP.
- INFO ``DR2`` (Beagle's estimate of the dosage r²) on every record: read as the per-variant
  ``quality`` of the imputation (the scorer compares it with the true r²).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import HOM_REF, GenotypeMatrix, code_dosage, codes_from_alleles, is_call
from impbench.imputers.base import Imputation


@dataclass
class BeagleOutput:
    """Beagle's answer laid onto the target's (n_samples, n_variants) grid.

    covered : bool (n_variants,); True where exactly one output record matched the variant.
    calls : uint8 (n_samples, n_variants); Beagle's phased GT code, 0 where not covered (or
        where Beagle wrote a missing GT, which it does not normally do).
    ds : float32 (n_samples, n_variants) or None; Beagle's DS where the record has it, NaN
        elsewhere; None when no matched record has DS.
    allele_probs : {variant index: float32 (n_samples, 2)}: AP1 and AP2 of the matched records
        flagged ``IMP`` (imputed from the panel) that carry them.
    genotype_probs : {variant index: float32 (n_samples, 3)}: GP of the matched ``IMP`` records.
    dr2 : float32 (n_variants,); Beagle's DR2 of each covered variant, NaN elsewhere.
    imputed : bool (n_variants,); True where the matched record carries the ``IMP`` flag.
    n_records, n_ignored : output records read, and those matching no target variant.
    n_duplicated : target variants matched by more than one record (left not covered).
    """

    covered: np.ndarray
    calls: np.ndarray
    ds: np.ndarray | None
    allele_probs: dict = field(default_factory=dict)
    genotype_probs: dict = field(default_factory=dict)
    dr2: np.ndarray | None = None
    imputed: np.ndarray | None = None
    n_records: int = 0
    n_ignored: int = 0
    n_duplicated: int = 0


def _variant_index(target: GenotypeMatrix) -> dict[tuple[int, str, str], list[int]]:
    index: dict[tuple[int, str, str], list[int]] = {}
    for j, key in enumerate(zip(target.positions.tolist(), target.ref.tolist(), target.alt.tolist())):
        index.setdefault(key, []).append(j)
    return index


def _format_column(record, name: str, columns: np.ndarray) -> np.ndarray | None:
    try:
        values = record.format(name)
    except KeyError:
        return None
    if values is None:
        return None
    return np.asarray(values, dtype=np.float32)[columns, 0]


def _format_columns(record, name: str, columns: np.ndarray, width: int) -> np.ndarray | None:
    """A FORMAT field of ``width`` numbers per sample: float32 (n_columns, width), or None."""
    try:
        values = record.format(name)
    except KeyError:
        return None
    if values is None or np.shape(values)[1] != width:
        return None
    return np.asarray(values, dtype=np.float32)[columns]


def read_beagle_output(path: Path, target: GenotypeMatrix) -> BeagleOutput:
    """Lay Beagle's output VCF at ``path`` onto ``target``'s variants and samples.

    Raises ``ImpbenchError`` when the file cannot be read or lacks a target sample.
    """
    from cyvcf2 import VCF

    try:
        vcf = VCF(str(path), lazy=True, threads=1)
    except (OSError, IOError) as err:
        raise ImpbenchError(f"beagle output {path}: cannot read it ({err})") from None
    if f"##contig=<ID={target.contig}," not in vcf.raw_header and f"##contig=<ID={target.contig}>" not in vcf.raw_header:
        vcf.add_to_header(f"##contig=<ID={target.contig}>")  # Beagle writes none; htslib would warn
    samples = {sample: i for i, sample in enumerate(vcf.samples)}
    absent = [s for s in target.sample_ids.tolist() if s not in samples]
    if absent:
        vcf.close()
        raise ImpbenchError(f"beagle output {path} lacks {len(absent)} target sample(s), e.g. {absent[0]!r}")
    columns = np.array([samples[s] for s in target.sample_ids.tolist()], dtype=np.int64)

    n_samples, n_variants = target.codes.shape
    index = _variant_index(target)
    calls = np.zeros((n_samples, n_variants), dtype=np.uint8)
    seen = np.zeros(n_variants, dtype=np.int64)
    ds: np.ndarray | None = None
    allele_probs: dict[int, np.ndarray] = {}
    genotype_probs: dict[int, np.ndarray] = {}
    dr2 = np.full(n_variants, np.nan, dtype=np.float32)
    imputed = np.zeros(n_variants, dtype=bool)
    n_records = n_ignored = 0
    for record in vcf:
        n_records += 1
        alts = record.ALT
        matched = None
        if record.CHROM == target.contig and len(alts) == 1:
            matched = index.get((record.POS, record.REF, alts[0]))
        if matched is None:
            n_ignored += 1
            continue
        alleles = record.genotype.array()[columns]
        codes = codes_from_alleles(alleles[:, 0], alleles[:, 1])
        record_ds = _format_column(record, "DS", columns)
        record_ap = record_gp = None
        record_imputed = record.INFO.get("IMP") is not None
        record_dr2 = record.INFO.get("DR2")
        if record_imputed:
            ap1 = _format_column(record, "AP1", columns)
            ap2 = _format_column(record, "AP2", columns)
            if ap1 is not None and ap2 is not None:
                record_ap = np.stack([ap1, ap2], axis=1)
            record_gp = _format_columns(record, "GP", columns, 3)
        for j in matched:
            seen[j] += 1
            calls[:, j] = codes
            if record_ds is not None:
                if ds is None:
                    ds = np.full((n_samples, n_variants), np.nan, dtype=np.float32)
                ds[:, j] = record_ds
            if record_ap is not None:
                allele_probs[j] = record_ap
            if record_gp is not None:
                genotype_probs[j] = record_gp
            imputed[j] = record_imputed
            dr2[j] = np.nan if record_dr2 is None else float(record_dr2)
    vcf.close()
    duplicated = seen > 1
    covered = seen == 1
    if duplicated.any():
        calls[:, duplicated] = 0
        if ds is not None:
            ds[:, duplicated] = np.nan
        dr2[duplicated] = np.nan
        imputed[duplicated] = False
        for j in np.flatnonzero(duplicated).tolist():
            allele_probs.pop(j, None)
            genotype_probs.pop(j, None)
    return BeagleOutput(
        covered=covered,
        calls=calls,
        ds=ds,
        allele_probs=allele_probs,
        genotype_probs=genotype_probs,
        dr2=dr2,
        imputed=imputed,
        n_records=n_records,
        n_ignored=n_ignored,
        n_duplicated=int(duplicated.sum()),
    )


def observed_mode(codes: np.ndarray) -> np.ndarray:
    """Most frequent observed call code (1-4) per variant; ``HOM_REF`` where nothing is observed.

    codes : uint8 (n_samples, n_variants). Returns uint8 (n_variants,). Ties go to the lower code.
    """
    counts = np.stack([(codes == code).sum(axis=0) for code in (1, 2, 3, 4)])
    mode = (np.argmax(counts, axis=0) + 1).astype(np.uint8)
    mode[counts.sum(axis=0) == 0] = HOM_REF
    return mode


def allele_probs_to_code_probs(allele_probs: np.ndarray) -> np.ndarray:
    """Probabilities over codes 1-4 from per-haplotype ALT probabilities.

    allele_probs : float (..., 2) = (P(first allele is ALT), P(second allele is ALT)), the
    haplotypes taken as independent (what Beagle's AP1/AP2 give). Returns float32 (..., 4)
    ordered as codes 1 (0|0), 2 (0|1), 3 (1|0), 4 (1|1).
    """
    p = np.clip(np.asarray(allele_probs, dtype=np.float64), 0.0, 1.0)
    p0, p1 = p[..., 0], p[..., 1]
    probs = np.stack([(1 - p0) * (1 - p1), (1 - p0) * p1, p0 * (1 - p1), p0 * p1], axis=-1)
    return probs.astype(np.float32)


def genotype_probs_to_code_probs(genotype_probs: np.ndarray) -> np.ndarray:
    """Probabilities over codes 1-4 from unphased GP (P(0/0), P(het), P(1/1)), float (..., 3).

    The heterozygous mass is split evenly between 0|1 and 1|0 (GP says nothing about phase);
    rows are renormalised to sum to 1. Returns float32 (..., 4).
    """
    gp = np.clip(np.asarray(genotype_probs, dtype=np.float64), 0.0, None)
    probs = np.stack([gp[..., 0], gp[..., 1] / 2, gp[..., 1] / 2, gp[..., 2]], axis=-1)
    total = probs.sum(axis=-1, keepdims=True)
    probs = np.where(total > 0, probs / np.where(total > 0, total, 1.0), 0.25)
    return probs.astype(np.float32)


def assemble_imputation(target: GenotypeMatrix, output: BeagleOutput) -> Imputation:
    """The ``Imputation`` for ``target`` from Beagle's output.

    - Observed cells (code != 0) keep the target's code in ``calls`` and its dosage, even where
      Beagle re-phased an observed heterozygote (it re-phases the whole target).
    - Masked cells at covered variants: Beagle's phased GT; dosage = DS where Beagle wrote
      it, else the GT's dosage.
    - Masked cells at variants Beagle did not output (``covered`` False: absent from the panel,
      so the panel cannot say anything there): the variant's most frequent observed code in
      the target, or 0|0 when none is observed. Those cells are not scored under ``standard``.
    - ``probs``: only when Beagle imputed some target variants from the panel (AP1/AP2, or GP
      where a record has no AP): one-hot of ``calls`` everywhere except masked cells of those
      variants, where it is the product of the haplotype probabilities (or GP's split); a row
      of AP/GP that is NaN (merged from sample groups: no record for that sample) keeps the
      one-hot. None otherwise (every cell is then a hard call).
    - ``quality``: Beagle's DR2 per variant (NaN where not covered).
    - ``raw_calls``: Beagle's own phased GT at every cell of a covered variant, observed cells
      included (re-phased hets as Beagle wrote them), ``calls`` elsewhere: what the published
      evaluation scored (the ``paper`` protocol).
    """
    codes = target.codes
    observed = is_call(codes)
    masked = ~observed
    covered = output.covered
    fallback = np.broadcast_to(observed_mode(codes), codes.shape)
    beagle_calls = np.where(is_call(output.calls), output.calls, fallback)
    filled = np.where(covered[None, :], beagle_calls, fallback)
    calls = np.where(observed, codes, filled).astype(np.uint8)
    raw_calls = np.where(covered[None, :] & is_call(output.calls), output.calls, calls).astype(np.uint8)

    dosage = code_dosage(calls)
    if output.ds is not None:
        use_ds = masked & covered[None, :] & np.isfinite(output.ds)
        dosage = np.where(use_ds, np.clip(output.ds, 0.0, 2.0), dosage).astype(np.float32)

    probs = None
    if output.allele_probs or output.genotype_probs:
        probs = np.zeros(codes.shape + (4,), dtype=np.float32)
        np.put_along_axis(probs, (calls.astype(np.int64) - 1)[..., None], 1.0, axis=-1)
        for j, genotype_probs in output.genotype_probs.items():
            rows = masked[:, j] & np.isfinite(genotype_probs).all(axis=1)
            if j in output.allele_probs:
                rows &= ~np.isfinite(output.allele_probs[j]).all(axis=1)
            probs[rows, j] = genotype_probs_to_code_probs(genotype_probs[rows])
        for j, allele_probs in output.allele_probs.items():
            rows = masked[:, j] & np.isfinite(allele_probs).all(axis=1)
            probs[rows, j] = allele_probs_to_code_probs(allele_probs[rows])
    quality = None if output.dr2 is None else np.where(covered, output.dr2, np.nan).astype(np.float32)
    return Imputation(
        calls=calls, dosage=dosage.astype(np.float32), probs=probs, covered=covered.copy(), quality=quality,
        raw_calls=raw_calls,
    )
