"""Any notebook of notebooks/ as one shareable, offline HTML file (`python -m analysis render`).

The notebook is executed headless with papermill (parameters `data_dir`, `as_of`,
`interactive=False`, `settings=Settings.to_dict()`), so the explorers draw their static views,
and exported with the reports' template (templates/offline_vega): code hidden, the Vega bundle
inlined once, no request to any other host, every buyer text escaped by the views. Before
export, any e-mail address left in an output is masked (`safety`), kernel warnings (stderr) are
dropped and widget state is removed: the page holds what a reader should see, nothing else.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path

import nbformat

from analysis import config, safety
from analysis.errors import UsageError
from analysis.inputs import sources
from analysis.metrics import health
from analysis.metrics.settings import Settings
from analysis.report import render

_EMAIL = re.compile(safety.EMAIL_PATTERN)


def find_notebook(notebook: str | Path) -> Path:
    """`notebook` as given, or the notebook of that name in notebooks/ ("defects_by_cause")."""
    p = Path(notebook)
    if p.is_file():
        return _readable_notebook(p.resolve())
    for candidate in (config.NOTEBOOKS_DIR / p.name, config.NOTEBOOKS_DIR / f"{p.name}.ipynb"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(x.stem for x in config.NOTEBOOKS_DIR.glob("*.ipynb")))
    raise UsageError(
        f"No notebook '{safety.terminal_text(str(notebook))}'; give a notebook file or one of: {known}."
    )


def _readable_notebook(path: Path) -> Path:
    """`path` when it holds a valid notebook; else one sentence (nbformat's own errors quote the
    file's contents and end in a traceback)."""
    shown = safety.terminal_text(str(path))
    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except (
        ValueError,
        UnicodeDecodeError,
        nbformat.ValidationError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,  # JSON nested deeper than the parser's stack
    ):
        raise UsageError(
            f"{shown} is not a Jupyter notebook (.ipynb): it is not a notebook's JSON; give a notebook file or "
            "one of the names of notebooks/."
        ) from None
    return path


def default_out(notebook: Path, data_dir: Path, as_of: dt.date | None) -> Path:
    """reports/<account>/notebooks/<notebook>_<as-of or "latest">.html (the index lists only
    period reports, `*/*/summary.json`, so these stay out of it)."""
    account = render.safe_name(
        data_dir.name, "The data folder's name (the default account name; pass --out FILE)"
    )
    stamp = as_of.isoformat() if as_of else "latest"
    return config.REPORTS_DIR / account / "notebooks" / f"{notebook.stem}_{stamp}.html"


def render_notebook(
    notebook: str | Path,
    data_dir: str | Path,
    settings: Settings | None = None,
    as_of: dt.date | None = None,
    out: str | Path | None = None,
    *,
    progress: bool = False,
    data: sources.Dataset | None = None,
) -> Path:
    """Execute `notebook` on `data_dir` headless and write its offline HTML; returns the path.

    `as_of` None: each notebook's own default (the newest order day for the explorers, the
    latest complete week for metrics_summary). A day after the data is refused (PeriodError)
    unless the settings allow incomplete periods. A failing cell raises `render.ReportError`
    naming the cell, with the executed notebook kept beside `out` as `<name>.failed.ipynb`;
    nothing is written to `out` then. `data`: the folder already read and checked for `as_of`
    (the CLI reads it to warn as every command does), not read again."""
    from papermill.exceptions import PapermillExecutionError

    nb_path = find_notebook(notebook)
    settings = settings or Settings()
    data_dir = Path(data_dir).resolve()
    if data is None:
        data = sources.load(data_dir)
        health.require_usable(data)
        if as_of is not None:
            health.require_covered(data, as_of, settings)
    out = Path(out) if out is not None else default_out(nb_path, data_dir, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {
        "data_dir": str(data_dir),
        "as_of": as_of.isoformat() if as_of else None,
        "interactive": False,
        "settings": settings.to_dict(),
    }
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    with tempfile.TemporaryDirectory(prefix="account-health-render-") as tmp:
        executed = Path(tmp) / nb_path.name
        try:
            render._execute(nb_path, executed, params, progress)
        except PapermillExecutionError as exc:
            failed = out.with_name(f"{out.stem}.failed.ipynb")
            if executed.exists():
                os.replace(executed, failed)
            raise render.ReportError(
                f"{nb_path.name}: cell {exc.exec_count} failed ({exc.ename}: {exc.evalue}); "
                f"the executed notebook with the error is kept at {failed}",
                failed,
            ) from exc
        nb = nbformat.read(executed, as_version=4)
    for_sharing(nb, title=_title(nb, data_dir, as_of))
    render._atomic_write(out, render.export_html(nb))
    out.with_name(f"{out.stem}.failed.ipynb").unlink(missing_ok=True)
    return out


def for_sharing(nb: nbformat.NotebookNode, title: str | None = None) -> None:
    """Make an executed notebook fit to leave the company, in place: e-mail addresses in any
    output masked, kernel warnings (stderr) and widget outputs and state dropped, timings
    stripped."""
    render._strip_volatile(nb)
    nb.metadata.pop("widgets", None)
    if title:
        nb.metadata["title"] = title
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                if o.get("name") == "stderr":
                    continue
                o["text"] = _mask(o.get("text", ""))
            elif "data" in o:
                o["data"].pop("application/vnd.jupyter.widget-view+json", None)
                if not o["data"]:
                    continue
                for mime, value in list(o["data"].items()):
                    if isinstance(value, str):
                        o["data"][mime] = _mask(value)
                    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                        o["data"][mime] = [_mask(v) for v in value]
            elif o.get("output_type") == "error":
                o["evalue"] = _mask(o.get("evalue", ""))
                o["traceback"] = [_mask(t) for t in o.get("traceback", [])]
            kept.append(o)
        cell["outputs"] = kept


def _mask(text: str) -> str:
    return safety.no_bidi(_EMAIL.sub(safety.EMAIL_MASK, text))


def _title(nb: nbformat.NotebookNode, data_dir: Path, as_of: dt.date | None) -> str:
    """The page title: the notebook's first heading, the account, the day."""
    heading = next(
        (
            line[2:].strip()
            for c in nb.cells
            if c.cell_type == "markdown"
            for line in c.source.splitlines()
            if line.startswith("# ")
        ),
        "Account Health",
    )
    return f"{heading} · {data_dir.name}" + (f" · {as_of.isoformat()}" if as_of else "")
