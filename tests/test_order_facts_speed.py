"""The run-by-run order facts (`defects._order_facts`) give exactly the table polars' group-by
gives (the implementation they replaced, written out below): same columns, types, rows and order,
whatever the runs of an order's items, their prices, nulls, channels and marketplaces."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from conftest import Account

from analysis.inputs import sources
from analysis.inputs.sources import CHANNEL, MARKETPLACE
from analysis.insights import defects

STATUS = pl.Enum(["cancelled", "pending", "shipped"])
MARKETS = ["A1F83G8C2ARO7P", "ATVPDKIKX0DER"]


def reference(data: sources.Dataset) -> pl.DataFrame:
    """The order facts by polars' group-by over the rows as text."""
    cols = ("order_id", "marketplace_id", "channel", "purchase_ts", "order_status", "sku", "asin")
    o = data.frame("orders").select(*cols, "item_price", "ship_service_level").collect()
    ship = (
        data.frame("shipments")
        .sort("ship_ts", nulls_last=True)
        .group_by("order_id")
        .agg(pl.col("carrier").drop_nulls().first(), pl.col("ship_ts").min().alias("first_ship"))
        .collect()
    )
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
    by_price = {"by": "item_price", "descending": True, "nulls_last": True}
    grouped = (
        o.filter(several)
        .group_by("order_id")
        .agg(
            pl.col("marketplace_id").first(),
            pl.col("channel").unique().sort().str.join("+").alias("channel"),
            pl.col("purchase_ts").min(),
            pl.col("order_status").first(),
            pl.col("sku").sort_by(**by_price).first().alias("sku"),
            pl.col("sku").unique().sort().str.join(", ").alias("skus"),
            pl.col("asin").sort_by(**by_price).first().alias("asin"),
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


def fast_path(data: sources.Dataset) -> bool:
    o = data.frames["orders"].collect()
    return (
        defects._order_runs(o.select(*defects._FACT_COLUMNS, "item_price", "ship_service_level")) is not None
    )


def assert_same(data: sources.Dataset) -> pl.DataFrame:
    got, want = defects._order_facts(data), reference(data)
    assert got.schema == want.schema
    assert got.equals(want), (got, want)
    return got


def with_frames(data: sources.Dataset, **frames: pl.DataFrame) -> sources.Dataset:
    return dataclasses.replace(
        data, frames={**data.frames, **{k: v.lazy() for k, v in frames.items()}}, cache={}
    )


def test_loaded_account(account):
    """An export with orders of one and of several items: ties and unknown prices, two
    channels, two marketplaces, a shipped order and one without a shipment."""
    a = account
    a.order("111-0000003-0000001", "2026-05-01", sku="ONE", channel="MFN")
    a.order("111-0000001-0000001", "2026-05-01", sku="B", channel="MFN")
    a.order("111-0000001-0000001", "2026-05-01T08:00:00+00:00", sku="A")
    a.order("111-0000001-0000001", "2026-05-01", sku="C", channel="MFN")
    a.order("111-0000002-0000001", "2026-05-02", sku="Z", market="Amazon.co.uk")
    a.order("111-0000002-0000001", "2026-05-02", sku="Y")
    a.order("111-0000002-0000001", "2026-05-02", sku="Z", qty=2)
    a.order("111-0000004-0000001", "2026-05-03", sku="P", channel="MFN")
    a.order("111-0000004-0000001", "2026-05-03", sku="Q", channel="MFN")
    prices = ["5.00", "", "12.00", "12.00", "", "", "", "", "1.00"]
    for row, price in zip(a.orders, prices, strict=True):
        row["item-price"] = price
    a.shipment("111-0000004-0000001", "2026-05-04", ship="2026-05-04", carrier="DHL")
    data = sources.load(a.write(), use_cache=False)
    assert fast_path(data)
    got = assert_same(data)
    rows = {r["order_id"]: r for r in got.iter_rows(named=True)}
    one, two, three, four = (rows[f"111-000000{i}-0000001"] for i in range(1, 5))
    assert (one["channel"], one["sku"], one["skus"]) == (
        "AFN+MFN",
        "A",
        "A, B, C",
    )  # A: first of the 12.00 tie
    assert one["purchase_ts"] == dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    assert (two["sku"], two["skus"], two["marketplace_id"]) == (
        "Z",
        "Y, Z",
        "A1F83G8C2ARO7P",
    )  # no price: first
    assert (three["channel"], three["sku"], three["skus"], three["carrier"]) == (
        "MFN",
        "ONE",
        "ONE",
        "unknown",
    )
    assert (four["sku"], four["carrier"]) == ("Q", "DHL")
    assert got["order_id"].to_list() == sorted(rows)


def _stored(rng: np.random.Generator, n: int, adjacent: bool, amazon_ids: bool) -> pl.DataFrame:
    """Order items in the stored types, `n` rows of orders of 1 to 4 items."""
    counts = rng.choice([1, 1, 1, 2, 3, 4], max(n, 1))
    keys = np.repeat(np.arange(len(counts)), counts)[:n]
    if not adjacent:
        keys = rng.permutation(keys)
    numbers = rng.choice(10**7, len(counts), replace=False)
    ids = [f"{111 + k % 3}-{numbers[k]:07d}-{(k * 7919) % 10**7:07d}" for k in keys]
    if not amazon_ids:
        ids = [i if k % 4 else f"S{k:03d}" for i, k in zip(ids, keys, strict=True)]

    def maybe(values: list, share: float) -> list:
        return [None if rng.random() < share else v for v in values]

    ts = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "order_id": pl.Series(ids, dtype=pl.String),
            "marketplace_id": pl.Series(list(rng.choice(MARKETS, n)), dtype=MARKETPLACE),
            "channel": pl.Series(maybe(list(rng.choice(["AFN", "MFN"], n)), 0.15), dtype=pl.String).cast(
                CHANNEL
            ),
            "purchase_ts": pl.Series(
                maybe([ts + dt.timedelta(hours=int(h)) for h in rng.integers(0, 500, n)], 0.1),
                dtype=pl.Datetime("us", "UTC"),
            ),
            "order_status": pl.Series(maybe(list(rng.choice(STATUS.categories, n)), 0.1), dtype=STATUS),
            "sku": pl.Series(maybe(list(rng.choice(["S-2", "S-10", "s-1", "Ä", "S-1"], n)), 0.2)).cast(
                pl.Categorical()
            ),
            "asin": pl.Series(maybe([f"B{i:03d}" for i in rng.integers(0, 9, n)], 0.2)).cast(
                pl.Categorical()
            ),
            "item_price": pl.Series(
                maybe(list(rng.choice([0.0, -0.0, 5.0, 9.99, 12.5], n)), 0.3), dtype=pl.Float64
            ),
            "ship_service_level": pl.Series(maybe(list(rng.choice(["Standard", "Expedited"], n)), 0.2)).cast(
                pl.Categorical()
            ),
        }
    )


def _shipments(rng: np.random.Generator, orders: pl.DataFrame) -> pl.DataFrame:
    ids = orders["order_id"].unique().sort().to_list() + ["999-0000000-0000000", "odd id"]
    pick = list(rng.choice(ids, len(ids))) if ids else []
    ts = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "order_id": pl.Series(pick, dtype=pl.String),
            "carrier": pl.Series(
                [None if rng.random() < 0.2 else c for c in rng.choice(["UPS", "DHL"], len(pick))]
            ).cast(pl.Categorical()),
            "ship_ts": pl.Series(
                [
                    None if rng.random() < 0.2 else ts + dt.timedelta(days=int(d))
                    for d in rng.integers(0, 3, len(pick))
                ],
                dtype=pl.Datetime("us", "UTC"),
            ),
        }
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> sources.Dataset:
    a = Account(tmp_path_factory.mktemp("base") / "account")
    a.order("111-0000001-0000001", "2026-05-01")
    return sources.load(a.write(), use_cache=False)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("adjacent", "amazon_ids"), [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("n", [0, 1, 2, 9, 400])
def test_stored_frames(base, seed, adjacent, amazon_ids, n):
    rng = np.random.default_rng(seed * 1000 + n)
    orders = _stored(rng, n, adjacent, amazon_ids)
    data = with_frames(base, orders=orders, shipments=_shipments(rng, orders))
    if adjacent and n:
        assert fast_path(data)
    assert_same(data)


def test_edge_orders(base):
    """An order's items on rows apart, an order of null channels, of null SKUs, of null prices,
    and in two marketplaces."""
    rows = [
        ("111-0000002-0000001", "A1F83G8C2ARO7P", "AFN", "S-1", 2.0),
        ("111-0000002-0000001", "ATVPDKIKX0DER", "MFN", "S-2", 2.0),
        ("111-0000001-0000001", "ATVPDKIKX0DER", None, None, None),
        ("111-0000001-0000001", "ATVPDKIKX0DER", None, None, None),
        ("111-0000003-0000001", "ATVPDKIKX0DER", "MFN", "S-3", 1.0),
        ("111-0000003-0000001", "ATVPDKIKX0DER", "MFN", "S-4", None),
    ]
    orders = pl.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "marketplace_id": pl.Series([r[1] for r in rows], dtype=MARKETPLACE),
            "channel": pl.Series([r[2] for r in rows], dtype=CHANNEL),
            "purchase_ts": pl.Series([dt.datetime(2026, 5, 1, tzinfo=dt.UTC)] * len(rows)),
            "order_status": pl.Series(["shipped"] * len(rows), dtype=STATUS),
            "sku": pl.Series([r[3] for r in rows], dtype=pl.Categorical()),
            "asin": pl.Series([None] * len(rows), dtype=pl.Categorical()),
            "item_price": pl.Series([r[4] for r in rows], dtype=pl.Float64),
            "ship_service_level": pl.Series(["Standard"] * len(rows), dtype=pl.Categorical()),
        }
    )
    shipments = pl.DataFrame(
        {
            "order_id": ["111-0000003-0000001"],
            "carrier": pl.Series(["UPS"], dtype=pl.Categorical()),
            "ship_ts": [None],
        },
        schema_overrides={"ship_ts": pl.Datetime("us", "UTC")},
    )
    data = with_frames(base, orders=orders, shipments=shipments)
    assert fast_path(data)
    got = assert_same(data)
    assert got.select("order_id", "marketplace_id", "channel", "sku", "skus", "carrier").rows() == [
        ("111-0000001-0000001", "ATVPDKIKX0DER", "", None, "", "unknown"),
        ("111-0000002-0000001", "A1F83G8C2ARO7P", "AFN+MFN", "S-1", "S-1, S-2", "unknown"),
        ("111-0000003-0000001", "ATVPDKIKX0DER", "MFN", "S-3", "S-3, S-4", "UPS"),
    ]
    apart = with_frames(base, orders=orders.select(pl.all().gather([0, 2, 1, 3, 4, 5])), shipments=shipments)
    assert not fast_path(apart)
    assert_same(apart)
    as_text = with_frames(base, orders=sources.as_text(orders.lazy()).collect(), shipments=shipments)
    assert not fast_path(as_text)
    assert_same(as_text)
    no_skus = with_frames(
        base, orders=orders.with_columns(pl.col("sku").filter(False).extend_constant(None, 6))
    )
    assert fast_path(no_skus)
    assert assert_same(no_skus)["skus"].to_list() == ["", "", ""]  # and no shipment at all


def test_many_skus(base):
    """More distinct SKUs than a table of orders by SKUs holds: the SKUs are sorted by pairs."""
    rng = np.random.default_rng(7)
    orders = _stored(rng, 8000, adjacent=True, amazon_ids=True).with_columns(
        pl.Series([f"SKU-{i}" for i in rng.integers(0, 6000, 8000)]).cast(pl.Categorical()).alias("sku")
    )
    data = with_frames(base, orders=orders, shipments=_shipments(rng, orders))
    assert fast_path(data)
    assert_same(data)
