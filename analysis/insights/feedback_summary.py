"""The feedback table as Seller Central's Feedback Manager shows it: positive (4-5 stars), neutral
(3) and negative (1-2) counts and shares over the last 30, 90 and 365 days and the lifetime of the
data, per marketplace. Feedback Amazon removed is left out, as on Amazon's page.

Feedback pulled through the SP-API (GET_SELLER_FEEDBACK_DATA) holds 1-3 star feedback only: where
a marketplace's feedback comes from such a file, its positives (and so the total and every share)
are unknown, never 0 (metrics.md)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis.inputs import parsing
from analysis.inputs.sources import RAW_KINDS, Dataset

# the names pulled feedback files are shown by (`sources._raw_entries`: "<reportType>_<first>_<last>...")
PULLED = tuple(f"{t}_" for t, kind in RAW_KINDS.items() if kind == "feedback")

PERIODS: tuple[tuple[str, int | None], ...] = (
    ("30 days", 30),
    ("90 days", 90),
    ("365 days", 365),
    ("Lifetime", None),
)
KINDS = (("positive", 4, 5), ("neutral", 3, 3), ("negative", 1, 2))


def feedback_summary(data: Dataset, as_of: dt.date) -> pl.DataFrame:
    """One row per marketplace and period: counts, total and shares (null when no feedback), and
    `positives_known`: false where the marketplace's feedback was pulled (1-3 stars only), whose
    positive count, total and shares are then null."""
    end = parsing.end_of_day(as_of)
    every = data.frame("feedback")
    pulled = [f.path.name for f in data.files if f.kind == "feedback" and f.path.name.startswith(PULLED)]
    # a marketplace with a row of a pulled file; with pulled files and no row at all, every one
    pulled_in = (
        set(
            every.filter(pl.col("_file").is_in(pulled))
            .select("marketplace_id")
            .unique()
            .collect()
            .to_series()
        )
        if pulled
        else set()
    )
    fb = every.filter((pl.col("feedback_ts") < end) & ~pl.col("removed").fill_null(False))
    frames = []
    for label, days in PERIODS:
        part = fb if days is None else fb.filter(pl.col("feedback_ts") >= end - dt.timedelta(days=days))
        frames.append(
            part.group_by("marketplace_id").agg(
                pl.lit(label).alias("period"),
                *(pl.col("rating").is_between(lo, hi).sum().alias(name) for name, lo, hi in KINDS),
                pl.len().alias("total"),
            )
        )
    markets = data.frame("orders").select("marketplace_id").unique()
    grid = markets.join(pl.LazyFrame({"period": [p for p, _ in PERIODS]}), how="cross")
    out = (
        grid.join(pl.concat(frames), on=["marketplace_id", "period"], how="left")
        .with_columns(pl.col(["positive", "neutral", "negative", "total"]).fill_null(0).cast(pl.Int64))
        .with_columns(
            (pl.col(name) / pl.col("total")).fill_nan(None).alias(f"{name}_share") for name, _, _ in KINDS
        )
        .with_columns(pl.col("period").replace_strict({p: i for i, (p, _) in enumerate(PERIODS)}).alias("_o"))
        .sort("marketplace_id", "_o")
        .drop("_o")
    ).collect()
    has_rows = set(every.select("marketplace_id").unique().collect().to_series())
    known = pl.Series(
        [not pulled or (m not in pulled_in and m in has_rows) for m in out["marketplace_id"]],
        dtype=pl.Boolean,
    )
    unknown = ["positive", "total", *(f"{name}_share" for name, _, _ in KINDS)]
    return out.with_columns(
        *(pl.when(known).then(pl.col(c)).otherwise(None).alias(c) for c in unknown),
        known.alias("positives_known"),
    )
