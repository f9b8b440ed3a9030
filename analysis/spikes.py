"""Spike detection for a proportion under varying daily volume (spike-statistics.md).

Series: per marketplace and channel, defects by the day they *arrived* (what is known in real
time, with the account's own order volume as exposure) and by *order day* (order-correlated like
the ODR, incomplete for recent days: `nowcast` divides by the share of defects that have arrived
at that age, estimated from the account's own delays).

Detectors, each against each day's baseline from the account's own history (`baseline_rates`):
the moving-window GLR (the most powerful in the evaluation), binomial CUSUM, exact-binomial
p-chart, EWMA with exact variance, and Laney's p' chart. Every threshold was calibrated with
benchmarks/spike_eval.py to at most 1 false alarm per account-year (README: "Spike detection").
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.stats import binom, poisson

from analysis import defects as dfx
from analysis.sources import Dataset

BASELINE_DAYS = 91
BASELINE_LAG = 28
EXPOSURE_DAYS = 28
LANEY_MIN_EXPECTED = 5.0
ORDER_MIN_SHARE = 0.02  # order basis: days with less of their defects arrived are not tested (but
# they count in the GLR's windows, which are at least `order_glr_min_window` order days long)


@dataclass(frozen=True)
class Settings:
    """Detector settings. The thresholds are those benchmarks/spike_eval.py calibrates to at most
    1 false alarm per account-year at every volume (rounded to the stricter side); the GLR, the
    most powerful there, is the one to watch."""

    pchart_alpha: float = 0.0033
    order_pchart_alpha: float = 0.0012  # the order basis tests the last 7 order days every day
    cusum_ratio: float = 3.0  # p1 = ratio * p0
    cusum_h: float = 4.2
    ewma_lambda: float = 0.2
    ewma_l: float = 5.4
    laney_k: float = 2.1
    glr_window: int = 7
    glr_h: float = 5.0
    # order basis: windows of 4 to 7 order days, the 4-day one (a bad batch found within 3 days
    # of its first order day) at order_glr_h, longer ones need order_glr_penalty more
    order_glr_min_window: int = 4
    order_glr_penalty: float = 2.5
    order_glr_h: float = 3.8
    naive_days: int = 7
    naive_target: float = 0.01


DETECTORS = ("glr", "cusum", "p-chart", "ewma", "laney")


# ----------------------------------------------------------------------------- detectors


def pchart(d: np.ndarray, n: np.ndarray, p0, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial upper-tail p-value P(X >= d_t | n_t, p0) per day; alarm when < alpha."""
    p = np.where(d > 0, binom.sf(d - 1, np.maximum(np.rint(n), 1), p0), 1.0)
    return p, p < alpha


def cusum(d: np.ndarray, n: np.ndarray, p0, ratio: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Binomial CUSUM S_t = max(0, S_{t-1} + d ln(p1/p0) + (n-d) ln((1-p1)/(1-p0))), p1 = ratio p0;
    restarts at 0 after an alarm. `p0` may vary by day (expected share already arrived)."""
    p0 = np.broadcast_to(np.asarray(p0, dtype=float), d.shape)
    p1 = np.minimum(ratio * p0, 0.999)
    a, b = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
    s = np.zeros(len(d))
    alarm = np.zeros(len(d), dtype=bool)
    prev = 0.0
    for t in range(len(d)):
        cur = max(0.0, prev + d[t] * a[t] + (n[t] - d[t]) * b[t])
        s[t] = cur
        if cur >= h:
            alarm[t] = True
            cur = 0.0
        prev = cur
    return s, alarm


def ewma(d: np.ndarray, n: np.ndarray, p0, lam: float, L: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EWMA Z_t = lam p_t + (1 - lam) Z_{t-1}, Z_0 = p0, with the exact variance under H0 for
    varying n: Var(Z_t) = p0 (1 - p0) sum_i lam^2 (1 - lam)^(2 (t - i)) / n_i; alarm when
    Z_t > p0 + L sqrt(Var). With a daily p0 it smooths the deviations p_t - p0_t the same way.
    Returns Z, upper limit, alarm."""
    p0 = np.broadcast_to(np.asarray(p0, dtype=float), d.shape)
    z = np.zeros(len(d))
    ucl = np.zeros(len(d))
    dev, var_sum = 0.0, 0.0
    for t in range(len(d)):
        rate = d[t] / n[t] if n[t] > 0 else p0[t]
        dev = lam * (rate - p0[t]) + (1 - lam) * dev
        var_sum = var_sum * (1 - lam) ** 2 + (lam**2 * p0[t] * (1 - p0[t]) / n[t] if n[t] > 0 else 0.0)
        z[t] = p0[t] + dev
        ucl[t] = p0[t] + L * math.sqrt(var_sum)
    return z, ucl, z > ucl


def laney(
    d: np.ndarray, n: np.ndarray, p0, k: float, sigma_z: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Laney p' chart: z_t = (p_t - p0) / sqrt(p0 (1 - p0) / n_t), scaled by sigma_z =
    mean moving range of z / 1.128 (never below 1, so it only widens limits under overdispersion)."""
    nn = np.maximum(n, 1)
    z = (d / nn - p0) / np.sqrt(p0 * (1 - p0) / nn)
    if sigma_z is None:
        mr = np.abs(np.diff(z))
        sigma_z = max(1.0, float(np.mean(mr)) / 1.128) if len(mr) else 1.0
    zp = z / sigma_z
    high_volume = nn * np.asarray(p0) >= LANEY_MIN_EXPECTED  # the normal approximation needs counts
    return zp, (zp > k) & high_volume, sigma_z


def glr(d: np.ndarray, n: np.ndarray, p0, window: int, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Moving-window generalized likelihood ratio (a scan statistic): for each day, the largest
    over the windows ending that day (1 to `window` days) of the Poisson log-likelihood ratio of
    "the rate rose by the factor k = D / E" against "no change", D the defects and E = sum n p0 the
    expected defects of the window: D ln(D / E) - (D - E) when D > E, else 0. It needs no guess of
    the spike's size (the CUSUM assumes one) and forgets a spike once it has left the window.
    spike-statistics.md cites the Bernoulli GLR moving-window chart beating CUSUM and EWMA."""
    stat, _ = glr_windows(d, n, p0, window)
    return stat, stat >= h


def glr_windows(
    d: np.ndarray, n: np.ndarray, p0, window: int, *, min_window: int = 1, penalty: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The GLR statistic per day and the length (days) of the window that gives it: windows of
    `min_window` to `window` days ending that day (along the first axis: 2-D arrays are several
    series side by side), those longer than `min_window` with `penalty` deducted."""
    d = np.asarray(d, dtype=float)
    e = np.broadcast_to(np.asarray(p0, dtype=float), d.shape) * np.asarray(n, dtype=float)
    zero = np.zeros((1,) + d.shape[1:])
    cd = np.concatenate([zero, np.cumsum(d, axis=0)])
    ce = np.concatenate([zero, np.cumsum(e, axis=0)])
    stat = np.zeros(d.shape)
    best = np.full(d.shape, min_window, dtype=int)
    for w in range(min_window, window + 1):
        t = np.arange(w - 1, len(d))
        g = poisson_glr(cd[t + 1] - cd[t + 1 - w], ce[t + 1] - ce[t + 1 - w]) - (
            penalty if w > min_window else 0.0
        )
        better = g > stat[t]
        stat[t] = np.where(better, g, stat[t])
        best[t] = np.where(better, w, best[t])
    return stat, best


def poisson_glr(big_d: np.ndarray, big_e: np.ndarray) -> np.ndarray:
    """Poisson log-likelihood ratio of D defects where E were expected, the rate's factor set to
    its estimate D / E (only rises count): D ln(D / E) - (D - E) when D > E, else 0."""
    big_e = np.maximum(big_e, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(big_d > big_e, big_d * np.log(big_d / big_e) - (big_d - big_e), 0.0)


def naive(d: np.ndarray, n: np.ndarray, days: int, target: float) -> np.ndarray:
    """The rule sellers use: short-term rate above target."""
    dd = np.convolve(d, np.ones(days), "full")[: len(d)]
    nn = np.convolve(n, np.ones(days), "full")[: len(n)]
    return np.where(nn > 0, dd / np.maximum(nn, 1e-9), 0) > target


# ----------------------------------------------------------------------------- series


# the channel as the series name it: AFN (FBA) or MFN (seller-fulfilled)
_CH = pl.when(pl.col("channel").str.contains("MFN")).then(pl.lit("MFN")).otherwise(pl.lit("AFN")).alias("ch")


def daily_series(data: Dataset, as_of: dt.date) -> pl.DataFrame:
    """Per marketplace, channel and day: orders, ODR defects by arrival day, ODR defects by order
    day (known on `as_of`), exposure (mean daily orders of the 28 days before)."""
    t = dfx.defect_table(data, as_of)
    odr = t.filter(pl.col("why_not_counted").is_null() | pl.col("why_not_counted").str.contains("window"))
    odr = odr.filter(pl.col("defect_kind") != "return").with_columns(_CH)
    first_arrival = odr.group_by("order_id", "marketplace_id", "ch").agg(
        pl.col("defect_date").min(), pl.col("purchase_day").first()
    )
    facts = dfx.order_facts(data).filter(pl.col("order_status") != "cancelled")
    orders = (
        facts.with_columns(_CH)
        .group_by("marketplace_id", "ch", pl.col("purchase_day").alias("day"))
        .len("orders")
    )
    arrivals = first_arrival.group_by("marketplace_id", "ch", pl.col("defect_date").alias("day")).len(
        "arrived"
    )
    by_order = first_arrival.group_by("marketplace_id", "ch", pl.col("purchase_day").alias("day")).len(
        "by_order_day"
    )
    start = facts["purchase_day"].min()
    days = pl.DataFrame({"day": pl.date_range(start, as_of, "1d", eager=True)})
    keys = orders.select("marketplace_id", "ch").unique()
    grid = keys.join(days, how="cross")
    s = (
        grid.join(orders, on=["marketplace_id", "ch", "day"], how="left")
        .join(arrivals, on=["marketplace_id", "ch", "day"], how="left")
        .join(by_order, on=["marketplace_id", "ch", "day"], how="left")
        .with_columns(pl.col("orders", "arrived", "by_order_day").fill_null(0))
        .sort("marketplace_id", "ch", "day")
    )
    s = s.with_columns(
        pl.col("orders")
        .shift(1)
        .rolling_mean(EXPOSURE_DAYS, min_samples=7)
        .over("marketplace_id", "ch")
        .fill_null(pl.col("orders").cast(pl.Float64))
        .alias("exposure")
    )
    return s.rename({"ch": "channel"})


def delay_distribution(data: Dataset, as_of: dt.date, max_days: int = 120) -> np.ndarray:
    """Empirical CDF F[a] of days from order to first ODR defect, from orders old enough to be
    complete (purchased more than `max_days` before `as_of`), else all."""
    t = dfx.defect_table(data, as_of).filter(pl.col("defect_kind") != "return")
    first = t.group_by("order_id").agg(pl.col("defect_date").min(), pl.col("purchase_day").first())
    old = first.filter(pl.col("purchase_day") <= as_of - dt.timedelta(days=max_days))
    use = old if old.height >= 20 else first
    delays = (use["defect_date"] - use["purchase_day"]).dt.total_days().drop_nulls().to_numpy()
    delays = np.clip(delays, 0, max_days)
    if len(delays) == 0:
        return np.ones(max_days + 1)
    counts = np.bincount(delays.astype(int), minlength=max_days + 1)
    return np.cumsum(counts) / counts.sum()


def nowcast(series: pl.DataFrame, cdf: np.ndarray, as_of: dt.date) -> pl.DataFrame:
    """Order-day defects divided by the share expected to have arrived at their age (F >= 5 %)."""
    age = (pl.lit(as_of) - pl.col("day")).dt.total_days().clip(0, len(cdf) - 1)
    share = age.map_elements(lambda a: float(cdf[int(a)]), return_dtype=pl.Float64)
    return series.with_columns(share.alias("arrived_share")).with_columns(
        pl.when(pl.col("arrived_share") >= 0.05)
        .then(pl.col("by_order_day") / pl.col("arrived_share"))
        .otherwise(None)
        .alias("by_order_day_nowcast")
    )


# ----------------------------------------------------------------------------- alarms


def baseline_rate(d: np.ndarray, n: np.ndarray) -> float:
    """The account's own rate over the baseline days (with a floor of 1 in 10,000 and a prior of
    half a defect, so a spotless history does not make every defect an alarm)."""
    return float(rate_with_prior(d.sum(), n.sum()))


def rate_with_prior(defects, orders):
    """(defects + 1/2) / (orders + 1), kept within [1 in 10,000, 1/2]: the baseline formula."""
    return np.clip((defects + 0.5) / (orders + 1.0), 1e-4, 0.5)


def baseline_rates(
    d: np.ndarray,
    n: np.ndarray,
    usable: np.ndarray | None = None,
    *,
    days: int = BASELINE_DAYS,
    lag: int = BASELINE_LAG,
    min_days: int = 14,
) -> np.ndarray:
    """Each day's baseline: `baseline_rate` over the `days` days that end `lag` days before it,
    so a spike in progress does not raise its own baseline and a day's verdict does not depend
    on the period a report covers. Early in an account's history, when that window holds fewer
    than `min_days` usable days, all usable days before the day are used."""
    usable = np.ones(len(d), dtype=bool) if usable is None else usable
    cd = np.concatenate([[0.0], np.cumsum(np.where(usable, d, 0.0))])
    cn = np.concatenate([[0.0], np.cumsum(np.where(usable, n, 0.0))])
    cu = np.concatenate([[0], np.cumsum(usable)])
    t = np.arange(len(d))
    hi = np.maximum(t - lag, 0)
    lo = np.maximum(hi - days, 0)
    short = cu[hi] - cu[lo] < min_days
    hi = np.where(short, t, hi)
    lo = np.where(short, np.maximum(t - days, 0), lo)
    return rate_with_prior(cd[hi] - cd[lo], cn[hi] - cn[lo])


def detect(
    data: Dataset,
    as_of: dt.date,
    settings: Settings = Settings(),
    *,
    first: dt.date | None = None,
    basis: str = "arrival",
    series: pl.DataFrame | None = None,
) -> list[dict]:
    """Alarms per day and detector for each marketplace and channel, days `first` to `as_of`.

    `basis="arrival"`: defects by the day they arrived, exposure the recent daily volume: what a
    seller sees in real time. `basis="order"`: defects by order day against orders of that day,
    the expectation scaled by the share of defects that has arrived at that age (the nowcast),
    so an order-day spike is dated where it began: the baseline comes from order days with at
    least 20 % of their defects arrived; the p-chart, CUSUM, EWMA and Laney leave out days with
    less than ORDER_MIN_SHARE arrived, while the GLR's windows (4 to 7 order days, the longer
    ones at a penalty: `order_glr_*` settings) count every known defect. An alarm on the last
    day is what a daily run would raise that day; benchmarks/spike_eval.py measures the order
    basis so, each day on the days known then.
    """
    s = series if series is not None else daily_series(data, as_of)
    first = first or as_of - dt.timedelta(days=27)
    table = dfx.defect_table(data, as_of).filter(pl.col("defect_kind") != "return")
    order = basis == "order"
    cdf = delay_distribution(data, as_of) if order else None
    alarms: list[dict] = []
    for (mkt, ch), g in s.group_by("marketplace_id", "channel", maintain_order=True):
        g = g.sort("day")
        days = g["day"].to_list()
        if order:
            d = g["by_order_day"].to_numpy().astype(float)
            n = g["orders"].to_numpy().astype(float)
            share = np.array([cdf[min((as_of - day).days, len(cdf) - 1)] for day in days])
        else:
            d = g["arrived"].to_numpy().astype(float)
            n = np.maximum(g["exposure"].to_numpy(), 1.0)
            share = np.ones(len(days))
        usable = (n > 0) & (share >= 0.2)
        tested = (n > 0) & (share >= ORDER_MIN_SHARE)
        p0 = baseline_rates(d, n * share, usable)
        p0_t = np.clip(p0 * share, 1e-6, 0.5)
        volume = np.where(n > 0, np.maximum(n, 1.0), 0.0)
        # the order basis's GLR windows are long enough to hold the youngest days too; days not
        # tested weigh nothing in the other detectors
        glr_stat, glr_width = glr_windows(
            d,
            volume,
            p0_t,
            settings.glr_window,
            min_window=settings.order_glr_min_window if order else 1,
            penalty=settings.order_glr_penalty if order else 0.0,
        )
        d_tested, n_tested = np.where(tested, d, 0.0), np.where(tested, volume, 0.0)
        base = np.array([day < first for day in days]) & usable
        if base.sum() < 14:
            base = usable
        sz = laney(
            d_tested[base][-BASELINE_DAYS:], n_tested[base][-BASELINE_DAYS:], p0_t[base][-BASELINE_DAYS:], 1.0
        )[2]
        pvals = pchart(d_tested, n_tested, p0_t, 1.0)[0]
        results = {
            "p-chart": (pvals, pvals < (settings.order_pchart_alpha if order else settings.pchart_alpha)),
            "cusum": cusum(d_tested, n_tested, p0_t, settings.cusum_ratio, settings.cusum_h),
            "ewma": (lambda r: (r[0], r[2]))(
                ewma(d_tested, n_tested, p0_t, settings.ewma_lambda, settings.ewma_l)
            ),
            "laney": laney(d_tested, n_tested, p0_t, settings.laney_k, sz)[:2],
            "glr": (glr_stat, glr_stat >= (settings.order_glr_h if order else settings.glr_h)),
        }
        drivers: dict[dt.date, dict] = {}  # one lookup per alarm day, shared by its detectors
        for det, (stat, alarm) in results.items():
            # the defects and expectation each detector saw: the GLR's include the untested days
            dd, ee = (d, volume * p0_t) if det == "glr" else (d_tested, n_tested * p0_t)
            for i, day in enumerate(days):
                if day < first or not alarm[i] or not (tested[i] or det == "glr"):
                    continue
                # the GLR speaks for its window: the defects and expectation of those days
                w = int(glr_width[i]) if det == "glr" else 1
                obs, exp_ = float(dd[i - w + 1 : i + 1].sum()), float(ee[i - w + 1 : i + 1].sum())
                p_value = float(poisson.sf(obs - 1, exp_)) if det == "glr" else float(pvals[i])
                if day not in drivers:
                    drivers[day] = _drivers(table, mkt, ch, day, basis)
                alarms.append(
                    {
                        "date": day.isoformat(),
                        "marketplaceId": mkt,
                        "channel": ch,
                        "detector": det,
                        "basis": basis,
                        "windowStart": days[i - w + 1].isoformat(),
                        "observed": int(obs),
                        "expected": exp_,
                        "pValue": p_value,
                        "statistic": float(stat[i]),
                        "baselineRate": float(p0[i]),
                        "orders": float(n[i]),
                        "drivers": drivers[day],
                    }
                )
    return sorted(alarms, key=lambda a: (a["date"], a["marketplaceId"], a["channel"], a["detector"]))


def defects_behind(
    table: pl.DataFrame, mkt: str, ch: str, day: dt.date, basis: str = "arrival"
) -> pl.DataFrame:
    """The defects behind an alarm on `day`: those that arrived in the 7 days up to it, or
    (order basis) those of the orders placed in those 7 days."""
    col = "defect_date" if basis == "arrival" else "purchase_day"
    return table.filter(
        (pl.col("marketplace_id") == mkt)
        & pl.col("channel").str.contains(ch)
        & pl.col(col).is_between(day - dt.timedelta(days=6), day)
    )


def _drivers(table: pl.DataFrame, mkt: str, ch: str, day: dt.date, basis: str = "arrival") -> dict:
    """Causes, SKUs and carriers of the defects behind an alarm (`defects_behind`)."""
    w = defects_behind(table, mkt, ch, day, basis)

    def top(col: str) -> list[dict]:
        c = w.group_by(col).len().sort(["len", col], descending=[True, False]).head(3)
        return [{"value": str(r[0]), "defects": int(r[1])} for r in c.iter_rows()]

    return {"causes": top("cause"), "skus": top("sku"), "carriers": top("carrier")}


def explain(observed: int, orders: int, target: float, p_value: float | None, status: str) -> str:
    """The sentence a seller understands, for a rate's volume-aware status."""
    noun = "defect" if observed == 1 else "defects"
    head = f"{observed} {noun} in {orders} orders"
    if orders == 0:
        return "No orders in the window."
    if status == "GOOD":
        return f"{head}: under target."
    if status == "AT_RISK":
        return f"{head}: above target, but at this volume not a sign of a problem; p = {p_value:.2f}."
    return f"{head}: above target, and too many to be chance at this volume; p = {p_value:.3g}."
