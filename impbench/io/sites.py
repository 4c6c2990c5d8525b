"""Typed sites: the variants a genotyping array (or a scaffold) measures.

``read_typed_sites(path)`` reads a VCF/BCF (any samples, only CHROM and POS are used) or a
text table of contig and position (TSV, CSV or whitespace; an optional header line; extra
columns ignored), e.g. an array manifest cut to two columns or a scaffold's site list.

``match_typed_sites(sites, contig, positions)`` lays them on a dataset's variants by contig
(``chr20`` == ``20``) and position, and refuses, with one line that says how many matched,
a file that matches no variant, all of them (nothing left to impute), or so few of the sites
that fall inside the dataset's span that it is likely on another genome build.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impbench.errors import ImpbenchError
from impbench.io.gmap import same_contig

#: Below this fraction of matched sites (among the file's sites on the dataset's contig and
#: inside its first..last position) the file is refused as another genome build.
MIN_MATCH_FRACTION = 0.10


@dataclass(frozen=True)
class TypedSites:
    """Sites as read. path : the file; contigs : object (n_sites,); positions : int64 (n_sites,)."""

    path: Path
    contigs: np.ndarray
    positions: np.ndarray

    @property
    def n_sites(self) -> int:
        return int(len(self.positions))


@dataclass(frozen=True)
class SiteMatch:
    """Typed sites laid on a dataset's variants.

    typed : bool (n_variants,), True at variants whose (contig, position) is a typed site.
    n_sites : sites in the file; n_on_contig : of them on the dataset's contig;
    n_in_span : of those, inside the dataset's first..last position; n_matched : variants typed.
    """

    typed: np.ndarray
    n_sites: int
    n_on_contig: int
    n_in_span: int
    n_matched: int

    def describe(self) -> str:
        n_variants = len(self.typed)
        return (
            f"{self.n_matched} of {n_variants} variants typed ({self.n_matched / max(n_variants, 1):.1%}); "
            f"{self.n_sites} sites in the file, {self.n_on_contig} on the contig, {self.n_in_span} in the dataset's span"
        )


def _is_vcf(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:3] == b"BCF":
        return True
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as handle:
            head = handle.read(16)
        if head[:3] == b"BCF":
            return True
        return head.startswith(b"##fileformat=VCF")
    with open(path, "rb") as handle:
        return handle.read(16).startswith(b"##fileformat=VCF")


def _read_vcf_sites(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from cyvcf2 import VCF

    try:
        vcf = VCF(str(path), lazy=True, threads=1)
    except (OSError, IOError) as err:
        raise ImpbenchError(f"typed-sites file {path}: not a readable VCF ({err})") from None
    contigs, positions = [], []
    try:
        for record in vcf:
            contigs.append(record.CHROM)
            positions.append(record.POS)
    finally:
        vcf.close()
    return np.array(contigs, dtype=object), np.array(positions, dtype=np.int64)


def _read_table_sites(path: Path) -> tuple[np.ndarray, np.ndarray]:
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    contigs, positions = [], []
    with opener(path, "rt", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.replace(",", "\t").split()
            if len(fields) < 2:
                raise ImpbenchError(
                    f"typed-sites file {path} line {number}: need contig and position, got {line.strip()[:60]!r}"
                )
            try:
                position = int(fields[1])
            except ValueError:
                if not contigs and not positions:
                    continue  # a header line
                raise ImpbenchError(
                    f"typed-sites file {path} line {number}: position {fields[1][:30]!r} is not an integer"
                ) from None
            contigs.append(fields[0])
            positions.append(position)
    return np.array(contigs, dtype=object), np.array(positions, dtype=np.int64)


def read_typed_sites(path: str | os.PathLike) -> TypedSites:
    """Read typed sites from a VCF/BCF or a table of contig and position (see the module docstring).

    Raises ``ImpbenchError`` naming the file when it is missing, unreadable, malformed or empty.
    """
    path = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if not path.is_file():
        raise ImpbenchError(f"typed-sites file {path}: no such file")
    try:
        vcf = _is_vcf(path)
        contigs, positions = _read_vcf_sites(path) if vcf else _read_table_sites(path)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ImpbenchError(f"typed-sites file {path}: cannot read it ({getattr(err, 'strerror', None) or err})") from None
    if len(positions) == 0:
        raise ImpbenchError(f"typed-sites file {path}: it lists no site")
    return TypedSites(path=path, contigs=contigs, positions=positions)


def match_typed_sites(
    sites: TypedSites, contig: str, positions: np.ndarray, min_match_fraction: float = MIN_MATCH_FRACTION
) -> SiteMatch:
    """Which of a dataset's variants are typed.

    contig : the dataset's contig; positions : int64 (n_variants,), the dataset's positions
    (sorted, as in a prepared store). Returns a ``SiteMatch``.

    Raises ``ImpbenchError`` (one line, with the counts) when no variant matches, when every
    variant matches (nothing would be hidden), or when fewer than ``min_match_fraction`` of the
    sites inside the dataset's span match (another genome build).
    """
    positions = np.asarray(positions, dtype=np.int64)
    names = {str(c) for c in np.unique(sites.contigs)}
    on_contig_names = [n for n in names if same_contig(n, contig)]
    on_contig = np.isin(sites.contigs, np.array(on_contig_names, dtype=object))
    site_positions = np.unique(sites.positions[on_contig])
    n_on_contig = int(on_contig.sum())
    if len(positions):
        in_span = (site_positions >= positions.min()) & (site_positions <= positions.max())
    else:
        in_span = np.zeros(len(site_positions), dtype=bool)
    n_in_span = int(in_span.sum())
    typed = np.isin(positions, site_positions)
    match = SiteMatch(typed, sites.n_sites, n_on_contig, n_in_span, int(typed.sum()))
    where = f"typed-sites file {sites.path}"
    if match.n_matched == 0:
        if n_on_contig == 0:
            shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
            why = f"none of its {sites.n_sites} sites is on contig {contig!r} (its contigs: {shown}): another contig?"
        else:
            why = (f"0 of its {sites.n_sites} sites match the dataset's {len(positions)} variants on contig "
                   f"{contig!r} ({n_on_contig} on the contig, {n_in_span} in the dataset's span): another genome build?")
        raise ImpbenchError(f"{where}: {why}")
    if match.n_matched == len(positions):
        raise ImpbenchError(
            f"{where}: it matches all {len(positions)} of the dataset's variants, so none would be left to impute; "
            "give the array's sites, not the dataset's"
        )
    if n_in_span and match.n_matched < min_match_fraction * n_in_span:
        raise ImpbenchError(
            f"{where}: only {match.n_matched} of its {n_in_span} sites in the dataset's span on contig {contig!r} "
            f"match a variant (under {min_match_fraction:.0%}): another genome build?"
        )
    return match
