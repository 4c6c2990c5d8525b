"""``impbench run``: every imputer on the same masked replicates, scored, written resumably.

The unit of work is (imputer, level, replicate). The runner carries out a ``RunPlan``
(``impbench.bench.settings``: validated settings, each imputer with its options). For each
imputer it

1. gives it a ``RunContext`` (work folder ``models/<imputer>/``, device as asked for, threads,
   seed, the card's per-imputer table and segment layout);
2. fits it once on the training split (validation split passed along), unless every unit it
   has to do is already done;
3. for each level x replicate imputes the masked test split. The mask of a (level, replicate)
   is built once per run and shared by every imputer (seeded from the dataset hash, level and
   replicate, see ``impbench.bench.masking``); its SHA-256 goes into the manifest;
4. validates the answer (``check_imputation``: shapes, dtypes, codes 1-4). **An imputer that
   changes an observed cell is an error**, not silently repaired: the contract says observed
   codes are kept, and a harness that restored them would hide a broken plugin;
5. scores it with ``impbench.bench.metrics.score`` (MAF: folded MAF of the training split's truth,
   of the training cohort when ``--train-cohort`` is given), and writes the unit's rows into
   its done marker ``done/<imputer>.L<level>.r<replicate>.json``; the CSVs and the manifest
   are then rewritten (atomically) from all done markers, so an interrupted run loses at most
   the unit in progress, and a rerun with the same ``--run`` skips every finished unit.

An exception in an imputer's ``fit`` or ``impute`` (or a malformed answer) is recorded in the
manifest (``status`` ``failed`` or ``partial`` and ``error``), its traceback written to
``models/<imputer>/error.txt``; the other imputers go on; ``RunOutcome.failures`` lists it.

Timings and memory (``fit_seconds``, ``seconds``, ``peak_mb``, ``child_peak_mb``) are measured
by ``impbench.bench.measure.StageMeter``. The run folder's files belong to
``impbench.bench.results.RunFolder``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from impbench import __version__
from impbench.bench import metrics
from impbench.bench.measure import StageMeter, package_versions
from impbench.bench.aggregate import DEFAULT_MAF_CLASSES, aggregate, class_bins
from impbench.bench.calibration import estimated_variant_dr2
from impbench.bench.results import RunFolder, ensure_writable
from impbench.bench.rundata import (
    Mask, array_levels, build_mask, mask_entry, masked_target, read_run_data, resolve_typed,
)
from impbench.bench.unit import score_unit
from impbench.data.cards import get_card
from impbench.data.prepare import prepare
from impbench.bench.settings import ImputerPlan, RunPlan, RunSettings, plan_run
from impbench.errors import ImpbenchError, ImputerError, ImputerNotApplicable
from impbench.files import to_jsonable
from impbench.genotypes import MISSING
from impbench.imputers.base import Imputation, Imputer, RunContext, check_imputation
from impbench.io.vcf_write import write_vcf
from impbench.progress import RichProgress


@dataclass
class RunOutcome:
    """What a run did. failures : imputer name -> one-line error (empty when all went well)."""

    run_dir: Path
    failures: dict[str, str]
    units_done: int
    units_skipped: int


# ---------------------------------------------------------------------------- the runner
class Runner:
    """Carries out one ``RunPlan`` against a prepared dataset store (see the module docstring).

    store : an object with the ``DatasetStore`` interface (``name``, ``dataset_hash``,
        ``contig``, ``n_variants``, ``qc_report``, ``cohorts()``, ``read_split(split, cohort)``).
    plan : a ``RunPlan`` (``plan_run``), or ``RunSettings`` to be planned here with ``card``.
    """

    def __init__(self, plan: RunPlan | RunSettings, store: Any, card: Any = None, *,
                 progress: RichProgress | None = None, logger: logging.Logger | None = None) -> None:
        if isinstance(plan, RunSettings):
            plan = plan_run(plan, card, dataset_name=str(store.name))
        self.plan = plan
        self.settings = plan.settings
        self.store = store
        self.progress = progress or RichProgress(enabled=False)
        self.logger = logger or logging.getLogger("impbench")
        self.device = self.settings.device
        self.threads = plan.threads
        self.plans = plan.imputers
        self.run_dir = plan.run_dir
        self.folder = RunFolder(plan.run_dir)
        self._masks: dict[tuple[float, int], Mask] = {}

    # ------------------------------------------------------------------ public
    def run(self) -> RunOutcome:
        settings = self.settings
        self.bin_edges = tuple(settings.bin_edges) if settings.bin_edges is not None else tuple(metrics.DEFAULT_BIN_EDGES)
        self.maf_classes = tuple(settings.maf_classes) if settings.maf_classes is not None else DEFAULT_MAF_CLASSES
        try:
            class_bins(self.bin_edges, self.maf_classes)
        except ImpbenchError:
            if settings.maf_classes is not None:
                raise
            self.maf_classes = ()  # custom bin edges the default classes do not fall on
        panel_flag = "--panel-cohort" if settings.panel_cohort else "--train-cohort"
        self.data = read_run_data(self.store, settings.training_cohort, settings.test_cohort, panel_flag=panel_flag)
        resolve_typed(self.data, self.store, settings.typed_sites)
        self.levels = array_levels(settings, self.data)
        self.folder.create()
        previous = self._check_resume()
        self.manifest = self._base_manifest(previous)
        if self.data.typed_note:
            self.progress.print(f"typed sites: {self.data.typed_note}")
        self.failures: dict[str, str] = {}
        done = skipped = 0
        self._write_outputs()
        for plan in self.plans:
            d, s = self._run_imputer(plan)
            done += d
            skipped += s
        self._write_outputs()
        return RunOutcome(self.run_dir, dict(self.failures), done, skipped)

    # ------------------------------------------------------------------ resume
    def _identity(self) -> dict[str, Any]:
        """Settings that must agree between a run folder and a rerun that resumes it."""
        s = self.settings
        return {
            "dataset_hash": str(self.store.dataset_hash), "scheme": s.scheme, "seed": s.seed,
            "train_cohort": s.training_cohort, "test_cohort": s.test_cohort,
            "bin_edges": [float(e) for e in self.bin_edges], "min_variant_cells": s.min_variant_cells,
            "typed_sites": None if self.data.typed is None else int(self.data.typed.sum()),
        }

    def _check_resume(self) -> dict[str, Any] | None:
        try:
            previous = self.folder.read_manifest(required=False)
        except ImpbenchError as exc:
            raise ImpbenchError(f"cannot read the manifest of the run to resume: {exc}") from None
        if previous is None:
            return None
        old = previous.get("identity")
        new = to_jsonable(self._identity())
        if old is not None and old != new:
            differ = sorted(k for k in new if old.get(k) != new[k])
            raise ImpbenchError(
                f"{self.run_dir}: this run was made with other settings ({', '.join(differ)}); "
                "resume it with the same ones or choose another --run"
            )
        for plan in self.plans:
            old_imputer = previous.get("imputers", {}).get(plan.name)
            if old_imputer and old_imputer.get("options") is not None:
                if old_imputer["options"] != to_jsonable(dataclasses.asdict(plan.options)):
                    raise ImpbenchError(
                        f"{self.run_dir}: imputer {plan.name!r} ran here with other options; "
                        "resume with the same options or choose another --run"
                    )
        return previous

    # ------------------------------------------------------------------ masks
    def mask(self, level: float, replicate: int) -> Mask:
        """The shared mask of a unit (see ``impbench.bench.rundata.build_mask``), built once per
        run; its hash, size and achieved rate go into the manifest."""
        key = (float(level), int(replicate))
        if key not in self._masks:
            mask = build_mask(self.data, str(self.store.dataset_hash), level, replicate, self.settings.scheme)
            entry = mask_entry(level, replicate, mask)
            if entry["warning"]:
                self.progress.print(f"warning: {entry['warning']}")
            masks = [m for m in self.manifest["masks"] if (m["level"], m["replicate"]) != key]
            self.manifest["masks"] = sorted(masks + [entry], key=lambda m: (m["level"], m["replicate"]))
            self._masks[key] = mask
        return self._masks[key]

    def units(self) -> list[tuple[float, int]]:
        return [(float(level), r) for level in self.levels for r in range(self.settings.replicates)]

    def _is_done(self, name: str, level: float, replicate: int) -> bool:
        if self.folder.read_marker(name, level, replicate) is None:
            return False
        if not self.folder.stats_path(name, level, replicate).exists():
            return False
        return not (self.settings.write_vcf and not self.folder.vcf_path(name, level, replicate).exists())

    # ------------------------------------------------------------------ one imputer

    def _imputer_entry(self, plan: ImputerPlan) -> dict[str, Any]:
        entries = self.manifest["imputers"]
        if plan.name not in entries:
            entries[plan.name] = {
                "distribution": plan.distribution, "version": plan.version,
                "reference_free": bool(plan.cls.reference_free),
                "options": to_jsonable(dataclasses.asdict(plan.options)),
                "status": "running", "error": None,
                "fit_seconds": None, "fit_peak_mb": None, "fit_child_peak_mb": None,
                "impute": [], "info": {},
            }
        entry = entries[plan.name]
        entry.update(distribution=plan.distribution, version=plan.version,
                     options=to_jsonable(dataclasses.asdict(plan.options)))
        return entry

    def _run_imputer(self, plan: ImputerPlan) -> tuple[int, int]:
        entry = self._imputer_entry(plan)
        todo = [(level, r) for level, r in self.units() if not self._is_done(plan.name, level, r)]
        skipped = len(self.units()) - len(todo)
        if not todo:
            entry["status"] = "ok"
            entry["error"] = None
            self.progress.print(f"{plan.name}: all {skipped} units already done, skipped")
            return 0, skipped
        entry["error"] = None
        work_dir = self.folder.model_dir(plan.name)
        work_dir.mkdir(parents=True, exist_ok=True)
        logger, log_handler = self._imputer_logger(plan.name, work_dir)
        ctx = RunContext(
            work_dir=work_dir, device=self.device, threads=self.threads, seed=self.settings.seed,
            nproc=self.settings.nproc, progress=self.progress.callback(plan.name),
            logger=logger, dataset=str(self.store.name),
            dataset_hash=str(self.store.dataset_hash), card_options=dict(plan.card_options),
            segment_layout=self.plan.segment_layout, scheme=self.settings.scheme, typed=self.data.typed,
            genetic_map=self.plan.genetic_map,
        )
        imputer = plan.cls(plan.options)
        panel_before = self.data.panel.codes.copy()
        val_before = self.data.val.codes.copy() if self.data.val is not None else None
        done = 0
        try:
            stage = "fit"
            self.progress.update(f"{plan.name} fit", 0, 1)
            with StageMeter() as meter:
                imputer.fit(self.data.panel, self.data.val, ctx)
            self.progress.update(f"{plan.name} fit", 1, 1)
            entry.update(fit_seconds=round(meter.seconds, 4), fit_peak_mb=meter.peak_mb,
                         fit_child_peak_mb=meter.child_peak_mb)
            if not np.array_equal(self.data.panel.codes, panel_before):
                self.data.panel.codes[...] = panel_before
                raise ImputerError(plan.name, "fit() modified the panel's codes in place")
            if val_before is not None and not np.array_equal(self.data.val.codes, val_before):
                self.data.val.codes[...] = val_before
                raise ImputerError(plan.name, "fit() modified the validation split's codes in place")
            stage = "impute"
            impute_task = f"{plan.name} impute"
            self.progress.update(impute_task, 0, len(todo))
            self._scored, self._to_score = 0, len(todo) * len(self.settings.protocols)
            self.progress.update(f"{plan.name} score", 0, self._to_score)
            for i, (level, replicate) in enumerate(todo):
                self._run_unit(plan, imputer, ctx, entry, level, replicate)
                done += 1
                self.progress.update(impute_task, i + 1, len(todo))
            entry["status"] = "ok"
        except ImputerNotApplicable as exc:  # not a failure: the imputer does not apply here
            entry["status"] = "not_applicable"
            entry["error"] = str(exc).splitlines()[0]
            self.progress.print(f"{plan.name}: not applicable: {entry['error']}")
        except Exception as exc:  # one imputer's failure must not lose the others' results
            message = exc_message(plan.name, stage, exc)
            (work_dir / "error.txt").write_text(traceback.format_exc())
            n_done = sum(self._is_done(plan.name, lv, r) for lv, r in self.units())
            entry["status"] = "partial" if n_done else "failed"
            entry["error"] = message
            self.failures[plan.name] = message
            self.progress.print(f"{plan.name}: FAILED: {message}")
        finally:
            try:
                entry["info"] = to_jsonable(imputer.manifest_info())
            except Exception as exc:  # noqa: BLE001 - recorded, not fatal
                entry["info"] = {"error": f"manifest_info() raised {type(exc).__name__}: {exc}"}
            logger.removeHandler(log_handler)
            log_handler.close()
            self._write_outputs()
        return done, skipped

    def _run_unit(self, plan: ImputerPlan, imputer: Imputer, ctx: RunContext, entry: dict, level: float,
                  replicate: int) -> None:
        truth = self.data.truth
        mask = self.mask(level, replicate)
        ctx.typed = mask.typed if mask.typed is not None else self.data.typed
        target = masked_target(truth, mask.cells)
        target_before = target.codes.copy()
        with StageMeter() as meter:
            result = imputer.impute(target, ctx)
        imputation = check_imputation(plan.name, result, target)
        if not np.array_equal(target.codes, target_before):
            raise ImputerError(plan.name, "impute() modified the target's codes in place")
        check_observed_kept(plan.name, target_before, imputation)
        s = self.settings
        scores = score_unit(truth, imputation, mask.cells, self.data.alt_freq, protocols=s.protocols,
                            bin_edges=self.bin_edges, min_variant_cells=s.min_variant_cells,
                            keys={"imputer": plan.name, "level": level, "replicate": replicate},
                            variant_quality=replicate == 0)
        self._scored += len(s.protocols)
        self.progress.update(f"{plan.name} score", self._scored, self._to_score)
        if s.write_vcf:
            self._write_vcfs(plan.name, level, replicate, target, imputation, mask)
        unit = {
            "level": level, "replicate": replicate, "seconds": round(meter.seconds, 4),
            "peak_mb": meter.peak_mb, "child_peak_mb": meter.child_peak_mb,
            "n_covered": int(np.asarray(imputation.covered).sum()),
        }
        self.folder.write_stats(plan.name, level, replicate, scores.stats)
        marker = {"imputer": plan.name, "mask_sha256": mask.sha256, "n_masked": mask.n_masked, **unit, **scores.rows}
        self.folder.write_marker(plan.name, level, replicate, marker)
        entry["impute"] = sorted([u for u in entry["impute"] if (u["level"], u["replicate"]) != (level, replicate)]
                                 + [unit], key=lambda u: (u["level"], u["replicate"]))
        self._write_manifest()

    def _write_vcfs(self, name: str, level: float, replicate: int, target: Any, imputation: Imputation,
                    mask: Mask) -> None:
        """The imputed VCF of a unit, and (once each) the truth and the masked target, with
        headers that say what made them; DR2 over the masked cells only."""
        s = self.settings
        meta = {"impbench_version": __version__, "impbench_command": s.command, "impbench_scheme": s.scheme,
                "impbench_level": f"{level:g}", "impbench_replicate": str(replicate),
                "impbench_mask_sha256": mask.sha256}
        truth_path = self.folder.path / "vcf" / "truth.vcf.gz"
        if not truth_path.exists():
            write_vcf(self.data.truth, truth_path, meta={"impbench_version": __version__,
                                                         "impbench_command": s.command, "impbench_split": "test"})
        target_path = self.folder.path / "vcf" / f"target.L{level:g}.r{replicate}.vcf.gz"
        if not target_path.exists():
            write_vcf(target, target_path, meta=meta)
        quality = imputation.quality if imputation.quality is not None else estimated_variant_dr2(imputation, mask.cells)
        write_vcf(target, self.folder.vcf_path(name, level, replicate), imputation=imputation, masked=mask.cells,
                  meta={**meta, "impbench_imputer": name}, dr2=quality)

    @staticmethod
    def _imputer_logger(name: str, work_dir: Path) -> tuple[logging.Logger, logging.Handler]:
        """The imputer's logger, writing to ``models/<imputer>/impbench.log`` while it runs."""
        logger = logging.getLogger(f"impbench.imputer.{name}")
        handler = logging.FileHandler(work_dir / "impbench.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return logger, handler

    # ------------------------------------------------------------------ outputs
    def _base_manifest(self, previous: dict | None) -> dict[str, Any]:
        s = self.settings
        store = self.store
        data = self.data
        manifest = {
            "impbench_version": __version__,
            "created": (previous or {}).get("created") or _utc_now(),
            "updated": _utc_now(),
            "command": s.command,
            "versions": package_versions(),
            "dataset": {
                "name": str(store.name), "hash": str(store.dataset_hash),
                "store": str(getattr(store, "path", "") or ""), "contig": str(store.contig),
                "n_variants": int(data.truth.n_variants),
                "n_samples": {"train": data.panel.n_samples, "val": data.val.n_samples if data.val is not None else 0,
                              "test": data.truth.n_samples},
                "train_cohort": s.training_cohort, "panel_cohort": s.panel_cohort, "test_cohort": s.test_cohort,
                "qc": to_jsonable(getattr(store, "qc_report", None)),
            },
            "maf_source": "training split truth" + (f" (cohort {s.training_cohort})" if s.training_cohort else ""),
            "orientation": metrics.ORIENTATION,
            "settings": {
                "levels": [float(v) for v in self.levels], "replicates": s.replicates, "scheme": s.scheme,
                "protocols": list(s.protocols), "seed": s.seed, "device": self.device, "threads": self.threads,
                "nproc": s.nproc, "write_vcf": s.write_vcf, "bin_edges": [float(e) for e in self.bin_edges],
                "bootstrap": {"n": s.n_boot, "seed": s.bootstrap_seed}, "min_variant_cells": s.min_variant_cells,
                "maf_classes": [list(c) for c in self.maf_classes],
                "typed_sites": None if s.typed_sites is None else str(s.typed_sites),
                "typed_density": s.typed_density, "typed": self.data.typed_note,
                "genetic_map": None if self.plan.genetic_map is None else str(self.plan.genetic_map),
            },
            "identity": self._identity(),
            "masks": list((previous or {}).get("masks", [])),
            "imputers": dict((previous or {}).get("imputers", {})),
        }
        return manifest

    def _write_manifest(self) -> None:
        self.manifest["updated"] = _utc_now()
        self.folder.write_manifest(self.manifest)

    def _write_outputs(self) -> None:
        """Rebuild every table from the done markers and their statistics, then the manifest
        (each file atomically).

        Called after each imputer and at the end; the done markers are the record of truth, so
        an interrupted run's tables are rebuilt by the next run with the same ``--run``.
        """
        order = list(self.manifest["imputers"])
        frames = self.folder.marker_rows(order)
        unit_stats: dict[tuple[str, float, str], dict[int, Any]] = {}
        for name in order:
            for level, replicate in self.units():
                if self.folder.read_marker(name, level, replicate) is None:
                    continue
                stats = self.folder.read_stats(name, level, replicate)
                for protocol, s in (stats or {}).items():
                    unit_stats.setdefault((name, level, protocol), {})[replicate] = s
        calibration_rows = frames.pop("calibration")
        s = self.settings
        estimates = aggregate(unit_stats, frames["replicates"], calibration_rows, self.data.truth.cohort,
                              self.bin_edges, classes=self.maf_classes, n_boot=s.n_boot, seed=s.bootstrap_seed,
                              imputer_order=order)
        self.folder.write_tables({**frames, **estimates})
        self._write_manifest()


def check_observed_kept(name: str, target_codes: np.ndarray, imputation: Imputation) -> None:
    """``ImputerError`` naming the plugin when a call differs from an observed (non-zero) code."""
    observed = target_codes != MISSING
    changed = observed & (imputation.calls != target_codes)
    if changed.any():
        raise ImputerError(
            name, f"impute() changed {int(changed.sum())} observed cells (observed genotypes must be kept)"
        )


def exc_message(name: str, stage: str, exc: BaseException) -> str:
    """One line: ImputerError's own message, else ``imputer 'x': fit raised ValueError: ...``."""
    if isinstance(exc, ImputerError):
        return str(exc).splitlines()[0] if str(exc) else f"imputer {name!r}: failed"
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"imputer {name!r}: {stage} raised {type(exc).__name__}{detail}"


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_benchmark(settings: RunSettings, *, store: Any = None, card: Any = None, console: Any = None,
                  show_progress: bool = True) -> RunOutcome:
    """Everything ``impbench run`` does: validate and plan once, prepare the dataset when
    needed, run.

    ``store``/``card`` may be given directly (tests, notebooks); otherwise the card named by
    ``settings.dataset`` is looked up (in ``settings.cards`` too) and prepared.
    """
    if store is None and card is None:
        card = get_card(settings.dataset, extra_dirs=list(settings.cards) or None)
    dataset_name = str(store.name) if store is not None else getattr(card, "name", settings.dataset)
    plan = plan_run(settings, card, dataset_name=dataset_name)  # fails before any slow work
    ensure_writable(Path(settings.out))
    with RichProgress(console=console, enabled=show_progress) as progress:
        if store is None:
            store = prepare(card, progress=progress.callback(f"prepare {settings.dataset}"))
        return Runner(plan, store, progress=progress).run()
