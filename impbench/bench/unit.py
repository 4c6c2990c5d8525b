"""Scoring one unit (imputer × level × replicate): every number the run folder keeps of it.

``score_unit`` is a pure function of the truth, the mask and the imputer's answer: it returns
the rows the done marker holds (per-replicate scores, per-sample R², confusion counts,
reliability and per-variant quality) and the per-sample sufficient statistics the bootstrap
resamples. The ``paper`` protocol scores the tool's raw output (``Imputation.raw_calls``) at
every cell, as the published evaluation did; ``standard`` scores ``calls`` at masked cells.

Statistics are kept per (test sample, genomic block, MAF bin) (``blocks``: the two-way
bootstrap's second unit). Besides the statistics binned and oriented by the pooled training
MAF (key ``protocol``), each cohort's test samples are scored again binned and oriented by that
cohort's own training-split MAF (key ``protocol@cohort``, ``cohort_stats_key``) when
``cohort_alt_freq`` is given; variants monomorphic in the cohort's training samples are in no
MAF bin there (they count in that cohort's "overall" only).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

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
    ``variant_quality``); stats : protocol (pooled MAF) or ``protocol@cohort`` (the cohort's own
    MAF, ``cohort_stats_key``) -> ``SampleStats``."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    stats: dict[str, SampleStats] = field(default_factory=dict)


def cohort_stats_key(protocol: str, cohort: str) -> str:
    """The ``UnitScores.stats`` key of a cohort's statistics under its own training MAF."""
    return f"{protocol}@{cohort}"


def split_stats_key(key: str) -> tuple[str, str | None]:
    """``"standard@YRI"`` -> ("standard", "YRI"); ``"standard"`` -> ("standard", None)."""
    protocol, _, cohort = key.partition("@")
    return protocol, (cohort or None)


def collect_stats(folder: Any, imputers: Sequence[str], units: Sequence[tuple[float, int]]) -> tuple[dict, dict]:
    """The finished units' statistics of a run folder (``RunFolder``): ``(unit_stats,
    cohort_stats)``, (imputer, level, protocol) -> {replicate: SampleStats} (pooled MAF) and
    (imputer, level, protocol, cohort) -> {replicate: SampleStats} (the cohort's own MAF), as
    ``impbench.scoring.aggregate.aggregate`` takes them."""
    unit_stats: dict = {}
    cohort_stats: dict = {}
    for name in imputers:
        for level, replicate in units:
            if folder.read_marker(name, level, replicate) is None:
                continue
            for key, stats in (folder.read_stats(name, level, replicate) or {}).items():
                protocol, cohort = split_stats_key(key)
                target = unit_stats.setdefault((name, level, protocol), {}) if cohort is None else \
                    cohort_stats.setdefault((name, level, protocol, cohort), {})
                target[replicate] = stats
    return unit_stats, cohort_stats


def cohort_maf_frequency(alt_freq: np.ndarray) -> np.ndarray:
    """A cohort's training ALT frequency as its scoring uses it: NaN (no MAF bin, no flip)
    where the variant is monomorphic in the cohort's training samples (frequency 0 or 1)."""
    freq = np.asarray(alt_freq, dtype=np.float64)
    return np.where((freq > 0) & (freq < 1), freq, np.nan)


def _rows(imputation: Imputation, rows: np.ndarray) -> Imputation:
    """The imputation of some samples (rows) only."""
    take = {name: (None if getattr(imputation, name) is None else np.asarray(getattr(imputation, name))[rows])
            for name in ("calls", "dosage", "probs", "raw_calls")}
    return dataclasses.replace(imputation, **take)


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
    blocks: np.ndarray | None = None,
    cohort_alt_freq: Mapping[str, np.ndarray] | None = None,
) -> UnitScores:
    """Score ``imputation`` of ``truth`` masked by ``mask`` (bool (n_samples, n_variants)).

    keys : columns every row gets (imputer, level, replicate). variant_quality : add the
    per-variant rows (true r², estimated DR2, the imputer's own quality). blocks : int64
    (n_variants,) genomic block of each variant (None: one block). cohort_alt_freq : cohort ->
    float64 (n_variants,) ALT frequency of that cohort's training samples; the cohorts of
    ``truth`` found there get statistics of their own (module docstring)."""
    out = UnitScores(rows={"replicates": [], "per_sample": [], "confusion": [], "calibration": [],
                           "variant_quality": []})
    for protocol in protocols:
        answer = imputation if protocol == "standard" else paper_view(imputation)
        scores = metrics.score(truth.codes, answer, mask, train_alt_freq=train_alt_freq, protocol=protocol,
                               bin_edges=bin_edges, min_variant_cells=min_variant_cells, blocks=blocks)
        out.stats[protocol] = scores.sample_stats
        cohort_of = np.asarray(truth.cohort).astype(str)
        cohorts = np.unique(cohort_of)
        for cohort in cohorts if cohort_alt_freq else ():
            if cohort not in cohort_alt_freq:
                continue
            rows = np.flatnonzero(cohort_of == cohort)
            own = metrics.score(truth.codes[rows], _rows(answer, rows), mask[rows],
                                train_alt_freq=cohort_maf_frequency(cohort_alt_freq[cohort]), protocol=protocol,
                                bin_edges=bin_edges, min_variant_cells=min_variant_cells, blocks=blocks)
            out.stats[cohort_stats_key(protocol, cohort)] = own.sample_stats
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
