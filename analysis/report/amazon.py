"""Amazon's own numbers, kept day by day (`pull --reports performance` keeps each day's V2
snapshot, as Amazon's report has no history): its rates and Account Health Rating over time next
to ours, its warnings as a timeline, and the reconciliation of its counts with ours."""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis import wording
from analysis.inputs.marketplaces import marketplace_label
from analysis.insights import reconcile
from analysis.metrics import definitions as m
from analysis.report import charts, lazy
from analysis.report.context import ReportContext
from analysis.report.kit import esc

alt = lazy.module("altair")  # imported when a chart is drawn

# the rates Amazon's snapshot gives that we compute too (metric id -> label in the chart)
SHOWN = {
    "orderDefectRate.afn": "ODR FBA",
    "orderDefectRate.mfn": "ODR seller-fulfilled",
    "lateShipmentRate.10d": "Late shipment (10 days)",
    "preFulfillmentCancellationRate": "Cancel rate",
    "validTrackingRate": "Valid tracking",
}


def amazon_series(ctx: ReportContext) -> pl.DataFrame:
    """One row per snapshot day, marketplace and metric Amazon gives a rate for: Amazon's rate and
    ours as of the same day (same window rules, ours computed from the exports)."""
    rows = []
    for snap in ctx.result.data.snapshots:
        day = snap["_asOf"]
        if day > ctx.as_of:
            continue
        for pm in snap["performanceMetrics"]:
            mkt = pm.get("marketplaceId")
            if mkt not in ctx.marketplaces:
                continue
            for metric_id in SHOWN:
                obj = reconcile._get(pm, metric_id)
                rate = obj.get("rate") if obj else None
                if isinstance(rate, int | float) and not isinstance(rate, bool):
                    rows.append(
                        {"day": day, "marketplace_id": mkt, "metric": metric_id, "amazon": float(rate)}
                    )
            ahr = pm.get("accountHealthRating") or {}
            if isinstance(ahr.get("ahrScore"), int | float):
                rows.append(
                    {
                        "day": day,
                        "marketplace_id": mkt,
                        "metric": "ahrScore",
                        "amazon": float(ahr["ahrScore"]),
                    }
                )
    if not rows:
        return pl.DataFrame()
    df = pl.DataFrame(rows).unique(["day", "marketplace_id", "metric"], keep="last").sort("day")
    days = sorted(set(df["day"]))
    defs = tuple(d for d in ctx.settings.metrics if d.id in SHOWN)
    ours = pl.concat(
        [
            m.scorecard(m.evaluate(ctx.result.data, day, defs), defs).select(
                pl.lit(day).alias("day"), "marketplace_id", "metric", pl.col("rate").alias("ours")
            )
            for day in days
            if day <= ctx.newest
        ]
        or [
            pl.DataFrame(
                schema={"day": pl.Date, "marketplace_id": pl.String, "metric": pl.String, "ours": pl.Float64}
            )
        ]
    )
    order = {k: i for i, k in enumerate([*SHOWN, "ahrScore"])}
    # a stable order: the report must be byte-identical for the same inputs
    return (
        df.join(ours, on=["day", "marketplace_id", "metric"], how="left")
        .with_columns(pl.col("metric").replace_strict(order, return_dtype=pl.Int32).alias("_o"))
        .sort("day", "marketplace_id", "_o")
        .drop("_o")
    )


def amazon_history_html(ctx: ReportContext) -> str:
    """Amazon's rates and rating over the days we kept its report, next to ours."""
    df = amazon_series(ctx)
    if df.is_empty():
        return (
            "<h2>Amazon's numbers over time</h2><p>No data: no Amazon performance report (V2 snapshot) dated on "
            "or before the as-of day in the data folder. <code>python -m analysis pull --reports performance</code> "
            "run each day keeps one.</p>"
        )
    days = df["day"].n_unique()
    out = [
        "<h2>Amazon's numbers over time</h2>",
        f'<p class="muted">{wording.count(days, "day")} of Amazon\'s own performance report in the data folder '
        f"(Amazon keeps no history: each day's report is kept as pulled). Ours is computed from the exports for "
        "the same day.</p>",
    ]
    for mkt in ctx.marketplaces:
        part = df.filter((pl.col("marketplace_id") == mkt) & (pl.col("metric") != "ahrScore"))
        if part.is_empty():
            continue
        last = part.filter(pl.col("day") == part["day"].max())
        cells = "".join(
            f"<tr><td>{esc(SHOWN[r['metric']])}</td><td>{esc(wording.pct(r['amazon']))}</td>"
            f"<td>{esc(wording.pct(r['ours']) if r['ours'] is not None else '–')}</td></tr>"
            for r in last.iter_rows(named=True)
        )
        ahr = df.filter((pl.col("marketplace_id") == mkt) & (pl.col("metric") == "ahrScore")).sort("day")
        ahr_text = (
            f"; Account Health Rating {int(ahr['amazon'][0])} on {ahr['day'][0]} and {int(ahr['amazon'][-1])} on "
            f"{ahr['day'][-1]}"
            if ahr.height
            else ""
        )
        out.append(
            f"<h3>{esc(marketplace_label(mkt))}</h3>"
            f'<p class="muted">Newest report {esc(last["day"][0])}{esc(ahr_text)}.</p>'
            '<div class="scroll"><table class="ah"><thead><tr><th>Metric</th><th>Amazon</th><th>Ours</th></tr>'
            f"</thead><tbody>{cells}</tbody></table></div>"
        )
    return "".join(out)


def amazon_history_chart(ctx: ReportContext) -> alt.Chart | str:
    """Amazon's rate (solid) and ours (dashed) per metric over the kept days."""
    df = amazon_series(ctx)
    if df.is_empty() or df["day"].n_unique() < 2:
        return ""
    long = (
        df.filter(pl.col("metric") != "ahrScore")
        .with_columns(
            (
                pl.col("metric").replace_strict(SHOWN)
                + pl.lit(" · ")
                + pl.col("marketplace_id").replace_strict(
                    {x: marketplace_label(x) for x in ctx.marketplaces}, default=pl.col("marketplace_id")
                )
            ).alias("series")
        )
        .unpivot(index=["day", "series"], on=["amazon", "ours"], variable_name="source", value_name="rate")
    )
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="Day"),
            y=alt.Y("rate:Q", title="Rate", axis=alt.Axis(format="%")),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom", columns=2)),
            strokeDash=alt.StrokeDash("source:N", title=None),
            tooltip=["day:T", "series:N", "source:N", alt.Tooltip("rate:Q", format=".2%")],
        )
        .properties(
            title=charts.wrapped("Amazon's rates (solid) and ours (dashed)"), width="container", height=220
        )
    )


def warnings_html(ctx: ReportContext) -> str:
    """Each warning Amazon's reports showed, with the first and last day it was seen."""
    seen: dict[tuple[str, str, str], list[dt.date]] = {}
    for snap in ctx.result.data.snapshots:
        day = snap["_asOf"]
        if day > ctx.as_of:
            continue
        for pm in snap["performanceMetrics"]:
            mkt = pm.get("marketplaceId")
            if mkt not in ctx.marketplaces:
                continue
            for w in pm.get("warningStates") or []:
                if isinstance(w, dict) and w.get("warningType"):
                    seen.setdefault((mkt, str(w["warningType"]), str(w.get("status", ""))), []).append(day)
    if not seen:
        return ""
    rows = "".join(
        f"<tr><td>{esc(marketplace_label(mkt))}</td><td>{esc(kind)}</td><td>{esc(status)}</td>"
        f"<td>{esc(min(days))}</td><td>{esc(max(days))}</td><td>{len(set(days))}</td></tr>"
        for (mkt, kind, status), days in sorted(seen.items(), key=lambda kv: (min(kv[1]), kv[0]))
    )
    return (
        "<h3>Amazon's warnings</h3>"
        '<div class="scroll"><table class="ah"><thead><tr><th>Marketplace</th><th>Warning</th><th>Status</th>'
        f"<th>First seen</th><th>Last seen</th><th>Reports</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def reconciliation_html(ctx: ReportContext) -> str:
    """Amazon's counts against ours over Amazon's own window; each difference with its reasons."""
    rows = [
        r
        for r in reconcile.reconcile(ctx.result.data, ctx.as_of, ctx.settings.metrics)
        if r.marketplace_id in ctx.marketplaces
    ]
    if not rows:
        return ""
    differ = [r for r in rows if r.difference]
    head = (
        "<h3>Amazon's counts against ours</h3>"
        f'<p class="muted">{len(rows) - len(differ)} of {len(rows)} counts of Amazon\'s newest report are the same as '
        "ours over Amazon's own window, counted as known on the report's day.</p>"
    )
    if not differ:
        return head
    body = "".join(
        f"<tr><td>{esc(marketplace_label(r.marketplace_id))}</td><td>{esc(r.title)}</td><td>{esc(r.part)}</td>"
        f"<td>{r.amazon:,}</td><td>{r.ours:,}</td><td>{esc(r.window_from)} to {esc(r.window_to)}</td>"
        f"<td>{'<br>'.join(esc(x) for x in r.reasons)}</td></tr>"
        for r in differ
    )
    return (
        head
        + '<div class="scroll"><table class="ah"><thead><tr><th>Marketplace</th><th>Metric</th><th>Count</th>'
        "<th>Amazon</th><th>Ours</th><th>Window</th><th>Why they differ</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )
