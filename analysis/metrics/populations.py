"""The units each metric counts (orders, packages, messages...), one row per unit, with times.

Every population is a LazyFrame with the same core columns, so one engine evaluates them all:

- `marketplace_id`, `channel` (`AFN`, `MFN` or `ALL`), `anchor_day`: the day that puts the unit
  in a window (purchase day, ship-by day, ship day, day received);
- `weight`: what the unit counts for (1, or units for the unit on-time delivery rate);
- `t_in`: when the unit enters the denominator (null: as soon as it is in the window), for units
  that are "not yet decided" for a while;
- for each numerator `x`: `x_from` and `x_until`, the interval during which the unit counts in
  the numerator (`x_from` null: never; `x_until` null: from then on for good).

A unit counts in the metric on as-of day A when `anchor_day` is in A's window and `t_in` is
before the end of A; it counts in the numerator when also `x_from < end of A <= x_until`.

An order is an order id in a marketplace: the same id in the orders of two marketplaces is two
orders, each counted in its own marketplace. Feedback and buyer messages carry the marketplace of
their order and join on (order id, marketplace); claims, chargebacks, shipments, cancellations,
returns and invoices name only the order id and join to every marketplace's order of that id (they
cannot say which one they belong to, and a defect must not be lost).

`units(data, name)` is a population in its stored types (enums for marketplaces and channels),
computed once per dataset and kept with the dataset's on-disk cache, sorted by `anchor_day` so a
window reads only its days; the public functions (`order_defects`, ...) give the same rows with
text columns. The ODR units (one per order) keep the order id, purchase time and their own
columns, not the order's other details (status, SKU, ...). The populations whose units no report
lists one by one (`LEAN`: late shipments, cancellations, tracking, deliveries, refunds) are kept
with the columns the metrics read alone; their public functions build the full rows when called.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from analysis.inputs import parsing
from analysis.inputs.sources import CHANNEL, MARKETPLACE, Dataset, as_text, frames_key

# the derived tables kept on disk are named after this file's content: a change rebuilds them
_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]

ALWAYS = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TS = pl.Datetime("us", "UTC")
HOURS_24 = pl.duration(hours=24)


def _never() -> pl.Expr:
    return pl.lit(None, _TS)


def _always() -> pl.Expr:
    return parsing.instant(ALWAYS)


def _frame(data: Dataset, kind: str) -> pl.LazyFrame:
    """A kind's rows in their stored types (a what-if copy may hold a frame as text)."""
    lf = data.frames[kind]
    schema = lf.collect_schema()
    fix = [
        pl.col(c).cast(t)
        for c, t in (("marketplace_id", MARKETPLACE), ("channel", CHANNEL))
        if c in schema and schema[c] != t
    ]
    return lf.with_columns(fix) if fix else lf


def _once(data: Dataset, name: str, build) -> pl.LazyFrame:
    """An intermediate table computed once per dataset (in memory: only populations are stored)."""
    key = ("populations", name, frames_key(data))
    if key not in data.cache:
        data.cache[key] = build().collect().lazy()
    return data.cache[key]


def _key_codes(s: pl.Series, seed: int) -> np.ndarray:
    """A 64-bit code per value (enums and categoricals by their codes, other values by hash)."""
    if isinstance(s.dtype, pl.Categorical | pl.Enum):
        return s.to_physical().cast(pl.UInt64).fill_null(2**63).to_numpy()
    return s.hash(seed=seed).fill_null(2**63 + 1).to_numpy()


_AGG = {
    "first": lambda c: pl.col(c).first(),
    "min": lambda c: pl.col(c).min(),
    "max": lambda c: pl.col(c).max(),
    "sum": lambda c: pl.col(c).sum(),
    "any": lambda c: pl.col(c).any(),
}


def _run_aggregate(s: pl.Series, op: str, starts: np.ndarray, idx: pl.Series) -> pl.Series:
    """`op` of `s` over each run of rows starting at `starts` (the runs cover every row)."""
    if op == "first":
        return s.gather(idx)
    phys = s.to_physical()
    if op == "any" and s.dtype == pl.Boolean:
        return pl.Series(
            np.maximum.reduceat(s.fill_null(False).to_numpy().view(np.uint8), starts).astype(bool)
        )
    if op == "sum" and s.dtype == pl.Int64:
        return pl.Series(np.add.reduceat(s.fill_null(0).to_numpy(), starts))
    if op in ("min", "max") and phys.dtype in (pl.Int64, pl.Int32):
        big = np.iinfo(np.int64)
        filled = phys.cast(pl.Int64).fill_null(big.max if op == "min" else big.min).to_numpy()
        values = (np.minimum if op == "min" else np.maximum).reduceat(filled, starts)
        out = pl.Series(values).cast(phys.dtype, strict=False)
        if phys.null_count():
            some = np.add.reduceat(phys.is_not_null().to_numpy().view(np.uint8).astype(np.int64), starts) > 0
            out = pl.select(pl.when(pl.Series(some)).then(out)).to_series()
        return out.cast(s.dtype)
    # any other type (a what-if copy's): polars over the run numbers, in order
    run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(s))))
    frame = pl.DataFrame({"__run": pl.Series(run).set_sorted(), "v": s})
    return frame.group_by("__run", maintain_order=True).agg(_AGG[op]("v"))["v"]


def _grouped(df: pl.DataFrame, keys: list[str], aggs: list[tuple[str, str, str]]) -> pl.DataFrame:
    """`df.group_by(keys).agg(...)` of `aggs` (name, "first" | "min" | "max" | "sum" | "any",
    column), in first-row order, fast when the rows of each key are adjacent (an export lists an
    order's items together): a run of rows with the same key is a group, aggregated run by run
    (no hashing of the keys). A key found in more than one run (by a 64-bit hash of its runs'
    first rows: a collision only sends more rows there) is grouped by the hash group-by."""
    exprs = [_AGG[op](col).alias(name) for name, op, col in aggs]
    if df.height < 2:
        return df.group_by(keys, maintain_order=True).agg(exprs)
    head = (
        df.select(pl.any_horizontal([pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys]).alias("h"))
        .to_series()
        .to_numpy()
        .copy()
    )
    head[0] = True
    starts = np.flatnonzero(head)
    code = np.zeros(len(starts), dtype=np.uint64)
    for i, k in enumerate(keys):
        code = code * np.uint64(0x9E3779B97F4A7C15) + _key_codes(df[k], 11 + i)[starts]
    ordered = np.sort(code)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    bad = None
    if len(repeated):
        in_bad = pl.Series(np.isin(code, repeated)).gather(pl.Series(np.cumsum(head) - 1))
        bad, df = df.filter(in_bad), df.filter(~in_bad)
        head = head[~in_bad.to_numpy()]
        starts = np.flatnonzero(head)
    if df.height:
        idx = pl.Series(starts)
        out = pl.DataFrame(
            [df[k].gather(idx) for k in keys]
            + [_run_aggregate(df[col], op, starts, idx).alias(name) for name, op, col in aggs]
        )
    else:
        out = df.group_by(keys).agg(exprs)
    if bad is not None:
        out = pl.concat([out, bad.group_by(keys, maintain_order=True).agg(exprs)])
    return out


_ORDER_COLUMNS = (
    "order_id",
    "marketplace_id",
    "channel",
    "purchase_ts",
    "last_updated_ts",
    "order_status",
    "is_business_order",
    "quantity",
    "sku",
    "asin",
    "ship_service_level",
)


def _order_tables(data: Dataset) -> None:
    """`_order_channels` and `_orders`, both from one read of the order items."""
    items = _frame(data, "orders").select(_ORDER_COLUMNS).collect()
    channels = _grouped(
        items,
        ["order_id", "marketplace_id", "channel"],
        [
            ("purchase_ts", "min", "purchase_ts"),
            ("last_updated_ts", "max", "last_updated_ts"),
            ("order_status", "first", "order_status"),
            ("is_business_order", "any", "is_business_order"),
            ("units", "sum", "quantity"),
            ("sku", "first", "sku"),
            ("asin", "first", "asin"),
            ("ship_service_level", "first", "ship_service_level"),
        ],
    )
    items = items.select(
        "order_id",
        "marketplace_id",
        "purchase_ts",
        "order_status",
        "is_business_order",
        (pl.col("channel") == "MFN").alias("has_mfn"),
    )
    orders = _grouped(
        items,
        ["order_id", "marketplace_id"],
        [
            ("purchase_ts", "min", "purchase_ts"),
            ("order_status", "first", "order_status"),
            ("is_business_order", "any", "is_business_order"),
            ("has_mfn", "any", "has_mfn"),
        ],
    )
    del items
    key = frames_key(data)
    data.cache[("populations", "order_channels", key)] = channels.lazy()
    data.cache[("populations", "orders", key)] = orders.lazy()


def _order_channels(data: Dataset) -> pl.LazyFrame:
    """One row per order (order id in a marketplace) and channel: an order with items in both
    channels is in both."""
    key = ("populations", "order_channels", frames_key(data))
    if key not in data.cache:
        _order_tables(data)
    return data.cache[key]


def _orders(data: Dataset) -> pl.LazyFrame:
    """One row per order (order id in a marketplace) whatever its channels."""
    key = ("populations", "orders", frames_key(data))
    if key not in data.cache:
        _order_tables(data)
    return data.cache[key]


# order details the ODR and refund units do not keep (every order is one of them: stored lean)
_ORDER_DETAIL = (
    "last_updated_ts",
    "order_status",
    "is_business_order",
    "units",
    "sku",
    "asin",
    "ship_service_level",
)


def _left_join(left: pl.LazyFrame, right: pl.LazyFrame, on: str | list[str]) -> pl.LazyFrame:
    """`left.join(right, on=on, how="left")` for a `right` with one row per key (a few defects,
    returns...), in `left`'s row order (the populations are stored by anchor day, as the orders
    are already): only the matching rows are looked up, nothing over every order is gathered."""
    on = [on] if isinstance(on, str) else on
    lf, rt = left.collect(), right.collect()
    hits = lf.select(on).with_row_index("__r").join(rt, on=on, how="inner")
    if hits["__r"].is_duplicated().any():  # not one row per key: as the join gives it
        return lf.lazy().join(rt.lazy(), on=on, how="left")
    return lf.with_columns(
        pl.repeat(None, lf.height, dtype=rt.schema[c], eager=True).alias(c).scatter(hits["__r"], hits[c])
        for c in rt.columns
        if c not in on
    ).lazy()


def _first(frame: pl.LazyFrame, ts: str, cond: pl.Expr, name: str, keys=("order_id",)) -> pl.LazyFrame:
    return frame.filter(cond).group_by(*keys).agg(pl.col(ts).min().alias(name))


def _order_defects(data: Dataset) -> pl.LazyFrame:
    """ODR: first date of each kind of defect per order (feedback 1-2 stars not removed; claims not
    denied, withdrawn or Amazon-funded; service chargebacks not won or Amazon-funded)."""
    fb = _first(
        _frame(data, "feedback"),
        "feedback_ts",
        (pl.col("rating") <= 2) & ~pl.col("removed"),
        "negative_feedback_from",
        ("order_id", "marketplace_id"),
    )
    claims = _first(
        _frame(data, "claims"),
        "claim_ts",
        ~pl.col("claim_status").is_in(["denied", "withdrawn", "amazon-funded"]),
        "claims_from",
    )
    cb = _first(
        _frame(data, "chargebacks"),
        "chargeback_ts",
        (pl.col("category") == "service") & ~pl.col("status").is_in(["seller-won", "amazon-funded"]),
        "chargebacks_from",
    )
    # claims and chargebacks (a few rows, one per order id) joined first: one join less over
    # every order
    claims_cb = claims.join(cb, on="order_id", how="full", coalesce=True)
    orders = _order_channels(data).filter(pl.col("order_status") != "cancelled").drop(_ORDER_DETAIL)
    return _left_join(
        _left_join(orders, fb, ["order_id", "marketplace_id"]), claims_cb, "order_id"
    ).with_columns(
        pl.col("purchase_ts").dt.date().alias("anchor_day"),
        pl.lit(1).alias("weight"),
        pl.lit(None, _TS).alias("t_in"),
        pl.min_horizontal("negative_feedback_from", "claims_from", "chargebacks_from").alias("defects_from"),
        *[_never().alias(f"{x}_until") for x in ("defects", "negative_feedback", "claims", "chargebacks")],
    )


def _mfn_shipments(data: Dataset) -> pl.LazyFrame:
    """Shipments rows joined to the MFN orders of their order id (in every marketplace)."""

    def build() -> pl.LazyFrame:
        mfn = (
            _order_channels(data)
            .filter(pl.col("channel") == "MFN")
            .select("order_id", "marketplace_id", "channel", "order_status", "units")
        )
        return _frame(data, "shipments").join(mfn, on="order_id", how="inner")

    return _once(data, "mfn_shipments", build)


def _late_shipments(data: Dataset) -> pl.LazyFrame:
    """LSR: MFN orders (not cancelled) by their earliest ship-by day; late from the moment a
    package is confirmed after its ship-by time, or from the ship-by time while none is confirmed."""
    s = (
        _mfn_shipments(data)
        .filter(pl.col("order_status") != "cancelled")
        .select(
            "order_id",
            "marketplace_id",
            "channel",
            "carrier",
            "latest_ship_ts",
            "ship_ts",
            pl.when(pl.col("ship_ts") > pl.col("latest_ship_ts")).then(pl.col("ship_ts")).alias("__late"),
        )
        .collect()
    )
    per_order = _grouped(
        s,
        ["order_id", "marketplace_id"],
        [
            ("channel", "first", "channel"),
            ("carrier", "first", "carrier"),
            ("ship_by", "min", "latest_ship_ts"),
            ("first_ship", "min", "ship_ts"),
            ("late_confirm", "min", "__late"),
        ],
    ).lazy()
    unconfirmed_late = (
        pl.when(pl.col("first_ship").is_null() | (pl.col("first_ship") > pl.col("ship_by")))
        .then(pl.col("ship_by"))
        .otherwise(_never())
    )
    return per_order.with_columns(
        pl.col("ship_by").dt.date().alias("anchor_day"),
        pl.lit(1).alias("weight"),
        pl.lit(None, _TS).alias("t_in"),
        pl.min_horizontal(unconfirmed_late, "late_confirm").alias("late_from"),
        _never().alias("late_until"),
    )


def _mfn_orders_without_shipments(data: Dataset) -> pl.LazyFrame:
    mfn = _order_channels(data).filter((pl.col("channel") == "MFN") & (pl.col("order_status") != "cancelled"))
    return mfn.join(_frame(data, "shipments").select("order_id").unique(), on="order_id", how="anti")


def mfn_orders_without_shipments(data: Dataset) -> pl.LazyFrame:
    """MFN orders that have no shipments row, so no promise date (left out of LSR)."""
    lf = data.derived(_stored_name(MFN_WITHOUT_SHIPMENTS), _builder(data, MFN_WITHOUT_SHIPMENTS))
    _built(data, MFN_WITHOUT_SHIPMENTS)
    return as_text(lf)


def _cancellations(data: Dataset) -> pl.LazyFrame:
    """Pre-fulfilment cancel rate: MFN orders not Pending; seller cancellations counted from the
    cancellation date (without a cancellations row, from the order's last update)."""
    c = (
        _frame(data, "cancellations")
        .sort("cancel_ts")
        .group_by("order_id")
        .agg(pl.col("requested_by").last(), pl.col("cancel_ts").last())
    )
    o = _order_channels(data).filter((pl.col("channel") == "MFN") & (pl.col("order_status") != "pending"))
    seller = (pl.col("order_status") == "cancelled") & (
        pl.col("requested_by").is_null() | pl.col("requested_by").is_in(["seller", "system"])
    )
    return _left_join(o, c, "order_id").with_columns(
        pl.col("purchase_ts").dt.date().alias("anchor_day"),
        pl.lit(1).alias("weight"),
        pl.lit(None, _TS).alias("t_in"),
        pl.when(seller)
        .then(pl.coalesce("cancel_ts", "last_updated_ts", "purchase_ts"))
        .otherwise(_never())
        .alias("cancelled_from"),
        _never().alias("cancelled_until"),
    )


def _packages(data: Dataset) -> pl.LazyFrame:
    valid = pl.col("tracking_number").is_not_null() & (pl.col("tracking_valid").fill_null(True))
    return (
        _mfn_shipments(data)
        .filter(pl.col("ship_ts").is_not_null())
        .with_columns(
            valid.alias("valid_tracking"),
            pl.col("ship_ts").dt.date().alias("anchor_day"),
            pl.lit(1).alias("weight"),
        )
    )


def _valid_tracking(data: Dataset) -> pl.LazyFrame:
    """VTR: shipped packages by ship day; valid from confirmation when the number is there and the
    carrier did not reject it."""
    return _packages(data).with_columns(
        pl.col("ship_ts").alias("t_in"),
        pl.when(pl.col("valid_tracking")).then(pl.col("ship_ts")).otherwise(_never()).alias("valid_from"),
        _never().alias("valid_until"),
    )


def _decided_packages(data: Dataset) -> pl.LazyFrame:
    """Packages with valid tracking, decided once delivered or once the promised day is over."""
    promise_over = (pl.col("latest_delivery_ts").dt.date() + pl.duration(days=1)).cast(_TS)
    on_time = pl.col("delivery_ts").dt.date() <= pl.col("latest_delivery_ts").dt.date()
    return (
        _packages(data)
        .filter(pl.col("valid_tracking") & pl.col("latest_delivery_ts").is_not_null())
        .with_columns(
            pl.min_horizontal("delivery_ts", promise_over).alias("t_in"),
            pl.when(on_time).then(pl.col("delivery_ts")).otherwise(_never()).alias("on_time_from"),
            _never().alias("on_time_until"),
        )
    )


def _on_time_delivery(data: Dataset) -> pl.LazyFrame:
    return _decided_packages(data)


def _unit_on_time_delivery(data: Dataset) -> pl.LazyFrame:
    """Units of an order are on time while every decided package of the order was on time."""
    p = _decided_packages(data).with_columns(
        pl.when(pl.col("on_time_from").is_null()).then(pl.col("t_in")).otherwise(_never()).alias("late_at")
    )
    cols = ("order_id", "marketplace_id", "channel", "units", "anchor_day", "t_in", "late_at")
    return (
        _grouped(
            p.select(cols).collect(),
            ["order_id", "marketplace_id"],
            [
                ("channel", "first", "channel"),
                ("weight", "first", "units"),
                ("anchor_day", "min", "anchor_day"),
                ("t_in", "min", "t_in"),
                ("late_at", "min", "late_at"),
            ],
        )
        .lazy()
        .with_columns(
            pl.col("t_in").alias("on_time_from"),
            pl.col("late_at").alias("on_time_until"),
        )
    )


def next_business_day_end(day: pl.Expr) -> pl.Expr:
    """End (exclusive: next midnight) of the first Monday-to-Friday day after `day`."""
    wd = day.dt.weekday()  # Monday 1 ... Sunday 7
    step = pl.when(wd == 5).then(3).when(wd == 6).then(2).otherwise(1)
    return (day + pl.duration(days=step) + pl.duration(days=1)).cast(_TS)


def _invoices(data: Dataset) -> pl.LazyFrame:
    """IDR: shipped Amazon Business orders by purchase day; missing until an invoice is uploaded,
    late from an upload after the end of the next business day after shipping."""
    inv = _frame(data, "invoices").group_by("order_id").agg(pl.col("invoice_ts").min())
    first_ship = (
        _frame(data, "shipments").group_by("order_id").agg(pl.col("ship_ts").min().alias("first_ship"))
    )
    o = (
        _orders(data)
        .filter(pl.col("is_business_order") & (pl.col("order_status") == "shipped"))
        .join(inv, on="order_id", how="left")
        .join(first_ship, on="order_id", how="left")
    )
    ship_day = (
        pl.when(pl.col("has_mfn"))
        .then(pl.coalesce("first_ship", "purchase_ts"))
        .otherwise(pl.col("purchase_ts"))
        .dt.date()
    )
    late = pl.col("invoice_ts") >= pl.col("deadline")
    return o.with_columns(next_business_day_end(ship_day).alias("deadline")).with_columns(
        pl.when(pl.col("has_mfn")).then(pl.lit("MFN")).otherwise(pl.lit("AFN")).alias("channel"),
        pl.col("purchase_ts").dt.date().alias("anchor_day"),
        pl.lit(1).alias("weight"),
        pl.lit(None, _TS).alias("t_in"),
        _always().alias("missing_from"),
        pl.col("invoice_ts").alias("missing_until"),
        pl.when(late).then(pl.col("invoice_ts")).otherwise(_never()).alias("late_from"),
        _never().alias("late_until"),
        _always().alias("defect_from"),
        pl.when(late).then(_never()).otherwise(pl.col("invoice_ts")).alias("defect_until"),
    )


def _refunds(data: Dataset) -> pl.LazyFrame:
    """Refund rate: orders (not cancelled) with an FBA return or a refunded MFN return."""
    fba = _frame(data, "fba_returns").group_by("order_id").agg(pl.col("return_ts").min().alias("r1"))
    mfn = (
        _frame(data, "mfn_returns")
        .filter(pl.col("refunded_amount") > 0)
        .group_by("order_id")
        .agg(pl.col("return_ts").min().alias("r2"))
    )
    returns = fba.join(mfn, on="order_id", how="full", coalesce=True)  # one join over every order
    return (
        _left_join(_orders(data).filter(pl.col("order_status") != "cancelled"), returns, "order_id")
        .with_columns(
            pl.lit("ALL").alias("channel"),
            pl.col("purchase_ts").dt.date().alias("anchor_day"),
            pl.lit(1).alias("weight"),
            pl.lit(None, _TS).alias("t_in"),
            pl.min_horizontal("r1", "r2").alias("refunded_from"),
            _never().alias("refunded_until"),
        )
        .drop("order_status", "is_business_order", "has_mfn")
    )


def _responses(data: Dataset) -> pl.LazyFrame:
    """Contact response time: messages by day received; due 24 hours after receipt unless
    answered before; on time when answered within 24 hours."""
    m = _frame(data, "messages")
    within = (pl.col("responded_ts") - pl.col("received_ts")) <= HOURS_24
    due = pl.col("received_ts") + HOURS_24 - pl.duration(microseconds=1)
    return m.with_columns(
        pl.lit("ALL").alias("channel"),
        pl.col("received_ts").dt.date().alias("anchor_day"),
        pl.lit(1).alias("weight"),
        pl.min_horizontal("responded_ts", due).alias("t_in"),
        pl.when(within).then(pl.col("responded_ts")).otherwise(_never()).alias("on_time_from"),
        _never().alias("on_time_until"),
        ((pl.col("responded_ts") - pl.col("received_ts")).dt.total_seconds() / 3600).alias("response_hours"),
    )


_BUILD = {
    "order_defects": _order_defects,
    "late_shipments": _late_shipments,
    "cancellations": _cancellations,
    "valid_tracking": _valid_tracking,
    "on_time_delivery": _on_time_delivery,
    "unit_on_time_delivery": _unit_on_time_delivery,
    "invoices": _invoices,
    "refunds": _refunds,
    "responses": _responses,
}


MFN_WITHOUT_SHIPMENTS = "mfn_without_shipments"


def _stored_name(name: str) -> str:
    """The derived table's name in the on-disk cache (changes with this file)."""
    if name == MFN_WITHOUT_SHIPMENTS:
        return f"mfn-without-shipments-{_CODE}"
    return f"units-{name}-{_CODE}"


# populations kept with the metric columns alone (`_lean`): only the metrics read their units
LEAN = frozenset(
    {
        "late_shipments",
        "cancellations",
        "valid_tracking",
        "on_time_delivery",
        "unit_on_time_delivery",
        "refunds",
    }
)
_CORE = ("marketplace_id", "channel", "anchor_day", "weight", "t_in")


def _lean(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The columns of a population the metrics read: the core ones and each numerator's
    `_from` / `_until` (so the build reads only what those need)."""
    names = lf.collect_schema().names()
    return lf.select([c for c in names if c in _CORE or c.endswith(("_from", "_until"))])


def _builder(data: Dataset, name: str):
    if name == MFN_WITHOUT_SHIPMENTS:
        return lambda: _mfn_orders_without_shipments(data)
    if name in LEAN:
        return lambda: _anchor_sorted(_lean(_BUILD[name](data)).collect())
    return lambda: _anchor_sorted(_BUILD[name](data).collect())


def _anchor_sorted(df: pl.DataFrame) -> pl.DataFrame:
    """`df` sorted by `anchor_day` (most come out of the builds in that order already: the
    exports list orders by purchase time)."""
    day = df["anchor_day"]
    if day.null_count() == 0 and day.is_sorted():
        return df
    return df.sort("anchor_day")


def prepare(data: Dataset, names: set[str]) -> None:
    """The populations `names` (and `MFN_WITHOUT_SHIPMENTS`) computed or read at once, before a
    run uses them: when the cache is being written, each is written while the next is computed
    (a write runs on one core)."""
    order = [n for n in (*_BUILD, MFN_WITHOUT_SHIPMENTS) if n in names]
    data.derive_all({_stored_name(n): _builder(data, n) for n in order})
    for n in order:
        _built(data, n)


def units(data: Dataset, name: str) -> pl.LazyFrame:
    """The population `name` in stored types (marketplace and channel as enums), sorted by
    `anchor_day`; computed once per dataset and kept with its on-disk cache. A `LEAN` one holds
    the columns the metrics read alone."""
    lf = data.derived(_stored_name(name), _builder(data, name))
    _built(data, name)
    return lf


def _built(data: Dataset, name: str) -> None:
    """Once every population is built, the order tables they were built from are let go."""
    key = frames_key(data)
    done = data.cache.setdefault(("populations built", key), set())
    done.add(name)
    if done >= {*_BUILD, MFN_WITHOUT_SHIPMENTS}:
        for k in [k for k in data.cache if isinstance(k, tuple) and k[0] == "populations" and k[2] == key]:
            del data.cache[k]


def _public(name: str):
    def population(data: Dataset) -> pl.LazyFrame:
        if name not in LEAN:
            return as_text(units(data, name))
        key = ("population rows", name, frames_key(data))  # every column: built when asked for
        if key not in data.cache:
            data.cache[key] = _anchor_sorted(_BUILD[name](data).collect()).lazy()
        return as_text(data.cache[key])

    population.__name__ = name
    population.__doc__ = _BUILD[name].__doc__
    return population


order_defects = _public("order_defects")
late_shipments = _public("late_shipments")
cancellations = _public("cancellations")
valid_tracking = _public("valid_tracking")
on_time_delivery = _public("on_time_delivery")
unit_on_time_delivery = _public("unit_on_time_delivery")
invoices = _public("invoices")
refunds = _public("refunds")
responses = _public("responses")

POPULATIONS = {name: globals()[name] for name in _BUILD}
