"""Reference panels: the internal one (training split, plus validation when asked) and external
ones named by ``beagle.ref`` or the dataset card; the leakage check against the target.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix, is_call
from impbench.imputers.base import require_same_variants

_CONTIG_LINE = re.compile(r"^##contig=<ID=([^,>]+)", re.MULTILINE)


@dataclass(frozen=True)
class PanelInfo:
    """A reference panel Beagle reads.

    path : the VCF (bgzipped). kind : "internal" or "external". sample_ids : its samples.
    contigs : contig names its header lists (may be empty for an external panel).
    """

    path: Path
    kind: str
    sample_ids: frozenset
    contigs: tuple[str, ...] = ()

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "n_samples": len(self.sample_ids)}


def internal_panel_matrix(name: str, panel: GenotypeMatrix, val: GenotypeMatrix | None) -> GenotypeMatrix:
    """The training split, plus ``val`` when given, as one matrix; must be fully observed.

    Raises ``ImpbenchError`` when ``val``'s variants differ, a sample id repeats or a genotype
    is missing (Beagle needs a phased panel without missing alleles).
    """
    matrix = panel
    if val is not None and val.n_samples:
        require_same_variants(name, panel, val)
        matrix = dataclasses.replace(
            panel,
            codes=np.concatenate([panel.codes, val.codes], axis=0),
            sample_ids=np.concatenate([panel.sample_ids, val.sample_ids]),
            cohort=np.concatenate([panel.cohort, val.cohort]),
            sex=np.concatenate([panel.sex, val.sex]),
        )
    if matrix.n_samples == 0:
        raise ImpbenchError(f"imputer {name!r}: the reference panel has no samples")
    if len(set(matrix.sample_ids.tolist())) != matrix.n_samples:
        raise ImpbenchError(f"imputer {name!r}: the reference panel repeats a sample id")
    n_missing = int((~is_call(matrix.codes)).sum())
    if n_missing:
        raise ImpbenchError(
            f"imputer {name!r}: the reference panel has {n_missing} missing genotypes; Beagle needs a fully phased panel"
        )
    return matrix


def resolve_path(path: str) -> Path:
    """``path`` with ``~`` and environment variables expanded."""
    return Path(os.path.expandvars(os.path.expanduser(str(path))))


def open_external_panel(path_text: str, contig: str) -> PanelInfo:
    """Check an external panel: a readable VCF whose header names ``contig`` (when it names any
    contig at all; records are checked by ``shares_a_marker``).

    Raises ``ImpbenchError`` for a missing file, a bref3 file (its samples cannot be checked
    for leakage here), an unreadable VCF, no samples, or a panel on other contigs.
    """
    from cyvcf2 import VCF

    path = resolve_path(path_text)
    if not path.is_file():
        raise ImpbenchError(f"beagle reference panel {path}: no such file")
    if path.name.endswith(".bref3"):
        raise ImpbenchError(
            f"beagle reference panel {path}: bref3 panels are not accepted (their samples cannot be checked "
            "for overlap with the test samples); give the panel as a bgzipped VCF"
        )
    try:
        vcf = VCF(str(path), lazy=True)
    except (OSError, IOError) as err:
        raise ImpbenchError(f"beagle reference panel {path}: not a readable VCF ({err})") from None
    samples = list(vcf.samples)
    contigs = tuple(_CONTIG_LINE.findall(vcf.raw_header))
    vcf.close()
    if not samples:
        raise ImpbenchError(f"beagle reference panel {path}: it has no samples")
    if contigs and contig not in contigs:
        shown = ", ".join(contigs[:5]) + (" ..." if len(contigs) > 5 else "")
        raise ImpbenchError(
            f"beagle reference panel {path} has no contig {contig!r} (it has {shown}): another contig or naming "
            "(chr22 vs 22); the panel must be on the dataset's contig and genome build"
        )
    return PanelInfo(path=path, kind="external", sample_ids=frozenset(samples), contigs=contigs)


def shares_a_marker(panel: PanelInfo, variants: GenotypeMatrix) -> bool:
    """True when the panel has a record matching one of ``variants`` by contig, position, REF and ALT.

    Reads the panel's records on ``variants.contig`` (through the index when there is one) and
    stops at the first match, so a panel that overlaps costs little; one that does not is read
    through once. Beagle itself fails with an opaque Java exception when nothing overlaps.
    """
    from cyvcf2 import VCF

    if variants.n_variants == 0:
        return False
    keys = set(zip(variants.positions.tolist(), variants.ref.tolist(), variants.alt.tolist()))
    vcf = VCF(str(panel.path), lazy=True)
    try:
        indexed = any(Path(f"{panel.path}{suffix}").is_file() for suffix in (".tbi", ".csi"))
        records = vcf
        if indexed:
            records = vcf(f"{variants.contig}:{int(variants.positions.min())}-{int(variants.positions.max())}")
        for record in records:
            if record.CHROM != variants.contig:
                continue
            alts = record.ALT
            if len(alts) == 1 and (record.POS, record.REF, alts[0]) in keys:
                return True
        return False
    finally:
        vcf.close()


def check_no_leakage(panel: PanelInfo, target_sample_ids: np.ndarray) -> None:
    """Refuse a panel that holds any target sample (the test samples' truth would leak)."""
    shared = sorted(panel.sample_ids.intersection(target_sample_ids.tolist()))
    if shared:
        shown = ", ".join(shared[:3]) + (" ..." if len(shared) > 3 else "")
        raise ImpbenchError(
            f"beagle reference panel {panel.path} contains {len(shared)} of the target's samples ({shown}): "
            "leakage of the test truth; remove them from the panel"
        )
