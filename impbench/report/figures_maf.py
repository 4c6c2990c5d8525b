"""Scores by MAF bin: one metric per figure, one panel per masking level, readable at 1,280 px.

Each panel is 10 inches wide (1,200 CSS px in the report: ``model.display_width``), so the
figure is shown at its own scale on a 1,280 px screen, and no text is smaller than
``MIN_FONT`` points (11 px at 150 PNG pixels per inch shown at 120 CSS px per inch is 6.6 pt;
``MIN_FONT`` is 8.5, 14 px). No twin axes: the SNPs per bin are printed under each bin's label.
The frequency-only floor (``allele-freq``) is drawn as a thick grey dashed line when the run has
it. ``by_maf_figures`` returns ``FigureOut``s with the smallest font size they hold
(``FigureOut.min_font_pt``) so that the browser test can check it as displayed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from impbench.report.figures import figure_png, legend_name, new_figure, wrapped_suptitle
from impbench.report.load import OVERALL, RunResults
from impbench.report.model import FigureOut, display_width
from impbench.report.style import imputer_colours, level_label, metric_name

MIN_FONT = 8.5
FLOOR_IMPUTER = "allele-freq"
FLOOR_COLOUR = "#555555"
#: Metrics drawn per protocol, the headline first (each in its own figure).
MAF_FIGURE_METRICS = {"standard": ("r2", "gt_r2", "concordance", "iqs"), "paper": ("r2",)}
HEADLINE = "r2_bin_mean"


def min_font_pt(fig: Figure) -> float:
    """The smallest font size (points) of any visible, non-empty text of ``fig``."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float("nan")


def _draw(results: RunResults, summary: pd.DataFrame, protocol: str, metric: str) -> tuple[bytes, float] | None:
    frame = summary[(summary["cohort"] == "all")]
    mine = frame[(frame["protocol"] == protocol) & (frame["metric"] == metric)]
    beside = (frame[(frame["protocol"] == "standard") & (frame["metric"] == metric)]
              if protocol == "paper" else frame.iloc[:0])
    bins = [b for b in results.bins if b in set(mine["bin"])]
    if mine.empty or not bins:
        return None
    headline = frame[(frame["protocol"] == "standard") & (frame["metric"] == HEADLINE) & (frame["bin"] == OVERALL)]
    use_headline = metric == "r2" and protocol == "standard" and not headline.empty
    levels = sorted(mine["level"].unique())
    imputers = [n for n in results.imputers if n in set(mine["imputer"])]
    styles = imputer_colours(results.imputers)
    x = np.arange(len(bins)) + 1.5
    fig = new_figure(10.0, 2.7 * len(levels) + 1.5)
    axes = fig.subplots(len(levels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, level in zip(axes, levels):
        at = mine[np.isclose(mine["level"], level)]
        counts = at[at["bin"].isin(bins)].groupby("bin")["n_variants"].max().reindex(bins)
        ax.axvline(0.75, color="#AAAAAA", linestyle="--", linewidth=0.8)
        for name in imputers:
            colour, marker, linestyle = styles[name]
            floor = name == FLOOR_IMPUTER
            if floor:
                colour, linestyle = FLOOR_COLOUR, (0, (4, 2))
            per_bin = at[at["imputer"] == name].set_index("bin").reindex(bins)
            ax.plot(x, per_bin["value"].to_numpy(float), color=colour, marker=marker, linestyle=linestyle,
                    linewidth=2.4 if floor else 1.6, markersize=4, zorder=3)
            ax.fill_between(x, per_bin["ci_low"].to_numpy(float), per_bin["ci_high"].to_numpy(float), color=colour,
                            alpha=0.15, linewidth=0, zorder=2)
            if not beside.empty:
                twin = beside[np.isclose(beside["level"], level) & (beside["imputer"] == name)].set_index("bin")
                ax.plot(x, twin.reindex(bins)["value"].to_numpy(float), color=colour, marker=marker,
                        linestyle=":", linewidth=1.2, markersize=3, markerfacecolor="white", zorder=3)
            source = (headline[np.isclose(headline["level"], level) & (headline["imputer"] == name)] if use_headline
                      else at[(at["imputer"] == name) & (at["bin"] == OVERALL)])
            if len(source) and np.isfinite(source["value"].iloc[0]):
                value, low, high = (float(source[c].iloc[0]) for c in ("value", "ci_low", "ci_high"))
                err = ([[max(value - low, 0)], [max(high - value, 0)]] if np.isfinite(low) and np.isfinite(high)
                       else None)
                ax.errorbar([0.0 + 0.06 * (imputers.index(name) - (len(imputers) - 1) / 2)], [value], yerr=err,
                            fmt=marker, color=colour, markersize=4.5, elinewidth=1.3, capsize=0, zorder=4)
        ax.set_xticks(np.concatenate([[0.0], x]))
        ax.set_xticklabels(["bin mean" if use_headline else "overall"]
                           + [f"{b}\n{int(c):,} SNPs" if c == c else b for b, c in zip(bins, counts)])
        ax.set_xlim(-0.6, x[-1] + 0.6)
        ax.tick_params(labelsize=MIN_FONT)
        ax.set_title(f"{level_label(level)} masked", fontsize=MIN_FONT + 1.5, loc="left")
        ax.set_ylabel(metric_name(metric, protocol), fontsize=MIN_FONT + 0.5)
        ax.grid(axis="y", color="#EEEEEE", linewidth=0.6)
    axes[-1].set_xlabel("MAF bin (minor allele frequency), SNPs per bin", fontsize=MIN_FONT + 0.5)
    handles, labels = [], []
    for name in imputers:
        colour, marker, linestyle = styles[name]
        floor = name == FLOOR_IMPUTER
        handles.append(Line2D([], [], color=FLOOR_COLOUR if floor else colour, marker=marker,
                              linestyle=(0, (4, 2)) if floor else linestyle, linewidth=2.4 if floor else 1.6))
        labels.append(f"{name} (frequency-only floor)" if floor else legend_name(results, name))
    if not beside.empty:
        handles.append(Line2D([], [], color="#333333", linestyle=":", marker="o", markerfacecolor="white"))
        labels.append("dotted: the same imputer under the standard protocol")
    for name in results.imputers:
        if name not in imputers:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append(f"{name} ({results.status(name)}: no result)")
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 4), frameon=False,
               fontsize=MIN_FONT + 0.5)
    what = (f"{metric_name(metric, protocol)} by MAF bin · {protocol} protocol · all test samples · "
            f"MAF source: {results.maf_source}")
    wrapped_suptitle(fig, what, fontsize=MIN_FONT + 2.5)
    return figure_png(fig), min_font_pt(fig)


def by_maf_figures(results: RunResults, summary: pd.DataFrame, protocol: str) -> list[FigureOut]:
    """The by-MAF figures of one protocol, the headline metric first: ``fig_by_maf_<protocol>.png``
    (dosage R²; under ``paper`` with the standard R² dotted beside it), then
    ``fig_by_maf_<protocol>_<metric>.png`` per further metric."""
    out = []
    floor = FLOOR_IMPUTER in results.imputers
    for position, metric in enumerate(MAF_FIGURE_METRICS.get(protocol, ("r2",))):
        drawn = _draw(results, summary, protocol, metric)
        if drawn is None:
            continue
        png, font = drawn
        suffix = "" if position == 0 else f"_{metric}"
        caption = ("One panel per masking level; all test samples; lines: the value pooled over replicates, band: "
                   "its 95% bootstrap CI; left of the dashed line: "
                   + ("the headline (mean of the per-bin R²) with its CI. " if metric == "r2" and protocol == "standard"
                      else "the overall score with its CI. ")
                   + ("Thick grey dashes: allele-freq, the frequency-only floor. " if floor else
                      "No allele-freq in this run: no floor drawn. ")
                   + ("Dotted: the standard protocol's R² of the same imputer. " if protocol == "paper" else "")
                   + f"MAF source: {results.maf_source}.")
        out.append(FigureOut(f"fig-by-maf-{protocol}{suffix.replace('_', '-')}", f"fig_by_maf_{protocol}{suffix}.png",
                             f"{metric_name(metric, protocol)} by MAF bin, {protocol} protocol", caption, png,
                             display_width(png), min_font_pt=font))
    return out
