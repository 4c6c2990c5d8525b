"""The worker: one fit or one unit, in its own process: ``python -m impbench.bench.exec.worker SPEC.json``.

A worker reads its JSON spec (``impbench.bench.units.WorkItem``) and the run's inputs
(``<run>/work/inputs.json``, the typed ``impbench.bench.records.RunInputs`` written by the
runner: the store's path, each imputer's class by reference (``impbench.imputers.registry.
ImputerRef``: name, plugin, module, qualified name; never pickled) and options as JSON, rebuilt
and checked by ``options_from_json``, the scoring settings; ``inputs.npz`` beside it holds the
arrays, and ``store.pkl`` a store without a file), does its one piece of work and writes its
outcome to ``result.json`` in its attempt folder:

- **fit**: reads the training (and validation) split, fits the imputer with the fit folder
  ``models/<imputer>/fit/<key>/`` as its work folder, checks that the panel was not modified,
  pickles the fitted imputer's state to ``imputer.pkl`` (``dump_fitted``: its class and options
  class by reference; signed, ``impbench.bench.exec.trust``) and writes ``fit.json`` (timings, info) there;
- **unit**: reads the test split, rebuilds the shared mask (its SHA-256 must equal the
  harness's), loads the fitted imputer (only when its tag is this user's), imputes (the attempt's ``work/`` is its work folder),
  validates the answer (``check_imputation``, observed cells kept, target untouched), scores
  it (``impbench.bench.unit.score_unit``) and writes the unit's statistics and done marker (and
  VCFs under ``--write-vcf``) through ``RunFolder``.

An exception from plugin code, ``SystemExit`` included, becomes ``status: failed`` with a one-line
message (the traceback in ``error.txt``); ``ImputerNotApplicable`` becomes ``not_applicable``.
The process exits 0 whenever it wrote its result; a worker that dies without one (a signal,
``os._exit``) is recorded by the executor from its exit status.

Process hygiene: the worker asks for SIGTERM when its parent dies (``prctl``), watches its
parent besides, and on SIGTERM unwinds (so a plugin's ``finally`` stops its subprocesses), then
kills every process still tagged with its attempt (``impbench.bench.exec.procs``) and exits 143.

``run_spec`` is the same work in the calling process (the ``inline`` executor); it imports
torch only when the imputer's own module does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from impbench.bench.exec import procs, trust
from impbench.bench.exec.signals import RunInterrupted
from impbench.bench.exec.inputs import WorkerInputs, dump_fitted, load_fitted, load_inputs
from impbench.bench.units import FIT_PICKLE, FIT_RESULT, PROGRESS_NAME, RESULT_NAME
from impbench.errors import ImputerError, ImputerNotApplicable
from impbench.files import atomic_write, os_error_line, write_json
from impbench.genotypes import MISSING
from impbench.imputers.tools import set_parent_death_signal

#: A worker's exit status when it could not write its own result (the run folder's disk refused).
WRITE_FAILED_EXIT = 74  # EX_IOERR


class HarnessWriteError(Exception):
    """The run folder refused a write of the harness's own (a full disk writing a done marker):
    the unit failed, but not because of the imputer."""


@contextlib.contextmanager
def harness_writes() -> Iterator[None]:
    """Turn an ``OSError`` of the harness's own writes into ``HarnessWriteError`` (one line)."""
    try:
        yield
    except OSError as exc:
        raise HarnessWriteError(os_error_line(exc)) from None


class WorkerTerminated(BaseException):
    """Raised in a worker by SIGTERM (its parent died, or the harness stopped it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {procs.signal_name(signum)}")
        self.signum = signum


def extend_sys_path(entries: list[str]) -> None:
    """Put the harness's import path entries that this process lacks in front (test modules,
    plugins on a path added at run time), so the run's imputer classes import here as there."""
    missing = [entry for entry in entries if entry not in sys.path and (entry == "" or os.path.isdir(entry))]
    sys.path[:0] = missing


# ---------------------------------------------------------------------------- progress and logs
class FileProgress:
    """A ``ProgressFn`` writing the latest stage to ``progress.json`` (at most 5 times a second)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last = 0.0

    def __call__(self, stage: str, completed: float, total: float | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.2 and (total is None or completed < total):
            return
        self._last = now
        try:
            atomic_write(self.path, json.dumps({"stage": str(stage), "completed": completed, "total": total}))
        except OSError:
            pass


def _logger(name: str, path: Path) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"impbench.imputer.{name}")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, handler


# ---------------------------------------------------------------------------- messages
def exc_message(name: str, stage: str, exc: BaseException) -> str:
    """One line: ImputerError's own message, else ``imputer 'x': fit raised ValueError: ...``."""
    if isinstance(exc, ImputerError):
        return str(exc).splitlines()[0] if str(exc) else f"imputer {name!r}: failed"
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"imputer {name!r}: {stage} raised {type(exc).__name__}{detail}"


def check_observed_kept(name: str, target_codes: np.ndarray, imputation: Any) -> None:
    """``ImputerError`` naming the plugin when a call differs from an observed (non-zero) code."""
    observed = target_codes != MISSING
    changed = observed & (imputation.calls != target_codes)
    if changed.any():
        raise ImputerError(
            name, f"impute() changed {int(changed.sum())} observed cells (observed genotypes must be kept)"
        )


# ---------------------------------------------------------------------------- the work
def run_spec(spec: dict, progress: Callable | None = None) -> dict:
    """Do the fit or unit ``spec`` describes, in this process; write and return its result."""
    run_dir = Path(spec["run_dir"])
    attempt = Path(spec["attempt_dir"])
    inputs = load_inputs(run_dir / spec["inputs"])
    name = spec["imputer"]
    logger, handler = _logger(name, attempt / "impbench.log")
    progress = progress or FileProgress(attempt / PROGRESS_NAME)
    stage = "fit" if spec["kind"] == "fit" else "impute"
    started = time.time()
    try:
        if spec["kind"] == "fit":
            result = _fit(spec, inputs, logger, progress)
        else:
            result = _unit(spec, inputs, logger, progress)
        result = {"status": "ok", "error": None, **result}
    except (WorkerTerminated, KeyboardInterrupt, RunInterrupted):
        raise
    except ImputerNotApplicable as exc:
        result = {"status": "not_applicable", "error": str(exc).splitlines()[0] if str(exc) else "not applicable"}
    except HarnessWriteError as exc:
        (attempt / "error.txt").write_text(traceback.format_exc())
        result = {"status": "failed", "error": f"impbench could not write to the run folder: {exc} "
                                               f"(imputer {name!r} is not at fault)"}
    except BaseException as exc:  # noqa: BLE001 - SystemExit from plugin code is this unit's failure
        atomic_write(attempt / "error.txt", traceback.format_exc())
        result = {"status": "failed", "error": exc_message(name, stage, exc)}
    finally:
        logger.removeHandler(handler)
        handler.close()
    result.update(kind=spec["kind"], imputer=name, wall_seconds=round(time.time() - started, 4), pid=os.getpid())
    with harness_writes():
        write_json(attempt / RESULT_NAME, result)
    return result


def _context(spec: dict, inputs: WorkerInputs, work_dir: Path, logger: logging.Logger, progress: Callable, typed: Any) -> Any:
    from impbench.imputers.base import RunContext

    from impbench.imputers.segments import SegmentLayout

    c = inputs.record.context
    layout = None if c.segment_layout is None else SegmentLayout(*c.segment_layout)
    return RunContext(
        work_dir=work_dir, device=spec.get("device") or c.device, threads=int(spec["threads"]), seed=c.seed,
        nproc=c.nproc, progress=progress, logger=logger, dataset=c.dataset, dataset_hash=c.dataset_hash,
        card_options=dict(inputs.record.imputers[spec["imputer"]].card_options), segment_layout=layout,
        scheme=c.scheme, typed=typed, genetic_map=None if c.genetic_map is None else Path(c.genetic_map),
    )


def _fit(spec: dict, inputs: WorkerInputs, logger: logging.Logger, progress: Callable) -> dict:
    from impbench.bench.exec.measure import StageMeter

    name = spec["imputer"]
    store = inputs.store
    cohort = inputs.record.train_cohort
    panel = store.read_split("train", cohort=cohort)
    val = store.read_split("val", cohort=cohort)
    if val is not None and val.n_samples == 0:
        val = None
    folder = Path(spec["fit_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FIT_RESULT).unlink(missing_ok=True)
    ctx = _context(spec, inputs, folder, logger, progress, inputs.typed)
    imputer = inputs.imputer(name)
    panel_before = panel.codes.copy()
    val_before = val.codes.copy() if val is not None else None
    progress("fit", 0, 1)
    with StageMeter() as meter:
        imputer.fit(panel, val, ctx)
    if not np.array_equal(panel.codes, panel_before):
        raise ImputerError(name, "fit() modified the panel's codes in place")
    if val_before is not None and not np.array_equal(val.codes, val_before):
        raise ImputerError(name, "fit() modified the validation split's codes in place")
    try:
        payload = dump_fitted(imputer)
    except Exception as exc:  # noqa: BLE001 - a plugin whose fitted state cannot travel
        raise ImputerError(name, f"the fitted imputer cannot be pickled for the unit workers "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    result = {"fit_seconds": round(meter.seconds, 4), "fit_peak_mb": meter.peak_mb,
              "fit_child_peak_mb": meter.child_peak_mb, "info": _info(imputer), "fit_key": spec["fit_key"]}
    with harness_writes():
        atomic_write(folder / FIT_PICKLE, trust.sign(payload, trust.FIT))
        write_json(folder / FIT_RESULT, {"status": "ok", **result})
    progress("fit", 1, 1)
    return result


def _info(imputer: Any) -> dict:
    """``manifest_info()`` as JSON for the manifest's ``info`` (an object); a failure is recorded there."""
    from impbench.files import to_jsonable

    try:
        info = to_jsonable(imputer.manifest_info())
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        return {"error": f"manifest_info() raised {type(exc).__name__}: {exc}"}
    return info if isinstance(info, dict) else {"error": f"manifest_info() returned {type(info).__name__}, not a dict"}


def _unit(spec: dict, inputs: WorkerInputs, logger: logging.Logger, progress: Callable) -> dict:
    from impbench.bench.exec.measure import StageMeter
    from impbench.bench.records import DoneMarker
    from impbench.bench.results import RunFolder
    from impbench.bench.rundata import RunData, build_mask, masked_target
    from impbench.bench.unit import score_unit
    from impbench.scoring.bootstrap import genomic_blocks
    from impbench.imputers.base import check_imputation

    name = spec["imputer"]
    level, replicate = float(spec["level"]), int(spec["replicate"])
    store = inputs.store
    full = store.read_split("test")
    cohort = inputs.record.test_cohort
    rows = np.arange(full.n_samples) if cohort is None else np.flatnonzero(full.cohort == cohort)
    truth = full if cohort is None else full.take_samples(rows)
    data = RunData(panel=None, val=None, truth=truth, full_test=full.codes, rows=rows,  # type: ignore[arg-type]
                   alt_freq=inputs.alt_freq, typed=inputs.typed)
    mask = build_mask(data, inputs.record.context.dataset_hash, level, replicate, inputs.record.context.scheme)
    if mask.sha256 != spec["mask_sha256"]:
        raise RuntimeError(f"the worker's mask {mask.sha256[:12]} differs from the harness's {spec['mask_sha256'][:12]}")
    imputer = load_fitted(trust.verified_bytes(Path(spec["fit_dir"]) / FIT_PICKLE, trust.FIT),  # never unpickled untrusted
                          inputs.imputer_class(name))
    work = Path(spec["attempt_dir"]) / "work"
    ctx = _context(spec, inputs, work, logger, progress, mask.typed if mask.typed is not None else data.typed)
    target = masked_target(truth, mask.cells)
    target_before = target.codes.copy()
    progress("impute", 0, 1)
    with StageMeter() as meter:
        answer = imputer.impute(target, ctx)
    imputation = check_imputation(name, answer, target)
    if not np.array_equal(target.codes, target_before):
        raise ImputerError(name, "impute() modified the target's codes in place")
    check_observed_kept(name, target_before, imputation)
    s = inputs.record.scoring
    scores = score_unit(truth, imputation, mask.cells, data.alt_freq, protocols=s.protocols,
                        bin_edges=s.bin_edges, min_variant_cells=s.min_variant_cells,
                        keys={"imputer": name, "level": level, "replicate": replicate},
                        variant_quality=replicate == 0,
                        blocks=genomic_blocks(truth.positions, s.block_length),
                        cohort_alt_freq=inputs.cohort_alt_freq)
    folder = RunFolder(Path(spec["run_dir"]))
    unit = {"level": level, "replicate": replicate, "seconds": round(meter.seconds, 4), "peak_mb": meter.peak_mb,
            "child_peak_mb": meter.child_peak_mb, "n_covered": int(np.asarray(imputation.covered).sum())}
    with harness_writes():
        if s.write_vcf:
            _write_vcfs(folder, s, name, level, replicate, truth, target, imputation, mask)
        folder.write_stats(name, level, replicate, scores.stats)
        folder.write_marker(DoneMarker(imputer=name, mask_sha256=mask.sha256, n_masked=mask.n_masked,
                                       fit_key=spec["fit_key"], unit_key=spec["unit_key"], **unit, **scores.rows))
    progress("impute", 1, 1)
    return {"unit": unit, "info": _info(imputer)}


def _write_vcfs(folder: Any, s: Any, name: str, level: float, replicate: int, truth: Any, target: Any,
                imputation: Any, mask: Any) -> None:
    """The imputed VCF of a unit, and (once each) the truth and the masked target, with headers
    that say what made them; DR2 over the masked cells only."""
    from impbench import __version__
    from impbench.scoring.calibration import estimated_variant_dr2
    from impbench.io.vcf_write import write_vcf

    meta = {"impbench_version": __version__, "impbench_command": s.command, "impbench_scheme": s.scheme,
            "impbench_level": f"{level:g}", "impbench_replicate": str(replicate), "impbench_mask_sha256": mask.sha256}
    truth_path = folder.path / "vcf" / "truth.vcf.gz"
    if not truth_path.exists():
        write_vcf(truth, truth_path, meta={"impbench_version": __version__, "impbench_command": s.command,
                                           "impbench_split": "test"})
    target_path = folder.path / "vcf" / f"target.L{level:g}.r{replicate}.vcf.gz"
    if not target_path.exists():
        write_vcf(target, target_path, meta=meta)
    quality = imputation.quality if imputation.quality is not None else estimated_variant_dr2(imputation, mask.cells)
    write_vcf(target, folder.vcf_path(name, level, replicate), imputation=imputation, masked=mask.cells,
              meta={**meta, "impbench_imputer": name}, dr2=quality)


# ---------------------------------------------------------------------------- the process
def _on_sigterm(signum: int, frame: Any) -> None:
    raise WorkerTerminated(signum)


def _watch_parent(parent: int, attempt: str) -> None:
    """A daemon thread's loop: when the harness is gone, stop this worker (and its children)."""
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5.0)  # let the main thread unwind; then make sure
            procs.kill_tagged(procs.ATTEMPT_ENV, attempt)
            os._exit(143)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m impbench.bench.exec.worker SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    attempt = str(spec["attempt_dir"])
    signal.signal(signal.SIGTERM, _on_sigterm)
    set_parent_death_signal(signal.SIGTERM)
    parent = os.environ.get(procs.PARENT_ENV)
    if parent is not None:
        if os.getppid() != int(parent):  # the harness died before the parent-death signal was set
            return 143
        threading.Thread(target=_watch_parent, args=(int(parent), attempt), daemon=True).start()
    extend_sys_path(list(spec.get("sys_path") or []))
    try:
        run_spec(spec)
    except HarnessWriteError as exc:  # not even result.json could be written
        sys.stderr.write(f"impbench worker: cannot write its result: {exc}\n")
        sys.stderr.flush()
        return WRITE_FAILED_EXIT
    except (WorkerTerminated, KeyboardInterrupt) as exc:
        procs.kill_tagged(procs.ATTEMPT_ENV, attempt)
        sys.stderr.write(f"impbench worker: {exc or type(exc).__name__}\n")
        sys.stderr.flush()
        os._exit(128 + getattr(exc, "signum", signal.SIGINT))
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # not waiting for threads a plugin left running
