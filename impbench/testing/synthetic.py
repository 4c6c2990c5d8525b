"""A deterministic synthetic run folder in the ``docs/results.md`` format.

For tests and for looking at a report without running imputers. The numbers are plausible but
made up (nothing here scores anything): an imputer's scores rise with its index in
``imputers``, with MAF, and fall with the masking level and from cohort to cohort; CIs narrow
with the number of scored cells; paired differences are the differences of the written values
with CIs narrower than the two intervals (paired noise cancels). Every table is written
through ``RunFolder`` so no column list exists twice.

With ``headline=True`` (the default) it also writes what the scoring of issue 22 adds:
``r2_bin_mean`` (the mean of the per-bin ``r2`` over the bins of each class and overall, with
CIs and paired differences), ``n_eff`` (test samples x ``r2_bin_mean``, per class),
``soft_dosage_fraction`` (overall bin), ``n_variant_r2`` (variants with a defined per-variant
r²), and a ``maf_source`` column saying which MAF each row uses (cohort rows: the cohort's own
training MAF). ``headline=False`` writes a folder as older runs have it (none of these).
An imputer named ``allele-freq`` scores like the frequency-only floor: ~0.01 R² inside every
bin, 0.34 pooled overall. The ``paper`` protocol's values are inflated as observed cells make
them (1 - level x (1 - standard)).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from impbench.scoring.metrics import bin_labels
from impbench.bench.records import Manifest
from impbench.bench.results import COLUMNS, RunFolder
from impbench.scoring.classes import DEFAULT_MAF_CLASSES

DEFAULT_EDGES = (0, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
#: Pooled standard metrics (they have CIs and paired differences).
POOLED_STANDARD = ("r2", "gt_r2", "concordance", "precision", "recall", "f1", "iqs", "nrd", "error_hom_major",
                   "error_het", "error_hom_minor", "phased_accuracy")
#: Standard metrics without a CI (means over replicates).
UNPOOLED_STANDARD = ("mean_variant_r2", "coverage")
PAPER_METRICS = ("accuracy", "precision", "recall", "f1", "r2")
LOWER_IS_BETTER = ("nrd", "error_hom_major", "error_het", "error_hom_minor")
FLOOR = "allele-freq"
#: Default soft-dosage fraction per imputer name (others: 0.6).
SOFT_FRACTIONS = {"major": 0.0, "beagle": 0.0, "allele-freq": 1.0}
COHORT_MAF_SOURCE = "the cohort's own training split"


def _value(metric: str, base: float) -> float:
    if metric in LOWER_IS_BETTER:
        return float(np.clip((1 - base) * (0.6 if metric == "error_hom_major" else 1.0), 0, 1))
    return float(np.clip(base * (0.98 if metric in ("precision", "recall", "f1") else 1.0), 0, 1))


def write_synthetic_run(run_dir: str | Path, imputers=("major", "knn"), levels=(0.05, 0.15), replicates: int = 3,
                        protocols=("standard",), bin_edges=DEFAULT_EDGES, failed: dict[str, int] | None = None,
                        n_samples: int = 12, cohorts=("YRI", "CEU", "CHB"), seed: int = 0,
                        classes=DEFAULT_MAF_CLASSES, stop_reason: dict[str, str] | None = None,
                        coverage: dict[str, float] | None = None, mask_warnings=(),
                        with_probs=None, reported_quality=(), tied=(), headline: bool = True,
                        soft: dict[str, float] | None = None, monomorphic: int = 6036,
                        sample_prefix: str = "tsk_", scheme: str = "uniform") -> Path:
    """Write every table of a run folder and its manifest under ``run_dir``; returns ``run_dir``.

    failed : imputer -> number of (level, replicate) units it finished before failing (manifest
        status ``failed``; only those units have results).
    classes : (label, lo, hi) MAF classes written as extra ``bin`` rows (``DEFAULT_MAF_CLASSES``).
    stop_reason : imputer -> ``epochs``/``time``/``converged`` (manifest ``info.stop_reason``).
    coverage : imputer -> fraction of variants it covered (default 1).
    mask_warnings : levels whose masks carry an achieved-rate warning.
    with_probs : imputers that return probabilities (calibration, DR2); default all but ``major``.
    reported_quality : imputers that report their own per-variant quality (Beagle's DR2).
    tied : (a, b) pairs of imputers given nearly the same quality (b 0.004 below a), so that their
        paired CIs cover 0 where cells are few.
    headline : write the metrics of issue 22 (see the module docstring); False: an older run.
    soft : imputer -> ``soft_dosage_fraction`` (default ``SOFT_FRACTIONS``, else 0.6).
    monomorphic : the manifest's QC count of monomorphic variants dropped. sample_prefix : test sample
        ids are the prefix and a number. scheme : the masking scheme the manifest records.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    failed, stop_reason, coverage = dict(failed or {}), dict(stop_reason or {}), dict(coverage or {})
    with_probs = [n for n in imputers if n != "major"] if with_probs is None else list(with_probs)
    rng = np.random.default_rng(seed)
    edges = np.asarray(bin_edges, dtype=float)
    n_variants_bin = np.maximum(5, (4000 * np.exp(-np.arange(len(edges) - 1) * 0.45)).astype(int))
    n_variants = int(n_variants_bin.sum())
    mids = (edges[:-1] + edges[1:]) / 2
    labels = bin_labels(edges)
    # Groups scored: overall, each bin, each class (its bins pooled).
    groups = [("overall", 0.0, 0.5, n_variants, 0.1)]
    groups += [(labels[b], edges[b], edges[b + 1], int(n_variants_bin[b]), mids[b]) for b in range(len(mids))]
    for label, lo, hi in classes:
        inside = (edges[:-1] >= lo - 1e-12) & (edges[1:] <= hi + 1e-12)
        n_in = int(n_variants_bin[inside].sum())
        groups.append((label, lo, hi, n_in, float(np.average(mids[inside], weights=n_variants_bin[inside]))
                       if n_in else (lo + hi) / 2))
    units = [(level, rep) for level in levels for rep in range(replicates)]
    sample_ids = [f"{sample_prefix}{i}" for i in range(n_samples)]
    sample_cohort = [cohorts[i % len(cohorts)] for i in range(n_samples)]
    cohort_share = {c: sample_cohort.count(c) / n_samples for c in cohorts}
    scopes = [("all", 1.0, 0.0)] + ([(c, cohort_share[c], 0.03 * i) for i, c in enumerate(cohorts)]
                                    if len(cohorts) > 1 else [])
    quality = {name: 0.5 + 0.45 * np.sqrt((i + 1) / len(imputers)) for i, name in enumerate(imputers)}
    for a, b in tied:
        quality[b] = quality[a] - 0.004
    done = {name: units[:failed.get(name, len(units))] for name in imputers}

    metric_rows, replicate_rows, sample_rows, confusion_rows = [], [], [], []
    calibration_rows, quality_rows, manifest_imputers = [], [], {}
    # values[(imputer, level, protocol, cohort, bin, metric)] = (value, half width)
    values: dict[tuple, tuple[float, float]] = {}
    for index, name in enumerate(imputers):
        covered = coverage.get(name, 1.0)
        for level in levels:
            reps = [r for lv, r in done[name] if lv == level]
            if not reps:
                continue
            for protocol in protocols:
                names = POOLED_STANDARD + UNPOOLED_STANDARD if protocol == "standard" else PAPER_METRICS
                for cohort, share, offset in scopes:
                    for label, lo, hi, n_var, maf in groups:
                        n_geno = int(round(n_var * n_samples * share * level * len(reps)))
                        base = quality[name] * (1 - 0.5 * np.exp(-maf * 30)) * (1 - 0.2 * level) - offset
                        if protocol == "paper":
                            base = 1 - level * (1 - base)
                        half = float(np.clip(3.0 / np.sqrt(max(n_geno, 1)), 0.002, 0.25))
                        for metric in names:
                            if metric == "coverage":
                                value, ci = covered, False
                            else:
                                value = _value(metric, base + rng.normal(0, 0.004))
                                ci = metric not in UNPOOLED_STANDARD
                            if name == FLOOR and metric == "r2" and protocol == "standard":
                                value = {"overall": 0.343}.get(label, 0.008 if label in labels else 0.12)
                                value = float(np.clip(value + rng.normal(0, 0.002), 0, 1))
                            values[(name, level, protocol, cohort, label, metric)] = (value, half if ci else np.nan)
                            metric_rows.append((name, level, protocol, cohort, label, lo, hi, metric, round(value, 6),
                                                round(value - half, 6) if ci else np.nan,
                                                round(value + half, 6) if ci else np.nan, len(reps),
                                                int(n_var * covered), n_geno))
                            if cohort == "all":
                                for rep in reps:
                                    replicate_rows.append((name, level, rep, protocol, label, lo, hi, metric,
                                                           round(float(np.clip(value + rng.normal(0, 0.01), 0, 1)), 6),
                                                           int(n_var * covered), n_geno // len(reps)))
                        if protocol == "standard" and cohort == "all" and label == "overall":
                            ece = 0.01 + 0.05 * (1 - quality[name]) if name in with_probs else np.nan
                            metric_rows.append((name, level, protocol, cohort, label, lo, hi, "ece", ece, np.nan,
                                                np.nan, len(reps), n_var, n_geno))
            if name in with_probs:
                for b in range(10):
                    confidence = 0.05 * (2 * b + 1)
                    calibration_rows.append((name, level, b / 10, (b + 1) / 10, int(20 * np.exp(b * 0.5) * (index + 1)),
                                             confidence, float(np.clip(confidence - 0.15 * (1 - quality[name])
                                                                       * (1 - confidence), 0, 1))))
                maf = rng.uniform(0.001, 0.5, size=60)
                true_r2 = np.clip(quality[name] * (1 - 0.5 * np.exp(-maf * 30)) + rng.normal(0, 0.12, 60), 0, 1)
                estimated = np.clip(true_r2 + rng.normal(0.03, 0.08, 60), 0, 1)
                reported = (np.clip(true_r2 + rng.normal(0, 0.05, 60), 0, 1) if name in reported_quality
                            else np.full(60, np.nan))
                bins = np.clip(np.searchsorted(edges, maf, side="right") - 1, 0, len(labels) - 1)
                for v in range(60):
                    quality_rows.append((name, level, 0, 1000 + 97 * v, round(float(maf[v]), 5), labels[bins[v]],
                                         int(rng.integers(2, 30)), round(float(true_r2[v]), 5),
                                         round(float(estimated[v]), 5), round(float(reported[v]), 5)))
        for level, rep in done[name]:
            for sid, cohort in zip(sample_ids, sample_cohort):
                r2 = quality[name] - 0.05 * cohorts.index(cohort) + rng.normal(0, 0.03)
                sample_rows.append((name, level, rep, sid, cohort, round(float(np.clip(r2, 0, 1)), 6),
                                    int(100 * level * 10)))
            for kind, codes in (("phased", (1, 2, 3, 4)), ("dosage", (0, 1, 2))):
                for truth in codes:
                    total = int(rng.integers(50, 400))
                    right = int(total * quality[name])
                    wrong = rng.multinomial(total - right, [1 / (len(codes) - 1)] * (len(codes) - 1))
                    others = [c for c in codes if c != truth]
                    confusion_rows.append((name, level, rep, "standard", kind, truth, truth, right))
                    confusion_rows += [(name, level, rep, "standard", kind, truth, o, int(w)) for o, w in zip(others, wrong)]
        info = {"stop_reason": stop_reason[name]} if name in stop_reason else {}
        manifest_imputers[name] = {
            "distribution": "impbench", "version": "0.1.0", "reference_free": True, "options": {},
            "status": "failed" if name in failed else "ok",
            "error": f"RuntimeError: synthetic failure of {name} after {len(done[name])} unit(s)" if name in failed else None,
            "fit_seconds": round(1.0 + 3 * index, 3), "fit_peak_mb": 100.0 + 50 * index, "fit_child_peak_mb": None,
            "impute": [{"level": level, "replicate": rep, "seconds": round(0.5 * (index + 1) + 0.01 * rep, 3),
                        "peak_mb": 50.0 + 20 * index, "child_peak_mb": None,
                        "n_covered": int(round(n_variants * coverage.get(name, 1.0)))} for level, rep in done[name]],
            "info": info,
        }

    if headline:
        soft = {**SOFT_FRACTIONS, **dict(soft or {})}
        members = {label: [labels[b] for b in range(len(mids)) if edges[b] >= lo - 1e-12 and edges[b + 1] <= hi + 1e-12]
                   for label, lo, hi, _, _ in groups if label not in labels}
        sizes = {label: n_var for label, _, _, n_var, _ in groups}
        spans = {label: (lo, hi) for label, lo, hi, _, _ in groups}
        for (name, level, protocol, cohort, label, metric), (_, half) in list(values.items()):
            if protocol != "standard" or metric != "r2" or label not in members:
                continue
            per_bin = [values[(name, level, protocol, cohort, b, "r2")][0] for b in members[label]
                       if (name, level, protocol, cohort, b, "r2") in values]
            if not per_bin:
                continue
            value = float(np.mean(per_bin))
            reps = len([r for lv, r in done[name] if lv == level])
            n_geno = next(row[-1] for row in metric_rows if row[:5] == (name, level, protocol, cohort, label))
            share = 1.0 if cohort == "all" else cohort_share[cohort]
            lo, hi = spans[label]
            values[(name, level, protocol, cohort, label, "r2_bin_mean")] = (value, half)
            extra = [("r2_bin_mean", value, half), ("n_eff", n_samples * share * value, np.nan)]
            if label == "overall":
                extra.append(("soft_dosage_fraction", soft.get(name, 0.6), np.nan))
            for metric_name, v, h in extra:
                metric_rows.append((name, level, protocol, cohort, label, lo, hi, metric_name, round(v, 6),
                                    round(v - h, 6) if h == h else np.nan, round(v + h, 6) if h == h else np.nan,
                                    reps, sizes[label], n_geno))
        for (name, level, protocol, cohort, label, metric), _ in list(values.items()):
            if protocol == "standard" and metric == "r2" and cohort == "all":
                n_var = sizes[label]
                defined = n_var * (1 - np.exp(-level * n_samples / 4))
                reps = len([r for lv, r in done[name] if lv == level])
                lo, hi = spans[label]
                metric_rows.append((name, level, protocol, cohort, label, lo, hi, "n_variant_r2", round(defined, 1),
                                    np.nan, np.nan, reps, n_var, 0))

    pair_rows = []
    for a, b in combinations(imputers, 2):
        for key_a, (value_a, half_a) in values.items():
            if key_a[0] != a or not half_a == half_a:
                continue
            key_b = (b,) + key_a[1:]
            if key_b not in values:
                continue
            value_b, half_b = values[key_b]
            half = 0.45 * np.hypot(half_a, half_b)
            diff = value_a - value_b
            pair_rows.append((a, b, *key_a[1:], round(value_a, 6), round(value_b, 6), round(diff, 6),
                              round(diff - half, 6), round(diff + half, 6)))

    masks = []
    for i, (level, rep) in enumerate(units):
        achieved = level * (0.8 if level in mask_warnings else 1.0)
        masks.append({"level": level, "replicate": rep, "sha256": f"{i:064x}", "n_masked": int(achieved * 1000),
                      "achieved_rate": achieved,
                      "warning": (f"achieved masking rate {achieved:.3g} differs from the requested {level:g} "
                                  "by more than 10%") if level in mask_warnings else None})
    manifest = {
        "impbench_version": "0.1.0", "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:10:00Z",
        "command": "synthetic results folder (impbench.testing.synthetic)",
        "versions": {"python": "3.11", "numpy": np.__version__},
        "dataset": {"name": "synthetic", "hash": "0" * 64, "store": "(none)", "contig": "22",
                    "n_variants": n_variants,
                    "n_samples": {"train": 8 * n_samples, "val": n_samples, "test": n_samples},
                    "train_cohort": None, "test_cohort": None,
                    "qc": {"info": {"contig": "22", "hwe_scope": "per cohort"}, "input_variants": n_variants + 321,
                           "dropped": {"multiallelic": 21, "hwe": 300, "monomorphic": monomorphic}}},
        "maf_source": "training split truth",
        "orientation": "minor allele of the training split (ALT-coded where ALT is minor)",
        "settings": {"levels": list(levels), "replicates": replicates, "scheme": scheme,
                     "protocols": list(protocols), "seed": seed, "device": "cpu", "threads": 2, "nproc": 1,
                     "write_vcf": False, "bootstrap": {"n": 1000, "seed": 0},
                     "bin_edges": [float(e) for e in edges]},
        "masks": masks,
        "imputers": manifest_imputers,
    }
    folder = RunFolder(run_dir)
    folder.write_manifest(Manifest.from_json(manifest, str(folder.manifest_path)))  # checked as a run's is
    for table, rows in (("metrics", metric_rows), ("pairs", pair_rows), ("replicates", replicate_rows),
                        ("per_sample", sample_rows), ("confusion", confusion_rows),
                        ("calibration", calibration_rows), ("variant_quality", quality_rows)):
        frame = pd.DataFrame(rows, columns=list(COLUMNS[table]))
        if table == "metrics" and headline:
            frame["maf_source"] = np.where(frame["cohort"] == "all", manifest["maf_source"], COHORT_MAF_SOURCE)
        folder.write_table(table, frame)
    return run_dir
