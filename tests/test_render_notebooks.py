"""`render_notebook`: every notebook of notebooks/ executed headless and exported with the reports'
offline template; checked in Debian's Chromium (every other host unreachable) as a reader opens
the file: each chart drawn, no request leaving the file, no buyer e-mail, buyer markup as text,
code hidden, and charts that carry aggregated rows only."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from analysis import config
from analysis.errors import PeriodError, UsageError
from analysis.metrics.settings import Settings
from analysis.report.notebooks import find_notebook, render_notebook

pytestmark = pytest.mark.notebooks
AS_OF = dt.date(2026, 11, 15)
NOTEBOOKS = ["defects_by_cause", "spike_detection", "metrics_summary"]
ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
MAX_BYTES = 5_000_000


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("rendered")
    return {
        name: render_notebook(
            name,
            config.SAMPLE_DIR,
            Settings(),
            AS_OF if name != "metrics_summary" else None,  # the report: its latest complete week
            out / f"{name}.html",
        )
        for name in NOTEBOOKS
    }


def _open(browser, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}") or d.dismiss())
    page.goto(path.as_uri())
    page.wait_for_timeout(1500)
    return page, requests, errors


def _specs(html: str) -> list[dict]:
    """The Vega-Lite specs the page hands to vegaEmbed."""
    found = re.findall(r'vegaEmbed\("#[^"]+", (\{.*?\}), \{[^{}]*\}\)\.catch', html)
    return [json.loads(s.replace("<\\/", "</")) for s in found]


@pytest.mark.browser
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_chart_draws_offline(browser, rendered, name):
    path = rendered[name]
    page, requests, errors = _open(browser, path)
    try:
        charts = page.locator(".vega-chart").count()
        assert charts >= 4, charts
        page.wait_for_function(
            "(n) => document.querySelectorAll('.vega-chart svg.marks, .vega-chart canvas.marks').length === n",
            arg=charts,
            timeout=15_000,
        )
        for i in range(charts):  # marks drawn, not an empty frame
            chart = page.locator(".vega-chart").nth(i)
            assert chart.locator("path, rect, line, symbol").count() > 0 or chart.locator("canvas").count()
        assert errors == []
        assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests
        assert page.locator(".jp-CodeCell .jp-InputArea, .jp-CodeCell .highlight").count() == 0  # code hidden
    finally:
        page.close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_buyer_email_and_only_aggregates_in_charts(rendered, name):
    html = rendered[name].read_text(encoding="utf-8")
    assert "marketplace.amazon.example" not in html  # the sample's raters
    assert "from analysis" not in html and "interactive = False" not in html  # no code
    assert len(html.encode("utf-8")) < MAX_BYTES
    specs = _specs(html)
    assert specs and len(specs) == html.count('class="vega-chart"')
    for spec in specs:
        text = json.dumps(spec)
        assert not ORDER_ID.search(text), "an order id in a chart's data"
        assert '"order_id"' not in text
        rows = sum(len(v) for v in spec.get("datasets", {}).values())
        assert rows <= 5000, rows  # grouped rows (days, weeks x causes, top groups), never orders


def test_explorers_chart_rows_do_not_grow_with_orders(sample_data):
    """A chart's rows are groups (causes, weeks x causes, top SKUs, days): bounded whatever the
    account's size, so a 10 M item account's notebook stays light."""
    from analysis.explore.explorer import TOP, WEEKS_SHOWN, Explorer

    ex = Explorer(sample_data, AS_OF, Settings(), interactive=False)
    for name in ("pareto", "by_week", "sku_chart", "carrier_chart"):
        spec = ex.current[name].to_dict()
        rows = [r for v in spec["datasets"].values() for r in v]
        assert all("order_id" not in r for r in rows)
        bound = {"pareto": 8, "by_week": (WEEKS_SHOWN + 1) * 8, "sku_chart": TOP, "carrier_chart": TOP}[name]
        assert len(rows) <= bound + 1, (name, len(rows))


@pytest.mark.browser
def test_buyer_markup_and_emails_in_comments(browser, tmp_path):
    """A buyer's markup shows as text and an address typed in a comment is masked."""
    from conftest import Account

    a = Account(tmp_path / "shop")
    for i in range(40):
        a.order(f"111-0000000-00000{i:02d}", f"2026-05-{1 + i % 28:02d}", channel="AFN" if i % 2 else "MFN")
    a.feedback(
        "111-0000000-0000001",
        "5/20/26",
        1,
        comment="<img src=x onerror=alert(1)> broken, mail jane.doe@mail.example",
    )
    a.feedback("111-0000000-0000003", "5/21/26", 2, comment="late <b>again</b>")
    path = render_notebook("defects_by_cause", a.write(), None, dt.date(2026, 5, 28), tmp_path / "out.html")
    html = path.read_text(encoding="utf-8")
    assert "jane.doe@mail.example" not in html and "@example.com" not in html
    assert "[e-mail]" in html
    page, requests, errors = _open(browser, path)
    try:
        assert page.locator("img[src='x']").count() == 0 and page.locator("b", has_text="again").count() == 0
        assert page.get_by_text("<img src=x onerror=alert(1)> broken").count() >= 1
        assert errors == [] and all(u.startswith(("file:", "data:", "about:")) for u in requests)
    finally:
        page.close()


def test_notebook_names_and_days_are_checked(tmp_path):
    assert find_notebook("defects_by_cause") == config.NOTEBOOKS_DIR / "defects_by_cause.ipynb"
    assert find_notebook("spike_detection.ipynb").name == "spike_detection.ipynb"
    with pytest.raises(UsageError, match="No notebook 'nope'"):
        render_notebook("nope", config.SAMPLE_DIR, None, None, tmp_path / "x.html")
    with pytest.raises(PeriodError, match="after the data"):
        render_notebook("defects_by_cause", config.SAMPLE_DIR, None, dt.date(2027, 1, 1), tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    "body",
    [
        "root:x:0:0:secret-line:/root:/bin/bash\n",  # not JSON (nbformat quoted it whole)
        '{"a": 1}',  # JSON, not a notebook
        '{"cells": "secret-line", "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        b"\xff\xfe\x00secret-line",  # not text
        "[" * 100_000,  # nested past the JSON parser's stack (RecursionError)
    ],
)
def test_a_file_that_is_not_a_notebook_is_one_sentence(tmp_path, capsys, body):
    """exit 2, one line naming the file, nothing of its contents (it was an internal error, exit 3,
    quoting the file)."""
    from analysis import cli

    f = tmp_path / "not-a-notebook.ipynb"
    f.write_bytes(body if isinstance(body, bytes) else body.encode())
    rc = cli.main(["render", str(f), "--data", str(config.SAMPLE_DIR), "--out", str(tmp_path / "x.html")])
    out, err = capsys.readouterr()
    assert rc == 2 and err.count("\n") == 1 and "secret-line" not in err + out
    assert err.startswith(f"error: {f} is not a Jupyter notebook (.ipynb)")
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    "selection",
    [
        {},
        {"cause": "not_received"},
        {"carrier": "FedEx", "marketplace": "ATVPDKIKX0DER"},
        {"channel": "MFN", "start": dt.date(2026, 6, 1), "end": dt.date(2026, 10, 31)},
        {"cause": "damaged", "channel": "AFN", "marketplace": "A1F83G8C2ARO7P"},
    ],
)
def test_explorer_rates_equal_defects_breakdown(sample_data, selection):
    """The explorer groups the orders it read once (a click on a large account must not group
    every order item again); its rates are `defects.breakdown`'s for the same selection."""
    from analysis.explore.explorer import ALL, Explorer
    from analysis.insights import defects

    ex = Explorer(sample_data, AS_OF, Settings(), interactive=False)
    ex._controls.set(**selection)
    for by, skip in (("sku", {"sku"}), ("carrier", {"carrier"})):
        t = ex.filtered(skip=skip | {"dates", "marketplace", "channel"})
        mine = ex._breakdown(by, t)
        mkt, ch = ex.value("marketplace"), ex.value("channel")
        theirs = defects.breakdown(
            sample_data,
            AS_OF,
            by,
            Settings().metrics,
            first=ex.value("start"),
            last=ex.value("end"),
            defects=t,
            marketplace=None if mkt == ALL else mkt,
            channel=None if ch == ALL else ch,
        )
        assert mine.height > 0
        assert mine.to_dicts() == theirs.select(mine.columns).to_dicts()


def test_what_if_agrees_with_the_triage_and_the_stats(sample_data):
    """The what-if panel's numbers are the package's: at the run's settings the counts and
    status of every ODR series, with every candidate removed `triage.what_if`'s rates, and
    p-values `stats.judge`'s."""
    import polars as pl

    from analysis.explore.whatif import Scenario, WhatIf
    from analysis.insights import triage
    from analysis.metrics import stats

    run = Settings()
    w = WhatIf(sample_data, AS_OF, run)
    ref = triage.what_if(sample_data, AS_OF, run.metrics)
    for removed, scenario in ((False, "now"), (True, "if removed")):
        for r in w.compute_all(removed):
            row = ref.filter(
                (pl.col("marketplace_id") == r["marketplace_id"])
                & (pl.col("channel") == r["channel"])
                & (pl.col("scenario") == scenario)
            ).row(0, named=True)
            assert (r["defects"], r["orders"], r["status"]) == (row["defects"], row["orders"], row["status"])
            assert r["p_value"] == stats.p_value(
                r["defects"], r["orders"], run.odr(r["channel"]).target, "LESS_THAN"
            )
    # sliders: a stricter target and fewer orders a day can only make things worse
    mkt, ch = "ATVPDKIKX0DER", "MFN"
    d = w.default(mkt, ch)
    base = w.compute(mkt, ch, d)
    strict = w.compute(mkt, ch, Scenario(0.005, d.window_days, d.daily_volume / 2, 0))
    assert strict["p_value"] <= base["p_value"]
    assert (strict["under_target_from"] or dt.date.max) >= (base["under_target_from"] or dt.date.max)
    removed = w.compute(mkt, ch, Scenario(d.target, d.window_days, d.daily_volume, 5))
    assert 0 < removed["taken_out"] <= 5 and removed["defects"] == base["defects"] - removed["taken_out"]
    wider = w.compute(mkt, ch, Scenario(d.target, 90, d.daily_volume, 0))
    assert wider["orders"] > base["orders"]
