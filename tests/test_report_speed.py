"""`report` over several periods renders them in one kept kernel (render.KernelSession inside
`render_many`), and each period's report and executed notebook are those of a single `render` in
a new kernel: the speed-up changes no byte but the run-time stamp."""

from __future__ import annotations

import json
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


def _same_report(one, other) -> None:
    """Two renders of one period: the same HTML and executed notebook, but for the run's time."""
    assert _run_time(one.html.read_text(encoding="utf-8")) == _run_time(
        other.html.read_text(encoding="utf-8")
    )
    a, b = (nbformat.read(p, as_version=4) for p in (one.notebook, other.notebook))
    for nb in (a, b):
        nb.metadata["papermill"].pop("end_time")
    assert _run_time(nbformat.writes(a)) == _run_time(nbformat.writes(b))


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
    _same_report(results[1], single)
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


# --------------------------------------------------------------------------- one period, in-process


def _process_state() -> tuple:
    """What a notebook run in this process must leave as it found it."""
    import builtins
    import os
    import sys
    import warnings

    from IPython.core.interactiveshell import InteractiveShell

    from analysis.report import charts

    return (
        charts.alt.renderers.active,
        sys.modules.get("__main__"),
        "__IPYTHON__" in builtins.__dict__,
        builtins.__dict__.get("display"),
        list(warnings.filters),
        sys.stdout,
        sys.stderr,
        os.getcwd(),
        InteractiveShell.initialized(),
    )


@pytest.mark.notebooks
def test_one_period_runs_in_process_and_equals_a_kernel_run(tmp_path):
    """`report` of one period runs its notebook in this process, without a kernel; the executed
    notebook, the report and its summary are those of a run in a new kernel (run-time stamp
    aside), and the process is left as it was."""
    before = _process_state()
    with KernelWatch() as watch:
        (res,), errors = render.render_many(
            config.SAMPLE_DIR, ["2026-W45"], progress=False, out_root=tmp_path / "in", account="acme"
        )
    assert not errors and not watch.pids  # no kernel started
    assert _process_state() == before
    kernel = render.render(
        config.SAMPLE_DIR, period="2026-W45", account="acme", out_root=tmp_path / "kernel", index=False
    )
    _same_report(res, kernel)
    assert (res.html.parent / "summary.json").read_text() == (kernel.html.parent / "summary.json").read_text()
    assert "acme/2026-W45/metrics-summary.html" in (tmp_path / "in" / "index.html").read_text(
        encoding="utf-8"
    )
    assert not list((tmp_path / "in").rglob(".*"))  # no running or temporary file left


PROBE_CELLS = [
    "print('out', period)\nimport sys\nprint('err', file=sys.stderr)\nprint('out again')",
    "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))\ndisplay({'application/json': {'a': (1, 2)}}, raw=True)",
    "import warnings\nwarnings.warn('shown once')\n21 * 2",
    "h = display(HTML('<i>first</i>'), display_id=True)\nh.update(HTML('<i>second</i>'))",
    "x = 1;",
    "from IPython.display import clear_output\nprint('gone')\nclear_output()\nprint('kept')",
    "if period in ('fails', '2026-W44'):\n    raise ValueError(f'{period} failed')\nprint('not failed')",
    "print('after')",
]


def _probe(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        "period = None\ndata_dir = None\nmarketplace = 'all'\naccount = None\ninteractive = True\nsettings = None"
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in PROBE_CELLS)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def _outputs(path) -> list:
    """Each code cell's execution count and outputs (an error's traceback aside: its frames and
    colours are the runner's), and the notebook's language_info."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            outs = [{k: v for k, v in o.items() if k != "traceback"} for o in c.outputs]
            cells.append((c.execution_count, outs, c.metadata.get("papermill", {}).get("status")))
    # a cell's code is named after the process running it (ipykernel_<pid>), in warnings
    return json.loads(
        re.sub(r"ipykernel_\d+", "ipykernel_PID", json.dumps([cells, nb.metadata.get("language_info")]))
    )


@pytest.mark.notebooks
@pytest.mark.parametrize("period", ["2026-W45", "fails"])
def test_in_process_outputs_equal_a_kernels(tmp_path, period):
    """Streams, displays, raw mime bundles, results, warnings, display updates, clear_output, a
    failing cell (the cells after it not run) and the notebook's metadata: as a kernel gives them;
    a failure raises what papermill raises for a kernel, with the same cell, name and message."""
    from papermill.exceptions import PapermillExecutionError

    probe = _probe(tmp_path)
    params = {"period": period}
    raised = []
    for name, run in (
        ("kernel", lambda out: render._execute(probe, out, params, False)),
        ("in", lambda out: render.InProcessSession().execute(probe, out, params, False)),
    ):
        try:
            run(tmp_path / f"{name}.ipynb")
            raised.append(None)
        except PapermillExecutionError as exc:
            raised.append((exc.cell_index, exc.exec_count, exc.ename, exc.evalue))
    assert raised[0] == raised[1]
    assert (raised[0] is not None) == (period == "fails")
    kernel, inproc = _outputs(tmp_path / "kernel.ipynb"), _outputs(tmp_path / "in.ipynb")
    assert inproc == kernel
    if period == "fails":  # the error output carries a traceback, as a kernel's does
        nb = nbformat.read(tmp_path / "in.ipynb", as_version=4)
        (err,) = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert err.ename == "ValueError" and any("fails failed" in line for line in err.traceback)


@pytest.mark.notebooks
def test_in_process_failure_is_the_same_report_error(tmp_path):
    """A report whose notebook fails in-process ends with the one sentence a kernel run gives,
    and keeps the executed notebook with the error beside it."""
    probe = _probe(tmp_path)
    errors = []
    for name, session in (("kernel", None), ("in", render.InProcessSession())):
        with pytest.raises(render.ReportError) as exc:
            render.render(
                config.SAMPLE_DIR, period="2026-W44", notebook=probe, account="a", out_root=tmp_path / name,
                session=session, index=False,
            )  # fmt: skip
        errors.append(str(exc.value).replace(str(tmp_path / name), "OUT"))
        assert exc.value.notebook.name == "metrics-summary.failed.ipynb" and exc.value.notebook.exists()
    assert errors[0] == errors[1]
    assert "failed in cell 9 (ValueError: 2026-W44 failed)" in errors[0]


@pytest.mark.notebooks
def test_ctrl_c_in_a_cell_stops_an_in_process_report(tmp_path):
    """KeyboardInterrupt in a cell (Ctrl-C) is not a failed report: it stops the run, and the
    running notebook is removed."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise KeyboardInterrupt")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "stop.ipynb"
    nbformat.write(nb, path)
    before = _process_state()
    with pytest.raises(KeyboardInterrupt):
        render.render(
            config.SAMPLE_DIR, period="2026-W45", notebook=path, account="a", out_root=tmp_path / "out",
            session=render.InProcessSession(), index=False,
        )  # fmt: skip
    assert _process_state() == before
    assert not list((tmp_path / "out").rglob("*.ipynb"))


def test_plain_selects_find_what_soupsieve_finds():
    """The exporter's last step finds the elements soupsieve's selectors find (images without
    alt text, input and output areas inside the notebook only)."""
    import bs4

    page = (
        '<!DOCTYPE html><html><body><img src="a.png"><img alt="" src="b.png"><img alt="x" src="c.png">'
        '<div class="jp-Cell-inputWrapper">outside</div><div class="jp-OutputArea-output">outside</div>'
        '<main class="jp-Notebook x"><div class="jp-Cell"><div class="jp-Cell-inputWrapper y">in</div>'
        '<div class="jp-OutputArea"><div class="jp-OutputArea-output">out<img src="d.png"></div>'
        '<span class="jp-OutputArea-output">a span</span><div class="jp-OutputArea-output-not">no</div>'
        "</div></div></main></body></html>"
    )
    soup = bs4.BeautifulSoup(page, features="html.parser")
    for selector, plain in render._PLAIN_SELECTS.items():
        found = plain(soup)
        assert found and [id(t) for t in found] == [id(t) for t in soup.select(selector)], selector


def test_vega_bundle_is_kept_and_checked(tmp_path, monkeypatch):
    """The Vega bundle kept in the cache folder is vl-convert's; a damaged copy is built again."""
    from analysis.report import charts

    monkeypatch.setenv("AH_CACHE_DIR", str(tmp_path))
    render.vega_bundle.cache_clear()
    try:
        bundle = render.vega_bundle()
        assert bundle == charts.vega_bundle()
        (kept,) = (tmp_path / "vega").iterdir()
        kept.write_bytes(kept.read_bytes()[:-100] + b"alert(1)")  # damaged (or changed)
        render.vega_bundle.cache_clear()
        assert render.vega_bundle() == bundle
        assert kept.read_bytes().decode("utf-8").partition("\n")[2] == bundle
        # replaced with its own matching seal (anyone who can write a shared cache folder could):
        # still not used, since only the pinned version's own bundle is
        import hashlib

        evil = bundle[:-100] + "alert(1)"
        kept.write_bytes((hashlib.sha256(evil.encode()).hexdigest() + "\n" + evil).encode())
        render.vega_bundle.cache_clear()
        assert render.vega_bundle() == bundle
        # a version whose bundle was not checked: built, never stored
        for f in (tmp_path / "vega").iterdir():
            f.unlink()
        monkeypatch.setattr(render, "KNOWN_BUNDLES", {})
        render.vega_bundle.cache_clear()
        assert render.vega_bundle() == bundle and not any((tmp_path / "vega").iterdir())
    finally:
        render.vega_bundle.cache_clear()


def test_the_pinned_bundle_is_known():
    """The pinned vl-convert's bundle is in KNOWN_BUNDLES (else no report would keep it: update
    the table with the pins)."""
    import hashlib

    import vl_convert as vlc

    from analysis.report import charts

    name = f"{vlc.__version__}-{charts.vl_version()}"
    assert render.KNOWN_BUNDLES.get(name) == hashlib.sha256(charts.vega_bundle().encode()).hexdigest()


def test_compiled_templates_are_kept_only_where_no_one_else_can_write(tmp_path, monkeypatch):
    """Jinja's compiled templates are code, run when loaded: kept in the cache's `jinja/` folder
    when it is this user's alone; a folder others can write (a shared cache) keeps none."""
    import types

    from jinja2 import Environment

    monkeypatch.setenv("AH_CACHE_DIR", str(tmp_path))
    exporter = types.SimpleNamespace(environment=Environment())
    render._keep_compiled_templates(exporter)
    assert exporter.environment.bytecode_cache is not None
    assert (tmp_path / "jinja").stat().st_mode & 0o777 == 0o700
    (tmp_path / "jinja").chmod(0o777)  # a shared, world-writable cache
    exporter = types.SimpleNamespace(environment=Environment())
    render._keep_compiled_templates(exporter)
    assert exporter.environment.bytecode_cache is None
