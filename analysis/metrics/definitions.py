"""One engine, many metrics: each Account Health metric is a row of `METRICS`, evaluated by the
same window code, for one as-of day (`evaluate`) or every day of a range in one pass (`history`).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, replace

import polars as pl

from analysis.errors import SettingsError
from analysis.inputs import parsing
from analysis.inputs.sources import Dataset
from analysis.metrics import populations, stats

_TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Part:
    """A numerator reported inside a metric object (`key` in the JSON, `name` in the population)."""

    key: str
    name: str
    style: str = "count"  # "count": a plain integer; "object": {"count", "status"}


@dataclass(frozen=True)
class MetricDef:
    id: str  # unique id, also the path of the object in the JSON ("orderDefectRate.afn")
    title: str
    population: str
    channel: str | None  # AFN / MFN, or None for every channel
    window_days: int
    lag_days: int
    target: float
    condition: str
    numerator: str  # population numerator counted for the rate
    denominator_key: str
    numerator_part: Part
    parts: tuple[Part, ...] = ()
    # the file kinds (sources.KINDS names) without which the metric is incomplete, besides All
    # Orders (metrics.md, "Missing inputs"); `needs_for_channel`: needed only when the
    # marketplace has orders of that channel
    needs: tuple[str, ...] = ()
    needs_for_channel: tuple[tuple[str, str], ...] = ()
    # what the rate is when a needed file is absent: "at least" (the numerator can only grow),
    # "at most" (it can only shrink), or None (nothing is known: the denominator needs the file)
    incomplete_bound: str | None = None
    higher_is_better: bool = False
    # presentation (analysis.wording turns these into sentences): the unit counted, what the
    # numerator's units are, and what a miss is called
    unit: str = "order"
    hit_words: str = "defective"
    miss: str = "defect"

    def window(self, as_of: dt.date) -> tuple[dt.date, dt.date]:
        """[A - L - D + 1, A - L], both ends included."""
        last = as_of - dt.timedelta(days=self.lag_days)
        return last - dt.timedelta(days=self.window_days - 1), last


def _odr(channel: str) -> MetricDef:
    return MetricDef(
        id=f"orderDefectRate.{channel.lower()}",
        title=f"Order Defect Rate ({'FBA' if channel == 'AFN' else 'seller-fulfilled'})",
        population="order_defects",
        channel=channel,
        window_days=60,
        lag_days=15,
        target=0.01,
        condition=stats.LESS_THAN,
        numerator="defects",
        denominator_key="orderCount",
        numerator_part=Part("orderWithDefects", "defects", "object"),
        parts=(
            Part("negativeFeedback", "negative_feedback", "object"),
            Part("claims", "claims", "object"),
            Part("chargebacks", "chargebacks", "object"),
        ),
        needs=("feedback", "claims", "chargebacks"),
        incomplete_bound="at least",
        hit_words="defective",
        miss="defect",
    )


def _lsr(days: int) -> MetricDef:
    return MetricDef(
        id=f"lateShipmentRate.{days}d",
        title=f"Late Shipment Rate ({days} days)",
        population="late_shipments",
        channel="MFN",
        window_days=days,
        lag_days=0,
        target=0.04,
        condition=stats.LESS_THAN,
        numerator="late",
        denominator_key="orderCount",
        numerator_part=Part("lateShipmentCount", "late"),
        needs=("shipments",),
        hit_words="shipped late",
        miss="late shipment",
    )


METRICS: tuple[MetricDef, ...] = (
    _odr("AFN"),
    _odr("MFN"),
    _lsr(10),
    _lsr(30),
    MetricDef(
        "preFulfillmentCancellationRate",
        "Pre-fulfilment Cancel Rate",
        "cancellations",
        "MFN",
        7,
        1,
        0.025,
        stats.LESS_THAN,
        "cancelled",
        "orderCount",
        Part("cancellationCount", "cancelled"),
        needs=("cancellations",),
        incomplete_bound="at most",
        hit_words="cancelled by the seller",
        miss="seller cancellation",
    ),
    MetricDef(
        "validTrackingRate",
        "Valid Tracking Rate",
        "valid_tracking",
        "MFN",
        30,
        10,
        0.95,
        stats.GREATER_THAN,
        "valid",
        "shipmentCount",
        Part("validTrackingCount", "valid"),
        needs=("shipments",),
        higher_is_better=True,
        unit="package",
        hit_words="with valid tracking",
        miss="untracked package",
    ),
    MetricDef(
        "onTimeDeliveryRate",
        "On-Time Delivery Rate",
        "on_time_delivery",
        "MFN",
        30,
        10,
        0.97,
        stats.GREATER_THAN,
        "on_time",
        "shipmentCountWithValidTracking",
        Part("onTimeDeliveryCount", "on_time"),
        needs=("shipments",),
        higher_is_better=True,
        unit="tracked package",
        hit_words="delivered on time",
        miss="late delivery",
    ),
    MetricDef(
        "unitOnTimeDeliveryRate",
        "Unit On-Time Delivery Rate",
        "unit_on_time_delivery",
        "MFN",
        14,
        10,
        0.90,
        stats.GREATER_THAN,
        "on_time",
        "totalUnitCount",
        Part("unitOnTimeDeliveryCount", "on_time"),
        needs=("shipments",),
        higher_is_better=True,
        unit="unit",
        hit_words="delivered on time",
        miss="late unit",
    ),
    MetricDef(
        "invoiceDefectRate",
        "Invoice Defect Rate",
        "invoices",
        None,
        7,
        14,
        0.05,
        stats.LESS_THAN,
        "defect",
        "orderCount",
        Part("invoiceDefect", "defect", "object"),
        parts=(Part("missingInvoice", "missing", "object"), Part("lateInvoice", "late", "object")),
        needs=("invoices",),
        needs_for_channel=(("MFN", "shipments"),),
        incomplete_bound="at most",
        unit="business order",
        hit_words="with a missing or late invoice",
        miss="invoice defect",
    ),
    MetricDef(
        "refundRate",
        "Refund rate",
        "refunds",
        None,
        30,
        0,
        0.10,
        stats.LESS_THAN,
        "refunded",
        "orderCount",
        Part("refundedOrderCount", "refunded"),
        needs_for_channel=(("AFN", "fba_returns"), ("MFN", "mfn_returns")),
        incomplete_bound="at least",
        hit_words="refunded",
        miss="refunded order",
    ),
    MetricDef(
        "contactResponseTime",
        "Contact response time (answered within 24 h)",
        "responses",
        None,
        30,
        0,
        0.90,
        stats.GREATER_THAN,
        "on_time",
        "messageCount",
        Part("respondedWithin24hCount", "on_time"),
        needs=("messages",),
        higher_is_better=True,
        unit="message",
        hit_words="answered within 24 h",
        miss="late answer",
    ),
)
METRIC_BY_ID = {m.id: m for m in METRICS}


def configured(overrides: dict | None = None) -> tuple[MetricDef, ...]:
    """The metric table with a user's windows, lags and targets applied (`settings.build` reads
    them from TOML): `overrides` maps a metric id to any of `window_days`, `lag_days`, `target`."""
    settings = dict(overrides or {})
    unknown = set(settings) - set(METRIC_BY_ID)
    if unknown:
        raise SettingsError(
            f"unknown metric(s) in settings: {', '.join(sorted(unknown))}; known: {', '.join(METRIC_BY_ID)}"
        )
    out = []
    for m in METRICS:
        s = settings.get(m.id, {})
        bad = set(s) - set(TUNABLE)
        if bad:
            raise SettingsError(
                f"{m.id}: unknown setting(s) {', '.join(sorted(bad))}; use window_days, lag_days, target"
            )
        for k, v in s.items():
            if not isinstance(v, TUNABLE[k]) or isinstance(v, bool) or not _valid(k, v):
                raise SettingsError(f"{m.id}: {k} = {v!r} is not {TUNABLE_TEXT[k]}")
        out.append(replace(m, **s))
    return tuple(out)


TUNABLE = {"window_days": int, "lag_days": int, "target": (int, float)}
TUNABLE_TEXT = {
    "window_days": "a whole number of days from 1 to 365",
    "lag_days": "a whole number of days from 0 to 365",
    "target": "a fraction between 0 and 1 (0.01 = 1 %)",
}


def _valid(key: str, v: float) -> bool:
    if key == "window_days":
        return 1 <= v <= 365
    if key == "lag_days":
        return 0 <= v <= 365
    return 0 < v < 1


def missing_inputs(md: MetricDef, has, channels: set[str]) -> list[str]:
    """The file kinds `md` needs that the folder lacks (`has(kind)`), for a marketplace whose
    orders come through `channels`."""
    kinds = [*md.needs, *(k for ch, k in md.needs_for_channel if ch in channels)]
    return [k for k in dict.fromkeys(kinds) if not has(k)]


def _units(data: Dataset, m: MetricDef, cache: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    """The metric's population (stored types, computed once per dataset), of its channel."""
    if m.population not in cache:
        cache[m.population] = populations.units(data, m.population)
    lf = cache[m.population]
    return lf.filter(pl.col("channel") == m.channel) if m.channel else lf


def _frame_marketplaces(data: Dataset) -> pl.LazyFrame:
    return data.frames["orders"].select(pl.col("marketplace_id").cast(pl.String)).unique()


def _numerator_names(m: MetricDef) -> list[str]:
    return list(dict.fromkeys([m.numerator, m.numerator_part.name, *[p.name for p in m.parts]]))


def evaluate(data: Dataset, as_of: dt.date, metrics: tuple[MetricDef, ...] = METRICS) -> pl.DataFrame:
    """Long frame of every metric on day `as_of`: one row per marketplace, metric and numerator.

    Columns: marketplace_id, metric, channel, window_from, window_to, numerator (name), count,
    denominator.
    """
    end = parsing.end_of_day_instant(as_of)
    needed = {m.population for m in metrics}
    if "late_shipments" in needed and data.has("shipments"):
        needed.add(populations.MFN_WITHOUT_SHIPMENTS)  # the note beside the LSR
    populations.prepare(data, needed)
    cache: dict[str, pl.LazyFrame] = {}
    frames = []
    for m in metrics:
        first, last = m.window(as_of)
        units = _units(data, m, cache).filter(
            pl.col("anchor_day").is_between(first, last) & (pl.col("t_in").is_null() | (pl.col("t_in") < end))
        )
        counts = [
            pl.col("weight")
            .filter(
                pl.col(f"{n}_from").is_not_null()
                & (pl.col(f"{n}_from") < end)
                & (pl.col(f"{n}_until").is_null() | (pl.col(f"{n}_until") >= end))
            )
            .sum()
            .alias(n)
            for n in _numerator_names(m)
        ]
        agg = units.group_by("marketplace_id").agg(pl.col("weight").sum().alias("denominator"), *counts)
        frames.append(
            agg.unpivot(
                index=["marketplace_id", "denominator"], variable_name="numerator", value_name="count"
            ).with_columns(
                pl.lit(m.id).alias("metric"),
                pl.lit(first).alias("window_from"),
                pl.lit(last).alias("window_to"),
            )
        )
    collected = [
        f.with_columns(pl.col("marketplace_id").cast(pl.String)) for f in pl.collect_all(frames)
    ]  # the windows of every metric, read in one go
    out = pl.concat(collected, how="diagonal_relaxed") if collected else pl.DataFrame()
    return _tidy(out)


def _tidy(df: pl.DataFrame) -> pl.DataFrame:
    if df.is_empty():
        return pl.DataFrame(
            schema={
                "marketplace_id": pl.String,
                "metric": pl.String,
                "window_from": pl.Date,
                "window_to": pl.Date,
                "numerator": pl.String,
                "count": pl.Int64,
                "denominator": pl.Int64,
            }
        )
    return df.select(
        "marketplace_id",
        "metric",
        "window_from",
        "window_to",
        "numerator",
        pl.col("count").cast(pl.Int64),
        pl.col("denominator").cast(pl.Int64),
    ).sort("marketplace_id", "metric", "numerator")


def history(
    data: Dataset, first_day: dt.date, last_day: dt.date, metrics: tuple[MetricDef, ...] = METRICS
) -> pl.DataFrame:
    """Every metric for every as-of day in [first_day, last_day], in one pass over the units.

    Each unit counts on the days A with anchor + L <= A <= anchor + L + D - 1 (its window) and
    A >= day(t_in); in a numerator also day(from) <= A < day(until). Those day ranges become +w/-w
    events that a cumulative sum per (marketplace, metric, numerator) turns into daily counts.
    """
    days = pl.date_range(first_day, last_day, "1d", eager=True).alias("as_of")
    populations.prepare(data, {m.population for m in metrics})
    order_marketplaces = _frame_marketplaces(data).collect()  # once: the orders may be 10 M rows
    cache: dict[str, pl.LazyFrame] = {}
    frames = []
    dailies: list[tuple[MetricDef, pl.LazyFrame]] = []
    for m in metrics:
        every = _units(data, m, cache)
        # only units whose window days meet the range can count (the stored units are sorted by
        # anchor day, so the others are not even read)
        units = every.filter(
            pl.col("anchor_day").is_between(
                first_day - dt.timedelta(days=m.lag_days + m.window_days - 1),
                last_day - dt.timedelta(days=m.lag_days),
            )
        )
        lo = pl.col("anchor_day") + pl.duration(days=m.lag_days)
        hi = pl.col("anchor_day") + pl.duration(days=m.lag_days + m.window_days - 1)
        t_in_day = pl.col("t_in").dt.date()
        den_lo = pl.max_horizontal(lo, t_in_day)
        spans = [
            units.select(
                "marketplace_id",
                pl.lit("denominator").alias("numerator"),
                den_lo.alias("lo"),
                hi.alias("hi"),
                "weight",
            )
        ]
        for n in _numerator_names(m):
            from_day = pl.col(f"{n}_from").dt.date()
            until_day = pl.col(f"{n}_until").dt.date() - pl.duration(days=1)
            spans.append(
                units.filter(pl.col(f"{n}_from").is_not_null()).select(
                    "marketplace_id",
                    pl.lit(n).alias("numerator"),
                    pl.max_horizontal(den_lo, from_day).alias("lo"),
                    pl.min_horizontal(hi, until_day).alias("hi"),
                    "weight",
                )
            )
        s = (
            pl.concat(spans)
            .filter(pl.col("lo") <= pl.col("hi"))
            .filter((pl.col("hi") >= first_day) & (pl.col("lo") <= last_day))
            # units with the same days add up first: a few thousand spans instead of millions
            .group_by("marketplace_id", "numerator", "lo", "hi")
            .agg(pl.col("weight").sum())
        )
        events = (
            pl.concat(
                [
                    s.select(
                        "marketplace_id",
                        "numerator",
                        pl.max_horizontal("lo", pl.lit(first_day)).alias("as_of"),
                        pl.col("weight").alias("delta"),
                    ),
                    s.select(
                        "marketplace_id",
                        "numerator",
                        (pl.col("hi") + pl.duration(days=1)).alias("as_of"),
                        (-pl.col("weight")).alias("delta"),
                    ),
                ]
            )
            .group_by("marketplace_id", "numerator", "as_of")
            .agg(pl.col("delta").sum())
        )
        # every marketplace of the orders (as `metrics` lists them), with or without units of
        # this metric: a day without any is a row with denominator 0 ("no data"), not a gap
        keys = (
            pl.concat([order_marketplaces.lazy(), every.select(pl.col("marketplace_id").cast(pl.String))])
            .unique()
            .select(pl.col("marketplace_id").cast(every.collect_schema()["marketplace_id"]))
            .join(pl.LazyFrame({"numerator": ["denominator", *_numerator_names(m)]}), how="cross")
        )
        grid = keys.join(days.to_frame().lazy(), how="cross")
        daily = (
            grid.join(events, on=["marketplace_id", "numerator", "as_of"], how="left")
            .with_columns(pl.col("delta").fill_null(0))
            .sort("marketplace_id", "numerator", "as_of")
            .with_columns(pl.col("delta").cum_sum().over("marketplace_id", "numerator").alias("value"))
        )
        # Spans that began before the range enter at first_day, so the cumulative sum is complete.
        dailies.append((m, daily))
    for m, collected in zip(
        [m for m, _ in dailies], pl.collect_all([d for _, d in dailies]), strict=True
    ):  # every metric's days computed in one go (in parallel)
        collected = collected.with_columns(pl.col("marketplace_id").cast(pl.String))
        if collected.is_empty():
            continue
        wide = collected.pivot(on="numerator", index=["marketplace_id", "as_of"], values="value")
        long = wide.unpivot(
            index=["marketplace_id", "as_of", "denominator"], variable_name="numerator", value_name="count"
        )
        frames.append(
            long.with_columns(
                pl.lit(m.id).alias("metric"),
                (pl.col("as_of") - pl.duration(days=m.lag_days + m.window_days - 1)).alias("window_from"),
                (pl.col("as_of") - pl.duration(days=m.lag_days)).alias("window_to"),
            )
        )
    if not frames:
        return (
            _tidy(pl.DataFrame())
            .with_columns(pl.lit(None, pl.Date).alias("as_of"))
            .select("as_of", pl.exclude("as_of"))
        )
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.select(
        "as_of",
        "marketplace_id",
        "metric",
        pl.col("window_from").cast(pl.Date),
        pl.col("window_to").cast(pl.Date),
        "numerator",
        pl.col("count").cast(pl.Int64),
        pl.col("denominator").cast(pl.Int64),
    ).sort("as_of", "marketplace_id", "metric", "numerator")


SCORECARD_SCHEMA = {
    "title": pl.String,
    "channel": pl.String,
    "numerator": pl.Int64,
    "denominator": pl.Int64,
    "rate": pl.Float64,
    "target": pl.Float64,
    "condition": pl.String,
    "status": pl.String,
    "volume_adjusted_status": pl.String,
    "p_value": pl.Float64,
    "rate_lower": pl.Float64,
    "rate_upper": pl.Float64,
}


@functools.lru_cache(maxsize=65536)
def _judged(num: int, den: int, target: float, condition: str, p_value: float | None) -> dict:
    """`stats.judge` of one row, with its p-value computed beforehand for many rows at once
    (`_p_values`: the same `binom.sf` per element)."""
    plain = stats.status(num, den, target, condition)
    if plain in ("NONE", "GOOD"):
        adjusted = plain
    else:
        adjusted = "BAD" if p_value is not None and p_value < stats.SIGNIFICANCE else "AT_RISK"
    return {
        "rate": num / den if den else 0.0,
        "status": plain,
        "volumeAdjustedStatus": adjusted,
        "pValue": p_value,
        "rateInterval": stats.wilson_interval(num, den),
    }


def _p_values(nums: list[int], dens: list[int], targets: list[float], conditions: list[str]) -> list:
    """`stats.p_value` of every row: one vectorised `binom.sf` (element by element the same
    function, so the same numbers)."""
    import numpy as np

    out: list[float | None] = [None] * len(nums)
    ks, ns, ps, at = [], [], [], []
    for i, (k, n, t, c) in enumerate(zip(nums, dens, targets, conditions, strict=True)):
        if n == 0:
            continue
        k, p = (k, t) if c == stats.LESS_THAN else (n - k, 1.0 - t)
        if k <= 0:
            out[i] = 1.0
            continue
        ks.append(k - 1)
        ns.append(n)
        ps.append(p)
        at.append(i)
    if at:
        for i, v in zip(at, stats.binom_sf(np.array(ks), np.array(ns), np.array(ps)), strict=True):
            out[i] = float(v)
    return out


def scorecard(counts: pl.DataFrame, metrics: tuple[MetricDef, ...] = METRICS) -> pl.DataFrame:
    """Rate and status per marketplace and metric from `evaluate` or `history` counts."""
    rows = []
    by_id = {m.id: m for m in metrics}
    key_cols = [
        c for c in ("as_of", "marketplace_id", "metric", "window_from", "window_to") if c in counts.columns
    ]
    main = pl.DataFrame(
        {"metric": [m.id for m in metrics], "__main": [m.numerator for m in metrics]},
        schema={"metric": pl.String, "__main": pl.String},
    )
    per_key = (
        counts.join(main, on="metric", how="left")
        .group_by(key_cols, maintain_order=True)
        .agg(
            pl.col("count").filter(pl.col("numerator") == pl.col("__main")).sum().alias("__num"),
            pl.col("denominator").first().alias("__den"),
        )
    )
    keyed = list(per_key.iter_rows(named=True))
    nums = [int(r["__num"] or 0) for r in keyed]
    dens = [int(r["__den"]) for r in keyed]
    defs_of = [by_id[r["metric"]] for r in keyed]
    p_values = _p_values(nums, dens, [m.target for m in defs_of], [m.condition for m in defs_of])
    for row, num, den, m, pv in zip(keyed, nums, dens, defs_of, p_values, strict=True):
        rec = {c: row[c] for c in key_cols}
        j = _judged(num, den, m.target, m.condition, pv)
        iv = j["rateInterval"] or {}
        rows.append(
            {
                **rec,
                "title": m.title,
                "channel": m.channel or "ALL",
                "numerator": num,
                "denominator": den,
                "rate": j["rate"] if den else None,
                "target": m.target,
                "condition": m.condition,
                "status": j["status"],
                "volume_adjusted_status": j["volumeAdjustedStatus"],
                "p_value": j["pValue"],
                "rate_lower": iv.get("lower"),
                "rate_upper": iv.get("upper"),
            }
        )
    if not rows:
        return pl.DataFrame(schema={**{c: counts.schema[c] for c in key_cols}, **SCORECARD_SCHEMA})
    return pl.DataFrame(rows, schema_overrides=SCORECARD_SCHEMA).sort(
        [c for c in ("as_of", "marketplace_id", "metric") if c in key_cols]
    )
