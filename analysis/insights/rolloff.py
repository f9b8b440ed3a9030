"""When defects leave the ODR window, and where the rate goes meanwhile.

The window is order-correlated: a defect leaves when its order's purchase day drops out of the
window (purchase day + lag + window days), whatever happens next. With no new defect the rate
still moves with volume: it falls as new orders come in, and it *rises* when volume falls,
because old orders leave the denominator faster than the few defects leave the numerator.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis.inputs import parsing
from analysis.inputs.sources import Dataset
from analysis.insights import defects as dfx
from analysis.metrics import definitions as m
from analysis.metrics import populations

HORIZON_DAYS = 60
RECENT_DAYS = 28
LOW_VOLUME = 0.5
RECENT, LOW = "recent volume", "lower volume"


def _odr_defs(defs: tuple[m.MetricDef, ...]) -> dict[str, m.MetricDef]:
    return {d.channel: d for d in defs if d.population == "order_defects"}


def calendar(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> pl.DataFrame:
    """Each defective order still in the window on `as_of`, and the first day it no longer counts."""
    d = dfx.defective_orders(data, as_of, defs)
    return (
        d.select("marketplace_id", "channel", "order_id", "purchase_day", "leaves_window", "cause")
        .with_columns((pl.col("leaves_window") - pl.lit(as_of)).dt.total_days().alias("days_left"))
        .sort("leaves_window", "order_id")
    )


def _daily(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> pl.DataFrame:
    """Orders and known defective orders per purchase day, marketplace and channel."""
    end = parsing.end_of_day(as_of)
    return (
        populations.order_defects(data)
        .filter(pl.col("purchase_ts") < end)
        .group_by("marketplace_id", "channel", pl.col("anchor_day").alias("day"))
        .agg(
            pl.len().alias("orders"),
            (pl.col("defects_from").is_not_null() & (pl.col("defects_from") < end)).sum().alias("defects"),
        )
        .collect()
    )


def forecast(
    data: Dataset,
    as_of: dt.date,
    defs: tuple[m.MetricDef, ...],
    *,
    horizon: int = HORIZON_DAYS,
    low_volume: float = LOW_VOLUME,
) -> pl.DataFrame:
    """Projected ODR for each of the next `horizon` days, with no new defect, at the recent daily
    volume (mean of the last 28 days) and at `low_volume` times it.

    Columns: marketplace_id, channel, scenario, day, orders, defects, rate, target.
    """
    odr = _odr_defs(defs)
    daily = _daily(data, as_of, defs)
    rows = []
    for (mkt, ch), grp in daily.group_by("marketplace_id", "channel", maintain_order=True):
        d = odr[ch]
        by_day = {r["day"]: (r["orders"], r["defects"]) for r in grp.iter_rows(named=True)}
        recent = [by_day.get(as_of - dt.timedelta(days=i), (0, 0))[0] for i in range(RECENT_DAYS)]
        volume = sum(recent) / RECENT_DAYS
        for scenario, factor in ((RECENT, 1.0), (LOW, low_volume)):
            for k in range(0, horizon + 1):
                day = as_of + dt.timedelta(days=k)
                first, last = d.window(day)
                n = dfct = 0.0
                cur = first
                while cur <= last:
                    if cur <= as_of:
                        o, x = by_day.get(cur, (0, 0))
                        n += o
                        dfct += x
                    else:
                        n += volume * factor
                    cur += dt.timedelta(days=1)
                rows.append(
                    {
                        "marketplace_id": mkt,
                        "channel": ch,
                        "scenario": scenario,
                        "day": day,
                        "orders": n,
                        "defects": int(dfct),
                        "rate": dfct / n if n else None,
                        "target": d.target,
                    }
                )
    # typed, not inferred: a long run of days without orders (rate None) must not make the
    # column null-typed before the first rate arrives
    return pl.DataFrame(rows, schema=FORECAST_SCHEMA).sort("marketplace_id", "channel", "scenario", "day")


FORECAST_SCHEMA = {
    "marketplace_id": pl.String,
    "channel": pl.String,
    "scenario": pl.String,
    "day": pl.Date,
    "orders": pl.Float64,  # projected days add a fraction of the recent daily volume
    "defects": pl.Int64,
    "rate": pl.Float64,
    "target": pl.Float64,
}


SUMMARY_SCHEMA = {
    "marketplace_id": pl.String,
    "channel": pl.String,
    "defects": pl.Int64,
    "orders": pl.Int64,
    "rate": pl.Float64,
    "orders_needed": pl.Int64,
    "under_target_from_recent_volume": pl.Date,
    "under_target_from_low_volume": pl.Date,
}


def summary(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...], **kw) -> pl.DataFrame:
    """Per marketplace and channel: today's defects and orders, the defect-free orders still
    needed to be under target, and the first day the projection is under target per scenario."""
    f = forecast(data, as_of, defs, **kw)
    rows = []
    for (mkt, ch), grp in f.group_by("marketplace_id", "channel", maintain_order=True):
        today = grp.filter(pl.col("day") == as_of).row(0, named=True)
        rec = {
            "marketplace_id": mkt,
            "channel": ch,
            "defects": today["defects"],
            "orders": int(today["orders"]),
            "rate": today["rate"],
            "orders_needed": dfx.orders_needed(today["defects"], int(today["orders"]), today["target"]),
        }
        for scenario, col in (
            (RECENT, "under_target_from_recent_volume"),
            (LOW, "under_target_from_low_volume"),
        ):
            under = grp.filter((pl.col("scenario") == scenario) & (pl.col("rate") < pl.col("target"))).sort(
                "day"
            )
            rec[col] = under["day"][0] if under.height else None
        rows.append(rec)
    if not rows:  # no window holds an order yet (a day before the data): a table with no rows
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    return pl.DataFrame(rows).sort("marketplace_id", "channel")
