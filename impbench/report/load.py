"""Read a results folder (format: ``docs/results.md``) into memory for reporting.

Only ``manifest.json`` is required: a run that failed before scoring anything, or that is still
running, has no ``metrics.csv`` yet and its report says so. The manifest is read through its
typed record (``impbench.bench.records.Manifest``): every field is checked there, and a field a
manifest lacks has the record's default.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from impbench.bench.records import ImputerRecord, Manifest
from impbench.bench.results import COLUMNS, NUMERIC, RunFolder
from impbench.scoring.classes import DEFAULT_MAF_CLASSES
from impbench.errors import ImpbenchError

OVERALL = "overall"
ALL = "all"

@dataclass
class RunResults:
    """One run folder, loaded.

    metrics : DataFrame with the metrics columns of ``impbench.bench.results.COLUMNS`` (pooled
        over replicates; ``value``, ``ci_low``, ``ci_high`` float, NaN where undefined).
    pairs, replicates, per_sample, confusion, calibration, variant_quality : DataFrames with
        their columns, or None where the file is absent.
    imputers : imputer names in report order (manifest order, then any only in the CSVs).
    record : the typed manifest; ``manifest`` is its JSON object (what the file holds, checked).
    classes : labels of the MAF classes (``bin`` values ranked by the verdict), in order.
    """

    run_dir: Path
    record: Manifest
    metrics: pd.DataFrame
    per_sample: pd.DataFrame | None
    confusion: pd.DataFrame | None
    imputers: list[str]
    pairs: pd.DataFrame | None = None
    replicates: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    variant_quality: pd.DataFrame | None = None
    classes: tuple[str, ...] = tuple(label for label, _, _ in DEFAULT_MAF_CLASSES)

    @functools.cached_property
    def manifest(self) -> dict:
        """The manifest as its JSON object (``Manifest.to_json``)."""
        return self.record.to_json()

    @property
    def cohorts(self) -> list[str]:
        """The test cohorts with rows of their own in metrics.csv (not ``all``), sorted."""
        return sorted(c for c in self.metrics["cohort"].dropna().unique() if c != ALL)

    @property
    def bins(self) -> list[str]:
        """MAF bin labels (not ``overall``, not a class), ordered by ``bin_lo``."""
        frame = self.metrics[~self.metrics["bin"].isin((OVERALL, *self.classes))]
        return list(frame[["bin", "bin_lo"]].drop_duplicates("bin").sort_values("bin_lo", kind="stable")["bin"])

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def dataset_name(self) -> str:
        return self.record.dataset.name or self.run_dir.parent.name

    @property
    def label(self) -> str:
        """Short label for plots: ``dataset/run``, plus the training cohort when one was set."""
        return f"{self.dataset_name}/{self.name} (trained on {self.record.dataset.train_cohort or 'all cohorts'})"

    @property
    def scheme(self) -> str:
        """The masking scheme that produced every table of the run."""
        return self.record.settings.scheme

    @property
    def maf_source(self) -> str:
        return self.record.maf_source or "not stated in manifest"

    def imputer_record(self, imputer: str) -> ImputerRecord | None:
        """The manifest's record of ``imputer``; None when the manifest does not list it."""
        return self.record.imputers.get(imputer)

    def row_maf_source(self, cohort: str = ALL) -> str:
        """Which MAF bins and orients the rows of ``cohort``: the optional metrics.csv column
        ``maf_source`` (cohort rows may use the cohort's own training MAF), else the manifest's
        ``cohort_maf_source`` for a cohort, else ``maf_source``."""
        if "maf_source" in self.metrics.columns:
            values = self.metrics.loc[self.metrics["cohort"] == cohort, "maf_source"].dropna().astype(str)
            values = [v for v in pd.unique(values) if v.strip()]
            if values:
                return ", ".join(values)
        if cohort != ALL and self.manifest.get("cohort_maf_source"):
            return str(self.manifest["cohort_maf_source"])
        return self.maf_source

    def imputer_info(self, imputer: str) -> dict:
        """The manifest's record of ``imputer`` as its JSON object ({} when not listed)."""
        record = self.imputer_record(imputer)
        return {} if record is None else record.to_json()

    def status(self, imputer: str) -> str:
        """The imputer's status in the manifest, ``unknown`` when the manifest does not list it."""
        record = self.imputer_record(imputer)
        return "unknown" if record is None else record.status


def load_run(run_dir: str | Path, classes=None) -> RunResults:
    """Load a run folder; ``ImpbenchError`` if it is missing or not a run folder.

    classes : labels of the MAF classes the verdict ranks (default ``DEFAULT_MAF_CLASSES``' labels);
        those absent from metrics.csv are dropped.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ImpbenchError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise ImpbenchError(f"{run_dir}: not a folder (expected a run folder from `impbench run`)")
    folder = RunFolder(run_dir)
    manifest = folder.read_manifest()
    metrics = folder.read_table("metrics")
    if metrics is None:
        metrics = pd.DataFrame({c: pd.Series(dtype=float if c in NUMERIC["metrics"] else object)
                                for c in COLUMNS["metrics"]})
    metrics["cohort"] = metrics["cohort"].fillna(ALL).replace("", ALL)
    per_sample = folder.read_table("per_sample")
    if per_sample is not None:
        per_sample["cohort"] = per_sample["cohort"].fillna("").replace("", "unknown")
    confusion = folder.read_table("confusion")
    pairs = folder.read_table("pairs")
    if pairs is not None:
        pairs["cohort"] = pairs["cohort"].fillna(ALL).replace("", ALL)
    wanted = tuple(label for label, _, _ in DEFAULT_MAF_CLASSES) if classes is None else tuple(classes)
    present = set(metrics["bin"])

    imputers = list(manifest.imputers)
    for frame in (metrics, per_sample, confusion):
        if frame is not None:
            imputers += [name for name in pd.unique(frame["imputer"]) if name not in imputers]
    return RunResults(run_dir, manifest, metrics, per_sample, confusion, imputers, pairs=pairs,
                      replicates=folder.read_table("replicates"), calibration=folder.read_table("calibration"),
                      variant_quality=folder.read_table("variant_quality"),
                      classes=tuple(c for c in wanted if c in present))
