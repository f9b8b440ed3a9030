"""Every account in one run (analysis.fleet): a real LocalCluster of 2 worker processes over small
generated accounts, one of them broken; fleet.json equal to single-account runs, the failed row,
exit code 1, the reports (identical to a single `render`) and e-mails, the fleet page in Chromium,
a worker killed mid-run, the kept report kernel, and the accounts file refused up front."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import Inbox, free_port

from analysis.errors import PeriodError, SettingsError, UsageError
from analysis.fleet import accounts as fleet_accounts
from analysis.fleet import page, task
from analysis.fleet import run as fleet
from analysis.inputs import sample
from analysis.insights import actions
from analysis.metrics import health
from analysis.metrics import settings as st
from analysis.report import context, render, summary

END, DAYS, WEEK = "2026-11-15", 75, "2026-W46"
BUYER_FILE = "orders_jane.doe@example.com.txt"  # a file name holding a buyer's address


def _run_time(text: str) -> str:
    return re.sub(r"<span class=(\\?)\"run-time(\\?)\">[^<]*</span>", "", text)


# --------------------------------------------------------------------------- accounts


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory) -> Path:
    """Two generated accounts (different seeds), one with its own settings and Amazon's snapshots,
    one without snapshots, and a broken one whose every order row is set aside, in a file whose
    name holds a buyer's e-mail address."""
    root = tmp_path_factory.mktemp("fleet")
    for name, seed in (("acme", 11), ("shop2", 12)):
        sample.generate(root / "data" / name, seed=seed, end=END, days=DAYS)
    # shop2 without Amazon's V2 snapshots: its state is our estimate, its rating not known
    for snapshot in (root / "data" / "shop2").glob("V2_Seller_Performance_*.json"):
        snapshot.unlink()
    broken = root / "data" / "broken"
    broken.mkdir()
    lines = (root / "data" / "acme" / "All_Orders_com.txt").read_text(encoding="utf-8").splitlines()
    head, row = lines[0].split("\t"), lines[1].split("\t")
    row[head.index("purchase-date")] = "not a date"
    (broken / BUYER_FILE).write_text("\t".join(head) + "\n" + "\t".join(row) + "\n", encoding="utf-8")
    return root


def _accounts_file(root: Path, port: int) -> Path:
    mail = f'[email]\nsender = "fleet@agency.example"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
    (root / "acme.toml").write_text("[orderDefectRate.mfn]\ntarget = 0.05\n" + mail)
    (root / "plain.toml").write_text(mail + 'to = ["team@agency.example"]\n')
    path = root / "accounts.toml"
    path.write_text(
        "[[account]]\n"
        'name = "acme-us"\ndata = "data/acme"\nconfig = "acme.toml"\nrecipients = ["ops@acme.example"]\n'
        "[[account]]\n"
        'name = "Shop #2"\ndata = "data/shop2"\nconfig = "plain.toml"\n'
        "[[account]]\n"
        f'name = "broken"\ndata = "{root / "data" / "broken"}"\nconfig = "plain.toml"\n'
    )
    return path


@pytest.fixture(scope="module")
def fleet_run(fleet_dir, tmp_path_factory):
    """The run: LocalCluster of 2 worker processes, reports and e-mails."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port())
    ctl.start()
    saved = {k: os.environ.pop(k) for k in ("AH_SMTP_USER", "AH_SMTP_PASSWORD") if k in os.environ}
    seen: list[tuple[int, int, str]] = []
    try:
        out = tmp_path_factory.mktemp("out") / "reports"
        res = fleet.run(
            _accounts_file(fleet_dir, ctl.port),
            period=WEEK,
            workers=2,
            reports=True,
            email=True,
            out_root=out,
            progress=lambda done, total, row: seen.append((done, total, row["name"])),
        )
    finally:
        ctl.stop()
        os.environ.update(saved)
    return res, out, inbox, seen


@pytest.mark.notebooks  # renders reports (papermill)
def test_fleet_json_rows_equal_single_account_runs(fleet_run, fleet_dir):
    res, out, _, seen = fleet_run
    assert res.exit_code == 1 and res.period == WEEK and res.as_of == END
    assert res.json_path == out / "fleet" / WEEK / "fleet.json" and res.page_path.exists()
    doc = json.loads(res.json_path.read_text(encoding="utf-8"))
    assert doc["period"] == WEEK and doc["asOf"] == END
    assert [r["name"] for r in doc["accounts"]] == ["acme-us", "Shop #2", "broken"]
    assert sorted(n for _, _, n in seen) == sorted(["acme-us", "Shop #2", "broken"]) and seen[-1][:2] == (
        3,
        3,
    )
    by = {r["name"]: r for r in doc["accounts"]}
    for name, folder, config in (("acme-us", "acme", "acme.toml"), ("Shop #2", "shop2", "plain.toml")):
        row = by[name]
        assert row["status"] == "ok" and "error" not in row, row.get("error")
        data_dir = fleet_dir / "data" / folder
        settings = st.build(fleet_dir / config)
        single = health.account_health(data_dir, END, settings)
        assert row["document"] == json.loads(json.dumps(single.document))
        ctx = context.prepare(data_dir, settings, period=WEEK, account=name)
        assert row["incidents"] == len(context.week_incidents(ctx))
        assert row["actions"] == actions.today(single.data, dt.date.fromisoformat(END)).actions.height
        # last week's rates are the report's ("from 1.50 %"), state and rating its verdict line's
        shown = {
            (r["marketplace_id"], r["md"].id): r["last_week"]
            for r in summary.metric_rows(ctx)
            if r["last_week"] is not None
        }
        got = {(mkt, mid): v for mkt, rates in row["lastWeek"].items() for mid, v in rates.items()}
        assert got == pytest.approx(shown) and got
        assert (row["state"]["label"], row["state"]["source"]) == summary.account_state(ctx)
        text = summary.ahr_text(ctx)
        for a in row["ahr"]:
            assert (f"{a['status']} {a['score']}" if a["status"] else "not known") in text
    assert by["acme-us"]["state"]["source"].startswith("Amazon, ") and by["acme-us"]["ahr"][0]["status"]
    assert by["Shop #2"]["state"]["source"].startswith("our estimate")
    assert all(a["status"] is None for a in by["Shop #2"]["ahr"])
    # the account's own settings reached its worker
    pm = by["acme-us"]["document"]["performanceMetrics"][0]
    assert pm["orderDefectRate"]["mfn"]["targetValue"] == 0.05


@pytest.mark.notebooks  # renders reports (papermill)
def test_the_broken_account_fails_alone_with_its_reason_masked(fleet_run):
    res, _, _, _ = fleet_run
    (failed,) = res.failed
    assert failed["name"] == "broken" and failed["status"] == "failed"
    assert set(failed) == {"name", "status", "error"}
    assert "set aside" in failed["error"] and "[e-mail]" in failed["error"]
    assert "jane.doe" not in failed["error"] and "\n" not in failed["error"]
    assert "jane.doe" not in res.json_path.read_text(encoding="utf-8")
    assert "jane.doe" not in res.page_path.read_text(encoding="utf-8")


@pytest.mark.notebooks  # renders reports (papermill)
def test_reports_are_those_of_a_single_render(fleet_run, fleet_dir, tmp_path):
    """Rendered in a worker's kept kernel, the report and its executed notebook are what one
    `render` call gives (but for the run-time stamp)."""
    res, out, _, _ = fleet_run
    by = {r["name"]: r for r in res.rows}
    assert by["Shop #2"]["report"] == f"Shop #2/{WEEK}/metrics-summary.html"
    mine = out / "Shop #2" / WEEK
    single = render.render(
        fleet_dir / "data" / "shop2",
        st.build(fleet_dir / "plain.toml"),
        period=WEEK,
        account="Shop #2",
        out_root=tmp_path,
        index=False,
    )
    assert _run_time((mine / "metrics-summary.html").read_text(encoding="utf-8")) == _run_time(
        single.html.read_text(encoding="utf-8")
    )
    a, b = (nbformat.read(p, as_version=4) for p in (mine / "metrics-summary.ipynb", single.notebook))
    for nb in (a, b):
        nb.metadata["papermill"].pop("end_time")
    assert _run_time(nbformat.writes(a)) == _run_time(nbformat.writes(b))
    index = (out / "index.html").read_text(encoding="utf-8")  # the reports index, rebuilt once
    assert "Shop%20%232/2026-W46/metrics-summary.html" in index and "acme-us/2026-W46/" in index
    assert not list(out.rglob(".*"))  # no temporary or running file left


@pytest.mark.notebooks  # renders reports (papermill)
def test_emails_went_to_each_accounts_recipients(fleet_run):
    res, _, inbox, _ = fleet_run
    got = {}
    for _, rcpts, raw in inbox.messages:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        got[msg["Subject"].split(":")[1].strip()] = (rcpts, msg)
    assert set(got) == {f"acme-us {WEEK}", f"Shop #2 {WEEK}"}
    assert got[f"acme-us {WEEK}"][0] == ["ops@acme.example"]
    assert got[f"Shop #2 {WEEK}"][0] == ["team@agency.example"]
    attached = [p.get_filename() for p in got[f"acme-us {WEEK}"][1].iter_attachments()]
    assert attached == [f"account-health-acme-us-{WEEK}.html"]
    assert {r["name"]: r.get("email", {}).get("sent") for r in res.rows} == {
        "acme-us": True,
        "Shop #2": True,
        "broken": None,
    }


def test_fleet_command_writes_everything_and_exits_1(fleet_dir, tmp_path):
    """`python -m analysis fleet` (one worker process, metrics only): exit 1 for the broken
    account after writing fleet.json and the page; the failure said on standard error, masked."""
    path = tmp_path / "accounts.toml"
    path.write_text(
        "".join(
            f'[[account]]\nname = "{name}"\ndata = "{fleet_dir / "data" / folder}"\n'
            for name, folder in (("acme-us", "acme"), ("broken", "broken"))
        )
    )
    out = tmp_path / "reports"
    r = subprocess.run(
        [sys.executable, "-m", "analysis", "fleet", "--accounts", str(path), "--week", WEEK, "--workers", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "1 of 2 accounts" in r.stdout and str(out / "fleet" / WEEK / "index.html") in r.stdout
    assert "failed: broken:" in r.stderr and "set aside" in r.stderr and "jane.doe" not in r.stderr + r.stdout
    doc = json.loads((out / "fleet" / WEEK / "fleet.json").read_text(encoding="utf-8"))
    assert [(a["name"], a["status"]) for a in doc["accounts"]] == [("acme-us", "ok"), ("broken", "failed")]
    single = health.account_health(fleet_dir / "data" / "acme", END, st.Settings())
    assert doc["accounts"][0]["document"] == json.loads(json.dumps(single.document))
    assert not (out / "acme-us").exists()  # no report without --reports


# --------------------------------------------------------------------------- the page in Chromium


COLOURS = {  # the cell backgrounds of page.FLEET_CSS
    "BAD": "rgb(255, 235, 238)",
    "AT_RISK": "rgb(255, 243, 224)",
    "GOOD": "rgb(232, 245, 233)",
    "INCOMPLETE": "rgb(239, 235, 233)",
    "NONE": "rgb(250, 250, 250)",
}


@pytest.mark.notebooks
@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_fleet_page_in_chromium(browser, fleet_run, width):
    res, out, _, _ = fleet_run
    pg = browser.new_page(viewport={"width": width, "height": 900})
    requests, errors = [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(res.page_path.as_uri())
    pg.wait_for_timeout(300)
    rows = pg.locator("tbody tr")
    assert rows.count() == 3
    names = [rows.nth(i).get_attribute("data-account") for i in range(3)]
    assert names[0] == "broken"  # worst first: the failed account
    assert "set aside" in rows.nth(0).inner_text() and "Failed" in rows.nth(0).inner_text()
    # every metric cell is coloured by its worst status, as the document says
    doc = json.loads(res.json_path.read_text(encoding="utf-8"))
    for i, name in enumerate(names[1:], 1):
        row = next(r for r in doc["accounts"] if r["name"] == name)
        s = st.Settings()
        cells = rows.nth(i).locator("td.cell")
        assert cells.count() == len(page.METRIC_IDS)
        for j, mid in enumerate(page.METRIC_IDS):
            worst = max(
                (
                    page.cell_status(s.metric(mid), context.metric_json(pm, mid))
                    for pm in row["document"]["performanceMetrics"]
                ),
                key=lambda x: page.STATUS_ORDER[x],
            )
            cell = cells.nth(j)
            assert cell.get_attribute("data-status") == worst
            assert cell.evaluate("e => getComputedStyle(e).backgroundColor") == COLOURS[worst]
    # links resolve to the reports on disk, and open
    hrefs = [a.get_attribute("href") for a in pg.locator("a").all()]
    assert len([h for h in hrefs if h.endswith("metrics-summary.html")]) == 2
    for h in hrefs:
        target = (res.page_path.parent / urllib.parse.unquote(h)).resolve()
        assert target.is_file() and out.resolve() in target.parents, h
    pg.locator("a", has_text="Shop #2").click()
    pg.wait_for_load_state()
    assert pg.url.endswith("/Shop%20%232/2026-W46/metrics-summary.html")
    assert "Shop #2" in pg.title() or "Shop #2" in pg.inner_text("h1")
    pg.go_back()
    if width == 390:  # the page fits a phone; the table scrolls inside its box
        scroll, inner = pg.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner
        box = pg.locator("div.scroll").first
        assert box.evaluate("e => e.scrollWidth > e.clientWidth")
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    assert errors == []
    pg.close()


# --------------------------------------------------------------------------- a worker killed


def test_a_killed_worker_is_retried_once_then_failed(fleet_dir, tmp_path):
    """'once' kills its worker the first time (SIGKILL, as the OOM killer would), 'always' every
    time: 'once' is retried on the restarted worker and succeeds, 'always' is marked failed after
    its retry, 'fine' finishes; the run writes everything and exits 1. (And: without a period each
    account's latest complete week is taken; the dashboard's address is said when asked.)"""
    marks = tmp_path / "marks"
    marks.mkdir()
    path = tmp_path / "accounts.toml"
    data = fleet_dir / "data" / "shop2"
    path.write_text(
        "".join(f'[[account]]\nname = "{n}"\ndata = "{data}"\n' for n in ("once", "always", "fine"))
    )

    def dies(job):
        tries = len(list(marks.glob(f"{job.name}.*")))
        if job.name == "always" or (job.name == "once" and tries == 0):
            (marks / f"{job.name}.{tries}").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return task.process(job)

    said = []

    def say(text):  # the dashboard's address, said while the cluster runs: its page answers
        url = re.search(r"http://\S+/status", text)[0]
        with urllib.request.urlopen(url, timeout=10) as r:
            said.append((text, r.status))

    res = fleet.run(
        path, workers=2, out_root=tmp_path / "out", progress=False, task_fn=dies,
        dashboard=True, say=say,
    )  # fmt: skip
    assert len(said) == 1 and said[0][0].startswith("Dask dashboard: http://") and said[0][1] == 200
    by = {r["name"]: r for r in res.rows}
    assert by["once"]["status"] == "ok" and by["fine"]["status"] == "ok"
    assert by["always"]["status"] == "failed" and "worker process died" in by["always"]["error"]
    assert len(list(marks.glob("once.*"))) == 1 and len(list(marks.glob("always.*"))) == 2
    assert res.exit_code == 1 and res.page_path.exists()
    # no period given: each account's latest complete week, which names the folder
    assert by["once"]["period"] == WEEK and res.period == WEEK and res.folder.name == WEEK
    assert json.loads(res.json_path.read_text())["accounts"][1]["status"] == "failed"


def test_the_biggest_accounts_start_first(tmp_path):
    """Tasks start largest data folder first (one worker: in that order exactly), so the biggest
    accounts do not run alone at the end; the rows stay in the accounts file's order."""
    sizes = {"small": 10, "big": 30_000, "middle": 3_000, "tiny": 1}
    body = ""
    for name, size in sizes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "All_Orders.txt").write_bytes(b"x" * size)
        body += f'[[account]]\nname = "{name}"\ndata = "{name}"\n'
    path = tmp_path / "accounts.toml"
    path.write_text(body)
    started = tmp_path / "started.txt"

    def record(job):
        with started.open("a") as fh:
            fh.write(job.name + "\n")
        return {"name": job.name, "status": "ok"}

    res = fleet.run(path, period=WEEK, workers=1, out_root=tmp_path / "out", progress=False, task_fn=record)
    assert started.read_text().split() == ["big", "middle", "small", "tiny"]
    assert [r["name"] for r in res.rows] == list(sizes)


def _started_with() -> dict:
    """What a worker process was started with: its environment at exec (glibc reads its malloc
    settings there, once) and the Dask settings it runs under."""
    import dask

    start = dict(
        item.split("=", 1) for item in Path("/proc/self/environ").read_text().split("\0") if "=" in item
    )
    return {
        "name": "a",
        "status": "ok",
        "env": {k: start.get(k) for k in fleet.MALLOC_ENV},
        "polars threads": os.environ.get("POLARS_MAX_THREADS"),  # set before polars is imported
        "profile": dask.config.get("distributed.worker.profile.enabled"),
    }


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_workers_start_with_adapted_malloc_thresholds_and_no_profiler(tmp_path):
    """Local workers start with glibc's adapted thresholds (not Dask's 64 kB trim threshold,
    under which every allocation above 128 kB is a fresh mapping: a fifth of a fleet run's CPU
    went to page faults) and without the statistical profiler; the process that ran the fleet
    keeps its own environment (Dask's nanny writes the workers' variables into it)."""
    before = dict(os.environ)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "All_Orders.txt").write_bytes(b"x")
    path = tmp_path / "accounts.toml"
    path.write_text('[[account]]\nname = "a"\ndata = "a"\n')
    res = fleet.run(
        path,
        period=WEEK,
        workers=1,
        out_root=tmp_path / "out",
        progress=False,
        task_fn=lambda job: _started_with(),
    )
    (row,) = res.rows
    assert row["env"] == {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}
    assert row["polars threads"] == "1"
    assert row["profile"] is False
    assert dict(os.environ) == before


# --------------------------------------------------------------------------- the kept kernel


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _record(path: Path) -> list:
    """Each cell's execution count and outputs (the kernel's pid, in warnings' paths, left out)."""
    nb = nbformat.read(path, as_version=4)
    text = re.sub(r"ipykernel_\d+", "ipykernel_PID", json.dumps([c.outputs for c in nb.cells]))
    return list(zip([c.execution_count for c in nb.cells], json.loads(text), strict=True))


@pytest.mark.notebooks  # renders reports (papermill)
def test_kept_kernel_gives_each_notebook_a_fresh_start(tmp_path):
    """After a notebook that sets variables and silences warnings, and one that fails, the next
    notebook sees what a new kernel shows it: no variable, the warning, counts from 1."""
    from papermill.exceptions import PapermillExecutionError

    messy = _notebook(
        tmp_path / "messy.ipynb",
        "secret = 41\nimport warnings\nwarnings.simplefilter('ignore')",
        "secret + 1",
    )
    failing = _notebook(tmp_path / "failing.ipynb", "leftover = 1", "raise ValueError('boom')")
    probe = _notebook(
        tmp_path / "probe.ipynb",
        "print(sorted(k for k in globals() if not k.startswith('_') and k not in ('In', 'Out', 'exit', 'quit', 'get_ipython', 'open')))",
        "import warnings\nwarnings.warn('still shown')",
        "21 * 2",
    )
    # no imports at start: the reset is what is tested (the reports' imports: the fleet run's test)
    render._execute(probe, tmp_path / "fresh.ipynb", {}, False)  # a new kernel, as `render` runs it
    with render.KernelSession(imports=()) as kept:
        kept.warm()
        assert kept.execute(messy, tmp_path / "m.ipynb", {}, False) == 0.0  # warmed: no start waited for
        with pytest.raises(PapermillExecutionError):
            kept.execute(failing, tmp_path / "f.ipynb", {}, False)
        kept.execute(probe, tmp_path / "kept.ipynb", {}, False)
        assert kept.starts == 1 and kept.reports == 3
    assert _record(tmp_path / "kept.ipynb") == _record(tmp_path / "fresh.ipynb")
    counts, outputs = zip(*_record(tmp_path / "kept.ipynb"), strict=True)
    assert counts == (1, 2, 3)
    assert outputs[0][0]["text"] == "[]\n" and "still shown" in outputs[1][0]["text"]


# --------------------------------------------------------------------------- refused up front


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "d1").mkdir(exist_ok=True)
    (tmp_path / "d2").mkdir(exist_ok=True)
    p = tmp_path / "accounts.toml"
    p.write_text(body)
    return p


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ('[[account]]\nname = "a"\ndata = "d1"\ndta = "x"\n', SettingsError, "unknown key 'dta'"),
        (
            '[[account]]\nname = "a"\ndata = "d1"\n[[account]]\nname = "A"\ndata = "d2"\n',
            UsageError,
            "both named",
        ),
        ('[[account]]\nname = "../x"\ndata = "d1"\n', UsageError, "cannot be a folder name"),
        ('[[account]]\nname = "a"\ndata = "missing"\n', UsageError, "does not exist"),
        ('[[account]]\nname = "Fleet"\ndata = "d1"\n', UsageError, "folder of the fleet page"),
        ('[[account]]\ndata = "d1"\n', SettingsError, "give it a name"),
        ('[[account]]\nname = "a"\n', SettingsError, "give its data folder"),
        ('[account]\nname = "a"\ndata = "d1"\n', SettingsError, "[[account]] table"),
        ("", UsageError, "names no account"),
        ('[[account]\nname = "a"', SettingsError, "not valid TOML"),
        ('clients = 1\n[[account]]\nname = "a"\ndata = "d1"\n', SettingsError, "unknown key 'clients'"),
        ('[[account]]\nname = "a"\ndata = "d1"\nconfig = "nope.toml"\n', UsageError, "settings file"),
        (
            '[[account]]\nname = "a"\ndata = "d1"\nrecipients = ["not-an-address"]\n',
            SettingsError,
            "recipients",
        ),
    ],
)
def test_accounts_file_is_refused_with_one_sentence(tmp_path, body, error, words):
    path = _write(tmp_path, body)
    with pytest.raises(error) as exc:
        fleet.run(path, period=WEEK, out_root=tmp_path / "out")
    msg = str(exc.value)
    assert words in msg and "\n" not in msg and msg.count(". ") <= 1, msg
    assert not (tmp_path / "out").exists()  # nothing written, no cluster started


def test_a_bad_settings_file_names_itself(tmp_path):
    path = _write(tmp_path, '[[account]]\nname = "a"\ndata = "d1"\nconfig = "s.toml"\n')
    (tmp_path / "s.toml").write_text("[orderDefectRate.afn]\ntarget = 'x'\n")
    with pytest.raises(SettingsError, match=r"s\.toml") as exc:
        fleet_accounts.read(path)
    # and which account of which accounts file uses it
    assert str(exc.value).startswith(f"{path}: account 1 ('a'): "), exc.value


@pytest.mark.parametrize(
    ("kw", "error", "words"),
    [
        ({"period": WEEK, "as_of": "2026-11-15"}, UsageError, "not both"),
        ({"period": "2026-46"}, PeriodError, "not a month"),
        ({"as_of": "1999-12-31"}, PeriodError, "outside the days"),
        ({"scheduler": "tcp://127.0.0.1:1", "workers": 2}, UsageError, "--workers"),
        ({"workers": 0}, UsageError, "at least 1"),
        ({"email": True}, UsageError, "no recipients"),
    ],
)
def test_run_arguments_are_refused_before_anything_runs(tmp_path, kw, error, words):
    path = _write(tmp_path, '[[account]]\nname = "a"\ndata = "d1"\n')
    with pytest.raises(error, match=re.escape(words)):
        fleet.run(path, out_root=tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


def test_out_inside_a_data_folder_is_refused(tmp_path):
    path = _write(tmp_path, '[[account]]\nname = "a"\ndata = "d1"\n')
    with pytest.raises(UsageError, match="inside the data folder of account 'a'"):
        fleet.run(path, out_root=tmp_path / "d1" / "reports")


def test_a_report_folder_that_is_a_file_is_refused_up_front(tmp_path):
    """reports/<account> taken by a file: one sentence before any account runs (not an internal
    error from that account's task); without --reports nothing is written there, so it is fine."""
    path = _write(tmp_path, '[[account]]\nname = "a"\ndata = "d1"\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("not a folder", encoding="utf-8")
    with pytest.raises(UsageError, match="is a file, not a folder: account 'a'"):
        fleet.run(path, out_root=out, reports=True)
    assert sorted(p.name for p in out.iterdir()) == ["a"]


# --------------------------------------------------------------------------- the page alone


def test_page_escapes_sorts_worst_first_and_encodes_links():
    ok = {
        "name": "calm",
        "status": "ok",
        "period": WEEK,
        "asOf": END,
        "document": None,
        "state": {"label": "Healthy", "source": "our estimate: no metric is Poor"},
    }
    rows = [
        {**ok, "name": "<b>calm</b>"},
        {**ok, "name": "Shop #2", "state": {"label": "At risk", "source": "Amazon, 2026-11-15"}},
        {"name": 'x"><script>alert(1)</script>', "status": "failed", "error": "<img src=x onerror=alert(1)>"},
    ]
    for r in rows[:2]:
        r.pop("document")
    html = page.build({"period": WEEK, "asOf": END, "accounts": rows})
    assert "<script" not in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;calm&lt;/b&gt;" in html
    order = re.findall(r'<tr[^>]*data-account="([^"]*)"', html)
    assert order == ["x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;", "Shop #2", "&lt;b&gt;calm&lt;/b&gt;"]
    assert page.report_href("Shop #2/2026-W46/metrics-summary.html") == (
        "../../Shop%20%232/2026-W46/metrics-summary.html"
    )


@pytest.mark.notebooks  # uses the run's rows
def test_a_failed_row_is_never_green(fleet_run):
    """An account whose metrics were computed but whose report or e-mail then failed keeps its
    numbers on the page, but no green state or Good cell: its run did not finish."""
    res, _, _, _ = fleet_run
    good = [r for r in res.rows if r["status"] == "ok" and "GOOD" in page.row_statuses(r, st.Settings())]
    assert good, "the run needs an account with a Good metric for this test"
    row = {**good[0], "status": "failed", "error": "its report folder is a file"}
    html = page.build({"period": WEEK, "asOf": END, "accounts": [row]})
    (tr,) = re.findall(r"<tr[^>]*data-account=.*?</tr>", html, flags=re.S)
    assert "badge GOOD" not in tr and "s-GOOD" not in tr
    assert "Failed" in tr and "its report folder is a file" in tr
    assert good[0]["document"]["performanceMetrics"] and "%" in tr  # the numbers are still shown
    ok_html = page.build({"period": WEEK, "asOf": END, "accounts": [good[0]]})
    assert "s-GOOD" in ok_html  # the same row, not failed, is green: the check above can fail


@pytest.mark.notebooks  # uses the run's rows
def test_a_row_whose_data_ends_before_the_period_is_marked_and_never_green(fleet_run):
    """With --allow-incomplete, an account whose data ends before the as-of day is computed; its
    row says "Incomplete" with the day the data ends, shows no green and sorts above healthy ones."""
    res, _, _, _ = fleet_run
    good = [r for r in res.rows if r["status"] == "ok" and "GOOD" in page.row_statuses(r, st.Settings())]
    assert good
    short = {**good[0], "name": "short", "dataEnds": "2026-10-20"}
    calm = {**good[0], "name": "calm"}
    html = page.build({"period": WEEK, "asOf": END, "accounts": [calm, short]})
    rows = re.findall(r'<tr[^>]*data-account="([^"]*)".*?</tr>', html, flags=re.S)
    assert rows == ["short", "calm"]
    (tr,) = re.findall(r'<tr[^>]*data-account="short".*?</tr>', html, flags=re.S)
    assert "badge INCOMPLETE" in tr and "the data ends 2026-10-20" in tr
    assert "badge GOOD" not in tr and "s-GOOD" not in tr
    (ok,) = re.findall(r'<tr[^>]*data-account="calm".*?</tr>', html, flags=re.S)
    assert "s-GOOD" in ok and "Incomplete</span> <span" not in ok
