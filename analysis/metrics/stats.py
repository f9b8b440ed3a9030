"""Status rules of metrics.md: Amazon's plain status, the volume-aware status, p-value, interval."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import special
from scipy.special import _ufuncs

LESS_THAN = "LESS_THAN"
GREATER_THAN = "GREATER_THAN"
SIGNIFICANCE = 0.05
CONFIDENCE = 0.95
_Z = 1.959963984540054  # two-sided 95 % normal quantile


def status(numerator: int, denominator: int, target: float, condition: str) -> str:
    """`GOOD` only when the rate meets the target strictly; exact rational comparison, so that
    1 in 100 against 0.01 is `BAD` and 19 in 20 against 0.95 is `BAD`, whatever floats do."""
    if denominator == 0:
        return "NONE"
    rate = Fraction(numerator, denominator)
    t = Fraction(str(target))
    good = rate < t if condition == LESS_THAN else rate > t
    return "GOOD" if good else "BAD"


def p_value(numerator: int, denominator: int, target: float, condition: str) -> float | None:
    """One-sided exact binomial test of a shortfall against the target (metrics.md).

    LESS_THAN: P(X >= defects | n, target); GREATER_THAN: P(X >= failures | n, 1 - target).
    """
    if denominator == 0:
        return None
    if condition == LESS_THAN:
        k, p = numerator, target
    else:
        k, p = denominator - numerator, 1.0 - target
    if k <= 0:
        return 1.0
    return float(binom_sf(k - 1, denominator, p))


def volume_adjusted_status(numerator: int, denominator: int, target: float, condition: str) -> str:
    plain = status(numerator, denominator, target, condition)
    if plain in ("NONE", "GOOD"):
        return plain
    p = p_value(numerator, denominator, target, condition)
    return "BAD" if p is not None and p < SIGNIFICANCE else "AT_RISK"


def wilson_interval(numerator: int, denominator: int) -> dict | None:
    """Wilson score interval of the rate; it contains the rate and stays inside [0, 1]."""
    if denominator == 0:
        return None
    n, phat, z2 = denominator, numerator / denominator, _Z * _Z
    centre = (phat + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z / (1 + z2 / n) * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    lower = 0.0 if numerator == 0 else max(0.0, min(phat, centre - half))
    upper = 1.0 if numerator == n else min(1.0, max(phat, centre + half))
    return {"lower": lower, "upper": upper, "method": "Wilson", "confidence": CONFIDENCE}


def judge(numerator: int, denominator: int, target: float, condition: str) -> dict:
    """All the status fields of one metric object."""
    return {
        "rate": numerator / denominator if denominator else 0.0,
        "status": status(numerator, denominator, target, condition),
        "volumeAdjustedStatus": volume_adjusted_status(numerator, denominator, target, condition),
        "pValue": p_value(numerator, denominator, target, condition),
        "rateInterval": wilson_interval(numerator, denominator),
    }


# ----------------------------------------------------------------------------- beta-binomial (shrunk rates of groups)


def fit_beta_prior(defects: list[int], orders: list[int]) -> tuple[float, float]:
    """Beta(alpha, beta) prior from groups' counts by the method of moments (spike-statistics.md
    section 4): the spread of rates beyond what binomial noise explains sets its strength."""
    pairs = [(d, n) for d, n in zip(defects, orders, strict=True) if n > 0]
    if not pairs:
        return 1.0, 99.0
    total_d, total_n = sum(d for d, _ in pairs), sum(n for _, n in pairs)
    mu = min(max(total_d / total_n, 1e-6), 1 - 1e-6)
    var_w = sum(n * (d / n - mu) ** 2 for d, n in pairs) / total_n
    noise = mu * (1 - mu) * sum(1 / n for _, n in pairs) / len(pairs)
    excess = var_w - noise
    strength = mu * (1 - mu) / excess - 1 if excess > 0 else 10 * max(n for _, n in pairs)
    strength = min(max(strength, 2.0), 1e7)
    return mu * strength, (1 - mu) * strength


def beta_above(target: float, alpha: float, beta: float) -> float:
    """P(rate > target) under a Beta(alpha, beta) posterior."""
    return float(beta_sf(target, alpha, beta))


# ----------------------------------------------------------------------------- tail functions
# `scipy.stats.binom.sf`, `poisson.sf` and `beta.sf`, computed by the same scipy.special functions
# those call, with the same handling of values outside the support and of invalid parameters
# (tested equal, value for value, to scipy.stats): importing scipy.stats took 0.5-0.9 s of every
# command and report; scipy.special 0.2 s.


def _tail(inside, below, valid, compute, *args):
    """Like scipy's `rv_generic.sf`: `compute` where the value is inside the support and the
    parameters valid (clipped to [0, 1]), 1 below the support, 0 above it, NaN when invalid."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))
    out = np.zeros(arrays[0].shape)
    bad = ~valid(*arrays) | np.isnan(arrays[0])
    good = inside(*arrays) & ~bad
    out[below(*arrays) & ~bad] = 1.0
    if good.any():
        out[good] = np.clip(compute(*(a[good] for a in arrays)), 0, 1)
    out[bad] = np.nan
    return out[()] if out.ndim == 0 else out


def binom_sf(k, n, p):
    """P(X > k), X ~ Binomial(n, p): `scipy.stats.binom.sf`."""
    return _tail(
        lambda k, n, p: (k >= 0) & (k < n) & np.isfinite(k),
        lambda k, n, p: k < 0,
        lambda k, n, p: (n >= 0) & (n == np.floor(n)) & (p >= 0) & (p <= 1),
        lambda k, n, p: _ufuncs._binom_sf(np.floor(k), n, p),
        k, n, p,
    )  # fmt: skip


def poisson_sf(k, mu):
    """P(X > k), X ~ Poisson(mu): `scipy.stats.poisson.sf`."""
    return _tail(
        lambda k, mu: (k >= 0) & np.isfinite(k),
        lambda k, mu: k < 0,
        lambda k, mu: mu >= 0,
        lambda k, mu: special.pdtrc(np.floor(k), mu),
        k, mu,
    )  # fmt: skip


def beta_sf(x, a, b):
    """P(X > x), X ~ Beta(a, b): `scipy.stats.beta.sf`."""
    return _tail(
        lambda x, a, b: (x > 0) & (x < 1),
        lambda x, a, b: x <= 0,
        lambda x, a, b: (a > 0) & (b > 0),
        lambda x, a, b: special.betaincc(a, b, x),
        x, a, b,
    )  # fmt: skip
