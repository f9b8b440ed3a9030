"""Incidents: alarms merged into one row per episode and series, on hand-made series, the
sample's planted spikes, and their HTML table."""

import dataclasses
import datetime as dt
import json
import math
import re

import numpy as np
import polars as pl
import pytest

from analysis.insights import spikes
from analysis.report import defect_sections

START = dt.date(2026, 1, 1)
ALL_ARRIVED = np.ones(121)  # delay CDF of defects that all arrive on their order day


def poisson_tail(k: int, mu: float) -> float:
    """P(X >= k), X ~ Poisson(mu), summed by hand."""
    return 1.0 - sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k))


def series(defects: list[float], orders: float = 100.0, delay: int = 0, arrived=None) -> spikes.SeriesDays:
    """`orders` orders a day; defects[j] defects of the orders of day j, arriving `delay` days
    later (arrivals: those that have arrived by the last day, unless given)."""
    n_days = len(defects)
    lags = np.zeros((n_days, 121))
    lags[:, delay] = defects
    lags[np.arange(n_days) + delay > n_days - 1] = 0.0
    if arrived is None:
        arrived = np.zeros(n_days)
        arrived[delay:] = np.asarray(defects, dtype=float)[: n_days - delay]
    return spikes.SeriesDays(
        days=[START + dt.timedelta(days=i) for i in range(n_days)],
        orders=np.full(n_days, orders),
        arrived=np.asarray(arrived, dtype=float),
        exposure=np.full(n_days, orders),
        lags=lags,
    )


def calm(n_days: int) -> list[float]:
    """One defect every other day: 0.5 a day in 100 orders."""
    return [1.0 if t % 2 == 0 else 0.0 for t in range(n_days)]


def test_incident_runs_by_hand():
    """(alarm day, window start): at most one quiet day between, or a window reaching back."""
    alarms = [(10, 10), (11, 9), (13, 13), (16, 16), (25, 25), (30, 20), (40, 40), (40, 38)]
    # 10, 11 consecutive; 13 after one quiet day; 16 after two: new; 25 new; 30's window (from
    # 20) does not reach 25... it does: 20 <= 25, so 30 joins 25; 40 new, once
    assert spikes.incident_runs(alarms, gap=1) == [[10, 11, 13], [16], [25, 30], [40]]
    assert spikes.incident_runs(alarms, gap=0) == [[10, 11], [13], [16], [25, 30], [40]]
    assert spikes.incident_runs(alarms, gap=2) == [[10, 11, 13, 16], [25, 30], [40]]
    assert spikes.incident_runs([]) == []


def test_poisson_glr2_by_hand():
    """Two-sample GLR: D ln(D / D0) + K ln(K / K0), D0 = (D + K) E / (E + K), K0 = (D + K) K / (E + K)."""
    big_d, big_e, big_k = 6.0, 0.5, 20.0
    d0, k0 = (big_d + big_k) * big_e / (big_e + big_k), (big_d + big_k) * big_k / (big_e + big_k)
    by_hand = big_d * math.log(big_d / d0) + big_k * math.log(big_k / k0)
    assert by_hand == pytest.approx(8.7300, abs=1e-4)  # 6 ln(6 / 0.63415) + 20 ln(20 / 25.366)
    got = spikes.poisson_glr2(np.array([big_d, 0.4, 0.0]), np.array([big_e, 0.5, 0.5]), np.array([big_k] * 3))
    assert got == pytest.approx([by_hand, 0.0, 0.0])  # only rises count
    # it tends to the one-sample GLR as the baseline grows, and is lower with a small baseline
    one = float(spikes.poisson_glr(np.array([big_d]), np.array([big_e]))[0])
    assert spikes.poisson_glr2(np.array([big_d]), np.array([big_e]), np.array([1e9]))[0] == pytest.approx(one)
    assert by_hand < one


def test_one_incident_for_a_burst_by_hand():
    """100 orders and 0.5 defects a day, then 6 defects on each of days 150-152: one incident,
    its counts those of its days, its expectation each day's baseline (91 days ending 28 before)."""
    d = calm(200)
    d[150:153] = [6.0, 6.0, 6.0]
    v = series(d)
    found = spikes.series_incidents(v, ALL_ARRIVED, spikes.Settings(), first=100)
    assert len(found) == 1
    inc = found[0]
    lo, hi = ((dt.date.fromisoformat(inc[k]) - START).days for k in ("firstDay", "lastDay"))
    assert 144 <= lo <= 150 and hi >= 152 and inc["firstAlarm"] == "2026-05-31"  # day 150
    assert inc["observed"] == sum(d[lo : hi + 1])

    def rate(t: int) -> float:  # the baseline, by hand: days t - 119 .. t - 29
        days = range(max(t - 119, 0), t - 28)
        return (sum(d[j] for j in days) + 0.5) / (100 * len(days) + 1)

    assert inc["expected"] == pytest.approx(sum(100 * rate(t) for t in range(lo, hi + 1)))
    assert inc["pValue"] == pytest.approx(poisson_tail(inc["observed"], inc["expected"]))
    assert "glr" in inc["detectors"] and inc["detector"] in inc["detectors"]
    assert inc["historyDays"] == 91 and inc["learning"] is False
    # day 150 alone by hand: 6 defects, 45 in the baseline (91 days from day 31): 9.09 >= 7.5
    e150 = 100 * 45.5 / 9101
    assert spikes.poisson_glr2(np.array([6.0]), np.array([e150]), np.array([45.5]))[0] == pytest.approx(
        9.0936, abs=1e-4
    )


def test_short_history_raises_the_bar():
    """The same burst (6 defects where 0.55 are expected) after 10 days of history: the one-sample
    GLR would alarm (8.89), the two-sample one, with 5.5 baseline defects, does not (6.96)."""
    e = 100 * 5.5 / 1001
    assert spikes.poisson_glr(np.array([6.0]), np.array([e]))[0] == pytest.approx(8.893, abs=1e-3)
    assert spikes.poisson_glr2(np.array([6.0]), np.array([e]), np.array([5.5]))[0] == pytest.approx(
        6.956, abs=1e-3
    )
    s = dataclasses.replace(spikes.Settings(), incident_order_h=math.inf)  # the arrival test alone
    short = calm(10) + [6.0] + calm(20)[1:]
    assert spikes.series_incidents(series(short), ALL_ARRIVED, s) == []
    # with 40 days of history it is found, flagged as learning (40 days < 60)
    longer = calm(40) + [6.0, 6.0] + calm(20)[:-2]
    found = spikes.series_incidents(series(longer), ALL_ARRIVED, s)
    assert len(found) == 1 and found[0]["learning"] is True and found[0]["historyDays"] == 40


def test_no_incident_without_more_defects_than_expected():
    """A bad batch seen on its order days (the order-day test fires) while, on the days the
    incident spans, no defect arrived: the arrival-basis incident (0 defects, some expected) is
    dropped; the order-basis one, the defects of the batch's orders, is kept."""
    d = calm(200)
    d[150:156] = [5.0] * 6
    v = series(d, delay=5, arrived=np.zeros(200))  # arrivals deliberately left empty
    cdf = np.r_[np.zeros(5), np.ones(116)]
    assert spikes.series_incidents(v, cdf, first=100) == []
    by_order = spikes.series_incidents(v, cdf, first=100, basis="order")
    assert len(by_order) == 1 and by_order[0]["detectors"] == ["order-glr"]
    inc = by_order[0]
    lo, hi = ((dt.date.fromisoformat(inc[k]) - START).days for k in ("firstDay", "lastDay"))
    assert lo <= 150 and hi >= 155 and inc["observed"] == sum(d[lo : hi + 1]) > inc["expected"]


def test_delay_cdf_uses_complete_orders():
    """Orders at least max_days old, when they hold 20 defects or more; else all."""
    delays, ages = np.r_[np.full(25, 3), np.zeros(5)], np.r_[np.full(25, 200), np.full(5, 2)]
    cdf = spikes.delay_cdf(delays, ages, 10)
    assert cdf[2] == 0.0 and cdf[3] == 1.0 and len(cdf) == 11
    few = spikes.delay_cdf(delays[20:], ages[20:], 10)  # 5 old + 5 young: all 10
    assert few[0] == pytest.approx(0.5) and few[3] == 1.0


# ----------------------------------------------------------------------------- the sample


@pytest.fixture(scope="module")
def season(sample_data):
    return spikes.incidents(sample_data, dt.date(2026, 11, 15), spikes.Settings(), first=dt.date(2026, 6, 1))


def test_fedex_week_is_one_incident(sample_data):
    found = spikes.incidents(sample_data, dt.date(2026, 9, 20), spikes.Settings(), first=dt.date(2026, 9, 7))
    assert len(found) == 1
    inc = found[0]
    assert (inc["marketplaceId"], inc["channel"]) == ("ATVPDKIKX0DER", "MFN")
    assert inc["firstDay"] <= "2026-09-13" and inc["lastDay"] >= "2026-09-07"  # the FedEx week
    assert inc["drivers"]["carriers"][0]["value"] == "FedEx"
    assert inc["observed"] > inc["expected"] and inc["pValue"] < 0.001


def test_one_incident_per_planted_spike(season, sample_dir):
    """June to November: the FedEx week and the HUB-7 batch, one incident each, nothing else."""
    from analysis.inputs import sample

    spikes_planted = sample.manifest(sample_dir)["spikes"]
    assert len(season) == len(spikes_planted) == 2
    fedex = [i for i in season if i["drivers"]["carriers"][0]["value"] == "FedEx"]
    hub = [i for i in season if i["drivers"]["skus"][0]["value"] == "HUB-7"]
    assert len(fedex) == 1 and len(hub) == 1
    assert (fedex[0]["marketplaceId"], fedex[0]["channel"]) == ("ATVPDKIKX0DER", "MFN")
    assert "2026-10-05" <= hub[0]["firstAlarm"] <= "2026-10-28"  # within 14 days of the batch's end


def test_incidents_are_json_and_never_below_expected(season, sample_data):
    keys = {
        "marketplaceId", "channel", "basis", "firstDay", "lastDay", "firstAlarm", "alarmDays", "observed",
        "expected", "pValue", "detector", "detectors", "orderWindow", "historyDays", "learning", "drivers",
    }  # fmt: skip
    by_order = spikes.incidents(sample_data, dt.date(2026, 11, 15), first=dt.date(2026, 6, 1), basis="order")
    assert by_order and all(i["basis"] == "order" for i in by_order)
    for inc in season + by_order:
        assert set(inc) == keys
        assert json.loads(json.dumps(inc)) == inc
        assert inc["observed"] > inc["expected"] and inc["pValue"] < 0.5
        assert inc["detector"] in inc["detectors"] and set(inc["detectors"]) <= set(spikes.INCIDENT_DETECTORS)
        assert inc["channel"] in ("AFN", "MFN") and inc["firstDay"] <= min(inc["firstAlarm"], inc["lastDay"])
        if inc["basis"] == "arrival":  # arrival days up to the last alarm; order basis: order days
            assert inc["firstAlarm"] <= inc["lastDay"]


def test_series_lags_add_up_to_the_arrivals(sample_data):
    """Defects by order day and delay, summed along each arrival day, give daily_series' arrivals."""
    as_of = dt.date(2026, 11, 15)
    s = spikes.daily_series(sample_data, as_of)
    arrivals = spikes.first_arrivals(sample_data, as_of)
    for (mkt, ch), g in s.group_by("marketplace_id", "channel"):
        g = g.sort("day")
        mine = arrivals.filter((pl.col("marketplace_id") == mkt) & (pl.col("ch") == ch))
        lags = spikes.series_lags(mine, g["day"][0], g.height, 120)
        j, a = np.nonzero(lags)
        by_day = np.bincount(j + a, weights=lags[j, a], minlength=g.height)[: g.height]
        assert by_day == pytest.approx(g["arrived"].to_numpy())
        assert lags.sum(axis=1) == pytest.approx(g["by_order_day"].to_numpy())


# ----------------------------------------------------------------------------- the table


def incident(**kw) -> dict:
    base = {
        "marketplaceId": "ATVPDKIKX0DER", "channel": "MFN", "basis": "arrival", "firstDay": "2026-09-05",
        "lastDay": "2026-09-20", "firstAlarm": "2026-09-18", "alarmDays": 3, "observed": 14, "expected": 4.4977,
        "pValue": 0.00025, "detector": "order-glr", "detectors": ["glr", "order-glr"],
        "orderWindow": ["2026-09-05", "2026-09-09"], "historyDays": 85, "learning": False,
        "drivers": {"causes": [{"value": "late", "defects": 8}], "skus": [], "carriers": [{"value": "FedEx", "defects": 10}]},
    }  # fmt: skip
    return base | kw


def test_incidents_html_rows():
    html = defect_sections.incidents_html([incident(), incident(channel="AFN", pValue=0.034, detector="glr")])
    assert html.count("<tr>") == 3  # header and two incidents
    assert "Amazon.com" in html and "Seller-fulfilled" in html and "FBA" in html
    assert "14 defects arrived against 4.5 expected" in html
    assert "p &lt; 0.001" in html and "p = 0.034" in html
    assert "order-day test" in html and "moving-window test" in html
    assert "2026-09-05 to 2026-09-20" in html and "orders of 2026-09-05 to 2026-09-09" in html
    assert "Carriers: FedEx (10)" in html and "learning" not in html
    assert not re.search(r"p = 1(\.0*)?\b", html)
    assert not re.search(r"README|\.md\b|\.py\b", html)


def test_incidents_html_learning_escaping_and_limit():
    odd = incident(
        marketplaceId="<M&1>", learning=True, historyDays=29, observed=1, expected=0.31, pValue=0.27,
        drivers={"causes": [], "skus": [{"value": "<script>x</script>", "defects": 1}], "carriers": []},
    )  # fmt: skip
    html = defect_sections.incidents_html([odd])
    assert "learning: 29 days of history" in html and "1 defect arrived against 0.3 expected" in html
    assert "&lt;M&amp;1&gt;" in html and "&lt;script&gt;" in html and "<script>" not in html
    many = defect_sections.incidents_html([incident(), incident(), incident()], limit=2)
    assert many.count("<tr>") == 3 and "1 more incident not shown." in many


def test_incidents_html_none_is_one_sentence():
    # an "incident" without more defects than expected is not one: no "0 defects, p = 1" row
    for incidents in ([], [incident(observed=0, expected=0.31, pValue=1.0)]):
        html = defect_sections.incidents_html(incidents)
        assert html.startswith("<p>") and html.endswith("</p>") and "No spike" in html
        assert re.sub(r"<[^>]+>", "", html).count(".") == 1 and "p = 1" not in html


def test_incidents_html_on_the_sample(season):
    html = defect_sections.incidents_html(season)
    assert html.count("<tr>") == len(season) + 1 and "FedEx" in html and "HUB-7" in html
