"""The ingest pipeline: VCF (+ sample sheet) -> QC -> split -> HDF5 store.

``ingest`` streams the VCF in batches of records (``VcfReader``) and filters and
writes each batch as it comes, so memory stays at a few batches whatever the file's size (no
Python object per genotype). Steps, in order, each counted in the QC report:

1. site filters while reading: no ALT, multiallelic, not a SNP, duplicated position;
   unphased heterozygous genotypes are an error unless ``qc.allow_unphased``;
2. samples with more than ``qc.max_sample_missing`` missing genotypes dropped;
3. split of the remaining samples, stratified by cohort x sex (``assign_splits``);
4. variants with any missing genotype (among kept samples) dropped;
5. HWE exact test p <= ``qc.hwe_p`` and 6. MAF < ``qc.min_maf``, both computed on the
   training split (``qc.per_split``: on each split, a variant failing in any split dropped);
   HWE within each cohort of the split (``qc.hwe_scope = "cohort"``, the default; a variant
   failing in any cohort dropped) or over the pooled samples (``"pooled"``).

Step 2 needs the whole file, so the single pass assumes that no sample fails it (true of
phased reference panels) and, when one does, reads the VCF a second time without it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from impbench.data.qc import HweExactTest, QCReport, QCSettings, allele_counts_maf, genotype_counts
from impbench.data.split import SPLITS, SplitSettings, assign_splits
from impbench.data.store import STORE_FORMAT, DatasetStore, StoreWriter
from impbench.errors import DiskError, ImpbenchError
from impbench.files import DISK_ERRNOS, file_fingerprint, os_error_reason, to_jsonable
from impbench.io.samplesheet import read_sample_sheet
from impbench.io.vcf_read import Region, VcfReader
from impbench.progress import ProgressFn, no_progress


@dataclass(frozen=True)
class Source:
    """A dataset's data on disk, resolved once (``impbench.data.prepare.resolve_source``).

    vcf : the phased VCF/BCF. sheet : the sample sheet, or None (every sample is cohort "all",
    sex "unknown"). identity : what the data is (file fingerprints or a simulation key), as
    recorded in the store.
    """

    vcf: Path
    sheet: Path | None = None
    identity: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestSettings:
    """How a source becomes a store: QC and split settings, an optional region
    (``chr:start-end``), and the sample sheet's column names (``{"id", "cohort", "sex"}``; any
    missing one takes ``read_sample_sheet``'s defaults)."""

    qc: QCSettings = field(default_factory=QCSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    region: str | None = None
    columns: Mapping[str, str | None] = field(default_factory=dict)

    def record(self) -> dict:
        """The JSON-able settings a store records (and its key hashes)."""
        return to_jsonable(
            {
                "qc": asdict(self.qc),
                "split": asdict(self.split),
                "region": None if self.region is None else str(Region.parse(self.region)),
                "columns": dict(self.columns) or None,
            }
        )


def ingest(
    source: Source,
    settings: IngestSettings,
    out_path: str | os.PathLike,
    name: str,
    *,
    card: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    batch_size: int | None = None,
) -> DatasetStore:
    """Ingest ``source`` into the HDF5 store ``out_path`` (replacing one there) and return it
    opened. card : what the store records about the card (kind, simulation key).
    progress : ``progress(stage, done, total)``: records read so far (total None) in stage
    "read", and "read again" when samples were dropped (see the module docstring).

    Raises ``ImpbenchError`` (one line naming the file and the problem) for a missing or
    invalid VCF or sheet, unphased genotypes, missing sheet samples or columns, a region or QC
    that leaves no variant, a cohort x sex stratum too small to split, and a store that cannot
    be written (disk full, quota, read-only or forbidden folder: the store's path and the
    reason). Nothing is left on disk on error (an existing store at ``out_path`` stays as it was).
    """
    out_path = Path(out_path)
    try:
        return _ingest(source, settings, out_path, name, card=card, progress=progress, batch_size=batch_size)
    except OSError as error:  # writing the store: a full disk, a quota, a read-only or locked folder
        kind = DiskError if error.errno in DISK_ERRNOS else ImpbenchError
        raise kind(f"{out_path}: cannot write the dataset store ({os_error_reason(error)})") from None


def _ingest(
    source: Source,
    settings: IngestSettings,
    out_path: Path,
    name: str,
    *,
    card: Mapping[str, Any] | None,
    progress: ProgressFn | None,
    batch_size: int | None,
) -> DatasetStore:
    progress = progress or no_progress
    vcf = Path(source.vcf)
    sheet_path = Path(source.sheet) if source.sheet is not None else None
    out_path = Path(out_path)
    qc, split, region = settings.qc, settings.split, settings.region
    columns = dict(settings.columns)
    recorded = {**settings.record(), "card": to_jsonable(dict(card or {}))}
    if not vcf.is_file():
        raise ImpbenchError(f"{vcf}: file not found" if not vcf.exists() else f"{vcf}: is not a file")
    if sheet_path is not None and not sheet_path.is_file():
        raise ImpbenchError(f"{sheet_path}: sample sheet not found")
    inputs = to_jsonable(
        {
            "format": STORE_FORMAT,
            "vcf": file_fingerprint(vcf),
            "sample_sheet": file_fingerprint(sheet_path) if sheet_path else None,
            "identity": dict(source.identity),
            "settings": recorded,
            "name": name,
        }
    )

    sheet = read_sample_sheet(sheet_path, columns.get("id"), columns.get("cohort"), columns.get("sex")) if sheet_path else None

    def open_reader() -> VcfReader:
        return VcfReader(
            vcf, region, allow_unphased=qc.allow_unphased, snps_only=qc.snps_only,
            **({"batch_size": batch_size} if batch_size else {}),
        )  # fmt: skip

    reader = open_reader()
    sample_ids = reader.sample_ids
    n_samples = len(sample_ids)
    if sheet is not None:
        cohort, sex, n_extra = sheet.for_samples(sample_ids, vcf)
    else:
        cohort = np.full(n_samples, "all", dtype=object)
        sex = np.full(n_samples, "unknown", dtype=object)
        n_extra = 0
    try:
        split_all = assign_splits(cohort, sex, split, sample_ids=sample_ids)
    except ImpbenchError as error:
        raise ImpbenchError(f"{sheet_path or vcf}: {error}") from None

    # Pass 1 assumes no sample fails the missingness filter (the usual case) and writes the
    # store while reading. If some sample fails, that store is dropped and pass 2 reads the
    # VCF again with those samples left out (and the split made without them).
    kept_index = np.arange(n_samples)
    split_labels = split_all
    first = _stream(reader, kept_index, n_samples, cohort, sex, split_labels, qc, out_path, name, progress, "read")
    n_read = first.n_variants_read
    counts = reader.counts
    where = f" in region {reader.region}" if reader.region is not None else ""
    if n_read == 0:
        first.writer.abort()
        raise ImpbenchError(
            f"{vcf}: no usable variants{where} ({counts.n_records} records read, {counts.n_multiallelic} multiallelic, "
            f"{counts.n_non_snp} not SNPs, {counts.n_duplicate_position} at duplicated positions)"
        )
    keep_samples = first.sample_missing / n_read <= qc.max_sample_missing
    n_kept_samples = int(keep_samples.sum())
    result = first
    if n_kept_samples < n_samples:
        first.writer.abort()
        if n_kept_samples == 0:
            raise ImpbenchError(f"{vcf}: every sample has more than {qc.max_sample_missing:g} missing genotypes")
        kept_index = np.nonzero(keep_samples)[0]
        try:
            split_labels = assign_splits(cohort[kept_index], sex[kept_index], split, sample_ids=sample_ids[kept_index])
        except ImpbenchError as error:
            raise ImpbenchError(f"{sheet_path or vcf}: after dropping samples with missing genotypes, {error}") from None
        reader = open_reader()
        result = _stream(reader, kept_index, n_samples, cohort, sex, split_labels, qc, out_path, name, progress, "read again")

    report = QCReport()
    left = counts.n_records
    report.add("records read" + where, variants_left=left, samples_left=n_samples)
    for label, removed in (
        ("no ALT allele", counts.n_no_alt),
        ("multiallelic", counts.n_multiallelic),
        ("not a SNP (indel, MNP, symbolic)" if qc.snps_only else "not a SNP (kept: snps_only = false)", counts.n_non_snp),
        ("duplicated position (all records there)", counts.n_duplicate_position),
    ):
        left -= removed
        report.add(label, variants_removed=removed, variants_left=left, samples_left=n_samples)
    if counts.n_unphased_het:
        report.add("unphased heterozygous genotypes read as phased", variants_left=left, samples_left=n_samples,
                   note=f"{counts.n_unphased_het:,} genotypes")  # fmt: skip
    report.add(
        f"samples with > {qc.max_sample_missing:g} missing genotypes",
        samples_removed=n_samples - n_kept_samples, variants_left=left, samples_left=n_kept_samples,
    )  # fmt: skip
    source = "each split" if qc.per_split else "training split"
    hwe_scope = "within each cohort, failing in any" if qc.hwe_scope == "cohort" else "cohorts pooled"
    for label, removed in (
        ("variants with any missing genotype" + ("" if qc.drop_variant_missing else " (kept: drop_variant_missing = false)"), result.removed_missing),
        (f"HWE exact p <= {qc.hwe_p:g} ({source}, {hwe_scope})", result.removed_hwe),
        (f"MAF < {qc.min_maf:g} ({source})", result.removed_maf),
    ):
        left -= removed
        report.add(label, variants_removed=removed, variants_left=left, samples_left=n_kept_samples)
    if left == 0:
        result.writer.abort()
        raise ImpbenchError(f"{vcf}: no variant passes QC{where} ({n_read} read; see the QC settings of the card)")
    split_sizes = {s: int((split_labels == s).sum()) for s in SPLITS}
    report.add("split " + ":".join(f"{f:g}" for f in split.fractions) + " by cohort x sex", variants_left=left,
               samples_left=n_kept_samples, note=", ".join(f"{s} {n}" for s, n in split_sizes.items()))  # fmt: skip
    report.info.update(
        {
            "vcf": str(vcf),
            "sample_sheet": str(sheet_path) if sheet_path else None,
            "region": str(reader.region) if reader.region is not None else None,
            "contig": reader.contig,
            "sheet_samples_not_in_vcf": int(n_extra),
            "unphased_het_genotypes": int(counts.n_unphased_het),
            "duplicated_sites": int(counts.n_duplicate_sites),
            "maf_hwe_source": source,
            "hwe_scope": qc.hwe_scope,
            "n_samples": n_kept_samples,
            "n_variants": left,
            "split_sizes": split_sizes,
            "passes_over_vcf": 1 if result is first else 2,
        }
    )
    return result.writer.finish(qc_report=report.as_dict(), settings=recorded, inputs=inputs)


class _StreamResult:
    def __init__(self, writer: StoreWriter, sample_missing: np.ndarray):
        self.writer = writer
        self.sample_missing = sample_missing
        self.n_variants_read = 0
        self.removed_missing = 0
        self.removed_hwe = 0
        self.removed_maf = 0


def _stream(
    reader: VcfReader,
    kept_index: np.ndarray,
    n_samples: int,
    cohort: np.ndarray,
    sex: np.ndarray,
    split_labels: np.ndarray,
    qc: QCSettings,
    out_path: Path,
    name: str,
    progress: ProgressFn,
    stage: str,
) -> _StreamResult:
    """Read every batch, filter its variants on the kept samples and write the kept ones.

    Returns the open writer (the caller finishes or aborts it), per-sample missing counts over
    all samples, and how many variants each filter removed (each counted after the previous).
    """
    all_kept = len(kept_index) == n_samples
    writer = StoreWriter(
        out_path, name=name, contig="", sample_ids=reader.sample_ids[kept_index], cohort=cohort[kept_index],
        sex=sex[kept_index], split=split_labels,
    )  # fmt: skip
    result = _StreamResult(writer, np.zeros(n_samples, dtype=np.int64))
    count_splits = [s for s in SPLITS if (split_labels == s).any()] if qc.per_split else ["train"]
    split_columns = {s: np.nonzero(split_labels == s)[0] for s in count_splits}
    # HWE: within each cohort of each counted split (qc.hwe_scope = "cohort") or pooled
    kept_cohort = cohort[kept_index]
    hwe_columns = [
        columns[kept_cohort[columns] == c] if qc.hwe_scope == "cohort" else columns
        for columns in split_columns.values()
        for c in (np.unique(kept_cohort[columns]) if qc.hwe_scope == "cohort" else [None])
    ]
    hwe = HweExactTest()
    try:
        for batch in reader.batches():
            codes = batch.codes
            result.sample_missing += np.count_nonzero(codes == 0, axis=0)
            result.n_variants_read += len(batch)
            if not all_kept:
                codes = codes[:, kept_index]
            missing_fail = np.count_nonzero(codes == 0, axis=1) > 0 if qc.drop_variant_missing else np.zeros(len(batch), bool)
            hwe_fail = np.zeros(len(batch), dtype=bool)
            maf_fail = np.zeros(len(batch), dtype=bool)
            if qc.hwe_p > 0:
                for columns in hwe_columns:
                    hom_ref, het, hom_alt, _ = genotype_counts(codes[:, columns], axis=1)
                    hwe_fail |= hwe.pvalues(hom_ref, het, hom_alt) <= qc.hwe_p
            for columns in split_columns.values():
                hom_ref, het, hom_alt, _ = genotype_counts(codes[:, columns], axis=1)
                if qc.min_maf > 0:
                    maf_fail |= ~(allele_counts_maf(hom_ref, het, hom_alt) >= qc.min_maf)  # NaN fails
            keep = ~missing_fail
            result.removed_missing += int(missing_fail.sum())
            result.removed_hwe += int((keep & hwe_fail).sum())
            keep &= ~hwe_fail
            result.removed_maf += int((keep & maf_fail).sum())
            keep &= ~maf_fail
            if keep.any():
                writer.add(codes[keep], batch.positions[keep], batch.ref[keep], batch.alt[keep], batch.variant_ids[keep])
            progress(stage, reader.counts.n_records, None)
        writer.contig = reader.contig or ""
    except BaseException:
        writer.abort()
        raise
    return result
