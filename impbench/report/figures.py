"""The report's figures, each returned as PNG bytes (150 dpi).

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas directly, never
through ``pyplot``, so no display is needed and no global backend is switched. Colours follow
the Okabe-Ito palette (``style.OKABE_ITO``); imputers keep one colour, marker and line style
across every figure of a report. Legends sit below the axes, never over the data.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from impbench.genotypes import CALL_CODES, CODE_GT
from impbench.report.load import RunResults
from impbench.report.style import OKABE_ITO, level_label

DPI = 150
BAR_COLOUR = "#D9D9D9"
BASE_FONT = 8


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of that size (inches) at the report's DPI, with constrained layout and an Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as a palette PNG (at most 256 colours: the plots use a few flat colours, and
    a palette makes the file about three times smaller than RGBA, keeping the HTML small)."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True,
                                                                      dpi=(DPI, DPI))
    return out.getvalue()


def wrapped_suptitle(fig: Figure, text: str, fontsize: float) -> None:
    """A figure title wrapped to the figure's width (constrained layout does not wrap or shrink
    it, so a long title on a narrow figure would be cut at both edges)."""
    width_chars = max(20, int(fig.get_figwidth() * 72 / (fontsize * 0.62)))
    lines = []
    for part in text.split("\n"):
        lines += textwrap.wrap(part, width_chars, break_on_hyphens=False) or [""]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def legend_name(results: RunResults, name: str) -> str:
    status = results.status(name)
    return name if status in ("ok", "unknown") else f"{name} ({status})"


def per_sample_figure(results: RunResults) -> bytes | None:
    """Per-sample dosage R² within one run: a box per imputer and one point per test sample
    (mean over replicates), coloured by cohort; one panel per masking level."""
    frame = results.per_sample
    if frame is None or frame.empty:
        return None
    means = frame.groupby(["imputer", "level", "sample_id"], sort=False).agg(
        r2=("r2", "mean"), cohort=("cohort", "first")).reset_index()
    levels = sorted(means["level"].unique())
    imputers = [name for name in results.imputers if name in set(means["imputer"])]
    cohorts = sorted(means["cohort"].unique())
    cohort_colour = {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(cohorts)}
    rng = np.random.default_rng(0)
    fig = new_figure(min(16.0, max(3.6, 0.75 * len(imputers) + 1.4) * len(levels)), 4.2)
    axes = fig.subplots(1, len(levels), squeeze=False, sharey=True)[0]
    for ax, level in zip(axes, levels):
        at_level = means[means["level"] == level]
        values = [at_level.loc[at_level["imputer"] == n, "r2"].dropna().to_numpy(float) for n in imputers]
        positions = np.arange(len(imputers))
        ax.boxplot([v if v.size else [np.nan] for v in values], positions=positions, widths=0.55,
                   showfliers=False, medianprops={"color": "#000000"}, boxprops={"color": "#555555"},
                   whiskerprops={"color": "#555555"}, capprops={"color": "#555555"})
        for pos, name in zip(positions, imputers):
            mine = at_level[at_level["imputer"] == name]
            if mine["r2"].notna().sum() == 0:
                ax.text(pos, 0.5, "no result", transform=ax.get_xaxis_transform(), ha="center", va="center",
                        rotation=90, fontsize=BASE_FONT, color="#777777")
            jitter = rng.uniform(-0.18, 0.18, size=len(mine))
            ax.scatter(pos + jitter, mine["r2"], s=10, c=[cohort_colour[c] for c in mine["cohort"]],
                       alpha=0.8, linewidths=0, zorder=3)
        ax.set_xticks(positions)
        ax.set_xticklabels([legend_name(results, n) for n in imputers], rotation=30, ha="right",
                           rotation_mode="anchor", fontsize=BASE_FONT)
        ax.set_title(f"{level_label(level)} masked", fontsize=BASE_FONT + 1)
        ax.set_xlabel("Imputer", fontsize=BASE_FONT)
        ax.tick_params(labelsize=BASE_FONT)
        ax.grid(axis="y", color="#EEEEEE", linewidth=0.6)
    axes[0].set_ylabel("Per-sample dosage R² (fraction, 0–1)", fontsize=BASE_FONT)
    handles = [Line2D([], [], marker="o", linestyle="", color=cohort_colour[c], label=c) for c in cohorts]
    fig.legend(handles=handles, title="Cohort (one point per test sample)", loc="outside lower center",
               ncol=min(len(handles), 8), frameon=False, fontsize=BASE_FONT, title_fontsize=BASE_FONT)
    wrapped_suptitle(fig, f"Per-sample dosage R² · {results.dataset_name} / {results.name} · standard protocol, "
                 "mean over replicates", fontsize=BASE_FONT + 2)
    return figure_png(fig)


PHASED_LABELS = [str(CODE_GT[code]) for code in CALL_CODES]
DOSAGE_LABELS = ["0 (hom ref)", "1 (het)", "2 (hom alt)"]


def confusion_matrices(confusion: pd.DataFrame, imputer: str, level: float) -> dict[str, np.ndarray]:
    """Counts summed over replicates: ``phased`` int64 (4, 4) over codes 1-4, ``dosage`` (3, 3);
    rows truth, columns prediction. Standard-protocol cells only when a protocol is given."""
    frame = confusion[(confusion["imputer"] == imputer) & (confusion["level"] == level)]
    if "protocol" in frame and (frame["protocol"] == "standard").any():
        frame = frame[frame["protocol"] == "standard"]
    out = {}
    for kind, offset, size in (("phased", 1, 4), ("dosage", 0, 3)):
        part = frame[frame["kind"] == kind]
        matrix = np.zeros((size, size), dtype=np.int64)
        truth = part["truth"].to_numpy(int) - offset
        pred = part["pred"].to_numpy(int) - offset
        ok = (truth >= 0) & (truth < size) & (pred >= 0) & (pred < size)
        np.add.at(matrix, (truth[ok], pred[ok]), part["count"].to_numpy(np.int64)[ok])
        out[kind] = matrix
    return out


def confusion_figure(results: RunResults, level: float) -> bytes | None:
    """Row-normalised confusion heatmaps with counts, summed over replicates at one masking
    level: one column per imputer, rows phased (4 codes) and dosage (3 classes)."""
    confusion = results.confusion
    if confusion is None or confusion.empty:
        return None
    at_level = confusion[confusion["level"] == level]
    imputers = [name for name in results.imputers if name in set(at_level["imputer"])]
    if not imputers:
        return None
    fig = new_figure(3.1 * len(imputers) + 1.3, 7.0)
    axes = fig.subplots(2, len(imputers), squeeze=False)
    image = None
    for col, name in enumerate(imputers):
        matrices = confusion_matrices(confusion, name, level)
        for row, (kind, labels, what) in enumerate((("phased", PHASED_LABELS, "phased genotype"),
                                                     ("dosage", DOSAGE_LABELS, "ALT dosage class"))):
            ax = axes[row, col]
            counts = matrices[kind]
            totals = counts.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                fraction = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
            image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
            size = counts.shape[0]
            for i in range(size):
                for j in range(size):
                    if totals[i, 0] == 0:
                        text, colour = "–", "#777777"
                    else:
                        text = f"{fraction[i, j] * 100:.1f}%\n({counts[i, j]:,})"
                        colour = "white" if fraction[i, j] > 0.6 else "#222222"
                    ax.text(j, i, text, ha="center", va="center", fontsize=BASE_FONT - 1, color=colour)
            ax.set_xticks(range(size), labels, fontsize=BASE_FONT - 0.5)
            ax.set_yticks(range(size), labels, fontsize=BASE_FONT - 0.5)
            ax.set_xlabel(f"Imputed {what}", fontsize=BASE_FONT)
            if col == 0:
                ax.set_ylabel(f"True {what}", fontsize=BASE_FONT)
            ax.set_title(f"{legend_name(results, name)}\n{'4 phased codes' if kind == 'phased' else '3 dosage classes'}"
                         f" · n = {int(counts.sum()):,}", fontsize=BASE_FONT + 1)
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.7, aspect=30)
    bar.set_label("Fraction of the true genotype's row", fontsize=BASE_FONT)
    bar.ax.tick_params(labelsize=BASE_FONT - 1)
    wrapped_suptitle(fig, f"Confusion matrices · {level_label(level)} masked · scored (masked) cells, summed over "
                 "replicates · standard protocol", fontsize=BASE_FONT + 2)
    return figure_png(fig)


def runtime_figure(results: RunResults, runtime: pd.DataFrame) -> bytes | None:
    """Horizontal bars per imputer: wall time (fit, impute total) and peak memory (fit, impute,
    and a child process's peak, e.g. Beagle's Java, where the manifest records one)."""
    if runtime.empty or runtime[["fit_seconds", "impute_seconds_total", "fit_peak_mb", "impute_peak_mb"]].isna().all().all():
        return None
    names = [legend_name(results, n) for n in runtime["imputer"]]
    y = np.arange(len(names))
    fit_colour, impute_colour, child_colour = OKABE_ITO[0], OKABE_ITO[4], OKABE_ITO[2]
    child = runtime["child_peak_mb"].to_numpy(float)
    memory_series = [("fit_peak_mb", fit_colour), ("impute_peak_mb", impute_colour)]
    if np.isfinite(child).any():
        memory_series.append(("child_peak_mb", child_colour))
    panels = (([("fit_seconds", fit_colour), ("impute_seconds_total", impute_colour)], "Wall time (s)", "s"),
              (memory_series, "Peak memory (MB)", "MB"))
    fig = new_figure(10.0, (0.2 + 0.17 * len(memory_series)) * len(names) + 1.9)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (series, xlabel, unit) in zip(axes, panels):
        arrays = [runtime[column].to_numpy(float) for column, _ in series]
        positive = np.concatenate(arrays)
        positive = positive[np.isfinite(positive) & (positive > 0)]
        log = bool(positive.size and positive.max() / positive.min() > 100)
        floor = positive.min() / 3 if log else 0.0
        height = 0.8 / len(series)
        for index, ((_, colour), values) in enumerate(zip(series, arrays)):
            offsets = y - 0.4 + height * (index + 0.5)
            widths = np.where(np.isfinite(values), np.maximum(values - floor, 0.0), 0.0)
            ax.barh(offsets, widths, height=height, color=colour, left=floor)
            for yy, value in zip(offsets, values):
                label = f"{_quantity(value)} {unit}" if np.isfinite(value) else "–"
                ax.annotate(label, (value if np.isfinite(value) else floor, yy), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=BASE_FONT - 1)
        if log:
            ax.set_xscale("log")
            xlabel += ", log scale"
            ax.set_xlim(floor, positive.max() * 8)
        else:
            ax.set_xlim(0, (positive.max() if positive.size else 1) * 1.3)
        ax.set_xlabel(xlabel, fontsize=BASE_FONT)
        ax.tick_params(labelsize=BASE_FONT)
        ax.grid(axis="x", color="#EEEEEE", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    axes[0].set_ylabel("Imputer", fontsize=BASE_FONT)
    handles = [Patch(facecolor=fit_colour, label="fit (training, once)"),
               Patch(facecolor=impute_colour, label="impute (time: sum over units; memory: peak of units)")]
    if len(memory_series) > 2:
        handles.append(Patch(facecolor=child_colour, label="child process peak (fit or impute)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=BASE_FONT)
    wrapped_suptitle(fig, f"Time and memory · {results.dataset_name} / {results.name}", fontsize=BASE_FONT + 2)
    return figure_png(fig)


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def compare_frame(run_a: RunResults, run_b: RunResults) -> pd.DataFrame:
    """Per-sample R² of two runs matched by imputer, level and sample_id (means over replicates).

    Returns columns imputer, level, sample_id, cohort, r2_a, r2_b (inner join; cohort from A).
    """
    def means(run: RunResults) -> pd.DataFrame:
        if run.per_sample is None or run.per_sample.empty:
            return pd.DataFrame(columns=["imputer", "level", "sample_id", "cohort", "r2"])
        return run.per_sample.groupby(["imputer", "level", "sample_id"], sort=False).agg(
            cohort=("cohort", "first"), r2=("r2", "mean")).reset_index()

    a, b = means(run_a), means(run_b)
    merged = a.merge(b.drop(columns="cohort"), on=["imputer", "level", "sample_id"], suffixes=("_a", "_b"))
    return merged[["imputer", "level", "sample_id", "cohort", "r2_a", "r2_b"]]


def compare_figure(run_a: RunResults, run_b: RunResults, matched: pd.DataFrame) -> bytes | None:
    """The paper's Figure 2 layout: per-sample R² in run B against run A, one point per test
    sample, the y = x line, coloured by cohort; rows levels, columns imputers."""
    if matched.empty:
        return None
    levels = sorted(matched["level"].unique())
    order = run_a.imputers + [n for n in run_b.imputers if n not in run_a.imputers]
    imputers = [n for n in order if n in set(matched["imputer"])]
    cohorts = sorted(matched["cohort"].unique())
    cohort_colour = {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(cohorts)}
    fig = new_figure(3.3 * len(imputers) + 0.5, 3.3 * len(levels) + 1.1)
    axes = fig.subplots(len(levels), len(imputers), squeeze=False)
    for row, level in enumerate(levels):
        for col, name in enumerate(imputers):
            ax = axes[row, col]
            mine = matched[(matched["level"] == level) & (matched["imputer"] == name)].dropna(subset=["r2_a", "r2_b"])
            values = np.concatenate([mine["r2_a"].to_numpy(float), mine["r2_b"].to_numpy(float)])
            lo, hi = (values.min(), values.max()) if values.size else (0.0, 1.0)
            pad = max(0.02, 0.05 * (hi - lo))
            lo, hi = lo - pad, min(hi + pad, 1.0 + pad)
            ax.plot([lo, hi], [lo, hi], color="#888888", linestyle="--", linewidth=1, zorder=1)
            ax.scatter(mine["r2_a"], mine["r2_b"], s=14, c=[cohort_colour[c] for c in mine["cohort"]],
                       alpha=0.85, linewidths=0, zorder=3)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_aspect("equal")
            n_better = int((mine["r2_b"] > mine["r2_a"]).sum())
            ax.text(0.97, 0.03, f"n = {len(mine)} samples\nB above y = x: {n_better}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=BASE_FONT - 1, color="#333333")
            ax.set_title(f"{name} · {level_label(level)} masked", fontsize=BASE_FONT + 1)
            ax.set_xlabel(f"A: {run_a.label}\nper-sample dosage R²", fontsize=BASE_FONT - 0.5)
            ax.set_ylabel(f"B: {run_b.label}\nper-sample dosage R²", fontsize=BASE_FONT - 0.5)
            ax.tick_params(labelsize=BASE_FONT - 1)
            ax.grid(color="#EEEEEE", linewidth=0.6)
    handles = [Line2D([], [], marker="o", linestyle="", color=cohort_colour[c], label=c) for c in cohorts]
    handles.append(Line2D([], [], color="#888888", linestyle="--", label="y = x (equal R²)"))
    fig.legend(handles=handles, title="Cohort (one point per test sample)", loc="outside lower center",
               ncol=min(len(handles), 8), frameon=False, fontsize=BASE_FONT, title_fontsize=BASE_FONT)
    wrapped_suptitle(fig, f"Per-sample dosage R²: B = {run_b.label} against A = {run_a.label}",
                 fontsize=BASE_FONT + 2)
    return figure_png(fig)
