"""Genetic maps: reading the two formats impbench accepts and writing what the tools read.

Formats (plain text, optionally gzipped; told apart by their first line):

- PLINK ``.map``: whitespace-separated ``chrom  id  cM  bp``, no header (what Beagle reads).
- gmap (SHAPEIT4 / the ``shapeit4-example`` package): a header ``pos chr cM`` then
  tab-separated ``bp  chrom  cM`` rows.

Both Beagle (``map=``) and Minimac4 (``--map``, whose "old format" is PLINK's) read a PLINK map
whose chromosome column equals the VCF's CHROM exactly, so ``write_plink_map`` converts either
format to one PLINK map for the dataset's contig (``chr20`` and ``20`` are taken as the same
contig and written with the dataset's spelling). Anything else is refused with one line.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impbench.errors import ImpbenchError
from impbench.files import atomic_write

FORMATS = ("plink", "gmap")
_GMAP_HEADER = ("pos", "chr", "cm")
_EXPECTED = "expected a PLINK .map (chrom id cM bp, no header) or a gmap file (header 'pos chr cM')"


@dataclass(frozen=True)
class GeneticMap:
    """One genetic map as read.

    path : the file; format : "plink" or "gmap".
    contigs : object (n_rows,) chromosome names as written; positions : int64 (n_rows,) bp;
    cm : float64 (n_rows,) map positions in centimorgans.
    """

    path: Path
    format: str
    contigs: np.ndarray
    positions: np.ndarray
    cm: np.ndarray

    def contig_names(self) -> list[str]:
        """The distinct contigs, in file order."""
        _, first = np.unique(self.contigs, return_index=True)
        return [str(self.contigs[i]) for i in sorted(first)]


def same_contig(a: str, b: str) -> bool:
    """True when two contig names differ at most by a ``chr`` prefix (``chr20`` == ``20``)."""
    strip = lambda name: name[3:] if name.lower().startswith("chr") else name  # noqa: E731
    return strip(str(a)) == strip(str(b))


def _open_text(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", errors="replace")
    return open(path, "rt", errors="replace")


def _first_line(path: Path) -> str:
    with _open_text(path) as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                return line.strip()
    return ""


def _number(text: str, kind) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def detect_map_format(path: str | os.PathLike) -> str:
    """"plink" or "gmap" from the first non-comment line; ``ImpbenchError`` otherwise."""
    path = Path(path)
    try:
        first = _first_line(path)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ImpbenchError(f"map file {path}: cannot read it ({getattr(err, 'strerror', None) or err})") from None
    fields = first.split()
    if tuple(f.lower() for f in fields) == _GMAP_HEADER:
        return "gmap"
    if len(fields) == 4 and _number(fields[2], float) and _number(fields[3], int):
        return "plink"
    shown = first[:60] + ("..." if len(first) > 60 else "")
    raise ImpbenchError(f"map file {path}: unknown format (first line {shown!r}); {_EXPECTED}")


def read_genetic_map(path: str | os.PathLike) -> GeneticMap:
    """Read a PLINK or gmap genetic map (gzipped or not).

    Raises ``ImpbenchError`` (one line, naming the file) for a missing or unreadable file, an
    unknown format, a malformed row, or no rows.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ImpbenchError(f"map file {path}: no such file")
    kind = detect_map_format(path)
    if kind == "gmap":
        names, header = ["bp", "contig", "cm"], 0
    else:
        names, header = ["contig", "id", "cm", "bp"], None
    try:
        table = pd.read_csv(
            path, sep=r"\s+", header=header, names=names, comment="#", dtype={"contig": str},
            compression="infer" if not _is_gzip(path) else "gzip",
        )
        positions = pd.to_numeric(table["bp"], errors="raise").to_numpy(dtype=np.int64)
        cm = pd.to_numeric(table["cm"], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError, pd.errors.ParserError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImpbenchError(f"map file {path}: malformed {kind} rows ({message})") from None
    if len(positions) == 0:
        raise ImpbenchError(f"map file {path}: it has no rows")
    if not np.isfinite(cm).all():
        raise ImpbenchError(f"map file {path}: a cM value is not a finite number")
    contigs = table["contig"].astype(str).to_numpy(dtype=object)
    return GeneticMap(path=path, format=kind, contigs=contigs, positions=positions, cm=cm)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def contig_rows(genetic_map: GeneticMap, contig: str) -> tuple[np.ndarray, np.ndarray]:
    """(positions int64, cM float64) of ``contig``, sorted by position, one row per position.

    Rows repeating a position keep the first (Minimac4 refuses repeats). Raises
    ``ImpbenchError`` when the map has no row on ``contig`` or its cM decrease along the contig.
    """
    matching = [name for name in genetic_map.contig_names() if same_contig(name, contig)]
    rows = np.isin(genetic_map.contigs, np.array(matching, dtype=object))
    if not rows.any():
        names = genetic_map.contig_names()
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        raise ImpbenchError(
            f"map file {genetic_map.path}: no row on contig {contig!r} (it has {shown}); a map for another chromosome?"
        )
    positions, cm = genetic_map.positions[rows], genetic_map.cm[rows]
    order = np.argsort(positions, kind="stable")
    positions, cm = positions[order], cm[order]
    first = np.ones(len(positions), dtype=bool)
    first[1:] = positions[1:] != positions[:-1]
    positions, cm = positions[first], cm[first]
    if (np.diff(cm) < -1e-9).any():
        j = int(np.flatnonzero(np.diff(cm) < -1e-9)[0])
        raise ImpbenchError(
            f"map file {genetic_map.path}: cM decreases on contig {contig!r} at {positions[j + 1]} "
            f"({cm[j]:g} then {cm[j + 1]:g})"
        )
    return positions, cm


def write_plink_map(source: str | os.PathLike, contig: str, out: str | os.PathLike) -> Path:
    """Write ``source`` (PLINK or gmap) as a PLINK map of ``contig`` at ``out``; returns ``out``.

    The chromosome column is ``contig`` as the dataset spells it; rows are sorted by position,
    one per position. What Beagle's ``map=`` and Minimac4's ``--map`` both read.
    """
    positions, cm = contig_rows(read_genetic_map(source), contig)
    out = Path(out)
    lines = [f"{contig}\t.\t{c:.8g}\t{p}\n" for p, c in zip(positions.tolist(), cm.tolist())]
    try:
        atomic_write(out, "".join(lines))
    except OSError as err:
        raise ImpbenchError(f"cannot write the map {out} ({err.strerror or err})") from None
    return out
