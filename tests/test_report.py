"""The weekly report: papermill runs the notebook on the data; the HTML is offline, safe, escaped."""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from analysis import config
from analysis.report import render as reports

pytestmark = pytest.mark.notebooks
XSS = '<script>alert("x")</script> and <img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> reports.ReportResult:
    out = tmp_path_factory.mktemp("reports")
    return reports.render(config.SAMPLE_DIR, week="2026-W46", out_root=out)


@pytest.fixture(scope="module")
def xss_report(tmp_path_factory) -> reports.ReportResult:
    from conftest import Account

    root = tmp_path_factory.mktemp("xss")
    a = Account(root / "data")
    for i in range(30):
        a.order(f"111-0000000-00000{i:02d}", f"2026-05-{1 + i % 28:02d}", channel="AFN" if i % 2 else "MFN")
    a.feedback("111-0000000-0000001", "5/20/26", 1, comment=XSS)
    a.feedback("111-0000000-0000002", "5/21/26", 2, comment="Tom & Jerry's <b>bold</b> claim")
    return reports.render(a.write(), week="2026-W21", out_root=root / "reports")


def test_parameters_cell_matches_what_the_runner_injects():
    params = pm.inspect_notebook(str(config.METRICS_SUMMARY_NOTEBOOK))
    assert {"data_dir", "week", "as_of", "marketplace", "interactive"} <= set(params)


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(config.METRICS_SUMMARY_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


def test_report_layout_and_content(sample_report):
    assert sample_report.html == sample_report.html.parent / "metrics-summary.html"
    assert sample_report.html.parent.name == "2026-W46" and sample_report.html.parent.parent.name == "sample"
    html = sample_report.html.read_text(encoding="utf-8")
    assert "Order Defect Rate" in html and re.search(r"\d+ of [\d,]+ orders defective \(", html)
    text = re.sub(r"<script.*?</script>", "", html, flags=re.S)  # the Vega bundle names its own README
    assert "Amazon's view" not in text and "README" not in text and "spike_eval" not in text
    for label in ("Good", "Fair", "Poor"):
        assert f">{label}<" in html
    assert html.count("window.vegaEmbed") == 1  # the Vega bundle, once per page
    # ODR trend, a scorecard trend per marketplace, Amazon's rates over its kept days, roll-off
    assert html.count('vegaEmbed("#chart-') == 5
    for section in (
        "Customer Service Performance",
        "Shipping Performance",
        "Invoices",
        "Late Shipment Rate (10 days)",
    ):
        assert section in html
    assert "import " not in re.sub(r"<script.*?</script>", "", html, flags=re.S)  # code hidden


def test_report_is_offline(sample_report):
    html = sample_report.html.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//", html, re.I)
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html and "require.min.js" not in html
    assert "MathJax.js" not in html


def test_no_buyer_email_in_report_or_notebook(sample_report):
    emails = {
        ln.split("\t")[5]
        for p in config.SAMPLE_DIR.glob("Feedback_*.txt")
        for ln in p.read_bytes().decode("cp1252").splitlines()[1:]
    }
    assert emails
    for path in (sample_report.html, sample_report.notebook):
        text = path.read_text(encoding="utf-8")
        assert not any(e in text for e in emails)
        assert not re.search(r"[\w.+-]+@[\w-]+\.(amazon\.example|example\.com)", text)


def test_buyer_text_is_escaped(xss_report):
    html = xss_report.html.read_text(encoding="utf-8")
    # nbconvert re-serialises output HTML, so quotes may come back unescaped: harmless in text
    assert re.search(r"&lt;script&gt;alert\((\"|&quot;)x(\"|&quot;)\)&lt;/script&gt;", html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html and "<script>alert" not in html
    assert re.search(r"Tom &amp; Jerry('|&#x27;)s &lt;b&gt;bold&lt;/b&gt;", html)
    assert "<b>bold</b>" not in html


def test_failed_run_keeps_previous_report(tmp_path, sample_report):
    """A notebook that fails mid-run leaves the last good HTML untouched and keeps the failure."""
    out = tmp_path / "reports"
    good = reports.render(config.SAMPLE_DIR, week="2026-W46", out_root=out)
    before = good.html.read_bytes()
    nb = nbformat.read(config.METRICS_SUMMARY_NOTEBOOK, as_version=4)
    nb.cells.insert(4, nbformat.v4.new_code_cell("raise RuntimeError('boom in the middle')"))
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, broken)
    with pytest.raises(
        reports.ReportError, match=r"failed in cell \d+ \(RuntimeError: boom in the middle\)"
    ) as exc:
        reports.render(config.SAMPLE_DIR, week="2026-W46", out_root=out, notebook=broken)
    assert good.html.read_bytes() == before
    assert exc.value.notebook == good.html.parent / "metrics-summary.failed.ipynb"
    assert "boom in the middle" in exc.value.notebook.read_text()
    assert not list(good.html.parent.glob(".*"))  # no temporary files left behind
    # the CLI finishes the other periods, then exits non-zero
    index = (out / "index.html").read_text()
    assert "2026-W46" in index


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_charts_draw_offline_in_chromium(sample_report):
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run(
            [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                '--host-resolver-rules=MAP * ~NOTFOUND', f"--user-data-dir={profile}", "--virtual-time-budget=8000",
                "--dump-dom", Path(sample_report.html).as_uri(),
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    dom = r.stdout
    charts = Path(sample_report.html).read_text(encoding="utf-8").count('vegaEmbed("#chart-')
    assert len(re.findall(r'<(svg|canvas)[^>]*class="marks"', dom)) == charts == 5, r.stderr[-2000:]
    assert "Error loading script" not in dom


ALL_KINDS = ("feedback", "claims", "chargebacks", "shipments", "cancellations", "messages", "invoices",
             "fba_returns", "mfn_returns")  # fmt: skip


def orders_only_account(root):
    """20 seller-fulfilled orders, 1-20 May 2026, and no other export."""
    from conftest import Account

    a = Account(root / "data").without(*ALL_KINDS)
    for i in range(20):
        a.order(f"111-0000000-00001{i:02d}", f"2026-05-{1 + i:02d}", channel="MFN")
    return a.write()


def test_missing_data_is_said_not_zero(tmp_path):
    """A folder with only an orders file, a week past the data (allowed): no Good/Fair/Poor on what
    it cannot know, the bound or 'not known' instead, banners for both, and the index marks it."""
    from analysis.metrics.settings import Settings

    out = tmp_path / "reports"
    with pytest.raises(reports.PeriodError):
        reports.render(orders_only_account(tmp_path), week="2026-W21", out_root=out)
    assert not out.exists()
    res = reports.render(tmp_path / "data", Settings(allow_incomplete=True), week="2026-W21", out_root=out)
    html = res.html.read_text(encoding="utf-8")
    assert "Incomplete period: data ends 2026-05-20" in html
    assert "Incomplete: some exports are not in the data folder" in html
    assert "not known: no MFN shipments file" in html and "no Buyer messages file" in html
    for title in ("Order Defect Rate (seller-fulfilled)", "Invoice Defect Rate", "Refund rate"):
        row = re.search(rf"<tr><td>{re.escape(title)}</td>(.*?)</tr>", html, re.S).group(1)
        assert "badge INCOMPLETE" in row and not re.search(r"badge (GOOD|AT_RISK|BAD)", row)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "incomplete: data ends 2026-05-20" in index and 'class="badge INCOMPLETE"' in index


@pytest.mark.parametrize("interactive", [True, False])
@pytest.mark.parametrize(
    ("name", "marker"),
    [("defects_by_cause", "Feedback-removal triage"), ("spike_detection", "Defects behind the alarm")],
)
def test_explorer_notebooks_run(tmp_path, interactive, name, marker):
    out = tmp_path / "nb.ipynb"
    pm.execute_notebook(
        str(config.NOTEBOOKS_DIR / f"{name}.ipynb"),
        str(out),
        parameters={"as_of": "2026-11-15", "interactive": interactive},
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=120,
        cwd=str(config.PROJ_ROOT),
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    mimes = {k for o in outputs for k in o.get("data", {})}
    if interactive:
        assert "application/vnd.jupyter.widget-view+json" in mimes
    else:
        html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
        assert marker in html and 'vegaEmbed("#chart-' in html


def _strip_run_time(text: str) -> str:
    return re.sub(r'<span class="run-time">[^<]*</span>', "", text)


def test_same_inputs_same_report(tmp_path, sample_report):
    again = reports.render(config.SAMPLE_DIR, week="2026-W46", out_root=tmp_path / "again")
    a = _strip_run_time(sample_report.html.read_text(encoding="utf-8"))
    b = _strip_run_time(again.html.read_text(encoding="utf-8"))
    assert a == b
    assert a != sample_report.html.read_text(encoding="utf-8")  # the run time was there


def test_parallel_periods_and_index(tmp_path):
    out = tmp_path / "reports"
    results, errors = reports.render_many(
        config.SAMPLE_DIR,
        ["2026-W44", "2026-W45", "2026-10"],
        jobs=2,
        progress=False,
        out_root=out,
        account="acme",
    )
    assert not errors and [r.period for r in results] == ["2026-10", "2026-W44", "2026-W45"]
    for r in results:
        assert r.html.exists() and r.notebook.exists() and r.html.parent.parent.name == "acme"
    index = (out / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"', index)
    assert hrefs == [  # newest as-of first: 8 Nov, 1 Nov, 31 Oct
        "acme/2026-W45/metrics-summary.html",
        "acme/2026-W44/metrics-summary.html",
        "acme/2026-10/metrics-summary.html",
    ]
    assert all((out / h).exists() for h in hrefs)
    assert re.search(r'class="badge (GOOD|AT_RISK|BAD|NONE)"', index)


def test_report_cli_range_and_failure_exit(tmp_path):
    out = tmp_path / "r"
    r = subprocess.run(
        [sys.executable, "-m", "analysis", "report", "--data", str(config.SAMPLE_DIR), "--from", "2026-11-02",
         "--to", "2026-11-15", "--every", "week", "--jobs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "report for 2026-W45" in r.stdout and "report for 2026-W46" in r.stdout
    assert r.stderr == ""  # no kernel-over-TCP warning, no nbconvert warning, nothing


def test_no_buyer_pii_in_kept_notebooks(sample_report, xss_report):
    for path in (sample_report.notebook, xss_report.notebook, sample_report.html, xss_report.html):
        text = path.read_text(encoding="utf-8")
        assert "@example.com" not in text and "@marketplace.amazon.example" not in text
        assert "Rater Email" not in text


def test_settings_reach_the_rendered_report(tmp_path):
    """The run's settings travel to the notebook as a papermill parameter and change the page."""
    from analysis.metrics import settings

    toml = tmp_path / "acme.toml"
    toml.write_text("[orderDefectRate.mfn]\ntarget = 0.05\n[report]\ntrend_weeks = 8\n")
    res = reports.render(config.SAMPLE_DIR, settings.build(toml), week="2026-W46", out_root=tmp_path / "r")
    html = res.html.read_text(encoding="utf-8")
    assert "&lt; 5\u00a0%" in html and "Settings: acme.toml" in html and "last 8 weeks" in html
    recorded = nbformat.read(res.notebook, as_version=4).metadata["papermill"]["parameters"]["settings"]
    assert recorded["metrics"] == {"orderDefectRate.mfn": {"target": 0.05}}
    # at 5 % the sample's US seller-fulfilled ODR (1.97 %) meets the target
    assert re.search(r"Amazon\.com</td><td>Seller-fulfilled</td><td><span class=\"badge GOOD\">", html)


def test_first_screen_comes_first(sample_report):
    """The verdict, the compact table and the actions are above everything else (issue 15)."""
    html = sample_report.html.read_text(encoding="utf-8")
    first = html.index('<section class="first-screen">')
    order = [
        html.index('<p class="verdict-line"><b>Account: Healthy</b>', first),
        html.index('<table class="ah compact">', first),
        html.index("<h2>Do this now</h2>", first),
        html.index("</section>", first),
    ]
    assert order == sorted(order)
    assert first < html.index(
        "<th>Marketplace</th><th>Channel</th><th>Status</th>"
    )  # the ODR scorecard after
    assert "<h2>Feedback</h2>" in html and "<h3>Two 60-day cycles</h3>" in html
    assert "Request removal of 47 feedbacks" in html
