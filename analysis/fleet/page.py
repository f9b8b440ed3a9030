"""The fleet page: one row per account, worst first, so an agency sees who needs help today.

Each row: the account (a link to its report when one was rendered), its state and Account Health
Rating, every metric as a coloured cell per marketplace (our Good / Fair / Poor / Incomplete, the
rate, and last week's rate with an arrow, as the account's own report shows them), the period's
open incidents and today's actions. A failed account comes first with its reason.

Offline like every report: one HTML file, the report's stylesheet inlined, no script, no request to
any host; the table scrolls inside its box on a phone. Every text from the data is escaped."""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse

from analysis import __version__, wording
from analysis.inputs.marketplaces import COUNTRY_TO_ID, marketplace_label
from analysis.metrics.settings import Settings
from analysis.report.context import metric_json
from analysis.report.kit import REPORT_CSS, badge, esc
from analysis.report.sections import SECTIONS, STATUS_ORDER, cell_status, rate_text
from analysis.wording import STATUS_LABEL

METRIC_IDS = [metric_id for _, ids in SECTIONS for metric_id in ids]
# the account's state (summary.account_state's words) as a badge colour
STATE_CLASS = {"Deactivated": "BAD", "At risk": "AT_RISK", "Not known": "INCOMPLETE", "Healthy": "GOOD"}
STATE_RANK = {"Deactivated": 3, "At risk": 2, "Not known": 1, "Healthy": 0}
# a short tag per marketplace in a cell (US, UK, DE...): the first country code naming it
_COUNTRY = {}
for _code, _mid in COUNTRY_TO_ID.items():
    _COUNTRY.setdefault(_mid, _code)

FLEET_CSS = """
main.fleet { max-width: 1600px; margin: 0 auto; padding: 0 12px; }
main.fleet h1 { font-size: 22px; margin-bottom: 4px; }
table.fleet td.acct { min-width: 9em; max-width: 18em; overflow-wrap: anywhere; }
table.fleet th:first-child, table.fleet td:first-child { position: sticky; left: 0; z-index: 1; background: #fff; }
table.fleet thead th:first-child { background: #f5f5f5; }
table.fleet td.cell { min-width: 8.5em; }
table.fleet td.s-BAD { background: #ffebee; } table.fleet td.s-AT_RISK { background: #fff3e0; }
table.fleet td.s-GOOD { background: #e8f5e9; } table.fleet td.s-INCOMPLETE { background: #efebe9; }
table.fleet td.s-NONE { background: #fafafa; }
table.fleet tr.failed td { background: #ffebee; }
table.fleet .mk { display: inline-block; min-width: 2.2em; font-weight: 600; font-size: 12px; color: #444; }
table.fleet .line { white-space: nowrap; margin: 2px 0; }
table.fleet td.num { text-align: right !important; font-variant-numeric: tabular-nums; }
.error { color: #b71c1c; }
@media (max-width: 600px) { table.ah.fleet { min-width: 1400px; } main.fleet h1 { font-size: 18px; } }
"""


def row_statuses(row: dict, settings: Settings) -> list[str]:
    doc = row.get("document")
    if not doc:
        return []
    return [
        cell_status(settings.metric(mid), metric_json(pm, mid))
        for pm in doc["performanceMetrics"]
        for mid in METRIC_IDS
    ]


def data_short(row: dict) -> bool:
    """The account's data ends before the period's as-of day (run with --allow-incomplete): its
    numbers are of an incomplete period."""
    return bool(row.get("dataEnds") and row.get("asOf") and row["dataEnds"] < row["asOf"])


def never_green(row: dict) -> bool:
    """A row whose run failed, or whose data ends before the period, shows no green."""
    return row.get("status") == "failed" or data_short(row)


def severity(row: dict, settings: Settings) -> tuple:
    """Sort key, worst first: failed, the account's state, then how many metric cells are Poor,
    Fair, Incomplete, then open incidents and actions due; then the name."""
    statuses = row_statuses(row, settings)
    state = (row.get("state") or {}).get("label", "")
    rank = STATE_RANK.get(state, 1 if row.get("status") == "failed" else 0)
    if data_short(row):
        rank = max(rank, STATE_RANK["Not known"])  # an incomplete period is not known to be healthy
    return (
        row.get("status") != "failed",
        -rank,
        -statuses.count("BAD"),
        -statuses.count("AT_RISK"),
        -statuses.count("INCOMPLETE"),
        -(row.get("incidents") or 0),
        -(row.get("actions") or 0),
        row["name"].casefold(),
        row["name"],
    )


def report_href(relative: str) -> str:
    """The link from reports/fleet/<period>/index.html to reports/<account>/<period>/<file>:
    every folder name URL-encoded (its bytes as on disk), so `Shop #2` stays a path."""
    return "../../" + "/".join(urllib.parse.quote(os.fsencode(p), safe="") for p in relative.split("/"))


def _arrow(md, now: float | None, before: float | None) -> str:
    """As the report's compact table: ▲/▼ coloured better or worse, '=' when unchanged."""
    if now is None or before is None:
        return ""
    if abs(now - before) < 1e-12:
        return "= "
    up = now > before
    return f'<span class="{"better" if up == md.higher_is_better else "worse"}">{"▲" if up else "▼"}</span> '


def _metric_cell(row: dict, settings: Settings, metric_id: str) -> str:
    """A failed row's metrics (computed before its report or e-mail failed) are shown, but never
    green: the account's run did not finish."""
    md = settings.metric(metric_id)
    failed = never_green(row)
    lines, statuses = [], []
    many = len(row["document"]["performanceMetrics"]) > 1
    for pm in row["document"]["performanceMetrics"]:
        mkt = pm["marketplaceId"]
        obj = metric_json(pm, metric_id)
        status = cell_status(md, obj)
        statuses.append(status)
        tag = (
            f'<span class="mk" title="{esc(marketplace_label(mkt))}">{esc(_COUNTRY.get(mkt, mkt))}</span>'
            if many
            else ""
        )
        if status == "NONE" and not obj[md.denominator_key]:
            lines.append(f'<div class="line">{tag}<span class="muted">no orders in the window</span></div>')
            continue
        before = (row.get("lastWeek") or {}).get(mkt, {}).get(metric_id)
        now = obj.get("rate") if status != "INCOMPLETE" else None
        last = (
            f'<br><span class="muted">{_arrow(md, now, before)}from {esc(wording.pct(before))}</span>'
            if before is not None
            else ""
        )
        shown = _grey(badge(status)) if failed and status == "GOOD" else badge(status)
        lines.append(f'<div class="line">{tag}{shown} <b>{esc(rate_text(md, obj))}</b>{last}</div>')
    worst = max(statuses, key=lambda s: STATUS_ORDER.get(s, 0), default="NONE")
    if failed and worst == "GOOD":
        worst = "NONE"
    return f'<td class="cell s-{esc(worst)}" data-status="{esc(worst)}">{"".join(lines)}</td>'


def _grey(badge_html: str) -> str:
    return badge_html.replace('class="badge GOOD"', 'class="badge NONE"', 1)


def _ahr_html(row: dict) -> str:
    """Amazon's Account Health Rating per marketplace, with its snapshot's date."""
    parts = row.get("ahr") or []
    many = len(parts) > 1
    lines = []
    for a in parts:
        tag = (
            f'<span class="mk">{esc(_COUNTRY.get(a["marketplaceId"], a["marketplaceId"]))}</span>'
            if many
            else ""
        )
        if a.get("status"):
            score = f" {esc(a['score'])}" if a.get("score") is not None else ""
            lines.append(
                f'<div class="line">{tag}<b>{esc(a["status"])}{score}</b> <span class="muted">({esc(a["date"])})</span></div>'
            )
        else:
            lines.append(f'<div class="line">{tag}<span class="muted">not known</span></div>')
    return "".join(lines) or '<span class="muted">–</span>'


def _row_html(row: dict, settings: Settings, fleet_as_of: str | None) -> str:
    failed = row.get("status") == "failed"
    name = esc(row["name"])
    link = f'<a href="{esc(report_href(row["report"]))}">{name}</a>' if row.get("report") else name
    acct = f"<b>{link}</b>"
    if data_short(row):
        acct += (
            f'<br><span class="badge INCOMPLETE">Incomplete</span> <span class="muted">{esc(row.get("period"))}: '
            f"the data ends {esc(row['dataEnds'])}, before the as-of day {esc(row['asOf'])}</span>"
        )
    elif row.get("asOf") and row.get("asOf") != fleet_as_of:
        acct += f'<br><span class="muted">{esc(row.get("period"))} (as of {esc(row["asOf"])}): data ends {esc(row.get("dataEnds"))}</span>'
    if failed:  # the reason in the first column, which stays in view when the table scrolls
        reason = esc(row.get("error", ""))
        acct += f'<br><span class="badge BAD">Failed</span> <span class="error reason">{reason}</span>'
    cells = [f'<td class="acct">{acct}</td>']
    state = row.get("state")
    if state:
        cls = STATE_CLASS.get(state["label"], "NONE")
        if never_green(row) and cls == "GOOD":
            cls = "NONE"  # a failed or incomplete row is never green
        cells.append(
            f'<td><span class="badge {cls}">{esc(state["label"])}</span>'
            f'<br><span class="muted">{esc(state["source"])}</span></td>'
        )
    else:
        cells.append('<td class="muted">–</td>')
    if not row.get("document"):
        cells.append('<td class="muted">–</td>')
        cells.append(
            f'<td colspan="{len(METRIC_IDS) + 2}" class="muted">No metrics: the account failed.</td>'
        )
        return f'<tr class="failed" data-account="{name}">{"".join(cells)}</tr>'
    cells.append(f"<td>{_ahr_html(row)}</td>")
    cells += [_metric_cell(row, settings, mid) for mid in METRIC_IDS]
    inc, todo = row.get("incidents") or 0, row.get("actions") or 0
    cells.append(f'<td class="num incidents{" worse" if inc else ""}">{inc:,}</td>')
    cells.append(f'<td class="num actions">{todo:,}</td>')
    cls = ' class="failed"' if failed else ""
    return f'<tr{cls} data-account="{name}">{"".join(cells)}</tr>'


def build(fleet: dict, settings_of: dict[str, Settings] | None = None, *, index_link: bool = False) -> str:
    """The page of a fleet.json document. `settings_of` (account name -> its settings) gives each
    account's metric table (titles, units; the targets are in the document); defaults otherwise."""
    settings_of = settings_of or {}
    default = Settings()
    rows = sorted(fleet["accounts"], key=lambda r: severity(r, settings_of.get(r["name"], default)))
    heads = "".join(f"<th>{esc(default.metric(mid).title)}</th>" for mid in METRIC_IDS)
    body = "".join(_row_html(r, settings_of.get(r["name"], default), fleet.get("asOf")) for r in rows)
    failed = sum(r.get("status") == "failed" for r in rows)
    at_risk = sum((r.get("state") or {}).get("label") in ("At risk", "Deactivated") for r in rows)
    poor = sum("BAD" in row_statuses(r, settings_of.get(r["name"], default)) for r in rows)
    period = esc(fleet.get("period") or "")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts = [wording.count(len(rows), "account")]
    counts.append(f"{failed:,} failed")
    counts.append(f"{at_risk:,} at risk or deactivated")
    counts.append(f"{poor:,} with a Poor metric")
    labels = " ".join(badge(s) for s in ("BAD", "AT_RISK", "INCOMPLETE", "GOOD"))
    index = ' · <a href="../../index.html">every report</a>' if index_link else ""
    as_of = fleet.get("asOf") or "each account's latest complete week"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Account Health · every account · {period}</title>"
        f'<style>{REPORT_CSS}{FLEET_CSS}</style></head><body><main class="fleet">'
        f"<h1>Account Health · every account · {period}</h1>"
        f'<p class="muted">As of {esc(as_of)} (end of day, UTC) · '
        f'generated <span class="run-time">{esc(now)}</span> · suite version {esc(__version__)}{index}</p>'
        f'<p class="verdict-line"><b>{esc(", ".join(counts))}.</b> Worst first: failed accounts, then the '
        "account's state, then the number of Poor, Fair and Incomplete metrics, open incidents and actions due.</p>"
        '<div class="scroll"><table class="ah fleet"><thead><tr><th>Account</th><th>State</th>'
        f"<th>Account Health Rating</th>{heads}<th>Open incidents</th><th>Actions due</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
        f'<p class="muted">Each metric: our status ({labels}; {esc(STATUS_LABEL["INCOMPLETE"])}: an export it '
        "needs is missing, the bound or 'not known' is shown), the rate, and last week's rate (as of 7 days "
        "before) with ▲/▼ in green when better, red when worse; one line per marketplace. The numbers are each "
        "account's own report's. Open incidents: defect spikes of the period with more defects than expected; "
        "actions due: the daily list (python -m analysis today) of the as-of day.</p>"
        "</main></body></html>\n"
    )
