"""Which orders, SKUs, carriers and causes: one row per defect, and breakdowns with shrunk rates.

A defect is a negative feedback, an A-to-z claim, a chargeback or a return, dated on or before
the as-of day. Each row says whether it counts toward the Order Defect Rate and, if not, why.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from analysis import safety
from analysis.errors import UsageError
from analysis.inputs import parsing
from analysis.inputs.sources import CHANNEL, Dataset, as_text
from analysis.insights import causes
from analysis.metrics import definitions as m
from analysis.metrics import stats
from analysis.metrics.populations import _run_aggregate

_TS = pl.Datetime("us", "UTC")
DIMENSIONS = ("cause", "sku", "asin", "carrier", "channel", "marketplace_id", "week")
DEFECT_SCHEMA = {
    "order_id": pl.String,
    "defect_kind": pl.String,
    "defect_date": pl.Date,
    "detail": pl.String,
    "cause_text": pl.String,
    "cause_source": pl.String,
    "return_sku": pl.String,
}


def order_facts(data: Dataset) -> pl.DataFrame:
    """Per order: marketplace, channel(s), purchase day, status, SKUs, ASINs, carrier, service level.
    Computed once per dataset and kept in the on-disk cache with the rows it came from: the
    defect table, the spike series and the action list all start from it."""
    return data.derived("order_facts.2", lambda: _order_facts(data)).collect()


_FACT_COLUMNS = ("order_id", "marketplace_id", "channel", "purchase_ts", "order_status", "sku", "asin")
_AMAZON_ORDER_ID = r"^[0-9]{3}-[0-9]{7}-[0-9]{7}$"  # its digits, as a number, sort as its text
_CHANNELS = pl.Series("channel", ["", "AFN", "MFN", "AFN+MFN"])  # by bits: 1 an AFN item, 2 an MFN one


def _order_facts(data: Dataset) -> pl.DataFrame:
    """One row per order id, sorted by it. An export lists an order's items on adjacent rows:
    each run of them is aggregated with numpy, in the stored types, and only the kept values
    turned into text; when the rows are not like that, polars groups them (the same table)."""
    o = data.frames["orders"].select(*_FACT_COLUMNS, "item_price", "ship_service_level").collect().rechunk()
    runs = _order_runs(o)
    if runs is None:
        return _grouped_order_facts(data, as_text(o.lazy()).collect())
    starts, perm, key = runs
    size = np.diff(np.append(starts, o.height))
    run = np.repeat(np.arange(len(starts)), size)
    # the sorted distinct channels joined by "+": AFN and MFN are the only ones, one bit each
    bits = np.array([1, 2, 0], dtype=np.uint8)[o["channel"].to_physical().fill_null(2).to_numpy()]
    channel = np.bitwise_or.reduceat(bits, starts)[perm]
    # the item of the highest price (the first of a tie; the first item when no price is known)
    price = o["item_price"].fill_null(-np.inf).to_numpy()
    top = np.flatnonzero(price == np.maximum.reduceat(price, starts)[run])
    top = top[np.r_[True, run[top][1:] != run[top][:-1]]][perm]
    first, at_top = pl.Series(starts[perm]), pl.Series(top)
    sku = _text(o["sku"].gather(at_top))
    skus = sku.fill_null("")
    several = size[perm] > 1
    if several.any():
        place = np.empty(len(perm), dtype=np.int64)
        place[perm] = np.cumsum(several) - 1  # a run's number among the sorted runs of several rows
        rows = np.repeat(size > 1, size)
        skus = skus.scatter(
            np.flatnonzero(several),
            _joined_skus(o["sku"].filter(pl.Series(rows)), place[run[rows]], int(several.sum())),
        )
    facts = pl.DataFrame(
        [
            o["order_id"].gather(first),
            _text(o["marketplace_id"].gather(first)),
            _CHANNELS.gather(pl.Series(channel)),
            _run_aggregate(o["purchase_ts"], "min", starts, pl.Series(starts))
            .gather(pl.Series(perm))
            .alias("purchase_ts"),
            _text(o["order_status"].gather(first)),
            sku,
            skus.alias("skus"),
            _text(o["asin"].gather(at_top)),
            _text(o["ship_service_level"].gather(first)),
            key.alias("_key"),
        ]
    )
    ship = (
        data.frames["shipments"]
        .select(
            _order_number() if key.dtype == pl.Int64 else pl.col("order_id").alias("_key"),
            "carrier",
            "ship_ts",
        )
        .sort("ship_ts", nulls_last=True)
        .group_by("_key")
        .agg(pl.col("carrier").drop_nulls().first(), pl.col("ship_ts").min().alias("first_ship"))
        .collect()
    )
    return (
        facts.join(ship, on="_key", how="left", maintain_order="left")
        .drop("_key")
        .with_columns(
            pl.col("purchase_ts").dt.date().alias("purchase_day"),
            pl.when(pl.col("channel") == "AFN")
            .then(pl.lit("Amazon (FBA)"))
            .otherwise(pl.col("carrier").cast(pl.String).fill_null("unknown"))
            .alias("carrier"),
        )
    )


def _text(s: pl.Series) -> pl.Series:
    return s.cast(pl.String) if isinstance(s.dtype, pl.Categorical | pl.Enum) else s


def _order_number() -> pl.Expr:
    """An Amazon order id (ddd-ddddddd-ddddddd) as the number of its digits; null for any other."""
    return (
        pl.when(pl.col("order_id").str.contains(_AMAZON_ORDER_ID))
        .then(pl.col("order_id").str.replace_all("-", "", literal=True).cast(pl.Int64, strict=False))
        .alias("_key")
    )


def _order_runs(o: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, pl.Series] | None:
    """The first row of each run of adjacent rows of one order id, the order of the runs that
    sorts them by id, and their sort keys in that order (the ids, or their numbers when all are
    Amazon's). None when the run-by-run facts do not apply: an id on runs apart (or null), a
    price that is not a finite number, a channel other than AFN and MFN, SKUs as text."""
    if (
        o.height == 0
        or o.schema["channel"] != CHANNEL
        or not isinstance(o.schema["sku"], pl.Categorical)
        or o.schema["item_price"] != pl.Float64
        or o["order_id"].null_count()
        or not o["item_price"].is_finite().all()
    ):
        return None
    oid = o["order_id"]
    starts = np.flatnonzero(oid.ne_missing(oid.shift(1)).to_numpy())
    ids = oid.gather(pl.Series(starts))
    number = ids.to_frame().select(_order_number()).to_series()
    if number.null_count():
        perm = ids.arg_sort().to_numpy()
        key = ids.gather(pl.Series(perm))
    else:
        perm = np.argsort(number.to_numpy())
        key = number.gather(pl.Series(perm))
    if (key.slice(1) == key.slice(0, len(key) - 1)).any():
        return None
    return starts, perm, key


def _joined_skus(sku: pl.Series, run: np.ndarray, runs: int) -> pl.Series:
    """Per run 0..runs-1 (`run`: each row's), its distinct SKUs sorted and joined by ", ", as
    `unique().sort().str.join(", ")` gives them (nulls left out; "" when there is none)."""
    import pyarrow as pa  # only here: a list column from offsets (importing it costs a start)

    code = sku.to_physical()
    known = code.is_not_null().to_numpy()
    code, run, sku = code.drop_nulls().to_numpy(), run[known], sku.filter(pl.Series(known))
    distinct, at, which = np.unique(code, return_index=True, return_inverse=True)
    text = sku.gather(pl.Series(at)).cast(pl.String)
    order = text.arg_sort().to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    k = max(len(distinct), 1)
    if runs * k <= 4 * len(code) + (1 << 20):  # a table of run x SKU is small enough
        seen = np.zeros((runs, k), dtype=bool)
        seen[run, rank[which]] = True
        in_run, ranked = np.nonzero(seen)
    else:
        pair = np.unique(run.astype(np.int64) * k + rank[which])
        in_run, ranked = pair // k, pair % k
    offsets = np.zeros(runs + 1, dtype=np.int64)
    np.cumsum(np.bincount(in_run, minlength=runs), out=offsets[1:])
    values = text.gather(pl.Series(order[ranked]))
    return pl.Series(pa.LargeListArray.from_arrays(pa.array(offsets), values.to_arrow())).list.join(", ")


def _grouped_order_facts(data: Dataset, o: pl.DataFrame) -> pl.DataFrame:
    """`_order_facts` by polars' group-by, from the rows as text."""
    ship = (
        data.frame("shipments")
        .sort("ship_ts", nulls_last=True)
        .group_by("order_id")
        .agg(pl.col("carrier").drop_nulls().first(), pl.col("ship_ts").min().alias("first_ship"))
        .collect()
    )
    # most orders hold one item: their row is their facts; only orders of several rows are
    # grouped (the string aggregations cost most of the time when every order is grouped)
    several = o["order_id"].is_duplicated()
    one = o.filter(~several).select(
        "order_id",
        "marketplace_id",
        pl.col("channel").fill_null(""),
        "purchase_ts",
        "order_status",
        "sku",
        pl.col("sku").fill_null("").alias("skus"),
        "asin",
        "ship_service_level",
    )
    grouped = (
        o.filter(several)
        .group_by("order_id")
        .agg(
            pl.col("marketplace_id").first(),
            pl.col("channel").unique().sort().str.join("+").alias("channel"),
            pl.col("purchase_ts").min(),
            pl.col("order_status").first(),
            pl.col("sku").sort_by("item_price", descending=True, nulls_last=True).first().alias("sku"),
            pl.col("sku").unique().sort().str.join(", ").alias("skus"),
            pl.col("asin").sort_by("item_price", descending=True, nulls_last=True).first().alias("asin"),
            pl.col("ship_service_level").first(),
        )
        .select(one.columns)
    )
    return (
        pl.concat([one, grouped])
        .join(ship, on="order_id", how="left")
        .with_columns(
            pl.col("purchase_ts").dt.date().alias("purchase_day"),
            pl.when(pl.col("channel") == "AFN")
            .then(pl.lit("Amazon (FBA)"))
            .otherwise(pl.col("carrier").fill_null("unknown"))
            .alias("carrier"),
        )
        .sort("order_id")
    )


def _events(data: Dataset, as_of: dt.date) -> pl.DataFrame:
    end = parsing.end_of_day_instant(as_of)
    fb = (
        data.frame("feedback")
        .filter((pl.col("rating") <= 2) & (pl.col("feedback_ts") < end))
        .select(
            "order_id",
            pl.lit("negative_feedback").alias("defect_kind"),
            pl.col("feedback_ts").dt.date().alias("defect_date"),
            pl.when(pl.col("removed")).then(pl.lit("removed")).otherwise(pl.lit("")).alias("detail"),
            pl.col("comments").alias("cause_text"),
            pl.lit("comment").alias("cause_source"),
            pl.lit(None, pl.String).alias("return_sku"),
            pl.col("rating"),
        )
    )
    cl = (
        data.frame("claims")
        .filter(pl.col("claim_ts") < end)
        .select(
            "order_id",
            pl.lit("claim").alias("defect_kind"),
            pl.col("claim_ts").dt.date().alias("defect_date"),
            pl.col("claim_status").alias("detail"),
            pl.col("claim_reason").alias("cause_text"),
            pl.lit("claim reason").alias("cause_source"),
            pl.lit(None, pl.String).alias("return_sku"),
            pl.lit(None, pl.Int64).alias("rating"),
        )
    )
    cb = (
        data.frame("chargebacks")
        .filter(pl.col("chargeback_ts") < end)
        .select(
            "order_id",
            pl.lit("chargeback").alias("defect_kind"),
            pl.col("chargeback_ts").dt.date().alias("defect_date"),
            (pl.col("category") + pl.lit(" ") + pl.col("status")).alias("detail"),
            pl.col("reason").alias("cause_text"),
            pl.lit("chargeback reason").alias("cause_source"),
            pl.lit(None, pl.String).alias("return_sku"),
            pl.lit(None, pl.Int64).alias("rating"),
        )
    )
    ret = pl.concat(
        [
            data.frame("fba_returns").select("order_id", "return_ts", "reason", "sku"),
            data.frame("mfn_returns").select("order_id", "return_ts", "reason", "sku"),
        ]
    )
    rt = ret.filter(pl.col("return_ts") < end).select(
        "order_id",
        pl.lit("return").alias("defect_kind"),
        pl.col("return_ts").dt.date().alias("defect_date"),
        pl.col("reason").alias("detail"),
        pl.col("reason").alias("cause_text"),
        pl.lit("return reason").alias("cause_source"),
        pl.col("sku").alias("return_sku"),
        pl.lit(None, pl.Int64).alias("rating"),
    )
    # buyer text leaves the company in the defect rows (CSV, JSON, report): masked here, once
    return (
        pl.concat([fb, cl, cb, rt])
        .with_columns(safety.mask_expr(pl.col("cause_text")).alias("cause_text"))
        .collect()
    )


def _cause(kind: str, text: str | None) -> tuple[str, str]:
    if kind == "negative_feedback":
        c = causes.classify(text)
        return c.cause, ", ".join(c.words)
    if kind == "claim":
        return causes.claim_cause(text), text or ""
    if kind == "return":
        return causes.return_cause(text), text or ""
    c = causes.classify(text)
    if c.cause == "other" and text and "not received" in text.lower():
        return "not_received", text
    return c.cause, ", ".join(c.words) or (text or "")


TOO_RECENT = "order too recent: not yet in the ODR window"
LEFT_WINDOW = "order already left the ODR window"


def defect_table(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...] = m.METRICS) -> pl.DataFrame:
    """One row per defect known on `as_of`, with its order's facts, cause and ODR standing
    (computed once per dataset, day and metric settings: reports ask for it several times)."""
    key = ("defect_table", as_of, defs)
    if key not in data.cache:
        data.cache[key] = _defect_table(data, as_of, defs)
    return data.cache[key]


def _defect_table(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> pl.DataFrame:
    ev = _events(data, as_of)
    facts = order_facts(data)
    odr = {d.channel: d for d in defs if d.population == "order_defects"}
    pairs = list(zip(ev["defect_kind"].to_list(), ev["cause_text"].to_list(), strict=True))
    known = {pair: _cause(*pair) for pair in dict.fromkeys(pairs)}  # once per distinct text
    labelled = [known[pair] for pair in pairs]
    ev = ev.with_columns(
        pl.Series("cause", [c for c, _ in labelled], dtype=pl.String),
        pl.Series("cause_words", [w for _, w in labelled], dtype=pl.String),
    )
    t = ev.join(facts, on="order_id", how="left")
    d_afn, d_mfn = odr["AFN"], odr["MFN"]
    lag_window = {
        "AFN": (d_afn.lag_days, d_afn.window_days),
        "MFN": (d_mfn.lag_days, d_mfn.window_days),
    }
    ch = pl.col("channel").fill_null("")
    lag = pl.when(ch.str.contains("MFN")).then(lag_window["MFN"][0]).otherwise(lag_window["AFN"][0])
    win = pl.when(ch.str.contains("MFN")).then(lag_window["MFN"][1]).otherwise(lag_window["AFN"][1])
    leaves = pl.col("purchase_day") + pl.duration(days=lag + win)
    enters = pl.col("purchase_day") + pl.duration(days=lag)
    status = pl.col("detail").fill_null("")
    why_not = (
        pl.when(pl.col("purchase_day").is_null())
        .then(pl.lit("order not in any orders file"))
        .when(pl.col("order_status") == "cancelled")
        .then(pl.lit("order cancelled"))
        .when(pl.col("defect_kind") == "return")
        .then(pl.lit("returns are not ODR defects"))
        .when((pl.col("defect_kind") == "negative_feedback") & (status == "removed"))
        .then(pl.lit("feedback removed by Amazon"))
        .when((pl.col("defect_kind") == "claim") & status.is_in(["denied", "withdrawn", "amazon-funded"]))
        .then(pl.lit("claim ") + status)
        .when((pl.col("defect_kind") == "chargeback") & status.str.starts_with("fraud"))
        .then(pl.lit("fraud chargeback"))
        .when((pl.col("defect_kind") == "chargeback") & status.str.contains("seller-won|amazon-funded"))
        .then(pl.lit("chargeback ") + status.str.replace("service ", ""))
        .when(pl.lit(as_of) < enters)
        .then(pl.lit(TOO_RECENT))
        .when(pl.lit(as_of) >= leaves)
        .then(pl.lit(LEFT_WINDOW))
        .otherwise(pl.lit(None, pl.String))
    )
    return (
        t.with_columns(
            why_not.alias("why_not_counted"),
            leaves.alias("leaves_window"),
            pl.coalesce("return_sku", "sku").alias("sku"),
            pl.col("purchase_day").dt.truncate("1w").alias("week"),
        )
        .with_columns(pl.col("why_not_counted").is_null().alias("counts_toward_odr"))
        .select(
            "order_id",
            "defect_kind",
            "defect_date",
            "purchase_day",
            "marketplace_id",
            "channel",
            "sku",
            "skus",
            "asin",
            "carrier",
            "ship_service_level",
            "cause",
            "cause_words",
            "cause_source",
            "cause_text",
            "rating",
            "detail",
            "counts_toward_odr",
            "why_not_counted",
            "leaves_window",
            "week",
        )
        .sort("defect_date", "order_id", "defect_kind")
    )


# ----------------------------------------------------------------------------- breakdowns


def shrink(df: pl.DataFrame, target: float = 0.01) -> pl.DataFrame:
    """Add `shrunk_rate` (posterior mean) and `p_above_target` to a frame of defects/orders."""
    a, b = stats.fit_beta_prior(df["defects"].to_list(), df["orders"].to_list())
    d, n = df["defects"].to_list(), df["orders"].to_list()
    return df.with_columns(
        pl.Series(
            "shrunk_rate", [(x + a) / (y + a + b) for x, y in zip(d, n, strict=True)], dtype=pl.Float64
        ),
        pl.Series(
            "p_above_target",
            [stats.beta_above(target, a + x, b + max(y - x, 0)) for x, y in zip(d, n, strict=True)],
            dtype=pl.Float64,
        ),
        pl.lit(a).alias("prior_alpha"),
        pl.lit(b).alias("prior_beta"),
    )


def orders_in(data: Dataset, first: dt.date, last: dt.date) -> pl.DataFrame:
    """Orders (not cancelled) purchased in [first, last], one row per order and SKU."""
    facts = order_facts(data).filter(
        (pl.col("order_status") != "cancelled") & pl.col("purchase_day").is_between(first, last)
    )
    items = (
        data.frame("orders")
        .select("order_id", pl.col("sku").alias("item_sku"), pl.col("asin").alias("item_asin"))
        .unique()
        .collect()
    )
    return facts.join(items, on="order_id", how="left").with_columns(
        pl.col("purchase_day").dt.truncate("1w").alias("week")
    )


def in_period(
    t: pl.DataFrame,
    orders: pl.DataFrame,
    first: dt.date,
    last: dt.date,
    marketplace: str | None = None,
    channel: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The defects and orders a breakdown counts: an ODR defect of an order bought in [first, last],
    whether or not that order is in the ODR window of the as-of day (in the default period, exactly
    the defects that count toward the ODR), and `orders` (bought in the period), both of the
    marketplace and channel when given."""
    window_only = pl.col("why_not_counted").is_in([TOO_RECENT, LEFT_WINDOW])
    t = t.filter((pl.col("counts_toward_odr") | window_only) & pl.col("purchase_day").is_between(first, last))
    if marketplace:
        t = t.filter(pl.col("marketplace_id") == marketplace)
        orders = orders.filter(pl.col("marketplace_id") == marketplace)
    if channel:
        t = t.filter(pl.col("channel").str.contains(channel))
        orders = orders.filter(pl.col("channel").str.contains(channel))
    return t, orders


def breakdown(
    data: Dataset,
    as_of: dt.date,
    by: str,
    defs: tuple[m.MetricDef, ...],
    *,
    first: dt.date | None = None,
    last: dt.date | None = None,
    defects: pl.DataFrame | None = None,
    marketplace: str | None = None,
    channel: str | None = None,
) -> pl.DataFrame:
    """Defective orders (ODR defects) by a dimension, over the orders behind them, with shrunk rates.

    The default period is the ODR window of `as_of` (of `channel`, else the FBA definition), and
    `p_above_target` is against that ODR's target; a SKU's rate is over the orders that hold the
    SKU, a carrier's over the orders it carried, a cause's over all orders.
    """
    if by not in DIMENSIONS:
        raise UsageError(f"cannot break down by {by}; use one of {', '.join(DIMENSIONS)}")
    odr = odr_def(defs, channel or "AFN")
    if first is None or last is None:
        first, last = odr.window(as_of)
    t = defects if defects is not None else defect_table(data, as_of, defs)
    t, orders = in_period(t, orders_in(data, first, last), first, last, marketplace, channel)
    if by == "cause":
        n_orders = orders["order_id"].n_unique()
        per = t.group_by("cause").agg(pl.col("order_id").n_unique().alias("defects"))
        per = per.with_columns(pl.lit(n_orders).alias("orders"))
        key = "cause"
    elif by in ("sku", "asin"):
        col = "item_sku" if by == "sku" else "item_asin"
        den = orders.group_by(col).agg(pl.col("order_id").n_unique().alias("orders")).rename({col: by})
        items = orders.select("order_id", pl.col(col).alias(by)).unique()
        num = (
            t.select("order_id")
            .unique()
            .join(items, on="order_id")
            .group_by(by)
            .agg(pl.len().alias("defects"))
        )
        per = den.join(num, on=by, how="left").with_columns(pl.col("defects").fill_null(0))
        key = by
    else:
        den = orders.group_by(by).agg(pl.col("order_id").n_unique().alias("orders"))
        num = t.group_by(by).agg(pl.col("order_id").n_unique().alias("defects"))
        per = den.join(num, on=by, how="left").with_columns(pl.col("defects").fill_null(0))
        key = by
    # a fixed row order: the prior's fit sums floats, and group_by's order varies between runs
    per = (
        per.sort(key)
        .filter(pl.col("orders") > 0)
        .with_columns(pl.col("defects").cast(pl.Int64), pl.col("orders").cast(pl.Int64))
    )
    per = per.with_columns((pl.col("defects") / pl.col("orders")).alias("rate"))
    if per.is_empty():
        return per.with_columns(
            pl.lit(None, pl.Float64).alias("shrunk_rate"), pl.lit(None, pl.Float64).alias("p_above_target")
        )
    out = per if by == "cause" else shrink(per, odr.target)
    sort_by = "defects" if by == "cause" else "shrunk_rate"
    return (
        out.rename({key: "value"})
        .with_columns(pl.lit(by).alias("dimension"))
        .sort([sort_by, "value"], descending=[True, False])
    )


def orders_needed(defects: int, orders: int, target: float = 0.01) -> int:
    """Defect-free orders still needed in the window for `defects / orders < target`."""
    if defects == 0:
        return 0
    needed = math.floor(defects / target) + 1  # strictly more than defects / target
    return max(0, needed - orders)


def odr_def(defs: tuple[m.MetricDef, ...], channel: str) -> m.MetricDef:
    """The run's ODR definition of a channel ("AFN"/"MFN"; "AFN, MFN" counts as FBA)."""
    ch = "MFN" if channel == "MFN" else "AFN"
    return next(d for d in defs if d.population == "order_defects" and d.channel == ch)


def defective_orders(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> pl.DataFrame:
    """The orders counted as defective in the ODR window on `as_of`, one row per order and
    channel, with what the buyer said (for the report's drill-down)."""
    t = defect_table(data, as_of, defs).filter(pl.col("counts_toward_odr"))
    return (
        t.sort("defect_date")
        .group_by("marketplace_id", "channel", "order_id")
        .agg(
            pl.col("purchase_day").first(),
            pl.col("skus").first(),
            (pl.col("defect_kind") == "negative_feedback").any().alias("negative_feedback"),
            (pl.col("defect_kind") == "claim").any().alias("claim"),
            (pl.col("defect_kind") == "chargeback").any().alias("chargeback"),
            pl.col("defect_date").min().alias("first_defect_day"),
            pl.col("leaves_window").first(),
            pl.col("rating").drop_nulls().first(),
            pl.col("cause_text")
            .filter(pl.col("defect_kind") == "negative_feedback")
            .first()
            .alias("comment"),
            pl.col("cause_text").filter(pl.col("defect_kind") == "claim").first().alias("claim_reason"),
            pl.col("detail").filter(pl.col("defect_kind") == "claim").first().alias("claim_status"),
            pl.col("cause").first(),
        )
        .sort("marketplace_id", "channel", "purchase_day", "order_id")
    )
