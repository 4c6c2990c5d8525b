"""VCF in: ``VcfReader`` streams a (b)gzipped VCF or BCF through cyvcf2 in batches of
genotype codes; ``read_vcf`` reads one whole into a ``GenotypeMatrix``.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench.io.vcf_checks import BAD_CONTIG, check_header, record_problem, sniff_vcf
from impbench.io.vcf_text import (
    FLAG_HAPLOID, FLAG_INVALID, GT_CODE_BITS, TextRecords, code_raw_genotypes,
)

__all__ = ["read_vcf", "VcfReader", "VariantBatch", "SiteCounts", "Region"]

#: Records per decoded batch.
DEFAULT_BATCH = 8192

_SNP_BASES = frozenset("ACGTacgt")


@dataclass(frozen=True)
class Region:
    """A genomic interval ``contig[:start-end]`` (1-based, inclusive; None = open)."""

    contig: str
    start: int | None = None
    end: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Region":
        """Parse ``chr``, ``chr:start-end``, ``chr:start-`` or ``chr:pos`` (commas allowed)."""
        text = str(text).strip().replace(",", "")
        contig, _, span = text.partition(":")
        if not contig:
            raise ImpbenchError(f"region {text!r}: no contig name (expected e.g. 22:16000000-17000000)")
        if not span:
            return cls(contig)
        lo, dash, hi = span.partition("-")
        try:
            start = int(lo) if lo else None
            end = int(hi) if hi else (None if dash else start)
        except ValueError:
            raise ImpbenchError(f"region {text!r}: start and end must be whole numbers (e.g. 22:16000000-17000000)") from None
        if start is not None and end is not None and end < start:
            raise ImpbenchError(f"region {text!r}: end is before start")
        return cls(contig, start, end)

    def __str__(self) -> str:
        if self.start is None and self.end is None:
            return self.contig
        return f"{self.contig}:{self.start or 1}-{'' if self.end is None else self.end}"

    def contains(self, position: int) -> bool:
        return (self.start is None or position >= self.start) and (self.end is None or position <= self.end)


@dataclass
class SiteCounts:
    """What the reader saw and dropped (records in the region, before any QC on genotypes).

    n_records : records read in the region.
    n_no_alt : records without an ALT allele (ALT ``.``), dropped.
    n_multiallelic : records with more than one ALT allele, dropped.
    n_non_snp : biallelic indels, MNPs and symbolic alleles, dropped (when SNPs only).
    n_duplicate_position : records sharing a position with another kept record; every record
        at such a position is dropped (``n_duplicate_sites`` positions).
    n_unphased_het : unphased heterozygous genotypes read as if phased (``allow_unphased``).
    n_kept : records passed on.
    """

    n_records: int = 0
    n_no_alt: int = 0
    n_multiallelic: int = 0
    n_non_snp: int = 0
    n_duplicate_position: int = 0
    n_duplicate_sites: int = 0
    n_unphased_het: int = 0
    n_kept: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class VariantBatch:
    """Consecutive kept records, variant-major.

    codes : uint8, shape (n_batch, n_samples) (note: variants are rows here).
    positions : int64 (n_batch,); ref, alt, variant_ids : object (n_batch,).
    """

    codes: np.ndarray
    positions: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    variant_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


def _has_index(path: Path) -> bool:
    return any(Path(str(path) + ext).exists() for ext in (".tbi", ".csi"))


def _header_contigs(raw_header: str) -> list[str]:
    contigs = []
    for line in raw_header.splitlines():
        if line.startswith("##contig=<"):
            for item in line[len("##contig=<") : -1].split(","):
                key, _, value = item.partition("=")
                if key == "ID":
                    contigs.append(value)
    return contigs


class VcfReader:
    """Stream a VCF (cyvcf2) as ``VariantBatch``es of phased genotype codes.

    path : VCF/BCF, plain, gzipped or bgzipped. region : ``Region``, a region string or None;
        with a tabix/CSI index the index is used, otherwise records are filtered while
        streaming. The contig name is matched with or without a ``chr`` prefix.
    allow_unphased : read unphased genotypes as if phased (alleles in VCF order); otherwise an
        unphased heterozygous genotype is an error (a homozygous one carries no phase and is
        accepted).
    snps_only : drop biallelic indels/MNPs/symbolic alleles (multiallelic records and records
        without ALT are always dropped). Dropped records are counted in ``counts``.
    batch_size : records per batch (a batch may be longer by the records at its last
        position, so that a duplicated position never straddles two batches).
    text_path : read a whole text VCF whose FORMAT is GT alone in bulk (``impbench.io.vcf_text``),
        handing over to cyvcf2 at the first record it does not parse; the same batches either way.

    After iterating, ``counts`` holds the ``SiteCounts`` and ``contig`` the contig read.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        region: "Region | str | None" = None,
        *,
        allow_unphased: bool = False,
        snps_only: bool = True,
        batch_size: int = DEFAULT_BATCH,
        threads: int | None = None,
        text_path: bool = True,
    ):
        self.path = Path(path)
        self.region = Region.parse(region) if isinstance(region, str) else region
        self.allow_unphased = allow_unphased
        self.snps_only = snps_only
        self.batch_size = int(batch_size)
        self.threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        #: read a GT-only text VCF in bulk (``impbench.io.vcf_text``); False: always cyvcf2
        self.text_path = text_path
        #: whether the text path handed over to cyvcf2 part way (a record it does not parse)
        self.text_fallback = False
        self.counts = SiteCounts()
        self.contig: str | None = None
        self._kind = sniff_vcf(self.path)
        check_header(self.path, self._kind)
        self._vcf = self._open()
        self._n_raw = 0  # records taken from htslib (before the region filter); -1 when unknown
        self.sample_ids = np.asarray(self._vcf.samples, dtype=object)
        if len(set(self._vcf.samples)) != len(self._vcf.samples):
            raise ImpbenchError(f"{self.path}: the header names a sample more than once (duplicated sample id)")
        if len(self.sample_ids) == 0:
            raise ImpbenchError(f"{self.path}: the VCF has no samples (no genotype columns)")

    def _open(self):
        from cyvcf2 import VCF

        try:
            return VCF(str(self.path), threads=self.threads, lazy=True)
        except OSError as error:
            raise ImpbenchError(f"{self.path}: not a readable VCF ({error})") from None
        except Exception as error:  # cyvcf2 raises a bare Exception ("cannot parse VCF header")
            raise ImpbenchError(f"{self.path}: cannot parse the VCF header ({error})") from None

    def _counted(self, records: Iterable) -> Iterable:
        """``records`` (in file order), counting them in ``_n_raw``."""
        for record in records:
            self._n_raw += 1
            yield record

    def _records(self) -> Iterable:
        """Records of the region (all records without a region)."""
        vcf = self._vcf
        region = self.region
        if region is None:
            return self._counted(vcf)
        names = _header_contigs(vcf.raw_header)
        contig = region.contig
        if names and contig not in names:
            alternative = contig[3:] if contig.startswith("chr") else "chr" + contig
            if alternative in names:
                contig = alternative
            else:
                shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
                raise ImpbenchError(f"{self.path}: region {region}: contig {region.contig!r} is not in the VCF (contigs: {shown})")
        self.region = region = Region(contig, region.start, region.end)
        if _has_index(self.path):
            self._n_raw = -1  # the index skips records: a failing record's line is unknown
            try:
                records = vcf(str(region))
            except Exception as error:  # an index that does not fit the file
                raise ImpbenchError(f"{self.path}: cannot use the index for region {region} ({error})") from None
            # the index also returns records that start before the region and overlap it
            return (v for v in records if region.contains(v.POS))
        return (v for v in self._counted(vcf) if v.CHROM == contig and region.contains(v.POS))

    def _sites(self) -> Iterable[tuple]:
        """The region's records as ``(chrom, pos, ref, alts, id, genotypes)``: genotypes int16
        (n_samples, 3) on the text path (``impbench.io.vcf_text``: a whole VCF without region,
        FORMAT GT alone), else the cyvcf2 record (decoded by ``_record_genotypes``)."""
        if self.region is None and self.text_path:
            text = TextRecords(self.path, self._kind, len(self.sample_ids)) if self._kind != "bcf" else None
            if text is not None:
                for site in text:
                    self._n_raw += 1
                    yield site
                if text.complete:
                    return
                # a chunk the text path cannot parse: cyvcf2 from the first record not yet read
                self.text_fallback = True
                self._vcf = self._open()
                records = itertools.islice(self._vcf, text.n_done, None)
                for record in self._counted(records):
                    yield record.CHROM, record.POS, record.REF, record.ALT, record.ID, record
                return
        for record in self._records():
            yield record.CHROM, record.POS, record.REF, record.ALT, record.ID, record

    def _record_genotypes(self, record, contig: str, pos: int) -> np.ndarray:
        """cyvcf2's (n_samples, 3) int16 genotypes of a record; one line for no GT or not diploid."""
        genotype = record.genotype
        if genotype is None:
            raise ImpbenchError(f"{self.path}: record {contig}:{pos} has no GT field")
        array = genotype.array()
        if array.shape[1] != 3:
            raise ImpbenchError(
                f"{self.path}: record {contig}:{pos} is not diploid (ploidy {array.shape[1] - 1}); only diploid genotypes are supported"
            )
        return array

    def batches(self) -> Iterable[VariantBatch]:
        """Yield ``VariantBatch``es of kept records in file order.

        Records are parsed into one of two raw buffers while the other is decoded on a worker
        thread (numpy releases the GIL), so decoding overlaps parsing.
        """
        n_samples = len(self.sample_ids)
        capacity = self.batch_size + 64
        # per batch: coded uint8 (rows, n_samples) from the text path; cyvcf2's int16
        # (rows, n_samples, 3) genotypes in raw (allocated when a cyvcf2 record comes), coded at decode
        buffers = [_BatchBuffer(capacity, n_samples) for _ in range(2)]
        current = 0
        buffer = buffers[current]
        positions: list[int] = []
        refs: list[str] = []
        alts: list[str] = []
        ids: list[str] = []
        counts = self.counts
        snps_only = self.snps_only
        batch_size = self.batch_size
        last_pos = -1
        contig = None
        pending = None
        pool = ThreadPoolExecutor(1)
        try:
            for chrom, pos, ref, alt, vid, genotypes in self._sites():
                counts.n_records += 1
                if contig is None:
                    contig = self.contig = chrom
                    if BAD_CONTIG.search(contig):
                        raise ImpbenchError(
                            f"{self.path}: contig name {contig!r} holds whitespace or '='; rename the contig "
                            "(bcftools annotate --rename-chrs)"
                        )
                elif chrom != contig:
                    raise ImpbenchError(
                        f"{self.path}: holds more than one contig ({contig}, {chrom}); choose one with a region"
                    )
                if pos < last_pos:
                    raise ImpbenchError(
                        f"{self.path}: records are not sorted by position ({contig}:{pos} after {last_pos}); "
                        "sort it with bcftools sort"
                    )
                if len(alt) != 1:
                    if len(alt) == 0:
                        counts.n_no_alt += 1
                    else:
                        counts.n_multiallelic += 1
                    continue
                alt = alt[0]
                if snps_only and not (len(ref) == 1 and len(alt) == 1 and ref in _SNP_BASES and alt in _SNP_BASES):
                    counts.n_non_snp += 1
                    continue
                n_buffered = len(positions)
                if n_buffered >= batch_size and pos != last_pos:
                    future = pool.submit(self._decode, buffer, n_buffered, positions, refs, alts, ids)
                    if pending is not None:
                        yield pending.result()
                    pending = future
                    current ^= 1
                    buffer = buffers[current]
                    buffer.clear()
                    positions, refs, alts, ids = [], [], [], []
                    n_buffered = 0
                elif n_buffered == buffer.capacity:
                    buffer.grow()
                if isinstance(genotypes, np.ndarray):
                    buffer.coded[n_buffered] = genotypes
                else:
                    buffer.put_raw(n_buffered, self._record_genotypes(genotypes, contig, pos))
                positions.append(pos)
                refs.append(ref)
                alts.append(alt)
                ids.append(vid or ".")
                last_pos = pos
            if pending is not None:
                yield pending.result()
                pending = None
            if positions:
                yield self._decode(buffer, len(positions), positions, refs, alts, ids)
        except ImpbenchError:
            raise
        except Exception as error:  # htslib parse errors, truncated files
            problem = None
            if self._n_raw >= 0:
                problem = record_problem(self.path, self._kind, self._n_raw, len(self.sample_ids))
            raise ImpbenchError(
                f"{self.path}: cannot read record {self._n_raw + 1 if self._n_raw >= 0 else counts.n_records + 1}: "
                + (problem or f"htslib could not parse it ({error})")
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _decode(self, buffer: "_BatchBuffer", n_rows: int, positions: list, refs: list, alts: list, ids: list) -> VariantBatch:
        """Codes of the first ``n_rows`` rows of ``buffer`` (cyvcf2 rows coded here, the text
        path's already); one line for a bad genotype; drops duplicated positions."""
        coded = buffer.finish(n_rows)  # (n_batch, n_samples) uint8, codes with flags
        if coded.max(initial=0) > GT_CODE_BITS:
            flags = coded & ~np.uint8(GT_CODE_BITS)
            bad = (flags & (FLAG_HAPLOID | FLAG_INVALID)) != 0
            if bad.any():
                row = int(np.nonzero(bad.any(axis=1))[0][0])
                what = "a haploid genotype" if (flags[row] & FLAG_HAPLOID).any() else "an allele index other than 0 or 1"
                raise ImpbenchError(
                    f"{self.path}: record {self.contig}:{positions[row]} has {what}; only diploid biallelic genotypes are supported"
                )
            unphased_het = flags != 0
            if not self.allow_unphased:
                row, col = (int(x[0]) for x in np.nonzero(unphased_het))
                raise ImpbenchError(
                    f"{self.path}: unphased genotypes (first at {self.contig}:{positions[row]}, sample "
                    f"{self.sample_ids[col]}); phase the VCF first or allow unphased genotypes in the card"
                )
            self.counts.n_unphased_het += int(np.count_nonzero(unphased_het))
            coded = coded & np.uint8(GT_CODE_BITS)
        codes = coded
        pos = np.asarray(positions, dtype=np.int64)
        keep = np.ones(len(pos), dtype=bool)
        same = pos[1:] == pos[:-1]
        if same.any():
            keep[1:][same] = False
            keep[:-1][same] = False
            self.counts.n_duplicate_position += int((~keep).sum())
            self.counts.n_duplicate_sites += int(np.count_nonzero(np.diff(np.concatenate([[0], same.astype(np.int8)])) == 1))
        self.counts.n_kept += int(keep.sum())
        return VariantBatch(
            codes=codes[keep],
            positions=pos[keep],
            ref=np.asarray(refs, dtype=object)[keep],
            alt=np.asarray(alts, dtype=object)[keep],
            variant_ids=np.asarray(ids, dtype=object)[keep],
        )

    def read(self) -> GenotypeMatrix:
        """The whole (region of the) VCF as one ``GenotypeMatrix`` (for data that fits twice in memory)."""
        batches = list(self.batches())
        if not batches:
            where = f" in region {self.region}" if self.region else ""
            raise ImpbenchError(f"{self.path}: no usable variants{where} ({self.counts.n_records} records read)")
        return GenotypeMatrix(
            codes=np.ascontiguousarray(np.concatenate([b.codes for b in batches]).T),
            positions=np.concatenate([b.positions for b in batches]),
            contig=self.contig or (self.region.contig if self.region else ""),
            ref=np.concatenate([b.ref for b in batches]),
            alt=np.concatenate([b.alt for b in batches]),
            variant_ids=np.concatenate([b.variant_ids for b in batches]),
            sample_ids=self.sample_ids,
        )


class _BatchBuffer:
    """The genotypes of one batch being read: ``coded`` uint8 (capacity, n_samples) rows (codes
    with flags), and, for rows from cyvcf2, their int16 (n_samples, 3) arrays in ``raw`` until
    ``finish`` codes them in bulk."""

    def __init__(self, capacity: int, n_samples: int):
        self.coded = np.empty((capacity, n_samples), dtype=np.uint8)
        self.raw: np.ndarray | None = None
        self.from_raw = np.zeros(capacity, dtype=bool)

    @property
    def capacity(self) -> int:
        return len(self.coded)

    def clear(self) -> None:
        self.from_raw[:] = False

    def grow(self) -> None:
        """Twice the rows (a batch runs past its size by the records at its last position)."""
        self.coded = np.concatenate([self.coded, np.empty_like(self.coded)])
        self.from_raw = np.concatenate([self.from_raw, np.zeros_like(self.from_raw)])
        if self.raw is not None:
            self.raw = np.concatenate([self.raw, np.empty_like(self.raw)])

    def put_raw(self, row: int, genotypes: np.ndarray) -> None:
        if self.raw is None:
            self.raw = np.empty(self.coded.shape + (3,), dtype=np.int16)
        self.raw[row] = genotypes
        self.from_raw[row] = True

    def finish(self, n_rows: int) -> np.ndarray:
        """The coded rows ``[:n_rows]``, cyvcf2's rows coded now (a view of the buffer)."""
        coded = self.coded[:n_rows]
        if self.raw is not None:
            rows = np.flatnonzero(self.from_raw[:n_rows])
            if len(rows) == n_rows:
                coded[:] = code_raw_genotypes(self.raw[:n_rows])
            elif len(rows):
                coded[rows] = code_raw_genotypes(self.raw[rows])
        return coded


def read_vcf(
    path: str | os.PathLike,
    region: "Region | str | None" = None,
    *,
    allow_unphased: bool = False,
    snps_only: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> GenotypeMatrix:
    """Read a phased VCF into a ``GenotypeMatrix`` (see ``VcfReader`` for the arguments).

    Multiallelic records, records without ALT, non-SNPs (when ``snps_only``) and every record at
    a duplicated position are dropped. Raises ``ImpbenchError`` naming the file when it is
    missing, not a VCF, unphased (unless allowed), or has no usable variant in the region.
    """
    return VcfReader(path, region, allow_unphased=allow_unphased, snps_only=snps_only, batch_size=batch_size).read()
