"""The report's sections about the defects themselves: which orders, what caused them, what can
be removed, when they roll off, and the spikes."""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis import wording
from analysis.inputs.marketplaces import marketplace_label
from analysis.insights import causes, defects, rolloff, triage
from analysis.report import charts, lazy
from analysis.report.context import ReportContext, series_in, week_incidents
from analysis.report.kit import esc, esc_text, table_html
from analysis.report.sections import odr_caveat, odr_objects, shown_status
from analysis.wording import CHANNEL_LABEL

alt = lazy.module("altair")  # imported when a chart is drawn


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
            f"<td>{esc(r['rating']) if r['rating'] is not None else ''}</td><td>{esc_text(r['comment'])}</td>"
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


def what_caused_it_html(ctx: ReportContext) -> str:
    """Defects that arrived this week against the weekly average of the 8 weeks before, by cause,
    SKU and carrier."""
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
    t = triage.triage(ctx.result.data, ctx.as_of).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
        & pl.col("verdict").is_in([triage.REMOVABLE, triage.STRIKE, triage.STRIKE_IF_BUY_SHIPPING])
        & ~pl.col("expired")
    )
    wide = what_if_table(ctx)
    rows = ctx.settings.report.removal_rows
    more = (
        f'<p class="muted">{rows} of {t.height} shown, the nearest deadlines first. All of them, with order, '
        f"deadline, rule and the words that decide it: <code>python -m analysis removals --data DIR --as-of "
        f"{esc(ctx.as_of)}</code> (CSV, safe to open in a spreadsheet).</p>"
        if t.height > rows
        else ""
    )
    incomplete = [o for _, _, o in odr_objects(ctx) if o.get("dataMissing")]
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
            formats={"now": wording.pct, "if removed": wording.pct},
        )
    )


def what_if_table(ctx: ReportContext) -> pl.DataFrame:
    """`triage.what_if` as the report shows it: one row per marketplace and channel, the rate now
    and if every removable feedback still in time were removed."""
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
    s = rolloff.summary(ctx.result.data, ctx.as_of, ctx.result.metrics).filter(
        pl.col("marketplace_id").is_in(ctx.marketplaces)
    )
    incomplete = [(mkt, ch) for mkt, ch, o in odr_objects(ctx) if shown_status(o) == "INCOMPLETE"]
    if incomplete:  # an incomplete ODR has no date it goes under target: only its bound
        s = s.with_columns(
            pl.when(series_in(incomplete))
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
    week_start = ctx.first
    found = week_incidents(ctx)
    return (
        "<h2>Spikes</h2>"
        f'<p class="muted">Negative feedback, claims and chargebacks that arrived {esc(week_start)} to '
        f"{esc(ctx.as_of)}, judged against the account's own history at its volume. An incident is a run of "
        "days on which more defects arrived than the account's own rate explains; the tests are set so that an "
        "account without any real problem sees about one false incident a year.</p>"
        + odr_caveat(ctx)
        + incidents_html(found)
    )


# the tests in plain words, for a seller
DETECTOR_WORDS = {
    "glr": "moving-window test on the days defects arrived",
    "order-glr": "order-day test (the defects of the orders of a few days)",
    "cusum": "cumulative-sum test",
    "p-chart": "daily exact test",
    "ewma": "smoothed-trend test",
    "laney": "Laney's chart for high volumes",
}
DRIVER_WORDS = {"causes": "Causes", "skus": "SKUs", "carriers": "Carriers"}


def incidents_html(incidents: list[dict], limit: int = 20) -> str:
    """One row per incident (`spikes.incidents`): where, which days, how many defects against
    how many expected and the p-value, the test that found it, the drivers; or a sentence
    saying there is no spike. An incident without more defects than expected is never shown."""
    shown = [i for i in incidents if i["observed"] > i["expected"]]
    if not shown:
        return (
            "<p><b>No spike:</b> in every marketplace and channel, the defects are in line with "
            "their own history at their volume.</p>"
        )
    rows = []
    for i in shown[:limit]:
        days = f"{esc(i['firstDay'])} to {esc(i['lastDay'])}"
        notes = [f"first alarm {esc(i['firstAlarm'])}"]
        if i.get("orderWindow"):
            notes.append(f"orders of {esc(i['orderWindow'][0])} to {esc(i['orderWindow'][1])}")
        if i.get("learning"):
            notes.append(f"learning: {esc(wording.count(i['historyDays'], 'day'))} of history")
        basis = "arrived" if i.get("basis", "arrival") == "arrival" else "of the orders of those days"
        drivers = "; ".join(
            f"{esc(DRIVER_WORDS.get(k, k))}: "
            + ", ".join(
                f"{esc(causes.CAUSE_LABELS.get(x['value'], x['value']) if k == 'causes' else x['value'])} "
                f"({esc(x['defects'])})"
                for x in v
            )
            for k, v in i.get("drivers", {}).items()
            if v
        )
        defects = f"{wording.count(i['observed'], 'defect')} {basis} against {i['expected']:.1f} expected"
        rows.append(
            "<tr>"
            f"<td>{esc(marketplace_label(i['marketplaceId']))}</td>"
            f"<td>{esc(wording.CHANNEL_LABEL.get(i['channel'], i['channel']))}</td>"
            f'<td>{days}<br><span class="muted">{"; ".join(notes)}</span></td>'
            f"<td>{esc(defects)}</td>"
            f"<td>{esc(wording.p_text(i['pValue']))}</td>"
            f"<td>{esc(DETECTOR_WORDS.get(i['detector'], i['detector']))}</td>"
            f"<td>{drivers}</td>"
            "</tr>"
        )
    more = (
        f'<p class="muted">{esc(wording.count(len(shown) - limit, "more incident"))} not shown.</p>'
        if len(shown) > limit
        else ""
    )
    return (
        '<div class="scroll"><table class="ah"><thead><tr><th>Marketplace</th><th>Channel</th><th>Days</th>'
        "<th>Defects</th><th>p</th><th>Found by</th><th>Drivers</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
        + more
    )
