"""Figures of the verdict and of calibration: forest plot of paired differences from the best,
overall R² per test cohort, reliability diagram, estimated-vs-true per-variant quality. Each
returns PNG bytes (``figures.figure_png``) or None when there is nothing to draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from impbench.scoring.calibration import quality_correlation
from impbench.report.figures import BASE_FONT, OKABE_ITO, new_figure, figure_png, wrapped_suptitle
from impbench.report.load import ALL, OVERALL, RunResults
from impbench.report.style import imputer_colours, level_label
from impbench.report.verdict import LevelVerdict


def forest_figure(results: RunResults, verdicts: list[LevelVerdict]) -> bytes | None:
    """Rows: levels; columns: overall, then each MAF class. y: imputers in the level's overall
    ranking; x: paired difference in dosage R² from the column's best, with its 95% CI; the
    best sits at 0 (diamond). Filled: best or tied; hollow: worse beyond the CI."""
    if not verdicts:
        return None
    columns = [OVERALL] + [c for c in results.classes if any(c in v.ranks for v in verdicts)]
    n_imputers = max(len(v.ranks[OVERALL]) for v in verdicts)
    styles = imputer_colours(results.imputers)
    fig = new_figure(1.3 + 2.55 * len(columns), (0.22 * n_imputers + 0.75) * len(verdicts) + 0.9)
    axes = fig.subplots(len(verdicts), len(columns), squeeze=False)
    for row, verdict in enumerate(verdicts):
        order = [r.imputer for r in verdict.ranks[OVERALL]]
        y = {name: i for i, name in enumerate(order)}
        for col, column in enumerate(columns):
            ax = axes[row, col]
            ax.axvline(0, color="#888888", linewidth=0.9, zorder=1)
            if verdict.margin > 0:
                ax.axvline(-verdict.margin, color="#888888", linewidth=0.9, linestyle=":", zorder=1)
            for entry in verdict.ranks.get(column, []):
                if entry.imputer not in y:
                    continue
                colour = styles[entry.imputer][0]
                yy = y[entry.imputer]
                if entry.status == "none":  # no imputer imputes this scope: no best, no ranking
                    ax.plot(entry.diff, yy, marker="x", markersize=5, color=colour, zorder=3)
                    continue
                if entry.status == "best":
                    ax.plot(0, yy, marker="D", markersize=5.5, color=colour, zorder=4)
                    ax.annotate("best", (0, yy), xytext=(5, 0), textcoords="offset points", va="center",
                                fontsize=BASE_FONT - 1.5, color="#333333")
                    continue
                low, high = entry.diff_low, entry.diff_high
                if np.isfinite(low) and np.isfinite(high):
                    ax.plot([low, high], [yy, yy], color=colour, linewidth=1.6, zorder=2)
                ax.plot(entry.diff, yy, marker="o", markersize=4.5, zorder=3, color=colour,
                        markerfacecolor=colour if entry.top else "white")
            ax.set_yticks(range(len(order)), order)
            ax.tick_params(labelleft=col == 0)
            ax.set_ylim(len(order) - 0.5, -0.5)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            low_x, high_x = ax.get_xlim()
            ax.set_xlim(low_x, max(high_x, 0) + 0.22 * (max(high_x, 0) - low_x))
            ax.tick_params(labelsize=BASE_FONT - 0.5)
            ax.grid(axis="x", color="#EEEEEE", linewidth=0.6)
            title = "overall" if column == OVERALL else column
            ax.set_title(f"{level_label(verdict.level)} masked · {title}", fontsize=BASE_FONT)
            if row == len(verdicts) - 1:
                ax.set_xlabel("R² − best's R² (paired, 95% CI)", fontsize=BASE_FONT - 0.5)
    handles = [Line2D([], [], marker="D", linestyle="", color="#555555", label="best (difference 0)"),
               Line2D([], [], marker="o", color="#555555", label="tied with the best (within the margin)"),
               Line2D([], [], marker="o", color="#555555", markerfacecolor="white", label="behind the best beyond the margin"),
               Line2D([], [], marker="x", linestyle="", color="#555555", label="no imputer imputes it (all below 0.05)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=BASE_FONT)
    wrapped_suptitle(fig, f"Paired difference in {'headline R² (mean over MAF bins)' if verdicts[0].metric == 'r2_bin_mean' else 'pooled dosage R²'} from the best imputer, per MAF class "
                   f"(standard protocol, all test samples; dotted: the margin, {verdicts[0].margin:g})",
              fontsize=BASE_FONT + 1.5)
    return figure_png(fig)


def cohort_figure(results: RunResults, metric: str = "r2") -> bytes | None:
    """One panel per level: overall dosage R² with its 95% CI per imputer (x) and test cohort
    (colour), all test samples in black; None with fewer than two cohorts."""
    cohorts = results.cohorts
    frame = results.metrics
    frame = frame[(frame["metric"] == metric) & (frame["bin"] == OVERALL) & (frame["protocol"] == "standard")]
    if len(cohorts) < 2 or frame.empty:
        return None
    levels = sorted(frame["level"].unique())
    imputers = [n for n in results.imputers if n in set(frame["imputer"])]
    scopes = [ALL] + cohorts
    colours = {ALL: "#000000"} | {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(cohorts)}
    fig = new_figure(min(15.0, 1.2 + (0.55 * len(imputers) + 0.6) * len(levels)), 3.6)
    axes = fig.subplots(1, len(levels), squeeze=False, sharey=True)[0]
    width = 0.7 / len(scopes)
    for ax, level in zip(axes, levels):
        at_level = frame[np.isclose(frame["level"], level)].set_index(["imputer", "cohort"])
        for s, scope in enumerate(scopes):
            x, value, low, high = [], [], [], []
            for i, name in enumerate(imputers):
                if (name, scope) in at_level.index:
                    row = at_level.loc[(name, scope)]
                    x.append(i - 0.35 + width * (s + 0.5))
                    value.append(row["value"])
                    low.append(row["ci_low"])
                    high.append(row["ci_high"])
            value, low, high = (np.asarray(v, dtype=float) for v in (value, low, high))
            err = np.vstack([np.nan_to_num(value - low), np.nan_to_num(high - value)])
            ax.errorbar(x, value, yerr=err, fmt="o", markersize=3.5, color=colours[scope], elinewidth=1.1,
                        capsize=0, label=scope if ax is axes[0] else None)
        ax.set_xticks(range(len(imputers)), imputers, rotation=30, ha="right", rotation_mode="anchor")
        ax.tick_params(labelsize=BASE_FONT)
        ax.set_title(f"{level_label(level)} masked", fontsize=BASE_FONT + 1)
        ax.grid(axis="y", color="#EEEEEE", linewidth=0.6)
    axes[0].set_ylabel(("Headline R²" if metric == "r2_bin_mean" else "Overall dosage R²") + " (95% CI)",
                       fontsize=BASE_FONT)
    fig.legend(loc="outside lower center", ncol=min(len(scopes), 8), frameon=False, fontsize=BASE_FONT,
               title="Test samples (all, or one cohort)", title_fontsize=BASE_FONT)
    wrapped_suptitle(fig, ("Headline R² (mean over MAF bins)" if metric == "r2_bin_mean" else "Overall minor-allele dosage R²")
              + " per test cohort (standard protocol)", fontsize=BASE_FONT + 1.5)
    return figure_png(fig)


def calibration_figure(results: RunResults, ece: pd.DataFrame | None = None) -> bytes | None:
    """Reliability diagram, one panel per level: mean confidence of the called genotype (x)
    against its concordance (y) per confidence bin, one line per imputer; y = x is perfect
    calibration. The legend gives each imputer's expected calibration error (metrics.csv ``ece``)."""
    table = results.calibration
    if table is None or table.empty:
        return None
    levels = sorted(table["level"].unique())
    styles = imputer_colours(results.imputers)
    imputers = [n for n in results.imputers if n in set(table["imputer"])]
    metrics = results.metrics
    ece = metrics[(metrics["metric"] == "ece") & (metrics["bin"] == OVERALL) & (metrics["cohort"] == ALL)]
    fig = new_figure(min(15.0, 0.6 + 3.3 * len(levels)), 3.8)
    axes = fig.subplots(1, len(levels), squeeze=False, sharey=True)[0]
    for ax, level in zip(axes, levels):
        ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=0.9)
        for name in imputers:
            mine = table[(table["imputer"] == name) & np.isclose(table["level"], level) & (table["n_genotypes"] > 0)]
            colour, marker, linestyle = styles[name]
            value = ece[(ece["imputer"] == name) & np.isclose(ece["level"], level)]["value"]
            label = name + (f" (ECE {value.iloc[0]:.3f})" if len(value) and value.iloc[0] == value.iloc[0] else "")
            ax.plot(mine["mean_confidence"], mine["concordance"], color=colour, marker=marker, linestyle=linestyle,
                    markersize=3.5, linewidth=1.3, label=label)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{level_label(level)} masked", fontsize=BASE_FONT + 1)
        ax.set_xlabel("Mean confidence of the called genotype", fontsize=BASE_FONT)
        ax.tick_params(labelsize=BASE_FONT)
        ax.grid(color="#EEEEEE", linewidth=0.6)
        ax.legend(fontsize=BASE_FONT - 1.5, loc="upper left", frameon=False)
    axes[0].set_ylabel("Concordance (fraction called right)", fontsize=BASE_FONT)
    wrapped_suptitle(fig, "Calibration: confidence against concordance, scored cells pooled over replicates "
                   "(dashed: perfect calibration)", fontsize=BASE_FONT + 1.5)
    return figure_png(fig)


def quality_figure(results: RunResults) -> bytes | None:
    """Estimated quality against the true per-variant r² (replicate 0, first level), one panel
    per imputer with probabilities: DR2 estimated from the scored cells' probabilities, and
    the imputer's own quality where it reports one; Pearson r from ``quality_correlation``."""
    table = results.variant_quality
    if table is None or table.empty:
        return None
    level = float(sorted(table["level"].unique())[0])
    table = table[np.isclose(table["level"], level)]
    imputers = [n for n in results.imputers if n in set(table["imputer"])]
    if not imputers:
        return None
    n_cols = min(4, len(imputers))
    n_rows = (len(imputers) + n_cols - 1) // n_cols
    fig = new_figure(max(4.6, 0.6 + 2.9 * n_cols), 2.9 * n_rows + 0.9)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.ravel()[len(imputers):]:
        ax.set_visible(False)
    for ax, name in zip(axes.ravel(), imputers):
        mine = table[table["imputer"] == name]
        true_r2 = mine["true_r2"].to_numpy(float)
        estimated = mine["estimated_dr2"].to_numpy(float)
        reported = mine["reported_quality"].to_numpy(float)
        has_reported = bool(np.isfinite(reported).any())
        stats = quality_correlation(true_r2, estimated, reported if has_reported else None).set_index("source")
        ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=0.9)
        ax.scatter(true_r2, estimated, s=7, color=OKABE_ITO[0], alpha=0.6, linewidths=0, label="DR2 from probabilities")
        if has_reported:
            ax.scatter(true_r2, reported, s=7, color=OKABE_ITO[1], alpha=0.6, linewidths=0, marker="s",
                       label="imputer's own quality")
        parts = [f"r = {stats.loc[s, 'pearson_r']:.2f} ({'DR2' if s == 'estimated' else 'own'})"
                 for s in stats.index if stats.loc[s, "pearson_r"] == stats.loc[s, "pearson_r"]]
        ax.set_title(f"{name}\n" + (", ".join(parts) or "too few variants for r"), fontsize=BASE_FONT)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=BASE_FONT - 1)
        ax.set_xlabel("True per-variant r²", fontsize=BASE_FONT - 0.5)
        ax.set_ylabel("Estimated quality", fontsize=BASE_FONT - 0.5)
        ax.grid(color="#EEEEEE", linewidth=0.6)
    handles = [Line2D([], [], marker="o", linestyle="", color=OKABE_ITO[0], label="DR2 estimated from probabilities"),
               Line2D([], [], marker="s", linestyle="", color=OKABE_ITO[1], label="imputer's own quality (e.g. Beagle DR2)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=BASE_FONT)
    wrapped_suptitle(fig, f"Estimated against true per-variant quality · {level_label(level)} masked, replicate 0",
              fontsize=BASE_FONT + 1.5)
    return figure_png(fig)
