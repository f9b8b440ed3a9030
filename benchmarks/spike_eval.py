"""How good is each spike detector? Simulated accounts, injected spikes, and the best possible.

    .venv/bin/python benchmarks/spike_eval.py [--accounts 240] [--seed 1]

Each account has 5 to 5,000 orders a day (log-uniform, weekly seasonality), a baseline defect
rate of 0.2-0.8 %, and defects that arrive after a realistic delay (log-normal, median 8 days).
Detectors watch the arrival series in real time, as `analysis.spikes` does. For every detector
the threshold is calibrated on spike-free accounts to at most 1 false alarm per account-year
(an alarm = a run of consecutive alarm days), then spikes of known size (x2, x3, x5 the rate)
and length (3, 7, 14 days, on order days) are injected.

The limit: a likelihood-ratio test that knows the spike's start, size, length and the delay
distribution, evaluated 3 days after the start, with its threshold set on the same spike-free
accounts to the false-alarm probability that 1 alarm per year gives a 4-day window. A detector
is judged by the share of the spikes the limit finds within 3 days that it also finds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis import spikes

BASE_DAYS, DAYS = 90, 365
WEEKDAY = np.array([1.12, 1.08, 1.04, 1.0, 0.95, 0.86, 0.95])
MAX_DELAY = 60


def delay_pmf() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.clip(np.round(np.exp(rng.normal(np.log(8), 0.7, 200_000))), 0, MAX_DELAY - 1).astype(int)
    return np.bincount(x, minlength=MAX_DELAY) / len(x)


F = delay_pmf()


def simulate(rng, volume: float, p0: float, spike: tuple[int, int, float] | None, scenario: str = "order"):
    """(orders per order day, defects arriving per day, exposure) for BASE_DAYS + DAYS days.

    scenario "order": the spike raises the defect rate of the orders placed on its days (a bad
    SKU batch), and its defects arrive later; "arrival": the spike multiplies the defects
    arriving on its days (a carrier losing a week of parcels, claims filed at once)."""
    total = BASE_DAYS + DAYS
    lam = volume * WEEKDAY[np.arange(total) % 7]
    n = rng.poisson(lam)
    p = np.full(total, p0)
    if spike and scenario == "order":
        s, length, k = spike
        p[s : s + length] = min(k * p0, 0.5)
    x = rng.binomial(n, p)
    arrivals = np.zeros(total + MAX_DELAY, dtype=int)
    for o in np.flatnonzero(x):
        arrivals[o : o + MAX_DELAY] += rng.multinomial(x[o], F)
    d = arrivals[:total]
    if spike and scenario == "arrival":
        s, length, k = spike
        expected = np.convolve(n * p0, F)[:total]
        d[s : s + length] += rng.poisson((k - 1) * expected[s : s + length])
    # exposure: mean orders of the 28 days before, as in analysis.spikes
    c = np.concatenate([[0], np.cumsum(n)])
    idx = np.arange(total)
    lo = np.maximum(idx - 28, 0)
    exposure = np.where(idx > 0, (c[idx] - c[lo]) / np.maximum(idx - lo, 1), n[0])
    return n, d, np.maximum(exposure, 1.0)


SETTINGS = spikes.Settings()


def detector_alarms(name: str, thr: float, d, expo, p0_hat):
    s = SETTINGS
    if name == "p-chart":
        return spikes.pchart(d, expo, p0_hat, thr)[1]
    if name == "cusum":
        return spikes.cusum(d, expo, p0_hat, s.cusum_ratio, thr)[1]
    if name == "ewma":
        return spikes.ewma(d, expo, p0_hat, s.ewma_lambda, thr)[2]
    if name == "laney":
        sz = spikes.laney(d[:BASE_DAYS], expo[:BASE_DAYS], p0_hat, thr)[2]
        return spikes.laney(d, expo, p0_hat, thr, sz)[1]
    if name == "naive (7-day rate > 1 %)":
        return spikes.naive(d, expo, 7, 0.01)
    raise ValueError(name)


GRIDS = {
    "p-chart": [1e-2, 3e-3, 1e-3, 5e-4, 2e-4, 1e-4, 3e-5, 1e-5],
    "cusum": [2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 10],
    "ewma": [2.7, 3.0, 3.4, 3.8, 4.2, 4.5, 4.8, 5.2, 5.5, 6.0],
    "laney": [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0],
    "naive (7-day rate > 1 %)": [0],
}
MORE_SENSITIVE_FIRST = {
    "p-chart": False,
    "cusum": True,
    "ewma": True,
    "laney": True,
    "naive (7-day rate > 1 %)": True,
}


def episodes(alarm: np.ndarray) -> np.ndarray:
    """First day of each run of consecutive alarm days."""
    a = alarm.astype(int)
    return np.flatnonzero(np.diff(np.concatenate([[0], a])) == 1)


def llr(d, n, p0, s, length, k, upto, scenario="order"):
    """Log-likelihood ratio (Poisson) of arrivals in [s, upto] under the known spike vs none."""
    total = len(d)
    lam0 = np.convolve(n * p0, F)[:total]
    if scenario == "order":
        extra = np.zeros(total)
        extra[s : s + length] = n[s : s + length] * p0 * (min(k * p0, 0.5) / p0 - 1)
        lam1 = lam0 + np.convolve(extra, F)[:total]
    else:
        lam1 = lam0.copy()
        lam1[s : s + length] *= k
    u = slice(s, upto + 1)
    lam0u, lam1u = np.maximum(lam0[u], 1e-12), np.maximum(lam1[u], 1e-12)
    return float(np.sum(d[u] * np.log(lam1u / lam0u) - (lam1u - lam0u)))


def accounts(rng, count):
    vols = np.exp(rng.uniform(np.log(5), np.log(5000), count))
    p0s = rng.uniform(0.002, 0.008, count)
    return list(zip(vols, p0s, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=400, help="accounts per simulation set")
    ap.add_argument("--scenario", choices=("arrival", "order", "both"), default="both")
    ap.add_argument("--cusum-ratio", type=float, default=spikes.Settings.cusum_ratio)
    ap.add_argument("--ewma-lambda", type=float, default=spikes.Settings.ewma_lambda)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    global SETTINGS
    SETTINGS = spikes.Settings(cusum_ratio=args.cusum_ratio, ewma_lambda=args.ewma_lambda)

    # 1. spike-free accounts: calibrate every detector to <= 1 false alarm per account-year
    null = []
    for vol, p0 in accounts(rng, args.accounts):
        n, d, expo = simulate(rng, vol, p0, None)
        p0_hat = spikes.baseline_rate(d[30:BASE_DAYS], expo[30:BASE_DAYS])
        null.append((vol, p0, n, d, expo, p0_hat))
    chosen = {}
    fa_rate = {}
    for name, grid in GRIDS.items():
        for thr in grid:
            fa = sum(
                len(episodes(detector_alarms(name, thr, d, e, ph)[BASE_DAYS:])) for _, _, _, d, e, ph in null
            )
            rate = fa / len(null) * 365 / DAYS
            chosen[name], fa_rate[name] = thr, rate
            if rate <= 1.0:
                break
    # the limit's threshold: null LLR quantile at 1 false alarm per year over a 4-day window
    alpha = 4 / 365

    print("Thresholds calibrated on spike-free accounts (<= 1 false alarm per account-year):")
    print("  " + ", ".join(f"{k}: {v:g}" for k, v in chosen.items() if not k.startswith("naive")) + "\n")
    for scenario in ("arrival", "order") if args.scenario == "both" else (args.scenario,):
        evaluate(rng, args, chosen, fa_rate, alpha, scenario, t0)


def evaluate(rng, args, chosen, fa_rate, alpha, scenario, t0) -> None:
    sizes, lengths = (2.0, 3.0, 5.0), (3, 7, 14)
    rows = []
    for vol, p0 in accounts(rng, args.accounts):
        k = float(rng.choice(sizes))
        length = int(rng.choice(lengths))
        s = BASE_DAYS + int(rng.integers(30, DAYS - 40))
        n, d, expo = simulate(rng, vol, p0, (s, length, k), scenario)
        n0, d0, _ = simulate(rng, vol, p0, None)
        p0_hat = spikes.baseline_rate(d[30:BASE_DAYS], expo[30:BASE_DAYS])
        lim = llr(d, n, p0, s, length, k, s + 3, scenario)
        lim_null = llr(d0, n0, p0, s, length, k, s + 3, scenario)
        rec = {"vol": vol, "k": k, "len": length, "llr": lim, "llr_null": lim_null}
        for name in GRIDS:
            al = detector_alarms(name, chosen[name], d, expo, p0_hat)
            first = [t for t in np.flatnonzero(al) if t >= s]
            rec[name] = (first[0] - s) if first and first[0] - s <= length + 45 else None
        rows.append(rec)
    c = float(np.quantile([r["llr_null"] for r in rows], 1 - alpha))
    limit_hits = [r["llr"] > c for r in rows]

    title = {
        "arrival": "spikes in the defects' arrival (a carrier loses a week of parcels)",
        "order": "spikes on order days, defects arriving later (a bad batch)",
    }[scenario]
    print(f"== {title}: {len(rows)} spikes, 5-5,000 orders a day ({time.perf_counter() - t0:.0f} s so far)\n")
    head = f"{'detector':<26}{'setting':>9}{'false alarms/yr':>17}{'detected':>10}{'<= 3 days':>11}{'median days':>13}{'vs limit':>10}"
    print(head)
    print("-" * len(head))
    for name in GRIDS:
        lat = [r[name] for r in rows if r[name] is not None]
        within = [r[name] is not None and r[name] <= 3 for r in rows]
        both = sum(w and h for w, h in zip(within, limit_hits, strict=True))
        vs = both / max(sum(limit_hits), 1)
        med = f"{np.median(lat):.0f}" if lat else "-"
        print(
            f"{name:<26}{chosen[name]:>9g}{fa_rate[name]:>17.2f}{len(lat) / len(rows):>10.0%}"
            f"{np.mean(within):>11.0%}{med:>13}{vs:>10.0%}"
        )
    print(
        f"{'limit (LR test, known spike)':<26}{'':>9}{'(same)':>17}{'':>10}{np.mean(limit_hits):>11.0%}{'':>13}{'100%':>10}"
    )
    print(
        "\nvs limit: share of the spikes the limit finds within 3 days that the detector also finds within 3 days."
    )
    print("By size (detected at all / within 3 days):")
    for k in sizes:
        sub = [r for r in rows if r["k"] == k]
        cells = "  ".join(
            f"{name.split()[0]} {np.mean([r[name] is not None for r in sub]):.0%}/{np.mean([r[name] is not None and r[name] <= 3 for r in sub]):.0%}"
            for name in GRIDS
        )
        lim = np.mean([r["llr"] > c for r in sub])
        print(f"  x{k:g}: {cells}  limit -/{lim:.0%}")
    print()


if __name__ == "__main__":
    main()
