"""Read a results folder (format: ``docs/results.md``) into memory for reporting.

Only ``manifest.json`` is required: a run that failed before scoring anything, or that is still
running, has no ``metrics.csv`` yet and its report says so. Optional manifest fields are read
defensively (``.get``), since a partial run may not have written all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from impbench.bench.results import COLUMNS, RunFolder
from impbench.errors import ImpbenchError

@dataclass
class RunResults:
    """One run folder, loaded.

    metrics : DataFrame with the metrics columns of ``impbench.bench.results.COLUMNS`` (``value`` float, NaN where undefined).
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


def load_run(run_dir: str | Path) -> RunResults:
    """Load a run folder; ``ImpbenchError`` if it is missing or not a run folder."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ImpbenchError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise ImpbenchError(f"{run_dir}: not a folder (expected a run folder from `impbench run`)")
    folder = RunFolder(run_dir)
    manifest = folder.read_manifest()
    metrics = folder.read_table("metrics")
    if metrics is None:
        metrics = pd.DataFrame({c: pd.Series(dtype=float if c in ("level", "value") else object)
                                for c in COLUMNS["metrics"]})
    per_sample = folder.read_table("per_sample")
    if per_sample is not None:
        per_sample["cohort"] = per_sample["cohort"].fillna("").replace("", "unknown")
    confusion = folder.read_table("confusion")

    imputers = list((manifest.get("imputers") or {}).keys())
    for frame in (metrics, per_sample, confusion):
        if frame is not None:
            imputers += [name for name in pd.unique(frame["imputer"]) if name not in imputers]
    return RunResults(run_dir, manifest, metrics, per_sample, confusion, imputers)
