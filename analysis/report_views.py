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

from analysis import __version__, charts, defects, health, wording
from analysis import metrics as m
from analysis.errors import AnalysisError, UsageError
from analysis.marketplaces import marketplace_label
from analysis.periods import iso_week_of, parse_week, week_sunday
from analysis.settings import Settings
from analysis.snapshots import VIOLATION_KEYS, newest_for
from analysis.wording import CHANNEL_LABEL, STATUS_LABEL

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
    def settings(self) -> Settings:
        return self.result.settings

    @property
    def newest(self) -> dt.date:
        """The newest order day: the data says nothing about days after it."""
        return self.result.newest_order_day

    @property
    def first(self) -> dt.date:
        """The period's first day: a week's Monday, a month's 1st (what "this period" covers)."""
        from analysis.periods import parse_period

        try:
            return min(parse_period(self.week).first, self.as_of)
        except AnalysisError:
            return self.as_of - dt.timedelta(days=6)

    @property
    def past_data(self) -> bool:
        return self.as_of > self.newest

    @property
    def marketplaces(self) -> list[str]:
        ids = [pm["marketplaceId"] for pm in self.result.document["performanceMetrics"]]
        return ids if self.marketplace == "all" else [i for i in ids if i == self.marketplace]


def run_settings(settings: dict | None, config_file: str | None = None) -> Settings:
    """The run's settings inside a notebook: what papermill passed (`Settings.to_dict()`), or,
    opened by hand, the defaults and an optional TOML file."""
    from analysis import settings as st

    return Settings.from_dict(settings) if settings else st.build(config_file)


def prepare(
    data_dir: str | Path,
    settings: Settings,
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
        raise UsageError("give the report a week (2026-W46), a month (2026-10) or an as-of date")
    label = period or week or iso_week_of(day)
    result = health.account_health(data_dir, day, settings, what=f"period {label} (as of {day})")
    known = {pm["marketplaceId"] for pm in result.document["performanceMetrics"]}
    if marketplace != "all" and marketplace not in known:
        raise UsageError(f"marketplace {marketplace} is not in the data; it holds {', '.join(sorted(known))}")
    ctx = ReportContext(Path(data_dir), label, day, marketplace, result)
    ctx.account = account or Path(data_dir).name
    return ctx


def esc(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(STATUS_LABEL.get(status, status))}</span>'


pct = wording.pct


def header_html(ctx: ReportContext) -> str:
    fb = ctx.result.data.frame("feedback").select(pl.col("feedback_ts").max()).collect().item()
    names = ", ".join(esc(marketplace_label(x)) for x in ctx.marketplaces)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<div class="report-header">'
        f"<h1>Account Health metrics summary · {esc(ctx.account)} · {esc(ctx.week)}</h1>"
        f'<p class="muted">Account {esc(ctx.account)} · marketplaces: {names} · period {esc(ctx.week)} · '
        f"as of {esc(ctx.as_of)} (end of day, UTC) · data freshness: newest order "
        f"{esc(ctx.newest)}, newest feedback {esc(fb.date() if fb else '–')} · "
        f'suite version {esc(__version__)} · <span class="run-time">generated {esc(now)}</span></p></div>'
        + banners_html(ctx)
    )


def banners_html(ctx: ReportContext) -> str:
    """What this report cannot know, said before any number: a period past the data, absent files."""
    out = []
    if ctx.past_data:
        out.append(
            f'<div class="banner"><b>Incomplete period: data ends {esc(ctx.newest)}.</b> The report is as of '
            f"{esc(ctx.as_of)}; the days after {esc(ctx.newest)} have no orders in the data folder, so every "
            "window that reaches past it holds fewer days than it says.</div>"
        )
    lines = health.missing_input_lines(ctx.result.data, ctx.settings.metrics)
    if lines:
        items = "".join(f"<li>{esc(x)}</li>" for x in lines)
        out.append(
            '<div class="banner"><b>Incomplete: some exports are not in the data folder.</b> The metrics that need '
            f"them show what the other files give (a bound), never Good, Fair or Poor.<ul>{items}</ul></div>"
        )
    return "".join(out)


STATUS_ORDER = {"BAD": 4, "AT_RISK": 3, "INCOMPLETE": 2, "GOOD": 1, "NONE": 0}


def shown_status(obj: dict) -> str:
    """Our verdict on a metric object: INCOMPLETE when a needed file is absent."""
    return "INCOMPLETE" if obj.get("dataMissing") or obj.get("dataEnds") else obj["volumeAdjustedStatus"]


def headline(ctx: ReportContext) -> dict:
    """The one-line status for reports/index.html: the worst ODR status (Incomplete when a file
    the ODR needs is absent), and whether the period runs past the data."""
    objs = [o for _, _, o in _odr_objects(ctx)]
    worst = max((shown_status(o) for o in objs), key=lambda x: STATUS_ORDER.get(x, 0), default="NONE")
    out = {
        "account": ctx.account,
        "period": ctx.week,
        "asOf": ctx.as_of.isoformat(),
        "status": worst,
        "label": STATUS_LABEL.get(worst, worst),
        "marketplaces": [marketplace_label(x) for x in ctx.marketplaces],
        "dataEnds": ctx.newest.isoformat(),
    }
    reasons = []
    if ctx.past_data:
        reasons.append(f"data ends {ctx.newest.isoformat()}")
    if worst != "INCOMPLETE" and any(shown_status(o) == "INCOMPLETE" for o in objs):
        reasons.append("the ODR of some marketplaces or channels is incomplete")
    if reasons:
        out["incomplete"] = "; ".join(reasons)
    return out


def _odr_objects(ctx: ReportContext) -> list[tuple[str, str, dict]]:
    out = []
    for pm in ctx.result.document["performanceMetrics"]:
        if pm["marketplaceId"] not in ctx.marketplaces:
            continue
        for ch in ("afn", "mfn"):
            out.append((pm["marketplaceId"], ch.upper(), pm["orderDefectRate"][ch]))
    return out


def _num(md: m.MetricDef, obj: dict) -> int:
    v = obj[md.numerator_part.key]
    return int(v["count"] if isinstance(v, dict) else v)


PART_WORDS = {  # how a part of a numerator is counted in words
    "negativeFeedback": "negative feedback",
    "claims": "claim",
    "chargebacks": "chargeback",
    "missingInvoice": "missing",
    "lateInvoice": "late",
}


def counts_text(md: m.MetricDef, obj: dict) -> str:
    """'12 of 981 orders defective (10 negative feedback, 2 claims, 0 chargebacks)'."""
    den = obj[md.denominator_key]
    parts = [p for p in md.parts if isinstance(obj.get(p.key), dict)]
    detail = ""
    if parts:
        words = []
        for p in parts:
            n, noun = obj[p.key]["count"], PART_WORDS[p.key]
            words.append(wording.count(n, noun) if noun in ("claim", "chargeback") else f"{n:,} {noun}")
        detail = " (" + ", ".join(words) + ")"
    return f"{_num(md, obj):,} of {wording.count(den, md.unit)} {md.hit_words}{detail}"


def status_sentence(md: m.MetricDef, obj: dict) -> str:
    """Why the badge says what it says, in words a seller reads once: the misses and the units,
    the target in its own direction, and whether chance explains it at this volume."""
    den = obj[md.denominator_key]
    missing = obj.get("dataMissing")
    if missing:
        files = ", ".join(wording.file_kind(k) for k in missing)
        if md.incomplete_bound and den:
            return f"{md.incomplete_bound} {pct(obj['rate'])}: no {files} file"
        return f"not known: no {files} file"
    if obj.get("dataEnds"):
        return (
            f"not known: the data ends {obj['dataEnds']}, inside this window; {pct(obj['rate'])} is over the days "
            "the data holds only"
        )
    if den == 0:
        return f"No {wording.plural(md.unit)} in the window."
    num = _num(md, obj)
    misses = den - num if md.higher_is_better else num
    head = f"{wording.count(misses, md.miss)} in {wording.count(den, md.unit)}"
    status = obj["volumeAdjustedStatus"]
    where = wording.direction(md.target, md.higher_is_better, status == "GOOD")
    p = wording.p_text(obj.get("pValue"))
    if status == "GOOD":
        return f"{head}: {where}."
    if status == "AT_RISK":
        return f"{head}: {where}, but at this volume that can be chance ({p})."
    return f"{head}: {where}, more than chance explains at this volume ({p})."


def rate_text(md: m.MetricDef, obj: dict) -> str:
    den = obj[md.denominator_key]
    if obj.get("dataEnds") and not obj.get("dataMissing"):
        return "not known"
    if obj.get("dataMissing"):
        sign = {"at least": "≥ ", "at most": "≤ "}.get(md.incomplete_bound or "", "")
        return f"{sign}{pct(obj['rate'])}" if sign and den else "not known"
    return pct(obj["rate"]) if den else "–"


def rule_badge(md: m.MetricDef, obj: dict) -> str:
    """The bare rule (rate against target), named for what it is."""
    if obj.get("dataMissing") or obj.get("dataEnds") or not obj[md.denominator_key]:
        return '<span class="badge rule">–</span>'
    labels = wording.RULE_LABEL_HIGHER if md.higher_is_better else wording.RULE_LABEL
    return f'<span class="badge rule">{esc(labels.get(obj["status"], obj["status"]))}</span>'


def amazon_metric(ctx: ReportContext, marketplace_id: str, metric_id: str) -> tuple[dict, dt.date] | None:
    """The metric's object in the newest V2 snapshot known on the as-of day, with its date
    (snapshots are read leniently: a missing or odd-shaped object is None)."""
    snap = newest_for(ctx.result.data.snapshots, marketplace_id, ctx.as_of)
    if not snap:
        return None
    doc, pm = snap
    try:
        obj = _metric_json(pm, metric_id)
    except (KeyError, IndexError, TypeError):
        return None
    return (obj, doc["_asOf"]) if isinstance(obj, dict) else None


def amazon_status(ctx: ReportContext, marketplace_id: str, metric_id: str) -> tuple[str, dt.date] | None:
    """Amazon's own status for a metric, with the snapshot's date."""
    got = amazon_metric(ctx, marketplace_id, metric_id)
    status = str(got[0].get("status") or "").upper() if got else ""
    return (status, got[1]) if status else None


def amazon_target(ctx: ReportContext, marketplace_id: str, metric_id: str) -> float | None:
    got = amazon_metric(ctx, marketplace_id, metric_id)
    try:
        value = got[0].get("targetValue") if got else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def amazon_cell(ctx: ReportContext, marketplace_id: str, metric_id: str, obj: dict) -> str:
    got = amazon_status(ctx, marketplace_id, metric_id)
    if not got:
        return '<span class="muted">no snapshot</span>'
    status, day = got
    label = wording.AMAZON_LABEL.get(status, status.title())
    ours = shown_status(obj)
    differs = ""
    if ours in ("GOOD", "AT_RISK", "BAD") and status in ("GOOD", "BAD") and label != STATUS_LABEL[ours]:
        theirs = amazon_target(ctx, marketplace_id, metric_id)
        if theirs is not None and abs(theirs - obj["targetValue"]) > 1e-12:
            why = f"our target ({pct(obj['targetValue'], 1)}) is not Amazon's ({pct(theirs, 1)})"
        elif ours == "AT_RISK":
            why = "we count a miss that at this volume can be chance as Fair"
        else:
            why = "its window, its orders or its judgement of the volume differ from ours"
        differs = f'<br><span class="muted">differs from ours ({esc(STATUS_LABEL[ours])}): {esc(why)}</span>'
    if status == "NONE" or label == "No data":
        differs = ""
    stale = f" ({(ctx.as_of - day).days} days before the as-of day)" if day < ctx.as_of else ""
    return f"Amazon, {esc(day)}: {esc(label)}{esc(stale)}{differs}"


def odr_scorecard_html(ctx: ReportContext) -> str:
    rows = []
    for mkt, ch, obj in _odr_objects(ctx):
        md = ctx.settings.odr(ch)
        iv = obj.get("rateInterval") or {}
        rng = obj["reportingDateRange"]
        known = obj["orderCount"] and shown_status(obj) != "INCOMPLETE"
        rows.append(
            "<tr>"
            f"<td>{esc(marketplace_label(mkt))}</td><td>{esc(CHANNEL_LABEL[ch])}</td>"
            f"<td>{badge(shown_status(obj))}</td>"
            f"<td><b>{rate_text(md, obj)}</b></td>"
            f"<td>{esc(counts_text(md, obj))}</td>"
            f"<td>{esc(wording.target_text(md.target, md.higher_is_better))}</td>"
            f"<td>{pct(iv.get('lower')) + ' – ' + pct(iv.get('upper')) if known else '–'}</td>"
            f"<td>{rule_badge(md, obj)}</td>"
            f"<td>{amazon_cell(ctx, mkt, md.id, obj)}</td>"
            f"<td>{esc(rng['reportingDateFrom'][:10])} to {esc(rng['reportingDateTo'][:10])}</td>"
            f"<td>{esc(status_sentence(md, obj))}</td>"
            "</tr>"
        )
    return (
        "<h2>Order Defect Rate</h2>"
        '<p class="muted">Status, as in the metrics summary Amazon used to send: <b>Good</b> meets the target; '
        "<b>Fair</b> misses it, but at this order volume that can be chance; <b>Poor</b> misses it by more than "
        "chance explains (exact binomial test, p &lt; 0.05); <b>Incomplete</b> when an export the metric needs is "
        "not in the data folder. &ldquo;Rate vs target&rdquo; is the bare rule without volume; "
        "&ldquo;Amazon&rdquo; is the status in Amazon's own performance report, with its date.</p>"
        '<div class="scroll"><table class="ah"><thead><tr><th>Marketplace</th><th>Channel</th><th>Status</th>'
        "<th>ODR</th><th>Counts</th><th>Target</th><th>95 % interval</th><th>Rate vs target</th>"
        "<th>Amazon</th><th>Orders placed</th><th>What it means</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def odr_caveat(ctx: ReportContext) -> str:
    """For the sections built on the ODR's defects: which exports they lack, so an empty table
    or an early roll-off date is read as incomplete, not as good news."""
    missing = health.odr_missing(ctx.result.data, ctx.settings.metrics)
    if not missing:
        return ""
    files = ", ".join(wording.file_kind(k) for k in missing)
    return (
        f'<p class="banner"><b>Incomplete:</b> no {esc(files)} file for some or all marketplaces; this section '
        "sees only the defects of the files present.</p>"
    )


def _trend_weeks(ctx: ReportContext) -> int:
    return ctx.settings.report.trend_weeks


def _series_in(pairs: list[tuple[str, str]]) -> pl.Expr:
    """Rows of these (marketplace, channel) series."""
    keep = pl.lit(False)
    for mkt, ch in pairs:
        keep = keep | ((pl.col("marketplace_id") == mkt) & (pl.col("channel") == ch))
    return keep


def odr_trend(ctx: ReportContext) -> pl.DataFrame:
    """ODR as of each Sunday of the trend, per marketplace and channel, where the ODR is complete."""
    complete = [(mkt, ch) for mkt, ch, obj in _odr_objects(ctx) if not obj.get("dataMissing")]
    card = metric_trend(ctx).filter(pl.col("metric").str.starts_with("orderDefectRate."))
    return (
        card.filter(_series_in(complete))
        .with_columns(
            pl.col("as_of").alias("week"),
            (
                pl.col("marketplace_id").replace_strict(
                    {x: marketplace_label(x) for x in ctx.marketplaces}, default=pl.col("marketplace_id")
                )
                + pl.lit(" · ")
                + pl.col("channel").replace(CHANNEL_LABEL)
            ).alias("series"),
        )
        .select("week", "series", "rate", "numerator", "denominator", "status")
        .sort("series", "week")
    )


def odr_trend_chart(ctx: ReportContext) -> alt.Chart | object:
    df = odr_trend(ctx)
    if df.is_empty():
        from IPython.display import HTML

        return HTML(
            "<p><b>No ODR trend:</b> the Order Defect Rate is incomplete (see the note above) or has no "
            "orders in the weeks shown.</p>"
        )
    return charts.rate_trend(
        df,
        title=f"Order Defect Rate, last {_trend_weeks(ctx)} weeks (as of each Sunday)",
        target=ctx.settings.odr_target,
    )


# Seller Central's layout: rows of (section, metric ids); the labels are the metric table's titles
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Customer Service Performance", ("orderDefectRate.mfn", "orderDefectRate.afn")),
    (
        "Shipping Performance (seller-fulfilled)",
        (
            "lateShipmentRate.10d",
            "lateShipmentRate.30d",
            "preFulfillmentCancellationRate",
            "validTrackingRate",
            "onTimeDeliveryRate",
            "unitOnTimeDeliveryRate",
        ),
    ),
    ("Invoices (Amazon Business)", ("invoiceDefectRate",)),
    ("Returns and buyer messages", ("refundRate", "contactResponseTime")),
)


def _metric_json(pm: dict, metric_id: str) -> dict:
    if metric_id.startswith("orderDefectRate."):
        return pm["orderDefectRate"][metric_id.split(".")[1]]
    if metric_id.startswith("lateShipmentRate."):
        return pm["lateShipmentRateList"][0 if metric_id.endswith("10d") else 1]
    return pm[metric_id]


def scorecard_html(ctx: ReportContext, marketplace_id: str) -> str:
    """The whole Account Health page of one marketplace, in the layout sellers know."""
    pm = _pm_of(ctx, marketplace_id)
    out = [f"<h2>{esc(marketplace_label(marketplace_id))}</h2>"]
    for section, ids in SECTIONS:
        body = []
        for metric_id in ids:
            md, obj = ctx.settings.metric(metric_id), _metric_json(pm, metric_id)
            rng = obj["reportingDateRange"]
            window = f"{esc(rng['reportingDateFrom'][:10])} to {esc(rng['reportingDateTo'][:10])}"
            den = obj[md.denominator_key]
            iv = obj.get("rateInterval") or {}
            known = den and shown_status(obj) != "INCOMPLETE"
            interval = f"{pct(iv.get('lower'))} – {pct(iv.get('upper'))}" if known else "–"
            body.append(
                f"<tr><td>{esc(md.title)}</td><td>{badge(shown_status(obj))}</td><td><b>{rate_text(md, obj)}</b></td>"
                f"<td>{esc(counts_text(md, obj))}</td><td>{interval}</td><td>{rule_badge(md, obj)}</td>"
                f"<td>{amazon_cell(ctx, marketplace_id, metric_id, obj)}</td>"
                f"<td>{window}</td><td>{esc(wording.target_text(md.target, md.higher_is_better))}</td>"
                f"<td>{esc(status_sentence(md, obj))}</td></tr>"
            )
        out.append(
            f"<h3>{esc(section)}</h3>"
            '<div class="scroll"><table class="ah"><thead><tr><th>Metric</th><th>Status</th><th>Rate</th>'
            "<th>Counts</th><th>95 % interval</th><th>Rate vs target</th><th>Amazon</th><th>Window</th>"
            "<th>Target</th><th>What it means</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
    ahr = pm["accountHealthRating"]
    viol = sum(int(pm[k]["defectsCount"]) for k in VIOLATION_KEYS)
    snap = newest_for(ctx.result.data.snapshots, marketplace_id, ctx.as_of)
    if snap:
        day = snap[0]["_asOf"]
        stale = f", {(ctx.as_of - day).days} days before the as-of day" if day < ctx.as_of else ""
        policy = (
            f"<p>From Amazon's performance report of {esc(day)}{esc(stale)}: Account Health Rating "
            f"{esc(ahr['ahrStatus'])}"
            + (f" ({esc(ahr['ahrScore'])})" if "ahrScore" in ahr else "")
            + f"; {wording.count(viol, 'policy or listing violation')} in its last 180 days.</p>"
        )
    else:
        policy = (
            "<p>No Amazon performance report (V2 snapshot) of this marketplace dated on or before the as-of day "
            "in the data folder: the Account Health Rating and policy violations are not known here.</p>"
        )
    out.append("<h3>Policy compliance</h3>" + policy)
    return "".join(out)


def metric_trend(ctx: ReportContext) -> pl.DataFrame:
    """Every metric as of each Sunday of the last 26 weeks (one pass over the data, once per report)."""
    key = ("metric_trend", ctx.as_of, ctx.result.metrics)
    if key not in ctx.result.data.cache:
        ctx.result.data.cache[key] = _metric_trend(ctx)
    return ctx.result.data.cache[key]


def _metric_trend(ctx: ReportContext) -> pl.DataFrame:
    n = _trend_weeks(ctx)
    first = ctx.as_of - dt.timedelta(weeks=n - 1)
    # only as-of days the data reaches: a Sunday after the newest order would show a short window
    weeks = [d for d in (first + dt.timedelta(weeks=i) for i in range(n)) if d <= ctx.newest]
    if not weeks:
        return m.scorecard(
            m.history(ctx.result.data, first, first, ctx.result.metrics), ctx.result.metrics
        ).clear()
    hist = m.history(ctx.result.data, first, weeks[-1], ctx.result.metrics)
    # nor a window that begins before the oldest order: it would hold fewer days than it says
    oldest = health.oldest_order_day(ctx.result.data)
    return m.scorecard(hist.filter(pl.col("as_of").is_in(weeks)), ctx.result.metrics).filter(
        (pl.col("denominator") > 0) & (pl.col("window_from") >= oldest)
    )


def metric_trend_chart(
    ctx: ReportContext, marketplace_id: str, trend: pl.DataFrame | None = None
) -> alt.FacetChart:
    """Small multiples: each metric's weekly rate with its target as a dashed line."""
    df = (trend if trend is not None else metric_trend(ctx)).filter(
        pl.col("marketplace_id") == marketplace_id
    )
    labels = {mid: ctx.settings.metric(mid).title for _, ids in SECTIONS for mid in ids}
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
            title=f"{marketplace_label(marketplace_id)}: last {_trend_weeks(ctx)} weeks (as of each Sunday)"
        )
    )


def _pm_of(ctx: ReportContext, marketplace_id: str) -> dict:
    return next(p for p in ctx.result.document["performanceMetrics"] if p["marketplaceId"] == marketplace_id)


def defective_orders_html(ctx: ReportContext) -> str:
    limit = ctx.settings.report.defective_order_rows
    df = defects.defective_orders(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
    )
    if df.is_empty():
        return (
            "<h2>Defective orders in the window</h2>"
            + odr_caveat(ctx)
            + "<p>No defective orders in the ODR window.</p>"
        )
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
            f"<td>{esc(marketplace_label(r['marketplace_id']))}</td><td>{esc(CHANNEL_LABEL.get(r['channel'], r['channel']))}</td>"
            f"<td>{esc(r['skus'])}</td><td>{esc(', '.join(kinds))}</td>"
            f"<td>{esc(r['rating']) if r['rating'] is not None else ''}</td><td>{esc(r['comment'])}</td>"
            f"<td>{esc(r['claim_reason'] or '')} {esc(r['claim_status'] or '')}</td>"
            f"<td>{esc(r['leaves_window'])}</td>"
            "</tr>"
        )
    more = f'<p class="muted">Showing {limit} of {df.height}.</p>' if df.height > limit else ""
    return (
        f"<h2>Defective orders in the window ({df.height})</h2>" + odr_caveat(ctx) + ""
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
    changed = ctx.settings.to_dict()
    tuned = [f"{k} {', '.join(f'{a} = {b}' for a, b in v.items())}" for k, v in changed["metrics"].items()]
    tuned += [f"{sec} {k} = {v}" for sec in ("spikes", "report") for k, v in changed[sec].items()]
    source = Path(ctx.settings.source).name if ctx.settings.source != "defaults" else "defaults"
    settings_line = (
        f'<p class="muted">Settings: {esc(source)}'
        + (
            f" ({esc('; '.join(tuned))})"
            if tuned
            else " (the targets, windows and lags of Amazon's definitions)"
        )
        + ".</p>"
    )
    return (
        settings_line + "<h2>Input files</h2>"
        '<div class="scroll"><table class="ah"><thead><tr><th>File</th><th>Kind</th><th>Rows</th><th>SHA-256</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _cell(col: str, v: object, formats: dict | None = None) -> str:
    if v is None:
        return ""
    if formats and col in formats:
        return esc(formats[col](v))
    if isinstance(v, float):
        if "rate" in col:
            return pct(v)
        if col.startswith("p_"):
            return f"{v:.2f}"
        return f"{v:,.1f}"
    return esc(v)


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


def what_caused_it_html(ctx: ReportContext) -> str:
    """Defects that arrived this week against the weekly average of the 8 weeks before, by cause,
    SKU and carrier."""
    from analysis import causes, defects

    t = defects.defect_table(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces) & (pl.col("defect_kind") != "return")
    )
    week_start = ctx.first
    n_base = ctx.settings.report.cause_baseline_weeks
    weeks = ((ctx.as_of - week_start).days + 1) / 7
    base_start = week_start - dt.timedelta(weeks=n_base)
    parts = [
        "<h2>What caused it</h2>",
        f'<p class="muted">Negative feedback, claims and chargebacks that arrived {esc(week_start)} to '
        f"{esc(ctx.as_of)}, against what the {n_base} weeks before give for a period this long.</p>"
        + odr_caveat(ctx),
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
                ((pl.col("period") == "base").sum() / n_base * weeks).alias("weekly_before"),
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
                    "this_week": "This period",
                    "weekly_before": f"Expected from the {n_base} weeks before",
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
    wide = what_if_table(ctx)
    rows = ctx.settings.report.removal_rows
    more = (
        f'<p class="muted">All {t.height}: <code>python -m analysis defects --data DIR --as-of {esc(ctx.as_of)}'
        "</code> lists every defect with its verdict.</p>"
        if t.height > rows
        else ""
    )
    incomplete = [o for _, _, o in _odr_objects(ctx) if o.get("dataMissing")]
    caveat = (
        '<p class="muted">The ODR is incomplete (an export it needs is not in the data folder): both columns are '
        "lower bounds.</p>"
        if incomplete
        else ""
    )
    return (
        f"<h2>Feedback you can ask Amazon to remove ({t.height})</h2>"
        '<p class="muted">Amazon removes feedback with obscene words, personal information or that is entirely a '
        "product review, and strikes through FBA delivery complaints and late-delivery complaints on orders shipped "
        "on time with Buy Shipping. Ask within 90 days of the feedback.</p>"
        + table_html(t, triage.COLUMNS, rows)
        + more
        + "<h3>Order Defect Rate if they were removed</h3>"
        + caveat
        + table_html(
            wide,
            {
                "marketplace_id": "Marketplace",
                "channel": "Channel",
                "now": "ODR now",
                "if removed": "ODR if removed",
                "removed": "Defects removed",
            },
            10,
            formats={"now": pct, "if removed": pct},
        )
    )


def what_if_table(ctx: ReportContext) -> pl.DataFrame:
    """`triage.what_if` as the report shows it: one row per marketplace and channel, the rate now
    and if every removable feedback still in time were removed."""
    from analysis import triage

    w = triage.what_if(ctx.result.data, ctx.as_of, ctx.settings.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
    )
    rate = w.pivot(on="scenario", index=["marketplace_id", "channel"], values="rate")
    gone = w.pivot(on="scenario", index=["marketplace_id", "channel"], values="defects").select(
        "marketplace_id", "channel", (pl.col("now") - pl.col("if removed")).alias("removed")
    )
    return (
        rate.join(gone, on=["marketplace_id", "channel"])
        .sort("marketplace_id", "channel")
        .with_columns(
            pl.col("marketplace_id").replace_strict({x: marketplace_label(x) for x in ctx.marketplaces}),
            pl.col("channel").replace_strict(CHANNEL_LABEL),
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
            + pl.col("channel").replace(CHANNEL_LABEL)
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
    incomplete = [(mkt, ch) for mkt, ch, o in _odr_objects(ctx) if shown_status(o) == "INCOMPLETE"]
    if incomplete:  # an incomplete ODR has no date it goes under target: only its bound
        s = s.with_columns(
            pl.when(_series_in(incomplete))
            .then(pl.lit("not known (incomplete)"))
            .otherwise(pl.col(c).cast(pl.String))
            .alias(c)
            for c in ("under_target_from_recent_volume", "under_target_from_low_volume", "orders_needed")
        )
    s = s.with_columns(
        pl.col("marketplace_id").replace_strict({x: marketplace_label(x) for x in ctx.marketplaces}),
        pl.col("channel").replace_strict(CHANNEL_LABEL),
    )
    return (
        "<h2>When it goes away</h2>"
        + odr_caveat(ctx)
        + table_html(
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
    )


def spikes_html(ctx: ReportContext) -> str:
    """Incidents of the report's week (defects by arrival day), one row each, or 'no spike'."""
    from analysis import spike_views, spikes

    week_start = ctx.first
    found = [
        i
        for i in spikes.incidents(ctx.result.data, ctx.as_of, ctx.settings.spikes, first=week_start)
        if i["marketplaceId"] in ctx.marketplaces
    ]
    return (
        "<h2>Spikes</h2>"
        f'<p class="muted">Negative feedback, claims and chargebacks that arrived {esc(week_start)} to '
        f"{esc(ctx.as_of)}, judged against the account's own history at its volume. An incident is a run of "
        "days on which more defects arrived than the account's own rate explains; the tests are set so that an "
        "account without any real problem sees about one false incident a year.</p>"
        + odr_caveat(ctx)
        + spike_views.incidents_html(found)
    )
