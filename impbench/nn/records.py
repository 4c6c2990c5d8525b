"""The records of a training: the per-epoch metrics and timing rows, their CSV files, the
outcome of one epoch, and ``TrainResult`` (what ``train_summary.json`` holds)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from typing import Any

METRICS_CSV = "train_metrics.csv"
TIMING_CSV = "train_timing.csv"
SUMMARY_JSON = "train_summary.json"
#: ``train_metrics.csv``: what was learned, the same bytes on any machine load.
METRIC_COLUMNS = ("epoch", "steps", "lr", "mask_rate", "train_loss", "val_r2", "val_concordance")
#: ``train_timing.csv``: wall-clock measurements of the same epochs.
TIMING_COLUMNS = ("epoch", "seconds", "train_seconds_total", "eval_seconds", "segments_per_s")
#: Why a training stopped: the validation R² stopped improving for ``patience`` epochs, the
#: epoch budget was spent, or the opt-in wall-clock cap (``train_seconds``) fired.
STOP_CONVERGED = "converged"
STOP_EPOCHS = "epochs"
STOP_TIME = "time"



def rounded(value: float, digits: int = 5) -> float | None:
    """``value`` rounded, None for NaN (JSON-able)."""
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


@dataclass
class TrainResult:
    """What a finished training reports (epochs are 1-based).

    history : per epoch, the ``METRIC_COLUMNS``; timing : per epoch, the ``TIMING_COLUMNS``.
    batch_size : the global batch; rank_batch_size : rows per step on each rank.
    """

    epochs_run: int
    best_epoch: int
    best_val_r2: float
    best_val_concordance: float
    stop_reason: str
    resumed_from: int | None
    world_size: int
    precision: str
    replica_digests: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    timing: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds_total: float = 0.0
    batch_size: int = 0
    rank_batch_size: int = 0
    steps: int = 0

    @property
    def converged(self) -> bool:
        """True when training stopped because the validation R² stopped improving."""
        return self.stop_reason == STOP_CONVERGED

    def validation_curve(self) -> list[dict[str, float]]:
        """Per epoch: optimiser steps so far, cumulative training seconds, validation R² and
        concordance."""
        seconds = {int(t["epoch"]): float(t["train_seconds_total"]) for t in self.timing}
        return [
            {"epoch": int(r["epoch"]), "steps": int(r.get("steps", 0)), "train_seconds": round(seconds.get(int(r["epoch"]), math.nan), 3),
             "val_r2": rounded(r["val_r2"]), "val_concordance": rounded(r["val_concordance"])}
            for r in self.history
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochOutcome:
    """One epoch's optimiser steps: ``lr`` and ``mask_rate`` at its start, mean ``train_loss``
    over all ranks' rows, ``rows`` trained (all ranks), ``steps`` taken, wall ``seconds``, and
    whether the wall-clock cap cut it (decided on every rank alike)."""

    lr: float
    mask_rate: float
    train_loss: float
    rows: float
    steps: int
    seconds: float
    out_of_time: bool



def csv_text(columns: tuple[str, ...], rows: list[dict[str, float]]) -> str:
    """Rows as CSV text (``repr`` of floats: the same bytes for the same values)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return buffer.getvalue()
