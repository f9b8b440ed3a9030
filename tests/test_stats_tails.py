"""The tail functions of `analysis.metrics.stats` are scipy.stats' own, value for value: the
p-values, spike tests and shrunk rates computed with them must not move by one bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analysis.metrics import stats


def _same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape
    both_nan = np.isnan(ours) & np.isnan(theirs)
    assert np.array_equal(ours[~both_nan], theirs[~both_nan]), (ours, theirs)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))


KS = [-np.inf, -3, -1, -0.5, 0, 0.5, 1, 2, 9, 10, 11, 99, 100, 101, 4_999, 1e6, np.inf, np.nan]
NS = [0, 1, 10, 100, 5_000, 2.5, -1, np.nan]
PS = [0.0, 1e-9, 0.001, 0.01, 0.04, 0.5, 0.99, 1.0, -0.1, 1.1, np.nan]


def test_binom_sf_is_scipys():
    k, n, p = np.meshgrid(KS, NS, PS, indexing="ij")
    _same(stats.binom_sf(k, n, p), scipy_stats.binom.sf(k, n, p))
    # one value in, one value out (not an array), as scipy gives it
    assert np.ndim(stats.binom_sf(3, 100, 0.01)) == 0
    assert stats.binom_sf(3, 100, 0.01) == scipy_stats.binom.sf(3, 100, 0.01)


def test_poisson_sf_is_scipys():
    k, mu = np.meshgrid(KS, [0, 1e-6, 0.3, 1, 7.5, 100, 1e5, -1, np.nan], indexing="ij")
    _same(stats.poisson_sf(k, mu), scipy_stats.poisson.sf(k, mu))


@pytest.mark.parametrize("a", [1e-3, 0.5, 1, 3.2, 400, 1e6, 0, -1, np.nan])
def test_beta_sf_is_scipys(a):
    x, b = np.meshgrid([-1, 0, 1e-9, 0.001, 0.01, 0.5, 0.999, 1, 2, np.nan], [1e-3, 0.5, 2, 1e5, 0, np.nan])
    _same(stats.beta_sf(x, a, b), scipy_stats.beta.sf(x, a, b))


def test_random_values_agree():
    rng = np.random.default_rng(7)
    n = rng.integers(1, 200_000, 2_000)
    p = rng.uniform(0, 0.2, 2_000)
    k = rng.binomial(n, p * 1.3)
    _same(stats.binom_sf(k - 1, n, p), scipy_stats.binom.sf(k - 1, n, p))
    mu = rng.uniform(0, 50, 2_000)
    _same(stats.poisson_sf(k % 80, mu), scipy_stats.poisson.sf(k % 80, mu))
    a, b = rng.uniform(0.1, 500, 2_000), rng.uniform(0.1, 5e4, 2_000)
    _same(stats.beta_sf(p, a, b), scipy_stats.beta.sf(p, a, b))


def test_the_commands_do_not_import_scipy_stats():
    """The reason these exist: a command's start does not pay for scipy.stats."""
    import subprocess
    import sys

    code = (
        "import sys, datetime as dt; from analysis.metrics import health, stats; "
        "from analysis.insights import spikes, defects; from analysis.report import render; "
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"
