"""The explorer notebooks in a live JupyterLab, driven from Debian's Chromium as an analyst would:
open the notebook, run all cells, click a bar or an alarm, and read the table below it.

JupyterLab runs on 127.0.0.1 on a free port with a token set here, its runtime, config, settings
and workspace folders in a temporary folder, on copies of the notebooks, with the venv's kernel
(JUPYTER_PREFER_ENV_PATH). It is stopped at the end whatever happens (the fixture's finaliser
ends its process group and the kernels it started)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import launch_chromium

from analysis import config

pytestmark = pytest.mark.browser
pytest.importorskip("anywidget")  # Altair's JupyterChart
SHOTS = Path("/tmp")
START_S, RUN_S, CLICK_S = 60, 150, 45  # generous: a cold kernel imports polars, altair, scipy


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # psutil missing or the process already gone
        return []


def _stop(proc: subprocess.Popen) -> None:
    """End the server's process group, then any kernel it started (kernels get their own session)."""
    kids = _descendants(proc.pid)
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for k in kids:
        try:
            k.kill()
        except Exception:  # already gone
            pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for nb in config.NOTEBOOKS_DIR.glob("*.ipynb"):
        shutil.copy(nb, notebooks / nb.name)
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "JUPYTER_PREFER_ENV_PATH": "1",
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(config.PROJ_ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    log = open(root / "lab.log", "wb")  # noqa: SIM115 - closed in the finaliser
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={notebooks}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
            f"--LabApp.user_settings_dir={root / 'settings'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ],
        cwd=notebooks,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited ({proc.returncode}):\n{(root / 'lab.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer in {START_S} s:\n{(root / 'lab.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield {"url": url, "token": token, "log": root / "lab.log"}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Chromium with no network but the JupyterLab server on 127.0.0.1."""
    with launch_chromium("MAP * ~NOTFOUND, EXCLUDE 127.0.0.1") as b:
        yield b


def _run_all(browser, lab, name: str):
    """Open notebooks/<name>.ipynb in a fresh workspace, wait for its kernel, run all cells."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(CLICK_S * 1000)
    seen = {"requests": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(f"{lab['url']}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={lab['token']}")
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=RUN_S * 1000)  # the kernel is up
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    return page, seen


def _texts(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def _offline(seen: dict, lab: dict) -> list[str]:
    """Requests that left the machine (a CDN for Vega, fonts...): there must be none."""
    return [u for u in seen["requests"] if not u.startswith((lab["url"], "data:", "blob:", "about:"))]


def test_clicking_a_cause_filters_the_orders_and_the_other_charts(browser, lab):
    page, seen = _run_all(browser, lab, "defects_by_cause")
    try:
        bars = page.locator(".ah-chart-cause g.mark-rect path[aria-label]")
        bars.first.wait_for(state="attached", timeout=RUN_S * 1000)
        rows = ".ah-drilldown table tbody tr td:nth-child(5)"  # the Cause column
        page.locator(rows).first.wait_for(state="attached")
        assert len(set(_texts(page, rows))) > 1  # before: every cause
        labels = [bars.nth(i).get_attribute("aria-label") for i in range(bars.count())]
        causes = [re.search(r"label: ([^;]+);", x).group(1) for x in labels]
        pick = len(causes) - 1  # the smallest bar: a cause that is not already most of the table
        cause = causes[pick]
        bar = bars.nth(pick)
        bar.scroll_into_view_if_needed()
        bar.click()
        page.wait_for_function(
            """([sel, cause]) => {
                const cells = Array.from(document.querySelectorAll(sel)).map(c => c.innerText.trim());
                return cells.length > 0 && cells.every(c => c === cause);
            }""",
            arg=[rows, cause],
            timeout=CLICK_S * 1000,
        )
        assert set(_texts(page, rows)) == {cause}
        assert f"cause {cause}" in page.locator(".ah-drilldown .ah-selection").inner_text()
        # the weekly chart now draws only that cause
        page.wait_for_function(
            """(cause) => {
                const bars = Array.from(document.querySelectorAll('.ah-chart-week g.mark-rect path[aria-label]'));
                return bars.length > 0 && bars.every(b => b.getAttribute('aria-label').includes('cause: ' + cause));
            }""",
            arg=cause,
            timeout=CLICK_S * 1000,
        )
        page.locator(".ah-chart-cause").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "ah-live-defects-after-click.png"))
        # a brush across the weekly chart sets the purchase dates of the table
        pickers = page.locator(".ah-explorer input[type=date]")
        before = [pickers.nth(i).input_value() for i in range(2)]
        box = page.locator(".ah-chart-week svg.marks").bounding_box()
        y = box["y"] + box["height"] / 3
        page.mouse.move(box["x"] + 70, y)
        page.mouse.down()
        page.mouse.move(box["x"] + 130, y, steps=6)
        page.mouse.move(box["x"] + 170, y, steps=6)
        page.mouse.up()
        page.wait_for_function(
            "([sel, before]) => Array.from(document.querySelectorAll(sel)).map(i => i.value).join() !== before.join()",
            arg=[".ah-explorer input[type=date]", before],
            timeout=CLICK_S * 1000,
        )
        first, last = (dt.date.fromisoformat(pickers.nth(i).input_value()) for i in range(2))
        assert first < last and (first, last) != tuple(dt.date.fromisoformat(x) for x in before)
        page.wait_for_function(
            "(text) => document.querySelector('.ah-drilldown .ah-selection')?.innerText.includes(text)",
            arg=f"bought {first} to {last}",
            timeout=CLICK_S * 1000,
        )
        bought = [dt.date.fromisoformat(x) for x in _texts(page, ".ah-drilldown table tbody td:nth-child(2)")]
        assert all(first <= b <= last for b in bought)
        assert set(_texts(page, rows)) <= {cause}  # the cause stays selected
        assert seen["errors"] == [] and _offline(seen, lab) == []
    finally:
        page.close()


def test_clicking_an_alarm_lists_the_defects_behind_it(browser, lab):
    page, seen = _run_all(browser, lab, "spike_detection")
    try:
        alarms = page.locator(".ah-chart-control g.mark-symbol path[aria-label*='detector']")
        alarms.first.wait_for(state="attached", timeout=RUN_S * 1000)
        heading = page.locator(".ah-drilldown h3")
        before = heading.inner_text()
        label = alarms.first.get_attribute("aria-label")
        day = dt.datetime.strptime(re.search(r"day: ([^;]+);", label).group(1), "%b %d, %Y").date()
        alarms.first.scroll_into_view_if_needed()
        alarms.first.click()
        want = f"Defects behind the alarm of {day.isoformat()}"
        if before != want:
            page.wait_for_function(
                "(want) => document.querySelector('.ah-drilldown h3')?.innerText.trim() === want",
                arg=want,
                timeout=CLICK_S * 1000,
            )
        assert heading.inner_text().strip() == want
        arrived = [
            dt.date.fromisoformat(x) for x in _texts(page, ".ah-drilldown table tbody td:nth-child(3)")
        ]
        assert arrived and all(day - dt.timedelta(days=6) <= a <= day for a in arrived)
        # the drivers chart follows the click
        page.wait_for_function(
            "(day) => (document.querySelector('.ah-chart-drivers')?.textContent || '').includes(day)",
            arg=day.isoformat(),
            timeout=CLICK_S * 1000,
        )
        page.locator(".ah-chart-control").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "ah-live-spikes-after-click.png"))
        assert seen["errors"] == [] and _offline(seen, lab) == []
    finally:
        page.close()
