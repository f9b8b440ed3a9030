"""The suite against its peers on the same files: a bare polars read (the floor) and DuckDB SQL.

    .venv/bin/python benchmarks/peer_bench.py --items 1000000
    .venv/bin/python benchmarks/peer_bench.py --items 10000000     # about 2.6 GB of exports
    .venv/bin/python benchmarks/peer_bench.py --exports /tmp/pb/p10  # reuse exports written before

Writes a big account in Amazon's formats (All Orders with every column, one row per SKU per
order, the order's status on each of its rows, `last-updated-date` set; per-marketplace feedback,
A-to-z claims, chargebacks, MFN shipments, cancellations, FBA and MFN returns, buyer messages,
business invoices), then times, one after the other in this process:

- the floor: a bare polars read of the columns the ODR needs (orders, feedback, claims,
  chargebacks), typed;
- the ODR as one DuckDB SQL query over the same files (`duckdb` is a dev dependency);
- for scale, DuckDB reading into a table every column of All Orders the metrics read (16 of its
  columns, typed as `analysis` types them; no checks, no other file, no metric): the first step of
  a cold run alone, done by the peer;
- `python -m analysis metrics` as a subprocess, every metric, with a fresh cache folder (cold),
  its peak memory (`resource.getrusage(RUSAGE_CHILDREN)`, a high-water mark: each subprocess is
  run from a fresh helper process so the figure is its own);
- the same command again on the unchanged files (the cache is warm);
- `history` over 365 days against one as-of day (cache warm).

Each line gives its seconds, its ratio to the floor and to the DuckDB query, and the ODR counts
(orders and defective orders per marketplace and channel), which must agree exactly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.inputs.marketplaces import SALES_CHANNEL_TO_ID  # noqa: E402
from analysis.inputs.sample import FEEDBACK_HEADER, MFN_RETURNS_HEADER, ORDERS_HEADER  # noqa: E402

END = dt.date(2026, 11, 15)
DAYS = 455
MARKETS = (("Amazon.com", "USD", "US", 0.75), ("Amazon.co.uk", "GBP", "GB", 0.25))
FBA_RETURNS_HEADER = (
    "return-date order-id sku asin fnsku product-name quantity fulfillment-center-id detailed-disposition "
    "reason status license-plate-number customer-comments"
).split()
# when the exports were downloaded: nothing after the end of END is in them
CUT = dt.datetime.combine(END + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _iso(e: pl.Expr) -> pl.Expr:
    return e.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _write_tsv(df: pl.DataFrame, path: Path, header: list[str]) -> None:
    df.select([pl.col(h) if h in df.columns else pl.lit("").alias(h) for h in header]).write_csv(
        path, separator="\t", quote_style="never"
    )


def generate(out: Path, items: int, seed: int = 7) -> dict:
    """Write the account into `out`; return what it holds (orders, items)."""
    rng = np.random.default_rng(seed)
    n_orders = int(items / 1.3)
    start = dt.datetime.combine(END - dt.timedelta(days=DAYS - 1), dt.time(), tzinfo=dt.UTC)
    # orders: purchase time, marketplace, channel, status
    secs = np.sort(rng.integers(0, DAYS * 86400, n_orders))
    market = (rng.random(n_orders) < MARKETS[1][3]).astype(np.int8)
    mfn = rng.random(n_orders) < 0.4
    u = rng.random(n_orders)
    age_days = (DAYS * 86400 - secs) / 86400
    status = np.where(u < 0.015, "Cancelled", "Shipped").astype(object)
    status[(age_days < 2) & (u > 0.5)] = "Pending"
    status[(age_days < 2) & (u > 0.3) & (u <= 0.5) & mfn] = "Unshipped"
    business = rng.random(n_orders) < 0.08
    orders = pl.DataFrame(
        {
            "o": np.arange(n_orders, dtype=np.int64),
            "secs": secs,
            "market": market,
            "mfn": mfn,
            "status": status.astype(str),
            "business": business,
            "n_items": 1 + (rng.random(n_orders) < 0.22) + (rng.random(n_orders) < 0.06),
        }
    ).with_columns(
        (pl.lit(start) + pl.duration(seconds=pl.col("secs"))).alias("purchase"),
        pl.format(
            "{}-{}-{}",
            pl.when(pl.col("market") == 0).then(pl.lit("111")).otherwise(pl.lit("202")),
            (pl.col("o") * 7919 % 10_000_000).cast(pl.String).str.zfill(7),
            (pl.col("o") % 10_000_000).cast(pl.String).str.zfill(7),
        ).alias("order_id"),
    )
    orders = orders.with_columns(
        pl.min_horizontal(
            pl.col("purchase") + pl.duration(hours=pl.col("o") % 72 + 1), pl.lit(CUT) - pl.duration(seconds=1)
        ).alias("updated")
    )
    # one row per SKU of an order: n_items distinct SKUs
    it = (
        orders.select(
            "o", "order_id", "purchase", "updated", "market", "mfn", "status", "business", "n_items"
        )
        .with_columns(pl.int_ranges(0, "n_items").alias("k"))
        .explode("k")
    )
    n = it.height
    it = it.with_columns(
        ((pl.col("o") * 37 + pl.col("k") * 211) % 2000).alias("sku_n"),
        pl.Series("qty", rng.integers(1, 4, n)),
    )
    mk = pl.col("market") == 0
    items_df = it.select(
        pl.col("order_id").alias("amazon-order-id"),
        pl.col("order_id").alias("merchant-order-id"),
        _iso(pl.col("purchase")).alias("purchase-date"),
        _iso(pl.col("updated")).alias("last-updated-date"),
        pl.col("status").alias("order-status"),
        pl.when(pl.col("mfn"))
        .then(pl.lit("Merchant"))
        .otherwise(pl.lit("Amazon"))
        .alias("fulfillment-channel"),
        pl.when(mk).then(pl.lit("Amazon.com")).otherwise(pl.lit("Amazon.co.uk")).alias("sales-channel"),
        pl.lit("").alias("order-channel"),
        pl.lit("").alias("url"),
        pl.when(pl.col("sku_n") % 5 == 0)
        .then(pl.lit("Expedited"))
        .otherwise(pl.lit("Standard"))
        .alias("ship-service-level"),
        pl.format("Stainless steel kitchen product {}", pl.col("sku_n")).alias("product-name"),
        pl.format("SKU-{}", pl.col("sku_n").cast(pl.String).str.zfill(4)).alias("sku"),
        pl.format("B0{}", pl.col("sku_n").cast(pl.String).str.zfill(8)).alias("asin"),
        pl.col("status").alias("item-status"),
        pl.col("qty").cast(pl.String).alias("quantity"),
        pl.when(mk).then(pl.lit("USD")).otherwise(pl.lit("GBP")).alias("currency"),
        pl.format("{}.99", pl.col("sku_n") % 90 + 9).alias("item-price"),
        pl.lit("1.20").alias("item-tax"),
        pl.lit("0.00").alias("shipping-price"),
        pl.lit("0.00").alias("shipping-tax"),
        pl.when(mk).then(pl.lit("US")).otherwise(pl.lit("GB")).alias("ship-country"),
        pl.when(pl.col("business"))
        .then(pl.lit("true"))
        .otherwise(pl.lit("false"))
        .alias("is-business-order"),
    )
    _write_tsv(items_df, out / "All_Orders_2025-08-18_2026-11-15.txt", ORDERS_HEADER)
    del items_df, it

    def some(p: float, where: pl.Expr | None = None) -> pl.DataFrame:
        pick = orders.filter(pl.Series(rng.random(n_orders) < p))
        return pick.filter(where) if where is not None else pick

    def delay(df: pl.DataFrame, lo_days: float, hi_days: float, col: str = "purchase") -> pl.Expr:
        d = rng.uniform(lo_days * 86400, hi_days * 86400, df.height).astype(np.int64)
        return pl.col(col) + pl.duration(seconds=pl.Series(d))

    shipped = pl.col("status") == "Shipped"
    # feedback, one file per marketplace, dates in the marketplace's format
    fb = some(0.01, pl.col("status") != "Pending")
    fb = fb.with_columns(delay(fb, 1, 40).alias("when"), pl.Series("r", rng.integers(1, 6, fb.height)))
    fb = fb.filter(pl.col("when") < CUT).with_columns(
        pl.Series("removed", rng.random(fb.filter(pl.col("when") < CUT).height) < 0.03)
    )
    for i, (_, _, code, _) in enumerate(MARKETS):
        part = fb.filter(pl.col("market") == i)
        fmt = "%-m/%-d/%y" if code == "US" else "%-d/%-m/%y"
        _write_tsv(
            part.select(
                pl.col("when").dt.strftime(fmt).alias("Date"),
                pl.col("r").cast(pl.String).alias("Rating"),
                pl.when(pl.col("r") <= 2)
                .then(pl.lit("arrived late"))
                .otherwise(pl.lit("great"))
                .alias("Comments"),
                pl.lit("").alias("Your Response"),
                pl.col("order_id").alias("Order ID"),
                pl.lit("buyer@example.com").alias("Rater Email"),
                pl.when(pl.col("removed")).then(pl.lit("true")).otherwise(pl.lit("")).alias("Removed"),
            ),
            out / f"Feedback_{code}.txt",
            FEEDBACK_HEADER,
        )
    # claims and chargebacks
    cl = some(0.003, pl.col("status") != "Pending")
    cl = cl.with_columns(delay(cl, 3, 60).alias("when")).filter(pl.col("when") < CUT)
    cl.select(
        pl.col("order_id").alias("order-id"),
        _iso(pl.col("when")).alias("claim-date"),
        pl.lit("not-received").alias("claim-reason"),
        pl.Series(
            rng.choice(["granted", "denied", "under-review", "withdrawn", "seller-funded"], cl.height)
        ).alias("claim-status"),
        pl.lit("20.00").alias("claim-amount"),
    ).write_csv(out / "a-to-z-claims.csv")
    cb = some(0.001, pl.col("status") != "Pending")
    cb = cb.with_columns(delay(cb, 10, 70).alias("when")).filter(pl.col("when") < CUT)
    cb.select(
        pl.col("order_id").alias("order-id"),
        _iso(pl.col("when")).alias("chargeback-date"),
        pl.lit("item not received").alias("reason"),
        pl.Series(rng.choice(["service", "fraud"], cb.height, p=[0.7, 0.3])).alias("category"),
        pl.Series(rng.choice(["open", "seller-won", "seller-lost", "amazon-funded"], cb.height)).alias(
            "status"
        ),
    ).write_csv(out / "chargebacks.csv")
    # MFN shipments: one package per shipped MFN order (some late, some untracked)
    sh = orders.filter(pl.col("mfn") & shipped)
    m = sh.height
    ship_by = (pl.col("purchase").dt.date() + pl.duration(days=2)).cast(pl.Date)
    sh = sh.with_columns(
        ship_by.alias("ship_by"),
        delay(sh, 0.05, 3.2).alias("ship"),
        pl.Series("late_d", rng.uniform(0.5, 8, m)),
        pl.Series("valid", rng.random(m) < 0.97),
        pl.Series("carrier", rng.choice(["UPS", "USPS", "FedEx"], m)),
    ).with_columns(
        (pl.col("ship") + pl.duration(seconds=(pl.col("late_d") * 86400).cast(pl.Int64))).alias("delivery"),
        (pl.col("ship_by") + pl.duration(days=5)).cast(pl.Date).alias("deliver_by"),
    )
    sh.filter(pl.col("ship") < CUT).select(
        pl.col("order_id").alias("order-id"),
        pl.col("ship_by").dt.strftime("%Y-%m-%d").alias("latest-ship-date"),
        _iso(pl.col("ship")).alias("ship-date"),
        pl.col("carrier").alias("carrier-code"),
        pl.format("1Z{}", pl.col("o")).alias("tracking-number"),
        pl.when(pl.col("valid")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("tracking-valid"),
        pl.col("deliver_by").dt.strftime("%Y-%m-%d").alias("latest-delivery-date"),
        pl.when(pl.col("delivery") < CUT)
        .then(_iso(pl.col("delivery")))
        .otherwise(None)
        .alias("delivery-date"),
    ).write_csv(out / "mfn-shipments.csv")
    # cancellations of the cancelled MFN orders
    ca = orders.filter(pl.col("mfn") & (pl.col("status") == "Cancelled"))
    ca.with_columns(
        delay(ca, 0.01, 1).alias("when"),
        pl.Series(rng.choice(["buyer", "seller", "system"], ca.height, p=[0.7, 0.2, 0.1])).alias(
            "requested-by"
        ),
    ).filter(pl.col("when") < CUT).select(
        pl.col("order_id").alias("order-id"), _iso(pl.col("when")).alias("cancel-date"), "requested-by"
    ).write_csv(out / "cancellations.csv")
    # returns
    fr = some(0.03, ~pl.col("mfn") & shipped)
    fr = fr.with_columns(delay(fr, 5, 45).alias("when")).filter(pl.col("when") < CUT)
    _write_tsv(
        fr.select(
            _iso(pl.col("when")).alias("return-date"),
            pl.col("order_id").alias("order-id"),
            pl.lit("SKU-0001").alias("sku"),
            pl.lit("PHX7").alias("fulfillment-center-id"),
            pl.lit("1").alias("quantity"),
            pl.lit("SELLABLE").alias("detailed-disposition"),
            pl.lit("UNWANTED_ITEM").alias("reason"),
        ),
        out / "fba-returns.txt",
        FBA_RETURNS_HEADER,
    )
    mr = some(0.03, pl.col("mfn") & shipped)
    mr = mr.with_columns(delay(mr, 5, 45).alias("when")).filter(pl.col("when") < CUT)
    _write_tsv(
        mr.select(
            pl.col("order_id").alias("Order ID"),
            _iso(pl.col("when")).alias("Return request date"),
            pl.lit("Approved").alias("Return request status"),
            pl.lit("1").alias("Return quantity"),
            pl.when(pl.col("o") % 3 == 0)
            .then(pl.lit("0"))
            .otherwise(pl.lit("12.99"))
            .alias("Refunded Amount"),
        ),
        out / "mfn-returns.txt",
        MFN_RETURNS_HEADER,
    )
    # buyer messages and business invoices
    ms = some(0.04, pl.col("status") != "Pending")
    ms = ms.with_columns(delay(ms, 0.5, 5).alias("received"))
    ms = ms.with_columns(delay(ms, 0.01, 1.6, "received").alias("responded")).filter(pl.col("received") < CUT)
    ms.select(
        pl.format("T{}", pl.col("o")).alias("thread-id"),
        pl.col("order_id").alias("order-id"),
        _iso(pl.col("received")).alias("received-at"),
        pl.when(pl.col("responded") < CUT)
        .then(_iso(pl.col("responded")))
        .otherwise(None)
        .alias("responded-at"),
    ).write_csv(out / "buyer-messages.csv")
    inv = some(0.93, pl.col("business") & shipped)
    inv.with_columns(delay(inv, 0.2, 3).alias("when")).filter(pl.col("when") < CUT).select(
        pl.col("order_id").alias("order-id"), _iso(pl.col("when")).alias("invoice-uploaded-at")
    ).write_csv(out / "business-invoices.csv")
    return {"orders": n_orders, "items": n}


# ----------------------------------------------------------------------------- the ODR three ways


def odr_window(as_of: dt.date) -> tuple[dt.date, dt.date]:
    last = as_of - dt.timedelta(days=15)
    return last - dt.timedelta(days=59), last


MARKET_CASE = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SALES_CHANNEL_TO_ID.items())


def duckdb_odr(folder: Path, as_of: dt.date) -> dict:
    """The ODR (orders and defective orders per marketplace and channel) as one SQL query."""
    import duckdb

    first, last = odr_window(as_of)
    end = (as_of + dt.timedelta(days=1)).isoformat()
    f = {p.name: str(p) for p in folder.iterdir()}
    orders = next(v for k, v in f.items() if k.startswith("All_Orders"))
    csv = "header=true, all_varchar=true"
    tsv = f"delim='\t', quote='', escape='', {csv}"
    feedback = " UNION ALL ".join(
        f"SELECT \"Order ID\" AS order_id, '{SALES_CHANNEL_TO_ID[ch]}' AS mkt, "
        f"strptime(\"Date\", '{'%m/%d/%y' if code == 'US' else '%d/%m/%y'}') AS t, "
        f'CAST("Rating" AS INTEGER) AS rating, lower(coalesce("Removed", \'\')) AS removed '
        f"FROM read_csv('{f[f'Feedback_{code}.txt']}', {tsv})"
        for ch, _, code, _ in MARKETS
    )
    sql = f"""
    WITH items AS (
        SELECT "amazon-order-id" AS order_id,
               CASE "sales-channel" {MARKET_CASE} END AS mkt,
               CASE lower("fulfillment-channel") WHEN 'amazon' THEN 'AFN' WHEN 'afn' THEN 'AFN' ELSE 'MFN' END AS channel,
               CAST("purchase-date" AS TIMESTAMPTZ) AS purchase_ts,
               lower("order-status") AS status
        FROM read_csv('{orders}', {tsv})
    ), units AS (
        SELECT order_id, mkt, channel, CAST(min(purchase_ts) AS DATE) AS day, first(status) AS status
        FROM items GROUP BY ALL
    ), fb AS (
        SELECT order_id, mkt, min(t) AS t FROM ({feedback})
        WHERE rating <= 2 AND removed NOT IN ('true', 't', 'yes', 'y', '1') GROUP BY ALL
    ), cl AS (
        SELECT "order-id" AS order_id, min(CAST("claim-date" AS TIMESTAMPTZ)) AS t
        FROM read_csv('{f["a-to-z-claims.csv"]}', {csv})
        WHERE lower("claim-status") NOT IN ('denied', 'withdrawn', 'amazon-funded') GROUP BY ALL
    ), cb AS (
        SELECT "order-id" AS order_id, min(CAST("chargeback-date" AS TIMESTAMPTZ)) AS t
        FROM read_csv('{f["chargebacks.csv"]}', {csv})
        WHERE lower(category) = 'service' AND lower(status) NOT IN ('seller-won', 'amazon-funded') GROUP BY ALL
    )
    SELECT u.mkt, u.channel, count(*) AS orders,
           count(*) FILTER (WHERE least(fb.t, cl.t, cb.t) < TIMESTAMPTZ '{end} 00:00:00+00') AS defective
    FROM units u
    LEFT JOIN fb ON fb.order_id = u.order_id AND fb.mkt = u.mkt
    LEFT JOIN cl ON cl.order_id = u.order_id
    LEFT JOIN cb ON cb.order_id = u.order_id
    WHERE u.status <> 'cancelled' AND u.day BETWEEN DATE '{first}' AND DATE '{last}'
    GROUP BY ALL ORDER BY ALL
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(sql).fetchall()
    return {(mkt, ch): (int(o), int(d)) for mkt, ch, o, d in rows}


_DUCK_TYPES = {"timestamp": "TIMESTAMPTZ", "int": "INTEGER", "float": "DOUBLE"}


def duckdb_typed_read(folder: Path) -> dict:
    """Every column of All Orders the metrics read (the orders kind's columns, from its definition),
    typed, into a DuckDB table: what a cold run must do before any metric, done by the peer."""
    import duckdb

    from analysis.inputs.sources import KINDS

    orders = next(p for p in folder.iterdir() if p.name.startswith("All_Orders"))
    kind = next(k for k in KINDS if k.name == "orders")
    cols = []
    for c in kind.columns:
        cell = f'"{c.header}"'
        if c.parse in _DUCK_TYPES:
            cell = f"TRY_CAST({cell} AS {_DUCK_TYPES[c.parse]})"
        elif c.parse == "token":
            cell = f"lower(trim({cell}))"
        cols.append(f'{cell} AS "{c.field}"')
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"CREATE TEMP TABLE t AS SELECT {', '.join(cols)} FROM read_csv('{orders}', "
        "delim='\t', quote='', escape='', header=true, all_varchar=true)"
    )
    return {"columns": len(cols), "rows": con.execute("SELECT count(*) FROM t").fetchone()[0]}


def floor_read(folder: Path) -> dict:
    """The floor: a bare polars read of the columns the ODR needs, typed (no validation)."""
    f = {p.name: p for p in folder.iterdir()}
    orders = next(v for k, v in f.items() if k.startswith("All_Orders"))
    tsv = {"separator": "\t", "quote_char": None, "infer_schema": False}
    o = pl.read_csv(
        orders,
        columns=["amazon-order-id", "purchase-date", "order-status", "fulfillment-channel", "sales-channel"],
        **tsv,
    ).with_columns(pl.col("purchase-date").str.to_datetime("%Y-%m-%dT%H:%M:%S%#z", time_zone="UTC"))
    fb = pl.concat(
        [
            pl.read_csv(f[f"Feedback_{c}.txt"], columns=["Order ID", "Date", "Rating", "Removed"], **tsv)
            for *_, c, _ in MARKETS
        ]
    )
    cl = pl.read_csv(
        f["a-to-z-claims.csv"], columns=["order-id", "claim-date", "claim-status"], infer_schema=False
    )
    cb = pl.read_csv(
        f["chargebacks.csv"],
        columns=["order-id", "chargeback-date", "category", "status"],
        infer_schema=False,
    )
    return {
        "orders rows": o.height,
        "feedback rows": fb.height,
        "claims rows": cl.height,
        "chargebacks rows": cb.height,
    }


def odr_of_document(doc: dict) -> dict:
    out = {}
    for pm in doc["performanceMetrics"]:
        for ch in ("afn", "mfn"):
            o = pm["orderDefectRate"][ch]
            if o["orderCount"]:
                out[(pm["marketplaceId"], ch.upper())] = (o["orderCount"], o["orderWithDefects"]["count"])
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- subprocess runs

_CHILD = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], capture_output=True)
s = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
peak, cpu = u.ru_maxrss * 1024, u.ru_utime + u.ru_stime
sys.stdout.buffer.write(json.dumps({"seconds": s, "peak": peak, "cpu": cpu, "rc": r.returncode,
    "err": r.stderr.decode(errors="replace")[-2000:]}).encode() + b"\\n")
sys.stdout.buffer.write(r.stdout)
"""


def run_cli(args: list[str], env: dict) -> tuple[float, float, int, bytes]:
    """Seconds, CPU seconds, peak RSS (bytes) and stdout of `python -m analysis ARGS`, measured by
    a fresh helper process so that RUSAGE_CHILDREN is this command's alone."""
    cmd = [sys.executable, "-c", _CHILD, sys.executable, "-m", "analysis", *args]
    r = subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT, check=True)
    head, _, body = r.stdout.partition(b"\n")
    info = json.loads(head)
    if info["rc"] != 0:
        raise SystemExit(f"`analysis {' '.join(args)}` failed ({info['rc']}): {info['err']}")
    return info["seconds"], info["cpu"], info["peak"], body


def timed(fn):
    """(result, seconds, CPU seconds of this process's threads)."""
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    return out, s, (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000, help="order items (rows of All Orders)")
    ap.add_argument("--history-days", type=int, default=365)
    ap.add_argument(
        "--folder", type=Path, help="write the exports here (kept, and reused when they hold --items)"
    )
    ap.add_argument(
        "--exports",
        type=Path,
        help="time the exports already in this folder (as written by an earlier run); nothing is generated",
    )
    args = ap.parse_args()
    if args.exports and not (args.exports / "a-to-z-claims.csv").exists():
        raise SystemExit(f"{args.exports} holds no exports written by this benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.exports or args.folder or Path(tmp) / "exports"
        marker = folder / ".generated.json"
        if args.exports is None and not (
            marker.exists() and json.loads(marker.read_text()).get("items_asked") == args.items
        ):
            folder.mkdir(parents=True, exist_ok=True)
            info, s, _ = timed(lambda: generate(folder, args.items))
            marker.write_text(json.dumps({"items_asked": args.items, **info}))
            print(f"generated {info['items']:,} order items ({info['orders']:,} orders) in {s:.1f} s")
        size = sum(p.stat().st_size for p in folder.iterdir() if not p.name.startswith(".")) / 1e6
        print(
            f"exports: {folder} ({size:,.0f} MB); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
        )
        env = {**os.environ, "AH_CACHE_DIR": str(Path(tmp) / "cache")}  # a fresh cache: the first run is cold
        day = END.isoformat()
        rows: list[tuple[str, float, float, int | None, dict | None]] = []

        counts, floor, floor_cpu = timed(lambda: floor_read(folder))
        rows.append(("floor: bare polars read of the ODR columns", floor, floor_cpu, None, None))
        duck, duck_s, duck_cpu = timed(lambda: duckdb_odr(folder, END))
        rows.append(("DuckDB SQL: the ODR, one query", duck_s, duck_cpu, None, duck))
        typed, typed_s, typed_cpu = timed(lambda: duckdb_typed_read(folder))
        rows.append(
            (f"DuckDB: All Orders' {typed['columns']} metric columns typed", typed_s, typed_cpu, None, None)
        )
        metrics = ["metrics", "--data", str(folder), "--as-of", day]
        for label in ("metrics, every metric (cold: no cache)", "metrics again (cache warm)"):
            s, cpu, peak, out = run_cli(metrics, env)
            rows.append((label, s, cpu, peak, odr_of_document(json.loads(out))))
        first = (END - dt.timedelta(days=args.history_days - 1)).isoformat()
        for label, lo in (
            (f"history, {args.history_days} days (warm)", first),
            ("history, one as-of day (warm)", day),
        ):
            s, cpu, peak, out = run_cli(
                ["history", "--data", str(folder), "--from", lo, "--to", day, "--format", "json"], env
            )
            card = [
                r for r in json.loads(out) if r["as_of"] == day and r["metric"].startswith("orderDefectRate")
            ]
            hist = {
                (r["marketplace_id"], r["metric"][-3:].upper()): (r["denominator"], r["numerator"])
                for r in card
            }
            rows.append((label, s, cpu, peak, dict(sorted(hist.items()))))

        print(
            f"{'step':<42} {'seconds':>8} {'/floor':>7} {'/duckdb':>8} {'cpu s':>7} {'/floor':>7} {'/duckdb':>8} "
            f"{'peak MB':>8}  ODR (orders/defective per marketplace and channel)"
        )
        for label, s, cpu, peak, odr in rows:
            mem = f"{peak / 2**20:8.0f}" if peak else f"{'':>8}"
            shown = "  ".join(f"{k[0][:4]}/{k[1]} {v[0]:,}/{v[1]:,}" for k, v in (odr or {}).items())
            print(
                f"{label:<42} {s:8.2f} {s / floor:6.2f}x {s / duck_s:7.2f}x {cpu:7.2f} {cpu / floor_cpu:6.2f}x "
                f"{cpu / duck_cpu:7.2f}x {mem}  {shown}"
            )
        print(
            f"\nfloor read: {', '.join(f'{k} {v:,}' for k, v in counts.items())}; DuckDB typed read {typed['rows']:,} rows"
        )
        agree = all(odr == duck for *_, odr in rows if odr is not None)
        print("ODR counts agree exactly: " + ("yes" if agree else "NO"))
        cold, warm, h365, h1 = rows[3], rows[4], rows[5], rows[6]
        print(
            f"targets: cold {cold[1] / duck_s:.2f}x DuckDB (<= 1.5x; CPU {cold[2] / duck_cpu:.2f}x), "
            f"peak {cold[3] / 2**30:.2f} GB (<= 3 GB), warm {warm[1] / floor:.2f}x the floor (<= 1x; "
            f"CPU {warm[2] / floor_cpu:.2f}x), history {h365[1] / h1[1]:.2f}x one day (<= 3x; CPU {h365[2] / h1[2]:.2f}x)\n"
            f"for scale: DuckDB's own typed read of the metric columns of All Orders is {typed_s / duck_s:.2f}x "
            f"its ODR query (CPU {typed_cpu / duck_cpu:.2f}x)"
        )
        if not agree:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
