"""Scoring one unit (imputer × level × replicate): every number the run folder keeps of it.

``score_unit`` is a pure function of the truth, the mask and the imputer's answer: it returns
the rows the done marker holds (per-replicate scores, per-sample R², confusion counts,
reliability and per-variant quality) and the per-sample sufficient statistics the bootstrap
resamples. The ``paper`` protocol scores the tool's raw output (``Imputation.raw_calls``) at
every cell, as the published evaluation did; ``standard`` scores ``calls`` at masked cells.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from impbench.scoring import metrics
from impbench.scoring.calibration import estimated_variant_dr2, reliability_table
from impbench.scoring.pooled import SampleStats
from impbench.bench.results import records
from impbench.genotypes import GenotypeMatrix
from impbench.imputers.base import Imputation


@dataclass
class UnitScores:
    """What one unit contributes. rows : table name -> list of JSON-able row dicts (the done
    marker's ``replicates``, ``per_sample``, ``confusion``, ``calibration``,
    ``variant_quality``); stats : protocol -> ``SampleStats``."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    stats: dict[str, SampleStats] = field(default_factory=dict)


def paper_view(imputation: Imputation) -> Imputation:
    """The imputation as the ``paper`` protocol scores it: the raw calls where given."""
    if imputation.raw_calls is None:
        return imputation
    return dataclasses.replace(imputation, calls=np.asarray(imputation.raw_calls, dtype=np.uint8))


def score_unit(
    truth: GenotypeMatrix,
    imputation: Imputation,
    mask: np.ndarray,
    train_alt_freq: np.ndarray,
    *,
    protocols: Sequence[str],
    bin_edges: Sequence[float],
    min_variant_cells: int,
    keys: dict[str, Any],
    variant_quality: bool,
) -> UnitScores:
    """Score ``imputation`` of ``truth`` masked by ``mask`` (bool (n_samples, n_variants)).

    keys : columns every row gets (imputer, level, replicate). variant_quality : add the
    per-variant rows (true r², estimated DR2, the imputer's own quality)."""
    out = UnitScores(rows={"replicates": [], "per_sample": [], "confusion": [], "calibration": [],
                           "variant_quality": []})
    for protocol in protocols:
        answer = imputation if protocol == "standard" else paper_view(imputation)
        scores = metrics.score(truth.codes, answer, mask, train_alt_freq=train_alt_freq, protocol=protocol,
                               bin_edges=bin_edges, min_variant_cells=min_variant_cells)
        out.stats[protocol] = scores.sample_stats
        out.rows["replicates"] += records(scores.metrics.assign(**keys))
        out.rows["confusion"] += records(scores.confusion.assign(**keys))
        if protocol == "standard":
            per_sample = scores.per_sample.copy()
            index = per_sample.pop("sample_index").to_numpy(dtype=np.int64)
            per_sample["sample_id"] = truth.sample_ids[index]
            per_sample["cohort"] = truth.cohort[index]
            out.rows["per_sample"] += records(per_sample.assign(**keys))
            table = reliability_table(truth.codes, imputation, mask)
            if table is not None:
                out.rows["calibration"] += records(table.assign(**keys))
            if variant_quality:
                out.rows["variant_quality"] += _variant_quality(truth, imputation, mask, scores, train_alt_freq,
                                                                bin_edges, keys)
    return out


def _variant_quality(truth, imputation, mask, scores, train_alt_freq, bin_edges, keys) -> list[dict]:
    import pandas as pd

    freq = np.asarray(train_alt_freq, dtype=np.float64)
    maf = np.minimum(freq, 1.0 - freq)
    labels = metrics.bin_labels(bin_edges)
    bins = metrics.maf_bins(maf, bin_edges)
    reported = imputation.quality
    frame = pd.DataFrame({
        "position": truth.positions,
        "maf": maf,
        "bin": np.where(bins >= 0, np.asarray(labels, dtype=object)[np.maximum(bins, 0)], ""),
        "n_genotypes": scores.variant_n_genotypes,
        "true_r2": scores.variant_r2,
        "estimated_dr2": estimated_variant_dr2(imputation, mask),
        "reported_quality": np.full(truth.n_variants, np.nan) if reported is None else np.asarray(reported, float),
    })
    frame = frame[np.asarray(imputation.covered, dtype=bool) & (scores.variant_n_genotypes > 0)]
    return records(frame.assign(**keys))
