"""Reconciliation on a hand-made pair: our exports and an Amazon snapshot with planted differences,
each of which must be named; and a V2 document shaped like a real amazon.de one must load."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

from conftest import cover_until

from analysis.inputs import sources
from analysis.insights import reconcile
from analysis.metrics.definitions import METRICS

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
WINDOW = {"reportingDateFrom": "2026-04-02T00:00:00Z", "reportingDateTo": "2026-05-31T23:59:59Z"}


def _odr(orders: int, defects: int, feedback: int, claims: int, chargebacks: int = 0) -> dict:
    return {
        "reportingDateRange": WINDOW,
        "orderCount": orders,
        "orderWithDefects": {"count": defects, "status": "BAD"},
        "negativeFeedback": {"count": feedback, "status": "NONE"},
        "claims": {"count": claims, "status": "NONE"},
        "chargebacks": {"count": chargebacks, "status": "NONE"},
        "rate": defects / orders,
        "status": "BAD",
        "targetValue": 0.01,
        "targetCondition": "LESS_THAN",
    }


def _snapshot() -> dict:
    ahr = {
        "ahrStatus": "GOOD",
        "reportingDateRange": {
            "reportingDateFrom": "2025-12-18T00:00:00Z",
            "reportingDateTo": "2026-06-15T23:59:59Z",
        },
    }
    return {
        "accountStatuses": [
            {"marketplaceId": US, "status": "NORMAL"},
            {"marketplaceId": UK, "status": "NORMAL"},
        ],
        "performanceMetrics": [
            # US: 105 orders (we have 100), 3 negative feedback (one is marked removed in ours),
            # 2 claims (we have no claims file)
            {"marketplaceId": US, "orderDefectRate": {"afn": _odr(105, 5, 3, 2)}, "accountHealthRating": ahr},
            # UK: 60 orders; our exports start 2026-04-20, after Amazon's window begins
            {"marketplaceId": UK, "orderDefectRate": {"afn": _odr(60, 0, 0, 0)}, "accountHealthRating": ahr},
        ],
    }


def _account(account):
    a = account
    for i in range(100):
        a.order(f"111-0000000-{i:07d}", (dt.date(2026, 4, 2) + dt.timedelta(days=i % 60)).isoformat())
    for i in range(50):
        a.order(
            f"202-0000000-{i:07d}",
            (dt.date(2026, 4, 20) + dt.timedelta(days=i % 40)).isoformat(),
            market="Amazon.co.uk",
        )
    a.feedback("111-0000000-0000001", "5/10/26", 1, comment="broken")
    a.feedback("111-0000000-0000002", "5/11/26", 2, comment="late")
    a.feedback("111-0000000-0000003", "5/12/26", 1, comment="bad", removed="true")
    a.without("claims")
    folder = cover_until(a.write(), dt.date(2026, 6, 15))
    (folder / "V2_Seller_Performance_2026-06-15.json").write_text(json.dumps(_snapshot()), encoding="utf-8")
    return folder


def _by_part(rows, mkt: str) -> dict:
    return {r.part: r for r in rows if r.marketplace_id == mkt and r.metric == "orderDefectRate.afn"}


def test_each_planted_difference_is_named(account):
    folder = _account(account)
    rows = reconcile.reconcile(sources.load(folder), dt.date(2026, 6, 15), METRICS)
    us, uk = _by_part(rows, US), _by_part(rows, UK)
    assert (us["orderCount"].amazon, us["orderCount"].ours) == (105, 100)
    assert us["orderCount"].reasons == (
        "5 orders Amazon counts in 2026-04-02 to 2026-05-31 are not in the exports' All Orders files "
        "(a download that missed days, or orders of another channel or marketplace)",
    )
    assert (us["claims"].amazon, us["claims"].ours) == (2, 0)
    assert us["claims"].reasons == ("no A-to-z claims file: Amazon counts what we cannot see",)
    assert (us["negativeFeedback"].amazon, us["negativeFeedback"].ours) == (3, 2)
    assert any(
        "1 negative feedback on orders of the window are marked removed" in x
        for x in us["negativeFeedback"].reasons
    )
    both = us["orderWithDefects"].reasons
    assert any("no A-to-z claims file" in x for x in both) and any("marked removed" in x for x in both)
    assert (uk["orderCount"].amazon, uk["orderCount"].ours) == (60, 50)
    assert (
        uk["orderCount"]
        .reasons[0]
        .startswith(
            "Amazon's window starts 2026-04-02, before the exports' first order of Amazon.co.uk (2026-04-20)"
        )
    )
    assert all(r.window_source == "Amazon's" and r.snapshot_day == dt.date(2026, 6, 15) for r in rows)
    assert us["chargebacks"].reasons == ()  # equal counts: nothing to explain


def test_reconcile_command(account):
    folder = _account(account)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "reconcile",
            "--data",
            str(folder),
            "--as-of",
            "2026-06-15",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    diff = {(r["marketplace_id"], r["part"]): r["difference"] for r in doc["rows"]}
    assert diff[(US, "orderCount")] == 5 and diff[(US, "claims")] == 2 and diff[(UK, "orderCount")] == 10


def test_an_amazon_de_shaped_document_loads(account, tmp_path):
    """Real amazon.de documents: metrics without reportingDateRange, lateShipmentRateList entries
    without dates, statuses that differ from the bare target rule (On-Time Delivery 3 of 7 GOOD)."""
    de = "A1PA6795UKMFR9"
    doc = {
        "accountStatuses": [{"marketplaceId": de, "status": "NORMAL"}],
        "performanceMetrics": [
            {
                "marketplaceId": de,
                "accountHealthRating": {
                    "ahrStatus": "GREAT",
                    "ahrScore": 1000,
                    "reportingDateRange": {
                        "reportingDateFrom": "2025-12-18T00:00:00Z",
                        "reportingDateTo": "2026-06-15T23:59:59Z",
                    },
                },
                "orderDefectRate": {
                    "afn": {
                        "orderCount": 120,
                        "orderWithDefects": {"count": 0, "status": "GOOD"},
                        "status": "GOOD",
                        "rate": 0.0,
                    },
                    "mfn": {"orderCount": 0, "status": "NONE"},
                },
                "lateShipmentRateList": [
                    {"orderCount": 7, "lateShipmentCount": 0, "status": "GOOD", "rate": 0.0},
                    {"orderCount": 25, "lateShipmentCount": 1, "status": "GOOD", "rate": 0.04},
                ],
                "onTimeDeliveryRate": {
                    "shipmentCountWithValidTracking": 7,
                    "onTimeDeliveryCount": 3,
                    "rate": 0.4286,
                    "status": "GOOD",
                    "targetValue": 0.97,
                    "targetCondition": "GREATER_THAN",
                },
            }
        ],
    }
    account.order("302-0000000-0000001", "2026-06-01", market="Amazon.de")
    folder = cover_until(account.write(), dt.date(2026, 6, 15))
    (folder / "V2_Seller_Performance_de.json").write_text(json.dumps(doc), encoding="utf-8")
    data = sources.load(folder)
    assert len(data.snapshots) == 1 and not data.skipped
    rows = reconcile.reconcile(data, dt.date(2026, 6, 15), METRICS)
    # no dates on the ODR: compared over our own window as of the snapshot's day, and said so
    odr = [r for r in rows if r.metric == "orderDefectRate.afn" and r.part == "orderCount"]
    assert odr and odr[0].window_source.startswith("ours as of the snapshot's day")
    # the late shipment entries without dates cannot be matched to 10 or 30 days: not compared
    assert not [r for r in rows if r.metric.startswith("lateShipmentRate")]
    out = subprocess.run(
        [sys.executable, "-m", "analysis", "metrics", "--data", str(folder), "--as-of", "2026-06-15"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
