"""One self-contained HTML page: inline CSS, figures as base64 PNG data URIs, no script, no
network, no external URL of any kind (fonts are the reader's own system fonts)."""

from __future__ import annotations

import base64
import re
from html import escape

from impbench.report.model import FigureOut, Report, Section
from impbench.report.tables import Cell, Table, is_numeric_text

#: Key/value lists longer than this fold into a closed <details>.
LONG_ITEMS = 6


CSS = """
:root { --ink:#1b1f24; --muted:#5b6470; --line:#d8dde3; --head:#f1f4f7; --best:#e3effa; --accent:#0072B2; }
* { box-sizing: border-box; }
body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:#fff; line-height:1.45; font-size:15px; }
main { max-width:1480px; margin:0 auto; padding:24px 32px 64px; }
header { border-bottom:3px solid var(--accent); padding-bottom:12px; margin-bottom:16px; }
h1 { font-size:28px; margin:0 0 4px; }
.subtitle { color:var(--muted); margin:0; }
h2 { font-size:22px; margin:40px 0 12px; padding-bottom:4px; border-bottom:1px solid var(--line); }
h3 { font-size:18px; margin:28px 0 10px; }
h4 { font-size:16px; margin:22px 0 8px; color:#333; }
nav { background:var(--head); border:1px solid var(--line); border-radius:6px; padding:6px 14px; margin:10px 0 8px;
      font-size:14px; }
nav ol { display:flex; flex-wrap:wrap; gap:2px 18px; margin:2px 0; padding:0; list-style:none; }
.warn { background:#fff6e0; border:1px solid #e8cf8f; border-left:8px solid #E69F00; border-radius:6px;
        padding:8px 18px; margin:10px 0 14px; }
.warn ul { margin:4px 0; padding-left:20px; }
.sentence { font-size:16px; margin:4px 0 10px; }
.recommend { font-size:17px; background:var(--best); border-left:6px solid var(--accent); padding:8px 14px;
             border-radius:4px; }
.alert-line { color:#9a3a00; font-weight:600; }
dl.kv { display:grid; grid-template-columns:max-content minmax(0, 1fr); gap:1px 10px; margin:0; }
dl.kv dt { color:#444; font-weight:500; }
dl.kv dd { margin:0; word-break:break-word; }
td details > summary { margin:0; }
details > summary { cursor:pointer; margin:18px 0 8px; }
details > summary > h3, details > summary > h4 { display:inline; margin:0; }
table#answer td:nth-child(3) { white-space:nowrap; }
details > summary .hint { color:var(--muted); font-size:12.5px; margin-left:10px; }
nav li { margin:1px 0; }
nav a { color:var(--accent); text-decoration:none; }
nav a:hover { text-decoration:underline; }
.alert { background:#fdeee6; border:1px solid #e9b9a0; border-left:8px solid #D55E00; border-radius:6px;
         padding:12px 18px; margin:16px 0; }
.alert h2 { margin:0 0 6px; border:0; font-size:19px; color:#9a3a00; }
.alert ul { margin:4px 0; padding-left:20px; }
.alert code { white-space:pre-wrap; word-break:break-word; }
.ok { background:#eaf5ef; border:1px solid #b7dcc6; border-left:8px solid #009E73; border-radius:6px;
      padding:6px 18px; margin:10px 0; }
.intro { color:var(--muted); }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(min(100%, 600px), 1fr)); gap:8px 28px; align-items:start; }
.scroll { overflow-x:auto; margin:6px 0 14px; }
table.data { border-collapse:collapse; font-size:13px; font-variant-numeric:tabular-nums; min-width:50%; }
table.data caption { caption-side:top; text-align:left; padding:4px 0 6px; }
table.data caption .title { font-weight:650; font-size:14.5px; display:block; }
table.data caption .cap { color:var(--muted); font-size:12px; display:block; }
table.data th, table.data td { border:1px solid var(--line); padding:4px 9px; vertical-align:top; }
table.data th { background:var(--head); text-align:left; font-weight:600; }
table.data td.num { text-align:right; white-space:nowrap; }
table.data:not(.kv) td:first-child { white-space:nowrap; }
table.data td.best { background:var(--best); font-weight:700; }
table.data td.alert-cell { color:#b33c00; font-weight:700; }
table.data tr:nth-child(even) td:not(.best) { background:#fafbfc; }
table.kv td:first-child { white-space:nowrap; color:#333; font-weight:500; }
table.kv td { word-break:break-word; }
td.mono, table.kv td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12px;
                            word-break:break-all; }
.note { color:var(--muted); font-size:12px; margin:-8px 0 12px; }
figure { margin:10px 0 26px; }
figure img { max-width:100%; height:auto; border:1px solid #eceff2; border-radius:4px; display:block; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; max-width:1100px; }
footer { margin-top:48px; color:var(--muted); font-size:12px; border-top:1px solid var(--line); padding-top:8px; }
"""


def _is_mono(column: str, text: str) -> bool:
    return column in ("SHA-256",) or bool(re.fullmatch(r"[0-9a-f]{32,}", text))


def _items_html(cell: Cell) -> str:
    """A key/value list, whole (never cut); folded in a closed <details> when long."""
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in cell.items or [])
    listing = f'<dl class="kv">{items}</dl>'
    if len(cell.items or []) > LONG_ITEMS:
        return f"<details><summary>{len(cell.items)} entries</summary>{listing}</details>"
    return listing


def table_html(table: Table) -> str:
    kv = table.columns == ["Field", "Value"]
    parts = [f'<div class="tbl"><div class="scroll"><table class="data{" kv" if kv else ""}" id="{escape(table.key)}">',
             f'<caption><span class="title">{escape(table.title)}</span>'
             f'<span class="cap">{escape(table.caption)}</span></caption>',
             "<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in table.columns) + "</tr></thead><tbody>"]
    for row in table.rows:
        cells = []
        for index, cell in enumerate(row):
            classes = []
            mono = _is_mono(table.columns[index] if index < len(table.columns) else "", cell.text)
            if index > 0 and not kv and not mono and is_numeric_text(cell.text):
                classes.append("num")
            if cell.bold and cell.text:
                classes.append("best")
            if mono:
                classes.append("mono")
            if cell.alert:
                classes.append("alert-cell")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            text = escape(cell.text) if cell.items is None else _items_html(cell)
            cells.append(f"<td{cls}>{f'<strong>{text}</strong>' if cell.bold and cell.text else text}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    if not table.rows:
        parts.append(f'<tr><td colspan="{len(table.columns)}">(none)</td></tr>')
    parts.append("</tbody></table></div>")
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    parts.append("</div>")
    return "\n".join(parts)


def figure_html(figure: FigureOut) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    style = f' style="max-width:{figure.max_width_px}px"' if figure.max_width_px else ""
    font = f' data-min-font-pt="{figure.min_font_pt:.2f}"' if figure.min_font_pt else ""
    return (f'<figure id="{escape(figure.key)}"{style}><img alt="{escape(figure.title)}"{font} '
            f'src="data:image/png;base64,{data}"><figcaption><strong>{escape(figure.title)}.</strong> '
            f"{escape(figure.caption)}</figcaption></figure>")


def _section_html(section: Section) -> str:
    depth = min(section.depth, 6)
    heading = f"<h{depth}>{escape(section.title)}</h{depth}>"
    if section.collapsed:
        parts = [f"{len(section.tables)} table{'s' if len(section.tables) != 1 else ''}" if section.tables else "",
                 f"{len(section.figures)} figure{'s' if len(section.figures) != 1 else ''}" if section.figures else "",
                 f"{len(section.alerts)} warning{'s' if len(section.alerts) != 1 else ''}" if section.alerts else "",
                 f"{len(section.notes)} note{'s' if len(section.notes) != 1 else ''}" if section.notes else ""]
        what = ", ".join(p for p in parts if p)
        heading = (f"<details><summary>{heading}<span class=\"hint\">{what + ': ' if what else ''}"
                   "click to show or hide</span></summary>")
    parts = [f'<section id="s-{escape(section.key)}">{heading}']
    if section.alerts:
        items = "".join(f"<li>{escape(a)}</li>" for a in section.alerts)
        parts.append(f'<div class="warn"><strong>Results not to trust as they stand</strong><ul>{items}</ul></div>')
    if section.intro:
        if section.key == "verdict":
            parts.append(f'<p class="sentence recommend" id="recommendation">{escape(section.intro)}</p>')
        else:
            cls = "sentence" if section.key.startswith("verdict-") else "intro"
            parts.append(f'<p class="{cls}">{escape(section.intro)}</p>')
    if section.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in section.notes) + "</ul>")
    parts += [figure_html(f) for f in section.figures]
    if section.tables:
        tables = "\n".join(table_html(t) for t in section.tables)
        parts.append(f'<div class="grid">{tables}</div>' if section.grid else tables)
    parts.append("</details></section>" if section.collapsed else "</section>")
    return "\n".join(parts)


def _nav(sections: list[Section]) -> str:
    """The contents: the top-level sections, on as few lines as fit."""
    return "".join(f'<li><a href="#s-{escape(s.key)}">{escape(s.title)}</a></li>'
                   for s in sections if s.depth == 2 and s.in_nav)


def report_html(report: Report, footer: str = "") -> str:
    """The whole page as a string."""
    failures = ""
    if report.failures is not None:
        # An imputer that does not apply to the run's masking scheme did not fail: an info line.
        broken = [f for f in report.failures if f[1] != "not_applicable"]
        skipped = [f for f in report.failures if f[1] == "not_applicable"]

        def items(rows):
            return "".join(f"<li><strong>{escape(name)}</strong>: {escape(status)}"
                           + (f" — <code>{escape(error)}</code>" if error else "")
                           + (f" — {escape(note)}" if note else "") + "</li>"
                           for name, status, error, note in rows)

        if broken:
            failures = (f'<details class="banner"><summary class="alert-line">{len(broken)} imputer(s) did not finish: '
                        f'{escape(", ".join(name for name, *_ in broken))} (click to show)</summary>'
                        f'<div class="alert" id="failures"><h2>{len(broken)} imputer(s) did not finish</h2>'
                        f"<ul>{items(broken)}</ul><p>The tables and figures below show what exists for them.</p>"
                        "</div></details>")
        elif skipped:
            failures = '<div class="ok">Every imputer that applies to this run finished.</div>'
        else:
            failures = '<div class="ok">Every imputer in this run finished.</div>'
        if skipped:
            failures += (f'<div class="ok" id="not-applicable"><p>Not applicable to this masking scheme (not a '
                         f"failure):</p><ul>{items(skipped)}</ul></div>")
    nav_items = _nav(report.sections)
    # The first screen is the answer: the first section (the Verdict's recommendation and table),
    # then the banners, collapsed, then the contents and the rest.
    first = _section_html(report.sections[0]) if report.sections else ""
    body = "\n".join(_section_html(s) for s in report.sections[1:])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(report.title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{escape(report.title)}</h1><p class="subtitle">{escape(report.subtitle)}</p></header>
{first}
{failures}
<nav><ol><li><strong>Contents:</strong></li>{nav_items}</ol></nav>
{body}
<footer>{escape(footer)}</footer>
</main>
</body>
</html>
"""
