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
from impbench.bench.masking import make_mask, mask_sha256, replicate_seed
from impbench.bench.measure import StageMeter, package_versions
from impbench.bench.results import RunFolder, ensure_writable, records
from impbench.data.cards import get_card
from impbench.data.prepare import prepare
from impbench.bench.settings import ImputerPlan, RunPlan, RunSettings, plan_run
from impbench.errors import ImpbenchError, ImputerError
from impbench.files import to_jsonable
from impbench.genotypes import MISSING, GenotypeMatrix, alt_allele_frequency
from impbench.imputers.base import Imputation, Imputer, RunContext, check_imputation
from impbench.io.vcf_write import write_vcf
from impbench.progress import RichProgress


# ---------------------------------------------------------------------------- data
@dataclass
class RunData:
    """The splits a run uses, read once."""

    panel: GenotypeMatrix
    val: GenotypeMatrix | None
    truth: GenotypeMatrix
    alt_freq: np.ndarray  # float64 (n_variants,), ALT frequency of the training split's truth


def read_run_data(store: Any, train_cohort: str | None, test_cohort: str | None) -> RunData:
    """Training, validation and test splits from a ``DatasetStore`` (cohort subsets when asked)."""
    cohorts = list(store.cohorts())
    for flag, cohort in (("--train-cohort", train_cohort), ("--test-cohort", test_cohort)):
        if cohort is not None and cohort not in cohorts:
            raise ImpbenchError(f"{flag} {cohort!r}: dataset {store.name} has cohorts {', '.join(map(str, cohorts))}")
    panel = store.read_split("train", cohort=train_cohort)
    val = store.read_split("val", cohort=train_cohort)
    truth = store.read_split("test", cohort=test_cohort)
    for split, matrix in (("train", panel), ("test", truth)):
        if matrix.n_samples == 0:
            raise ImpbenchError(f"dataset {store.name}: the {split} split has no samples" + (
                f" of cohort {train_cohort if split == 'train' else test_cohort!r}" if (train_cohort or test_cohort) else ""))
    if val is not None and val.n_samples == 0:
        val = None
    return RunData(panel=panel, val=val, truth=truth, alt_freq=alt_allele_frequency(panel.codes))


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
        self._masks: dict[tuple[float, int], tuple[np.ndarray, str, int]] = {}

    # ------------------------------------------------------------------ public
    def run(self) -> RunOutcome:
        settings = self.settings
        self.bin_edges = tuple(settings.bin_edges) if settings.bin_edges is not None else tuple(metrics.DEFAULT_BIN_EDGES)
        self.folder.create()
        previous = self._check_resume()
        self.data = read_run_data(self.store, settings.train_cohort, settings.test_cohort)
        self.manifest = self._base_manifest(previous)
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
            "train_cohort": s.train_cohort, "test_cohort": s.test_cohort,
            "bin_edges": [float(e) for e in self.bin_edges],
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
    def mask(self, level: float, replicate: int) -> tuple[np.ndarray, str, int]:
        """(mask bool (n_test, n_variants), SHA-256, n_masked) of a unit, built once per run."""
        key = (float(level), int(replicate))
        if key not in self._masks:
            codes = self.data.truth.codes
            mask = make_mask(codes, level, replicate_seed(str(self.store.dataset_hash), level, replicate), self.settings.scheme)
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != codes.shape:  # pragma: no cover - masking's contract
                raise RuntimeError(f"make_mask returned shape {mask.shape}, expected {codes.shape}")
            self._masks[key] = (np.packbits(mask, axis=None), mask_sha256(mask), int(mask.sum()))
            entry = {"level": level, "replicate": replicate, "sha256": self._masks[key][1], "n_masked": self._masks[key][2]}
            masks = [m for m in self.manifest["masks"] if (m["level"], m["replicate"]) != key]
            self.manifest["masks"] = sorted(masks + [entry], key=lambda m: (m["level"], m["replicate"]))
        packed, sha, n_masked = self._masks[key]
        shape = self.data.truth.codes.shape
        mask = np.unpackbits(packed, count=shape[0] * shape[1]).astype(bool).reshape(shape)
        return mask, sha, n_masked

    def units(self) -> list[tuple[float, int]]:
        return [(float(level), r) for level in self.settings.levels for r in range(self.settings.replicates)]

    def _is_done(self, name: str, level: float, replicate: int) -> bool:
        if self.folder.read_marker(name, level, replicate) is None:
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
            segment_layout=self.plan.segment_layout,
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
        mask, sha, n_masked = self.mask(level, replicate)
        target_codes = truth.codes.copy()
        target_codes[mask] = MISSING
        target = truth.with_codes(target_codes)
        target_before = target_codes.copy()
        with StageMeter() as meter:
            result = imputer.impute(target, ctx)
        imputation = check_imputation(plan.name, result, target)
        if not np.array_equal(target.codes, target_before):
            raise ImputerError(plan.name, "impute() modified the target's codes in place")
        check_observed_kept(plan.name, target_before, imputation)
        rows: dict[str, list[dict]] = {"metrics": [], "per_sample": [], "confusion": []}
        keys = {"imputer": plan.name, "level": level, "replicate": replicate}
        score_task = f"{plan.name} score"
        for protocol in self.settings.protocols:
            scores = metrics.score(truth.codes, imputation, mask, train_alt_freq=self.data.alt_freq, protocol=protocol,
                                   bin_edges=self.bin_edges)
            for part in rows:
                frame = getattr(scores, part, None)
                if frame is None or len(frame) == 0:
                    continue
                if part == "per_sample" and protocol != "standard":
                    continue
                frame = frame.copy()
                if part == "per_sample" and "sample_index" in frame.columns:
                    index = frame.pop("sample_index").to_numpy(dtype=np.int64)
                    frame["sample_id"] = truth.sample_ids[index]
                    frame["cohort"] = truth.cohort[index]
                if "protocol" not in frame.columns and part != "per_sample":
                    frame["protocol"] = protocol
                for key, value in keys.items():
                    frame[key] = value
                rows[part].extend(records(frame))
            self._scored += 1
            self.progress.update(score_task, self._scored, self._to_score)
        if self.settings.write_vcf:
            write_vcf(target, self.folder.vcf_path(plan.name, level, replicate), imputation=imputation, masked=mask)
        unit = {
            "level": level, "replicate": replicate, "seconds": round(meter.seconds, 4),
            "peak_mb": meter.peak_mb, "child_peak_mb": meter.child_peak_mb,
            "n_covered": int(np.asarray(imputation.covered).sum()),
        }
        marker = {"imputer": plan.name, "mask_sha256": sha, "n_masked": n_masked, **unit, **rows}
        self.folder.write_marker(plan.name, level, replicate, marker)
        entry["impute"] = sorted([u for u in entry["impute"] if (u["level"], u["replicate"]) != (level, replicate)]
                                 + [unit], key=lambda u: (u["level"], u["replicate"]))
        self._write_manifest()

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
                "train_cohort": s.train_cohort, "test_cohort": s.test_cohort,
                "qc": to_jsonable(getattr(store, "qc_report", None)),
            },
            "maf_source": "training split truth" + (f" (cohort {s.train_cohort})" if s.train_cohort else ""),
            "settings": {
                "levels": [float(v) for v in s.levels], "replicates": s.replicates, "scheme": s.scheme,
                "protocols": list(s.protocols), "seed": s.seed, "device": self.device, "threads": self.threads,
                "nproc": s.nproc, "write_vcf": s.write_vcf, "bin_edges": [float(e) for e in self.bin_edges],
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
        """Rewrite the CSVs from every done marker, then the manifest (each file atomically).

        Called after each imputer and at the end; the done markers are the record of truth, so
        an interrupted run's CSVs are rebuilt by the next run with the same ``--run``.
        """
        self.folder.write_tables(self.manifest["imputers"])
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
