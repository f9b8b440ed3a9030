"""`history` (one pass, windowed) gives for every day the same numbers as `evaluate` for that day."""

import datetime as dt

import polars as pl
from conftest import cover_until
from polars.testing import assert_frame_equal

from analysis.metrics import definitions as metrics


def test_history_equals_daily_evaluation(sample_data):
    first, last = dt.date(2026, 10, 20), dt.date(2026, 11, 15)
    hist = metrics.history(sample_data, first, last)
    for i in range((last - first).days + 1):
        day = first + dt.timedelta(days=i)
        expected = metrics.evaluate(sample_data, day)
        got = hist.filter(pl.col("as_of") == day).drop("as_of")
        # history also lists a marketplace's zero rows, evaluate omits metrics without units
        got = got.join(expected.select("marketplace_id", "metric").unique(), on=["marketplace_id", "metric"])
        assert_frame_equal(got.sort("marketplace_id", "metric", "numerator"), expected, check_row_order=True)


def test_history_on_tiny_account(account):
    account.order("O1", "2026-05-01").feedback("O1", "5/10/26", 1)
    data = __import__("analysis.inputs.sources", fromlist=["load"]).load(account.write())
    odr = tuple(m for m in metrics.METRICS if m.id == "orderDefectRate.afn")
    h = metrics.history(data, dt.date(2026, 5, 14), dt.date(2026, 7, 16), odr)
    den = h.filter(pl.col("numerator") == "defects").select("as_of", "count", "denominator")
    by_day = {r[0]: (r[1], r[2]) for r in den.rows()}
    # purchase 1 May is in A's window [A - 74, A - 15] from 16 May to 14 July
    assert by_day[dt.date(2026, 5, 15)] == (0, 0)
    assert by_day[dt.date(2026, 5, 16)] == (1, 1)  # feedback of 10 May already known
    assert by_day[dt.date(2026, 7, 14)] == (1, 1)
    assert by_day[dt.date(2026, 7, 15)] == (0, 0)


def test_history_has_every_metric_of_every_marketplace_metrics_lists(account):
    """A metric without any unit in a marketplace (a header-only messages file: "none") is in
    `history` as 0 of 0, status NONE, as `metrics` shows it; it was left out (a gap, not "no data")."""
    from analysis.inputs import sources
    from analysis.metrics import health
    from analysis.metrics.settings import Settings

    account.order("O1", "2026-06-01").order("U1", "2026-06-01", market="Amazon.co.uk")
    account.message("T1", "O1", "2026-06-02T10:00:00Z", "2026-06-02T11:00:00Z")  # US only
    day = dt.date(2026, 6, 10)
    data = sources.load(cover_until(account.write(), day))
    card = metrics.scorecard(metrics.history(data, day, day), metrics.METRICS)
    doc = health.account_health(data, day, Settings()).document
    listed = {(p["marketplaceId"], k) for p in doc["performanceMetrics"] for k in ("contactResponseTime",)}
    crt = card.filter(pl.col("metric") == "contactResponseTime")
    assert {(r["marketplace_id"], "contactResponseTime") for r in crt.iter_rows(named=True)} == listed
    uk = crt.filter(pl.col("marketplace_id") == "A1F83G8C2ARO7P").row(0, named=True)
    assert (uk["numerator"], uk["denominator"], uk["status"]) == (0, 0, "NONE")
    us = crt.filter(pl.col("marketplace_id") == "ATVPDKIKX0DER").row(0, named=True)
    assert (us["numerator"], us["denominator"]) == (1, 1)
    # every metric, every marketplace of the orders
    assert card.select("marketplace_id", "metric").n_unique() == 3 * len(metrics.METRICS)  # US, UK, DE
