"""The report's small HTML kit: its stylesheet, escaping, status badges and tables. Every piece of
text from the data passes `esc` (`html.escape`) before it reaches a page."""

from __future__ import annotations

import html

import polars as pl

from analysis import wording
from analysis.safety import no_bidi
from analysis.wording import STATUS_LABEL

REPORT_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.jp-Notebook { max-width: 1100px; margin: 0 auto; padding: 0 12px; }
table.ah { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0 16px; table-layout: auto !important; }
table.ah th, table.ah td { border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left !important; vertical-align: top; }
table.ah th { background: #f5f5f5; }
.scroll { overflow-x: auto; max-width: 100%; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; }
.badge.GOOD { background: #2e7d32; } .badge.AT_RISK { background: #ef6c00; }
.badge.BAD { background: #c62828; } .badge.NONE { background: #9e9e9e; }
.badge.INCOMPLETE { background: #fff; color: #5d4037; border: 2px dashed #8d6e63; }
.badge.rule { background: #fff; color: #333; border: 1px solid #999; font-weight: 400; }
.banner { border: 2px solid #ef6c00; background: #fff3e0; padding: 8px 12px; margin: 8px 0; border-radius: 4px; }
.muted { color: #666; font-size: 13px; }
.vega-chart { width: 100%; max-width: 100%; overflow-x: auto; }
code.sha { word-break: break-all; font-size: 11px; }
.report-header h1 { margin-bottom: 4px; }
.first-screen { border-bottom: 3px solid #333; padding-bottom: 8px; margin-bottom: 16px; }
.verdict-line { font-size: 16px; margin: 8px 0; }
table.ah.compact td, table.ah.compact th { padding: 4px 6px; }
.better { color: #2e7d32; } .worse { color: #c62828; }
ol.actions li { margin: 4px 0; }
@media (max-width: 600px) {
  table.ah { font-size: 12px; min-width: 1000px; }  /* scrolls inside its box instead of squeezing */
  table.ah th, table.ah td { padding: 4px; min-width: 4.5em; }
  table.ah.compact { min-width: 0; }  /* the first screen fits a phone */
}
@media print {
  .vega-chart, table.ah tr, .jp-OutputArea-output { break-inside: avoid; page-break-inside: avoid; }
  .jp-Notebook { max-width: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(value: object) -> str:
    return "" if value is None else html.escape(no_bidi(str(value)), quote=True)


SHOWN_CHARS = 400  # a buyer text longer than this is cut in tables (the defects CSV has it whole)


def esc_text(value: object, limit: int = SHOWN_CHARS) -> str:
    """A buyer text, escaped and cut to `limit` characters with how much was left out: a 120 KB
    comment must not make a table (or the page) 120 KB wide."""
    if value is None:
        return ""
    s = str(value)
    if len(s) <= limit:
        return esc(s)
    return esc(s[:limit]) + f' <span class="muted">[{len(s) - limit:,} more characters]</span>'


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(STATUS_LABEL.get(status, status))}</span>'


def _cell(col: str, v: object, formats: dict | None = None) -> str:
    if v is None:
        return ""
    if formats and col in formats:
        return esc(formats[col](v))
    if isinstance(v, float):
        if "rate" in col:
            return wording.pct(v)
        if col.startswith("p_"):
            return f"{v:.2f}"
        return f"{v:,.1f}"
    return esc_text(v) if isinstance(v, str) else esc(v)


def table_html(
    df: pl.DataFrame, columns: dict[str, str], limit: int = 50, formats: dict | None = None
) -> str:
    """An escaped HTML table of `columns` (name -> heading) of `df`, first `limit` rows;
    `formats` maps a column to the function that writes its values (else: by the column's name)."""
    if df.is_empty():
        return "<p>None.</p>"
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{esc(columns[c])}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(c, r[c], formats)}</td>" for c in cols) + "</tr>"
        for r in df.head(limit).iter_rows(named=True)
    )
    more = f'<p class="muted">Showing {limit} of {df.height}.</p>' if df.height > limit else ""
    return f'<div class="scroll"><table class="ah"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'
