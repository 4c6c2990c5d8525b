"""``BeagleImputer``: Beagle 5 run as a subprocess on the masked target.

fit: finds Beagle (``locate``), then writes the reference panel once, the training split plus
the validation split when ``include_val``, as a bgzipped, indexed, phased VCF in
``<work_dir>/panel.vcf.gz``, or checks the external panel (``ref``, or the dataset card's
``ref``).

impute: writes the masked target (``./.`` for masked cells) to
``<work_dir>/impute-<digest>-<random>/`` (digest: of the masked target; a new folder per call),
runs Beagle there, reads its output by contig/position/alleles (``output``) and returns the
calls, dosage, per-variant quality (``Imputation.quality``) and probabilities.

How masked cells are imputed (``sporadic``, see ``groups``):

- "soft" (default): the test samples are grouped by their set of masked markers; each group is
  one Beagle run whose target VCF leaves those markers out, so that Beagle imputes every masked
  cell from the panel (DS, AP1/AP2, GP and the ``IMP`` flag) instead of filling it during
  phasing. Under uniform / per-variant masking every sample is a group (one run per sample);
  under ``array`` all samples form one group (one run: the typed markers only). The runs go
  ``sample_jobs`` at a time, sharing the threads. Quality: Beagle's DR2 with one run; with
  several, Beagle's DR2 formula over all masked cells of the variant from the runs' GP
  (``impbench.scoring.calibration.estimated_variant_dr2``), since each run's DR2 describes one
  sample.
- "hard": one Beagle run on all test samples; variants masked in every sample are left out
  (imputed with probabilities), the other masked cells are filled during phasing as hard calls.
  Quality: Beagle's DR2.

The genetic map (``map`` option, else the run's ``genetic_map`` / the card's ``map``) may be a
PLINK map or a gmap file; it is written as a PLINK map of the dataset's contig in the work
folder (``impbench.io.gmap``). Beagle's log and console output stay in the
per-call folder; the large VCFs are removed after reading unless ``keep_vcfs``.

Observed cells keep the target's codes; Beagle re-phases the whole target, so the phase of a
masked cell is Beagle's and may disagree with the kept phase of nearby observed
heterozygotes (phased accuracy counts that; dosage metrics do not).
"""

from __future__ import annotations

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

from .groups import SampleGroup, hard_group, merge_group_outputs, plan_sample_groups
from .locate import BeagleTool, beagle_version, check_heap, find_beagle
from .output import BeagleOutput, assemble_imputation
from .panel import (
    PanelInfo,
    check_no_leakage,
    internal_panel_matrix,
    open_external_panel,
    resolve_path,
    shares_a_marker,
)
from .parallel import run_parallel, share_threads
from .runs import BeagleCall, impute_group, sum_stats

NO_MAP = "no map: Beagle assumes 1 cM = 1 Mb"
#: Values of ``beagle.sporadic``.
SPORADIC_MODES = ("soft", "hard")
#: What the manifest says of each mode's dosages at sporadic masked cells.
DOSAGES = {
    "soft": "soft: every masked cell imputed from the panel (DS, GP) by a run whose target leaves out "
            "the sample's masked markers",
    "hard": "hard at sporadic masked cells (filled while phasing, no probabilities); soft only at variants "
            "masked in every test sample",
}


@dataclass
class BeagleOptions:
    """Beagle's settings (``--opt beagle.KEY=VALUE``).

    ref : external reference panel (bgzipped phased VCF); None uses the training split (and the
        dataset card's ``ref`` when it names one).
    include_val : add the validation split to the internal panel.
    nthreads : Beagle's threads; None uses the run's ``threads``.
    java_heap : Java's maximum heap, e.g. "4g"; None leaves Java's default (1/4 of the RAM).
    ne : Beagle's ``ne`` (effective population size); None keeps Beagle's default.
    impute : Beagle's ``impute`` (impute panel markers absent from the target).
    map : genetic map, PLINK (chrom id cM bp) or gmap (header ``pos chr cM``); None uses the
        run's / card's map, and without one Beagle assumes 1 cM = 1 Mb.
    seed : Beagle's ``seed``; None uses the run's seed.
    window : Beagle's ``window`` in cM; None keeps Beagle's default (40).
    timeout : seconds after which a Beagle run is stopped; None waits for ever.
    beagle_jar : path to beagle.jar (overrides BEAGLE_JAR and the ``beagle`` command).
    java : the Java command for ``beagle_jar`` / BEAGLE_JAR (default ``java`` on PATH).
    keep_vcfs : keep the target and output VCFs of each run (logs are always kept).
    chunk_mb : impute by region: windows of this many Mb (plus the overlap on each side), one
        Beagle call each (``chunks``); None (default) runs one Beagle on the whole target.
    overlap_mb : Mb added on each side of a window; None uses chunk_mb / 5.
    chunk_jobs : windows imputed at once; None uses min(windows, threads). The threads
        (nthreads, else the run's) are shared out: each Beagle gets threads // chunk_jobs.
    sporadic : how masked cells at markers other test samples observe are imputed. "hard"
        (default): one Beagle run on all test samples; Beagle fills those cells while phasing
        and writes hard calls (no probabilities): the more accurate and much cheaper mode on the
        data measured (see the plugin's README), and the report says its dosages are hard.
        "soft": each group of test samples with the same masked markers (under uniform or
        per-variant masking, each sample) is imputed by a Beagle run of its own whose target
        VCF leaves those markers out, so Beagle imputes them from the panel with DS and GP
        (``groups``); one run per sample under uniform masking, 6-8x the CPU, and on sim-1kgp
        0.06 lower dosage R² than hard. ``impute=false`` always gives hard calls.
    sample_jobs : sample groups imputed at once in "soft" mode; None uses min(groups, threads).
        The threads are shared out as for chunk_jobs (each group's regions share its share).
    """

    ref: str | None = None
    include_val: bool = False
    nthreads: int | None = None
    java_heap: str | None = None
    ne: float | None = None
    impute: bool = True
    map: str | None = None
    seed: int | None = None
    window: float | None = None
    timeout: float | None = None
    beagle_jar: str | None = program_option()  # never from a dataset card
    java: str | None = program_option()  # never from a dataset card
    keep_vcfs: bool = False
    chunk_mb: float | None = None
    overlap_mb: float | None = None
    chunk_jobs: int | None = None
    sporadic: str = "hard"
    sample_jobs: int | None = None


def _writable_folder(folder: Path) -> Path:
    """Create ``folder`` and prove it writable; ``ImpbenchError`` naming it otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ImpbenchError(f"beagle: work folder {folder} is not writable ({err.strerror or err})") from None
    return folder


def _link(source: Path, link: Path) -> Path:
    """Make ``link`` a symbolic link to ``source`` (replacing one there); returns ``link``.

    Beagle is given the link's plain name: Debian's ``beagle`` wrapper splits arguments at
    spaces, so a panel or map path with a space could not be passed as it is.
    """
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(source.resolve(), temporary)
        os.replace(temporary, link)
    except OSError as err:
        raise ImpbenchError(f"beagle: cannot link {source} as {link} ({err.strerror or err})") from None
    return link


def _target_digest(target: GenotypeMatrix) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(target.codes).tobytes())
    digest.update("\t".join(map(str, target.sample_ids.tolist())).encode())
    digest.update(np.ascontiguousarray(target.positions).tobytes())
    return digest.hexdigest()[:12]


class BeagleImputer(Imputer):
    """Beagle 5 (Browning et al.), reference-based HMM phasing and imputation."""

    name: ClassVar[str] = "beagle"
    reference_free: ClassVar[bool] = False
    Options: ClassVar[type] = BeagleOptions
    description: ClassVar[str] = "Beagle 5 (reference-based), run as a subprocess"
    #: Names, in the work folder, of the files Beagle reads there (links for external ones).
    PANEL_FILE: ClassVar[str] = "panel.vcf.gz"
    EXTERNAL_PANEL_LINK: ClassVar[str] = "reference.vcf.gz"
    MAP_LINK: ClassVar[str] = "genetic.map"

    def __init__(self, options: BeagleOptions | None = None):
        super().__init__(options)
        self._tool: BeagleTool | None = None
        self._panel: PanelInfo | None = None
        self._variants: GenotypeMatrix | None = None
        self._work_dir: Path | None = None
        self._runs: list[dict] = []
        self._map: dict | None = None

    # ------------------------------------------------------------------ set-up
    def _find(self) -> BeagleTool:
        if self._tool is None:
            tool = find_beagle(self.options.beagle_jar, self.options.java)
            beagle_version(tool)  # fails early, with one line, when it cannot run
            self._tool = tool
        return self._tool

    def _map_source(self, ctx: RunContext | None) -> tuple[str, Path] | None:
        """(where it came from, path) of the genetic map to use, or None."""
        candidates = [("beagle.map", self.options.map)]
        if ctx is not None:
            candidates += [("the run's genetic_map", getattr(ctx, "genetic_map", None)),
                           ("the card's map", ctx.card_options.get("map"))]
        for origin, value in candidates:
            if value:
                path = resolve_path(str(value))
                if not path.is_file():
                    raise ImpbenchError(f"{origin}={value}: no such file")
                return origin, path
        return None

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        opts = self.options
        check_heap(opts.java_heap)
        _check_chunking(opts)
        _check_sporadic(opts)
        map_source = self._map_source(ctx)
        if map_source is not None:
            detect_map_format(map_source[1])  # an unknown format fails before Beagle is looked for
        self._find()
        folder = _writable_folder(Path(ctx.work_dir))
        self._work_dir = folder
        self._map = None
        if map_source is not None:
            write_plink_map(map_source[1], panel.contig, folder / self.MAP_LINK)
            self._map = {"source": str(map_source[1]), "from": map_source[0],
                         "format": detect_map_format(map_source[1])}
        self._variants = panel.take_samples(np.arange(0))
        ref = opts.ref or ctx.card_options.get("ref")
        if ref:
            if opts.include_val:
                raise ImpbenchError(
                    "beagle.include_val adds the validation split to the internal panel; it cannot be combined "
                    f"with an external panel (ref={ref})"
                )
            external = open_external_panel(str(ref), panel.contig)
            if not shares_a_marker(external, panel):
                raise ImpbenchError(
                    f"beagle reference panel {external.path} shares no marker with the dataset (matched by contig "
                    f"{panel.contig!r}, position, REF and ALT): another contig or genome build?"
                )
            _link(external.path, folder / self.EXTERNAL_PANEL_LINK)
            self._panel = external
            return
        matrix = internal_panel_matrix(self.name, panel, val if opts.include_val else None)
        path = folder / self.PANEL_FILE
        try:
            write_vcf(matrix, path)
        except OSError as err:
            raise ImpbenchError(f"beagle: cannot write the panel {path} ({err.strerror or err})") from None
        self._panel = PanelInfo(
            path=path, kind="internal", sample_ids=frozenset(matrix.sample_ids.tolist()), contigs=(matrix.contig,)
        )

    # ------------------------------------------------------------------ imputation
    def _threads(self, ctx: RunContext) -> int:
        return max(1, int(self.options.nthreads or ctx.threads or 1))

    def _beagle_args(self, target_name: str, ctx: RunContext, region: tuple[int, int] | None = None,
                     nthreads: int | None = None) -> list[str]:
        """Beagle's arguments; files named relative to the per-call folder (see ``_link``).
        ``region`` (start, end) restricts Beagle to that stretch of the contig."""
        opts = self.options
        panel_name = self.PANEL_FILE if self._panel.kind == "internal" else self.EXTERNAL_PANEL_LINK
        chrom = self._variants.contig if region is None else f"{self._variants.contig}:{region[0]}-{region[1]}"
        args = [
            f"gt={target_name}",
            f"ref=../{panel_name}",
            f"chrom={chrom}",
            f"nthreads={nthreads or self._threads(ctx)}",
            f"seed={int(ctx.seed if opts.seed is None else opts.seed)}",
            f"impute={'true' if opts.impute else 'false'}",
            "ap=true",
            "gp=true",
        ]
        if opts.ne is not None:
            args.append(f"ne={opts.ne:g}")
        if opts.window is not None:
            args.append(f"window={opts.window:g}")
        if self._map is not None:
            args.append(f"map=../{self.MAP_LINK}")
        return args

    def _sporadic_mode(self) -> str:
        """"soft" or "hard": how sporadic masked cells are imputed (``groups``); phasing only
        (``impute=false``) can only fill them as hard calls."""
        return self.options.sporadic if self.options.impute else "hard"

    def _plan_groups(self, target: GenotypeMatrix) -> list[SampleGroup]:
        if not self.options.impute:  # phasing only: every marker stays in the target VCF
            return [SampleGroup(0, np.arange(target.n_samples, dtype=np.int64), np.ones(target.n_variants, dtype=bool))]
        if self._sporadic_mode() == "hard":
            return [hard_group(target.codes)]
        groups = plan_sample_groups(target.codes)
        for group in groups:
            if not group.written.any():
                sample = target.sample_ids[group.samples[0]]
                raise ImpbenchError(
                    f"beagle: test sample {sample} has no observed genotype; Beagle cannot impute it alone "
                    "(beagle.sporadic=hard imputes it together with the others)")
        return groups

    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        if self._panel is None or self._variants is None:
            raise ImpbenchError("imputer 'beagle': impute() called before fit()")
        require_same_variants(self.name, self._variants, target)
        check_no_leakage(self._panel, target.sample_ids)
        if target.n_samples == 0:
            raise ImpbenchError("imputer 'beagle': the target has no samples")
        scheme = getattr(ctx, "scheme", None) or "uniform"
        if scheme == "array" and not self.options.impute:
            raise ImputerNotApplicable(
                self.name, scheme, "beagle.impute=false leaves the untyped variants unimputed; use impute=true"
            )
        if not is_call(target.codes).any():
            raise ImpbenchError("imputer 'beagle': the target has no observed genotype; Beagle needs some")
        groups = self._plan_groups(target)

        # a folder of its own per call: two calls (two runs on one run folder) never share a file
        run_dir = _writable_folder(new_call_dir(self._work_dir, f"impute-{_target_digest(target)}"))
        threads = self._threads(ctx)
        jobs, threads_each = share_threads(threads, len(groups), self.options.sample_jobs)
        ctx.logger.info("beagle: %d samples x %d variants, panel %s; %s sporadic dosages, %d Beagle run(s), %d at a time",
                        target.n_samples, target.n_variants, self._panel.path, self._sporadic_mode(), len(groups), jobs)
        several = len(groups) > 1
        call = BeagleCall(self._find(), lambda name, region, nthreads: self._beagle_args(name, ctx, region, nthreads),
                          self.options, ctx.logger)

        def run_one(group: SampleGroup, cancel) -> tuple[BeagleOutput, dict]:
            return impute_group(call, target, group, run_dir, f"g{group.index:04d}" if several else "",
                                threads_each if several else threads, cancel)

        results = run_parallel(groups, run_one, jobs)
        output = merge_group_outputs(target, [(group, out) for group, (out, _) in results])
        n_covered = int(output.covered.sum())
        if n_covered == 0:
            raise ImpbenchError(
                f"beagle: none of the target's {target.n_variants} variants is in the reference panel {self._panel.path} "
                f"(matched by contig {target.contig!r}, position, REF and ALT): another contig or genome build?"
            )
        imputation = assemble_imputation(target, output)
        masked = ~is_call(target.codes)
        if several:  # each run's DR2 covers its own few samples: Beagle's formula over every masked cell
            from impbench.scoring.calibration import estimated_variant_dr2  # pandas: only when it is needed

            imputation.quality = estimated_variant_dr2(imputation, masked).astype(np.float32)
        left_out = np.zeros(target.codes.shape, dtype=bool)  # cells absent from their sample's target VCF
        for group in groups:
            left_out[np.ix_(group.samples, ~group.written)] = True
        from_panel = masked & left_out & output.covered[None, :]
        stats = [stat for _, (_, stat) in results]
        self._runs.append(
            {
                "run_dir": str(run_dir),
                "sporadic": self._sporadic_mode(),
                "n_variants": int(target.n_variants),
                "uncovered_markers": int(target.n_variants - n_covered),
                "imputed_from_panel": int((left_out.any(axis=0) & output.covered).sum()) if self.options.impute else 0,
                "imp_flagged": int(output.imputed.sum()),
                "masked_cells_soft": int(from_panel.sum()),
                "masked_cells_hard": int((masked & ~left_out & output.covered[None, :]).sum()),
                "mean_dr2_imputed": _mean_or_none(imputation.quality[output.imputed]) if imputation.quality is not None else None,
                "duplicated_records": output.n_duplicated,
                "beagle_runs": len(groups),
                "run_jobs": jobs,
                **sum_stats(stats),
            }
        )
        return imputation

    # ------------------------------------------------------------------ manifest
    def manifest_info(self) -> dict:
        info: dict = {}
        try:
            tool = self._find()
            version = beagle_version(tool)
            info["beagle_version"] = version.version
            info["beagle_build"] = version.build
            info["beagle_command"] = " ".join(tool.argv)
            info["beagle_found_via"] = tool.source
        except ImpbenchError as err:
            info["beagle_version"] = None
            info["beagle_error"] = str(err)
        if self._map is not None:
            info["map"] = self._map["source"]
            info["map_format"] = self._map["format"]
            info["map_from"] = self._map["from"]
        else:
            info["map"] = str(resolve_path(self.options.map)) if self.options.map else NO_MAP
        info["panel"] = self._panel.describe() if self._panel is not None else None
        info["sporadic"] = self._sporadic_mode()
        info["soft_dosages"] = self._sporadic_mode() == "soft"
        info["dosages"] = DOSAGES[self._sporadic_mode()]
        if self._runs:
            info["uncovered_markers"] = self._runs[-1]["uncovered_markers"]
        info["runs"] = list(self._runs)
        return info


def _check_chunking(opts: BeagleOptions) -> None:
    """One-line errors for chunk_mb / overlap_mb / chunk_jobs that cannot work."""
    if opts.chunk_mb is None:
        for name in ("overlap_mb", "chunk_jobs"):
            if getattr(opts, name) is not None:
                raise ImpbenchError(f"beagle.{name} needs beagle.chunk_mb (impute by region)")
        return
    if not opts.chunk_mb > 0:
        raise ImpbenchError(f"beagle.chunk_mb={opts.chunk_mb:g}: must be > 0 (Mb)")
    if opts.overlap_mb is not None and not opts.overlap_mb >= 0:
        raise ImpbenchError(f"beagle.overlap_mb={opts.overlap_mb:g}: must be >= 0 (Mb)")
    if opts.chunk_jobs is not None and opts.chunk_jobs < 1:
        raise ImpbenchError(f"beagle.chunk_jobs={opts.chunk_jobs}: must be >= 1")


def _check_sporadic(opts: BeagleOptions) -> None:
    """One-line errors for sporadic / sample_jobs values that cannot work."""
    if opts.sporadic not in SPORADIC_MODES:
        raise ImpbenchError(f"beagle.sporadic={opts.sporadic!r}: must be one of {', '.join(SPORADIC_MODES)}")
    if opts.sample_jobs is not None and opts.sample_jobs < 1:
        raise ImpbenchError(f"beagle.sample_jobs={opts.sample_jobs}: must be >= 1")


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 4) if values.size else None


def beagle_available() -> bool:
    """True when a Beagle can be found (``beagle`` on PATH or BEAGLE_JAR) and started."""
    try:
        beagle_version(find_beagle())
    except ImpbenchError:
        return False
    return True
