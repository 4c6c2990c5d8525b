"""Read a results folder (format: ``docs/results.md``) into memory for reporting.

Only ``manifest.json`` is required: a run that failed before scoring anything, or that is still
running, has no ``metrics.csv`` yet and its report says so. Optional manifest fields are read
defensively (``.get``), since a partial run may not have written all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from impbench.errors import ImpbenchError

METRICS_COLUMNS = (
    "imputer", "level", "replicate", "protocol", "bin", "bin_lo", "bin_hi",
    "metric", "value", "n_variants", "n_genotypes",
)
PER_SAMPLE_COLUMNS = ("imputer", "level", "replicate", "sample_id", "cohort", "r2", "n_genotypes")
CONFUSION_COLUMNS = ("imputer", "level", "replicate", "protocol", "kind", "truth", "pred", "count")

_DTYPES = {
    "imputer": str, "protocol": str, "bin": str, "metric": str, "sample_id": str,
    "cohort": str, "kind": str,
}


@dataclass
class RunResults:
    """One run folder, loaded.

    metrics : DataFrame with ``METRICS_COLUMNS`` (``value`` float, NaN where undefined).
    per_sample, confusion : DataFrames with their columns, or None where the file is absent.
    imputers : imputer names in report order (manifest order, then any only in the CSVs).
    """

    run_dir: Path
    manifest: dict
    metrics: pd.DataFrame
    per_sample: pd.DataFrame | None
    confusion: pd.DataFrame | None
    imputers: list[str]

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def dataset_name(self) -> str:
        return str((self.manifest.get("dataset") or {}).get("name") or self.run_dir.parent.name)

    @property
    def label(self) -> str:
        """Short label for plots: ``dataset/run``, plus the training cohort when one was set."""
        dataset = self.manifest.get("dataset") or {}
        label = f"{self.dataset_name}/{self.name}"
        if "train_cohort" in dataset:
            label += f" (trained on {dataset['train_cohort'] or 'all cohorts'})"
        return label

    @property
    def maf_source(self) -> str:
        return str(self.manifest.get("maf_source") or "not stated in manifest")

    def imputer_info(self, imputer: str) -> dict:
        return (self.manifest.get("imputers") or {}).get(imputer) or {}

    def status(self, imputer: str) -> str:
        return str(self.imputer_info(imputer).get("status") or "unknown")


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=_DTYPES, keep_default_na=False, na_values=["", "nan", "NaN"])
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ImpbenchError(f"{path}: cannot parse as CSV ({exc})") from exc
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=list(columns))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ImpbenchError(f"{path}: missing column(s) {', '.join(missing)} (see docs/results.md)")
    return frame


def _numeric(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    for column in columns:
        try:
            frame[column] = pd.to_numeric(frame[column])
        except (ValueError, TypeError) as exc:
            raise ImpbenchError(f"{path}: column {column!r} is not numeric ({exc})") from exc
    return frame


def load_run(run_dir: str | Path) -> RunResults:
    """Load a run folder; ``ImpbenchError`` if it is missing or not a run folder."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ImpbenchError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise ImpbenchError(f"{run_dir}: not a folder (expected a run folder from `impbench run`)")
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ImpbenchError(f"{run_dir}: not a run folder (no manifest.json; see docs/results.md)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImpbenchError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ImpbenchError(f"{manifest_path}: expected a JSON object at the top level")

    metrics_path = run_dir / "metrics.csv"
    if metrics_path.is_file():
        metrics = _read_csv(metrics_path, METRICS_COLUMNS)
        metrics = _numeric(metrics, metrics_path,
                           ("level", "replicate", "bin_lo", "bin_hi", "value", "n_variants", "n_genotypes"))
    else:
        metrics = pd.DataFrame({c: pd.Series(dtype=float if c in ("level", "value") else object)
                                for c in METRICS_COLUMNS})

    per_sample = None
    if (run_dir / "per_sample.csv").is_file():
        per_sample = _read_csv(run_dir / "per_sample.csv", PER_SAMPLE_COLUMNS)
        per_sample = _numeric(per_sample, run_dir / "per_sample.csv", ("level", "replicate", "r2", "n_genotypes"))
        per_sample["cohort"] = per_sample["cohort"].fillna("").replace("", "unknown")

    confusion = None
    if (run_dir / "confusion.csv").is_file():
        confusion = _read_csv(run_dir / "confusion.csv", CONFUSION_COLUMNS)
        confusion = _numeric(confusion, run_dir / "confusion.csv", ("level", "replicate", "truth", "pred", "count"))

    imputers = list((manifest.get("imputers") or {}).keys())
    for frame in (metrics, per_sample, confusion):
        if frame is not None:
            imputers += [name for name in pd.unique(frame["imputer"]) if name not in imputers]
    return RunResults(run_dir, manifest, metrics, per_sample, confusion, imputers)
