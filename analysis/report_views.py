"""What the weekly metrics-summary notebook shows, as functions (the notebook only calls them).

Every piece of text that comes from the data is escaped here, with `html.escape`, before it
reaches the page: buyer comments are shown as text, never as markup.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import polars as pl

from analysis import __version__, charts, defects, health
from analysis import metrics as m
from analysis.marketplaces import marketplace_label
from analysis.periods import iso_week_of, parse_week, week_sunday
from analysis.snapshots import VIOLATION_KEYS

TREND_WEEKS = 26
STATUS_LABEL = {"GOOD": "Good", "AT_RISK": "Fair", "BAD": "Poor", "NONE": "No data"}
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
.muted { color: #666; font-size: 13px; }
.vega-chart { width: 100%; max-width: 100%; overflow-x: auto; }
code.sha { word-break: break-all; font-size: 11px; }
.report-header h1 { margin-bottom: 4px; }
@media (max-width: 600px) {
  table.ah { font-size: 12px; min-width: 1000px; }  /* scrolls inside its box instead of squeezing */
  table.ah th, table.ah td { padding: 4px; min-width: 4.5em; }
}
@media print {
  .vega-chart, table.ah tr, .jp-OutputArea-output { break-inside: avoid; page-break-inside: avoid; }
  .jp-Notebook { max-width: none; }
  a { color: inherit; text-decoration: none; }
}
"""


@dataclass
class ReportContext:
    data_dir: Path
    week: str
    as_of: dt.date
    marketplace: str
    result: health.AccountHealth
    account: str = ""

    @property
    def marketplaces(self) -> list[str]:
        ids = [pm["marketplaceId"] for pm in self.result.document["performanceMetrics"]]
        return ids if self.marketplace == "all" else [i for i in ids if i == self.marketplace]


def prepare(
    data_dir: str | Path,
    week: str | None = None,
    as_of: str | None = None,
    marketplace: str = "all",
    account: str | None = None,
    period: str | None = None,
) -> ReportContext:
    """Compute everything the report shows: a week's report uses its Sunday as the as-of date,
    a month's report its last day."""
    if period and not week and not as_of:
        from analysis.periods import parse_period

        day = parse_period(period).as_of
    elif week:
        day = week_sunday(parse_week(week))
    elif as_of:
        day = dt.date.fromisoformat(as_of)
    else:
        raise ValueError("give the report a week (2026-W46), a month (2026-10) or an as-of date")
    result = health.account_health(data_dir, day)
    known = {pm["marketplaceId"] for pm in result.document["performanceMetrics"]}
    if marketplace != "all" and marketplace not in known:
        raise ValueError(f"marketplace {marketplace} is not in the data; it holds {', '.join(sorted(known))}")
    ctx = ReportContext(Path(data_dir), period or week or iso_week_of(day), day, marketplace, result)
    ctx.account = account or Path(data_dir).name
    return ctx


def esc(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(STATUS_LABEL.get(status, status))}</span>'


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}\u00a0%"


def header_html(ctx: ReportContext) -> str:
    orders = ctx.result.data.frame("orders").select(pl.col("purchase_ts").max()).collect().item()
    fb = ctx.result.data.frame("feedback").select(pl.col("feedback_ts").max()).collect().item()
    names = ", ".join(esc(marketplace_label(x)) for x in ctx.marketplaces)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<div class="report-header">'
        f"<h1>Account Health metrics summary · {esc(ctx.account)} · {esc(ctx.week)}</h1>"
        f'<p class="muted">Account {esc(ctx.account)} · marketplaces: {names} · period {esc(ctx.week)} · '
        f"as of {esc(ctx.as_of)} (end of day, UTC) · data freshness: newest order "
        f"{esc(orders.date() if orders else '–')}, newest feedback {esc(fb.date() if fb else '–')} · "
        f'suite version {esc(__version__)} · <span class="run-time">generated {esc(now)}</span></p></div>'
    )


def headline(ctx: ReportContext) -> dict:
    """The one-line status for reports/index.html: the worst volume-aware ODR status."""
    order = {"BAD": 3, "AT_RISK": 2, "GOOD": 1, "NONE": 0}
    objs = [o for _, _, o in _odr_objects(ctx)]
    worst = max((o["volumeAdjustedStatus"] for o in objs), key=lambda x: order.get(x, 0), default="NONE")
    return {
        "account": ctx.account,
        "period": ctx.week,
        "asOf": ctx.as_of.isoformat(),
        "status": worst,
        "label": STATUS_LABEL.get(worst, worst),
        "marketplaces": [marketplace_label(x) for x in ctx.marketplaces],
    }


def _odr_objects(ctx: ReportContext) -> list[tuple[str, str, dict]]:
    out = []
    for pm in ctx.result.document["performanceMetrics"]:
        if pm["marketplaceId"] not in ctx.marketplaces:
            continue
        for ch in ("afn", "mfn"):
            out.append((pm["marketplaceId"], ch.upper(), pm["orderDefectRate"][ch]))
    return out


def volume_sentence(obj: dict, noun: str = "orders", defect_noun: str = "defect") -> str:
    """What a seller should take from a rate at its volume, in one sentence."""
    n, d = obj["orderCount"], obj["orderWithDefects"]["count"]
    if n == 0:
        return f"No {noun} in the window."
    plural = "s" if d != 1 else ""
    head = f"{d} {defect_noun}{plural} in {n} {noun}"
    p = obj.get("pValue")
    if obj["status"] == "GOOD":
        return f"{head}: under target."
    if obj["volumeAdjustedStatus"] == "AT_RISK":
        return f"{head}: above target, but at this volume not a sign of a problem; p = {p:.2f}."
    return f"{head}: above target, and too many to be chance at this volume; p = {p:.3g}."


def odr_scorecard_html(ctx: ReportContext) -> str:
    rows = []
    for mkt, ch, obj in _odr_objects(ctx):
        iv = obj.get("rateInterval") or {}
        rng = obj["reportingDateRange"]
        rows.append(
            "<tr>"
            f"<td>{esc(marketplace_label(mkt))}</td><td>{'FBA' if ch == 'AFN' else 'Seller-fulfilled'}</td>"
            f"<td>{badge(obj['volumeAdjustedStatus'])}</td>"
            f"<td>{pct(obj['rate']) if obj['orderCount'] else '–'}</td>"
            f"<td>{obj['orderWithDefects']['count']} defects of {obj['orderCount']} orders</td>"
            f"<td>{obj['negativeFeedback']['count']} / {obj['claims']['count']} / {obj['chargebacks']['count']}</td>"
            f"<td>&lt; {pct(obj['targetValue'], 0)}</td>"
            f"<td>{pct(iv.get('lower'))} – {pct(iv.get('upper'))}</td>"
            f"<td>{badge(obj['status'])}</td>"
            f"<td>{esc(rng['reportingDateFrom'][:10])} to {esc(rng['reportingDateTo'][:10])}</td>"
            f"<td>{esc(volume_sentence(obj))}</td>"
            "</tr>"
        )
    return (
        "<h2>Order Defect Rate</h2>"
        '<p class="muted">Status follows the volume-aware judgement: <b>Poor</b> only when the defects are too many '
        "to be chance at this order volume (exact binomial test, p &lt; 0.05); <b>Fair</b> when the rate is over "
        "target but within what chance gives. Amazon's plain view (rate against target) is kept beside it.</p>"
        '<div class="scroll"><table class="ah"><thead><tr><th>Marketplace</th><th>Channel</th><th>Status</th>'
        "<th>ODR</th><th>Counts</th><th>Feedback / claims / chargebacks</th><th>Target</th><th>95 % interval</th>"
        "<th>Amazon's view</th><th>Orders placed</th><th>What it means</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def odr_trend(ctx: ReportContext) -> pl.DataFrame:
    """ODR as of each Sunday of the last 26 weeks, per marketplace and channel."""
    card = metric_trend(ctx).filter(pl.col("metric").str.starts_with("orderDefectRate."))
    return (
        card.filter(pl.col("marketplace_id").is_in(ctx.marketplaces))
        .with_columns(
            pl.col("as_of").alias("week"),
            (
                pl.col("marketplace_id").replace_strict(
                    {x: marketplace_label(x) for x in ctx.marketplaces}, default=pl.col("marketplace_id")
                )
                + pl.lit(" · ")
                + pl.col("channel").replace({"AFN": "FBA", "MFN": "Seller-fulfilled"})
            ).alias("series"),
        )
        .select("week", "series", "rate", "numerator", "denominator", "status")
        .sort("series", "week")
    )


def odr_trend_chart(ctx: ReportContext) -> alt.Chart:
    df = odr_trend(ctx)
    return charts.rate_trend(
        df, title=f"Order Defect Rate, last {TREND_WEEKS} weeks (as of each Sunday)", target=0.01
    )


# Seller Central's layout: rows of (section, metric id, label, counts text builder)
SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Customer Service Performance",
        (
            ("orderDefectRate.mfn", "Order Defect Rate: seller-fulfilled"),
            ("orderDefectRate.afn", "Order Defect Rate: FBA"),
        ),
    ),
    (
        "Shipping Performance (seller-fulfilled)",
        (
            ("lateShipmentRate.10d", "Late Shipment Rate, 10 days"),
            ("lateShipmentRate.30d", "Late Shipment Rate, 30 days"),
            ("preFulfillmentCancellationRate", "Pre-fulfilment Cancel Rate"),
            ("validTrackingRate", "Valid Tracking Rate"),
            ("onTimeDeliveryRate", "On-Time Delivery Rate"),
            ("unitOnTimeDeliveryRate", "Unit On-Time Delivery Rate"),
        ),
    ),
    ("Invoices (Amazon Business)", (("invoiceDefectRate", "Invoice Defect Rate"),)),
    (
        "Returns and buyer messages",
        (
            ("refundRate", "Refund rate"),
            ("contactResponseTime", "Messages answered within 24 hours"),
        ),
    ),
)
NOUNS = {
    "orderCount": "orders",
    "shipmentCount": "packages",
    "shipmentCountWithValidTracking": "tracked packages",
    "totalUnitCount": "units",
    "messageCount": "messages",
}
NUMERATOR_WORDS = {
    "late_shipments": "late",
    "cancellations": "cancelled by the seller",
    "valid_tracking": "with valid tracking",
    "refunds": "refunded",
    "responses": "answered within 24 h",
}
MISSING_FILE = {
    "shipments": "MFN shipments",
    "messages": "buyer messages",
    "invoices": "business invoices",
}


def _metric_json(pm: dict, metric_id: str) -> dict:
    if metric_id.startswith("orderDefectRate."):
        return pm["orderDefectRate"][metric_id.split(".")[1]]
    if metric_id.startswith("lateShipmentRate."):
        return pm["lateShipmentRateList"][0 if metric_id.endswith("10d") else 1]
    return pm[metric_id]


def _counts_text(md: m.MetricDef, obj: dict) -> str:
    num = obj[md.numerator_part.key]
    num = num["count"] if isinstance(num, dict) else num
    den = obj[md.denominator_key]
    noun = NOUNS.get(md.denominator_key, "orders")
    parts = ""
    if md.population == "order_defects":
        parts = (
            f" ({obj['negativeFeedback']['count']} negative feedback, {obj['claims']['count']} claims, "
            f"{obj['chargebacks']['count']} chargebacks)"
        )
    elif md.population == "invoices":
        parts = f" ({obj['missingInvoice']['count']} missing, {obj['lateInvoice']['count']} late)"
    good = NUMERATOR_WORDS.get(md.population, "on time" if md.higher_is_better else "defective")
    return f"{num} {good} of {den} {noun}{parts}"


def metric_sentence(md: m.MetricDef, obj: dict) -> str:
    """Volume-aware status in a sentence: misses (defects, or failures for 'greater than'
    metrics) out of the units behind the rate, and whether that many can be chance."""
    from analysis import spikes

    num = obj[md.numerator_part.key]
    num = num["count"] if isinstance(num, dict) else num
    den = obj[md.denominator_key]
    misses = den - num if md.condition == "GREATER_THAN" else num
    noun = NOUNS.get(md.denominator_key, "orders")
    text = spikes.explain(misses, den, md.target, obj.get("pValue"), obj["volumeAdjustedStatus"])
    text = text.replace(" orders", f" {noun}")
    return (
        text.replace("defects in", "misses in").replace("defect in", "miss in")
        if md.higher_is_better
        else text
    )


def scorecard_html(ctx: ReportContext, marketplace_id: str) -> str:
    """The whole Account Health page of one marketplace, in the layout sellers know."""
    pm = next(p for p in ctx.result.document["performanceMetrics"] if p["marketplaceId"] == marketplace_id)
    by_id = {d.id: d for d in ctx.result.metrics}
    out = [f"<h2>{esc(marketplace_label(marketplace_id))}</h2>"]
    for section, rows in SECTIONS:
        body = []
        for metric_id, label in rows:
            md, obj = by_id[metric_id], _metric_json(pm, metric_id)
            missing = obj.get("dataMissing")
            rng = obj["reportingDateRange"]
            window = f"{esc(rng['reportingDateFrom'][:10])} to {esc(rng['reportingDateTo'][:10])}"
            sign = "&gt;" if md.condition == "GREATER_THAN" else "&lt;"
            target = f"{sign} {pct(md.target, 1)}"
            if missing:
                files = ", ".join(MISSING_FILE.get(k, k) for k in missing)
                body.append(
                    f"<tr><td>{esc(label)}</td><td>{badge('NONE')}</td><td colspan='5'>No data: the data folder has no "
                    f"{esc(files)} file, so this metric is not computed (not 0 %).</td><td>{target}</td></tr>"
                )
                continue
            den = obj[md.denominator_key]
            iv = obj.get("rateInterval") or {}
            rate = pct(obj["rate"]) if den else "–"
            interval = f"{pct(iv.get('lower'))} – {pct(iv.get('upper'))}" if den else "–"
            body.append(
                f"<tr><td>{esc(label)}</td><td>{badge(obj['volumeAdjustedStatus'])}</td><td><b>{rate}</b></td>"
                f"<td>{esc(_counts_text(md, obj))}</td><td>{interval}</td><td>{badge(obj['status'])}</td>"
                f"<td>{window}</td><td>{target}</td><td>{esc(metric_sentence(md, obj))}</td></tr>"
            )
        out.append(
            f"<h3>{esc(section)}</h3>"
            '<div class="scroll"><table class="ah"><thead><tr><th>Metric</th><th>Status</th><th>Rate</th>'
            "<th>Counts</th><th>95 % interval</th><th>Amazon's view</th><th>Window</th><th>Target</th>"
            "<th>What it means</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
    ahr = pm["accountHealthRating"]
    viol = sum(int(pm[k]["defectsCount"]) for k in VIOLATION_KEYS)
    src = ahr.get("source")
    out.append(
        "<h3>Policy compliance</h3>"
        + (
            f"<p>From Amazon's performance report {esc(src)}: Account Health Rating {esc(ahr['ahrStatus'])}"
            + (f" ({esc(ahr['ahrScore'])})" if "ahrScore" in ahr else "")
            + f"; {viol} policy and listing violations in the last 180 days.</p>"
            if src
            else "<p>No Amazon performance report (V2 snapshot) in the data folder: the Account Health Rating "
            "and policy violations are not known here.</p>"
        )
    )
    return "".join(out)


def metric_trend(ctx: ReportContext) -> pl.DataFrame:
    """Every metric as of each Sunday of the last 26 weeks (one pass over the data, once per report)."""
    key = ("metric_trend", ctx.as_of, ctx.result.metrics)
    if key not in ctx.result.data.cache:
        ctx.result.data.cache[key] = _metric_trend(ctx)
    return ctx.result.data.cache[key]


def _metric_trend(ctx: ReportContext) -> pl.DataFrame:
    first = ctx.as_of - dt.timedelta(weeks=TREND_WEEKS - 1)
    hist = m.history(ctx.result.data, first, ctx.as_of, ctx.result.metrics)
    weeks = [first + dt.timedelta(weeks=i) for i in range(TREND_WEEKS)]
    return m.scorecard(hist.filter(pl.col("as_of").is_in(weeks)), ctx.result.metrics).filter(
        pl.col("denominator") > 0
    )


def metric_trend_chart(
    ctx: ReportContext, marketplace_id: str, trend: pl.DataFrame | None = None
) -> alt.FacetChart:
    """Small multiples: each metric's weekly rate with its target as a dashed line."""
    df = (trend if trend is not None else metric_trend(ctx)).filter(
        pl.col("marketplace_id") == marketplace_id
    )
    labels = {mid: label for _, rows in SECTIONS for mid, label in rows}
    present = [d for d in labels if not _metric_json(_pm_of(ctx, marketplace_id), d).get("dataMissing")]
    df = df.filter(pl.col("metric").is_in(present)).select(
        pl.col("as_of").alias("week"),
        pl.col("metric").replace_strict(labels).alias("metric"),
        "rate",
        "target",
        "numerator",
        "denominator",
    )
    line = (
        alt.Chart()
        .mark_line(point=True)
        .encode(
            x=alt.X("week:T", title=None),
            y=alt.Y("rate:Q", title=None, axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("week:T", title="As of"),
                alt.Tooltip("rate:Q", format=".2%"),
                alt.Tooltip("numerator:Q"),
                alt.Tooltip("denominator:Q"),
            ],
        )
    )
    rule = alt.Chart().mark_rule(strokeDash=[6, 4], color="#c62828").encode(y="mean(target):Q")
    return (
        alt.layer(line, rule, data=df)
        .properties(width=300, height=130)
        .facet(facet=alt.Facet("metric:N", title=None, sort=list(labels.values())), columns=2)
        .resolve_scale(y="independent")
        .properties(
            title=f"{marketplace_label(marketplace_id)}: last {TREND_WEEKS} weeks (as of each Sunday)"
        )
    )


def _pm_of(ctx: ReportContext, marketplace_id: str) -> dict:
    return next(p for p in ctx.result.document["performanceMetrics"] if p["marketplaceId"] == marketplace_id)


def defective_orders_html(ctx: ReportContext, limit: int = 200) -> str:
    df = defects.defective_orders(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
    )
    if df.is_empty():
        return "<h2>Defective orders in the window</h2><p>No defective orders in the ODR window.</p>"
    rows = []
    for r in df.head(limit).iter_rows(named=True):
        kinds = [
            k
            for k, flag in (
                ("negative feedback", r["negative_feedback"]),
                ("A-to-z claim", r["claim"]),
                ("chargeback", r["chargeback"]),
            )
            if flag
        ]
        rows.append(
            "<tr>"
            f"<td>{esc(r['order_id'])}</td><td>{esc(r['purchase_day'])}</td>"
            f"<td>{esc(marketplace_label(r['marketplace_id']))}</td><td>{'FBA' if r['channel'] == 'AFN' else 'Seller-fulfilled'}</td>"
            f"<td>{esc(r['skus'])}</td><td>{esc(', '.join(kinds))}</td>"
            f"<td>{esc(r['rating']) if r['rating'] is not None else ''}</td><td>{esc(r['comment'])}</td>"
            f"<td>{esc(r['claim_reason'] or '')} {esc(r['claim_status'] or '')}</td>"
            f"<td>{esc(r['leaves_window'])}</td>"
            "</tr>"
        )
    more = f'<p class="muted">Showing {limit} of {df.height}.</p>' if df.height > limit else ""
    return (
        f"<h2>Defective orders in the window ({df.height})</h2>"
        '<div class="scroll"><table class="ah"><thead><tr><th>Order</th><th>Purchased</th><th>Marketplace</th>'
        "<th>Channel</th><th>SKUs</th><th>Defects</th><th>Rating</th><th>Buyer comment</th><th>Claim</th>"
        "<th>Leaves the window on</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>" + more
    )


def data_quality_html(ctx: ReportContext, limit: int = 20) -> str:
    dq = ctx.result.document["dataQuality"]
    notes = "".join(f"<li>{esc(n)}</li>" for n in dq["notes"])
    parts = [f"<h2>Data quality</h2><p>{dq['quarantinedRows']} rows set aside (quarantined).</p>"]
    if notes:
        parts.append(f"<ul>{notes}</ul>")
    if dq["quarantinedRows"]:
        counts = "".join(
            f"<tr><td>{esc(r['file'])}</td><td>{esc(r['reason'])}</td><td>{r['rows']}</td></tr>"
            for r in dq["byFileAndReason"]
        )
        parts.append(
            '<div class="scroll"><table class="ah"><thead><tr><th>File</th><th>Reason</th><th>Rows</th></tr></thead>'
            f"<tbody>{counts}</tbody></table></div><p>First rows set aside (all of them: "
            "<code>python -m analysis check --data DIR</code>):</p>"
        )
        rows = "".join(
            f"<tr><td>{esc(r['file'])}</td><td>{esc(r['line'])}</td><td>{esc(r['column'])}</td><td>{esc(r['value'])}</td><td>{esc(r['reason'])}</td></tr>"
            for r in dq["rows"][:limit]
        )
        parts.append(
            '<div class="scroll"><table class="ah"><thead><tr><th>File</th><th>Line</th><th>Column</th><th>Value</th>'
            f"<th>Reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    return "".join(parts)


def footer_html(ctx: ReportContext) -> str:
    rows = "".join(
        f"<tr><td>{esc(f.path.name)}</td><td>{esc(f.kind)}</td><td>{f.rows}</td><td><code class='sha'>{esc(f.sha256)}</code></td></tr>"
        for f in ctx.result.data.files
    )
    return (
        "<h2>Input files</h2>"
        '<div class="scroll"><table class="ah"><thead><tr><th>File</th><th>Kind</th><th>Rows</th><th>SHA-256</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _cell(col: str, v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if "rate" in col:
            return pct(v)
        if col.startswith("p_"):
            return f"{v:.2f}"
        return f"{v:,.1f}"
    return esc(v)


def table_html(df: pl.DataFrame, columns: dict[str, str], limit: int = 50) -> str:
    """An escaped HTML table of `columns` (name -> heading) of `df`, first `limit` rows."""
    if df.is_empty():
        return "<p>None.</p>"
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{esc(columns[c])}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(c, r[c])}</td>" for c in cols) + "</tr>"
        for r in df.head(limit).iter_rows(named=True)
    )
    more = f'<p class="muted">Showing {limit} of {df.height}.</p>' if df.height > limit else ""
    return f'<div class="scroll"><table class="ah"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


BASELINE_WEEKS = 8


def what_caused_it_html(ctx: ReportContext) -> str:
    """Defects that arrived this week against the weekly average of the 8 weeks before, by cause,
    SKU and carrier."""
    from analysis import causes, defects

    t = defects.defect_table(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces) & (pl.col("defect_kind") != "return")
    )
    week_start = ctx.as_of - dt.timedelta(days=6)
    base_start = week_start - dt.timedelta(weeks=BASELINE_WEEKS)
    parts = [
        "<h2>What caused it</h2>",
        f'<p class="muted">Negative feedback, claims and chargebacks that arrived {esc(week_start)} to '
        f"{esc(ctx.as_of)}, against the weekly average of the {BASELINE_WEEKS} weeks before.</p>",
    ]
    for dim, label in (("cause", "Cause"), ("sku", "SKU"), ("carrier", "Carrier")):
        cmp = (
            t.with_columns(
                pl.when(pl.col("defect_date") >= week_start)
                .then(pl.lit("this"))
                .when(pl.col("defect_date") >= base_start)
                .then(pl.lit("base"))
                .otherwise(None)
                .alias("period")
            )
            .filter(pl.col("period").is_not_null())
            .group_by(dim)
            .agg(
                (pl.col("period") == "this").sum().alias("this_week"),
                ((pl.col("period") == "base").sum() / BASELINE_WEEKS).alias("weekly_before"),
            )
            .filter((pl.col("this_week") > 0) | (pl.col("weekly_before") > 0))
            .sort(["this_week", "weekly_before", dim], descending=[True, True, False])
        )
        if dim == "cause":
            cmp = cmp.with_columns(pl.col("cause").replace_strict(causes.CAUSE_LABELS))
        parts.append(f"<h3>By {label.lower()}</h3>")
        parts.append(
            table_html(
                cmp,
                {
                    dim: label,
                    "this_week": "This week",
                    "weekly_before": f"Weekly, {BASELINE_WEEKS} weeks before",
                },
                8,
            )
        )
    return "".join(parts)


def removal_candidates_html(ctx: ReportContext) -> str:
    from analysis import triage

    t = triage.triage(ctx.result.data, ctx.as_of).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
        & pl.col("verdict").is_in([triage.REMOVABLE, triage.STRIKE, triage.STRIKE_IF_BUY_SHIPPING])
        & ~pl.col("expired")
    )
    w = triage.what_if(ctx.result.data, ctx.as_of).filter(pl.col("marketplace_id").is_in(ctx.marketplaces))
    wide = w.pivot(on="scenario", index=["marketplace_id", "channel"], values="rate")
    wide = wide.with_columns(
        pl.col("marketplace_id").replace_strict({x: marketplace_label(x) for x in ctx.marketplaces})
    )
    return (
        f"<h2>Feedback you can ask Amazon to remove ({t.height})</h2>"
        '<p class="muted">Amazon removes feedback with obscene words, personal information or that is entirely a '
        "product review, and strikes through FBA delivery complaints and late-delivery complaints on orders shipped "
        "on time with Buy Shipping. Ask within 90 days of the feedback.</p>"
        + table_html(
            t,
            triage.COLUMNS,
            30,
        )
        + "<h3>Order Defect Rate if they were removed</h3>"
        + table_html(
            wide,
            {
                "marketplace_id": "Marketplace",
                "channel": "Channel",
                "now": "ODR rate now",
                "if removed": "ODR rate if removed",
            },
            10,
        )
    )


def rolloff_chart(ctx: ReportContext) -> alt.Chart:
    """Projected ODR for the next 60 days with no new defect, at recent and at lower volume."""
    from analysis import rolloff

    f = rolloff.forecast(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
    )
    f = f.with_columns(
        (
            pl.col("marketplace_id").replace_strict({x: marketplace_label(x) for x in ctx.marketplaces})
            + pl.lit(" · ")
            + pl.col("channel").replace({"AFN": "FBA", "MFN": "Seller-fulfilled"})
        ).alias("series")
    )
    line = (
        alt.Chart()
        .mark_line()
        .encode(
            x=alt.X("day:T", title=None),
            y=alt.Y("rate:Q", title="Projected ODR", axis=alt.Axis(format="%")),
            strokeDash=alt.StrokeDash("scenario:N", title="Volume"),
            tooltip=[
                "day:T",
                "scenario:N",
                alt.Tooltip("rate:Q", format=".2%"),
                "defects:Q",
                alt.Tooltip("orders:Q", format=",.0f"),
            ],
        )
    )
    rule = alt.Chart().mark_rule(color="#c62828", strokeDash=[2, 2]).encode(y="mean(target):Q")
    return (
        alt.layer(line, rule, data=f)
        .properties(width=300, height=150)
        .facet(facet=alt.Facet("series:N", title=None), columns=2)
        .resolve_scale(y="independent")
        .properties(title=charts.wrapped("Order Defect Rate in the next 60 days with no new defect"))
    )


def rolloff_summary_html(ctx: ReportContext) -> str:
    from analysis import rolloff

    s = rolloff.summary(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
    )
    s = s.with_columns(
        pl.col("marketplace_id").replace_strict({x: marketplace_label(x) for x in ctx.marketplaces})
    )
    return "<h2>When it goes away</h2>" + table_html(
        s,
        {
            "marketplace_id": "Marketplace",
            "channel": "Channel",
            "defects": "Defects in window",
            "orders": "Orders in window",
            "rate": "ODR rate",
            "orders_needed": "Defect-free orders still needed",
            "under_target_from_recent_volume": "Under target from (recent volume)",
            "under_target_from_low_volume": "Under target from (half the volume)",
        },
        10,
    )


def spikes_html(ctx: ReportContext) -> str:
    """Alarms of the report's week (defects by arrival day) with their drivers, or 'no spike'."""
    from analysis import spike_views, spikes

    week_start = ctx.as_of - dt.timedelta(days=6)
    alarms = [
        a
        for a in spikes.detect(ctx.result.data, ctx.as_of, first=week_start)
        if a["marketplaceId"] in ctx.marketplaces
    ]
    return (
        "<h2>Spikes</h2>"
        f'<p class="muted">Defects that arrived {esc(week_start)} to {esc(ctx.as_of)}, judged against the '
        "account's own history at its volume (moving-window GLR, binomial CUSUM, exact binomial p-chart, EWMA, "
        "Laney p'). Each detector is set to at most 1 false alarm per account-year; the GLR finds the most "
        "spikes at that rate (README: Spike detection).</p>" + spike_views.alarms_html(alarms)
    )
