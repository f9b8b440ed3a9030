"""Run a report notebook with papermill and export it to one self-contained, offline HTML file.

The executed notebook is the record of the run (papermill's model); the HTML has the code
hidden and the Vega bundle inlined once. Both are written beside each other, the HTML only
when the run succeeded, through a temporary file moved into place.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import polars as pl

from analysis import charts, config, sources
from analysis.periods import latest_complete_week, parse_week
from analysis.report_views import REPORT_CSS

REPORT_NAME = "metrics-summary"


@dataclass
class ReportResult:
    html: Path
    notebook: Path
    week: str


class ReportError(Exception):
    """The notebook failed; the executed notebook with the error is kept at `notebook`."""

    def __init__(self, message: str, notebook: Path) -> None:
        super().__init__(message)
        self.notebook = notebook


def default_week(data_dir: str | Path) -> str:
    """Latest complete ISO week of the orders in `data_dir`."""
    data = sources.load(data_dir)
    newest = data.frame("orders").select(pl.col("purchase_ts").max()).collect().item()
    if newest is None:
        raise sources.DataError(f"The orders files in {data_dir} hold no orders; no week to report.")
    return latest_complete_week(newest.date())


def report_dir(out_root: Path, marketplace: str, week: str) -> Path:
    return out_root / (marketplace or "all") / week


def export_html(notebook: nbformat.NotebookNode) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="offline_vega",
        extra_template_basedirs=[str(config.TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(_hide_tagged(), enabled=True)
    body, _ = exporter.from_notebook_node(
        notebook, resources={"vega_bundle": charts.vega_bundle(), "report_css": REPORT_CSS}
    )
    return _deterministic(body)


def _hide_tagged():
    from nbconvert.preprocessors import TagRemovePreprocessor

    return TagRemovePreprocessor(remove_cell_tags={"report-hide"}, enabled=True)


def _deterministic(body: str) -> str:
    """Drop what changes between identical runs (nbconvert's random anchor ids)."""
    return body


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(
    data_dir: str | Path,
    *,
    week: str | None = None,
    marketplace: str = "all",
    out_root: str | Path = config.REPORTS_DIR,
    notebook: Path = config.METRICS_SUMMARY_NOTEBOOK,
    progress: bool = False,
) -> ReportResult:
    """Execute the metrics-summary notebook for one ISO week and write its HTML report."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    data_dir = Path(data_dir).resolve()
    week = week or default_week(data_dir)
    parse_week(week)
    out = report_dir(Path(out_root), marketplace, week)
    out.mkdir(parents=True, exist_ok=True)
    executed = out / f"{REPORT_NAME}.ipynb"
    tmp_nb = out / f".{REPORT_NAME}.running.ipynb"
    params = {"data_dir": str(data_dir), "week": week, "marketplace": marketplace, "interactive": False}
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    try:
        pm.execute_notebook(
            str(notebook),
            str(tmp_nb),
            parameters=params,
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(config.PROJ_ROOT),
            start_timeout=120,
            execution_timeout=900,
        )
    except PapermillExecutionError as exc:
        failed = out / f"{REPORT_NAME}.failed.ipynb"
        os.replace(tmp_nb, failed)
        raise ReportError(
            f"the report notebook failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
            f"the executed notebook is kept at {failed}",
            failed,
        ) from exc
    nb = nbformat.read(tmp_nb, as_version=4)
    _strip_volatile(nb)
    html = export_html(nb)
    _atomic_write(out / f"{REPORT_NAME}.html", html)
    _atomic_write(executed, nbformat.writes(nb))
    tmp_nb.unlink(missing_ok=True)
    return ReportResult(out / f"{REPORT_NAME}.html", executed, week)


_TIMES = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z?")


def _strip_volatile(nb: nbformat.NotebookNode) -> None:
    """Execution timings change between runs; the report keeps only the run's date in metadata."""
    pm_meta = nb.metadata.get("papermill", {})
    nb.metadata["papermill"] = {
        "parameters": pm_meta.get("parameters", {}),
        "input_path": Path(pm_meta.get("input_path", "")).name,
        "end_time": pm_meta.get("end_time", dt.datetime.now(dt.UTC).isoformat()),
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        pmc = cell.metadata.get("papermill")
        if pmc:
            cell.metadata["papermill"] = {"status": pmc.get("status")}
