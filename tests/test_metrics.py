"""Every metric of metrics.md on tiny accounts computed by hand, as of A = 2026-06-30."""

import datetime as dt

import pytest
from conftest import cover_until

from analysis.errors import DataError, SettingsError
from analysis.inputs import sources
from analysis.metrics import definitions as metrics
from analysis.metrics import health

A = dt.date(2026, 6, 30)
US = "ATVPDKIKX0DER"


def _pm(folder, as_of=A, **kw):
    # hand-made accounts end before the as-of day: the data is made to reach it
    doc = health.account_health(cover_until(folder, as_of), as_of, **kw).document
    health.validate(doc)
    return next(p for p in doc["performanceMetrics"] if p["marketplaceId"] == US), doc


def test_late_shipment_rate(account):
    a = account
    a.order("L01", "2026-05-30", channel="MFN").shipment(
        "L01", "2026-06-01", "2026-06-01T10:00:00Z"
    )  # on time
    a.order("L02", "2026-05-29", channel="MFN").shipment(
        "L02", "2026-05-31T23:59:59Z", "2026-06-02T10:00:00Z"
    )  # before window
    a.order("L03", "2026-06-03", channel="MFN").shipment("L03", "2026-06-05", "2026-06-06T01:00:00Z")  # late
    # two packages, earliest ship-by anchors; the second is confirmed late: late once
    a.order("L04", "2026-06-08", channel="MFN", sku="S1").order("L04", "2026-06-08", channel="MFN", sku="S2")
    a.shipment("L04", "2026-06-10", "2026-06-09T10:00:00Z").shipment(
        "L04", "2026-06-11", "2026-06-12T10:00:00Z"
    )
    a.order("L05", "2026-06-18", channel="MFN", status="Unshipped").shipment(
        "L05", "2026-06-20"
    )  # never shipped
    a.order("L06", "2026-06-28", channel="MFN", status="Unshipped").shipment("L06", "2026-06-30T12:00:00Z")
    a.order("L08", "2026-06-23", channel="MFN").shipment(
        "L08", "2026-06-25", "2026-07-01T09:00:00Z"
    )  # confirmed after A
    a.order("L09", "2026-06-13", channel="MFN", status="Cancelled").shipment("L09", "2026-06-15")  # cancelled
    a.order("L10", "2026-06-13", channel="MFN")  # no shipments row: left out, noted
    a.order("L11", "2026-06-13", channel="AFN")
    pm, doc = _pm(a.write())
    lsr = pm["lateShipmentRate"]
    assert (lsr["orderCount"], lsr["lateShipmentCount"]) == (6, 5)
    assert lsr["reportingDateRange"]["reportingDateFrom"] == "2026-06-01T00:00:00Z"
    assert lsr["reportingDateRange"]["reportingDateTo"] == "2026-06-30T23:59:59Z"
    ten, thirty = pm["lateShipmentRateList"]
    assert (ten["orderCount"], ten["lateShipmentCount"]) == (2, 2)  # L06, L08
    assert ten["reportingDateRange"]["reportingDateFrom"] == "2026-06-21T00:00:00Z"
    assert thirty == lsr
    assert any("1 seller-fulfilled orders have no shipments row" in n for n in doc["dataQuality"]["notes"])
    # as of 24 June the window is [26 May, 24 June]: L02 (late) is in, L06 and L08 are not yet
    early, _ = _pm(a.root, dt.date(2026, 6, 24))
    assert (early["lateShipmentRate"]["orderCount"], early["lateShipmentRate"]["lateShipmentCount"]) == (5, 4)


def _cancel_orders(a, with_file: bool):
    a.order("C01", "2026-06-23", channel="MFN")
    a.order("C02", "2026-06-24", channel="MFN", status="Cancelled")
    a.order("C03", "2026-06-25", channel="MFN", status="Cancelled")
    a.order("C04", "2026-06-26", channel="MFN", status="Cancelled")
    a.order("C05", "2026-06-27", channel="MFN", status="Cancelled")
    a.order("C06", "2026-06-28", channel="MFN", status="Pending")
    a.order("C07", "2026-06-22", channel="MFN", status="Cancelled")  # day before the window
    a.order("C08", "2026-06-29", channel="MFN", status="Cancelled")
    a.order("C09", "2026-06-30", channel="MFN", status="Cancelled")  # A itself: lag 1
    a.order("C10", "2026-06-24", channel="AFN", status="Cancelled")
    if not with_file:
        a.without("cancellations")
    if with_file:
        a.cancellation("C02", "2026-06-24T13:00:00Z", "buyer").cancellation(
            "C03", "2026-06-25T13:00:00Z", "seller"
        )
        a.cancellation("C04", "2026-06-27T13:00:00Z", "system").cancellation(
            "C07", "2026-06-22T13:00:00Z", "seller"
        )
        a.cancellation("C08", "2026-07-01T13:00:00Z", "seller")  # known only after A
    return a.write()


def test_cancel_rate_buyer_vs_seller(account):
    pm, _ = _pm(_cancel_orders(account, with_file=True))
    c = pm["preFulfillmentCancellationRate"]
    assert (c["orderCount"], c["cancellationCount"]) == (6, 3)  # C03, C04, C05 (no row: seller)
    assert c["reportingDateRange"] == {
        "reportingDateFrom": "2026-06-23T00:00:00Z",
        "reportingDateTo": "2026-06-29T23:59:59Z",
    }


def test_cancel_rate_without_cancellations_file(account):
    pm, doc = _pm(_cancel_orders(account, with_file=False))
    c = pm["preFulfillmentCancellationRate"]
    assert (c["orderCount"], c["cancellationCount"]) == (6, 5)
    # an upper bound: no verdict, the kind named (metrics.md, "Missing inputs")
    assert (c["status"], c["volumeAdjustedStatus"], c["dataMissing"]) == ("NONE", "NONE", ["cancellations"])
    assert any("No Cancellations file" in n for n in doc["dataQuality"]["notes"])


@pytest.fixture
def packages(account):
    a = account

    def pkg(oid, ship, tracking="1Z1", valid="true", ldd="", delivered="", qty=1):
        day = dt.date.fromisoformat(ship[:10]) - dt.timedelta(days=1)
        a.order(oid, day.isoformat(), channel="MFN", qty=qty, sku=f"S-{oid}")
        a.shipment(
            oid,
            day.isoformat(),
            ship,
            tracking=tracking,
            valid=valid,
            latest_delivery=ldd,
            delivery=delivered,
        )

    pkg("P01", "2026-05-22T08:00:00Z", ldd="2026-05-26", delivered="2026-05-25T10:00:00Z")
    pkg("P02", "2026-05-21T23:00:00Z", ldd="2026-05-26", delivered="2026-05-25T10:00:00Z")  # before window
    pkg("P03", "2026-06-20T20:00:00Z", tracking="", valid="")  # no tracking number
    pkg("P04", "2026-06-01T08:00:00Z", valid="false", ldd="2026-06-05")
    pkg("P05", "2026-06-02T08:00:00Z", valid="", ldd="2026-06-06", delivered="2026-06-06T23:00:00Z")
    pkg("P06", "2026-06-03T08:00:00Z", ldd="2026-06-07", delivered="2026-06-08T01:00:00Z")
    pkg("P07", "2026-06-15T08:00:00Z", ldd="2026-06-30")  # not due yet
    pkg("P08", "2026-06-16T08:00:00Z", ldd="2026-06-29", qty=2)  # promise passed: late
    pkg("P09", "2026-06-17T08:00:00Z", ldd="2026-07-03", delivered="2026-06-30T10:00:00Z", qty=3)
    pkg("P10", "2026-06-18T08:00:00Z", ldd="2026-07-03", delivered="2026-07-01T10:00:00Z")  # after A
    a.order("P11", "2026-06-09", channel="MFN", sku="X", qty=1).order(
        "P11", "2026-06-09", channel="MFN", sku="Y", qty=4
    )
    a.shipment(
        "P11",
        "2026-06-10",
        "2026-06-10T08:00:00Z",
        latest_delivery="2026-06-14",
        delivery="2026-06-13T08:00:00Z",
        valid="true",
    )
    a.shipment(
        "P11",
        "2026-06-10",
        "2026-06-10T09:00:00Z",
        latest_delivery="2026-06-14",
        delivery="2026-06-15T08:00:00Z",
        valid="true",
    )
    return a.write()


def test_valid_tracking_rate(packages):
    v = _pm(packages)[0]["validTrackingRate"]
    assert (v["shipmentCount"], v["validTrackingCount"]) == (11, 9)
    assert v["reportingDateRange"] == {
        "reportingDateFrom": "2026-05-22T00:00:00Z",
        "reportingDateTo": "2026-06-20T23:59:59Z",
    }
    assert v["status"] == "BAD" and v["targetCondition"] == "GREATER_THAN"


def test_on_time_delivery_rate(packages):
    o = _pm(packages)[0]["onTimeDeliveryRate"]
    # decided: P01, P05 (same day), P06 (late), P08 (promise passed), P09, and both P11 packages
    assert (o["shipmentCountWithValidTracking"], o["onTimeDeliveryCount"]) == (7, 4)


def test_unit_on_time_delivery_rate(packages):
    u = _pm(packages)[0]["unitOnTimeDeliveryRate"]
    # 14 days [7 June, 20 June]: P08 (2 units, late), P09 (3, on time), P11 (5, one package late)
    assert (u["totalUnitCount"], u["unitOnTimeDeliveryCount"]) == (10, 3)
    assert u["reportingDateRange"]["reportingDateFrom"] == "2026-06-07T00:00:00Z"


def test_invoice_defects_across_a_weekend(account):
    a = account
    a.order("I01", "2026-06-12T09:00:00Z", business=True).invoice(
        "I01", "2026-06-15T23:00:00Z"
    )  # Fri -> Mon: on time
    a.order("I02", "2026-06-12T09:00:00Z", business=True).invoice("I02", "2026-06-16T00:30:00Z")  # Tue: late
    a.order("I03", "2026-06-11T09:00:00Z", channel="MFN", business=True)
    a.shipment("I03", "2026-06-13", "2026-06-12T15:00:00Z").invoice(
        "I03", "2026-06-15T10:00:00Z"
    )  # ships Fri
    a.order("I04", "2026-06-10T09:00:00Z", business=True)  # never invoiced
    a.order("I05", "2026-06-16T09:00:00Z", business=True).invoice(
        "I05", "2026-07-01T09:00:00Z"
    )  # after A: missing
    a.order("I06", "2026-06-13T09:00:00Z", business=True).invoice("I06", "2026-06-15T20:00:00Z")  # Sat -> Mon
    a.order("I07", "2026-06-12T09:00:00Z", business=True, status="Cancelled")
    a.order("I08", "2026-06-09T09:00:00Z", business=True)  # before the window
    a.order("I09", "2026-06-12T09:00:00Z")  # not a business order
    i = _pm(a.write())[0]["invoiceDefectRate"]
    assert i["reportingDateRange"] == {
        "reportingDateFrom": "2026-06-10T00:00:00Z",
        "reportingDateTo": "2026-06-16T23:59:59Z",
    }
    assert i["orderCount"] == 6
    assert (i["missingInvoice"]["count"], i["lateInvoice"]["count"], i["invoiceDefect"]["count"]) == (2, 1, 3)
    assert i["rate"] == pytest.approx(0.5)


def test_refund_rate(account):
    a = account
    a.order("R1", "2026-06-05").fba_return("R1", "2026-06-10T00:00:00Z")
    a.order("R2", "2026-06-05", channel="MFN").mfn_return("R2", "2026-06-10T00:00:00Z", "0.00")
    a.order("R3", "2026-06-05", channel="MFN").mfn_return("R3", "2026-06-10T00:00:00Z", "10.00")
    a.order("R4", "2026-06-05").fba_return("R4", "2026-07-02T00:00:00Z")  # after A
    a.order("R5", "2026-06-05", status="Cancelled").fba_return("R5", "2026-06-10T00:00:00Z")
    a.order("R6", "2026-06-05")
    r = _pm(a.write())[0]["refundRate"]
    assert (r["orderCount"], r["refundedOrderCount"]) == (5, 2)


def test_an_mfn_return_not_refunded_has_a_blank_refunded_amount(account, tmp_path):
    """A return request not (yet) refunded leaves `Refunded Amount` blank: no refund, and not a bad
    row (it was set aside as "missing value"); a file without the column at all is refused."""
    from analysis.inputs.sample import MFN_RETURNS_HEADER

    a = account
    a.order("B1", "2026-06-05", channel="MFN").mfn_return("B1", "2026-06-10T00:00:00Z", "")
    a.order("B2", "2026-06-05", channel="MFN").mfn_return("B2", "2026-06-10T00:00:00Z", "12.50")
    folder = a.write()
    r, doc = _pm(folder)
    assert (r["refundRate"]["orderCount"], r["refundRate"]["refundedOrderCount"]) == (2, 1)
    assert doc["dataQuality"]["quarantinedRows"] == 0
    path = next(folder.glob("mfn_returns*"))
    lines = path.read_text().splitlines()
    keep = [i for i, h in enumerate(MFN_RETURNS_HEADER) if h != "Refunded Amount"]
    path.write_text("\n".join("\t".join(line.split("\t")[i] for i in keep) for line in lines) + "\n")
    with pytest.raises(DataError, match="has no 'Refunded Amount' column"):
        sources.load(folder)


def test_contact_response_time(account):
    a = account
    for i in range(1, 11):
        a.order(f"G{i:02d}", "2026-05-25")
    a.message("T1", "G01", "2026-06-10T03:00:00-07:00", "2026-06-10T12:00:00Z")  # 2 h (offset)
    a.message("T2", "G02", "2026-06-11T10:00:00Z", "2026-06-12T10:00:00Z")  # exactly 24 h
    a.message("T3", "G03", "2026-06-12T10:00:00Z", "2026-06-13T10:00:01Z")  # 24 h and 1 s
    a.message("T4", "G04", "2026-06-13T10:00:00Z")  # never answered
    a.message("T5", "G05", "2026-06-30T12:00:00Z")  # not yet due
    a.message("T6", "G06", "2026-06-30T12:00:00Z", "2026-06-30T13:00:00Z")  # answered before due
    a.message("T7", "G07", "2026-06-29T23:00:00Z")  # due at 23:00 on A: late
    a.message("T8", "G08", "2026-05-31T23:00:00Z", "2026-06-01T01:00:00Z")  # before the window
    a.message("T9", "G09", "2026-06-15T10:00:00Z", "2026-07-01T01:00:00Z")  # answered after A
    a.message("T10", "UNKNOWN", "2026-06-15T10:00:00Z", "2026-06-15T11:00:00Z")  # quarantined
    pm, doc = _pm(a.write())
    c = pm["contactResponseTime"]
    assert (c["messageCount"], c["respondedWithin24hCount"]) == (7, 3)
    assert c["medianResponseHours"] == pytest.approx((2 + 24) / 2)
    assert doc["dataQuality"]["quarantinedRows"] == 1


def test_contact_response_time_counts_messages_not_threads(account):
    """Two messages of one thread are two messages (the contract: "Buyer messages received in the
    window"); the same message in an overlapping download is one, answered when a download says so."""
    a = account
    a.order("H1", "2026-06-01").order("H2", "2026-06-01")
    a.message("TX", "H1", "2026-06-10T10:00:00Z", "2026-06-10T12:00:00Z")  # 2 h: on time
    a.message("TX", "H1", "2026-06-12T10:00:00Z", "2026-06-14T10:00:00Z")  # 48 h: late
    a.message("TY", "H2", "2026-06-15T10:00:00Z")  # unanswered in the first download...
    header = ["thread-id", "order-id", "received-at", "responded-at"]
    a._row(
        "messages-later.csv", header, ["TY", "H2", "2026-06-15T10:00:00Z", "2026-06-15T11:00:00Z"]
    )  # ...1 h
    a._row(
        "messages-later.csv", header, ["TX", "H1", "2026-06-10T10:00:00Z", "2026-06-10T12:00:00Z"]
    )  # again
    pm, doc = _pm(a.write())
    c = pm["contactResponseTime"]
    assert (c["messageCount"], c["respondedWithin24hCount"]) == (3, 2)
    assert c["medianResponseHours"] == pytest.approx(2.0)  # 1, 2 and 48 hours
    assert doc["dataQuality"]["quarantinedRows"] == 0


def test_a_message_answered_before_it_was_received_is_set_aside(account):
    """responded-at before received-at counted as answered within 24 h (median -59,668 hours):
    set aside with its reason, the others counted."""
    a = account
    a.order("Q1", "2026-06-01").order("Q2", "2026-06-01")
    a.message("TA", "Q1", "2026-06-10T10:00:00Z", "2026-06-10T13:00:00Z")  # 3 h
    a.message("TB", "Q2", "2026-06-12T10:00:00Z", "2026-06-12T09:59:59Z")  # a second before
    pm, doc = _pm(a.write())
    c = pm["contactResponseTime"]
    assert (c["messageCount"], c["respondedWithin24hCount"], c["medianResponseHours"]) == (1, 1, 3.0)
    data = sources.load(a.write())
    q = data.quarantine.filter(data.quarantine["column"] == "responded-at").row(0, named=True)
    assert (q["line"], q["value"]) == (3, "2026-06-12T09:59:59Z") and "answered before it was received" in q[
        "reason"
    ]
    assert doc["dataQuality"]["quarantinedRows"] == 1


def test_settings_override_window_lag_target(account, tmp_path):
    a = account
    a.order("O1", "2026-06-20").feedback("O1", "6/25/26", 1)
    for i in range(2, 101):
        a.order(f"O{i}", "2026-06-20")
    folder = a.write()
    pm, _ = _pm(folder)
    assert pm["orderDefectRate"]["afn"]["orderCount"] == 0  # 20 June is inside the 15-day lag
    pm, _ = _pm(folder, overrides={"orderDefectRate.afn": {"lag_days": 0, "target": 0.02}})
    afn = pm["orderDefectRate"]["afn"]
    assert (afn["orderCount"], afn["orderWithDefects"]["count"], afn["targetValue"], afn["status"]) == (
        100,
        1,
        0.02,
        "GOOD",
    )
    toml = tmp_path / "settings.toml"
    toml.write_text("[orderDefectRate.afn]\nlag_days = 0\nwindow_days = 5\n")
    pm, _ = _pm(folder, config_file=toml)
    assert pm["orderDefectRate"]["afn"]["reportingDateRange"]["reportingDateFrom"] == "2026-06-26T00:00:00Z"
    assert pm["orderDefectRate"]["afn"]["orderCount"] == 0
    with pytest.raises(SettingsError, match="unknown metric"):
        metrics.configured({"orderDefectRat": {"target": 1}})
