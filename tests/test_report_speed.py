"""`report` over several periods renders them in one kept kernel (render.KernelSession inside
`render_many`), and each period's report and executed notebook are those of a single `render` in
a new kernel: the speed-up changes no byte but the run-time stamp."""

from __future__ import annotations

import re
import threading

import nbformat
import psutil
import pytest

from analysis import config
from analysis.report import render

PERIODS = ["2026-W44", "2026-W45", "2026-W46"]


def _run_time(text: str) -> str:
    return re.sub(r"<span class=(\\?)\"run-time(\\?)\">[^<]*</span>", "", text)


class KernelWatch:
    """The ipykernel processes started under this process while it runs (sampled every 50 ms: a
    report's kernel lives for seconds)."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.05):
            for child in me.children(recursive=True):
                try:
                    if any("ipykernel" in part for part in child.cmdline()):
                        self.pids.add(child.pid)
                except psutil.Error:
                    pass

    def __enter__(self) -> KernelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.notebooks  # renders reports (papermill)
def test_periods_share_one_kernel_and_equal_single_renders(tmp_path):
    with KernelWatch() as watch:
        results, errors = render.render_many(
            config.SAMPLE_DIR, PERIODS, progress=False, out_root=tmp_path / "many", account="acme"
        )
    assert not errors and [r.period for r in results] == PERIODS
    assert len(watch.pids) == 1  # one kernel for the three periods
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in watch.pids)
    single = render.render(
        config.SAMPLE_DIR, period="2026-W45", account="acme", out_root=tmp_path / "one", index=False
    )
    kept = results[1]
    assert _run_time(kept.html.read_text(encoding="utf-8")) == _run_time(
        single.html.read_text(encoding="utf-8")
    )
    a, b = (nbformat.read(p, as_version=4) for p in (kept.notebook, single.notebook))
    for nb in (a, b):
        nb.metadata["papermill"].pop("end_time")
    assert _run_time(nbformat.writes(a)) == _run_time(nbformat.writes(b))
    index = (tmp_path / "many" / "index.html").read_text(encoding="utf-8")
    assert all(f"acme/{p}/metrics-summary.html" in index for p in PERIODS)
    assert not list((tmp_path / "many").rglob(".*"))  # no running or temporary file left
    # each report's own seconds leave out the time it waited for the kernel shared with the others
    assert all(0 < r.seconds for r in results)


@pytest.mark.notebooks
def test_a_failing_period_leaves_the_kernel_to_the_next(tmp_path):
    """A period whose notebook fails (a notebook that raises for one period) is an error of its
    own; the periods after it render in the same kept kernel."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        "period = None\ndata_dir = None\nmarketplace = 'all'\naccount = None\ninteractive = True\nsettings = None"
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("if period == '2026-W45':\n    raise ValueError('this period fails')"),
        nbformat.v4.new_code_cell("seen = globals().get('seen', 0) + 1\nprint(period, seen)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    with KernelWatch() as watch:
        results, errors = render.render_many(
            config.SAMPLE_DIR, PERIODS, notebook=path, progress=False, out_root=tmp_path / "out", account="a"
        )
    assert [r.period for r in results] == ["2026-W44", "2026-W46"]
    (err,) = errors
    assert err.period == "2026-W45" and "this period fails" in str(err) and err.notebook.exists()
    assert len(watch.pids) == 1
    for r in results:  # a fresh namespace each time: `seen` never carried over
        out = nbformat.read(r.notebook, as_version=4).cells[-1].outputs
        assert out[0]["text"] == f"{r.period} 1\n"
