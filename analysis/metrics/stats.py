"""Status rules of metrics.md: Amazon's plain status, the volume-aware status, p-value, interval."""

from __future__ import annotations

import math
from fractions import Fraction

from scipy.stats import beta as beta_dist
from scipy.stats import binom

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
    return float(binom.sf(k - 1, denominator, p))


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
    return float(beta_dist.sf(target, alpha, beta))
