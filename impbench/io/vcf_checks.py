"""What a VCF must be before htslib reads it, and why htslib could not read a record.

htslib (through cyvcf2) reports a bad header as a bare "cannot parse VCF header", a bad record
as "error parsing variant ... ret: -2", and reads a BGZF file cut short at a block boundary as
if it were whole (a warning on stderr). These checks make each case one line that names the
file and the problem: ``sniff_vcf`` (file type, BGZF end-of-file marker), ``check_header``
(the ``#CHROM`` line: fixed columns, empty or duplicated sample ids) and ``record_problem``
(the failing line read again in Python, or gzip data cut short).
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

from impbench.errors import ImpbenchError
from impbench.io.bgzf import has_bgzf_eof, is_bgzf_header

__all__ = ["BAD_CONTIG", "sniff_vcf", "check_header", "record_problem"]

#: Characters a contig name may not hold: Beagle's wrapper splits arguments at whitespace and
#: reads ``key=value`` (a contig ``22 out=x`` would become two arguments).
BAD_CONTIG = re.compile(r"[\s=]")


def sniff_vcf(path: Path) -> str:
    """What ``path`` is: "bgzf" (bgzipped VCF or BCF), "gzip" (plain gzip) or "plain".

    Raises ImpbenchError unless it is a readable VCF or BCF, and for a BGZF file without its
    end-of-file marker (cut short: htslib would read the records before the cut and only warn).
    """
    if not path.exists():
        raise ImpbenchError(f"{path}: file not found")
    if path.is_dir():
        raise ImpbenchError(f"{path}: is a folder, not a VCF file")
    kind = "plain"
    try:
        with open(path, "rb") as handle:
            head = handle.read(18)
        if head[:2] == b"\x1f\x8b":
            kind = "bgzf" if is_bgzf_header(head) else "gzip"
            if kind == "bgzf" and not has_bgzf_eof(path):
                raise ImpbenchError(
                    f"{path}: truncated: no BGZF EOF marker (the file was cut short; copy or bgzip it again)"
                )
            with gzip.open(path, "rb") as handle:
                head = handle.read(16)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        raise ImpbenchError(f"{path}: not a VCF (truncated or corrupt gzip data at its start)") from None
    except OSError as error:
        raise ImpbenchError(f"{path}: cannot read ({error.strerror or error})") from None
    if not (head.startswith(b"##fileformat=VCF") or head.startswith(b"BCF\x02")):
        raise ImpbenchError(f"{path}: not a VCF (it does not start with '##fileformat=VCF')")
    return "bcf" if head.startswith(b"BCF") else kind


def _open_text(path: Path, kind: str):
    """The VCF's text as a binary line stream (gzip or plain)."""
    return gzip.open(path, "rb") if kind in ("bgzf", "gzip") else open(path, "rb")


def check_header(path: Path, kind: str) -> None:
    """Check the ``#CHROM`` line before htslib reads it, so that its errors name the problem:
    a missing ``#CHROM`` line, wrong fixed columns, an empty or a duplicated sample id."""
    if kind == "bcf":
        return
    fixed = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    try:
        with _open_text(path, kind) as handle:
            for raw in handle:
                if raw.startswith(b"##"):
                    continue
                if not raw.startswith(b"#CHROM"):
                    raise ImpbenchError(f"{path}: the header has no #CHROM line before the first record")
                columns = raw.rstrip(b"\r\n").decode("utf-8", "replace").split("\t")
                break
            else:
                raise ImpbenchError(f"{path}: the header has no #CHROM line")
    except (EOFError, zlib.error, gzip.BadGzipFile):
        raise ImpbenchError(f"{path}: truncated or corrupt gzip data in the header") from None
    except OSError as error:
        raise ImpbenchError(f"{path}: cannot read ({error.strerror or error})") from None
    if columns[:8] != fixed or (len(columns) > 8 and columns[8] != "FORMAT"):
        raise ImpbenchError(f"{path}: the #CHROM line's columns are not {' '.join(fixed)} FORMAT <samples>")
    samples = columns[9:]
    empty = [i for i, sample in enumerate(samples) if not sample.strip()]
    if empty:
        raise ImpbenchError(f"{path}: the #CHROM line has an empty sample id (column {empty[0] + 10})")
    seen: set[str] = set()
    twice = []
    for sample in samples:
        if sample in seen and sample not in twice:
            twice.append(sample)
        seen.add(sample)
    if twice:
        shown = ", ".join(repr(s) for s in twice[:5]) + (", ..." if len(twice) > 5 else "")
        raise ImpbenchError(f"{path}: the header names sample {shown} more than once (duplicated sample id)")


def record_problem(path: Path, kind: str, index: int, n_samples: int) -> str | None:
    """Why htslib could not parse data line ``index`` (0-based, header lines not counted), found
    by reading the text again in Python (and, for gzip data, on to its end); None when nothing
    is visibly wrong."""
    if kind == "bcf":
        return None
    try:
        with _open_text(path, kind) as handle:
            problem = _line_problem(handle, index, n_samples)
            while problem is None and handle.read(1 << 20):  # gzip data cut short fails here
                pass
            return problem
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return "truncated or corrupt gzip data (the file was cut short or damaged)"
    except OSError:
        return None


def _line_problem(handle, index: int, n_samples: int) -> str | None:
    n = -1
    line = b""
    for line in handle:
        if line.startswith(b"#"):
            continue
        n += 1
        if n == index:
            break
    else:
        return "the file ends in the middle of a record (cut short)" if line and not line.endswith(b"\n") else None
    if not line.endswith(b"\n"):
        return "the file ends in the middle of this record (cut short)"
    fields = line.rstrip(b"\r\n").split(b"\t")
    where = f"{fields[0].decode(errors='replace')}:{fields[1].decode(errors='replace')}" if len(fields) > 1 else "?"
    if len(fields) < 8:
        return f"the record at {where} has {len(fields)} tab-separated columns; a VCF record needs at least 8"
    if not fields[1].isdigit():
        return f"the record at {where} has position {fields[1].decode(errors='replace')!r}, not a whole number"
    if n_samples and len(fields) != 9 + n_samples:
        return f"the record at {where} has {max(0, len(fields) - 9)} genotype columns for {n_samples} samples"
    return None
