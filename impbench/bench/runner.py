"""``impbench run``: every imputer on the same masked replicates, scored, written resumably.

The runner carries out a ``RunPlan`` (``impbench.bench.settings``: validated settings, each
imputer with its options) as independent work items (``impbench.bench.units``):

1. it reads the splits once and builds every shared mask up front (seeded from the dataset
   hash, level and replicate, see ``impbench.bench.masking``; a level that masks no cell is an
   error before any fit); their SHA-256 go into the manifest;
2. it takes the run lock (``impbench.bench.exec.lock``) and writes the run's inputs for the
   workers (``work/inputs.json``, ``impbench.bench.exec.inputs``: imputer classes by reference,
   options as JSON);
3. per imputer, one **fit** (keyed by imputer, options, dataset hash and training cohort; a
   finished fit of the same key is reused) and one **unit** per (level, replicate) not done
   yet, each unit depending on its fit;
4. an executor (``impbench.bench.exec.executor``: ``local`` worker processes, ``--jobs`` at a time,
   or ``inline``) runs them; each worker (``impbench.bench.exec.worker``) fits, or imputes, validates
   (``check_imputation``; **an imputer that changes an observed cell is an error**, not silently
   repaired), scores (``impbench.bench.unit.score_unit``) and writes the unit's done marker
   ``done/<imputer>.L<level>.r<replicate>.json`` with its statistics;
5. the harness records each outcome in the manifest and rebuilds the CSVs from all done markers
   when an imputer's work ends and at the end, so an interrupted run loses at most the units in
   progress, and a rerun with the same ``--run`` skips every finished unit.

A failure in plugin code (an exception, ``SystemExit``, a malformed answer, a crash, a hang
past ``--time-limit``) ends only its unit (or its fit, and so its units): it is recorded per
unit in the manifest (``units``: status, one-line error, exit signal, log tail), the imputer's
``status`` is ``failed`` or ``partial``; the others go on; ``RunOutcome.failures`` lists it. On
SIGINT/SIGTERM the workers are stopped, running imputers are marked ``interrupted`` and
``RunInterrupted`` is raised (exit 130/143 at the CLI).

Timings and memory (``fit_seconds``, ``seconds``, ``peak_mb``, ``child_peak_mb``) are measured
in the worker by ``impbench.bench.exec.measure.StageMeter``. The run folder's files belong to
``impbench.bench.results.RunFolder``; the manifest is built from the typed records of
``impbench.bench.records`` (``Manifest``, ``ImputerRecord``, ``FitRecord``, ``UnitRecord``,
``MaskRecord``).
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impbench import __version__
from impbench.scoring import metrics
from impbench.scoring.aggregate import aggregate
from impbench.scoring.bootstrap import block_length_for, genomic_blocks
from impbench.scoring.classes import DEFAULT_MAF_CLASSES, class_bins
from impbench.bench.exec.executor import InlineExecutor, LocalExecutor
from impbench.bench.exec.gpus import visible_gpus, wants_gpu
from impbench.bench.exec.signals import RunInterrupted, signals_raise_interrupted
from impbench.bench.exec.lock import RunLock
from impbench.bench.exec.machine import machine_info
from impbench.bench.exec.measure import package_versions
from impbench.bench.records import (BootstrapRecord, DatasetRecord, FitRecord, ImputeRecord, ImputerRecord, Manifest,
                                    MaskRecord, SettingsRecord, UnitRecord)
from impbench.bench.results import RunFolder, check_output_folder
from impbench.bench.rundata import Mask, array_levels, build_mask, mask_entry, read_run_data, resolve_typed
from impbench.bench.unit import collect_stats
from impbench.bench.settings import ImputerPlan, RunPlan, RunSettings, plan_run
from impbench.bench.units import SPEC_FORMAT, Outcome, WorkItem, fit_dir, fit_done, fit_key, unit_key
from impbench.bench.exec.inputs import inputs_path, run_inputs, write_inputs
from impbench.data.cards import get_card
from impbench.data.prepare import prepare
from impbench.errors import ImpbenchError
from impbench.files import atomic_write, to_jsonable
from impbench.imputers.base import options_to_json
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
        ``contig``, ``n_variants``, ``qc_report``, ``cohorts()``, ``read_split(split, cohort)``);
        it is pickled for the workers.
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
        self.levels, levels_note = array_levels(settings, self.data)
        if levels_note:
            self.progress.print(f"array scheme: {levels_note}")
        self.block_length = block_length_for(self.data.truth.positions, settings.block_length)
        self.n_blocks = int(genomic_blocks(self.data.truth.positions, self.block_length).max(initial=0)) + 1
        for level, replicate in self.units():  # every mask before any work: a level masking nothing fails here
            self._build_mask(level, replicate)
        created = not self.run_dir.exists()
        lock = None
        try:
            self.folder.create()
            lock = RunLock.acquire(self.run_dir, settings.command, warn=self.progress.print)
            previous = self._check_resume()
        except BaseException:
            if lock is not None:
                lock.release()
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        try:
            with signals_raise_interrupted():
                return self._run_locked(previous)
        finally:
            lock.release()

    def _run_locked(self, previous: Manifest | None) -> RunOutcome:
        self.manifest = self._base_manifest(previous)
        for mask_key in sorted(self._masks):
            self._record_mask(*mask_key)
        if self.data.typed_note:
            self.progress.print(f"typed sites: {self.data.typed_note}")
        self.failures: dict[str, str] = {}
        self._outcomes: dict[str, dict[str, Outcome]] = {}
        self._open: dict[str, set[str]] = {}
        self._units_total = 0
        self._units_finished = 0
        self._done = 0
        skipped = 0
        write_inputs(self.run_dir, run_inputs(self.plan, self.store, self.bin_edges, self.block_length), self.store,
                     self.data.alt_freq, self.data.typed, self.data.cohort_alt_freq)
        self._write_outputs()
        items: list[WorkItem] = []
        units: list[WorkItem] = []
        for plan in self.plans:
            fit_item, unit_items, n_skipped = self._plan_items(plan)
            skipped += n_skipped
            items += [fit_item] if fit_item is not None else []
            units += unit_items
        items += units
        self._units_total = len(units)
        if units:
            self.progress.update("units", 0, len(units))
        try:
            self._executor().run(items, self._on_done)
        except RunInterrupted:
            for entry in self.manifest.imputers.values():
                if entry.status == "running":
                    entry.status = "interrupted"
            self._write_manifest()
            raise
        self._write_outputs()
        return RunOutcome(self.run_dir, dict(self.failures), self._done, skipped)

    def _executor(self) -> Any:
        if self.settings.executor == "inline":
            return InlineExecutor(self.progress)
        if self.settings.executor == "slurm":
            from impbench.bench.exec.slurm_executor import make_slurm_executor

            return make_slurm_executor(self.run_dir, self.settings.slurm, threads=self.settings.threads,
                                       nproc=self.settings.nproc, progress=self.progress)
        return LocalExecutor(self.run_dir, self.settings.jobs, self.threads, gpu_slots=visible_gpus(self.device),
                             progress=self.progress)

    # ------------------------------------------------------------------ resume
    def _identity(self) -> dict[str, Any]:
        """Settings that must agree between a run folder and a rerun that resumes it."""
        s = self.settings
        return {
            "dataset_hash": str(self.store.dataset_hash), "scheme": s.scheme, "seed": s.seed,
            "train_cohort": s.training_cohort, "test_cohort": s.test_cohort,
            "bin_edges": [float(e) for e in self.bin_edges], "min_variant_cells": s.min_variant_cells,
            "typed_sites": None if self.data.typed is None else int(self.data.typed.sum()),
            "block_length": self.block_length,
        }

    def _check_resume(self) -> Manifest | None:
        try:
            previous = self.folder.read_manifest(required=False)
        except ImpbenchError as exc:
            raise ImpbenchError(f"cannot read the manifest of the run to resume: {exc}") from None
        if previous is None:
            return None
        old = previous.identity
        new = to_jsonable(self._identity())
        if old is not None and old != new:
            differ = sorted(k for k in new if old.get(k) != new[k])
            raise ImpbenchError(
                f"{self.run_dir}: this run was made with other settings ({', '.join(differ)}); "
                "resume it with the same ones or choose another --run"
            )
        for plan in self.plans:
            old_imputer = previous.imputers.get(plan.name)
            if old_imputer is not None:
                if old_imputer.options != options_to_json(plan.options):
                    raise ImpbenchError(
                        f"{self.run_dir}: imputer {plan.name!r} ran here with other options; "
                        "resume with the same options or choose another --run"
                    )
        return previous

    # ------------------------------------------------------------------ masks
    def _build_mask(self, level: float, replicate: int) -> Mask:
        key = (float(level), int(replicate))
        if key not in self._masks:
            self._masks[key] = build_mask(self.data, str(self.store.dataset_hash), level, replicate, self.settings.scheme)
        return self._masks[key]

    def _record_mask(self, level: float, replicate: int) -> None:
        """The manifest's entry of a mask (hash, size, achieved rate), with its warning printed."""
        key = (float(level), int(replicate))
        record = MaskRecord(**mask_entry(level, replicate, self._masks[key]))
        if record.warning:
            self.progress.print(f"warning: {record.warning}")
        masks = [m for m in self.manifest.masks if (m.level, m.replicate) != key]
        self.manifest.masks = sorted(masks + [record], key=lambda m: (m.level, m.replicate))

    def mask(self, level: float, replicate: int) -> Mask:
        """The shared mask of a unit (see ``impbench.bench.rundata.build_mask``)."""
        return self._build_mask(level, replicate)

    def units(self) -> list[tuple[float, int]]:
        return [(float(level), r) for level in self.levels for r in range(self.settings.replicates)]

    def _is_done(self, name: str, level: float, replicate: int) -> bool:
        marker = self.folder.read_marker(name, level, replicate)
        if marker is None or marker.mask_sha256 != self.mask(level, replicate).sha256:
            return False
        if not self.folder.stats_path(name, level, replicate).exists():
            return False
        return not (self.settings.write_vcf and not self.folder.vcf_path(name, level, replicate).exists())

    # ------------------------------------------------------------------ work items
    def _fit_key(self, plan: ImputerPlan) -> str:
        layout = self.plan.segment_layout
        typed = None if self.data.typed is None else int(self.data.typed.sum())
        return fit_key(plan.name, plan.options, str(self.store.dataset_hash), self.settings.training_cohort,
                       seed=self.settings.seed, scheme=self.settings.scheme, typed=typed,
                       segment_layout=None if layout is None else [layout.length, layout.overlap],
                       card_options=plan.card_options, nproc=self.settings.nproc,
                       cls=f"{plan.cls.__module__}:{plan.cls.__qualname__}")

    def _plan_items(self, plan: ImputerPlan) -> tuple[WorkItem | None, list[WorkItem], int]:
        """The fit (None when a finished one is reused or nothing is left) and units of an imputer."""
        name = plan.name
        entry = self._imputer_entry(plan)
        todo = [(level, r) for level, r in self.units() if not self._is_done(name, level, r)]
        n_skipped = len(self.units()) - len(todo)
        self._outcomes[name] = {}
        if not todo:
            entry.status, entry.error = "ok", None
            self.progress.print(f"{name}: all {n_skipped} units already done, skipped")
            return None, [], n_skipped
        entry.status, entry.error, entry.units = "running", None, []
        key = self._fit_key(plan)
        run_dir = self.run_dir.resolve()
        folder = fit_dir(run_dir, name, key)
        common = {"format": SPEC_FORMAT, "run_dir": str(run_dir), "inputs": str(inputs_path(run_dir).relative_to(run_dir)), "imputer": name,
                  "threads": self.threads, "device": self.device, "fit_key": key, "fit_dir": str(folder),
                  "sys_path": [p for p in sys.path if isinstance(p, str)]}
        gpu = wants_gpu(plan.cls, self.device)
        limit = self.settings.time_limits.get(name, self.settings.time_limit)
        attempts = run_dir / "models" / name / "attempts"
        fit_item = None
        previous_fit = fit_done(run_dir, name, key, warn=self.progress.print)
        if previous_fit is not None:
            self._record_fit(entry, key, Outcome("ok", result=previous_fit, attempt_dir=folder))
            self._outcomes[name]["fit"] = Outcome("ok")
            self.progress.print(f"{name}: reusing its fit {key}")
        else:
            fit_item = WorkItem("fit", name, f"{name} fit", dict(common, kind="fit"), attempts, f"fit-{key}",
                                gpu=gpu, time_limit=limit)
        units = []
        for level, replicate in todo:
            mask = self.mask(level, replicate)
            spec = dict(common, kind="unit", level=level, replicate=replicate, mask_sha256=mask.sha256,
                        unit_key=unit_key(name, level, replicate, self.settings.scheme, mask.sha256))
            units.append(WorkItem("unit", name, f"{name} L{level:g} r{replicate}", spec, attempts,
                                  f"L{level:g}.r{replicate}", depends_on=None if fit_item is None else fit_item.label,
                                  gpu=gpu, time_limit=limit, level=level, replicate=replicate))
        self._open[name] = {item.label for item in ([fit_item] if fit_item else []) + units}
        return fit_item, units, n_skipped

    # ------------------------------------------------------------------ outcomes
    def _record_fit(self, entry: ImputerRecord, key: str, out: Outcome) -> None:
        if out.status == "ok":
            r = out.result
            entry.fit_seconds, entry.fit_peak_mb = r.get("fit_seconds"), r.get("fit_peak_mb")
            entry.fit_child_peak_mb, entry.info = r.get("fit_child_peak_mb"), r.get("info") or {}
            entry.fit = FitRecord(key=key, status="ok", attempt=None if out.attempt_dir is None else str(out.attempt_dir))
        else:
            entry.fit = FitRecord(key=key, **out.record())

    def _on_done(self, item: WorkItem, out: Outcome) -> None:
        """Record one finished item in the manifest (and the tables when its imputer is done)."""
        name = item.imputer
        entry = self.manifest.imputers[name]
        self._outcomes[name]["fit" if item.kind == "fit" else item.label] = out
        if item.kind == "fit":
            self._record_fit(entry, item.spec["fit_key"], out)
        else:
            self._units_finished += 1
            self.progress.update("units", self._units_finished, self._units_total)
            key = (item.level, item.replicate)
            record = UnitRecord(level=item.level, replicate=item.replicate, **out.record())
            if out.status == "ok":
                unit = ImputeRecord.from_json(out.result.get("unit"), f"{out.attempt_dir}/result.json: unit")
                entry.impute = sorted([u for u in entry.impute if (u.level, u.replicate) != key] + [unit],
                                      key=lambda u: (u.level, u.replicate))
                if out.result.get("info"):
                    entry.info = out.result["info"]
                record = UnitRecord(level=item.level, replicate=item.replicate, status="ok",
                                    attempt=str(out.attempt_dir))
                self._done += 1
            entry.units = sorted([u for u in entry.units if (u.level, u.replicate) != key] + [record],
                                 key=lambda u: (u.level, u.replicate))
        if out.status not in ("ok", "skipped", "not_applicable"):
            self.progress.print(f"{name}: FAILED ({out.status.replace('_', ' ')}): {out.error}")
            self.failures.setdefault(name, out.error or f"imputer {name!r}: {out.status}")
            self._copy_error(name, out)
        self._open[name].discard(item.label)
        if not self._open[name]:
            self._finish_imputer(name, entry)
        else:
            self._write_manifest()

    def _copy_error(self, name: str, out: Outcome) -> None:
        """``models/<imputer>/error.txt``: the traceback (or log tail) of the imputer's latest failure."""
        text = None
        if out.attempt_dir is not None and (out.attempt_dir / "error.txt").is_file():
            text = (out.attempt_dir / "error.txt").read_text(errors="replace")
        text = text or f"{out.error}\n\n{out.log_tail or ''}\n"
        atomic_write(self.folder.model_dir(name) / "error.txt", text)

    def _finish_imputer(self, name: str, entry: ImputerRecord) -> None:
        """The imputer's status from its outcomes; then the tables are rebuilt."""
        outcomes = self._outcomes[name]
        not_applicable = [o for o in outcomes.values() if o.status == "not_applicable"]
        failed = [o for o in outcomes.values() if o.status not in ("ok", "skipped", "not_applicable")]
        if not_applicable and not failed:
            entry.status, entry.error = "not_applicable", not_applicable[0].error
            self.progress.print(f"{name}: not applicable: {not_applicable[0].error}")
        else:
            if not failed:
                entry.status, entry.error = "ok", None
            else:
                n_done = sum(self._is_done(name, level, r) for level, r in self.units())
                entry.status, entry.error = "partial" if n_done else "failed", failed[0].error
        self._write_outputs()


    def _imputer_entry(self, plan: ImputerPlan) -> ImputerRecord:
        entries = self.manifest.imputers
        if plan.name not in entries:
            entries[plan.name] = ImputerRecord(status="running", reference_free=bool(plan.cls.reference_free))
        entry = entries[plan.name]
        entry.distribution, entry.version, entry.options = plan.distribution, plan.version, options_to_json(plan.options)
        return entry

    # ------------------------------------------------------------------ outputs
    def _base_manifest(self, previous: Manifest | None) -> Manifest:
        s = self.settings
        store = self.store
        data = self.data
        return Manifest(
            impbench_version=__version__,
            created=(previous.created if previous is not None else None) or _utc_now(),
            updated=_utc_now(),
            command=s.command,
            versions=package_versions(),
            machine=machine_info(),
            dataset=DatasetRecord(
                name=str(store.name), hash=str(store.dataset_hash), store=str(getattr(store, "path", "") or ""),
                contig=str(store.contig), n_variants=int(data.truth.n_variants),
                n_samples={"train": data.panel.n_samples, "val": data.val.n_samples if data.val is not None else 0,
                           "test": data.truth.n_samples},
                train_cohort=s.training_cohort, panel_cohort=s.panel_cohort, test_cohort=s.test_cohort,
                qc=to_jsonable(getattr(store, "qc_report", None)),
            ),
            maf_source="training split truth" + (f" (cohort {s.training_cohort})" if s.training_cohort else ""),
            cohort_maf=data.cohort_maf_summary(),  # cohort rows bin by their cohort's own training split
            orientation=metrics.ORIENTATION,
            settings=SettingsRecord(
                levels=[float(v) for v in self.levels], replicates=s.replicates, scheme=s.scheme,
                protocols=list(s.protocols), seed=s.seed, device=self.device, threads=self.threads,
                executor=s.executor, jobs=s.jobs, time_limit=s.time_limit, time_limits=dict(s.time_limits),
                slurm=to_jsonable(s.slurm) if s.slurm else None,
                nproc=s.nproc, write_vcf=s.write_vcf, bin_edges=[float(e) for e in self.bin_edges],
                bootstrap=BootstrapRecord(n=s.n_boot, seed=s.bootstrap_seed, resamples="test samples x genomic blocks",
                                          block_length=self.block_length, n_blocks=self.n_blocks),
                min_variant_cells=s.min_variant_cells,
                maf_classes=[list(c) for c in self.maf_classes],
                typed_sites=None if s.typed_sites is None else str(s.typed_sites),
                typed_density=s.typed_density, typed=self.data.typed_note,
                genetic_map=None if self.plan.genetic_map is None else str(self.plan.genetic_map),
            ),
            identity=self._identity(),
            masks=list(previous.masks) if previous is not None else [],
            imputers=dict(previous.imputers) if previous is not None else {},
        )

    def _write_manifest(self) -> None:
        self.manifest.updated = _utc_now()
        self.folder.write_manifest(self.manifest)

    def _write_outputs(self) -> None:
        """Rebuild every table from the done markers and their statistics, then the manifest
        (each file atomically).

        Called after each imputer and at the end; the done markers are the record of truth, so
        an interrupted run's tables are rebuilt by the next run with the same ``--run``.
        """
        order = list(self.manifest.imputers)
        frames = self.folder.marker_rows(order)
        unit_stats, cohort_stats = collect_stats(self.folder, order, self.units())
        calibration_rows = frames.pop("calibration")
        s = self.settings
        estimates = aggregate(unit_stats, frames["replicates"], calibration_rows, self.data.truth.cohort,
                              self.bin_edges, classes=self.maf_classes, n_boot=s.n_boot, seed=s.bootstrap_seed,
                              imputer_order=order, cohort_stats=cohort_stats)
        self.folder.write_tables({**frames, **estimates})
        self._write_manifest()


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_benchmark(settings: RunSettings, *, store: Any = None, card: Any = None, console: Any = None,
                  show_progress: bool = True) -> RunOutcome:
    """Everything ``impbench run`` does: validate and plan once, prepare the dataset when
    needed, run. Nothing is created before the run starts (a failure before leaves no folder).

    ``store``/``card`` may be given directly (tests, notebooks); otherwise the card named by
    ``settings.dataset`` is looked up (in ``settings.cards`` too) and prepared.
    """
    if store is None and card is None:
        card = get_card(settings.dataset, extra_dirs=list(settings.cards) or None)
    dataset_name = str(store.name) if store is not None else getattr(card, "name", settings.dataset)
    plan = plan_run(settings, card, dataset_name=dataset_name)  # fails before any slow work
    check_output_folder(Path(settings.out))
    with RichProgress(console=console, enabled=show_progress) as progress:
        if store is None:
            store = prepare(card, progress=progress.callback(f"prepare {settings.dataset}"))
        return Runner(plan, store, progress=progress).run()
