"""The run-by-run grouping of the populations (`populations._grouped`) gives exactly what polars'
hash group-by gives, whatever the order of the rows, their nulls and the repeats of a key."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from analysis.metrics import populations

AGGS = [
    ("t_min", "min", "ts"),
    ("t_max", "max", "ts"),
    ("d_min", "min", "day"),
    ("status", "first", "status"),
    ("sku", "first", "sku"),
    ("flag", "any", "flag"),
    ("units", "sum", "qty"),
]


def _frame(rng: np.random.Generator, n: int, keys: int, shuffle: bool) -> pl.DataFrame:
    order = np.sort(rng.integers(0, keys, n)) if not shuffle else rng.integers(0, keys, n)
    ts = rng.integers(0, 10**15, n)
    return pl.DataFrame(
        {
            "order_id": pl.Series([f"111-{k:07d}" for k in order], dtype=pl.String),
            "marketplace_id": pl.Series(
                rng.choice(["ATVPDKIKX0DER", "A1F83G8C2ARO7P"], n), dtype=pl.String
            ).cast(pl.Enum(["A1F83G8C2ARO7P", "ATVPDKIKX0DER"])),
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "day": pl.Series(
                [dt.date(2026, 1, 1) + dt.timedelta(days=int(d)) for d in ts % 400], dtype=pl.Date
            ),
            "status": pl.Series(list(rng.choice(["shipped", "pending", None], n)), dtype=pl.String).cast(
                pl.Enum(["pending", "shipped"])
            ),
            "sku": pl.Series(list(rng.choice(["A", "B", "C", None], n)), dtype=pl.String).cast(
                pl.Categorical()
            ),
            "flag": pl.Series(list(rng.choice([True, False, None], n)), dtype=pl.Boolean),
            "qty": pl.Series(list(rng.choice([1, 2, 3, None], n)), dtype=pl.Int64),
        }
    ).with_columns(
        pl.when(pl.Series(rng.random(n) < 0.3)).then(None).otherwise(pl.col("ts")).alias("ts"),
        pl.when(pl.Series(rng.random(n) < 0.2)).then(None).otherwise(pl.col("day")).alias("day"),
    )


def _expected(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return df.group_by(keys, maintain_order=True).agg(
        [populations._AGG[op](col).alias(name) for name, op, col in AGGS]
    )


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 500])
def test_grouped_is_the_hash_group_by(n, shuffle):
    rng = np.random.default_rng(n + shuffle)
    df = _frame(rng, n, max(1, n // 3), shuffle)
    for keys in (["order_id"], ["order_id", "marketplace_id"]):
        got = populations._grouped(df, keys, AGGS)
        want = _expected(df, keys)
        assert got.schema == want.schema
        assert got.sort(keys).equals(want.sort(keys))


def test_grouped_keeps_first_row_order_and_splits_repeated_keys():
    """A key in two runs (overlapping downloads) goes through the hash group-by: its first value
    is still the one of its first row."""
    df = pl.DataFrame(
        {
            "order_id": ["a", "a", "b", "c", "a", "c", "d"],
            "ts": pl.Series([5, 3, 1, 9, 1, None, None]).cast(pl.Datetime("us", "UTC")),
            "day": pl.Series([dt.date(2026, 1, i) for i in (1, 2, 3, 4, 5, 6, 7)]),
            "status": pl.Series(["shipped", "pending", None, "shipped", "pending", None, None]).cast(
                pl.Enum(["pending", "shipped"])
            ),
            "sku": pl.Series(["x", "y", "z", None, "w", "v", None]).cast(pl.Categorical()),
            "flag": [None, False, True, None, True, None, None],
            "qty": [1, 2, None, 4, 5, 6, None],
        }
    )
    got = populations._grouped(df, ["order_id"], AGGS)
    want = _expected(df, ["order_id"])
    assert got.sort("order_id").equals(want.sort("order_id"))
    assert got["order_id"].to_list()[:2] == ["b", "d"]  # the keys in one run come first
    assert got.filter(pl.col("order_id") == "d")["t_min"].to_list() == [None]
    assert got.filter(pl.col("order_id") == "d")["flag"].to_list() == [False]
    assert got.filter(pl.col("order_id") == "d")["units"].to_list() == [0]


@pytest.mark.parametrize("shuffle", [False, True])
def test_grouped_takes_any_type(shuffle):
    """Types the runs are not aggregated by numpy (a what-if copy may hold floats, text, small
    integers) go through polars, with the same result."""
    rng = np.random.default_rng(3)
    df = _frame(rng, 400, 120, shuffle).with_columns(
        pl.col("qty").cast(pl.Int32).alias("small"),
        (pl.col("qty") * 1.5).alias("price"),
        pl.col("sku").cast(pl.String).alias("text"),
    )
    aggs = [
        ("small", "sum", "small"),
        ("price", "min", "price"),
        ("text", "max", "text"),
        ("flag", "first", "flag"),
    ]
    got = populations._grouped(df, ["order_id"], aggs)
    want = df.group_by("order_id", maintain_order=True).agg(
        [populations._AGG[op](col).alias(name) for name, op, col in aggs]
    )
    assert got.schema == want.schema
    assert got.sort("order_id").equals(want.sort("order_id"))


def test_lean_populations_keep_the_metric_columns_and_their_public_rows(sample_data):
    """A `LEAN` population is stored with the columns the metrics read; its public function
    still gives every column of every unit, in anchor-day order."""
    from analysis.metrics import definitions

    for name in populations.LEAN:
        stored = populations.units(sample_data, name).collect()
        full = populations.POPULATIONS[name](sample_data).collect()
        rebuilt = populations._BUILD[name](sample_data).collect()
        assert set(full.columns) == set(rebuilt.columns) and full.columns == rebuilt.columns
        assert full.height == rebuilt.height == stored.height
        assert full["anchor_day"].is_sorted()
        assert set(stored.columns) < set(full.columns)
        numerators = {
            n for m in definitions.METRICS if m.population == name for n in definitions._numerator_names(m)
        }
        needed = {"marketplace_id", "channel", "anchor_day", "weight", "t_in"}
        needed |= {f"{n}_{end}" for n in numerators for end in ("from", "until")}
        assert needed <= set(stored.columns)
        as_text = [pl.col(c).cast(pl.String) for c in ("marketplace_id", "channel")]
        lean_view = full.select(stored.columns).with_columns(as_text)
        stored_text = stored.with_columns(as_text)
        assert lean_view.sort(stored.columns, nulls_last=True).equals(
            stored_text.sort(stored.columns, nulls_last=True)
        )


def test_left_join_keeps_the_left_order_and_is_the_join():
    ts = pl.Datetime("us", "UTC")
    left = pl.DataFrame({"order_id": ["a", None, "b", "a", "c"], "x": [1, 2, 3, 4, 5]})
    for right in (
        pl.DataFrame({"order_id": ["a", None, "c"], "v": pl.Series([1, 2, None]).cast(ts)}),
        pl.DataFrame({"order_id": pl.Series([], dtype=pl.String), "v": pl.Series([], dtype=ts)}),
        pl.DataFrame({"order_id": ["a", "a"], "v": pl.Series([1, 2]).cast(ts)}),  # not one row per key
    ):
        got = populations._left_join(left.lazy(), right.lazy(), "order_id").collect()
        want = left.join(right, on="order_id", how="left", maintain_order="left")
        assert got.sort("x", "v").equals(want.sort("x", "v"))
        if right["order_id"].is_unique().all():
            assert got.equals(want)
    assert populations._left_join(left.head(0).lazy(), right.lazy(), "order_id").collect().height == 0
