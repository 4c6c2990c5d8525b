"""The report as an ordered list of sections (tables and figures), rendered by ``markdown.py``
and ``html.py``."""

from __future__ import annotations


from impbench.report import figures, figures_maf, figures_verdict, overview
from impbench.report.load import RunResults
from impbench.report.model import FigureOut, Report, Section, display_width as _display_width
from impbench.report.style import PROTOCOL_NAMES, level_label, protocol_order
from impbench.report.paired import PairIndex
from impbench.report.tables import (Table, failures, level_tables, paper_inflation, runtime_frame, runtime_table,
                                    summarise)
from impbench.report.notes import dosage_notes, fallback_note, flags, rare_class_note
from impbench.report.recommend import answer_table, recommendation
from impbench.report.verdict import (DEFAULT_MARGIN, NONE_BELOW, cohort_table, headline_name, level_verdicts,
                                     verdict_table)

__all__ = ["FigureOut", "Report", "Section", "Table", "build_report", "verdict_sections"]


def _level_slug(level: float) -> str:
    return f"L{level:g}"


def _figure(key: str, filename: str, title: str, caption: str, png: bytes | None) -> list[FigureOut]:
    return [FigureOut(key, filename, title, caption, png, _display_width(png))] if png else []


def verdict_sections(results: RunResults, draw: bool = True, step=lambda message: None,
                     margin: float = DEFAULT_MARGIN) -> list[Section]:
    """The Verdict: the recommendation sentence and one compact table across levels (the first
    screen); then the notes on these numbers (collapsed); per level a ranking with paired
    differences and one sentence (collapsed); the forest plot; per test cohort when there is
    more than one."""
    index = PairIndex(results.pairs)
    verdicts = level_verdicts(results, index, margin=margin)
    fallback = fallback_note(results)
    rare = rare_class_note(results)
    warnings = [n for n in [fallback, *flags(results)] if n]
    notes = [n for n in [*dosage_notes(results), rare] if n]
    if not verdicts:
        return [Section("verdict", "Verdict", alerts=warnings, notes=notes,
                        intro="No verdict: metrics.csv has no overall dosage R² (standard protocol) yet.")]
    answer = answer_table(results, verdicts)
    answer.note += " " + rare if rare else ""
    intro = recommendation(results, verdicts)
    if fallback:
        intro += " Note: ranked on pooled R² (older run folder), see the notes below."
    sections = [Section("verdict", "Verdict", intro=intro, tables=[answer])]
    sections.append(Section("verdict-notes", "Notes on these numbers", depth=3, in_nav=False,
                            alerts=warnings, notes=notes, collapsed=True, intro=(
        f"How the verdict reads: imputers ranked by {headline_name(verdicts[0].metric)} over every test sample "
        "(standard protocol), with 95% bootstrap CIs, overall and per MAF class "
        f"({', '.join(results.classes) or 'none in metrics.csv'}). One imputer is better than another only where "
        f"the paired 95% CI of the difference lies beyond {margin:g} R²; below {NONE_BELOW:g} R² an imputer does "
        "not impute a class. "
        + ("" if index else "pairs.csv is absent: no imputer can be called tied or worse."))))
    for verdict in verdicts:
        slug = _level_slug(verdict.level)
        sections.append(Section(f"verdict-{slug}", f"{level_label(verdict.level)} masked: ranking with paired "
                                "differences", depth=3, intro=verdict.sentence, in_nav=False, collapsed=True,
                                tables=[verdict_table(results, verdict, f"verdict-{slug}-rank")]))
    step("figure: forest plot")
    png = figures_verdict.forest_figure(results, verdicts) if draw else None
    sections.append(Section("verdict-forest", "Difference from the best, per MAF class", depth=3, in_nav=False))
    sections[-1].figures += _figure("fig-forest", "fig_forest.png", "Difference from the best imputer",
                                    f"Paired difference in {headline_name(verdicts[0].metric)} from the best of each "
                                    "column, with its 95% CI (same samples and masks for both); dotted: the margin "
                                    f"(−{margin:g}). Filled: best or tied with it; hollow: behind the best by more "
                                    "than the margin.", png)
    cohorts = results.cohorts
    if len(cohorts) > 1:
        by_cohort = {c: {v.level: v for v in level_verdicts(results, index, c, margin=margin)} for c in cohorts}
        tables = [cohort_table(results, v.level, {c: by_cohort[c][v.level] for c in cohorts if v.level in by_cohort[c]},
                               f"verdict-cohorts-{_level_slug(v.level)}") for v in verdicts]
        sentences = [by_cohort[c][v.level].sentence for v in verdicts[:1] for c in cohorts if v.level in by_cohort[c]]
        step("figure: per cohort")
        png = figures_verdict.cohort_figure(results, verdicts[0].metric) if draw else None
        sections.append(Section("verdict-cohorts", "Per test cohort", depth=3, in_nav=False, intro=" ".join(sentences),
                                tables=tables, grid=True, figures=_figure(
                                    "fig-cohorts", "fig_cohorts.png", f"{headline_name(verdicts[0].metric)} per "
                                    "test cohort", "Each cohort's test samples scored on their own, with 95% "
                                    "bootstrap CIs; black: all test samples. MAF source per cohort row: "
                                    + "; ".join(f"{c}: {results.row_maf_source(c)}" for c in cohorts) + ".", png)))
    return sections


def build_report(results: RunResults, progress=None, draw: bool = True, margin: float = DEFAULT_MARGIN) -> Report:
    """Compute every table and draw every figure of one run's report (no figure if not ``draw``)."""
    step = progress or (lambda message: None)
    manifest = results.manifest
    summary = summarise(results, margin)
    runtime = runtime_frame(results)
    qc_tables = overview.qc_tables(results)
    sections = verdict_sections(results, draw, step, margin) + [
        Section("overview", "Run overview", tables=[overview.dataset_table(results), overview.settings_table(results)],
                grid=True),
        Section("qc-masks", "QC summary and masks", tables=qc_tables[:1] + [overview.masks_table(results)],
                grid=True),
        *([Section("qc-steps", "QC steps", depth=3, tables=qc_tables[1:])] if len(qc_tables) > 1 else []),
        Section("imputers", "Imputers and software versions",
                tables=[overview.imputers_table(results), overview.versions_table(results)]),
    ]
    if results.metrics.empty:
        sections.append(Section("results", "Results", intro="No metrics yet: metrics.csv is absent or empty "
                                "(the run failed before scoring anything, or is still running)."))
    by_level = level_tables(results, summary)
    inflation = paper_inflation(summary)
    for protocol in protocol_order(summary["protocol"].unique()):
        step(f"figure: by MAF ({protocol})")
        figs = figures_maf.by_maf_figures(results, summary, protocol) if draw else []
        intro = inflation if protocol == "paper" else ""
        sections.append(Section(f"results-{protocol}", f"Results: {PROTOCOL_NAMES.get(protocol, protocol)}",
                                figures=figs[:1], intro=intro))
        if figs[1:]:
            sections.append(Section(f"results-{protocol}-more", f"{protocol} protocol: more metrics by MAF bin",
                                    depth=3, figures=figs[1:], collapsed=True, in_nav=False))
        for tables in (t for t in by_level if t.protocol == protocol):
            slug = f"{protocol}-{_level_slug(tables.level)}"
            sections.append(Section(slug, f"{protocol} protocol · {level_label(tables.level)} masked", depth=3,
                                    tables=[tables.overall, tables.counts]))
            sections.append(Section(f"{slug}-bins", f"{protocol} protocol · {level_label(tables.level)} masked · "
                                    "each metric by MAF bin", depth=4, tables=tables.by_bin,
                                    grid=len(results.imputers) <= 3, collapsed=True))

    has_calibration = results.calibration is not None and not results.calibration.empty
    has_quality = results.variant_quality is not None and not results.variant_quality.empty
    step("figure: calibration")
    cal = _figure("fig-calibration", "fig_calibration.png", "Calibration of genotype probabilities",
                  "Scored cells grouped by the probability of their called genotype (10 bins), pooled over "
                  "replicates (calibration.csv); ECE: expected calibration error.",
                  figures_verdict.calibration_figure(results) if draw and has_calibration else None)
    cal += _figure("fig-quality", "fig_quality.png", "Estimated against true per-variant quality",
                   "One point per variant of replicate 0 (variant_quality.csv): DR2 estimated from the scored cells' "
                   "probabilities, and the imputer's own estimate where it gives one, against the true r².",
                   figures_verdict.quality_figure(results) if draw and has_quality else None)
    sections.append(Section("calibration", "Calibration and quality estimates", figures=cal,
                            intro="" if has_calibration or has_quality else
                            "No calibration results (calibration.csv and variant_quality.csv absent or empty: "
                            "no imputer returned probabilities)."))

    step("figure: time and memory")
    png = figures.runtime_figure(results, runtime) if draw else None
    sections.append(Section("runtime", "Time and memory", tables=[runtime_table(results, runtime)],
                            figures=[FigureOut("fig-runtime", "fig_runtime.png", "Time and peak memory per imputer",
                                               "Fit and impute wall time and peak memory, from manifest.json.",
                                               png, _display_width(png))] if png else []))

    step("figure: per-sample R²")
    png = figures.per_sample_figure(results) if draw else None
    has_per_sample = results.per_sample is not None and not results.per_sample.empty
    sections.append(Section("per-sample", "Per-sample dosage R²",
                            intro="" if has_per_sample else "No per-sample results (per_sample.csv absent or empty).",
                            figures=[FigureOut("fig-per-sample", "fig_per_sample_r2.png", "Per-sample dosage R²",
                                               "One point per test sample (mean over replicates), coloured by "
                                               "cohort; boxes: quartiles. Compare two runs with "
                                               "`impbench report --compare RUN_A RUN_B`.", png,
                                               _display_width(png))] if png else []))

    confusion_figs = []
    has_confusion = results.confusion is not None and not results.confusion.empty
    if has_confusion and draw:
        for level in sorted(results.confusion["level"].unique())[:1]:  # the first level: the others in confusion.csv
            step(f"figure: confusion matrices ({level_label(level)})")
            png = figures.confusion_figure(results, level)
            if png:
                confusion_figs.append(FigureOut(f"fig-confusion-{_level_slug(level)}",
                                                f"fig_confusion_{_level_slug(level)}.png",
                                                f"Confusion matrices, {level_label(level)} masked",
                                                "Rows: true genotype, normalised to 1; cells: row fraction and "
                                                "count, summed over replicates. Other levels: confusion.csv.", png,
                                                _display_width(png)))
    sections.append(Section("confusion", "Confusion matrices", figures=confusion_figs,
                            intro="" if has_confusion else "No confusion counts (confusion.csv absent or empty)."))

    dataset = manifest.get("dataset") or {}
    subtitle = " · ".join(x for x in (
        f"run {results.name}",
        f"created {manifest['created']}" if manifest.get("created") else "",
        f"impbench {manifest['impbench_version']}" if manifest.get("impbench_version") else "",
        f"{dataset['n_variants']:,} variants" if isinstance(dataset.get("n_variants"), int) else "",
    ) if x)
    return Report(f"impbench report: {results.dataset_name}", subtitle, failures(results), sections, summary, runtime)
