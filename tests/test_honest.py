"""Never say more than the data knows: absent files, periods past the data, one run's settings,
our verdict named as ours (issue 12)."""

import datetime as dt
import json
import re
import shutil
import subprocess
import sys

import polars as pl
import pytest
from conftest import cover_until

from analysis import config, wording
from analysis.errors import PeriodError, SettingsError
from analysis.inputs import sources
from analysis.insights import triage
from analysis.metrics import definitions as metrics_defs
from analysis.metrics import health, settings
from analysis.metrics.settings import Settings
from analysis.report import context, defect_sections, sections, summary

ORDERS_ONLY = ("All_Orders_com.txt", "All_Orders_co_uk.txt")


def _run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def orders_only(tmp_path_factory):
    d = tmp_path_factory.mktemp("oo") / "data"
    d.mkdir()
    for f in ORDERS_ONLY:
        shutil.copy(config.SAMPLE_DIR / f, d / f)
    return d


def test_orders_only_folder_has_no_verdict_and_names_the_files(orders_only):
    r = _run("metrics", "--data", str(orders_only), "--as-of", "2026-11-15")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    health.validate(doc)
    for pm in doc["performanceMetrics"]:
        for ch in ("afn", "mfn"):
            odr = pm["orderDefectRate"][ch]
            assert odr["dataMissing"] == ["feedback", "claims", "chargebacks"]
            assert odr["status"] == odr["volumeAdjustedStatus"] == odr["orderWithDefects"]["status"] == "NONE"
            assert odr["orderCount"] > 0  # counts still computed from what is there
        assert pm["refundRate"]["dataMissing"] == ["fba_returns", "mfn_returns"]
        assert pm["invoiceDefectRate"]["dataMissing"] == ["invoices", "shipments"]
        assert pm["invoiceDefectRate"]["status"] == pm["refundRate"]["status"] == "NONE"
    # one warning line per absent kind, on stderr
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: No ")]
    kinds = ("Seller feedback", "A-to-z claims", "Chargebacks", "MFN shipments", "Cancellations")
    assert len(warned) == 9 and all(any(k in w for w in warned) for k in kinds)
    # the estimate says which files it lacked
    assert all(s["dataMissing"][:3] == ["feedback", "claims", "chargebacks"] for s in doc["accountStatuses"])


def test_header_only_file_means_none_and_the_metric_is_complete(account):
    a = account
    for i in range(1, 11):
        a.order(f"O{i}", "2026-06-01")
    a.order("LAST", "2026-06-30")
    folder = a.write()
    pm = health.account_health(folder, "2026-06-30").document["performanceMetrics"][0]
    odr = pm["orderDefectRate"]["afn"]
    assert "dataMissing" not in odr and (odr["orderCount"], odr["status"]) == (10, "GOOD")
    # the same folder without a claims file: incomplete
    (folder / "claims.csv").unlink()
    pm = health.account_health(folder, "2026-06-30").document["performanceMetrics"][0]
    assert pm["orderDefectRate"]["afn"]["dataMissing"] == ["claims"]


def test_incomplete_metric_shows_its_bound_never_a_badge(orders_only):
    ctx = context.prepare(orders_only, Settings(), week="2026-W46")
    card = sections.odr_scorecard_html(ctx) + "".join(
        sections.scorecard_html(ctx, m) for m in ctx.marketplaces
    )
    rows = re.findall(r"<tr>(.*?)</tr>", card, re.S)
    for title in ("Order Defect Rate (FBA)", "Refund rate", "Invoice Defect Rate"):
        row = next(r for r in rows if title in r)
        assert 'class="badge INCOMPLETE"' in row and not re.search(r'badge (GOOD|AT_RISK|BAD)"', row)
    odr_row = next(r for r in rows if "Amazon.com" in r and "FBA" in r)
    assert re.search(
        r"at least 0\.\d\d\u00a0%: no Seller feedback report, A-to-z claims, Chargebacks file", odr_row
    )
    assert "Incomplete: some exports are not in the data folder" in sections.header_html(ctx)
    assert sections.headline(ctx)["status"] == "INCOMPLETE"


def test_all_rows_of_a_kind_set_aside_is_refused(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(config.SAMPLE_DIR / "All_Orders_com.txt", d)
    (d / "feedback.txt").write_text(
        "Date\tRating\tComments\tYour Response\tOrder ID\tRater Email\n"
        "not a date\tnine\tx\t\t111-1\tb@example.com\n",
        encoding="utf-8",
    )
    r = _run("metrics", "--data", str(d), "--as-of", "2026-11-15")
    assert r.returncode == 2 and r.stdout == ""
    assert "Every row of feedback.txt (Seller feedback report, 1 row) was set aside" in r.stderr
    assert "line 2, column 'Rating'" in r.stderr
    assert "Traceback" not in r.stderr and "b@example.com" not in r.stderr


@pytest.mark.parametrize("command", ["metrics", "defects", "spikes"])
def test_as_of_past_the_data_is_refused(command):
    r = _run(command, "--data", str(config.SAMPLE_DIR), "--as-of", "2027-03-01")
    assert r.returncode == 2 and r.stdout == ""
    assert "newest order in sample is from 2026-11-15" in r.stderr and "--allow-incomplete" in r.stderr


def test_as_of_past_the_data_allowed_when_asked():
    ok = _run("metrics", "--data", str(config.SAMPLE_DIR), "--as-of", "2026-11-16", "--allow-incomplete")
    assert ok.returncode == 0 and json.loads(ok.stdout)["asOf"] == "2026-11-16"


def test_future_week_and_unfinished_month_write_nothing(tmp_path):
    out = tmp_path / "reports"
    for period in (["--week", "2026-W47"], ["--month", "2026-11"], ["--week", "2027-W10"]):
        r = _run("report", "--data", str(config.SAMPLE_DIR), *period, "--out", str(out))
        assert r.returncode == 2, r.stderr
        assert "is after the data" in r.stderr and "2026-11-15" in r.stderr
    assert not out.exists()


def test_a_period_past_the_data_says_so(orders_only):
    with pytest.raises(PeriodError):
        context.prepare(config.SAMPLE_DIR, Settings(), week="2026-W47")
    ctx = context.prepare(config.SAMPLE_DIR, Settings(allow_incomplete=True), week="2026-W47")
    assert "Incomplete period: data ends 2026-11-15" in sections.header_html(ctx)
    assert sections.headline(ctx)["incomplete"] == "data ends 2026-11-15"
    # no trend point after the data: the last as-of day drawn is the newest order day or before
    assert sections.metric_trend(ctx)["as_of"].max() <= dt.date(2026, 11, 15)


def test_what_if_table_equals_triage(sample_data):
    ctx = context.prepare(config.SAMPLE_DIR, Settings(), week="2026-W46")
    shown = defect_sections.what_if_table(ctx)
    w = triage.what_if(ctx.result.data, ctx.as_of, ctx.settings.metrics)
    now = w.filter(pl.col("scenario") == "now").sort("marketplace_id", "channel")
    after = w.filter(pl.col("scenario") == "if removed").sort("marketplace_id", "channel")
    assert shown["now"].to_list() == now["rate"].to_list()
    assert shown["if removed"].to_list() == after["rate"].to_list()
    assert set(shown["channel"]) <= {"FBA", "Seller-fulfilled"}
    html = defect_sections.removal_candidates_html(ctx)
    section = html.split("if they were removed")[1]
    for r in shown.iter_rows(named=True):  # the cells are the rates, as percentages
        assert wording.pct(r["now"]) in section and wording.pct(r["if removed"]) in section
    assert ">0.0<" not in section and "AFN" not in section


def test_explorer_default_rates_equal_the_cli(sample_data):
    from analysis.explore.explorer import Explorer

    ex = Explorer(sample_data, dt.date(2026, 11, 15), Settings(), interactive=False)
    mine = ex._breakdown("sku").select("value", "orders", "defects", "rate")
    r = _run(
        "defects",
        "--data",
        str(config.SAMPLE_DIR),
        "--as-of",
        "2026-11-15",
        "--by",
        "sku",
        "--format",
        "json",
    )
    cli = pl.DataFrame(json.loads(r.stdout)).select("value", "orders", "defects", "rate")
    assert mine.sort("value").to_dicts() == cli.sort("value").to_dicts()
    hub = cli.filter(pl.col("value") == "HUB-7").row(0, named=True)
    assert (hub["defects"], hub["orders"]) == (37, 423)


def test_toml_settings_reach_defects_spikes_and_the_report(tmp_path, sample_data):
    toml = tmp_path / "s.toml"
    toml.write_text(
        "[orderDefectRate.afn]\ntarget = 0.05\n[spikes]\nglr_h = 50.0\n[report]\ntrend_weeks = 8\n"
    )
    run = settings.build(toml)
    assert run.metric("orderDefectRate.afn").target == 0.05 and run.spikes.glr_h == 50.0
    assert Settings.from_dict(run.to_dict()) == run  # what papermill passes rebuilds the same run
    args = ("--data", str(config.SAMPLE_DIR), "--as-of", "2026-11-15")
    base = _run("defects", *args, "--by", "sku", "--format", "json")
    tuned = _run("defects", *args, "--by", "sku", "--format", "json", "--config", str(toml))
    p0 = {r["value"]: r["p_above_target"] for r in json.loads(base.stdout)}
    p1 = {r["value"]: r["p_above_target"] for r in json.loads(tuned.stdout)}
    assert p1["STAND-A"] < p0["STAND-A"]  # P(rate > 5 %) is smaller than P(rate > 1 %)
    first = ("--from", "2026-09-01")
    s0 = json.loads(_run("spikes", *args, *first, "--format", "json").stdout)
    s1 = json.loads(_run("spikes", *args, *first, "--format", "json", "--config", str(toml)).stdout)
    glr = [a for a in s0["alarms"] if a["detector"] == "glr"]
    assert glr and not [a for a in s1["alarms"] if a["detector"] == "glr"]
    ctx = context.prepare(config.SAMPLE_DIR, run, week="2026-W46")
    html = sections.odr_scorecard_html(ctx) + sections.footer_html(ctx)
    assert "&lt; 5\u00a0%" in html and "s.toml" in html and "target = 0.05" in html
    assert ctx.as_of - dt.timedelta(weeks=7) == sections.metric_trend(ctx)["as_of"].min()


def test_bad_settings_are_one_sentence(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, words in (
        ("[orderDefectRate.afn]\ntarget = 5\n", "is not a fraction"),
        ("[spikes]\nglr = 3\n", "unknown setting"),
        ("[orderDefectRat]\ntarget = 0.1\n", "unknown metric"),
        ("target = 0.1\n", "outside a table"),
        ("[report\n", "not valid TOML"),
    ):
        bad.write_text(text)
        with pytest.raises(SettingsError, match=words):
            settings.build(bad)
        r = _run("metrics", "--data", str(config.SAMPLE_DIR), "--as-of", "2026-11-15", "--config", str(bad))
        assert r.returncode == 2 and "Traceback" not in r.stderr and words in r.stderr


def test_words():
    assert wording.count(1, "defect") == "1 defect" and wording.count(1, "claim") == "1 claim"
    assert wording.count(2, "refunded order") == "2 refunded orders"
    assert wording.count(1234, "order") == "1,234 orders"
    assert [wording.p_text(p) for p in (6.45e-5, 0.028, 0.0043, 0.0956, 0.5)] == [
        "p < 0.001",
        "p = 0.028",
        "p = 0.0043",
        "p = 0.096",
        "p = 0.50",
    ]
    assert wording.direction(0.90, True, False) == "below the 90\u00a0% target"
    assert wording.direction(0.01, False, False) == "over the 1\u00a0% target"


def test_status_sentence_by_hand():
    odr = Settings().odr("AFN")
    # metrics.md's example: 1 defect in 10 orders is 10 %, p = 0.0956, Fair
    obj = {
        "orderCount": 10,
        "orderWithDefects": {"count": 1},
        "volumeAdjustedStatus": "AT_RISK",
        "pValue": 0.0956,
    }
    assert sections.status_sentence(odr, obj) == (
        "1 defect in 10 orders: over the 1\u00a0% target, but at this volume that can be chance (p = 0.096)."
    )
    obj = {
        "orderCount": 10,
        "orderWithDefects": {"count": 2},
        "volumeAdjustedStatus": "BAD",
        "pValue": 0.0043,
    }
    assert sections.status_sentence(odr, obj).endswith(
        "more than chance explains at this volume (p = 0.0043)."
    )
    crt = Settings().metric("contactResponseTime")  # higher is better: misses are late answers
    obj = {"messageCount": 223, "respondedWithin24hCount": 193, "volumeAdjustedStatus": "BAD", "pValue": 0.01}
    assert sections.status_sentence(crt, obj).startswith(
        "30 late answers in 223 messages: below the 90\u00a0% target"
    )


def test_our_verdict_is_named_ours_and_amazons_has_its_date(sample_data):
    ctx = context.prepare(config.SAMPLE_DIR, Settings(), week="2026-W46")
    html = sections.odr_scorecard_html(ctx) + "".join(
        sections.scorecard_html(ctx, m) for m in ctx.marketplaces
    )
    assert "Amazon's view" not in html and "Amazon, 2026-11-15:" in html
    assert "Over target" in html or "Under target" in html
    assert "README" not in html and "Amazon's performance report of 2026-11-15" in html
    # a week before the newest snapshot reads the older one, with its own date
    older = context.prepare(config.SAMPLE_DIR, Settings(), week="2026-W45")
    assert "Amazon, 2026-11-08:" in sections.odr_scorecard_html(older)


def test_history_marks_what_it_cannot_know(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    (d / "a-to-z-claims.csv").unlink()
    args = ("--data", str(d), "--from", "2026-11-14", "--to", "2026-11-16", "--format", "json")
    r = _run("history", *args, "--allow-incomplete")
    rows = pl.DataFrame(json.loads(r.stdout))
    odr = rows.filter(pl.col("metric").str.starts_with("orderDefectRate"))
    assert set(odr["data_missing"]) == {"claims"} and set(odr["status"]) == {"NONE"}
    lsr = rows.filter(pl.col("metric") == "lateShipmentRate.30d")
    assert lsr["data_missing"].is_null().all()
    within = lsr.filter(~pl.col("past_data"))
    assert set(within["status"]) <= {"GOOD", "BAD"} and set(within["as_of"]) == {"2026-11-14", "2026-11-15"}
    # a window that reaches past the newest order (LSR: lag 0) gets no verdict
    assert set(lsr.filter(pl.col("past_data"))["status"]) == {"NONE"}
    assert rows.filter(pl.col("past_data"))["as_of"].unique().to_list() == ["2026-11-16"]
    # past the data every metric is without a verdict, lagged windows too (on-time delivery, lag 10,
    # would count late every package whose delivery after the data ends is unknown)
    after = rows.filter(pl.col("as_of") == "2026-11-16")
    assert after["past_data"].all() and set(after["status"]) == set(after["volume_adjusted_status"]) == {
        "NONE"
    }
    assert after.filter(pl.col("metric") == "onTimeDeliveryRate")["window_to"].to_list() < ["2026-11-15"] * 2
    refused = _run("history", *args)
    assert refused.returncode == 2 and "--to day 2026-11-16 is after the data" in refused.stderr


def test_one_marketplace_without_its_feedback_file(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    (d / "Feedback_com.txt").unlink()
    r = _run("metrics", "--data", str(d), "--as-of", "2026-11-15")
    doc = json.loads(r.stdout)
    by = {pm["marketplaceId"]: pm["orderDefectRate"]["mfn"] for pm in doc["performanceMetrics"]}
    assert by["ATVPDKIKX0DER"]["dataMissing"] == ["feedback"] and by["ATVPDKIKX0DER"]["status"] == "NONE"
    assert "dataMissing" not in by["A1F83G8C2ARO7P"]
    assert "No Seller feedback report file for Amazon.com" in r.stderr


def test_one_file_all_set_aside_is_refused(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    lines = (d / "Feedback_com.txt").read_bytes().decode("cp1252").splitlines()
    broken = [lines[0]] + [
        "\t".join(["x" if i == 1 else c for i, c in enumerate(ln.split("\t"))]) for ln in lines[1:]
    ]
    (d / "Feedback_com.txt").write_bytes(("\n".join(broken) + "\n").encode("cp1252"))
    r = _run("metrics", "--data", str(d), "--as-of", "2026-11-15")
    assert r.returncode == 2 and "Every row of Feedback_com.txt" in r.stderr and "column 'Rating'" in r.stderr


def test_settings_values_in_range(tmp_path):
    toml = tmp_path / "c.toml"
    for text, words in (
        ("[spikes]\npchart_alpha = 5.0\n", "between 0 and 1"),
        ("[spikes]\nglr_window = 0\n", "from 1 to 365"),
        ("[spikes]\nglr_h = nan\n", "a positive number"),
        ("[spikes]\ncusum_ratio = 0.5\n", "above 1"),
        ("[report]\ntrend_weeks = 0\n", "weeks from 1 to 104"),
    ):
        toml.write_text(text)
        with pytest.raises(SettingsError, match=words):
            settings.build(toml)
    toml.write_bytes(b"\xef\xbb\xbf[report]\ntrend_weeks = 13\n")  # Notepad's UTF-8
    assert settings.build(toml).report.trend_weeks == 13


def test_defects_and_spikes_say_which_files_they_lack(tmp_path, orders_only):
    r = _run("defects", "--data", str(orders_only), "--as-of", "2026-11-15", "--by", "sku")
    assert r.returncode == 2 and "no defect to show" in r.stderr
    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    (d / "chargebacks.csv").unlink()
    args = ("--data", str(d), "--as-of", "2026-11-15")
    rows = json.loads(_run("defects", *args, "--by", "sku", "--format", "json").stdout)
    assert rows and all(r["data_missing"] == "chargebacks" for r in rows)
    doc = json.loads(_run("spikes", *args, "--format", "json").stdout)
    assert doc["dataMissing"] == ["chargebacks"]
    assert _run("spikes", *args).stdout.startswith("Incomplete: no chargebacks file")


@pytest.mark.parametrize(
    ("week", "series", "driver"), [("2026-W38", "Amazon.com", "FedEx"), ("2026-W43", "Amazon.co.uk", "HUB-7")]
)
def test_one_incident_row_per_planted_spike(week, series, driver):
    """manifest.json: FedEx (Amazon.com, seller-fulfilled) shipped 09-07..13; a bad HUB-7 batch
    ordered 10-05..14. The week each is first raised shows it as one row, not a row per detector
    and day."""
    ctx = context.prepare(config.SAMPLE_DIR, Settings(), week=week)
    html = defect_sections.spikes_html(ctx)
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1], re.S)
    assert len(rows) == 1 and series in rows[0] and driver in rows[0], rows
    assert "p = 1" not in html and "README" not in html and "0 defects" not in html


def test_a_window_past_the_data_gets_no_verdict():
    """--allow-incomplete: past the newest order every metric says so instead of judging (packages
    not yet shipped would count as late); a lagged one too: the ODR's window ends 15 days back, but
    the defects that arrived after the data ends are not in it."""
    ctx = context.prepare(config.SAMPLE_DIR, Settings(allow_incomplete=True), week="2026-W47")
    pm = ctx.result.document["performanceMetrics"][0]
    lsr, odr = pm["lateShipmentRateList"][0], pm["orderDefectRate"]["afn"]
    assert (lsr["status"], lsr["volumeAdjustedStatus"], lsr["dataEnds"]) == ("NONE", "NONE", "2026-11-15")
    assert (odr["status"], odr["volumeAdjustedStatus"], odr["dataEnds"]) == ("NONE", "NONE", "2026-11-15")
    assert odr["reportingDateRange"]["reportingDateTo"] < "2026-11-15"  # its window ends before the data does
    html = sections.scorecard_html(ctx, pm["marketplaceId"])
    row = re.search(r"<tr><td>Late Shipment Rate \(10 days\)</td>(.*?)</tr>", html, re.S).group(1)
    assert "badge INCOMPLETE" in row and "not known: the data ends 2026-11-15" in row


def test_month_report_looks_at_the_whole_month():
    ctx = context.prepare(config.SAMPLE_DIR, Settings(), period="2026-10")
    assert ctx.first == dt.date(2026, 10, 1)
    html = defect_sections.spikes_html(ctx)
    assert "arrived 2026-10-01 to 2026-10-31" in html and "HUB-7" in html
    assert "2026-10-01 to" in defect_sections.what_caused_it_html(ctx)


def test_sections_built_on_defects_say_what_they_lack(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    (d / "Feedback_com.txt").unlink()
    ctx = context.prepare(d, Settings(), week="2026-W46")
    for html in (
        defect_sections.spikes_html(ctx),
        defect_sections.defective_orders_html(ctx),
        defect_sections.rolloff_summary_html(ctx),
    ):
        assert "Incomplete:</b> no Seller feedback report file" in html
    assert "not known (incomplete)" in defect_sections.rolloff_summary_html(ctx)
    head = sections.headline(ctx)  # a mixed account: the worst known status, and that some is incomplete
    assert head["incomplete"] == "the ODR of some marketplaces or channels is incomplete"


def test_amazon_differs_because_of_our_target(tmp_path):
    run = settings.build(overrides={"orderDefectRate.mfn": {"target": 0.05}})
    ctx = context.prepare(config.SAMPLE_DIR, run, week="2026-W46")
    html = sections.odr_scorecard_html(ctx)
    assert "our target (5.0\u00a0%) is not Amazon&#x27;s (1.0\u00a0%)" in html


def test_defect_rows_say_data_missing_only_for_their_marketplace(account):
    """The US has its feedback file, Germany has none: US defect rows are complete, German rows
    say their ODR lacks feedback (before, every row carried the union)."""
    from conftest import cover_until

    account.order("111-0000000-0000001", "2026-05-01")
    account.order("302-0000000-0000002", "2026-05-01", market="Amazon.de")
    account.feedback("111-0000000-0000001", "5/10/26", 1, comment="broken")
    account.claim("302-0000000-0000002", "2026-05-12", "granted")
    folder = cover_until(account.write(), dt.date(2026, 6, 30))
    out = subprocess.run(
        [sys.executable, "-m", "analysis", "defects", "--data", str(folder), "--as-of", "2026-06-30",
         "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = {r["order_id"]: r["data_missing"] for r in json.loads(out.stdout)}
    assert rows == {"111-0000000-0000001": "", "302-0000000-0000002": "feedback"}


def test_one_order_id_in_two_marketplaces_is_two_orders(account):
    """The readers keep an order id found in two marketplaces twice; the metrics count it once in
    each (it was merged into the first marketplace, which lost an order)."""
    from conftest import cover_until

    account.order("111-0000000-0000001", "2026-05-01", market="Amazon.com")
    account.order("111-0000000-0000001", "2026-05-01", market="Amazon.co.uk")
    data_dir = cover_until(account.write(), dt.date(2026, 6, 30))
    doc = health.account_health(data_dir, dt.date(2026, 6, 30), Settings()).document
    counts = {
        pm["marketplaceId"]: pm["orderDefectRate"]["afn"]["orderCount"] for pm in doc["performanceMetrics"]
    }
    assert counts["ATVPDKIKX0DER"] == 1 and counts["A1F83G8C2ARO7P"] == 1


def test_a_day_days_after_the_data_starts_is_not_called_healthy():
    """As of 2026-05-25 (the sample starts 2026-05-20) no order is in the ODR's window: the verdict
    said "Healthy (no metric is Poor)" over 6 days of late shipments; now "Not known", and the
    short history is said at the top, not only in the data-quality notes at the bottom."""
    ctx = context.prepare(config.SAMPLE_DIR, Settings(), as_of="2026-05-25")
    assert summary.account_state(ctx) == (
        "Not known",
        "our estimate: no orders in the Order Defect Rate's window",
    )
    top = sections.banners_html(ctx)
    assert "<b>Short history.</b> Data starts 2026-05-20" in top
    week = context.prepare(config.SAMPLE_DIR, Settings(), period="2026-W46")
    assert "Short history" not in sections.banners_html(week)


@pytest.mark.parametrize(("orders", "unread", "known"), [(200, 1, True), (100, 1, False), (200, 2, False)])
def test_rows_that_could_not_be_read_take_the_verdict_when_they_could_change_it(
    account, orders, unread, known
):
    """FBA orders without a defect, and feedback rows (of those orders) whose rating cannot be read.
    Read, each could be a defect of an order already counted: 1 in 200 gives at worst 1/200 =
    0.5 % (Good stands); 1 in 100 gives 1/100 = 1 %, the target itself (not under it: Poor by the
    rule), and 2 in 200 the same: the verdict is not known, said with the rows' count. They were
    only listed in dataQuality while the ODR showed Good."""
    a = account
    for i in range(orders):
        a.order(f"F{i:03d}", "2026-04-01")
    for i in range(unread):
        a.feedback(f"F{i:03d}", "4/10/26", 1)
    a.feedback(f"F{orders - 1:03d}", "4/10/26", 5)  # one row read: the file is not refused whole
    folder = a.write()
    fb = next(folder.glob("feedback*"))
    fb.write_text(fb.read_text().replace("\t1\t", "\t1 star\t"))  # unreadable ratings
    day = dt.date(2026, 5, 1)
    data = sources.load(cover_until(folder, day))
    doc = health.account_health(data, day, Settings()).document
    assert doc["dataQuality"]["quarantinedRows"] == unread
    pm = next(p for p in doc["performanceMetrics"] if p["marketplaceId"] == "ATVPDKIKX0DER")
    odr = pm["orderDefectRate"]["afn"]
    assert (odr["orderCount"], odr["orderWithDefects"]["count"]) == (orders, 0)
    if known:
        assert (odr["status"], odr["volumeAdjustedStatus"]) == ("GOOD", "GOOD") and "unreadRows" not in odr
    else:
        assert (odr["status"], odr["volumeAdjustedStatus"], odr["unreadRows"]) == ("NONE", "NONE", unread)
        assert sections.shown_status(odr) == "INCOMPLETE"
        md = Settings().metric("orderDefectRate.afn")
        assert sections.rate_text(md, odr) == "not known"
    # history says the same on that day
    card = health.mark_incomplete(
        metrics_defs.scorecard(metrics_defs.history(data, day, day), metrics_defs.METRICS),
        data,
        metrics_defs.METRICS,
    )
    row = card.filter(
        (pl.col("metric") == "orderDefectRate.afn") & (pl.col("marketplace_id") == "ATVPDKIKX0DER")
    )
    assert row["status"].to_list() == (["GOOD"] if known else ["NONE"])
    assert row["unread_rows"].to_list() == ([None] if known else [unread])


def test_past_the_data_the_account_estimate_says_so(tmp_path):
    """Past the data every metric is NONE, so none is Poor: the estimate must not be a bare NORMAL."""
    d = tmp_path / "data"
    shutil.copytree(config.SAMPLE_DIR, d)
    for snap in d.glob("V2_*"):
        snap.unlink()
    day = dt.date(2026, 11, 22)
    doc = health.account_health(sources.load(d), day, Settings(allow_incomplete=True)).document
    for st in doc["accountStatuses"]:
        assert (st["source"], st["dataEnds"]) == ("estimate", "2026-11-15")
