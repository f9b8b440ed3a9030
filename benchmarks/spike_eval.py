"""How good is each spike detector? Simulated accounts, injected spikes, and the best possible.

    .venv/bin/python benchmarks/spike_eval.py [--accounts 2000] [--seed 1] [--scenario both]

Each account has 5 to 5,000 orders a day (log-uniform, weekly seasonality), a baseline defect
rate of 0.2-0.8 %, and defects that arrive after a realistic delay (log-normal, median 8 days);
the simulation runs 60 days before the first day kept, so arrivals are in their steady state.
Detectors run each day on what is known that day, as `analysis.spikes.detect` does:
- arrival basis: defects by the day they arrived; exposure the mean daily orders of the 28 days
  before; baseline the account's own rate over the 91 days that end 28 days before
  (`spikes.baseline_rates`);
- order basis ("order day"): the defects of each of the last 7 order days that have arrived so
  far, against orders x baseline x the share of defects arrived at that age; the baseline from
  order days 29-119 days old. The p-chart leaves out days with less than
  `spikes.ORDER_MIN_SHARE` arrived; the GLR tests windows of the last 4 to 7 order days with
  every known defect, the longer windows at a penalty (`--order-min-window`, `--order-penalty`).

1. Calibration: on spike-free accounts, each detector's threshold is set (by bisection) to the
   most sensitive value that raises at most 1 false alarm per account-year in every band of
   volume (`--calibrate mean`: on average), an alarm being a run of consecutive alarm days.
2. Spikes of known size (x2, x3, x5 the rate) and length (3, 7, 14 days) are injected, one per
   account: into the defects' arrival (claims filed at once), or into the orders of those days
   (a bad batch, its defects arriving later).
3. The limit, per account: the likelihood-ratio test that knows the spike's start, size, length
   and the delay distribution, on the data of the first 3 days after the start: the arrivals of
   those days, or (order-day spikes) the defects of the spike's order days known by then. Its
   threshold is set for that account so that, run every day on spike-free data (testing "a
   spike of this shape began 3 days ago"), it too raises 1 false alarm per year, counted the
   same way (randomized at ties, as the Neyman-Pearson test is). Its false alarms measured on
   each account's spike-free twin are printed as a check.

A detector is judged by the share of the spikes the limit finds within 3 days that it also
finds within 3 days (target: at least 90 %).

4. Incidents, account level (what the weekly report shows): `spikes.series_incidents`, the code
   `spikes.incidents` runs on each series, on simulated accounts of 2 to 4 series (30 to 600
   orders a day each, log-uniform; a constant rate of 0.2-0.8 %; each defect arriving 1 to 15
   days after its order, uniformly; `--history-days` of data, 60 by default, before the 90 days
   looked at, no order before the first day). It prints the false incidents per account-year
   over all of an account's series (all days, the first 30 looked at, the 60 after), and the
   share of accounts where a bad batch (4x the rate on 6 order days, in every series) is found
   within 14 days of its first order day, and a carrier week (3x the arrivals for 7 days, in
   the series with the most defects; first 300 accounts) within 7 days; for the incidents,
   each of their two tests alone, and every detector's alarms as `spikes.detect` raises them
   today (first 200 accounts). `--incident-accounts` sets the number of accounts (default: half
   of `--accounts`), `--history-days`, `--incident-glr-h` and `--incident-order-h` the rest;
   `--skip-detectors` runs this part alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis.insights import spikes

BURN, BASE_DAYS, DAYS = 60, 90, 365
WEEKDAY = np.array([1.12, 1.08, 1.04, 1.0, 0.95, 0.86, 0.95])
MAX_DELAY = 60
WITHIN = 3
LIMIT_YEARS = 200
SIZES, LENGTHS = (2.0, 3.0, 5.0), (3, 7, 14)
BANDS = ((0, 0.1), (0.1, 1), (1, 10), (10, 100))  # expected defects per day


def delay_pmf() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.clip(np.round(np.exp(rng.normal(np.log(8), 0.7, 200_000))), 0, MAX_DELAY - 1).astype(int)
    return np.bincount(x, minlength=MAX_DELAY) / len(x)


F = delay_pmf()


@dataclass
class Account:
    volume: float
    p0: float
    n: np.ndarray  # orders per day
    d: np.ndarray  # defects arriving per day
    exposure: np.ndarray  # mean orders of the 28 days before
    lam0: np.ndarray  # expected arrivals without a spike, given the orders
    base: np.ndarray  # the detectors' baseline rate per day
    # order basis, as known each day t: known[a, t] defects of the orders of day t - a that have
    # arrived by t, orders[a, t] the orders of day t - a, base_order[t] the baseline rate per order
    known: np.ndarray
    orders: np.ndarray
    base_order: np.ndarray

    @property
    def per_day(self) -> float:
        return self.volume * self.p0


def simulate(rng, volume: float, p0: float, spike: tuple[int, int, float] | None, scenario: str) -> Account:
    """BASE_DAYS + DAYS days (after a burn-in). scenario "order": the spike raises the defect rate
    of the orders placed on its days (a bad SKU batch), whose defects arrive later; "arrival": it
    multiplies the defects arriving on its days (a carrier losing a week of parcels)."""
    total = BURN + BASE_DAYS + DAYS
    n = rng.poisson(volume * WEEKDAY[np.arange(total) % 7])
    p = np.full(total, p0)
    if spike and scenario == "order":
        s, length, k = spike
        p[BURN + s : BURN + s + length] = min(k * p0, 0.5)
    x = rng.binomial(n, p)
    delays = np.zeros((total, MAX_DELAY), dtype=int)  # defects by order day and days to arrive
    for o in np.flatnonzero(x):
        delays[o] = rng.multinomial(x[o], F)
    lam0 = np.convolve(n * p0, F)[:total]
    if spike and scenario == "arrival":
        s, length, k = spike
        for u in range(BURN + s, BURN + s + length):  # extra arrivals, of orders placed F-days before
            ages = rng.choice(MAX_DELAY, size=rng.poisson((k - 1) * lam0[u]), p=F)
            np.add.at(delays, (u - ages, ages), 1)
    d = np.zeros(total + MAX_DELAY, dtype=int)
    for a in range(MAX_DELAY):
        d[a : a + total] += delays[:, a]
    d = d[:total]
    c = np.concatenate([[0], np.cumsum(n)])
    idx = np.arange(total)
    lo = np.maximum(idx - spikes.EXPOSURE_DAYS, 0)
    exposure = np.where(idx > 0, (c[idx] - c[lo]) / np.maximum(idx - lo, 1), n[0])
    known, orders, base_order = order_view(delays, n)
    keep = slice(BURN, None)
    n, d, exposure, lam0 = n[keep], d[keep].astype(float), np.maximum(exposure[keep], 1.0), lam0[keep]
    return Account(
        volume, p0, n, d, exposure, lam0, spikes.baseline_rates(d, exposure), known, orders, base_order
    )


ORDER_AGES = 7  # the order days of the last week, as known each day
CDF = np.cumsum(F)


def order_view(delays: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the order basis knows each day t (after the burn-in): the defects of the orders of
    day t - a that have arrived by t, those orders, and the baseline rate per order from the
    order days 29-119 days old (those of `spikes.baseline_rates`: 91 days, ending 28 days back)."""
    cum = np.cumsum(delays, axis=1)
    t = np.arange(BURN, len(n))

    def at_age(a: int) -> tuple[np.ndarray, np.ndarray]:
        j = np.maximum(t - a, 0)
        return cum[j, min(a, MAX_DELAY - 1)], n[j]

    known = np.array([at_age(a)[0] for a in range(ORDER_AGES)], dtype=float)
    orders = np.array([at_age(a)[1] for a in range(ORDER_AGES)], dtype=float)
    base_d = np.zeros(len(t))
    base_n = np.zeros(len(t))
    for a in range(spikes.BASELINE_LAG + 1, spikes.BASELINE_LAG + spikes.BASELINE_DAYS + 1):
        k, o = at_age(a)
        base_d += k
        base_n += o * CDF[min(a, MAX_DELAY - 1)]
    return known, orders, spikes.rate_with_prior(base_d, base_n)


# ----------------------------------------------------------------------------- detectors

S = spikes.Settings()


def _score(name: str, a: Account) -> np.ndarray:
    """A threshold-free score per day: the detector alarms where score >= threshold."""
    if name == "p-chart":
        with np.errstate(divide="ignore"):
            return -np.log10(spikes.pchart(a.d, a.exposure, a.base, 1.0)[0])
    if name == "ewma":
        z, ucl, _ = spikes.ewma(a.d, a.exposure, a.base, S.ewma_lambda, 1.0)
        return (z - a.base) / np.maximum(ucl - a.base, 1e-15)
    if name == "laney":
        sz = spikes.laney(a.d[:BASE_DAYS], a.exposure[:BASE_DAYS], a.base[:BASE_DAYS], 1.0)[2]
        zp = spikes.laney(a.d, a.exposure, a.base, 1.0, sz)[0]
        return np.where(a.exposure * a.base >= spikes.LANEY_MIN_EXPECTED, zp, -np.inf)
    if name == "glr":
        return spikes.glr(a.d, a.exposure, a.base, S.glr_window, np.inf)[0]
    if name == "glr (order day)":
        return order_glr(a)
    if name == "p-chart (order day)":
        return order_pchart(a)
    if name == "glr (both bases)":
        return np.maximum(_score("glr", a), order_glr(a))
    raise ValueError(name)


def _order_terms(a: Account) -> tuple[np.ndarray, np.ndarray]:
    """Per age: the defects known and the defects expected (orders x baseline x share arrived),
    ages with less than ORDER_MIN_SHARE arrived left out, as `spikes.detect`'s p-chart does."""
    share = CDF[:ORDER_AGES]
    use = (share >= spikes.ORDER_MIN_SHARE)[:, None]
    return np.where(use, a.known, 0.0), np.where(use, a.orders * share[:, None] * a.base_order, 0.0)


def order_glr(a: Account) -> np.ndarray:
    """The GLR on the order basis, run each day on what is known that day: `spikes.glr_windows`
    with the order-basis settings on the last 7 order days (oldest first), the windows ending at
    the newest; every known defect counts, however young its order day."""
    expected = a.orders * CDF[:ORDER_AGES, None] * a.base_order
    stat, _ = spikes.glr_windows(
        a.known[::-1],
        expected[::-1],
        1.0,
        min(S.glr_window, ORDER_AGES),
        min_window=S.order_glr_min_window,
        penalty=S.order_glr_penalty,
    )
    return stat[-1]


def order_pchart(a: Account) -> np.ndarray:
    """The exact p-chart on each of the last 7 order days as known that day: -log10 p (largest)."""
    known, expected = _order_terms(a)
    p = np.ones(len(a.d))
    for age in range(ORDER_AGES):
        rate = np.clip(expected[age] / np.maximum(np.rint(a.orders[age]), 1), 1e-12, 0.5)
        p = np.minimum(p, spikes.pchart(known[age], a.orders[age], rate, 1.0)[0])
    return -np.log10(np.maximum(p, 1e-300))


class Detector:
    """One detector: its name, the setting's range (more sensitive end first) and its alarms."""

    def __init__(self, name: str, lo: float, hi: float, log: bool = False) -> None:
        self.name, self.lo, self.hi, self.log = name, lo, hi, log
        self._cache: dict[int, tuple[Account, np.ndarray]] = {}

    def alarms(self, a: Account, thr: float) -> np.ndarray:
        if self.name == "cusum":
            return spikes.cusum(a.d, a.exposure, a.base, S.cusum_ratio, thr)[1]
        if self.name.startswith("naive"):
            return spikes.naive(a.d, a.exposure, S.naive_days, S.naive_target)
        hit = self._cache.get(id(a))
        if hit is None or hit[0] is not a:  # scores are kept while calibrating
            hit = self._cache[id(a)] = (a, _score(self.name, a))
        score = hit[1]
        return score >= (-np.log10(thr) if self.name.startswith("p-chart") else thr)

    def setting(self, x: float) -> float:
        """x in [0, 1] from the sensitive to the strict end of the range."""
        if self.log:
            return float(np.exp(np.log(self.lo) + x * (np.log(self.hi) - np.log(self.lo))))
        return self.lo + x * (self.hi - self.lo)


SHIPPED = {  # the Settings field each detector runs with in `spikes.detect`
    "p-chart": "pchart_alpha",
    "cusum": "cusum_h",
    "ewma": "ewma_l",
    "laney": "laney_k",
    "glr": "glr_h",
    "p-chart (order day)": "order_pchart_alpha",
    "glr (order day)": "order_glr_h",
}


def detectors() -> list[Detector]:
    return [
        Detector("p-chart", 0.05, 1e-7, log=True),
        Detector("cusum", 1.0, 20.0),
        Detector("ewma", 1.0, 12.0),
        Detector("laney", 1.0, 12.0),
        Detector("glr", 1.0, 30.0),
        Detector("p-chart (order day)", 0.05, 1e-7, log=True),
        Detector("glr (order day)", 1.0, 30.0),
        Detector("glr (both bases)", 1.0, 30.0),
        Detector("naive (7-day rate > 1 %)", 0, 0),
    ]


def episodes(alarm: np.ndarray) -> np.ndarray:
    """First day of each run of consecutive alarm days."""
    a = alarm.astype(int)
    return np.flatnonzero(np.diff(np.concatenate([[0], a])) == 1)


def false_alarms(det: Detector, null: list[Account], thr: float) -> np.ndarray:
    """False alarms per year of each spike-free account."""
    return np.array([len(episodes(det.alarms(a, thr)[BASE_DAYS:])) for a in null]) * 365 / DAYS


def calibrate(det: Detector, null: list[Account], every_band: bool) -> tuple[float, np.ndarray]:
    """The most sensitive setting with at most 1 false alarm per account-year (bisection), on
    average or (`every_band`) in every band of volume."""
    if det.name.startswith("naive"):
        return 0.0, false_alarms(det, null, 0.0)
    bands = np.array([band_of(a.per_day) for a in null])

    def worst(fa: np.ndarray) -> float:
        if not every_band:
            return float(fa.mean())
        filled = [float(fa[bands == i].mean()) for i in range(len(BANDS)) if np.sum(bands == i) >= 10]
        return max(filled) if filled else float(fa.mean())  # tiny runs: too few accounts per band

    lo, hi = 0.0, 1.0
    for _ in range(18):
        mid = (lo + hi) / 2
        if worst(false_alarms(det, null, det.setting(mid))) <= 1.0:
            hi = mid
        else:
            lo = mid
    thr = det.setting(hi)
    return thr, false_alarms(det, null, thr)


# ----------------------------------------------------------------------------- the limit


def spike_rates(a: Account, s: int, length: int, k: float, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    """Expected arrivals on the days s .. s + WITHIN without and with the known spike."""
    u = slice(s, s + WITHIN + 1)
    lam0 = a.lam0[u]
    if scenario == "order":
        extra = np.zeros(len(a.n))
        extra[s : s + length] = a.n[s : s + length] * (min(k * a.p0, 0.5) - a.p0)
        lam1 = lam0 + np.convolve(extra, F)[: len(a.n)][u]
    else:
        lam1 = lam0.copy()
        lam1[:length] *= k
    return np.maximum(lam0, 1e-12), np.maximum(lam1, 1e-12)


def llr_series(d: np.ndarray, lam0: np.ndarray, lam1: np.ndarray) -> np.ndarray:
    """The likelihood-ratio test of 'the known spike began on the first of these WITHIN + 1 days'
    against 'no spike', per run of days: the Poisson log-likelihood ratio is
    sum d ln(lam1 / lam0) - sum (lam1 - lam0), so the test thresholds the weighted count."""
    return np.correlate(d, np.log(lam1 / lam0), "valid")


def limit_threshold(stat: np.ndarray) -> tuple[float, float]:
    """The threshold at which a test statistic, run every day for LIMIT_YEARS spike-free years,
    raises exactly 1 false alarm a year: alarm when it is above `c`, and with probability
    `gamma` when it equals `c` (the Neyman-Pearson randomized test; without it, at low volume
    the discrete statistic would leave the limit well under its false-alarm budget)."""
    values = np.unique(stat)[::-1]  # strict to lenient
    budget = LIMIT_YEARS

    def count(i: int) -> int:
        return len(episodes(stat > values[i])) if i < len(values) else len(episodes(stat > -np.inf))

    lo, hi = 0, len(values) - 1  # the last (most lenient) value that keeps <= 1 alarm a year
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    c = float(values[lo])
    lo_g, hi_g = 0.0, 1.0  # the tie probability that spends the rest of the budget
    for _ in range(30):
        mid = (lo_g + hi_g) / 2
        if expected_episodes(stat, c, mid) <= budget:
            lo_g = mid
        else:
            hi_g = mid
    return c, lo_g


def expected_episodes(stat: np.ndarray, c: float, gamma: float) -> float:
    """Expected number of alarm runs of the randomized test: a day alarms with probability
    a = 1 above c, gamma at c, independently, and starts a run when the day before did not:
    sum a_t (1 - a_(t-1))."""
    a = limit_weight(stat, c, gamma)
    return float(a[0] + np.sum(a[1:] * (1 - a[:-1])))


def arrival_limit_null(rng, lam0: np.ndarray, lam1: np.ndarray) -> np.ndarray:
    """The arrival test run every day on spike-free arrivals (Poisson, the mean expected)."""
    return llr_series(rng.poisson(float(lam0.mean()), 365 * LIMIT_YEARS + WITHIN).astype(float), lam0, lam1)


def order_limit_stat(known: np.ndarray, m: int) -> np.ndarray:
    """The order-day test of 'the spike began WITHIN days ago and lasts m of them': the defects of
    those order days known by now. Each has the same likelihood ratio per defect (k), so the
    likelihood-ratio test thresholds their sum."""
    return sum(known[WITHIN - i] for i in range(m))


def order_limit_null(rng, mu: float, m: int) -> np.ndarray:
    """The order-day test run every day on spike-free order days: each order day's defects
    arrive at ages 0, 1, ... with Poisson counts mu f(age) (Poisson splitting)."""
    days = 365 * LIMIT_YEARS + WITHIN
    arrived = np.cumsum(rng.poisson(mu * F[: WITHIN + 1], size=(days, WITHIN + 1)), axis=1)
    t = np.arange(WITHIN, days)
    return sum(arrived[t - WITHIN + i, WITHIN - i] for i in range(m)).astype(float)


def limit_weight(stat: np.ndarray, c: float, gamma: float) -> np.ndarray:
    """Probability that the randomized limit test alarms at each value of its statistic."""
    return np.where(stat > c + 1e-9, 1.0, np.where(stat >= c - 1e-9, gamma, 0.0))


# ----------------------------------------------------------------------------- evaluation


def accounts(rng, count):
    vols = np.exp(rng.uniform(np.log(5), np.log(5000), count))
    p0s = rng.uniform(0.002, 0.008, count)
    return list(zip(vols, p0s, strict=True))


def short(name: str) -> str:
    """A detector's name in the breakdown: 'glr (order day)' -> 'glr/o'."""
    head, _, rest = name.partition(" (")
    return head if not rest or head == "naive" else f"{head}/{rest[0]}"


def band_of(per_day: float) -> int:
    return next(i for i, (lo, hi) in enumerate(BANDS) if lo <= per_day < hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=2000, help="accounts per simulation set")
    ap.add_argument("--scenario", choices=("arrival", "order", "both"), default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--glr-window", type=int, default=spikes.Settings.glr_window)
    ap.add_argument("--order-min-window", type=int, default=spikes.Settings.order_glr_min_window)
    ap.add_argument("--order-penalty", type=float, default=spikes.Settings.order_glr_penalty)
    ap.add_argument("--cusum-ratio", type=float, default=spikes.Settings.cusum_ratio)
    ap.add_argument("--ewma-lambda", type=float, default=spikes.Settings.ewma_lambda)
    ap.add_argument(
        "--calibrate",
        choices=("every-band", "mean"),
        default="every-band",
        help="at most 1 false alarm per account-year in every band of volume (default) or on average",
    )
    ap.add_argument("--incident-accounts", type=int, default=None, help="accounts for the incident measure")
    ap.add_argument(
        "--history-days", type=int, default=INC_HISTORY, help="days of data before the 90 looked at"
    )
    ap.add_argument("--incident-glr-h", type=float, default=spikes.Settings.incident_glr_h)
    ap.add_argument("--incident-order-h", type=float, default=spikes.Settings.incident_order_h)
    ap.add_argument("--skip-detectors", action="store_true", help="only the account-level incident measure")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    global S
    S = spikes.Settings(
        glr_window=args.glr_window,
        order_glr_min_window=args.order_min_window,
        order_glr_penalty=args.order_penalty,
        cusum_ratio=args.cusum_ratio,
        ewma_lambda=args.ewma_lambda,
    )

    if not args.skip_detectors:
        detector_tables(rng, args, t0)
    incident_table(
        np.random.default_rng(args.seed),
        args.incident_accounts if args.incident_accounts is not None else max(args.accounts // 2, 1),
        args.history_days,
        spikes.Settings(incident_glr_h=args.incident_glr_h, incident_order_h=args.incident_order_h),
        t0,
    )


def detector_tables(rng, args, t0: float) -> None:
    """Parts 1-3: each detector calibrated, then the injected spikes against the limit."""
    null = [simulate(rng, v, p0, None, "arrival") for v, p0 in accounts(rng, args.accounts)]
    dets = detectors()
    chosen = {det.name: calibrate(det, null, args.calibrate == "every-band") for det in dets}
    bands = np.array([band_of(a.per_day) for a in null])
    print(f"Calibrated on {len(null)} spike-free accounts ({time.perf_counter() - t0:.0f} s):")
    head = (
        f"{'detector':<26}{'setting':>10}{'false alarms/yr':>17}{'shipped':>10}{'its FA/yr':>11}"
        + "".join(f"{f'{lo:g}-{hi:g}/day':>12}" for lo, hi in BANDS)
    )
    print(head + "\n" + "-" * len(head))
    for det in dets:
        thr, fa = chosen[det.name]
        cells = "".join(f"{fa[bands == i].mean():>12.2f}" for i in range(len(BANDS)))
        ship = SHIPPED.get(det.name)
        shipped = f"{getattr(spikes.Settings(), ship):>10.3g}" if ship else f"{'':>10}"
        ship_fa = (
            f"{false_alarms(det, null, getattr(spikes.Settings(), ship)).mean():>11.2f}"
            if ship
            else f"{'':>11}"
        )
        print(f"{det.name:<26}{thr:>10.3g}{fa.mean():>17.2f}{shipped}{ship_fa}{cells}")
    print(
        f"{'accounts':<26}{'':>10}{len(null):>17}{'':>21}"
        + "".join(f"{np.sum(bands == i):>12}" for i in range(len(BANDS)))
    )
    print(
        "(shipped: the default in analysis.spikes.Settings and its false alarms per account-year here;"
        "\n columns on the right: false alarms per account-year by expected defects per day)\n"
    )
    for scenario in ("arrival", "order") if args.scenario == "both" else (args.scenario,):
        evaluate(rng, args.accounts, dets, chosen, scenario, t0)


def evaluate(rng, count: int, dets: list[Detector], chosen: dict, scenario: str, t0: float) -> None:
    rows = []
    for vol, p0 in accounts(rng, count):
        k, length = float(rng.choice(SIZES)), int(rng.choice(LENGTHS))
        s = BASE_DAYS + int(rng.integers(30, DAYS - 40))
        a = simulate(rng, vol, p0, (s, length, k), scenario)
        twin = simulate(rng, vol, p0, None, scenario)
        if scenario == "arrival":
            lam0, lam1 = spike_rates(a, s, length, k, scenario)
            c, gamma = limit_threshold(arrival_limit_null(rng, lam0, lam1))
            stat = llr_series(a.d[s : s + WITHIN + 1], lam0, lam1)
            twin_stat = llr_series(twin.d[BASE_DAYS:], lam0, lam1)
        else:  # the best test of an order-day spike reads the defects of the spike's order days
            m = min(length, WITHIN + 1)
            mu = float(np.mean([a.orders[WITHIN - i, s + WITHIN] for i in range(m)])) * p0
            c, gamma = limit_threshold(order_limit_null(rng, mu, m))
            stat = order_limit_stat(a.known, m)[s + WITHIN : s + WITHIN + 1]
            twin_stat = order_limit_stat(twin.known, m)[BASE_DAYS:]
        rec = {
            "k": k,
            "band": band_of(a.per_day),
            "limit": float(limit_weight(stat, c, gamma)[0]),
            "limit_fa": expected_episodes(twin_stat, c, gamma) * 365 / DAYS,
        }
        for det in dets:
            first = [t for t in np.flatnonzero(det.alarms(a, chosen[det.name][0])) if t >= s]
            rec[det.name] = (first[0] - s) if first and first[0] - s <= length + 45 else None
        rows.append(rec)

    title = {
        "arrival": "spikes in the defects' arrival (a carrier loses a week of parcels)",
        "order": "spikes on order days, defects arriving later (a bad batch)",
    }[scenario]
    print(f"== {title}: {len(rows)} spikes ({time.perf_counter() - t0:.0f} s so far)\n")
    limit = np.array([r["limit"] for r in rows])
    head = f"{'detector':<26}{'false alarms/yr':>17}{'detected':>10}{'<= 3 days':>11}{'median days':>13}{'vs limit':>10}"
    print(head + "\n" + "-" * len(head))
    for det in dets:
        lat = [r[det.name] for r in rows if r[det.name] is not None]
        within = np.array([r[det.name] is not None and r[det.name] <= WITHIN for r in rows])
        vs = (within * limit).sum() / max(limit.sum(), 1e-9)
        med = f"{np.median(lat):.0f}" if lat else "-"
        fa = chosen[det.name][1].mean()
        print(
            f"{det.name:<26}{fa:>17.2f}{len(lat) / len(rows):>10.0%}{within.mean():>11.0%}{med:>13}{vs:>10.0%}"
        )
    limit_fa = np.mean([r["limit_fa"] for r in rows])
    print(
        f"{'limit (LR test, known spike)':<26}{limit_fa:>17.2f}{'':>10}{limit.mean():>11.0%}{'':>13}{'100%':>10}"
    )
    print(
        "\nvs limit: share of the spikes the limit finds within 3 days that the detector also finds within"
        " 3 days.\nThe limit's false alarms are measured on each account's spike-free twin."
    )
    print("Within 3 days, by size and by expected defects per day (detectors, then the limit):")
    groups = [(f"x{k:g}", [r for r in rows if r["k"] == k]) for k in SIZES] + [
        (f"{lo:g}-{hi:g}/day", [r for r in rows if r["band"] == i]) for i, (lo, hi) in enumerate(BANDS)
    ]
    for label, sub in groups:
        if not sub:
            continue
        cells = "  ".join(
            f"{short(det.name)} {np.mean([r[det.name] is not None and r[det.name] <= WITHIN for r in sub]):.0%}"
            for det in dets
        )
        print(f"  {label:<11}{cells}  limit {np.mean([r['limit'] for r in sub]):.0%}  (n={len(sub)})")
    print()


# ----------------------------------------------------------------------------- incidents


INC_LOOK, INC_HISTORY, INC_FIRST, INC_WITHIN = 90, 60, 30, 14
INC_BATCH = (6, 4.0)  # a bad batch: 6 order days at 4x the rate, in every series of the account
INC_CARRIER = (7, 3.0)  # a carrier loses a week of parcels: 3x the arrivals for 7 days, one series
INC_CARRIER_WITHIN = 7
INC_TODAY, INC_CARRIER_ACCOUNTS = 200, 300  # accounts with today's alarms / a carrier week too
INC_MAX_DELAY = 15
INC_DELAY = np.zeros(121)  # as long as `spikes.delay_distribution`'s CDF
INC_DELAY[1 : INC_MAX_DELAY + 1] = 1 / INC_MAX_DELAY  # days from order to defect: 1 to 15, uniformly
INC_START = dt.date(2026, 1, 1)


@dataclass
class IncidentAccount:
    series: list[spikes.SeriesDays]
    cdf: np.ndarray  # the delay CDF, estimated from the account's defects as `incidents` does
    frame: pl.DataFrame  # the series as `spikes.daily_series` lays them out (for `spikes.detect`)


def incident_accounts(rng, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per account: 2 to 4 series, their orders a day (30-600, log-uniform) and rates."""
    out = []
    for _ in range(count):
        k = int(rng.integers(2, 5))
        out.append((np.exp(rng.uniform(np.log(30), np.log(600), k)), rng.uniform(0.002, 0.008, k)))
    return out


def simulate_incident_account(
    rng,
    volumes: np.ndarray,
    rates: np.ndarray,
    history: int,
    *,
    batch: int | None = None,
    carrier: int | None = None,
) -> IncidentAccount:
    """`history` + INC_LOOK days of one account, known on its last day; the data begin on day 0
    (no order before it, so the first weeks' arrivals lack the defects of earlier orders).
    `batch`: the day a bad batch (INC_BATCH) begins, in all its series; `carrier`: the day a
    carrier week (INC_CARRIER) begins, in the series with the most defects a day: extra defects
    of the orders of the days before arrive at once."""
    days = history + INC_LOOK
    max_age = len(INC_DELAY) - 1
    age = np.arange(days)[:, None] + np.arange(max_age + 1)[None, :]  # arrival day of lags[j, a]
    rows, all_lags = [], []
    hit = int(np.argmax(volumes * rates))
    for i, (volume, rate) in enumerate(zip(volumes, rates, strict=True)):
        n = rng.poisson(volume * WEEKDAY[np.arange(days) % 7])
        p = np.full(days, rate)
        if batch is not None:
            p[batch : batch + INC_BATCH[0]] = min(INC_BATCH[1] * rate, 0.5)
        lags = np.zeros((days, max_age + 1))
        lags[:, : INC_MAX_DELAY + 1] = rng.multinomial(rng.binomial(n, p), INC_DELAY[: INC_MAX_DELAY + 1])
        if carrier is not None and i == hit:
            expected = np.convolve(n * rate, INC_DELAY)[:days]
            for u in range(carrier, min(carrier + INC_CARRIER[0], days)):
                ages = rng.choice(
                    max_age + 1, size=rng.poisson((INC_CARRIER[1] - 1) * expected[u]), p=INC_DELAY
                )
                ages = ages[ages <= u]  # orders placed before the data begin are not in it
                np.add.at(lags, (u - ages, ages), 1.0)
        lags[age > days - 1] = 0.0  # not arrived yet
        arrived = np.bincount(age.ravel(), weights=lags.ravel(), minlength=days)[:days]
        all_lags.append(lags)
        rows.append(
            pl.DataFrame(
                {
                    "marketplace_id": f"M{i // 2}",
                    "channel": ("AFN", "MFN")[i % 2],
                    "day": pl.date_range(
                        INC_START, INC_START + dt.timedelta(days=days - 1), "1d", eager=True
                    ),
                    "orders": n,
                    "arrived": arrived,
                    "by_order_day": lags.sum(axis=1),
                }
            )
        )
    frame = spikes.with_exposure(pl.concat(rows))
    day_list = frame["day"][:days].to_list()
    series = [
        spikes.SeriesDays(
            days=day_list,
            orders=g["orders"].to_numpy().astype(float),
            arrived=g["arrived"].to_numpy(),
            exposure=g["exposure"].to_numpy(),
            lags=lags,
        )
        for g, lags in zip(
            frame.partition_by("marketplace_id", "channel", maintain_order=True), all_lags, strict=True
        )
    ]
    # the delay CDF from the account's defects known on its last day, as `spikes.delay_distribution`
    counts = np.sum(all_lags, axis=0).astype(int)
    j, a = np.nonzero(counts)
    cdf = spikes.delay_cdf(np.repeat(a, counts[j, a]), np.repeat(days - 1 - j, counts[j, a]), max_age)
    return IncidentAccount(series, cdf, frame)


def account_incidents(acc: IncidentAccount, settings: spikes.Settings, first: int) -> list[tuple[int, int]]:
    """(first alarm day, last day) of each incident of the account, day indices, all series."""
    index = {day: i for i, day in enumerate(acc.series[0].days)}
    return [
        (index[dt.date.fromisoformat(i["firstAlarm"])], index[dt.date.fromisoformat(i["lastDay"])])
        for v in acc.series
        for i in spikes.series_incidents(v, acc.cdf, settings, first=first)
    ]


def today_alarms(acc: IncidentAccount, first: int) -> list[tuple[int, int]]:
    """(first day, last day) of each run of consecutive alarm days of `spikes.detect` (every
    detector, arrival basis, as the report lists them today), per series."""
    days = acc.series[0].days
    found = spikes.detect(None, days[-1], first=days[first], series=acc.frame)
    on: dict[tuple[str, str], set[int]] = {}
    for a in found:
        on.setdefault((a["marketplaceId"], a["channel"]), set()).add(
            (dt.date.fromisoformat(a["date"]) - days[0]).days
        )
    runs = []
    for alarm_days in on.values():
        for t in sorted(alarm_days):
            if t - 1 in alarm_days:
                runs[-1][1] = t
            else:
                runs.append([t, t])
    return [(a, b) for a, b in runs]


def incident_table(rng, count: int, history: int, settings: spikes.Settings, t0: float) -> None:
    """Part 4: false incidents per account-year, and the share of bad batches and carrier weeks
    found, for the shipped incidents, each of their two tests alone, and today's alarms."""
    today = "today: every detector's alarms"
    variants = {
        "incidents (shipped settings)": settings,
        "  arrival GLR alone": dataclasses.replace(settings, incident_order_h=np.inf),
        "  order-day GLR alone": dataclasses.replace(settings, incident_glr_h=np.inf),
    }
    # per row: false incidents in the first 30 days and later, batches found, carrier weeks found
    rows = {name: np.zeros(4) for name in [*variants, today]}
    n_today, n_carrier = min(count, INC_TODAY), min(count, INC_CARRIER_ACCOUNTS)
    for k, (volumes, rates) in enumerate(incident_accounts(rng, count)):
        null = simulate_incident_account(rng, volumes, rates, history)
        start = history + int(rng.integers(0, INC_LOOK - INC_WITHIN))
        batch = simulate_incident_account(rng, volumes, rates, history, batch=start)
        carrier = (
            simulate_incident_account(rng, volumes, rates, history, carrier=start) if k < n_carrier else None
        )
        runs = {
            name: [account_incidents(acc, s, history) if acc else None for acc in (null, batch, carrier)]
            for name, s in variants.items()
        }
        if k < n_today:
            runs[today] = [today_alarms(acc, history) if acc else None for acc in (null, batch, carrier)]
        for name, (false, found, carried) in runs.items():
            rows[name] += [
                sum(a - history < INC_FIRST for a, _ in false),
                sum(a - history >= INC_FIRST for a, _ in false),
                any(a <= start + INC_WITHIN and b >= start for a, b in found),
                carried is not None
                and any(a < start + INC_CARRIER_WITHIN and b >= start for a, b in carried),
            ]
    print(
        f"== Incidents, account level: {count} spike-free accounts of 2-4 series (30-600 orders a day each,"
        f" rate 0.2-0.8 %,\n   defects 1-15 days after the order), {history + INC_LOOK} days of data, the"
        f" last {INC_LOOK} looked at; the same accounts with a bad batch\n   (x{INC_BATCH[1]:g} on"
        f" {INC_BATCH[0]} order days, every series), and the first {n_carrier} with a carrier week (x"
        f"{INC_CARRIER[1]:g} arrivals\n   for {INC_CARRIER[0]} days, the largest series)"
        f" ({time.perf_counter() - t0:.0f} s so far)\n"
    )
    sub = (
        f"{'':<32}{'all':>8}{f'first {INC_FIRST} d':>13}{'later':>8}"
        f"{f'<= {INC_WITHIN} days':>13}{f'<= {INC_CARRIER_WITHIN} days':>13}"
    )
    head = f"{'':<32}{'false incidents per account-year':>29}{'batch found':>13}{'carrier week':>13}"
    print(head + "\n" + sub + "\n" + "-" * len(sub))
    for name, (first, later, found, carried) in rows.items():
        n = n_today if name == today else count
        nc = min(n, n_carrier)
        print(
            f"{name:<32}{(first + later) / (n * INC_LOOK / 365):>8.2f}{first / (n * INC_FIRST / 365):>13.2f}"
            f"{later / (n * (INC_LOOK - INC_FIRST) / 365):>8.2f}{found / n:>13.0%}{carried / max(nc, 1):>13.0%}"
        )
    print(
        f"(today: on the first {n_today} accounts. An incident counts on its first alarm day; a spike is found"
        " when an\n incident of the account has an alarm day within that many days of its start.)\n"
    )


if __name__ == "__main__":
    main()
