"""`history` (one pass, windowed) gives for every day the same numbers as `evaluate` for that day."""

import datetime as dt

import polars as pl
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
