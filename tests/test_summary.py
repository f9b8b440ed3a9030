"""The first screen's parts computed by hand: the Feedback Manager table, the two-cycle check, the
"Do this now" order, the verdict on an account without a snapshot."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from conftest import cover_until

from analysis import wording
from analysis.inputs import sources
from analysis.insights import escalation, feedback_summary
from analysis.metrics import health
from analysis.metrics.definitions import METRICS
from analysis.metrics.settings import Settings
from analysis.report import context, summary

A = dt.date(2026, 6, 10)


def _us(day: dt.date) -> str:
    return f"{day.month}/{day.day}/{day.strftime('%y')}"


def test_feedback_summary_by_hand(account):
    a = account
    for i in range(6):
        a.order(f"O{i}", "2025-01-01")
    a.feedback("O0", _us(A), 5)  # 30 days
    a.feedback("O1", _us(A - dt.timedelta(days=29)), 3)  # the first of the 30 days
    a.feedback("O2", _us(A - dt.timedelta(days=30)), 1)  # the day before them: 90 days
    a.feedback("O3", _us(A - dt.timedelta(days=100)), 2)  # 365 days
    a.feedback("O4", _us(A - dt.timedelta(days=400)), 4)  # only in the lifetime
    a.feedback("O5", _us(A), 1, removed="true")  # removed by Amazon: not counted
    a.feedback("O5", _us(A + dt.timedelta(days=1)), 1)  # after the as-of day: not known
    df = feedback_summary.feedback_summary(sources.load(a.write()), A)
    got = {
        r["period"]: (r["positive"], r["neutral"], r["negative"], r["total"])
        for r in df.iter_rows(named=True)
    }
    assert got == {
        "30 days": (1, 1, 0, 2),
        "90 days": (1, 1, 1, 3),
        "365 days": (1, 1, 2, 4),
        "Lifetime": (2, 1, 2, 5),
    }
    row = df.filter(pl.col("period") == "90 days").row(0, named=True)
    assert row["positive_share"] == pytest.approx(1 / 3) and row["negative_share"] == pytest.approx(1 / 3)


def test_feedback_summary_without_feedback_is_no_data(account):
    account.order("O1", "2026-06-01")
    df = feedback_summary.feedback_summary(sources.load(account.write()), A)
    assert df["total"].to_list() == [0, 0, 0, 0] and df["negative_share"].to_list() == [None] * 4


def _cycle(a, first: dt.date, orders: int, defects: int, prefix: str) -> None:
    for i in range(orders):
        oid = f"{prefix}{i:03d}"
        a.order(oid, first.isoformat(), channel="MFN")
        if i < defects:
            a.claim(oid, (first + dt.timedelta(days=1)).isoformat(), "granted")


@pytest.mark.parametrize(
    ("orders", "now_defects", "before_defects", "flagged"),
    [
        # 4 in 100 vs the 1 % target: p = 1 - sum(C(100,k) .01^k .99^(100-k), k<4) = 0.0184 < 0.05: Poor
        (100, 4, 4, True),
        # 3 in 100 is 3 % (over 2 %) but p = 0.0794: not Poor, so not an escalation
        (100, 4, 3, False),
        (100, 3, 4, False),
        (100, 3, 3, False),
        # 1 in 10 (p = 0.0956) twice: 10 % each cycle, not Poor at that volume
        (10, 1, 1, False),
        # 2 in 10 (p = 0.0043) twice: Poor in both
        (10, 2, 2, True),
        # 2 in 100 is 2 %, not over 2 %
        (100, 4, 2, False),
    ],
)
def test_two_cycles_by_hand(account, orders, now_defects, before_defects, flagged):
    """Seller-fulfilled orders in each 60-day ODR window; flagged when both cycles are over 2 % and
    each is Poor at its volume (contract: "each with volumeAdjustedStatus BAD")."""
    odr = next(d for d in METRICS if d.id == "orderDefectRate.mfn")
    now_first, _ = odr.window(A)
    before_first, before_last = odr.window(A - dt.timedelta(days=60))
    assert before_last == now_first - dt.timedelta(days=1)  # consecutive cycles
    _cycle(account, now_first, orders, now_defects, "N")
    _cycle(account, before_first, orders, before_defects, "B")
    data = sources.load(cover_until(account.write(), A))
    df = escalation.two_cycles(data, A, METRICS, before_first)
    row = df.filter((pl.col("marketplace_id") == "ATVPDKIKX0DER") & (pl.col("channel") == "MFN")).row(
        0, named=True
    )
    assert (row["defects"], row["orders"], row["defects_before"], row["orders_before"]) == (
        now_defects,
        orders,
        before_defects,
        orders,
    )
    assert row["flagged"] is flagged


def test_two_cycles_before_the_data_is_not_known(account):
    odr = next(d for d in METRICS if d.id == "orderDefectRate.mfn")
    now_first, _ = odr.window(A)
    _cycle(account, now_first, 100, 3, "N")
    data = sources.load(cover_until(account.write(), A))
    df = escalation.two_cycles(data, A, METRICS, health.oldest_order_day(data))
    assert df.filter(pl.col("channel") == "MFN")["flagged"].to_list() == [None]


@pytest.fixture(scope="module")
def sample_ctx(sample_dir):
    return context.prepare(sample_dir, Settings(), period="2026-W46")


def test_do_this_now_on_the_sample(sample_ctx):
    todo = summary.do_this_now(sample_ctx)
    assert 1 <= len(todo) <= summary.MAX_ACTIONS
    # the worst metric first (the US seller-fulfilled ODR is Poor): removals with their effect
    assert todo[0]["kind"] == "feedback-removal" and todo[0]["status"] == "BAD"
    assert (
        todo[0]["effect"]
        == f"ODR Amazon.com Seller-fulfilled {wording.pct(0.019724)} → {wording.pct(0.01183)}"
    )
    ranks = [summary.STATUS_ORDER.get(a["status"], 0) for a in todo]
    assert ranks == sorted(ranks, reverse=True)
    for tier in set(ranks):
        days = [a["deadline"] for a, r in zip(todo, ranks, strict=True) if r == tier and a["deadline"]]
        assert days == sorted(days)


def test_first_screen_on_the_sample(sample_ctx):
    html = summary.first_screen_html(sample_ctx)
    assert "<b>Account: Healthy</b>" in html and "(Amazon, 2026-11-15)" in html
    assert "needs attention most: <b>Order Defect Rate (seller-fulfilled) (Amazon.com)</b>" in html
    # last week's value of the US seller-fulfilled ODR, from the trend (as of 2026-11-08)
    trend = summary.metric_trend(sample_ctx).filter(
        (pl.col("as_of") == dt.date(2026, 11, 8))
        & (pl.col("marketplace_id") == "ATVPDKIKX0DER")
        & (pl.col("metric") == "orderDefectRate.mfn")
    )
    assert f"from {wording.pct(trend['rate'][0])}" in html
    assert html.count("<li>") <= summary.MAX_ACTIONS


def test_verdict_of_a_period_past_the_data_says_the_data_ends_before_it(sample_data):
    """A period past the newest order (allowed): Amazon's state is shown with its date and the
    note that the data ends before the period, not as the period's verdict."""
    import dataclasses

    from analysis import config

    late = context.prepare(
        config.SAMPLE_DIR, dataclasses.replace(Settings(), allow_incomplete=True), week="2026-W47"
    )
    assert summary.account_state(late) == (
        "Healthy",
        "Amazon, 2026-11-15; the data ends 2026-11-15, before this period",
    )
    assert "the data ends 2026-11-15, before this period" in summary.verdict_html(late)
    covered = context.prepare(config.SAMPLE_DIR, Settings(), week="2026-W46")
    assert summary.account_state(covered) == ("Healthy", "Amazon, 2026-11-15")


def test_verdict_of_a_day_before_the_data_is_not_known_and_the_report_renders(account, tmp_path):
    """A day before the first order: no window holds an order, so the state is not known (never
    Healthy), and the roll-off table has no rows instead of failing the report."""
    from analysis.insights import rolloff

    for i in range(10):
        account.order(f"111-0000000-00000{i:02d}", str(dt.date(2026, 5, 20) + dt.timedelta(days=i)))
    data_dir = account.write()
    ctx = context.prepare(data_dir, Settings(), as_of="2026-05-01")
    assert summary.account_state(ctx) == ("Not known", "our estimate: no orders in any metric's window")
    assert rolloff.summary(ctx.result.data, ctx.as_of, ctx.result.metrics).height == 0
    from analysis.report import defect_sections

    assert "When it goes away" in defect_sections.rolloff_summary_html(ctx)


def test_verdict_without_a_snapshot_is_our_estimate(account):
    account.order("O1", "2026-06-01").feedback("O1", "6/2/26", 1)
    data_dir = cover_until(account.write(), A)
    ctx = context.prepare(data_dir, Settings(), as_of=str(A))
    state, source = summary.account_state(ctx)
    assert source.startswith("our estimate")
    assert "not known (no Amazon snapshot)" in summary.ahr_text(ctx)


def _cycles(a, channel: str, orders: int, defects: int, prefix: str) -> None:
    odr = next(d for d in METRICS if d.id == f"orderDefectRate.{channel.lower()}")
    for day, p in ((odr.window(A)[0], "N"), (odr.window(A - dt.timedelta(days=60))[0], "B")):
        for i in range(orders):
            oid = f"{prefix}{p}{i:03d}"
            a.order(oid, day.isoformat(), channel=channel)
            if i < defects:
                a.claim(oid, (day + dt.timedelta(days=1)).isoformat(), "granted")


@pytest.mark.parametrize("claims_only", [False, True])
def test_two_cycles_as_the_report_says_them(account, claims_only):
    """Seller-fulfilled 2 in 10 twice (p = 0.0043 each: Poor) is the escalation, in the banner and
    the list; FBA 1 in 10 twice (10 %, p = 0.0956) is over 2 % but not Poor: never the banner.
    Without the chargebacks file the ODR's counts are a floor: the flag stands, the rest is not known."""
    _cycles(account, "MFN", 10, 2, "M")
    _cycles(account, "AFN", 10, 1, "F")
    account.order("OLD", (A - dt.timedelta(days=200)).isoformat())  # the data reach before both cycles
    if claims_only:
        account.without("chargebacks")
    ctx = context.prepare(cover_until(account.write(), A), Settings(), as_of=A.isoformat())
    html = summary.escalation_html(ctx)
    lines = {li.split(":")[0]: li for li in html.split("<li>")[1:]}
    mfn = next(v for k, v in lines.items() if k.startswith("Amazon.com") and "eller" in k)
    afn = next(v for k, v in lines.items() if k.startswith("Amazon.com") and "FBA" in k)
    assert "20.00\xa0% then 20.00\xa0%" in mfn and "beyond chance at this volume" in mfn
    if claims_only:
        assert "not known" in afn
    else:
        assert "10.00\xa0% then 10.00\xa0%" in afn and "not beyond chance in both (not Poor)" in afn
    banner = summary.verdict_html(ctx)
    assert (
        "Two cycles over 2 %" in banner and "Seller" in banner.split("Two cycles")[1] and "FBA" not in banner
    )


def test_two_cycles_are_not_known_when_unread_rows_could_change_them(account):
    """2 defects in 10 seller-fulfilled orders twice is the escalation; 200 All Orders rows whose
    purchase date cannot be read could each be an order of the window without a defect (2 in 210 is
    under 1 %): the flag is not known, not shown as the point of restriction."""
    _cycles(account, "MFN", 10, 2, "M")
    account.order("OLD", (A - dt.timedelta(days=200)).isoformat())
    for i in range(200):
        account.order(f"BAD{i:03d}", "2026-13-45", channel="MFN")
    data = sources.load(cover_until(account.write(), A))
    assert data.quarantine.height == 200
    df = escalation.two_cycles(data, A, METRICS, health.oldest_order_day(data))
    row = df.filter((pl.col("marketplace_id") == "ATVPDKIKX0DER") & (pl.col("channel") == "MFN")).row(
        0, named=True
    )
    assert (row["defects"], row["orders"], row["defects_before"], row["orders_before"]) == (2, 10, 2, 10)
    assert row["flagged"] is None
    ctx = context.prepare(cover_until(account.write(), A), Settings(), as_of=A.isoformat())
    assert "Two cycles over 2 %" not in summary.verdict_html(ctx)
    assert "not known" in summary.escalation_html(ctx)


def test_feedback_pulled_through_the_sp_api_has_no_positives_to_count(account):
    """GET_SELLER_FEEDBACK_DATA holds 1-3 star feedback only: its positives were shown as 0 (0 %).
    Now they, the count and the shares are not known; neutral and negative counts stand."""
    import gzip

    from analysis.inputs.sample import FEEDBACK_HEADER

    account.order("P1", "2026-06-01").order("P2", "2026-06-01").order("P3", "2026-06-01")
    folder = account.without("feedback").write()
    raw = folder / "raw" / "GET_SELLER_FEEDBACK_DATA"
    raw.mkdir(parents=True)
    rows = [["6/5/26", "1", "late", "", "P1", "", "false"], ["6/6/26", "3", "ok", "", "P2", "", "false"]]
    text = "\n".join("\t".join(r) for r in [FEEDBACK_HEADER, *rows]) + "\n"
    (raw / "2026-06-01_2026-06-10.txt.gz").write_bytes(gzip.compress(text.encode()))
    df = feedback_summary.feedback_summary(sources.load(folder), A)
    row = df.filter(pl.col("period") == "30 days").row(0, named=True)
    assert (row["negative"], row["neutral"], row["positive"], row["total"]) == (1, 1, None, None)
    assert row["positives_known"] is False and row["negative_share"] is None
    ctx = context.prepare(cover_until(folder, A), Settings(), as_of=A.isoformat())
    html = summary.feedback_summary_html(ctx)
    assert (
        "pulled through the SP-API" in html and "0 %" not in html.split("Amazon.com")[1].split("</table>")[0]
    )
