"""Spike detection for a proportion under varying daily volume (spike-statistics.md).

Series: per marketplace and channel, defects by the day they *arrived* (what is known in real
time, with the account's own order volume as exposure) and by *order day* (order-correlated like
the ODR, incomplete for recent days: `nowcast` divides by the share of defects that have arrived
at that age, estimated from the account's own delays).

Detectors, each against each day's baseline from the account's own history (`baseline_rates`):
the moving-window GLR (the most powerful in the evaluation), binomial CUSUM, exact-binomial
p-chart, EWMA with exact variance, and Laney's p' chart. Every threshold was calibrated with
benchmarks/spike_eval.py to at most 1 false alarm per account-year (README: "Spike detection").

Incidents (`incidents`: what the weekly report shows). A user sees the union of the alarms of
every detector over every series of the account: each detector at 1 false alarm a year per
series added up to about 9 false episodes per account-year on simulated accounts of 2-4
series (benchmarks/spike_eval.py, part 4), most in the first month of an account's data. So:

- Two tests only, both two-sample GLRs (`poisson_glr2`): the arrival GLR (windows of 1 to 7
  arrival days, for defects that arrive together: a carrier losing a week of parcels) and the
  order-day GLR (`_order_scan`: windows of 1 to 7 order days at most 14 days old, with the
  defects of those orders known each day: a bad batch, whose defects arrive over weeks and are
  thin on any arrival day). Their thresholds (`incident_*` settings) are set for the union over
  all of an account's series: at most 1 false incident per account-year.
- A short history raises the bar by itself, through the statistic, not a separate rule: the
  two-sample GLR counts the defects behind the baseline as a sample too, so with few of them
  (a short history, or a low volume) the same excess scores lower, as if the threshold rose with
  the baseline's uncertainty. Incidents are therefore shown from the start, and flagged
  `learning` with the days of history while the baseline holds fewer than
  `incident_learning_days`. The arrival baseline also allows for the first weeks of data,
  whose arrivals lack the defects of orders placed before the data begin
  (`_arrival_expectation`): counted as they were, they made the first month's baseline too low.
- An incident is one episode in one marketplace-channel series: alarm days with at most one
  quiet day between (`incident_gap_days`), or whose window reaches back to the incident's last
  alarm day, are merged (`incident_runs`). Its days run from the earliest window start to the
  last alarm day; its observed and expected defects are those days' (arrival basis: arrived on
  them; order basis: of the orders placed on them, as known now), and an incident without more
  defects than expected is never returned.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis.inputs.sources import Dataset
from analysis.insights import defects as dfx
from analysis.metrics.settings import SpikeSettings
from analysis.metrics.stats import binom_sf, poisson_sf

BASELINE_DAYS = 91
BASELINE_LAG = 28
EXPOSURE_DAYS = 28
LANEY_MIN_EXPECTED = 5.0
ORDER_MIN_SHARE = 0.02  # order basis: days with less of their defects arrived are not tested (but
# they count in the GLR's windows, which are at least `order_glr_min_window` order days long)


# The detector settings live with the run's settings (a run's [spikes] table); the name
# `spikes.Settings` stays for the notebooks and benchmarks that use it.
Settings = SpikeSettings
DEFAULTS = SpikeSettings()  # for callers without a run (benchmarks, tests); runs pass their own


DETECTORS = ("glr", "cusum", "p-chart", "ewma", "laney")


# ----------------------------------------------------------------------------- detectors


def pchart(d: np.ndarray, n: np.ndarray, p0, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial upper-tail p-value P(X >= d_t | n_t, p0) per day; alarm when < alpha."""
    p = np.where(d > 0, binom_sf(d - 1, np.maximum(np.rint(n), 1), p0), 1.0)
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
    d: np.ndarray,
    n: np.ndarray,
    p0,
    window: int,
    *,
    min_window: int = 1,
    penalty: float = 0.0,
    baseline_defects: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The GLR statistic per day and the length (days) of the window that gives it: windows of
    `min_window` to `window` days ending that day (along the first axis: 2-D arrays are several
    series side by side), those longer than `min_window` with `penalty` deducted. With
    `baseline_defects` (per day, the defects behind the baseline of the window's last day) the
    two-sample GLR (`poisson_glr2`), which counts the baseline's own uncertainty."""
    d = np.asarray(d, dtype=float)
    e = np.broadcast_to(np.asarray(p0, dtype=float), d.shape) * np.asarray(n, dtype=float)
    k = None if baseline_defects is None else np.broadcast_to(baseline_defects, d.shape)
    zero = np.zeros((1,) + d.shape[1:])
    cd = np.concatenate([zero, np.cumsum(d, axis=0)])
    ce = np.concatenate([zero, np.cumsum(e, axis=0)])
    stat = np.zeros(d.shape)
    best = np.full(d.shape, min_window, dtype=int)
    for w in range(min_window, window + 1):
        t = np.arange(w - 1, len(d))
        big_d, big_e = cd[t + 1] - cd[t + 1 - w], ce[t + 1] - ce[t + 1 - w]
        g = (poisson_glr(big_d, big_e) if k is None else poisson_glr2(big_d, big_e, k[t])) - (
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


def poisson_glr2(big_d: np.ndarray, big_e: np.ndarray, big_k: np.ndarray) -> np.ndarray:
    """The two-sample Poisson log-likelihood ratio: D defects in the window, K behind the
    baseline, E the window's expectation at the baseline's rate (so the window's exposure is E/K
    times the baseline's). Under "no change" both share one rate, estimated from both:
    D0 = (D + K) E / (E + K) and K0 = (D + K) K / (E + K) expected; the statistic is
    D ln(D / D0) + K ln(K / K0) when D > E, else 0. It tends to `poisson_glr` as K grows and is
    smaller when the baseline holds few defects (a short history, or a low volume): the
    baseline's own uncertainty raises the bar."""
    big_e = np.maximum(big_e, 1e-12)
    big_k = np.maximum(big_k, 1e-12)
    total = big_d + big_k
    with np.errstate(divide="ignore", invalid="ignore"):
        window = np.where(big_d > 0, big_d * np.log(big_d * (big_e + big_k) / (total * big_e)), 0.0)
        base = big_k * np.log((big_e + big_k) / total)
    return np.where(big_d > big_e, window + base, 0.0)


def naive(d: np.ndarray, n: np.ndarray, days: int, target: float) -> np.ndarray:
    """The rule sellers use: short-term rate above target."""
    dd = np.convolve(d, np.ones(days), "full")[: len(d)]
    nn = np.convolve(n, np.ones(days), "full")[: len(n)]
    return np.where(nn > 0, dd / np.maximum(nn, 1e-9), 0) > target


# ----------------------------------------------------------------------------- series


# the channel as the series name it: AFN (FBA) or MFN (seller-fulfilled)
_CH = pl.when(pl.col("channel").str.contains("MFN")).then(pl.lit("MFN")).otherwise(pl.lit("AFN")).alias("ch")


def first_arrivals(data: Dataset, as_of: dt.date) -> pl.DataFrame:
    """One row per order with an ODR defect known on `as_of`: its marketplace, channel (`ch`),
    order day and the day its first defect arrived (the unit every spike series counts)."""
    t = dfx.defect_table(data, as_of)
    odr = t.filter(pl.col("why_not_counted").is_null() | pl.col("why_not_counted").str.contains("window"))
    odr = odr.filter(pl.col("defect_kind") != "return").with_columns(_CH)
    return odr.group_by("order_id", "marketplace_id", "ch").agg(
        pl.col("defect_date").min(), pl.col("purchase_day").first()
    )


def with_exposure(s: pl.DataFrame, by: tuple[str, str] = ("marketplace_id", "channel")) -> pl.DataFrame:
    """Add `exposure`: the mean daily orders of the 28 days before each day, per series (the
    day's own orders while fewer than 7 days came before). `s` is sorted by series and day."""
    return s.with_columns(
        pl.col("orders")
        .shift(1)
        .rolling_mean(EXPOSURE_DAYS, min_samples=7)
        .over(*by)
        .fill_null(pl.col("orders").cast(pl.Float64))
        .alias("exposure")
    )


def daily_series(data: Dataset, as_of: dt.date) -> pl.DataFrame:
    """Per marketplace, channel and day: orders, ODR defects by arrival day, ODR defects by order
    day (known on `as_of`), exposure (mean daily orders of the 28 days before)."""
    first_arrival = first_arrivals(data, as_of)
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
    return with_exposure(s, ("marketplace_id", "ch")).rename({"ch": "channel"})


def delay_distribution(data: Dataset, as_of: dt.date, max_days: int = 120) -> np.ndarray:
    """Empirical CDF F[a] of days from order to first ODR defect, from orders old enough to be
    complete (purchased more than `max_days` before `as_of`), else all."""
    t = dfx.defect_table(data, as_of).filter(pl.col("defect_kind") != "return")
    first = t.group_by("order_id").agg(pl.col("defect_date").min(), pl.col("purchase_day").first())
    first = first.drop_nulls(["defect_date", "purchase_day"])
    days = first.select(
        (pl.col("defect_date") - pl.col("purchase_day")).dt.total_days().alias("delay"),
        (pl.lit(as_of) - pl.col("purchase_day")).dt.total_days().alias("age"),
    )
    return delay_cdf(days["delay"].to_numpy(), days["age"].to_numpy(), max_days)


def delay_cdf(delays: np.ndarray, order_age: np.ndarray, max_days: int = 120) -> np.ndarray:
    """`delay_distribution` from the delays (days from order to first defect) and the ages of
    their orders: from the orders at least `max_days` old when they hold 20 defects or more
    (their delays are complete), else all; delays clipped to 0 .. max_days."""
    old = np.asarray(order_age) >= max_days
    use = np.asarray(delays)[old] if old.sum() >= 20 else np.asarray(delays)
    use = np.clip(use, 0, max_days)
    if len(use) == 0:
        return np.ones(max_days + 1)
    counts = np.bincount(use.astype(int), minlength=max_days + 1)
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
    defects, orders, _ = baseline_counts(d, n, usable, days=days, lag=lag, min_days=min_days)
    return rate_with_prior(defects, orders)


def baseline_counts(
    d: np.ndarray,
    n: np.ndarray,
    usable: np.ndarray | None = None,
    *,
    days: int = BASELINE_DAYS,
    lag: int = BASELINE_LAG,
    min_days: int = 14,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each day's baseline window of `baseline_rates`: its defects, its exposure (orders) and
    the number of usable days it holds."""
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
    return cd[hi] - cd[lo], cn[hi] - cn[lo], cu[hi] - cu[lo]


def detect(
    data: Dataset,
    as_of: dt.date,
    settings: Settings = DEFAULTS,
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
    # without a dataset (simulated series: benchmarks/spike_eval.py) the alarms have no drivers
    table = None if data is None else dfx.defect_table(data, as_of).filter(pl.col("defect_kind") != "return")
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
                p_value = float(poisson_sf(obs - 1, exp_)) if det == "glr" else float(pvals[i])
                if day not in drivers:
                    drivers[day] = _drivers(table, mkt, ch, day, basis) if table is not None else _NO_DRIVERS
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
    return defects_between(table, mkt, ch, day - dt.timedelta(days=6), day, basis)


def defects_between(
    table: pl.DataFrame, mkt: str, ch: str, lo: dt.date, hi: dt.date, basis: str = "arrival"
) -> pl.DataFrame:
    """The defects of one series that arrived on days `lo` to `hi`, or (order basis) those of
    the orders placed on those days."""
    col = "defect_date" if basis == "arrival" else "purchase_day"
    return table.filter(
        (pl.col("marketplace_id") == mkt)
        & pl.col("channel").str.contains(ch)
        & pl.col(col).is_between(lo, hi)
    )


_NO_DRIVERS = {"causes": [], "skus": [], "carriers": []}


def _drivers(table: pl.DataFrame, mkt: str, ch: str, day: dt.date, basis: str = "arrival") -> dict:
    """Causes, SKUs and carriers of the defects behind an alarm (`defects_behind`)."""
    return _top_drivers(defects_behind(table, mkt, ch, day, basis))


def _top_drivers(w: pl.DataFrame) -> dict:
    """The 3 most frequent causes, SKUs and carriers of some defects, with their counts."""

    def top(col: str) -> list[dict]:
        c = w.group_by(col).len().sort(["len", col], descending=[True, False]).head(3)
        return [{"value": str(r[0]), "defects": int(r[1])} for r in c.iter_rows()]

    return {"causes": top("cause"), "skus": top("sku"), "carriers": top("carrier")}


# ----------------------------------------------------------------------------- incidents

INCIDENT_DETECTORS = ("glr", "order-glr")


@dataclass(frozen=True)
class SeriesDays:
    """One marketplace-channel series day by day, as `series_incidents` reads it: the orders
    placed, the ODR defects that arrived (an order's first), the exposure of `daily_series`,
    and lags[j, a], the defects of the orders of day j whose first defect arrived a days later
    (the last column: that many days or more; as many columns as the delay CDF has)."""

    days: list[dt.date]
    orders: np.ndarray
    arrived: np.ndarray
    exposure: np.ndarray
    lags: np.ndarray


def series_lags(arrivals: pl.DataFrame, start: dt.date, n_days: int, max_age: int) -> np.ndarray:
    """`SeriesDays.lags` from one series' rows of `first_arrivals`."""
    rel = arrivals.select(
        (pl.col("purchase_day") - pl.lit(start)).dt.total_days().alias("j"),
        (pl.col("defect_date") - pl.col("purchase_day")).dt.total_days().clip(0, max_age).alias("a"),
    ).filter(pl.col("j").is_between(0, n_days - 1))
    lags = np.zeros((n_days, max_age + 1))
    np.add.at(lags, (rel["j"].to_numpy(), rel["a"].to_numpy()), 1.0)
    return lags


def _arrival_expectation(v: SeriesDays, cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected arrivals per day, the defects behind each day's baseline, and its usable days.

    The baseline is `baseline_counts`'s, with one change: in the first weeks of a series, the
    defects of the orders placed before its data began are missing from the arrivals (those
    defects are not in the data), so a day's exposure is weighted by the share of arrivals that
    come from orders in the data, F(days since its first order), F the delay CDF; days with
    less than 20 % are not used. Unweighted, the first month's baseline came out too low (a
    quarter too low with 32 days of history and delays of 1-15 days) and raised false alarms."""
    started = np.flatnonzero(v.orders > 0)
    age = np.arange(len(v.days)) - (started[0] if len(started) else 0)
    share = np.where(age >= 0, cdf[np.clip(age, 0, len(cdf) - 1)], 0.0)
    n = np.maximum(np.asarray(v.exposure, dtype=float), 1.0)
    defects, exposure, history = baseline_counts(np.asarray(v.arrived, dtype=float), n * share, share >= 0.2)
    p0 = rate_with_prior(defects, exposure)
    return n * np.clip(p0 * share, 1e-6, 0.5), p0 * (exposure + 1.0), history


@dataclass(frozen=True)
class _OrderScan:
    stat: np.ndarray  # per day: the largest GLR over the order-day windows tested that day
    lo: np.ndarray  # its window's first and last order day (indices)
    hi: np.ndarray
    observed: np.ndarray  # defects of those order days known that day, and their expectation
    expected: np.ndarray
    rate: np.ndarray  # the day's baseline rate per order
    history: np.ndarray  # usable order days behind it


def _order_scan(v: SeriesDays, cdf: np.ndarray, settings: Settings, first: int = 0) -> _OrderScan:
    """The order-day GLR, as run each day on what is known that day: over the windows of 1 to
    `incident_order_window` order days whose newest is at most `incident_order_max_age` days
    old, the two-sample GLR of the defects of those orders that have arrived by then against
    orders x baseline x F(age), F the delay CDF; order days with less than ORDER_MIN_SHARE of
    their defects arrived weigh nothing. The baseline, as known that day: the order days 29 to
    119 days old (those of `baseline_rates`), their expectation scaled by F(age); while they
    hold fewer than 14 usable days, those 1 to 91 days old. Days before `first` are not tested
    (a day's test reads only what was known that day, so they are not needed)."""
    n_days, max_age = len(v.days), v.lags.shape[1] - 1
    cum = np.cumsum(v.lags, axis=1)
    orders = np.asarray(v.orders, dtype=float)
    t = np.arange(min(first, n_days), n_days)

    def known_at(ages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[age, day]: defects of the orders of day - age arrived by day, those orders, F(age)."""
        j = t[None, :] - ages[:, None]
        ok = j >= 0
        j = np.where(ok, j, 0)
        known = np.where(ok, cum[j, np.minimum(ages, max_age)[:, None]], 0.0)
        placed = np.where(ok, orders[j], 0.0)
        return known, placed, cdf[np.minimum(ages, len(cdf) - 1)][:, None]

    ages = np.arange(1, BASELINE_LAG + BASELINE_DAYS + 1)
    known, placed, share = known_at(ages)
    usable = (placed > 0) & (share >= 0.2)
    lagged = usable & (ages > BASELINE_LAG)[:, None]
    use = np.where(lagged.sum(axis=0) >= 14, lagged, usable & (ages <= BASELINE_DAYS)[:, None])
    defects, exposure = (known * use).sum(axis=0), (placed * share * use).sum(axis=0)
    rate = rate_with_prior(defects, exposure)

    w_max, newest = settings.incident_order_window, settings.incident_order_max_age
    ages = np.arange(newest + w_max)[::-1]  # oldest first: windows end at the later rows
    known, placed, share = known_at(ages)
    tested = share >= ORDER_MIN_SHARE
    dd = np.where(tested, known, 0.0)
    ee = np.where(tested, placed * share, 0.0) * rate[None, :]
    stat2, width2 = glr_windows(
        dd, ee, 1.0, w_max, baseline_defects=rate[None, :] * (exposure[None, :] + 1.0)
    )
    row = w_max - 1 + np.argmax(stat2[w_max - 1 :], axis=0)  # windows ending at ages newest .. 0
    col = np.arange(len(t))
    width = width2[row, col]
    cd = np.concatenate([np.zeros((1, len(t))), np.cumsum(dd, axis=0)])
    ce = np.concatenate([np.zeros((1, len(t))), np.cumsum(ee, axis=0)])
    end = t - ages[row]

    def full(x: np.ndarray) -> np.ndarray:  # by day index, nothing before `first`
        return np.concatenate([np.zeros(n_days - len(t), dtype=x.dtype), x])

    return _OrderScan(
        stat=full(stat2[row, col]),
        lo=full(end - width + 1),
        hi=full(end),
        observed=full(cd[row + 1, col] - cd[row + 1 - width, col]),
        expected=full(ce[row + 1, col] - ce[row + 1 - width, col]),
        rate=full(rate),
        history=full(use.sum(axis=0)),
    )


def incident_runs(alarms: list[tuple[int, int]], gap: int = 1) -> list[list[int]]:
    """The alarm days of each incident, from (alarm day, its window's first day) pairs: a day
    joins the incident before it when at most `gap` quiet days lie between, or when its window
    reaches back to the incident's last alarm day (the same defects seen again)."""
    runs: list[list[int]] = []
    for t, lo in sorted(alarms):
        if runs and t == runs[-1][-1]:
            continue
        if runs and (t - runs[-1][-1] <= gap + 1 or lo <= runs[-1][-1]):
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def series_incidents(
    v: SeriesDays, cdf: np.ndarray, settings: Settings = DEFAULTS, *, first: int = 0, basis: str = "arrival"
) -> list[dict]:
    """The incidents of one series from day index `first` on (`incidents` without the series'
    name and drivers; benchmarks/spike_eval.py runs it on simulated series)."""
    d = np.asarray(v.arrived, dtype=float)
    expected, baseline_defects, history = _arrival_expectation(v, cdf)
    alarms = []  # (day, detector, window's first day, window's last day, observed, expected)
    if basis == "arrival" and math.isfinite(settings.incident_glr_h):
        stat, width = glr_windows(d, expected, 1.0, settings.glr_window, baseline_defects=baseline_defects)
        for t in np.flatnonzero(stat >= settings.incident_glr_h):
            lo = t - int(width[t]) + 1
            alarms.append((t, "glr", lo, t, d[lo : t + 1].sum(), expected[lo : t + 1].sum()))
    scan = (
        _order_scan(v, cdf, settings, first)
        if math.isfinite(settings.incident_order_h) or basis == "order"
        else None
    )
    for t in np.flatnonzero(scan.stat >= settings.incident_order_h) if scan is not None else []:
        alarms.append((t, "order-glr", scan.lo[t], scan.hi[t], scan.observed[t], scan.expected[t]))
    alarms = sorted(a for a in alarms if a[0] >= first)
    runs = incident_runs([(a[0], a[2]) for a in alarms], settings.incident_gap_days)
    last = len(v.days) - 1
    out = []
    for run in runs:
        mine = [a for a in alarms if run[0] <= a[0] <= run[-1]]
        p = [float(poisson_sf(a[4] - 1, a[5])) for a in mine]
        strongest = mine[int(np.argmin(p))][1]
        fired = [x for x in INCIDENT_DETECTORS if any(a[1] == x for a in mine)]
        lo = int(min(a[2] for a in mine))
        if basis == "arrival":  # the arrival days from the first window's start to the last alarm
            hi = run[-1]
            obs, exp_ = d[lo : hi + 1].sum(), expected[lo : hi + 1].sum()
            hist = int(history[run[0]])
        else:  # the order days of the windows, their defects as known now
            hi = int(max(a[3] for a in mine))
            j = np.arange(lo, hi + 1)
            obs = v.lags[lo : hi + 1].sum()
            exp_ = float((v.orders[lo : hi + 1] * cdf[np.minimum(last - j, len(cdf) - 1)]).sum()) * float(
                scan.rate[run[-1]]
            )
            hist = int(scan.history[run[0]])
        if obs <= exp_:  # never an "incident" of fewer defects than expected
            continue
        order_alarms = [a for a in mine if a[1] == "order-glr"]
        out.append(
            {
                "basis": basis,
                "firstDay": v.days[lo].isoformat(),
                "lastDay": v.days[hi].isoformat(),
                "firstAlarm": v.days[run[0]].isoformat(),
                "alarmDays": len(run),
                "observed": int(round(obs)),
                "expected": float(exp_),
                "pValue": float(poisson_sf(round(obs) - 1, exp_)),
                "detector": strongest,
                "detectors": fired,
                "orderWindow": [
                    v.days[int(min(a[2] for a in order_alarms))].isoformat(),
                    v.days[int(max(a[3] for a in order_alarms))].isoformat(),
                ]
                if order_alarms
                else None,
                "historyDays": hist,
                "learning": hist < settings.incident_learning_days,
            }
        )
    return out


def incidents(
    data: Dataset,
    as_of: dt.date,
    settings: Settings = DEFAULTS,
    *,
    first: dt.date | None = None,
    basis: str = "arrival",
    series: pl.DataFrame | None = None,
) -> list[dict]:
    """One incident per episode of alarms in one marketplace-channel series, days `first` (by
    default 4 weeks before `as_of`) to `as_of`: what a daily run would have raised on each day.
    See the module docstring: the tests, the merging and how a short history is handled."""
    if basis not in ("arrival", "order"):
        raise ValueError(f"basis must be 'arrival' or 'order', not {basis!r}")
    s = series if series is not None else daily_series(data, as_of)
    first = first or as_of - dt.timedelta(days=27)
    table = dfx.defect_table(data, as_of).filter(pl.col("defect_kind") != "return")
    cdf = delay_distribution(data, as_of)
    arrivals = first_arrivals(data, as_of)
    out = []
    for (mkt, ch), g in s.group_by("marketplace_id", "channel", maintain_order=True):
        g = g.filter(pl.col("day") <= as_of).sort("day")
        if g.height == 0:
            continue
        days = g["day"].to_list()
        v = SeriesDays(
            days=days,
            orders=g["orders"].to_numpy().astype(float),
            arrived=g["arrived"].to_numpy().astype(float),
            exposure=g["exposure"].to_numpy().astype(float),
            lags=series_lags(
                arrivals.filter((pl.col("marketplace_id") == mkt) & (pl.col("ch") == ch)),
                days[0],
                len(days),
                len(cdf) - 1,
            ),
        )
        for inc in series_incidents(v, cdf, settings, first=max((first - days[0]).days, 0), basis=basis):
            lo, hi = dt.date.fromisoformat(inc["firstDay"]), dt.date.fromisoformat(inc["lastDay"])
            drivers = _top_drivers(defects_between(table, mkt, ch, lo, hi, basis))
            out.append({"marketplaceId": mkt, "channel": ch, **inc, "drivers": drivers})
    return sorted(out, key=lambda i: (i["firstAlarm"], i["marketplaceId"], i["channel"]))
