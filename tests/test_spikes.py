"""Spike detectors on hand-computed series, a calm low-volume account, and the sample's spikes."""

import datetime as dt
import json
import math
import subprocess
import sys
from math import comb

import numpy as np
import polars as pl
import pytest

from analysis.inputs import sample
from analysis.insights import spikes


def sf(k, n, p):
    return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def test_pchart_exact_binomial():
    d, n = np.array([0, 1, 3]), np.array([100, 100, 100])
    p, alarm = spikes.pchart(d, n, 0.01, 0.01)
    assert p == pytest.approx([1.0, sf(1, 100, 0.01), sf(3, 100, 0.01)])
    assert p[1] == pytest.approx(0.634, abs=1e-3) and p[2] == pytest.approx(0.0794, abs=1e-3)
    assert alarm.tolist() == [False, False, False]
    assert spikes.pchart(np.array([5]), np.array([100]), 0.01, 0.01)[1].tolist() == [True]  # p = 0.0034


def test_cusum_by_hand():
    a, b = math.log(3), math.log(0.97 / 0.99)
    d = np.array([0, 3, 4, 2, 3, 0])
    n = np.full(6, 100)
    s, alarm = spikes.cusum(d, n, 0.01, 3.0, 4.0)
    s1 = 0.0
    s2 = 3 * a + 97 * b
    s3 = s2 + 4 * a + 96 * b
    s4 = s3 + 2 * a + 98 * b
    s5 = s4 + 3 * a + 97 * b
    assert s[:5] == pytest.approx([s1, s2, s3, s4, s5])
    assert s2 == pytest.approx(1.3162, abs=1e-4) and s4 == pytest.approx(3.9485, abs=1e-4)
    assert alarm.tolist() == [False, False, False, False, True, False]  # restarts after the alarm
    assert s[5] == pytest.approx(max(0.0, 100 * b))


def test_ewma_exact_variance_by_hand():
    z, ucl, alarm = spikes.ewma(np.array([2, 0]), np.array([100, 50]), 0.01, 0.2, 3.0)
    assert z == pytest.approx([0.012, 0.0096])
    var1 = 0.01 * 0.99 * 0.04 / 100
    var2 = 0.01 * 0.99 * (0.04 / 50 + 0.04 * 0.64 / 100)
    assert ucl == pytest.approx([0.01 + 3 * math.sqrt(var1), 0.01 + 3 * math.sqrt(var2)])
    assert alarm.tolist() == [False, False]
    assert spikes.ewma(np.array([10]), np.array([100]), 0.01, 0.2, 3.0)[2].tolist() == [True]


def test_laney_by_hand():
    d, n = np.array([10, 30, 10, 50]), np.array([1000, 1000, 1000, 1000])
    sd = math.sqrt(0.02 * 0.98 / 1000)
    z = (d / 1000 - 0.02) / sd
    mr = np.abs(np.diff(z)).mean() / 1.128
    zp, alarm, sigma_z = spikes.laney(d, n, 0.02, 3.0)
    assert sigma_z == pytest.approx(max(1.0, mr))
    assert zp == pytest.approx(z / sigma_z)
    assert alarm.tolist() == [False, False, False, bool(z[3] / sigma_z > 3.0)]
    # low volume: the normal approximation is not used, whatever the z
    assert not spikes.laney(np.array([1]), np.array([10]), 0.01, 3.0, 1.0)[1].any()


def test_glr_by_hand():
    """Day by day, the largest Poisson GLR over the windows (of up to 2 days) ending that day."""
    d, n = np.array([0, 1, 3, 0, 6]), np.full(5, 100)
    g, alarm = spikes.glr(d, n, 0.01, 2, 3.0)
    # day 1: window {1}: D = E = 1 -> 0; {0,1}: D 1 < E 2 -> 0
    # day 2: {2}: 3 ln 3 - 2 = 1.2958; {1,2}: 4 ln 2 - 2 = 0.7726
    # day 3: {3}: 0; {2,3}: 3 ln 1.5 - 1 = 0.2164
    # day 4: {4}: 6 ln 6 - 5 = 5.7506; {3,4}: 6 ln 3 - 4 = 2.5917
    assert g == pytest.approx([0.0, 0.0, 3 * math.log(3) - 2, 3 * math.log(1.5) - 1, 6 * math.log(6) - 5])
    assert g[2] == pytest.approx(1.2958, abs=1e-4) and g[4] == pytest.approx(5.7506, abs=1e-4)
    assert alarm.tolist() == [False, False, False, False, True]
    # a longer window sees two moderate days together: 4 ln 2 - 2 on day 2 of window {1, 2}
    d2 = np.array([0, 2, 2])
    g2 = spikes.glr(d2, np.full(3, 100), 0.01, 3, 99.0)[0]
    assert g2[2] == pytest.approx(max(2 * math.log(2) - 1, 4 * math.log(2) - 2, 4 * math.log(4 / 3) - 1))
    assert g2[2] == pytest.approx(4 * math.log(2) - 2)


def test_glr_windows_min_window_and_penalty_by_hand():
    """The order basis's GLR: windows of min_window to window days; longer ones pay a penalty."""
    n = np.full(5, 100)
    d = np.array([0, 0, 4, 4, 4])
    # day 4 (E = 1 a day): {3, 4}: 8 ln 4 - 6 = 5.0904; {2, 3, 4}: 12 ln 4 - 9 = 7.6355
    two, three = 8 * math.log(4) - 6, 12 * math.log(4) - 9
    assert two == pytest.approx(5.0904, abs=1e-4) and three == pytest.approx(7.6355, abs=1e-4)
    stat, width = spikes.glr_windows(d, n, 0.01, 3, min_window=2, penalty=1.0)
    assert stat[4] == pytest.approx(three - 1) and width[4] == 3
    stat, width = spikes.glr_windows(d, n, 0.01, 3, min_window=2, penalty=3.0)
    assert stat[4] == pytest.approx(two) and width[4] == 2  # 7.64 - 3 < 5.09: the short one
    # no 1-day window: day 2 alone (4 ln 4 - 3 = 2.545) is not tested, {1, 2} is: 4 ln 2 - 2
    assert stat[2] == pytest.approx(4 * math.log(2) - 2) and stat[0] == 0.0
    # a penalized longer window below zero does not pull the statistic under 0
    quiet = spikes.glr_windows(np.array([1, 0, 0]), np.full(3, 100), 0.01, 3, min_window=2, penalty=1.0)
    assert quiet[0].tolist() == [0.0, 0.0, 0.0]
    # several series side by side (the evaluation's order days as known each day): column-wise
    d2 = np.column_stack([d, d[::-1]])
    both = spikes.glr_windows(d2, np.full((5, 2), 100), 0.01, 3, min_window=2, penalty=1.0)[0]
    for j in range(2):
        alone = spikes.glr_windows(d2[:, j], n, 0.01, 3, min_window=2, penalty=1.0)[0]
        assert both[:, j] == pytest.approx(alone)


def test_baseline_rates_lag_and_window():
    """Day t's baseline: (defects + 1/2) / (orders + 1) over days [t - lag - days, t - lag)."""
    d = np.array([1, 0, 2, 0, 0, 5, 0, 0], dtype=float)
    n = np.full(8, 100.0)
    r = spikes.baseline_rates(d, n, days=3, lag=2, min_days=2)
    # day 6: window [1, 4) -> 2 defects in 300 orders; day 7: [2, 5) -> 2 in 300
    assert r[6] == pytest.approx(2.5 / 301) and r[7] == pytest.approx(2.5 / 301)
    # day 5 (the spike day) does not count towards its own baseline: [0, 3) -> 3 in 300
    assert r[5] == pytest.approx(3.5 / 301)
    # day 3: [0, 1) holds 1 day < min_days, so all days before it: [0, 3)
    assert r[3] == pytest.approx(3.5 / 301)
    # unusable days are left out of the baseline
    usable = np.array([True, True, False, True, True, True, True, True])
    assert spikes.baseline_rates(d, n, usable, days=3, lag=2, min_days=2)[6] == pytest.approx(0.5 / 201)


def test_calm_low_volume_account_raises_no_alarm():
    """10 orders a day, 1 defect now and then (every 30 days): 1 in 10 on those days, no alarm."""
    n = np.full(365, 10.0)
    d = np.zeros(365)
    d[::30] = 1
    p0 = spikes.baseline_rate(d[:90], n[:90])
    s = spikes.Settings()
    warm = slice(30, None)  # alarms are reported after the baseline period, as `detect` does
    assert not spikes.pchart(d, n, p0, s.pchart_alpha)[1].any()
    assert not spikes.cusum(d, n, p0, s.cusum_ratio, s.cusum_h)[1].any()
    assert not spikes.ewma(d, n, p0, s.ewma_lambda, s.ewma_l)[2][warm].any()
    assert not spikes.laney(d, n, p0, s.laney_k)[1].any()
    assert not spikes.glr(d, n, p0, s.glr_window, s.glr_h)[1].any()
    assert not spikes.glr(d, n, spikes.baseline_rates(d, n), s.glr_window, s.glr_h)[1][warm].any()
    assert spikes.naive(d, n, 7, 0.01)[warm].any()  # the naive rule cries wolf


@pytest.fixture(scope="module")
def order_alarms(sample_data):
    return spikes.detect(sample_data, dt.date(2026, 11, 15), first=dt.date(2026, 8, 1), basis="order")


def test_sample_spikes_found_within_three_days(order_alarms, sample_dir):
    for spike in sample.manifest(sample_dir)["spikes"]:
        start = dt.date.fromisoformat(spike["start"])
        near = [
            a
            for a in order_alarms
            if start - dt.timedelta(days=3)
            <= dt.date.fromisoformat(a["date"])
            <= start + dt.timedelta(days=3)
            and (spike["marketplaceId"] in (None, a["marketplaceId"]))
            and (spike["channel"] in (None, a["channel"]))
        ]
        assert near, f"no alarm within 3 days of the {spike['kind']} spike starting {start}"
        # the detector the README recommends finds it too
        assert any(a["detector"] == "glr" for a in near), spike
        if spike["kind"] == "sku":
            assert any(spike["sku"] in [x["value"] for x in a["drivers"]["skus"]] for a in near)
        else:
            assert any(spike["carrier"] in [x["value"] for x in a["drivers"]["carriers"]] for a in near)


def test_spikes_cli_json(sample_dir):
    r = subprocess.run(
        [sys.executable, "-m", "analysis", "spikes", "--data", str(sample_dir), "--as-of", "2026-09-30", "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["alarms"], "the FedEx week should raise alarms on arrival in September"
    for a in doc["alarms"]:
        assert {
            "date",
            "marketplaceId",
            "channel",
            "detector",
            "observed",
            "expected",
            "pValue",
            "drivers",
        } <= set(a)
        assert a["detector"] in spikes.DETECTORS
        assert "2026-09-03" <= a["date"] <= "2026-09-30"
        # the GLR speaks for the window that fired (up to 7 days), the others for their day
        start, day = dt.date.fromisoformat(a["windowStart"]), dt.date.fromisoformat(a["date"])
        assert 0 <= (day - start).days < (spikes.Settings().glr_window if a["detector"] == "glr" else 1)
    assert any(a["windowStart"] != a["date"] for a in doc["alarms"] if a["detector"] == "glr")
    keys = [(a["date"], a["marketplaceId"], a["channel"], a["detector"]) for a in doc["alarms"]]
    assert len(keys) == len(set(keys))  # one entry per alarm day and detector


def test_spike_explorer_sensitivity_changes_alarms(sample_data):
    from analysis.explore.spike_explorer import SpikeExplorer

    sx = SpikeExplorer(sample_data, dt.date(2026, 9, 30), days=60)
    sx.widget()
    us_mfn = next(v for _, v in sx.controls["series"].options if v == ("ATVPDKIKX0DER", "MFN"))
    sx.controls["series"].value = us_mfn
    sx.controls["detector"].value = "p-chart"
    before = sx.current["alarms"].count("<tr>")
    sx.controls["sensitivity"].value = 0.1  # ten times less sensitive
    after = sx.current["alarms"].count("<tr>")
    assert after < before
    assert "Defects behind the alarm" in sx.current["drilldown"] or after == 0


def test_delay_distribution_and_nowcast(sample_data):
    as_of = dt.date(2026, 11, 15)
    cdf = spikes.delay_distribution(sample_data, as_of)
    assert np.all(np.diff(cdf) >= 0) and cdf[-1] == pytest.approx(1.0) and cdf[0] < 0.2
    s = spikes.nowcast(spikes.daily_series(sample_data, as_of), cdf, as_of)
    recent = s.filter(pl.col("day") >= as_of - dt.timedelta(days=20)).drop_nulls("by_order_day_nowcast")
    old = s.filter(pl.col("day") <= as_of - dt.timedelta(days=150))
    # recent days are scaled up by 1 / share arrived; old days are (almost) complete
    assert (recent["by_order_day_nowcast"] >= recent["by_order_day"]).all()
    assert (recent["arrived_share"] < 1).all()
    assert (old["arrived_share"] > 0.95).all()
    assert (
        s.filter(pl.col("arrived_share") < 0.05)["by_order_day_nowcast"].null_count()
        == s.filter(pl.col("arrived_share") < 0.05).height
    )
