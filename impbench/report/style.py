"""Names, orders, colours and number formats shared by the report's tables and figures."""

from __future__ import annotations

import math

#: Okabe & Ito (2008) colour-blind-safe palette, ordered so the first colours contrast most on
#: white (yellow last).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")

#: Metric order in tables, per protocol; metrics not listed follow in file order.
METRIC_ORDER = {
    "standard": ("r2", "gt_r2", "concordance", "precision", "recall", "f1", "iqs", "nrd", "error_hom_major",
                 "error_het", "error_hom_minor", "phased_accuracy", "mean_variant_r2", "median_variant_r2",
                 "frac_variant_r2_ge_0.8", "n_variant_r2", "coverage", "ece"),
    "paper": ("accuracy", "r2", "precision", "recall", "f1"),
}
#: The headline metrics of the "by MAF" figure, per protocol.
FIGURE_METRICS = {
    "standard": ("r2", "gt_r2", "concordance", "iqs", "f1", "error_hom_major", "error_het", "error_hom_minor"),
    "paper": ("accuracy", "r2", "precision", "recall", "f1"),
}
METRIC_NAMES = {
    "r2": "Dosage R² (minor allele)",
    "gt_r2": "Hard-call r² (GT)",
    "error_hom_major": "Error, true hom. major",
    "error_het": "Error, true het.",
    "error_hom_minor": "Error, true hom. minor",
    "median_variant_r2": "Median per-variant r²",
    "frac_variant_r2_ge_0.8": "Variants with r² ≥ 0.8",
    "n_variant_r2": "Variants with an r²",
    "ece": "Expected calibration error",
    "concordance": "Concordance",
    "accuracy": "Accuracy (4 phased codes)",
    "precision": "Precision (macro)",
    "recall": "Recall (macro)",
    "f1": "F1 (macro)",
    "iqs": "IQS",
    "nrd": "Non-ref. discordance",
    "phased_accuracy": "Phased accuracy",
    "mean_variant_r2": "Mean per-variant r²",
    "coverage": "Coverage",
}
PAPER_METRIC_NAMES = {"r2": "R² (phased codes 0–3)"}
#: Metrics where a smaller value is better; every other metric: larger is better.
LOWER_IS_BETTER = frozenset({"nrd", "error_hom_major", "error_het", "error_hom_minor", "ece"})
PROTOCOL_NAMES = {"standard": "standard (masked cells only)", "paper": "paper (all cells, as published)"}


def metric_name(metric: str, protocol: str = "standard") -> str:
    if protocol == "paper" and metric in PAPER_METRIC_NAMES:
        return PAPER_METRIC_NAMES[metric]
    return METRIC_NAMES.get(metric, metric)


def protocol_order(protocols) -> list[str]:
    known = [p for p in ("standard", "paper") if p in set(protocols)]
    return known + sorted(set(protocols) - set(known))


def metric_order(metrics, protocol: str) -> list[str]:
    present = list(dict.fromkeys(metrics))
    preferred = [m for m in METRIC_ORDER.get(protocol, ()) if m in present]
    return preferred + [m for m in present if m not in preferred]


def imputer_colours(imputers) -> dict[str, tuple[str, str, str]]:
    """Colour, marker and line style per imputer, stable across every figure of a report."""
    styles = {}
    for index, name in enumerate(imputers):
        styles[name] = (OKABE_ITO[index % len(OKABE_ITO)], MARKERS[index % len(MARKERS)],
                        LINESTYLES[(index // len(OKABE_ITO)) % len(LINESTYLES)])
    return styles


def level_label(level: float) -> str:
    """Masking rate as a percentage: 0.05 -> ``5%``, 0.125 -> ``12.5%``."""
    return f"{float(level) * 100:.4g}%"


def level_phrase(level: float, scheme: str = "uniform") -> str:
    """What a level means in a sentence: ``5% masking`` (sporadic genotypes hidden), or under
    the array scheme ``87.9% of variants untyped`` (whole variants hidden in every sample)."""
    if scheme == "array":
        return f"{level_label(level)} of variants untyped"
    return f"{level_label(level)} masking"


def fmt_value(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    """``0.912 [0.901, 0.922]``; the value alone without a CI; ``n/a`` when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def fmt_diff(diff: float, low: float, high: float, digits: int = 3) -> str:
    """``−0.021 [−0.030, −0.012]`` (signed, with a CI when there is one)."""
    if diff is None or math.isnan(diff):
        return "n/a"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{diff:+.{digits}f}"
    return f"{diff:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def class_phrase(label: str) -> str:
    """``rare (<1%)`` -> ``rare variants``; other labels are kept, with ``variants`` added."""
    head = label.split(" (")[0].strip() or label
    return f"{head} variants"


def fmt_mean_sd(mean: float, sd: float, n: int, n_expected: int | None = None, digits: int = 4) -> str:
    """``0.9200 ± 0.0200``; SD is ``–`` with one replicate; ``(n=2)`` when fewer than expected."""
    if n == 0 or mean is None or math.isnan(mean):
        return "n/a"
    sd_text = "–" if n < 2 or sd is None or math.isnan(sd) else f"{sd:.{digits}f}"
    text = f"{mean:.{digits}f} ± {sd_text}"
    if n_expected is not None and n != n_expected:
        text += f" (n={n})"
    return text


def fmt_count(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(round(value)):,}"


def fmt_seconds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def fmt_mb(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):,.0f}" if float(value) >= 10 else f"{float(value):.1f}"
