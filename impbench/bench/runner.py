"""``impbench run``: every imputer on the same masked replicates, scored, written resumably.

The unit of work is (imputer, level, replicate). For each imputer the runner

1. builds its options: the dataset card's per-imputer defaults (those keys that are fields of
   the imputer's ``Options``), then ``--options FILE.toml``, then ``--opt NAME.KEY=VALUE``,
   through ``make_options``; every key of the card's table also reaches the imputer in
   ``RunContext.card_options``, with the card's ``segment_length``/``segment_overlap``;
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

Timings: ``fit_seconds`` and ``seconds`` are wall-clock (``time.perf_counter``). Memory:
``peak_mb`` is the peak resident set size of the harness process during the stage, above its
size when the stage began, sampled every 10 ms from ``/proc/self/statm`` (elsewhere: the growth
of ``ru_maxrss``); freed heap memory is returned to the OS first (glibc ``malloc_trim``) so
that a stage reusing memory an earlier one freed still shows it. It counts numpy and torch
(CPU) allocations alike, not GPU memory. A spike shorter than the sampling interval is
caught only when it sets a new high-water mark of the process (``ru_maxrss``).
``child_peak_mb`` is the largest resident size of a child process (Beagle's JVM, ``torchrun``
workers) that ended during the stage, when it set a new maximum (``RUSAGE_CHILDREN``), else null.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import re
import resource
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from impbench.errors import ImpbenchError, ImputerError
from impbench.genotypes import MISSING, GenotypeMatrix, alt_allele_frequency
from impbench.imputers.base import Imputation, Imputer, RunContext, check_imputation, make_options

DEFAULT_LEVELS = (0.05, 0.15, 0.25)
DEFAULT_REPLICATES = 3
PROTOCOL_CHOICES = ("standard", "paper", "both")
METRICS_COLUMNS = (
    "imputer", "level", "replicate", "protocol", "bin", "bin_lo", "bin_hi",
    "metric", "value", "n_variants", "n_genotypes",
)
PER_SAMPLE_COLUMNS = ("imputer", "level", "replicate", "sample_id", "cohort", "r2", "n_genotypes")
CONFUSION_COLUMNS = ("imputer", "level", "replicate", "protocol", "kind", "truth", "pred", "count")
#: Version of the done-marker format.
MARKER_FORMAT = 1


# ---------------------------------------------------------------------------- settings
@dataclass
class RunSettings:
    """What ``impbench run`` was asked to do (the CLI flags, parsed).

    imputers : names, or None for every registered imputer.
    options : imputer name -> {key: value} from ``--options``/``--opt`` (values may be strings).
    cards : extra folders of dataset cards (``--cards``).
    """

    dataset: str
    imputers: Sequence[str] | None = None
    levels: Sequence[float] = DEFAULT_LEVELS
    replicates: int = DEFAULT_REPLICATES
    scheme: str = "uniform"
    protocol: str = "standard"
    out: Path = Path("results")
    run_name: str | None = None
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    nproc: int = 1
    train_cohort: str | None = None
    test_cohort: str | None = None
    write_vcf: bool = False
    cards: Sequence[Path] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bin_edges: Sequence[float] | None = None
    command: str = ""

    @property
    def protocols(self) -> tuple[str, ...]:
        return ("standard", "paper") if self.protocol == "both" else (self.protocol,)


def parse_levels(text: str) -> tuple[float, ...]:
    """``"0.05,0.15"`` -> (0.05, 0.15); ``ImpbenchError`` unless every level is in (0, 1)."""
    levels = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ImpbenchError(f"--levels: {item!r} is not a number") from None
        levels.append(value)
    if not levels:
        raise ImpbenchError("--levels: give at least one masking level, e.g. 0.05,0.15,0.25")
    return tuple(levels)


def parse_opt(text: str) -> tuple[str, str, str]:
    """``"biunet.epochs=5"`` -> ("biunet", "epochs", "5")."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\s*=(.*)", text)
    if not match:
        raise ImpbenchError(f"--opt {text!r}: expected NAME.KEY=VALUE, e.g. knn.k=5")
    return match.group(1), match.group(2), match.group(3).strip()


def read_options_file(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """A TOML file of per-imputer tables (``[biunet]`` ``epochs = 5``) -> {imputer: {key: value}}."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ImpbenchError(f"{path}: options file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImpbenchError(f"{path}: not valid TOML ({exc})") from None
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ImpbenchError(f"{path}: {name!r} must be a table [{name}] of options, not a value")
    return {name: dict(table) for name, table in data.items()}


def merge_options(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later layers override earlier ones, key by key within each imputer."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, table in layer.items():
            merged.setdefault(name, {}).update(table)
    return merged


def validate_settings(settings: RunSettings) -> None:
    """``ImpbenchError`` for a setting that can never work (checked before any work starts)."""
    from impbench.bench.masking import SCHEMES

    for level in settings.levels:
        if not (0.0 < level < 1.0):
            raise ImpbenchError(f"--levels: masking level {level:g} is outside (0, 1)")
    if len(set(settings.levels)) != len(settings.levels):
        raise ImpbenchError("--levels: a level is given twice")
    if settings.replicates < 1:
        raise ImpbenchError(f"--replicates must be at least 1, got {settings.replicates}")
    if settings.scheme not in SCHEMES:
        raise ImpbenchError(f"--scheme {settings.scheme!r} is unknown; valid: {', '.join(SCHEMES)}")
    if settings.protocol not in PROTOCOL_CHOICES:
        raise ImpbenchError(f"--protocol {settings.protocol!r} is unknown; valid: {', '.join(PROTOCOL_CHOICES)}")
    if settings.threads is not None and settings.threads < 1:
        raise ImpbenchError(f"--threads must be at least 1, got {settings.threads}")
    if settings.nproc < 1:
        raise ImpbenchError(f"--nproc must be at least 1, got {settings.nproc}")
    if settings.run_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", settings.run_name):
        raise ImpbenchError(f"--run {settings.run_name!r}: use letters, digits, '.', '_' and '-'")


def _gpu_driver_present() -> bool:
    """False when this Linux machine plainly has no NVIDIA or ROCm GPU driver; True otherwise."""
    if not sys.platform.startswith("linux"):
        return True
    markers = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd")
    return any(os.path.exists(path) for path in markers)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch is importable and sees a GPU, else ``cpu``.

    ``cuda``/``cuda:N`` need torch with a visible GPU N; anything else is an ``ImpbenchError``.
    torch is imported only here, and only when the answer depends on it (``auto`` on a Linux
    machine without an NVIDIA/ROCm driver is ``cpu`` without importing it).
    """
    device = device.strip().lower()
    if device == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if device != "auto" and not match:
        raise ImpbenchError(f"--device {device!r} is unknown; use auto, cpu, cuda or cuda:N")
    available = 0
    if device == "auto" and not _gpu_driver_present():
        return "cpu"  # no GPU driver: torch would see none, so do not pay for importing it
    if importlib.util.find_spec("torch") is not None:
        import torch

        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ImpbenchError(f"--device {device}: no CUDA GPU is available (torch sees none); use --device cpu")
    index = int(match.group(1)) if match.group(1) else 0
    if index >= available:
        raise ImpbenchError(f"--device {device}: only {available} GPU(s) visible (cuda:0..cuda:{available - 1})")
    return device


# ---------------------------------------------------------------------------- files
def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_jsonable(value: Any) -> Any:
    """Dataclasses, numpy scalars/arrays, paths, tuples and sets as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict())
    return str(value)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(data), indent=2) + "\n")


def unit_name(imputer: str, level: float, replicate: int) -> str:
    """``knn.L0.05.r0``: the stem of a unit's done marker and VCF."""
    return f"{imputer}.L{level:g}.r{replicate}"


# ---------------------------------------------------------------------------- measuring
_MALLOC_TRIM: Any = None


class StageMeter:
    """Wall-clock seconds and peak memory growth of a block of code (see the module docstring)."""

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.seconds = 0.0
        self.peak_mb = 0.0
        self.child_peak_mb: float | None = None

    @staticmethod
    def _rss_bytes() -> int | None:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _maxrss_bytes(who: int) -> int:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(who).ru_maxrss * scale

    @staticmethod
    def _release_free_memory() -> None:
        """Give freed heap pages back to the OS (glibc ``malloc_trim``), so that memory a stage
        allocates shows as growth of the resident size even when an earlier stage freed it."""
        global _MALLOC_TRIM
        if _MALLOC_TRIM is None:
            try:
                import ctypes

                _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                _MALLOC_TRIM = False
        if _MALLOC_TRIM:
            _MALLOC_TRIM(0)

    def __enter__(self) -> "StageMeter":
        self._release_free_memory()
        self._stop = threading.Event()
        self._start_rss = self._rss_bytes()
        self._peak_rss = self._start_rss or 0
        self._start_maxrss = self._maxrss_bytes(resource.RUSAGE_SELF)
        self._start_children = self._maxrss_bytes(resource.RUSAGE_CHILDREN)
        if self._start_rss is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            rss = self._rss_bytes()
            if rss is not None and rss > self._peak_rss:
                self._peak_rss = rss

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._start_rss is not None:
            self._stop.set()
            self._thread.join()
            rss = self._rss_bytes() or 0
            grown = max(self._peak_rss, rss) - self._start_rss
        else:
            grown = 0
        # a new process high-water mark set during the stage counts even if no sample saw it
        maxrss = self._maxrss_bytes(resource.RUSAGE_SELF)
        if maxrss > self._start_maxrss:
            grown = max(grown, maxrss - (self._start_rss or self._start_maxrss))
        self.peak_mb = round(max(grown, 0) / 2**20, 3)
        children = self._maxrss_bytes(resource.RUSAGE_CHILDREN)
        self.child_peak_mb = round(children / 2**20, 3) if children > self._start_children else None


# ---------------------------------------------------------------------------- progress
class Progress:
    """Rich progress bars, one task per stage; ``callback(prefix)`` gives a ``ProgressFn``."""

    def __init__(self, console: Any = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._tasks: dict[str, Any] = {}
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=False,
            )

    def __enter__(self) -> "Progress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, stage: str, completed: float, total: float | None) -> None:
        if self._bar is None:
            return
        # "biunet train · epoch 3/12 · loss 0.21": one bar per text before the first " · ",
        # whose description shows the live details after it.
        key = stage.split(" · ", 1)[0]
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[key], completed=completed, total=total, description=stage)

    def callback(self, prefix: str) -> Callable[[str, float, "float | None"], None]:
        def report(stage: str, completed: float, total: float | None) -> None:
            self.update(f"{prefix} {stage}".strip(), completed, total)

        return report

    def print(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)


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
class ImputerPlan:
    """One imputer of the run: its class, options and the units it still has to do."""

    name: str
    cls: type[Imputer]
    options: Any
    card_options: dict[str, Any]
    distribution: str
    version: str


@dataclass
class RunOutcome:
    """What a run did. failures : imputer name -> one-line error (empty when all went well)."""

    run_dir: Path
    failures: dict[str, str]
    units_done: int
    units_skipped: int


# ---------------------------------------------------------------------------- the runner
class Runner:
    """Runs one ``RunSettings`` against a prepared dataset store (see the module docstring).

    store : an object with the ``DatasetStore`` interface (``name``, ``dataset_hash``,
        ``contig``, ``n_variants``, ``qc_report``, ``cohorts()``, ``read_split(split, cohort)``).
    card : the dataset card (for per-imputer defaults), or None.
    """

    def __init__(self, settings: RunSettings, store: Any, card: Any = None, *, progress: Progress | None = None,
                 logger: logging.Logger | None = None) -> None:
        validate_settings(settings)
        self.settings = settings
        self.store = store
        self.card = card
        self.progress = progress or Progress(enabled=False)
        self.logger = logger or logging.getLogger("impbench")
        self.device = resolve_device(settings.device)
        self.threads = settings.threads or os.cpu_count() or 1
        self.plans = plan_imputers(settings, card)
        run_name = settings.run_name or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(settings.out) / str(store.name) / run_name
        self._masks: dict[tuple[float, int], tuple[np.ndarray, str, int]] = {}

    # ------------------------------------------------------------------ public
    def run(self) -> RunOutcome:
        from impbench.bench import metrics

        settings = self.settings
        self.bin_edges = tuple(settings.bin_edges) if settings.bin_edges is not None else tuple(metrics.DEFAULT_BIN_EDGES)
        prepare_run_dir(self.run_dir)
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
        path = self.run_dir / "manifest.json"
        if not path.exists():
            return None
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ImpbenchError(f"{path}: cannot read the manifest of the run to resume ({exc})") from None
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
        from impbench.bench.masking import make_mask, mask_sha256, replicate_seed

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

    # ------------------------------------------------------------------ one imputer
    def units(self) -> list[tuple[float, int]]:
        return [(float(level), r) for level in self.settings.levels for r in range(self.settings.replicates)]

    def _marker_path(self, name: str, level: float, replicate: int) -> Path:
        return self.run_dir / "done" / f"{unit_name(name, level, replicate)}.json"

    def _vcf_path(self, name: str, level: float, replicate: int) -> Path:
        return self.run_dir / "vcf" / f"{unit_name(name, level, replicate)}.vcf.gz"

    def _is_done(self, name: str, level: float, replicate: int) -> bool:
        marker = self._marker_path(name, level, replicate)
        if not marker.exists():
            return False
        try:
            data = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        if data.get("format") != MARKER_FORMAT:
            return False
        if self.settings.write_vcf and not self._vcf_path(name, level, replicate).exists():
            return False
        return True

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
        work_dir = self.run_dir / "models" / plan.name
        work_dir.mkdir(parents=True, exist_ok=True)
        logger, log_handler = self._imputer_logger(plan.name, work_dir)
        ctx = RunContext(
            work_dir=work_dir, device=self.device, threads=self.threads, seed=self.settings.seed,
            nproc=self.settings.nproc, progress=self.progress.callback(plan.name),
            logger=logger, dataset=str(self.store.name),
            dataset_hash=str(self.store.dataset_hash), card_options=dict(plan.card_options),
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
        from impbench.bench import metrics

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
                rows[part].extend(_records(frame))
            self._scored += 1
            self.progress.update(score_task, self._scored, self._to_score)
        if self.settings.write_vcf:
            from impbench.io.vcf import write_vcf

            write_vcf(target, self._vcf_path(plan.name, level, replicate), imputation=imputation, masked=mask)
        unit = {
            "level": level, "replicate": replicate, "seconds": round(meter.seconds, 4),
            "peak_mb": meter.peak_mb, "child_peak_mb": meter.child_peak_mb,
            "n_covered": int(np.asarray(imputation.covered).sum()),
        }
        marker = {"format": MARKER_FORMAT, "imputer": plan.name, "mask_sha256": sha, "n_masked": n_masked,
                  **unit, **rows}
        write_json(self._marker_path(plan.name, level, replicate), marker)
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
        from impbench import __version__

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
        write_json(self.run_dir / "manifest.json", self.manifest)

    def _write_outputs(self) -> None:
        """Rewrite the CSVs from every done marker, then the manifest (each file atomically).

        Called after each imputer and at the end; the done markers are the record of truth, so
        an interrupted run's CSVs are rebuilt by the next run with the same ``--run``.
        """
        import pandas as pd

        tables: dict[str, list[dict]] = {"metrics": [], "per_sample": [], "confusion": []}
        done_dir = self.run_dir / "done"
        for marker in sorted(done_dir.glob("*.json")) if done_dir.exists() else []:
            try:
                data = json.loads(marker.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("format") != MARKER_FORMAT:
                continue
            for part in tables:
                tables[part].extend(data.get(part, []))
        columns = {"metrics": METRICS_COLUMNS, "per_sample": PER_SAMPLE_COLUMNS, "confusion": CONFUSION_COLUMNS}
        order = {name: i for i, name in enumerate(self.manifest["imputers"])}
        for part, rows in tables.items():
            rows.sort(key=lambda r: (order.get(r.get("imputer"), len(order)), r.get("level", 0), r.get("replicate", 0)))
            frame = pd.DataFrame(rows)
            ordered = list(columns[part]) + [c for c in frame.columns if c not in columns[part]]
            frame = frame.reindex(columns=ordered)
            atomic_write_text(self.run_dir / f"{part}.csv", frame.to_csv(index=False))
        self._write_manifest()


def _records(frame: Any) -> list[dict]:
    """A DataFrame's rows as JSON-able dicts (NaN -> None, numpy scalars -> Python)."""
    records = frame.to_dict(orient="records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, np.generic):
                value = record[key] = value.item()
            if isinstance(value, float) and value != value:
                record[key] = None
    return records


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


def package_versions() -> dict[str, str | None]:
    """Python and the main libraries' versions, read from package metadata (nothing imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("numpy", "pandas", "h5py", "cyvcf2", "msprime", "pluggy", "click", "rich", "scipy", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run folder, or ``ImpbenchError`` saying the output folder is not writable."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ImpbenchError(f"output folder {run_dir} is not writable ({exc.strerror or exc})") from None


def plan_imputers(settings: RunSettings, card: Any = None) -> list[ImputerPlan]:
    """Resolve imputer names and build their options (card defaults < options file < --opt)."""
    from impbench.imputers.registry import get_imputer, get_imputers

    registered = get_imputers()
    names = list(settings.imputers) if settings.imputers else list(registered)
    if not names:
        raise ImpbenchError("no imputer is registered; install a plugin or check IMPBENCH_LOAD_PLUGINS")
    seen = set()
    for name in names:
        if name in seen:
            raise ImpbenchError(f"--imputers: {name!r} is given twice")
        seen.add(name)
        get_imputer(name)  # raises listing the valid names
    unknown = sorted(set(settings.options) - set(registered))
    if unknown:
        raise ImpbenchError(
            f"options given for unknown imputer(s) {', '.join(unknown)}; available: {', '.join(registered)}"
        )
    card_tables = dict(getattr(card, "imputers", None) or {})
    plans = []
    for name in names:
        info = registered[name]
        card_values = dict(card_tables.get(name, {}) or {})
        fields = {f.name for f in dataclasses.fields(info.cls.Options)}
        values = {k: v for k, v in card_values.items() if k in fields}
        values.update(settings.options.get(name, {}))
        options = make_options(info.cls.Options, values, name)
        card_options: dict[str, Any] = {}
        for key in ("segment_length", "segment_overlap"):
            if getattr(card, key, None) is not None:
                card_options[key] = getattr(card, key)
        card_options.update(card_values)
        plans.append(ImputerPlan(name, info.cls, options, card_options, info.distribution, info.version))
    return plans


def run_benchmark(settings: RunSettings, *, store: Any = None, card: Any = None, console: Any = None,
                  show_progress: bool = True) -> RunOutcome:
    """Everything ``impbench run`` does: check the settings, prepare the dataset when needed, run.

    ``store``/``card`` may be given directly (tests, notebooks); otherwise the card named by
    ``settings.dataset`` is looked up (in ``settings.cards`` too) and prepared.
    """
    validate_settings(settings)
    plan_imputers(settings, None)  # unknown imputer or option: fail before any slow work
    resolve_device(settings.device)
    probe_dir = Path(settings.out)
    prepare_run_dir(probe_dir) if not probe_dir.exists() else _check_writable(probe_dir)
    with Progress(console=console, enabled=show_progress) as progress:
        if store is None:
            from impbench.data.cards import get_card, prepare

            card = get_card(settings.dataset, extra_dirs=list(settings.cards) or None)
            store = prepare(card, extra_dirs=list(settings.cards) or None,
                            progress=progress.callback(f"prepare {settings.dataset}"))
        runner = Runner(settings, store, card, progress=progress)
        return runner.run()


def _check_writable(folder: Path) -> None:
    if not folder.is_dir():
        raise ImpbenchError(f"output folder {folder} is not a folder")
    prepare_run_dir(folder)
