"""The daily action list (`today`), kind by kind, at the edges of each deadline. The moment of
the list is the end of the as-of day: here Wednesday 2026-06-10, so `now` = 2026-06-11 00:00 UTC."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import polars as pl
import pytest
from conftest import cover_until

from analysis.inputs import sources
from analysis.insights import actions

A = dt.date(2026, 6, 10)  # a Wednesday
UTC = dt.UTC


def listed(account, kind: str, as_of: dt.date = A) -> dict[str, dt.datetime]:
    got = actions.today(sources.load(account.write()), as_of)
    rows = got.actions.filter(got.actions["kind"] == kind)
    return dict(zip(rows["order_id"], rows["due"], strict=True))


def test_ship_by_edges(account):
    a = account
    for oid in ("S1", "S2", "S3", "S4", "S5", "S6", "S7"):
        a.order(oid, "2026-06-08", channel="MFN", status="Unshipped")
    a.order("S8", "2026-06-08", channel="MFN", status="Shipped")
    a.shipment("S1", "2026-06-11T23:59:59+00:00")  # last second of the next day: listed
    a.shipment("S2", "2026-06-12T00:00:00+00:00")  # the day after next: not yet
    a.shipment("S3", "2026-06-09T10:00:00+00:00")  # overdue: listed
    a.shipment("S4", "2026-06-09T10:00:00+00:00", ship="2026-06-10T09:00:00+00:00")  # shipped
    a.shipment("S5", "2026-06-09T10:00:00+00:00", ship="2026-06-11T09:00:00+00:00")  # shipped after now
    a.shipment("S6", "2026-06-03T00:00:00+00:00")  # overdue by 8 days: dropped (7 at most)
    a.shipment("S7", "2026-06-04T00:00:00+00:00")  # overdue by exactly 7 days: listed
    a.shipment("S8", "2026-06-09T10:00:00+00:00")  # the order says Shipped
    got = listed(a, "ship-by")
    assert set(got) == {"S1", "S3", "S5", "S7"}
    assert got["S1"] == dt.datetime(2026, 6, 11, 23, 59, 59, tzinfo=UTC)


def test_invoice_edges(account):
    a = account
    # AFN business orders: the ship day is the purchase day; deadline = end of the next business day
    a.order("I1", "2026-06-10T08:00:00+00:00", business=True)  # deadline end of Thu 06-11: listed
    a.order("I2", "2026-06-09T08:00:00+00:00", business=True)  # deadline end of Wed 06-10 = now: overdue
    a.order("I3", "2026-06-09T08:00:00+00:00", business=True)  # invoiced before now
    a.order("I4", "2026-06-09T08:00:00+00:00", business=True)  # invoiced after now: not known, listed
    a.order("I5", "2026-06-09T08:00:00+00:00")  # not a business order
    a.order("I6", "2026-06-09T08:00:00+00:00", business=True, status="Pending")  # not shipped
    a.order("I7", "2026-06-11T08:00:00+00:00", business=True)  # bought after now: not known
    a.order("I8", "2026-06-02T08:00:00+00:00", business=True)  # deadline end of 06-03: 7 days over, listed
    a.order("I9", "2026-06-01T08:00:00+00:00", business=True)  # deadline end of 06-02: 8 days over
    a.invoice("I3", "2026-06-10T10:00:00+00:00").invoice("I4", "2026-06-11T10:00:00+00:00")
    got = listed(a, "invoice")
    assert set(got) == {"I1", "I2", "I4", "I8"}
    assert got["I1"] == dt.datetime(2026, 6, 12, tzinfo=UTC)
    assert got["I2"] == dt.datetime(2026, 6, 11, tzinfo=UTC)


def test_invoice_over_a_weekend(account):
    # as of Friday 06-12, one business day away is the end of Monday 06-15
    account.order("F1", "2026-06-12T08:00:00+00:00", business=True)  # deadline end of Mon 06-15
    got = listed(account, "invoice", dt.date(2026, 6, 12))
    assert got == {"F1": dt.datetime(2026, 6, 16, tzinfo=UTC)}


def test_message_edges(account):
    a = account
    for oid in ("M1", "M2", "M3", "M4", "M5", "M6"):
        a.order(oid, "2026-06-08")
    a.message("t1", "M1", "2026-06-10T12:00:00+00:00")  # limit 06-11 12:00 = now + 12 h: listed
    a.message("t2", "M2", "2026-06-10T12:00:01+00:00")  # one second later: not yet
    a.message("t3", "M3", "2026-06-09T08:00:00+00:00")  # limit passed: listed
    a.message("t4", "M4", "2026-06-09T08:00:00+00:00", responded="2026-06-10T08:00:00+00:00")  # answered
    a.message(
        "t5", "M5", "2026-06-09T08:00:00+00:00", responded="2026-06-11T08:00:00+00:00"
    )  # answered later
    a.message("t6", "M6", "2026-06-11T01:00:00+00:00")  # received after now
    got = listed(a, "message")
    assert set(got) == {"M1", "M3", "M5"}
    assert got["M1"] == dt.datetime(2026, 6, 11, 12, tzinfo=UTC)


def test_feedback_removal_edges(account):
    a = account
    # a product review (removable); the request window is 90 days after the feedback
    for oid, day in (("R14", "3/26/26"), ("R15", "3/27/26"), ("R0", "3/12/26"), ("Rm1", "3/11/26")):
        a.order(oid, "2026-03-01")
        a.feedback(oid, day, 1, comment="Stopped working, poor quality.")
    a.order("Rstay", "2026-03-01").feedback("Rstay", "3/26/26", 1, comment="Seller was rude.")
    got = listed(a, "feedback-removal")
    # 03-26 + 90 days = 06-24: 14 days left (03-27: 15); 03-12 + 90 = 06-10: the last day, 0 left
    assert set(got) == {"R14", "R0"}
    assert got["R14"] == dt.datetime(2026, 6, 25, tzinfo=UTC)  # the end of the last day to ask


def test_claim_appeal(account):
    a = account
    for oid in ("C1", "C2", "C3", "C4", "C5", "C6"):
        a.order(oid, "2026-06-01", channel="MFN")
    ok = {"carrier": "UPS", "tracking": "1Z1", "valid": "true"}
    a.shipment("C1", "2026-06-03T00:00:00+00:00", ship="2026-06-02T10:00:00+00:00", **ok)
    a.shipment("C2", "2026-06-03T00:00:00+00:00", ship="2026-06-04T10:00:00+00:00", **ok)  # shipped late
    a.shipment(
        "C3", "2026-06-03T00:00:00+00:00", ship="2026-06-02T10:00:00+00:00", carrier="UPS", tracking=""
    )
    a.shipment(
        "C4", "2026-06-03T00:00:00+00:00", ship="2026-06-02T10:00:00+00:00", buy_shipping="false", **ok
    )
    a.shipment("C5", "2026-06-03T00:00:00+00:00", ship="2026-06-02T10:00:00+00:00", **ok)
    a.shipment("C6", "2026-06-03T00:00:00+00:00", ship="2026-06-02T10:00:00+00:00", **ok)
    a.claim("C1", "2026-06-09", "under-review")
    a.claim("C2", "2026-06-09", "under-review")
    a.claim("C3", "2026-06-09", "under-review")
    a.claim("C4", "2026-06-09", "under-review")
    a.claim("C5", "2026-06-09", "granted")  # decided
    a.claim("C6", "2026-06-11", "under-review")  # after now
    got = listed(a, "claim-appeal")
    assert got == {"C1": dt.datetime(2026, 6, 12, tzinfo=UTC)}  # 72 hours after the claim


def test_feedback_reply(account):
    a = account
    for oid in ("F1", "F2", "F3", "F4", "F5", "F6"):
        a.order(oid, "2026-03-01")
    a.feedback("F1", "6/9/26", 2, comment="meh")
    a.feedback("F2", "6/9/26", 1, comment="bad", response="We are sorry, please write to us.")
    a.feedback("F3", "6/9/26", 3, comment="ok")
    a.feedback("F4", "6/9/26", 1, comment="bad", removed="true")
    a.feedback("F5", "3/13/26", 1, comment="bad")  # the first of the 90 days ending on A: kept
    a.feedback("F6", "3/12/26", 1, comment="bad")  # the day before them: left alone
    got = listed(a, "feedback-reply")
    assert set(got) == {"F1", "F5"}
    assert got["F1"] == dt.datetime(2026, 6, 11, tzinfo=UTC)  # by the end of the next day


def test_absent_files_are_not_checked_and_said(account):
    account.order("X1", "2026-06-08", channel="MFN", status="Unshipped").without("messages", "shipments")
    got = actions.today(sources.load(account.write()), A)
    assert {d["kind"]: d["reason"] for d in got.not_checked} == {
        "ship-by": "not checked: no MFN shipments file",
        "message": "not checked: no Buyer messages file",
        "claim-appeal": "not checked: no MFN shipments file",
    }


def test_links_go_to_the_marketplace_seller_central(account):
    account.order("U1", "2026-06-08", channel="MFN", status="Unshipped", market="Amazon.co.uk")
    account.shipment("U1", "2026-06-11T10:00:00+00:00")
    got = actions.today(sources.load(account.write()), A).to_dict()
    assert got["actions"] == [
        {
            "kind": "ship-by",
            "orderId": "U1",
            "marketplaceId": "A1F83G8C2ARO7P",
            "due": "2026-06-11T10:00:00Z",
            "what": "Ship and confirm before the ship-by time",
            "why": "not ship-confirmed; a shipment confirmed after its ship-by time counts in the Late Shipment Rate",
            "link": "https://sellercentral.amazon.co.uk/orders-v3/order/U1",
        }
    ]


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_today_command(account, fmt):
    account.order("U1", "2026-06-08", channel="MFN", status="Unshipped")
    account.shipment("U1", "2026-06-11T10:00:00+00:00")
    account.order("M1", "2026-06-08").message("t1", "M1", "2026-06-09T08:00:00+00:00")
    folder = cover_until(account.write(), A)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "today",
            "--data",
            str(folder),
            "--as-of",
            str(A),
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "@" not in out.stdout  # no buyer e-mail
    if fmt == "json":
        doc = json.loads(out.stdout)
        assert doc["asOf"] == "2026-06-10"
        assert [(x["kind"], x["orderId"], x["due"]) for x in doc["actions"]] == [
            ("message", "M1", "2026-06-10T08:00:00Z"),
            ("ship-by", "U1", "2026-06-11T10:00:00Z"),
        ]
    elif fmt == "csv":
        lines = out.stdout.strip().splitlines()
        assert lines[0] == "kind,order_id,marketplace_id,due,what,why,link" and len(lines) == 3
    else:
        assert "1 order to ship, 1 buyer message to answer" in out.stdout


def test_today_refuses_a_day_past_the_data(account):
    account.order("U1", "2026-06-08")
    out = subprocess.run(
        [sys.executable, "-m", "analysis", "today", "--data", str(account.write()), "--as-of", "2026-06-10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "after the data" in out.stderr and "Traceback" not in out.stderr


def test_removals_lists_every_candidate(sample_dir):
    """All removal candidates (the report shows the nearest 50), each with order, deadline, rule
    and words, equal to the triage's; --all adds the feedback that stays."""
    from analysis.insights import triage

    run = [sys.executable, "-m", "analysis", "removals", "--data", str(sample_dir), "--as-of", "2026-11-15"]
    out = subprocess.run([*run, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    t = triage.triage(sources.load(sample_dir), dt.date(2026, 11, 15))
    want = t.filter(
        t["verdict"].is_in([triage.REMOVABLE, triage.STRIKE, triage.STRIKE_IF_BUY_SHIPPING]) & ~t["expired"]
    )
    assert [r["order_id"] for r in rows] == want["order_id"].to_list() and len(rows) == 47
    assert set(rows[0]) >= {"order_id", "request_by", "rule", "trigger_words", "verdict", "days_left"}
    assert "@" not in out.stdout
    everything = subprocess.run(
        [*run, "--all", "--format", "csv"], capture_output=True, text=True, timeout=120
    )
    assert everything.returncode == 0 and len(everything.stdout.strip().splitlines()) == t.height + 1


def test_a_marketplace_without_its_feedback_file_is_not_checked(account):
    """Feedback is downloaded per marketplace: with the US file only, the UK's replies and removals
    are "not checked", not "nothing to do" (notChecked was empty)."""
    account.order("US1", "2026-06-01").feedback("US1", "6/2/26", 1)
    account.order("UK1", "2026-06-01", market="Amazon.co.uk")
    found = actions.today(sources.load(cover_until(account.write(), A)), A)
    uk = [s for s in found.not_checked if s.get("marketplaceId") == "A1F83G8C2ARO7P"]
    assert {s["kind"] for s in uk} == {"feedback-removal", "feedback-reply"}
    assert all(
        s["reason"] == "not checked for Amazon.co.uk: no Seller feedback report file for it" for s in uk
    )
    assert not [s for s in found.not_checked if s.get("marketplaceId") == "ATVPDKIKX0DER"]
    assert found.actions.filter(pl.col("kind") == "feedback-reply")["order_id"].to_list() == ["US1"]


def test_a_report_of_one_marketplace_lists_only_its_own_not_checked(tmp_path):
    """The US report said "not checked for Amazon.co.uk"; the e-mail's plain text said nothing of
    what was not checked."""
    import shutil

    from analysis import config
    from analysis.deliver import email as mail
    from analysis.metrics.settings import Settings
    from analysis.report import context, summary

    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    (d / "Feedback_co_uk.txt").unlink()
    us = context.prepare(d, Settings(), marketplace="ATVPDKIKX0DER", period="2026-W46")
    assert summary.not_checked(us) == [] and "not checked" not in summary.do_this_now_html(us)
    uk = context.prepare(d, Settings(), marketplace="A1F83G8C2ARO7P", period="2026-W46")
    assert {s["kind"] for s in summary.not_checked(uk)} == {"feedback-removal", "feedback-reply"}
    assert "not checked for Amazon.co.uk" in summary.do_this_now_html(uk)
    assert (
        "(feedback-reply: not checked for Amazon.co.uk: no Seller feedback report file for it)"
        in mail.plain_text(uk)
    )
