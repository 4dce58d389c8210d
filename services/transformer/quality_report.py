"""The build's data-quality report as one self-contained HTML page.

The page is opened from object storage or an e-mail attachment, often offline, so it carries its
own CSS, draws histograms as inline SVG and loads nothing. Every value shown may come from a
planner's spreadsheet (item descriptions, depot names, even column names), so every piece of
data goes through `html.escape`, and a Content-Security-Policy forbids scripts as a second line
of defence.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from services.transformer.quality import (
    CheckResult,
    ColumnProfile,
    HistogramBin,
    TableProfile,
    TopValue,
    gate,
    json_safe,
)

CELL_CHARS = 80  # longer values are cut in table cells; the full check sample is in dq_results
LINEAGE_MAX_DEPTH = 8
HISTOGRAM_WIDTH = 120
HISTOGRAM_HEIGHT = 32

_CSS = """
:root { --ok: #1b7f3b; --bad: #b42318; --warn: #a15c00; --line: #d9dde3; --muted: #5b6470; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 24px; color: #1d2430; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.gate { padding: 12px 16px; border-radius: 6px; margin: 16px 0; border: 1px solid; }
.gate.blocked { background: #fef3f2; border-color: var(--bad); color: var(--bad); }
.gate.open { background: #ecfdf3; border-color: var(--ok); color: var(--ok); }
.gate strong { font-size: 16px; }
.gate ul { margin: 6px 0 0; color: #1d2430; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f5f6f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: var(--ok); font-weight: 600; }
.fail { color: var(--bad); font-weight: 600; }
.sev-error { color: var(--bad); }
.sev-warn { color: var(--warn); }
.null { color: var(--muted); font-style: italic; }
table.sample { font-size: 12px; margin: 4px 0; }
table.sample th, table.sample td { padding: 2px 4px; }
details summary { cursor: pointer; color: var(--muted); }
svg.hist rect { fill: #4f7cac; }
ol.top { margin: 0; padding-left: 18px; }
dl.kv { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dl.kv dt { font-weight: 600; }
dl.kv dd { margin: 0; }
dl.kv dl.kv, dl.kv ol { margin: 2px 0 4px; }
footer { margin-top: 40px; font-size: 12px; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any, *, limit: int = CELL_CHARS) -> str:
    """A data value for a table cell: escaped, cut to `limit`, nulls shown as such."""
    if value is None:
        return '<span class="null">null</span>'
    text = value if isinstance(value, str) else str(json_safe(value))
    if len(text) > limit:
        return f'<span title="{_esc(text)}">{_esc(text[:limit])}…</span>'
    return _esc(text)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f'<time datetime="{_esc(moment.isoformat())}">{_esc(moment.isoformat(" "))}</time>'


# --- gate and checks --------------------------------------------------------------------------


def _gate_section(results: Sequence[CheckResult]) -> str:
    decision = gate(results)
    passed = sum(r.passed for r in results)
    summary = (
        f"{_plural(len(results), 'check')}: {passed:,} passed, "
        f"{_plural(len(decision.errors), 'failed error')}, "
        f"{_plural(len(decision.warnings), 'failed warning')}"
    )
    if decision.blocked:
        failures = "".join(
            f"<li><strong>{_esc(r.check)}</strong> on <code>{_esc(r.table)}</code>: "
            f"{_esc(r.message)}</li>"
            for r in decision.errors
        )
        return (
            '<section class="gate blocked" id="gate">'
            "<strong>Blocked: an error-severity check failed.</strong> "
            f"<span>{_esc(summary)}</span><ul>{failures}</ul></section>"
        )
    return (
        '<section class="gate open" id="gate">'
        "<strong>Passed: no error-severity check failed.</strong> "
        f"<span>{_esc(summary)}</span></section>"
    )


def _sample_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return (
        f"<details><summary>{len(rows)} sample row{'' if len(rows) == 1 else 's'}</summary>"
        f'<table class="sample"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</details>"
    )


def _checks_section(results: Sequence[CheckResult]) -> str:
    # Failed errors first, then failed warnings, then passes; declaration order within each.
    def rank(result: CheckResult) -> int:
        if result.passed:
            return 2
        return 0 if result.severity == "error" else 1

    rows = []
    for r in sorted(results, key=rank):
        verdict = '<span class="pass">pass</span>' if r.passed else '<span class="fail">FAIL</span>'
        description = f'<div class="muted">{_esc(r.description)}</div>' if r.description else ""
        rows.append(
            "<tr>"
            f"<td><strong>{_esc(r.check)}</strong>{description}</td>"
            f"<td><code>{_esc(r.table)}</code></td>"
            f"<td>{_esc(r.kind)}</td>"
            f'<td class="sev-{_esc(r.severity)}">{_esc(r.severity)}</td>'
            f"<td>{verdict}</td>"
            f'<td class="num">{_count(r.failing_rows)}</td>'
            f"<td>{_esc(r.message)}{_sample_table(r.sample)}</td>"
            "</tr>"
        )
    if not rows:
        return '<section id="checks"><h2>Checks</h2><p class="muted">No checks ran.</p></section>'
    return (
        '<section id="checks"><h2>Checks</h2><table><thead><tr>'
        "<th>Check</th><th>Table</th><th>Kind</th><th>Severity</th><th>Result</th>"
        "<th>Failing rows</th><th>Message and sample</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


# --- profiles ---------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.6g}"


def histogram_svg(bins: Sequence[HistogramBin], label: str) -> str:
    """Bars of equal width whose heights follow the bin counts; each bar's title names its bin."""
    if not bins:
        return '<span class="null">no finite values</span>'
    tallest = max(b.count for b in bins) or 1
    slot = HISTOGRAM_WIDTH / len(bins)
    bars = []
    for index, b in enumerate(bins):
        height = round(HISTOGRAM_HEIGHT * b.count / tallest, 2)
        if b.count and height < 1:
            height = 1.0  # a non-empty bin stays visible next to a huge one
        bars.append(
            f'<rect x="{index * slot + 1:.2f}" y="{HISTOGRAM_HEIGHT - height:.2f}" '
            f'width="{max(slot - 2, 1):.2f}" height="{height:.2f}">'
            f"<title>{_esc(_number(b.lower))} – {_esc(_number(b.upper))}: {b.count:,}</title>"
            "</rect>"
        )
    return (
        f'<svg class="hist" width="{HISTOGRAM_WIDTH}" height="{HISTOGRAM_HEIGHT}" '
        f'viewBox="0 0 {HISTOGRAM_WIDTH} {HISTOGRAM_HEIGHT}" role="img" '
        f'aria-label="histogram of {_esc(label)}">{"".join(bars)}</svg>'
    )


def _top_values(values: Sequence[TopValue]) -> str:
    if not values:
        return '<span class="null">no values</span>'
    items = "".join(
        f'<li>{_cell(v.value, limit=40)} <span class="muted">× {v.count:,}</span></li>'
        for v in values
    )
    return f'<ol class="top">{items}</ol>'


def _distribution(column: ColumnProfile) -> str:
    if column.histogram is not None:
        return histogram_svg(column.histogram, column.name)
    if column.top_values is not None:
        return _top_values(column.top_values)
    return ""


def _table_profile(name: str, table: TableProfile) -> str:
    rows = []
    for c in table.columns:
        distinct = _count(c.distinct_count)
        if c.distinct_count is not None and not c.distinct_exact:
            distinct = f'<span title="HyperLogLog estimate">≈{distinct}</span>'
        rows.append(
            "<tr>"
            f"<td><code>{_esc(c.name)}</code></td>"
            f'<td class="mono">{_esc(c.type)}</td>'
            f'<td class="num">{_count(c.null_count)}</td>'
            f'<td class="num">{c.null_rate:.1%}</td>'
            f'<td class="num">{distinct}</td>'
            f"<td>{_cell(c.min) if c.min is not None else ''}</td>"
            f"<td>{_cell(c.max) if c.max is not None else ''}</td>"
            f"<td>{_distribution(c)}</td>"
            "</tr>"
        )
    return (
        f"<h3><code>{_esc(name)}</code> "
        f'<span class="muted">{table.row_count:,} row{"" if table.row_count == 1 else "s"}'
        "</span></h3><table><thead><tr><th>Column</th><th>Type</th><th>Nulls</th>"
        "<th>Null rate</th><th>Distinct</th><th>Min</th><th>Max</th><th>Distribution</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _tables_section(profiles: Mapping[str, TableProfile]) -> str:
    if not profiles:
        return '<section id="tables"><h2>Tables</h2><p class="muted">No profiles.</p></section>'
    counts = "".join(
        f'<tr><td><code>{_esc(name)}</code></td><td class="num">{p.row_count:,}</td></tr>'
        for name, p in profiles.items()
    )
    details = "".join(_table_profile(name, p) for name, p in profiles.items())
    return (
        '<section id="tables"><h2>Tables</h2>'
        "<table><thead><tr><th>Table</th><th>Rows</th></tr></thead>"
        f"<tbody>{counts}</tbody></table>{details}</section>"
    )


# --- lineage ----------------------------------------------------------------------------------


def _lineage_value(value: Any, depth: int = 0) -> str:
    """Any nesting of mappings and sequences as definition lists and ordered lists."""
    if depth >= LINEAGE_MAX_DEPTH:
        return _cell(value)
    if isinstance(value, Mapping):
        if not value:
            return '<span class="null">(empty)</span>'
        items = "".join(
            f"<dt>{_esc(key)}</dt><dd>{_lineage_value(item, depth + 1)}</dd>"
            for key, item in value.items()
        )
        return f'<dl class="kv">{items}</dl>'
    if isinstance(value, list | tuple | set | frozenset):
        if not value:
            return '<span class="null">(empty)</span>'
        items = "".join(f"<li>{_lineage_value(item, depth + 1)}</li>" for item in value)
        return f"<ol>{items}</ol>"
    if isinstance(value, datetime | date):
        return _esc(json_safe(value))
    if value is None:
        return '<span class="null">null</span>'
    return _esc(value)


def _lineage_section(lineage: Mapping[str, Any]) -> str:
    body = _lineage_value(lineage) if lineage else '<p class="muted">No lineage recorded.</p>'
    return f'<section id="lineage"><h2>Lineage</h2>{body}</section>'


# --- page -------------------------------------------------------------------------------------


def render_html_report(
    *,
    build_id: str,
    created_at: datetime,
    results: Sequence[CheckResult],
    profiles: Mapping[str, TableProfile],
    lineage: Mapping[str, Any],
) -> str:
    """The whole report: gate decision first, then checks, table profiles and lineage."""
    results = list(results)
    title = f"Data quality — build {build_id}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may load or run: no scripts, no fetches, only the inline stylesheet.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        "<header><h1>Data-quality report</h1>"
        f'<p class="muted">Build <code>{_esc(build_id)}</code> · {_when(created_at)}</p>'
        "</header>"
        f"{_gate_section(results)}"
        f"{_checks_section(results)}"
        f"{_tables_section(profiles)}"
        f"{_lineage_section(lineage)}"
        '<footer class="muted">Generated by the transformer; self-contained, no external '
        "resources.</footer>"
        "</body></html>\n"
    )
