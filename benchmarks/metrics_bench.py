"""Ingestion + metrics speed against a bare polars scan of the same files, in one process.

    .venv/bin/python benchmarks/metrics_bench.py            # 1,000,000 order items
    .venv/bin/python benchmarks/metrics_bench.py --large    # 10,000,000 order items

Prints each step's seconds and its ratio to the baseline (a plain `pl.scan_csv` of every file,
all columns as text, collected), so the figures compare across machines. The on-disk cache is off
here (this measures reading the files); benchmarks/peer_bench.py measures the command with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from analysis.inputs import sources
from analysis.inputs.sample import FEEDBACK_HEADER, ORDERS_HEADER
from analysis.metrics import definitions as metrics
from analysis.metrics import health

END = dt.date(2026, 11, 15)


def generate(out: Path, items: int, seed: int = 7) -> None:
    """A big account in the export formats, written with vectorised numpy/polars (not the sample
    generator, which favours realism over speed)."""
    rng = np.random.default_rng(seed)
    days = 455
    n_orders = int(items / 1.3)
    order_idx = np.sort(rng.integers(0, n_orders, items))  # items per order ~ 1.3
    start = np.datetime64(END - dt.timedelta(days=days - 1), "s")
    order_ts = start + rng.integers(0, days * 86400, n_orders).astype("timedelta64[s]")
    mfn = rng.random(n_orders) < 0.4
    market = np.where(rng.random(n_orders) < 0.75, "Amazon.com", "Amazon.co.uk")
    status = np.where(rng.random(n_orders) < 0.01, "Cancelled", "Shipped")
    business = rng.random(n_orders) < 0.08
    ids = np.char.add("111-", np.char.zfill(np.arange(n_orders).astype(str), 7))
    ts_text = lambda a: np.datetime_as_string(a, unit="s").astype(object) + "+00:00"  # noqa: E731
    o = order_idx
    orders = pl.DataFrame(
        {
            "amazon-order-id": ids[o],
            "merchant-order-id": "",
            "purchase-date": ts_text(order_ts[o]),
            "last-updated-date": ts_text(order_ts[o] + np.timedelta64(86400, "s")),
            "order-status": status[o],
            "fulfillment-channel": np.where(mfn[o], "Merchant", "Amazon"),
            "sales-channel": market[o],
            "sku": np.char.add("SKU-", rng.integers(0, 500, items).astype(str)),
            "product-name": "Product",
            "quantity": rng.integers(1, 4, items).astype(str),
            "currency": "USD",
            "item-price": "10.00",
            "is-business-order": np.where(business[o], "true", "false"),
        }
    ).with_row_index("_i")
    orders = orders.unique(subset=["amazon-order-id", "sku"], keep="first").sort("_i").drop("_i")
    full = orders.select([pl.col(h) if h in orders.columns else pl.lit("").alias(h) for h in ORDERS_HEADER])
    full.write_csv(out / "orders.txt", separator="\t", quote_style="never")

    def some(p: float) -> np.ndarray:
        return np.flatnonzero(rng.random(n_orders) < p)

    fb = some(0.006)
    fb_ts = order_ts[fb] + rng.integers(86400, 40 * 86400, fb.size).astype("timedelta64[s]")
    fb_days = fb_ts.astype("datetime64[D]").astype(object)
    uk = market[fb] == "Amazon.co.uk"
    dates = [
        f"{d.day}/{d.month}/{d:%y}" if u else f"{d.month}/{d.day}/{d:%y}"
        for d, u in zip(fb_days, uk, strict=True)
    ]
    pl.DataFrame(
        {
            "Date": dates,
            "Rating": rng.integers(1, 4, fb.size).astype(str),
            "Comments": "late",
            "Your Response": "",
            "Order ID": ids[fb],
            "Rater Email": "x@example.com",
            "Removed": "false",
        }
    ).select(FEEDBACK_HEADER).write_csv(out / "feedback.txt", separator="\t", quote_style="never")
    cl = some(0.002)
    pl.DataFrame(
        {
            "order-id": ids[cl],
            "claim-date": ts_text(order_ts[cl] + np.timedelta64(20 * 86400, "s")),
            "claim-reason": "not-received",
            "claim-status": rng.choice(["granted", "denied", "under-review"], cl.size),
            "claim-amount": "10.00",
        }
    ).write_csv(out / "claims.csv")
    sh = np.flatnonzero(mfn & (status == "Shipped"))
    ship_by = order_ts[sh].astype("datetime64[D]") + np.timedelta64(2, "D")
    ship = order_ts[sh] + rng.integers(3600, 3 * 86400, sh.size).astype("timedelta64[s]")
    deliver_by = ship_by + np.timedelta64(5, "D")
    delivery = ship + rng.integers(86400, 7 * 86400, sh.size).astype("timedelta64[s]")
    pl.DataFrame(
        {
            "order-id": ids[sh],
            "latest-ship-date": np.datetime_as_string(ship_by).astype(object),
            "ship-date": ts_text(ship),
            "carrier-code": rng.choice(["UPS", "USPS", "FedEx"], sh.size),
            "tracking-number": "1Z",
            "tracking-valid": np.where(rng.random(sh.size) < 0.97, "true", "false"),
            "latest-delivery-date": np.datetime_as_string(deliver_by).astype(object),
            "delivery-date": ts_text(delivery),
        }
    ).write_csv(out / "shipments.csv")
    ms = some(0.05)
    received = order_ts[ms] + np.timedelta64(2 * 86400, "s")
    pl.DataFrame(
        {
            "thread-id": np.char.add("T", ms.astype(str)),
            "order-id": ids[ms],
            "received-at": ts_text(received),
            "responded-at": ts_text(
                received + rng.integers(600, 40 * 3600, ms.size).astype("timedelta64[s]")
            ),
        }
    ).write_csv(out / "messages.csv")
    inv = np.flatnonzero(business & (status == "Shipped") & (rng.random(n_orders) < 0.9))
    pl.DataFrame(
        {"order-id": ids[inv], "invoice-uploaded-at": ts_text(order_ts[inv] + np.timedelta64(86400, "s"))}
    ).write_csv(out / "invoices.csv")


def baseline(folder: Path) -> int:
    """What any tool must do at least: scan every file as text and collect it."""
    rows = 0
    for p in sorted(folder.iterdir()):
        sep = "\t" if p.suffix == ".txt" else ","
        df = pl.scan_csv(
            p, separator=sep, infer_schema=False, quote_char=None if sep == "\t" else '"'
        ).collect()
        rows += df.height
    return rows


def timed(label: str, fn, base: float | None = None):
    t = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t
    ratio = f"  ratio {s / base:6.2f}x" if base else ""
    print(f"{label:<42} {s:8.2f} s{ratio}", flush=True)
    return out, s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--large", action="store_true", help="10,000,000 order items instead of 1,000,000")
    ap.add_argument("--items", type=int, help="number of order items (overrides --large)")
    ap.add_argument("--history-days", type=int, default=365)
    args = ap.parse_args()
    items = args.items or (10_000_000 if args.large else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, gen = timed(f"generate {items:,} order items", lambda: generate(folder, items))
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"{'files':<42} {size:8.1f} MB")
        rows, base = timed("baseline: bare polars scan of every file", lambda: baseline(folder))
        data, _ = timed(
            "ingestion (read, type, validate, merge)", lambda: sources.load(folder, use_cache=False), base
        )
        data.frames = {
            k: v.collect().lazy() for k, v in data.frames.items()
        }  # materialise once, like a cache
        timed("all metrics, one as-of day", lambda: health.account_health(data, END), base)
        first = END - dt.timedelta(days=args.history_days - 1)
        timed(
            f"history, {args.history_days} days, all metrics", lambda: metrics.history(data, first, END), base
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'peak memory (RSS)':<42} {peak:8.0f} MB   ({rows:,} rows in the files)")


if __name__ == "__main__":
    main()
