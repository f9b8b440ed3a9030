"""Two-cycle escalation: an Order Defect Rate above 2 % in two consecutive 60-day windows, each
with `volumeAdjustedStatus` BAD (the contract), is the point at which Amazon restricts an account.
The volume test keeps 1 defect in 10 orders (10 %, p = 0.0956) from being called an escalation.
The cycles are the ODR's own windows as of the as-of day and as of 60 days before it, with the
run's window and lag."""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis.inputs.sources import Dataset
from analysis.metrics import definitions as m

THRESHOLD = 0.02


def two_cycles(
    data: Dataset,
    as_of: dt.date,
    defs: tuple[m.MetricDef, ...],
    oldest: dt.date,
    threshold: float = THRESHOLD,
) -> pl.DataFrame:
    """Per marketplace and channel: the ODR of this cycle and of the one before, and `flagged`
    (both above `threshold` and both with volume-adjusted status BAD), or null when the data
    cannot say: the earlier cycle begins before the oldest order, the as-of day is past the
    newest, or rows set aside from the files the ODR reads could change either cycle's verdict."""
    from analysis.metrics import health  # health imports the insights' neighbours: here, not at the top

    odr = tuple(d for d in defs if d.population == "order_defects")
    by_id = {d.id: d for d in odr}
    unread = health.unread_rows(data)
    cycle = odr[0].window_days if odr else 60
    rows = []
    for label, day in (("now", as_of), ("before", as_of - dt.timedelta(days=cycle))):
        card = m.scorecard(m.evaluate(data, day, odr), odr)
        for r in card.iter_rows(named=True):
            rows.append(
                {
                    "cycle": label,
                    "marketplace_id": r["marketplace_id"],
                    "channel": r["channel"],
                    "rate": r["rate"],
                    "orders": r["denominator"],
                    "defects": r["numerator"],
                    "volume_adjusted_status": r["volume_adjusted_status"],
                    "unsure": health.unread_could_change(
                        by_id[r["metric"]],
                        r["numerator"],
                        r["denominator"],
                        health.metric_unread(by_id[r["metric"]], unread),
                    ),
                    "window_from": r["window_from"],
                    "window_to": r["window_to"],
                }
            )
    if not rows:
        return pl.DataFrame()
    df = pl.DataFrame(rows)
    now, before = (df.filter(pl.col("cycle") == c).drop("cycle") for c in ("now", "before"))
    out = now.join(before, on=["marketplace_id", "channel"], how="left", suffix="_before")
    past = as_of > health.newest_order_day(data)
    known = (
        pl.col("window_from_before").is_not_null()
        & (pl.col("window_from_before") >= oldest)
        & ~pl.col("unsure")
        & ~pl.col("unsure_before").fill_null(True)
        & pl.lit(not past)
    )
    bad = (pl.col("volume_adjusted_status") == "BAD") & (pl.col("volume_adjusted_status_before") == "BAD")
    over = (pl.col("rate") > threshold) & (pl.col("rate_before") > threshold) & bad
    return out.with_columns(
        pl.when(~known | pl.col("rate").is_null() | pl.col("rate_before").is_null())
        .then(None)
        .otherwise(over)
        .alias("flagged")
    ).sort("marketplace_id", "channel")
