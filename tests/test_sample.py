"""The committed sample account is exactly what the default seed writes, and it is realistic."""

import datetime as dt
import json

import polars as pl

from analysis import config
from analysis.inputs import sample


def test_committed_sample_is_default_seed(tmp_path, sample_dir):
    written = sample.generate(tmp_path / "s")
    names = sorted(p.name for p in written)
    assert names == sorted(p.name for p in sample_dir.iterdir() if p.is_file())
    for p in written:
        assert p.read_bytes() == (sample_dir / p.name).read_bytes(), f"{p.name} differs from the default seed"


def test_other_seed_differs(tmp_path, sample_dir):
    written = sample.generate(tmp_path / "s", seed=config.SAMPLE_SEED + 1)
    orders = next(p for p in written if p.name == "All_Orders_com.txt")
    assert orders.read_bytes() != (sample_dir / orders.name).read_bytes()


def test_sample_shape(sample_data):
    o = sample_data.frame("orders").collect()
    per_order = o.group_by("order_id").agg(
        pl.len().alias("items"), pl.col("purchase_ts").first(), pl.col("marketplace_id").first()
    )
    days = per_order.group_by(pl.col("purchase_ts").dt.date()).len()
    assert days.height == 180
    assert 20 <= days["len"].min() and days["len"].max() <= 400  # tens to a few hundred a day
    assert set(o["marketplace_id"]) == {"ATVPDKIKX0DER", "A1F83G8C2ARO7P"}
    assert set(o["channel"]) == {"AFN", "MFN"}
    assert per_order.filter(pl.col("items") > 1).height > 100  # multi-item orders
    assert o.filter(pl.col("is_business_order")).select("order_id").n_unique() > 100
    # weekly seasonality: Mondays busier than Saturdays
    wd = per_order.group_by(pl.col("purchase_ts").dt.weekday().alias("wd")).len().sort("wd")["len"].to_list()
    assert wd[0] > wd[5]
    assert o["purchase_ts"].max().date() == dt.date.fromisoformat(config.SAMPLE_END_DATE)


def test_sample_events(sample_data):
    claims = set(sample_data.frame("claims").collect()["claim_status"])
    assert claims == {
        "under-review",
        "granted",
        "seller-funded",
        "amazon-funded",
        "denied",
        "withdrawn",
        "appealed",
    }
    cb = sample_data.frame("chargebacks").collect()
    assert set(cb["category"]) == {"service", "fraud"}
    s = sample_data.frame("shipments").collect()
    assert s.filter(pl.col("ship_ts") > pl.col("latest_ship_ts")).height > 0  # late shipments
    assert s.filter(pl.col("tracking_valid") == False).height > 0  # noqa: E712 invalid tracking
    assert s.filter(pl.col("delivery_ts").dt.date() > pl.col("latest_delivery_ts").dt.date()).height > 0
    assert set(sample_data.frame("cancellations").collect()["requested_by"]) == {"buyer", "seller", "system"}
    assert (
        sample_data.frame("fba_returns").collect().height > 0
        and sample_data.frame("mfn_returns").collect().height > 0
    )
    assert sample_data.frame("messages").collect().height > 0
    assert len(sample_data.snapshots) == 2


def test_defects_arrive_later_and_concentrate(sample_data):
    o = sample_data.frame("orders").group_by("order_id").agg(pl.col("purchase_ts").min(), pl.col("sku"))
    fb = (
        sample_data.frame("feedback")
        .filter(pl.col("rating") <= 2)
        .join(o.collect().lazy(), on="order_id")
        .collect()
    )
    delay = (fb["feedback_ts"].dt.date() - fb["purchase_ts"].dt.date()).dt.total_days()
    assert delay.min() >= 1 and delay.median() >= 5 and delay.max() >= 14
    top = fb.explode("sku").group_by("sku").len().sort("len", descending=True)
    assert top["len"].head(3).sum() >= 0.4 * fb.height  # a few SKUs carry the defects


def test_manifest_spikes(sample_dir):
    m = json.loads((sample_dir / "manifest.json").read_text())
    assert {s["kind"] for s in m["spikes"]} == {"carrier", "sku"}
    for s in m["spikes"]:
        assert dt.date.fromisoformat(s["start"]) <= dt.date.fromisoformat(s["end"])
