"""Order Defect Rate on a tiny account computed by hand from metrics.md.

As of A = 2026-06-30 the ODR window (60 days, lag 15) is [2026-04-17, 2026-06-15].
"""

import datetime as dt
from math import comb

import pytest
from conftest import cover_until

from analysis.metrics import health, stats

A = dt.date(2026, 6, 30)


def _binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k), written out from the binomial formula (independent of scipy)."""
    return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.fixture
def odr_account(account):
    a = account
    a.order("A01", "2026-04-16T23:59:59+00:00").feedback("A01", "4/20/26", 1)  # day before the window
    a.order("A02", "2026-04-17T00:00:00+00:00")  # first day of the window, clean
    a.order("A03", "2026-04-20").feedback("A03", "4/25/26", 1)  # three defects, one order
    a.claim("A03", "2026-05-01", "granted").chargeback("A03", "2026-05-20T10:00:00+00:00", "service", "open")
    a.order("A04", "2026-05-01").feedback("A04", "5/5/26", 3)  # 3 stars: never a defect
    a.order("A05", "2026-05-02").feedback("A05", "5/6/26", 2, removed="true")  # removed
    a.order("A06", "2026-05-03").claim("A06", "2026-05-10", "denied")
    a.order("A07", "2026-05-04").claim("A07", "2026-05-10", "Withdrawn")
    a.order("A08", "2026-05-05").claim("A08", "2026-05-10", "amazon_funded")
    a.order("A09", "2026-05-06").claim("A09", "2026-05-10", "Under Review")  # counts
    a.order("A10", "2026-05-07").chargeback("A10", "2026-05-20", "fraud", "open")  # fraud: no
    a.order("A11", "2026-05-08").chargeback("A11", "2026-05-20", "service", "seller-won")
    a.order("A12", "2026-05-09", status="Cancelled").feedback("A12", "5/12/26", 1)  # not an order
    a.order("A13", "2026-06-15T23:59:59+00:00").feedback("A13", "6/30/26", 1)  # last day; feedback on A
    a.order("A14", "2026-06-16T00:00:00+00:00").feedback("A14", "6/20/26", 1)  # after the window
    a.order("A15", "2026-06-10").feedback("A15", "7/1/26", 1)  # feedback after A
    a.order("A16", "2026-06-01", sku="S1").order("A16", "2026-06-01", sku="S2", qty=2).feedback(
        "A16", "6/5/26", 2
    )
    a.order("M01", "2026-05-10", channel="MFN").feedback("M01", "5/20/26", 2)
    a.order("M02", "2026-05-11", channel="MFN")
    a.order("X01", "2026-05-12", channel="AFN", sku="S1").order("X01", "2026-05-12", channel="MFN", sku="S2")
    a.claim("X01", "2026-05-30", "seller-funded")
    # UK: the feedback date 3/6/26 is 3 June 2026 there (D/M/YY)
    a.order("U01", "2026-05-10", market="Amazon.co.uk").feedback("U01", "3/6/26", 1)
    a.order("U02", "2026-05-10", market="Amazon.co.uk").feedback("U02", "1/7/26", 1)  # 1 July: after A
    return a.write()


def _odr(doc, mkt, ch):
    pm = next(p for p in doc["performanceMetrics"] if p["marketplaceId"] == mkt)
    return pm["orderDefectRate"][ch]


def test_afn_counts_by_hand(odr_account):
    doc = health.account_health(cover_until(odr_account, A), A).document
    afn = _odr(doc, "ATVPDKIKX0DER", "afn")
    # orders: A02-A11, A13, A15, A16, X01 = 14; defective: A03, A09, A13, A16, X01 = 5
    assert afn["orderCount"] == 14
    assert afn["orderWithDefects"]["count"] == 5
    assert afn["negativeFeedback"]["count"] == 3  # A03, A13, A16
    assert afn["claims"]["count"] == 3  # A03, A09, X01
    assert afn["chargebacks"]["count"] == 1  # A03
    assert afn["rate"] == pytest.approx(5 / 14)
    assert afn["fulfillmentType"] == "AFN"
    assert afn["status"] == "BAD"
    assert afn["pValue"] == pytest.approx(_binom_sf(5, 14, 0.01), rel=1e-9)
    assert afn["volumeAdjustedStatus"] == "BAD"
    assert afn["reportingDateRange"] == {
        "reportingDateFrom": "2026-04-17T00:00:00Z",
        "reportingDateTo": "2026-06-15T23:59:59Z",
    }
    iv = afn["rateInterval"]
    assert iv["lower"] <= afn["rate"] <= iv["upper"] and iv["method"] == "Wilson" and iv["confidence"] == 0.95


def test_mfn_and_mixed_order(odr_account):
    mfn = _odr(health.account_health(cover_until(odr_account, A), A).document, "ATVPDKIKX0DER", "mfn")
    assert (mfn["orderCount"], mfn["orderWithDefects"]["count"]) == (3, 2)  # M01, M02, X01
    assert (mfn["negativeFeedback"]["count"], mfn["claims"]["count"], mfn["chargebacks"]["count"]) == (
        1,
        1,
        0,
    )
    assert mfn["fulfillmentType"] == "MFN"


def test_marketplace_date_format(odr_account):
    uk = _odr(health.account_health(cover_until(odr_account, A), A).document, "A1F83G8C2ARO7P", "afn")
    assert (uk["orderCount"], uk["orderWithDefects"]["count"]) == (2, 1)


def test_window_moves_one_day(odr_account):
    """As of 1 July: A02 leaves, A14 enters, A15's and U02's feedback are now known."""
    doc = health.account_health(
        cover_until(odr_account, A + dt.timedelta(days=1)), A + dt.timedelta(days=1)
    ).document
    afn = _odr(doc, "ATVPDKIKX0DER", "afn")
    assert afn["orderCount"] == 14  # -A02 +A14
    assert afn["orderWithDefects"]["count"] == 7  # + A14, A15
    uk = _odr(doc, "A1F83G8C2ARO7P", "afn")
    assert uk["orderWithDefects"]["count"] == 2


def test_feedback_after_as_of_ignored(account):
    account.order("B1", "2026-05-01").feedback("B1", "7/2/26", 1)
    afn = _odr(health.account_health(cover_until(account.write(), A), A).document, "ATVPDKIKX0DER", "afn")
    assert (afn["orderCount"], afn["orderWithDefects"]["count"], afn["status"]) == (1, 0, "GOOD")
    assert afn["pValue"] == 1.0


def test_no_orders_in_channel_is_none(account):
    account.order("B1", "2026-05-01")
    mfn = _odr(health.account_health(cover_until(account.write(), A), A).document, "ATVPDKIKX0DER", "mfn")
    assert (mfn["orderCount"], mfn["status"], mfn["volumeAdjustedStatus"], mfn["pValue"]) == (
        0,
        "NONE",
        "NONE",
        None,
    )


@pytest.mark.parametrize(
    ("d", "n", "p", "status", "adjusted"),
    [
        (1, 10, 0.0956, "BAD", "AT_RISK"),
        (2, 10, 0.0043, "BAD", "BAD"),
        (1, 100, 0.634, "BAD", "AT_RISK"),
        (0, 10, 1.0, "GOOD", "GOOD"),
    ],
)
def test_spec_p_value_examples(d, n, p, status, adjusted):
    assert stats.p_value(d, n, 0.01, stats.LESS_THAN) == pytest.approx(p, abs=5e-5 if p < 0.1 else 5e-4)
    assert stats.status(d, n, 0.01, stats.LESS_THAN) == status
    assert stats.volume_adjusted_status(d, n, 0.01, stats.LESS_THAN) == adjusted


def test_exactly_at_target_is_bad():
    assert stats.status(1, 100, 0.01, stats.LESS_THAN) == "BAD"
    assert stats.status(19, 20, 0.95, stats.GREATER_THAN) == "BAD"
    assert stats.status(97, 100, 0.97, stats.GREATER_THAN) == "BAD"
    assert stats.status(98, 100, 0.97, stats.GREATER_THAN) == "GOOD"
    # GREATER_THAN p-value counts failures: 19 of 20 valid -> 1 failure at 5 %
    assert stats.p_value(19, 20, 0.95, stats.GREATER_THAN) == pytest.approx(_binom_sf(1, 20, 0.05))
