"""The reports in a real browser: Debian's Chromium, headless, every host unreachable."""

import pytest

from analysis import config

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from conftest import Account

    from analysis.report import render as reports

    out = tmp_path_factory.mktemp("reports")
    sample = reports.render(config.SAMPLE_DIR, week="2026-W46", out_root=out)
    a = Account(tmp_path_factory.mktemp("xss") / "data")
    for i in range(30):
        a.order(f"111-0000000-00000{i:02d}", f"2026-05-{1 + i % 28:02d}", channel="AFN" if i % 2 else "MFN")
    a.feedback("111-0000000-0000001", "5/20/26", 1, comment="<img src=x onerror=alert(1)> broken")
    xss = reports.render(a.write(), week="2026-W21", out_root=out)
    return out, sample, xss


def _open(browser, url, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}") or d.dismiss())
    page.goto(url)
    page.wait_for_timeout(1500)
    return page, requests, errors


def test_report_draws_every_chart_offline(browser, rendered):
    _, sample, _ = rendered
    page, requests, errors = _open(browser, sample.html.as_uri())
    charts = page.locator(".vega-chart").count()
    assert charts == 5
    assert page.locator(".vega-chart svg.marks, .vega-chart canvas.marks").count() == charts
    for i in range(charts):  # each chart has drawn marks, not an empty frame
        assert (
            page.locator(".vega-chart").nth(i).locator("path, rect, line, symbol").count() > 0
            or page.locator(".vega-chart").nth(i).locator("canvas").count()
        )
    assert errors == []
    assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests
    page.close()


def test_buyer_markup_shows_as_text(browser, rendered):
    _, _, xss = rendered
    page, _, errors = _open(browser, xss.html.as_uri())
    assert page.locator("img[src='x']").count() == 0
    assert page.get_by_text("<img src=x onerror=alert(1)> broken").count() >= 1
    assert errors == []
    page.close()


@pytest.mark.parametrize("which", ["report", "index"])
def test_phone_width_has_no_horizontal_scroll(browser, rendered, which, tmp_path):
    out, sample, _ = rendered
    url = (sample.html if which == "report" else out / "index.html").as_uri()
    page, _, errors = _open(browser, url, width=390)
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner
    shot = tmp_path / f"{which}-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []
    page.close()


def test_index_links_open(browser, rendered):
    out, _, _ = rendered
    page, requests, errors = _open(browser, (out / "index.html").as_uri())
    links = page.locator("a")
    assert links.count() == 2
    assert all(u.startswith("file:") for u in requests) and errors == []
    page.close()


def test_orders_only_report_shows_no_verdict_it_cannot_know(browser, tmp_path):
    """An orders-only folder: the ODR, refund and invoice rows carry an Incomplete badge, never
    Good / Fair / Poor, as a reader sees the page."""
    from test_report import orders_only_account

    from analysis.report import render as reports

    data = orders_only_account(tmp_path)
    res = reports.render(data, week="2026-W20", out_root=tmp_path / "reports")
    page, requests, errors = _open(browser, res.html.as_uri())
    try:
        for title in ("Order Defect Rate (seller-fulfilled)", "Invoice Defect Rate", "Refund rate"):
            badges = page.locator("tr", has_text=title).first.locator(".badge").all_inner_texts()
            assert badges[0] == "Incomplete", (title, badges)
            assert not {"Good", "Fair", "Poor"} & set(badges), (title, badges)
        assert page.get_by_text("Incomplete: some exports are not in the data folder").count() == 1
        assert not [u for u in requests if not u.startswith("file:")] and not errors
    finally:
        page.close()
