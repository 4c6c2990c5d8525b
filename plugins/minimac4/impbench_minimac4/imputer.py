"""``Minimac4Imputer``: Minimac4 4.x run as a subprocess on the typed target (``array`` scheme).

fit: finds Minimac4, writes the reference panel (the training split, plus validation when
``include_val``) as ``<work_dir>/panel.vcf.gz`` and compresses it once to ``panel.msav``
(``--compress-reference``); writes the genetic map, when there is one, as a PLINK map
(``impbench.io.gmap``; Minimac4 reads that format).

impute: writes the target's typed variants (those observed in some sample) as an indexed,
phased VCF in ``<work_dir>/impute-<digest>-<random>/`` (a new folder per call), runs ``minimac4 panel.msav target.vcf.gz -f
GT,DS,HDS,GP``, and reads DS, HDS, GP and R2 back (``output``). Observed cells keep the
target's codes.

Minimac4 imputes untyped variants; it does not restore sporadic missing genotypes. So it
refuses, with ``ImputerNotApplicable``, a run whose scheme is not ``array`` (``ctx.scheme``;
when the context does not say, a target with a partly observed variant is taken as sporadic).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from impbench.errors import ImpbenchError, ImputerNotApplicable
from impbench.genotypes import GenotypeMatrix, is_call
from impbench.imputers.base import Imputation, Imputer, RunContext, program_option, require_same_variants
from impbench.imputers.tools import new_call_dir
from impbench.io.gmap import detect_map_format, write_plink_map
from impbench.io.vcf_write import write_vcf

from .locate import Minimac4Tool, find_minimac4, minimac4_version
from .output import assemble_imputation, read_minimac4_output
from .process import run_tool

SPORADIC_REASON = "Minimac4 imputes untyped variants and does not restore sporadic missing genotypes"
FORMAT_FIELDS = "GT,DS,HDS,GP"


@dataclass
class Minimac4Options:
    """Minimac4's settings (``--opt minimac4.KEY=VALUE``).

    include_val : add the validation split to the panel.
    threads : Minimac4's ``--threads``; None uses the run's ``threads``.
    map : genetic map, PLINK or gmap; None uses the run's / card's map (else Minimac4's
        default recombination rates).
    timeout : seconds after which one Minimac4 run is stopped (process group killed).
    minimac4 : path to the executable (overrides MINIMAC4 and PATH).
    keep_vcfs : keep the target and output VCFs of each run (consoles are always kept).
    """

    include_val: bool = False
    threads: int | None = None
    map: str | None = None
    timeout: float | None = None
    minimac4: str | None = program_option()  # never from a dataset card
    keep_vcfs: bool = False


def _writable_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ImpbenchError(f"minimac4: work folder {folder} is not writable ({err.strerror or err})") from None
    return folder


def _resolve(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(path))))


def run_scheme(ctx: RunContext, target: GenotypeMatrix) -> str:
    """The run's masking scheme: ``ctx.scheme`` when the harness sets it; otherwise "array" when
    every variant of ``target`` is observed in all samples or in none, else "uniform"."""
    scheme = getattr(ctx, "scheme", None)
    if scheme:
        return str(scheme)
    observed = is_call(target.codes)
    whole = observed.all(axis=0) | ~observed.any(axis=0)
    return "array" if whole.all() else "uniform"


class Minimac4Imputer(Imputer):
    """Minimac4 (Das et al. 2016), reference-based imputation of untyped variants."""

    name: ClassVar[str] = "minimac4"
    reference_free: ClassVar[bool] = False
    Options: ClassVar[type] = Minimac4Options
    description: ClassVar[str] = "Minimac4 (reference-based, untyped variants only), run as a subprocess"
    #: Masking schemes it applies to (the contract and the runner read this).
    schemes: ClassVar[tuple[str, ...]] = ("array",)
    PANEL_VCF: ClassVar[str] = "panel.vcf.gz"
    PANEL_MSAV: ClassVar[str] = "panel.msav"
    MAP_FILE: ClassVar[str] = "genetic.map"

    def __init__(self, options: Minimac4Options | None = None):
        super().__init__(options)
        self._tool: Minimac4Tool | None = None
        self._variants: GenotypeMatrix | None = None
        self._work_dir: Path | None = None
        self._panel_samples: frozenset = frozenset()
        self._map: dict | None = None
        self._compress: dict | None = None
        self._runs: list[dict] = []

    def _find(self) -> Minimac4Tool:
        if self._tool is None:
            tool = find_minimac4(self.options.minimac4)
            minimac4_version(tool)
            self._tool = tool
        return self._tool

    def _map_source(self, ctx: RunContext) -> tuple[str, Path] | None:
        for origin, value in (("minimac4.map", self.options.map),
                              ("the run's genetic_map", getattr(ctx, "genetic_map", None)),
                              ("the card's map", ctx.card_options.get("map"))):
            if value:
                path = _resolve(str(value))
                if not path.is_file():
                    raise ImpbenchError(f"{origin}={value}: no such file")
                return origin, path
        return None

    def _refuse_other_schemes(self, scheme: str) -> None:
        if scheme not in self.schemes:
            raise ImputerNotApplicable(self.name, scheme, SPORADIC_REASON)

    # ------------------------------------------------------------------ fit
    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        declared = getattr(ctx, "scheme", None)
        if declared:
            self._refuse_other_schemes(str(declared))
        map_source = self._map_source(ctx)
        if map_source is not None:
            detect_map_format(map_source[1])
        tool = self._find()
        folder = _writable_folder(Path(ctx.work_dir))
        self._work_dir = folder
        matrix = panel
        if self.options.include_val and val is not None and val.n_samples:
            require_same_variants(self.name, panel, val)
            matrix = dataclasses.replace(
                panel,
                codes=np.concatenate([panel.codes, val.codes]),
                sample_ids=np.concatenate([panel.sample_ids, val.sample_ids]),
                cohort=np.concatenate([panel.cohort, val.cohort]),
                sex=np.concatenate([panel.sex, val.sex]),
            )
        if matrix.n_samples == 0:
            raise ImpbenchError("imputer 'minimac4': the reference panel has no samples")
        n_missing = int((~is_call(matrix.codes)).sum())
        if n_missing:
            raise ImpbenchError(f"imputer 'minimac4': the reference panel has {n_missing} missing genotypes; "
                                "Minimac4 needs a fully phased panel")
        self._variants = panel.take_samples(np.arange(0))
        self._panel_samples = frozenset(matrix.sample_ids.tolist())
        try:
            write_vcf(matrix, folder / self.PANEL_VCF)
        except OSError as err:
            raise ImpbenchError(f"minimac4: cannot write the panel {folder / self.PANEL_VCF} ({err.strerror or err})") from None
        (folder / self.PANEL_MSAV).unlink(missing_ok=True)
        run = run_tool([tool.path, "--compress-reference", self.PANEL_VCF, "-o", self.PANEL_MSAV], folder,
                       folder / "compress.console.txt", "--compress-reference", self.options.timeout)
        if not (folder / self.PANEL_MSAV).is_file():
            raise ImpbenchError(f"minimac4 --compress-reference wrote no {self.PANEL_MSAV}; log {run.console}")
        self._compress = {"wall_s": round(run.wall_s, 3), "peak_rss_mb": round(run.peak_rss_mb, 1),
                          "n_samples": int(matrix.n_samples), "n_variants": int(matrix.n_variants)}
        self._map = None
        if map_source is not None:
            write_plink_map(map_source[1], panel.contig, folder / self.MAP_FILE)
            self._map = {"source": str(map_source[1]), "from": map_source[0], "format": detect_map_format(map_source[1])}

    # ------------------------------------------------------------------ impute
    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        if self._variants is None or self._work_dir is None:
            raise ImpbenchError("imputer 'minimac4': impute() called before fit()")
        require_same_variants(self.name, self._variants, target)
        scheme = run_scheme(ctx, target)
        self._refuse_other_schemes(scheme)
        if target.n_samples == 0:
            raise ImpbenchError("imputer 'minimac4': the target has no samples")
        shared = sorted(self._panel_samples.intersection(target.sample_ids.tolist()))
        if shared:
            raise ImpbenchError(f"minimac4: the reference panel contains {len(shared)} of the target's samples "
                                f"({', '.join(shared[:3])}): leakage of the test truth")
        typed = is_call(target.codes).any(axis=0)
        if not typed.any():
            raise ImpbenchError("imputer 'minimac4': the target has no typed variant; Minimac4 needs some")
        digest = hashlib.sha256(np.ascontiguousarray(target.codes).tobytes())
        digest.update("\t".join(map(str, target.sample_ids.tolist())).encode())
        # a folder of its own per call: two calls (two runs on one run folder) never share a file
        run_dir = _writable_folder(new_call_dir(self._work_dir, f"impute-{digest.hexdigest()[:12]}"))
        target_vcf, output_vcf = run_dir / "target.vcf.gz", run_dir / "out.vcf.gz"
        try:
            write_vcf(target.take_variants(typed), target_vcf)  # indexed: Minimac4 queries it by region
        except OSError as err:
            raise ImpbenchError(f"minimac4: cannot write the target {target_vcf} ({err.strerror or err})") from None
        output_vcf.unlink(missing_ok=True)
        threads = max(1, int(self.options.threads or ctx.threads or 1))
        argv = [self._find().path, f"../{self.PANEL_MSAV}", target_vcf.name, "-f", FORMAT_FIELDS,
                "-O", "vcf.gz", "-o", output_vcf.name, "-t", str(threads)]
        if self._map is not None:
            argv += ["--map", f"../{self.MAP_FILE}"]
        ctx.logger.info("minimac4: %d samples, %d typed of %d variants", target.n_samples, int(typed.sum()), target.n_variants)
        run = run_tool(argv, run_dir, run_dir / "out.console.txt", "imputation", self.options.timeout)
        if not output_vcf.is_file():
            raise ImpbenchError(f"minimac4 wrote no {output_vcf.name}; log {run.console}")
        output = read_minimac4_output(output_vcf, target)
        if not self.options.keep_vcfs:
            for path in (target_vcf, Path(f"{target_vcf}.tbi"), Path(f"{target_vcf}.csi"), output_vcf):
                path.unlink(missing_ok=True)
        r2_imputed = output.r2[output.imputed & ~typed]
        r2_imputed = r2_imputed[np.isfinite(r2_imputed)]
        self._runs.append({
            "run_dir": str(run_dir),
            "n_variants": int(target.n_variants),
            "typed_variants": int(typed.sum()),
            "imputed_variants": int((output.imputed & ~typed).sum()),
            "uncovered_markers": int((~output.covered).sum()),
            "mean_r2_imputed": round(float(r2_imputed.mean()), 4) if r2_imputed.size else None,
            "wall_s": round(run.wall_s, 3),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
        })
        return assemble_imputation(target, output)

    # ------------------------------------------------------------------ manifest
    def manifest_info(self) -> dict:
        info: dict = {}
        try:
            tool = self._find()
            info["minimac4_version"] = minimac4_version(tool)
            info["minimac4_command"] = tool.path
            info["minimac4_found_via"] = tool.source
        except ImpbenchError as err:
            info["minimac4_version"] = None
            info["minimac4_error"] = str(err)
        info["map"] = self._map
        info["compress_reference"] = self._compress
        info["runs"] = list(self._runs)
        return info


def minimac4_available() -> bool:
    """True when Minimac4 4.x can be found and started."""
    try:
        minimac4_version(find_minimac4())
    except ImpbenchError:
        return False
    return True
