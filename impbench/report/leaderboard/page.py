"""The leaderboard's files: ``leaderboard.html`` (results first: the standings, then each
scenario's ranking with CIs, seconds and peak memory, then where each scenario's records came
from), ``leaderboard.csv`` (one row per task x imputer) and ``leaderboard.json``. The page is
self-contained: inline CSS, no script, no network (the same policy as the report)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from impbench import __version__
from impbench.files import atomic_write, to_jsonable
from impbench.report.leaderboard.collect import Scenario
from impbench.report.leaderboard.rank import Entry, Standing, Task
from impbench.report.style import fmt_mb, fmt_seconds, level_phrase, metric_name

CSS = """
:root { --ink:#1b1f24; --muted:#5b6470; --line:#d8dde3; --head:#f1f4f7; --best:#e3effa; --accent:#0072B2; }
* { box-sizing:border-box; }
body { margin:0; font-family:system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color:var(--ink);
       line-height:1.45; font-size:15px; }
main { max-width:1480px; margin:0 auto; padding:24px 32px 64px; }
header { border-bottom:3px solid var(--accent); padding-bottom:10px; margin-bottom:14px; }
h1 { font-size:28px; margin:0 0 4px; } h2 { font-size:22px; margin:34px 0 10px; border-bottom:1px solid var(--line); }
h3 { font-size:17px; margin:24px 0 6px; }
.muted, .subtitle { color:var(--muted); } .subtitle { margin:0; }
.lead { font-size:17px; margin:8px 0 12px; }
.scroll { overflow-x:auto; max-width:100%; }
table { border-collapse:collapse; margin:6px 0 10px; font-size:14px; }
th, td { border:1px solid var(--line); padding:4px 9px; text-align:left; vertical-align:top; }
th { background:var(--head); font-weight:600; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.top td { background:var(--best); } td.na { color:var(--muted); font-style:italic; }
.warn { background:#fff6e0; border:1px solid #e8cf8f; border-left:8px solid #E69F00; border-radius:6px;
        padding:6px 14px; margin:8px 0; }
footer { margin-top:40px; color:var(--muted); font-size:13px; }
"""


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(entry: Entry) -> str:
    if not math.isfinite(entry.ci_low):
        return _fmt(entry.value)
    return f"{_fmt(entry.value)} [{_fmt(entry.ci_low)}, {_fmt(entry.ci_high)}]"


def _cell(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"


def _table(head: list[str], rows: list[str]) -> str:
    return ('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def lead_sentence(standings: list[Standing], tasks: list[Task]) -> str:
    ranked = [s for s in standings if s.ranks]
    if not ranked:
        return "No imputer has a score in any scenario."
    best = ranked[0]
    return (f"{best.imputer} has the best mean rank, {best.mean_rank:.2f} over {len(best.ranks)} of {len(tasks)} "
            f"tasks (won {best.won}, tied {best.tied}, lost {best.lost}).")


def standings_table(standings: list[Standing], n_tasks: int) -> str:
    rows = []
    for position, s in enumerate(standings, 1):
        top = ' class="top"' if position == 1 and s.ranks else ""
        rows.append(f"<tr{top}>" + _cell(str(position), "num") + _cell(s.imputer)
                    + _cell(_fmt(s.mean_rank, 2) if s.ranks else "–", "num")
                    + _cell(f"{s.won} / {s.tied} / {s.lost}", "num") + _cell(f"{len(s.ranks)} of {n_tasks}", "num")
                    + _cell(str(s.not_applicable), "num") + _cell(str(s.failed), "num") + "</tr>")
    table = _table(["#", "Imputer", "Mean rank", "Won / tied / lost", "Tasks ranked", "n/a", "Failed or missing"], rows)
    fewer = [s.imputer for s in standings if s.ranks and len(s.ranks) < n_tasks]
    if fewer:
        table += (f'<p class="warn">{escape(", ".join(fewer))}: ranked in fewer tasks than there are (n/a, failed or '
                  "missing in the others); a mean rank is over the tasks an imputer was ranked in, so compare those "
                  "imputers scenario by scenario below.</p>")
    return table


def scenario_block(scenario: Scenario, tasks: list[Task], metric: str) -> str:
    """One scenario: rows are imputers, per level the headline [CI] and the rank, then cost."""
    first = scenario.first
    settings = first.get("settings") or {}
    shown = ("panel_cohort", "test_cohort") if settings.get("panel_cohort") else ("train_cohort", "test_cohort")
    cohorts = ", ".join(f"{k.replace('_cohort', '')} {settings[k]}" for k in shown if settings.get(k))
    facts = [str(first["dataset"].get("name")), str(settings.get("scheme"))] + ([cohorts] if cohorts else [])
    if settings.get("typed"):
        facts.append(str(settings["typed"]))
    imputers = list(dict.fromkeys(e.imputer for t in tasks for e in t.entries))
    by_level = {t.level: {e.imputer: e for e in t.entries} for t in tasks}
    rows = []
    notes: dict[str, dict[str, None]] = {}
    for name in sorted(imputers, key=lambda n: tuple((by_level[t.level][n].rank or 99) for t in tasks)):
        entries = [by_level[t.level][name] for t in tasks]
        top = ' class="top"' if any(e.rank == 1 for e in entries) else ""
        cells = _cell(name)
        for e in entries:
            if e.state == "ranked":
                mark = "" if e.paired else " (unpaired)"
                cells += _cell(_ci(e), "num") + _cell(f"{e.rank} {e.outcome}{mark}", "num")
            else:
                cells += _cell(e.state, "na") + _cell("–", "na")
                if e.note:
                    notes.setdefault(name, {}).setdefault(e.note, None)
        cells += _cell(fmt_seconds(entries[0].seconds), "num") + _cell(fmt_mb(entries[0].peak_mb), "num")
        rows.append(f"<tr{top}>{cells}</tr>")
    head = ["Imputer"]
    for t in tasks:
        head += [f"{level_phrase(t.level, str(settings.get('scheme')))} [95% CI]", "Rank"]
    head += ["Seconds (fit + impute)", "Peak memory (MB)"]
    return (f'<h3 id="{escape(scenario.label)}">{escape(scenario.label)}</h3>'
            f'<p class="muted">{escape(" · ".join(facts))} · {escape(metric_name(metric))} per masking level</p>'
            + _table(head, rows)
            + "".join(f'<p class="muted">{escape(name)}: {escape("; ".join(texts))}</p>' for name, texts in notes.items()))


def provenance_table(scenarios: list[Scenario]) -> str:
    rows = []
    for scenario in scenarios:
        first = scenario.first
        machines = {json.dumps(s.record.get("machine"), sort_keys=True) for s in scenario.sources}
        machine = first.get("machine") or {}
        machine_text = (f"{machine.get('cpu') or '?'}, {machine.get('usable_cores') or '?'} cores, "
                        f"{machine.get('memory_gb') or '?'} GB" + (f", {', '.join(machine['gpus'])}" if machine.get("gpus") else "")
                        if machine else "not recorded")
        if len(machines) > 1:
            machine_text += f" (and {len(machines) - 1} other machine(s))"
        paths = sorted({s.path for s in scenario.sources})
        rows.append("<tr>" + _cell(scenario.label) + _cell(str(first["dataset"].get("hash"))[:12])
                    + _cell(str(len(first.get("masks") or [])), "num") + _cell(machine_text)
                    + _cell("; ".join(paths)) + "</tr>")
    return _table(["Scenario", "Dataset hash", "Masks", "Machine", "From"], rows)


def leaderboard_html(scenarios: list[Scenario], tasks: list[Task], standings: list[Standing], metric: str,
                     margin: float) -> str:
    blocks = "".join(scenario_block(s, [t for t in tasks if t.scenario is s], metric) for s in scenarios)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    how = (f"A task is one scenario at one masking level; the headline is {metric_name(metric)} ({metric}), "
           "overall, masked cells, all test samples, with its 95% bootstrap CI. An imputer beats another when "
           "their paired bootstrap difference excludes 0 and exceeds the margin "
           f"({margin:g}); records from different runs are compared unpaired (CIs apart by more than the margin). "
           "Rank = 1 + the number of imputers that beat it; won: rank 1 and beats all others; tied: rank 1, not "
           "beating all; lost: rank above 1. n/a: the imputer does not apply to the scenario.")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>impbench leaderboard</title><style>{CSS}</style></head>
<body><main>
<header><h1>impbench leaderboard</h1>
<p class="subtitle">{len(scenarios)} scenario(s), {len(tasks)} task(s), {len(standings)} imputer(s)</p></header>
<section id="standings"><h2>Standings</h2>
<p class="lead">{escape(lead_sentence(standings, tasks))}</p>
{standings_table(standings, len(tasks))}
<p class="muted">{escape(how)}</p></section>
<section id="scenarios"><h2>Per scenario</h2>{blocks}</section>
<section id="provenance"><h2>Where the records come from</h2>{provenance_table(scenarios)}</section>
<footer>Written by impbench {escape(__version__)} on {stamp}. Self-contained page: no script, no network access.</footer>
</main></body></html>
"""


def leaderboard_rows(tasks: list[Task]) -> list[dict]:
    rows = []
    for task in tasks:
        for e in task.entries:
            rows.append({"suite": task.scenario.key[0], "scenario": task.scenario.key[1], "level": task.level,
                         "imputer": e.imputer, "state": e.state, "value": e.value, "ci_low": e.ci_low,
                         "ci_high": e.ci_high, "rank": e.rank, "outcome": e.outcome, "paired": e.paired,
                         "seconds": e.seconds, "peak_mb": e.peak_mb, "note": e.note})
    return rows


def write_leaderboard(out_dir: Path, scenarios: list[Scenario], tasks: list[Task], standings: list[Standing],
                      metric: str, margin: float, formats: tuple[str, ...] = ("html", "csv", "json")) -> dict[str, Path]:
    """Write the chosen files into ``out_dir`` (each atomically); returns format -> path."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    rows = leaderboard_rows(tasks)
    if "html" in formats:
        written["html"] = atomic_write(out_dir / "leaderboard.html",
                                       leaderboard_html(scenarios, tasks, standings, metric, margin))
    if "csv" in formats:
        written["csv"] = atomic_write(out_dir / "leaderboard.csv",
                                      pd.DataFrame(rows).to_csv(index=False, float_format="%.6g"))
    if "json" in formats:
        data = {"metric": metric, "margin": margin, "impbench_version": __version__,
                "standings": [{"imputer": s.imputer, "mean_rank": s.mean_rank if s.ranks else None,
                               "tasks_ranked": len(s.ranks), "won": s.won, "tied": s.tied, "lost": s.lost,
                               "not_applicable": s.not_applicable, "failed": s.failed} for s in standings],
                "scenarios": [{"suite": s.key[0], "scenario": s.key[1], "dataset": s.first["dataset"],
                               "settings": s.first.get("settings"), "sources": sorted({x.path for x in s.sources})}
                              for s in scenarios],
                "tasks": rows}
        written["json"] = atomic_write(out_dir / "leaderboard.json", json.dumps(to_jsonable(data), indent=2) + "\n")
    return written
