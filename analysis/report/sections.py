"""The report's sections about the metrics: the header and banners, the ODR scorecard and trend,
the full scorecard per marketplace, data quality and the footer. The notebook only calls them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from analysis import __version__, wording
from analysis.inputs import sources
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.snapshots import VIOLATION_KEYS, newest_for
from analysis.metrics import definitions as m
from analysis.metrics import health
from analysis.report import charts, lazy
from analysis.report.context import (
    ReportContext,
    amazon_status,
    amazon_target,
    metric_json,
    pm_of,
    series_in,
    trend_weeks,
)
from analysis.report.kit import badge, esc
from analysis.wording import CHANNEL_LABEL, STATUS_LABEL

alt = lazy.module("altair")  # imported when a chart is drawn


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
            f"{esc(ctx.as_of)}; the days after {esc(ctx.newest)} are not in the data folder (no orders, and no "
            "feedback, claims, deliveries or answers known), so no metric has a verdict.</div>"
        )
    early = health.before_data_line(ctx.result.data, ctx.as_of, ctx.settings.metrics)
    if early:
        out.append(f'<div class="banner"><b>Short history.</b> {esc(early)}</div>')
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
    """Our verdict on a metric object: INCOMPLETE when a needed file is absent, the data ends
    before the as-of day, or rows we could not read could change it."""
    return (
        "INCOMPLETE"
        if obj.get("dataMissing") or obj.get("dataEnds") or obj.get("unreadRows")
        else obj["volumeAdjustedStatus"]
    )


def cell_status(md: m.MetricDef, obj: dict) -> str:
    """A metric's status as a table cell shows it: NONE when there is nothing to show (no unit in
    the window and no absent file or unread row to say), else `shown_status`."""
    return (
        shown_status(obj)
        if obj[md.denominator_key] or obj.get("dataMissing") or obj.get("unreadRows")
        else "NONE"
    )


def headline(ctx: ReportContext) -> dict:
    """The one-line status for reports/index.html: the worst ODR status (Incomplete when a file
    the ODR needs is absent), and whether the period runs past the data."""
    objs = [o for _, _, o in odr_objects(ctx)]
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


def odr_objects(ctx: ReportContext) -> list[tuple[str, str, dict]]:
    out = []
    for pm in ctx.result.document["performanceMetrics"]:
        if pm["marketplaceId"] not in ctx.marketplaces:
            continue
        for ch in ("afn", "mfn"):
            out.append((pm["marketplaceId"], ch.upper(), pm["orderDefectRate"][ch]))
    return out


def num_of(md: m.MetricDef, obj: dict) -> int:
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
    return f"{num_of(md, obj):,} of {wording.count(den, md.unit)} {md.hit_words}{detail}"


def status_sentence(md: m.MetricDef, obj: dict) -> str:
    """Why the badge says what it says, in words a seller reads once: the misses and the units,
    the target in its own direction, and whether chance explains it at this volume."""
    den = obj[md.denominator_key]
    missing = obj.get("dataMissing")
    if missing:
        files = ", ".join(sources.kind_title(k) for k in missing)
        if md.incomplete_bound and den:
            return f"{md.incomplete_bound} {wording.pct(obj['rate'])}: no {files} file"
        return f"not known: no {files} file"
    if obj.get("unreadRows"):
        return (
            f"not known: {wording.count(obj['unreadRows'], 'row')} of the files it reads could not be read "
            "(the check command lists them), enough to change the verdict; "
            + (
                f"{wording.pct(obj['rate'])} over the rows read"
                if den
                else f"no {wording.plural(md.unit)} among the rows read"
            )
        )
    if obj.get("dataEnds"):
        return f"not known: the data ends {obj['dataEnds']}, before the as-of day; " + (
            f"{wording.pct(obj['rate'])} counts only what the data holds"
            if den
            else f"no {wording.plural(md.unit)} in what the data holds"
        )
    if den == 0:
        return f"No {wording.plural(md.unit)} in the window."
    num = num_of(md, obj)
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
    if (obj.get("dataEnds") or obj.get("unreadRows")) and not obj.get("dataMissing"):
        return "not known"
    if obj.get("dataMissing"):
        sign = {"at least": "≥ ", "at most": "≤ "}.get(md.incomplete_bound or "", "")
        return f"{sign}{wording.pct(obj['rate'])}" if sign and den else "not known"
    return wording.pct(obj["rate"]) if den else "–"


def rule_badge(md: m.MetricDef, obj: dict) -> str:
    """The bare rule (rate against target), named for what it is."""
    if shown_status(obj) == "INCOMPLETE" or not obj[md.denominator_key]:
        return '<span class="badge rule">–</span>'
    labels = wording.RULE_LABEL_HIGHER if md.higher_is_better else wording.RULE_LABEL
    return f'<span class="badge rule">{esc(labels.get(obj["status"], obj["status"]))}</span>'


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
            why = f"our target ({wording.pct(obj['targetValue'], 1)}) is not Amazon's ({wording.pct(theirs, 1)})"
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
    for mkt, ch, obj in odr_objects(ctx):
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
            f"<td>{wording.pct(iv.get('lower')) + ' – ' + wording.pct(iv.get('upper')) if known else '–'}</td>"
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
    files = ", ".join(sources.kind_title(k) for k in missing)
    return (
        f'<p class="banner"><b>Incomplete:</b> no {esc(files)} file for some or all marketplaces; this section '
        "sees only the defects of the files present.</p>"
    )


def odr_trend(ctx: ReportContext) -> pl.DataFrame:
    """ODR as of each Sunday of the trend, per marketplace and channel, where the ODR is complete."""
    complete = [(mkt, ch) for mkt, ch, obj in odr_objects(ctx) if not obj.get("dataMissing")]
    card = metric_trend(ctx).filter(pl.col("metric").str.starts_with("orderDefectRate."))
    return (
        card.filter(series_in(complete))
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
        title=f"Order Defect Rate, last {trend_weeks(ctx)} weeks (as of each Sunday)",
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


def scorecard_html(ctx: ReportContext, marketplace_id: str) -> str:
    """The whole Account Health page of one marketplace, in the layout sellers know."""
    pm = pm_of(ctx, marketplace_id)
    out = [f"<h2>{esc(marketplace_label(marketplace_id))}</h2>"]
    for section, ids in SECTIONS:
        body = []
        for metric_id in ids:
            md, obj = ctx.settings.metric(metric_id), metric_json(pm, metric_id)
            rng = obj["reportingDateRange"]
            window = f"{esc(rng['reportingDateFrom'][:10])} to {esc(rng['reportingDateTo'][:10])}"
            den = obj[md.denominator_key]
            iv = obj.get("rateInterval") or {}
            known = den and shown_status(obj) != "INCOMPLETE"
            interval = f"{wording.pct(iv.get('lower'))} – {wording.pct(iv.get('upper'))}" if known else "–"
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
    n = trend_weeks(ctx)
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
    present = [d for d in labels if not metric_json(pm_of(ctx, marketplace_id), d).get("dataMissing")]
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
            title=f"{marketplace_label(marketplace_id)}: last {trend_weeks(ctx)} weeks (as of each Sunday)"
        )
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
