"""The orders behind the Order Defect Rate: which orders, which defects, what the buyer said."""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis import metrics as m
from analysis import populations
from analysis.sources import Dataset


def defective_orders(
    data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...] = m.METRICS
) -> pl.DataFrame:
    """One row per order (and channel) counted as defective in the ODR window on `as_of`.

    Columns: marketplace_id, channel, order_id, purchase_day, skus, negative_feedback, claim,
    chargeback (booleans), first_defect_day, leaves_window (first day the order no longer counts),
    rating, comment, claim_reason, claim_status.
    """
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    frames = []
    for d in defs:
        if d.population != "order_defects":
            continue
        first, last = d.window(as_of)
        known = lambda c: pl.col(c).is_not_null() & (pl.col(c) < end)  # noqa: E731
        frames.append(
            populations.order_defects(data)
            .filter(
                (pl.col("channel") == d.channel)
                & pl.col("anchor_day").is_between(first, last)
                & known("defects_from")
            )
            .select(
                "marketplace_id",
                "channel",
                "order_id",
                pl.col("anchor_day").alias("purchase_day"),
                known("negative_feedback_from").alias("negative_feedback"),
                known("claims_from").alias("claim"),
                known("chargebacks_from").alias("chargeback"),
                pl.col("defects_from").dt.date().alias("first_defect_day"),
                (pl.col("anchor_day") + pl.duration(days=d.lag_days + d.window_days)).alias("leaves_window"),
            )
        )
    if not frames:
        return pl.DataFrame()
    orders = pl.concat(frames).collect()
    skus = (
        data.frame("orders")
        .group_by("order_id", "channel")
        .agg(pl.col("sku").unique().sort().str.join(", ").alias("skus"))
        .collect()
    )
    fb = (
        data.frame("feedback")
        .filter((pl.col("rating") <= 2) & ~pl.col("removed") & (pl.col("feedback_ts") < end))
        .sort("feedback_ts")
        .group_by("order_id")
        .agg(pl.col("rating").first(), pl.col("comments").first().alias("comment"))
        .collect()
    )
    cl = (
        data.frame("claims")
        .filter(pl.col("claim_ts") < end)
        .sort("claim_ts")
        .group_by("order_id")
        .agg(pl.col("claim_reason").first(), pl.col("claim_status").first())
        .collect()
    )
    return (
        orders.join(skus, on=["order_id", "channel"], how="left")
        .join(fb, on="order_id", how="left")
        .join(cl, on="order_id", how="left")
        .sort("marketplace_id", "channel", "purchase_day", "order_id")
    )
