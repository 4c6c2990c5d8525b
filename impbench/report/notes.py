"""What to say beside the numbers: results not to trust (``flags``), whether each imputer's
dosages were soft or hard (``dosage_notes``), what the rare class covers (``rare_class_note``),
and the note on runs written before the frequency-fair headline existed (``fallback_note``)."""

from __future__ import annotations

import math

import numpy as np

from impbench.report.load import ALL, OVERALL, RunResults
from impbench.report.style import fmt_count, level_label
from impbench.report.verdict import FALLBACK_METRIC, VERDICT_METRIC, VERDICT_PROTOCOL, verdict_metric

#: ``info.stop_reason`` values that mean a neural imputer hit its budget rather than converging.
BUDGET_STOPS = {"epochs": "its epoch budget", "time": "its time budget"}
#: metrics.csv's fraction of masked cells given a dosage that is not a whole number.
SOFT_METRIC = "soft_dosage_fraction"
#: Below this soft fraction an imputer's dosages count as hard calls.
HARD_BELOW = 0.01
#: Per-variant R² summaries resting on fewer variants than this are flagged.
PER_VARIANT_MIN = 100
PER_VARIANT_METRICS = ("mean_variant_r2", "median_variant_r2", "frac_variant_r2_ge_0.8")


def fallback_note(results: RunResults) -> str:
    """"" when the run has the headline; else why the verdict ranks on pooled R² (with this
    run's own allele-freq numbers when it has that floor)."""
    if verdict_metric(results) != FALLBACK_METRIC or results.metrics.empty:
        return ""
    m = results.metrics
    floor = m[(m["imputer"] == "allele-freq") & (m["metric"] == FALLBACK_METRIC) & (m["protocol"] == VERDICT_PROTOCOL)
              & (m["cohort"] == ALL) & (m["bin"] == OVERALL)].sort_values("level")
    here = (f" (here allele-freq, a dosage of 2 × the training allele frequency that knows nothing about any "
            f"individual, scores {floor['value'].iloc[0]:.3f} pooled at {level_label(floor['level'].iloc[0])})"
            if len(floor) and floor["value"].iloc[0] == floor["value"].iloc[0] else "")
    return (f"This run folder has no {VERDICT_METRIC} (it was scored by an older impbench): the verdict ranks on "
            "the pooled dosage R² over all variants instead, which common variants dominate and which rewards "
            f"knowing allele frequencies alone{here}.")


def soft_fractions(results: RunResults) -> dict[str, float]:
    """Imputer -> mean over levels of ``soft_dosage_fraction`` (standard protocol, all test
    samples, overall bin); imputers without the metric are left out."""
    m = results.metrics
    rows = m[(m["metric"] == SOFT_METRIC) & (m["protocol"] == VERDICT_PROTOCOL) & (m["cohort"] == ALL)
             & (m["bin"] == OVERALL)]
    means = rows.groupby("imputer")["value"].mean()
    return {name: float(v) for name, v in means.items() if v == v}


def dosage_kind(fraction: float | None) -> str:
    """``soft (62% of masked cells fractional)``, ``hard (whole dosages only)``, ``not recorded``."""
    if fraction is None or not math.isfinite(fraction):
        return "not recorded"
    if fraction == 0:
        return "hard (whole dosages only)"
    if fraction < HARD_BELOW:
        return f"hard ({fraction:.2%} of masked cells fractional)"
    return f"soft ({fraction:.0%} of masked cells fractional)"


def _is_beagle(results: RunResults, name: str) -> bool:
    info = results.imputer_info(name)
    return "beagle" in name.lower() or "beagle" in str(info.get("distribution") or "").lower()


def dosage_notes(results: RunResults) -> list[str]:
    """One line per imputer: were its masked-cell dosages soft or hard; for Beagle under
    sporadic masking, what that means for its dosage R²."""
    fractions = soft_fractions(results)
    if not fractions:
        return []
    out = []
    kinds = {name: dosage_kind(fractions.get(name)) for name in results.imputers}
    soft = [n for n, f in fractions.items() if f >= HARD_BELOW]
    hard = [n for n, f in fractions.items() if f < HARD_BELOW]
    out.append("Dosages at masked cells: " + "; ".join(f"{n} {k}" for n, k in kinds.items()) + ". "
               + ("A hard-call dosage R² is the GT r²; soft dosages can score higher from the same calls, so "
                  f"{', '.join(hard)} against {', '.join(soft)} compares hard answers with soft ones."
                  if soft and hard else ""))
    for name in results.imputers:
        if not _is_beagle(results, name) or results.scheme == "array":
            continue
        fraction = fractions.get(name)
        if fraction is None or fraction < HARD_BELOW:
            out.append(f"{name}: under sporadic masking ({results.scheme} scheme) Beagle fills the missing "
                       "genotypes while phasing and gives no dosage or probabilities for them, so its dosage R² "
                       "here is a hard-call score (equal to its GT r²), not Beagle's imputation quality with DS/GP.")
        else:
            out.append(f"{name}: its masked cells carry Beagle's own soft dosages (DS/GP), {fraction:.0%} of them "
                       "fractional, so its dosage R² is comparable with the other soft answers.")
    return out


def _rare_drops(qc: dict) -> list[tuple[str, int]]:
    """QC steps that remove variants for being (near) monomorphic in the training split:
    (step text, variants removed), from the manifest's ``qc.steps`` or ``qc.dropped``."""
    out = []
    for step in qc.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("variants_removed"), (int, float)):
            text = str(step.get("step") or "")
            if ("maf" in text.lower() or "monomorphic" in text.lower()) and step["variants_removed"] > 0:
                out.append((text, int(step["variants_removed"])))
    dropped = qc.get("dropped") or {}
    if isinstance(dropped, dict):
        for key in ("monomorphic", "maf"):
            if isinstance(dropped.get(key), (int, float)) and dropped[key] > 0:
                out.append((key, int(dropped[key])))
    return out


def rare_class_note(results: RunResults) -> str:
    """Which variants the lowest MAF class covers (only training-polymorphic ones), with the
    QC steps that dropped the others."""
    if not results.classes:
        return ""
    rare = results.classes[0]
    qc = (results.manifest.get("dataset") or {}).get("qc") or {}
    drops = _rare_drops(qc) if isinstance(qc, dict) else []
    count = (" (" + "; ".join(f"{text}: {fmt_count(n)} variants" for text, n in drops) + ")") if drops else ""
    return (f"The {rare} class covers only variants polymorphic in the training panel: QC drops the monomorphic "
            f"and rarest ones{count}, so no row scores them, and variants rarer than the panel can show are absent.")


def flags(results: RunResults) -> list[str]:
    """Warnings on results not to trust: budget-stopped neural imputers, imputers that covered
    fewer variants than others, masks whose achieved rate differs from the requested one,
    per-variant R² summaries resting on fewer than ``PER_VARIANT_MIN`` variants."""
    out = []
    for name in results.imputers:
        info = results.imputer_info(name).get("info") or {}
        stopped = info.get("stop_reason") if isinstance(info, dict) else None
        if stopped in BUDGET_STOPS:
            out.append(f"{name} stopped at {BUDGET_STOPS[stopped]}, not by convergence: it may score better "
                       "with more training.")
    covered = {}
    for name in results.imputers:
        units = [u for u in (results.imputer_info(name).get("impute") or []) if isinstance(u, dict)]
        counts = [u["n_covered"] for u in units if isinstance(u.get("n_covered"), (int, float))]
        if counts:
            covered[name] = min(counts)
    metrics = results.metrics
    coverage = metrics[(metrics["metric"] == "coverage") & (metrics["bin"] == OVERALL) & (metrics["cohort"] == ALL)]
    coverage_min = coverage.groupby("imputer")["value"].min()
    most = max(covered.values()) if covered else None
    for name in results.imputers:
        fraction = float(coverage_min.get(name, np.nan))
        below = most is not None and name in covered and covered[name] < most
        if below or (fraction == fraction and fraction < 1 - 1e-9):
            detail = f"{fraction:.1%} of the variants" if fraction == fraction else "fewer variants"
            if below:
                detail += f" ({fmt_count(covered[name])}, against {fmt_count(most)} for others)"
            out.append(f"{name} covered {detail}: its scores are over fewer variants than the others'.")
    warned: dict[str, list[str]] = {}
    for mask in results.manifest.get("masks") or []:
        if isinstance(mask, dict) and mask.get("warning"):
            level = mask.get("level")
            label = level_label(level) if isinstance(level, (int, float)) else str(level)
            warned.setdefault((label, str(mask["warning"])), []).append(str(mask.get("replicate")))
    for (label, warning), replicates in warned.items():
        which = "replicate" + ("s " if len(replicates) > 1 else " ") + ", ".join(replicates)
        out.append(f"Masks at {label} ({which}): {warning.rstrip('.')}.")
    m = metrics
    counts = m[(m["metric"] == "n_variant_r2") & (m["protocol"] == VERDICT_PROTOCOL) & (m["cohort"] == ALL)]
    few = counts[counts["value"] < PER_VARIANT_MIN]
    if len(few):
        worst = few.loc[few["value"].idxmin()]
        levels = ", ".join(level_label(v) for v in sorted(few["level"].unique()))
        out.append(f"Per-variant R² summaries (mean, median, share ≥ 0.8) rest on fewer than {PER_VARIANT_MIN} "
                   f"variants with a defined r² in {len(few)} rows at {levels} (as few as {worst['value']:,.1f}: "
                   f"{worst['imputer']}, {worst['bin']}, {level_label(worst['level'])}); those cells are marked ⚠.")
    return out
