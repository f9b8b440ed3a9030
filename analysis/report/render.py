"""Run the report notebook with papermill for each period and export one self-contained, offline
HTML file per report, plus reports/index.html.

Layout: `reports/<account>/<period>/metrics-summary.html`, with the executed notebook beside it
as the record of the run (papermill's model) and `summary.json` for the index. A report is
written to a temporary file and moved into place only when its run succeeded; a failed run
leaves the previous good report untouched and keeps `metrics-summary.failed.ipynb` beside it.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from analysis import __version__, config, safety
from analysis.errors import AnalysisError, PeriodError, UsageError
from analysis.inputs import marketplaces, sources
from analysis.metrics import health
from analysis.metrics.settings import Settings
from analysis.report import charts
from analysis.report.kit import REPORT_CSS
from analysis.report.periods import Period, latest_complete_week, parse_period

REPORT_NAME = "metrics-summary"
HEADLINE_MIME = "application/vnd.account-health.headline+json"


@dataclass
class ReportResult:
    html: Path
    notebook: Path
    period: str
    seconds: float = 0.0
    kernel_seconds: float = 0.0

    @property
    def week(self) -> str:  # the period label, kept for callers of the weekly API
        return self.period


class ReportError(AnalysisError):
    """The notebook failed; the executed notebook with the error is kept at `notebook`."""

    def __init__(self, message: str, notebook: Path, period: str = "") -> None:
        super().__init__(message)
        self.notebook = notebook
        self.period = period


def newest_order_day(data_dir: str | Path) -> dt.date:
    return health.newest_order_day(sources.load(data_dir))


def default_week(data_dir: str | Path) -> str:
    """Latest complete ISO week of the orders in `data_dir`."""
    return latest_complete_week(newest_order_day(data_dir))


def safe_name(name: str, what: str) -> str:
    """`safety.folder_name`, and UTF-8: a name from a shell may hold bytes that are not (Python
    keeps them as lone surrogates), which the report, its notebook and the index cannot hold."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{what} '{safety.terminal_text(name)}' is not UTF-8 text; give a name of letters, digits and spaces."
        ) from None
    return safety.folder_name(name, what)


def report_dir(out_root: Path, account: str, period: str, marketplace: str = "all") -> Path:
    """`out_root/<account>/<period>[_<marketplace>]`; the account must be one safe folder name and
    the marketplace "all" or a known id (UsageError otherwise), so no name reaches outside
    `out_root` or hides a report from the index (which lists `*/*/summary.json`)."""
    account = safe_name(account, "The account name")
    if marketplace not in ("all", "", None) and marketplace not in marketplaces.ID_TO_SALES_CHANNEL:
        raise UsageError(
            f"'{safety.terminal_text(marketplace)}' is not a marketplace id; give 'all' or an id such as ATVPDKIKX0DER."
        )
    folder = period if marketplace in ("all", "", None) else f"{period}_{marketplace}"
    return Path(out_root) / account / safety.folder_name(folder, "The period folder")


def export_html(notebook: nbformat.NotebookNode) -> str:
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        template_name="offline_vega",
        extra_template_basedirs=[str(config.TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={"report-hide"}, enabled=True), enabled=True
    )
    body, _ = exporter.from_notebook_node(
        notebook, resources={"vega_bundle": charts.vega_bundle(), "report_css": REPORT_CSS}
    )
    return body


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a run killed mid-write leaves a file the next run can clear
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------ leftovers of killed runs

# `.metrics-summary.running.<pid>.<thread>.ipynb` (papermill's output while the kernel runs) and
# `.<file>.<pid>.<random>` (_atomic_write's temporary file)
_LEFTOVER = re.compile(
    rf"^\.(?:{re.escape(REPORT_NAME)}\.running\.(?P<pid>\d+)\.\d+\.ipynb"
    rf"|(?:{re.escape(REPORT_NAME)}\.html|{re.escape(REPORT_NAME)}\.ipynb|summary\.json|index\.html)"
    r"\.(?P<wpid>\d+)\.\w+)$"
)


def _process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc on Linux; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_STARTED = _process_start(os.getpid()) or time.time()  # this process's start


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a zombie (killed, not yet reaped) is not a writer
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _stale(pid: int, mtime: float) -> bool:
    """A leftover of process `pid` last written at `mtime` is stale when that process is gone, or
    when the process now holding that pid started after the file was written (pid reused)."""
    if pid == os.getpid():
        return mtime < _STARTED - 1
    if not _alive(pid):
        return True
    started = _process_start(pid)
    return started is not None and mtime < started - 1


def clean_leftovers(folder: Path) -> list[Path]:
    """Remove what killed runs left in `folder` (running notebooks, half-written temporary files):
    those whose writer is gone or older than the process now holding its pid. Returns them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for f in entries:
        m = _LEFTOVER.match(f.name)
        if not m:
            continue
        try:
            if f.is_file() and _stale(int(m.group("pid") or m.group("wpid")), f.stat().st_mtime):
                f.unlink()
                removed.append(f)
        except OSError:
            pass
    return removed


_KERNEL_DIR_PREFIX = "account-health-kernel-"


def _clean_kernel_dirs() -> None:
    """Remove the IPC socket folders of kernels whose report process was killed (their manager's
    cleanup never ran): `account-health-kernel-<pid>-*` whose pid is gone."""
    try:
        entries = list(Path(tempfile.gettempdir()).glob(f"{_KERNEL_DIR_PREFIX}*-*"))
    except OSError:
        return
    for d in entries:
        pid = d.name[len(_KERNEL_DIR_PREFIX) :].split("-", 1)[0]
        try:
            if (
                pid.isdigit()
                and int(pid) != os.getpid()
                and d.is_dir()
                and _stale(int(pid), d.stat().st_mtime)
            ):
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


# Run in front of the kernel on Linux: ask the kernel to be killed when the report process that
# launched it dies (PR_SET_PDEATHSIG survives exec), then exec the kernel. ipykernel's own parent
# poller is a Python thread that needs the GIL, so a kernel stuck in a long C call (a regex, a
# NumPy routine) kept running at 100 % CPU after its report process was killed.
KERNEL_GUARD = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass  # no prctl: ipykernel's parent poller remains\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)  # the report process died before the line above\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def guarded_kernel_cmd(kernel_cmd: list[str]) -> list[str]:
    """`kernel_cmd` run through KERNEL_GUARD on Linux (the kernel dies with this process)."""
    if not sys.platform.startswith("linux"):
        return list(kernel_cmd)
    return [sys.executable, "-c", KERNEL_GUARD, str(os.getpid()), *kernel_cmd]


_start_lock = threading.Lock()
_local = threading.local()
_patched = {"done": False}


def _patch_kernel_start() -> None:
    """Serialise kernel starts (a lock), so parallel runs never race for the same ports, and
    time them per thread for the benchmark."""
    if _patched["done"]:
        return
    from nbclient import NotebookClient

    def timed(orig):
        def start(self, *a, **kw):
            t = time.perf_counter()
            with _start_lock:
                r = orig(self, *a, **kw)
            _local.kernel = getattr(_local, "kernel", 0.0) + time.perf_counter() - t
            return r

        return start

    # papermill calls the synchronous wrappers: start the kernel, then wait for its client
    NotebookClient.start_new_kernel = timed(NotebookClient.start_new_kernel)
    NotebookClient.start_new_kernel_client = timed(NotebookClient.start_new_kernel_client)
    _patched["done"] = True


def _execute(notebook: Path, out: Path, params: dict, progress: bool) -> float:
    """Run the notebook; returns the seconds spent starting its kernel."""
    import papermill as pm

    _patch_kernel_start()
    _local.kernel = 0.0
    pm.execute_notebook(
        str(notebook),
        str(out),
        parameters=params,
        kernel_name="python3",
        progress_bar=progress,
        cwd=str(config.PROJ_ROOT),
        start_timeout=120,
        execution_timeout=900,
        kernel_manager_class=_ipc_kernel_manager(),
    )
    return _local.kernel


@functools.cache
def _ipc_kernel_manager() -> type:
    """A kernel manager that talks to its local kernel over IPC instead of TCP on 127.0.0.1,
    which ipykernel warns about on every run. Each kernel gets its own socket folder: the
    default socket names ("kernel-ipc-1", ...) would be shared by kernels started at once. The
    folder is named after this process, so a later run removes it if this one is killed; the
    kernel is launched through KERNEL_GUARD, so it dies with this process."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self) -> str:
            return os.path.join(tempfile.mkdtemp(prefix=f"{_KERNEL_DIR_PREFIX}{os.getpid()}-"), "ipc")

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
            await super()._async_launch_kernel(guarded_kernel_cmd(kernel_cmd), **kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart)
            if not restart:
                shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)

    return IPCKernelManager


def render(
    data_dir: str | Path,
    settings: Settings | None = None,
    *,
    week: str | None = None,
    period: str | None = None,
    marketplace: str = "all",
    account: str | None = None,
    out_root: str | Path = config.REPORTS_DIR,
    notebook: Path = config.METRICS_SUMMARY_NOTEBOOK,
    progress: bool = False,
    index: bool = True,
    newest: dt.date | None = None,
) -> ReportResult:
    """Execute the metrics-summary notebook for one period (ISO week or month) and write its report.

    A period not yet over on the data is refused (PeriodError, nothing written) unless the
    settings allow incomplete periods; `newest` (the newest order day) saves reading the folder
    again when the caller knows it."""
    from papermill.exceptions import PapermillExecutionError

    t0 = time.perf_counter()
    settings = settings or Settings()
    data_dir = Path(data_dir).resolve()
    if newest is None:
        data = sources.load(data_dir)
        health.require_usable(data)
        newest = health.newest_order_day(data)
    p: Period = parse_period(period or week or latest_complete_week(newest))
    if p.as_of > newest and not settings.allow_incomplete:
        raise PeriodError(
            f"The period {p.label} (as of {p.as_of}) is not over on the data: the newest order is from {newest}; "
            "pick an earlier period, add newer exports, or pass --allow-incomplete."
        )
    if account is None:
        account = safe_name(
            data_dir.name, "The data folder's name (the default account name; pass --account NAME)"
        )
    out = report_dir(Path(out_root), account, p.label, marketplace)  # checked before anything is written
    out.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    _clean_kernel_dirs()
    tmp_nb = out / f".{REPORT_NAME}.running.{os.getpid()}.{threading.get_ident()}.ipynb"
    params = {
        "data_dir": str(data_dir),
        "period": p.label,
        "marketplace": marketplace,
        "account": account,
        "interactive": False,
        "settings": settings.to_dict(),
    }
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    try:
        kernel = _execute(notebook, tmp_nb, params, progress)
    except PapermillExecutionError as exc:
        failed = out / f"{REPORT_NAME}.failed.ipynb"
        os.replace(tmp_nb, failed)
        raise ReportError(
            f"{account} {p.label}: the report notebook failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
            f"the executed notebook with the error is kept at {failed}",
            failed,
            p.label,
        ) from exc
    except BaseException:
        tmp_nb.unlink(missing_ok=True)
        raise
    nb = nbformat.read(tmp_nb, as_version=4)
    _strip_volatile(nb)
    head = _headline(nb) or {
        "account": account,
        "period": p.label,
        "asOf": p.as_of.isoformat(),
        "status": "NONE",
    }
    _atomic_write(out / f"{REPORT_NAME}.html", export_html(nb))
    _atomic_write(out / f"{REPORT_NAME}.ipynb", nbformat.writes(nb))
    _atomic_write(
        out / "summary.json",
        json.dumps({**head, "marketplace": marketplace, "version": __version__}, indent=1),
    )
    tmp_nb.unlink(missing_ok=True)
    (out / f"{REPORT_NAME}.failed.ipynb").unlink(missing_ok=True)
    if index:
        write_index(Path(out_root))
    return ReportResult(
        out / f"{REPORT_NAME}.html", out / f"{REPORT_NAME}.ipynb", p.label, time.perf_counter() - t0, kernel
    )


def render_many(
    data_dir: str | Path,
    periods: list[str],
    settings: Settings | None = None,
    *,
    jobs: int = 1,
    progress: bool = True,
    **kw,
) -> tuple[list[ReportResult], list[ReportError]]:
    """Render several periods (in parallel threads when `jobs` > 1); failures do not stop the others."""
    from tqdm.auto import tqdm

    if kw.get("newest") is None:
        data = sources.load(data_dir)
        health.require_usable(data)
        kw["newest"] = health.newest_order_day(data)

    results: list[ReportResult] = []
    errors: list[ReportError] = []
    cell_bars = progress and len(periods) == 1
    bar = tqdm(total=len(periods), desc="reports", unit="report", disable=not progress or len(periods) == 1)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(render, data_dir, settings, period=p, progress=cell_bars, index=False, **kw): p
            for p in periods
        }
        for fut in as_completed(futures):
            try:
                results.append(fut.result())
            except ReportError as exc:
                errors.append(exc)
            bar.update(1)
    bar.close()
    write_index(Path(kw.get("out_root", config.REPORTS_DIR)))
    return sorted(results, key=lambda r: r.period), errors


def _headline(nb: nbformat.NotebookNode) -> dict | None:
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if HEADLINE_MIME in data:
                return dict(data[HEADLINE_MIME])
    return None


def _strip_volatile(nb: nbformat.NotebookNode) -> None:
    """Execution timings change between runs; the record keeps parameters and the run's end time."""
    pm_meta = nb.metadata.get("papermill", {})
    nb.metadata["papermill"] = {
        "parameters": pm_meta.get("parameters", {}),
        "input_path": Path(pm_meta.get("input_path", "")).name,
        "end_time": pm_meta.get("end_time", dt.datetime.now(dt.UTC).isoformat()),
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # papermill gives its injected cell a random id
        cell.metadata.pop("execution", None)
        pmc = cell.metadata.get("papermill")
        if pmc:
            cell.metadata["papermill"] = {"status": pmc.get("status")}


INDEX_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; max-width: 900px; margin: 0 auto; padding: 12px; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #ddd; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; }
.GOOD { background: #2e7d32; } .AT_RISK { background: #ef6c00; } .BAD { background: #c62828; } .NONE { background: #9e9e9e; }
.INCOMPLETE { background: #fff; color: #5d4037; border: 2px dashed #8d6e63; } .warn { color: #bf360c; font-size: 13px; }
.scroll { overflow-x: auto; }
"""


_SUMMARY_MAX_BYTES = 1_000_000


def _text(value: object) -> str:
    """Index text from a summary value: a string, never a lone surrogate (the page is UTF-8)."""
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _href(*folders: str) -> str:
    """A relative link to a report: every folder name URL-encoded (its bytes as on disk), so a
    name such as `Shop #2` or `javascript:alert(1)` stays a path under the index's folder."""
    return "/".join(urllib.parse.quote(os.fsencode(f), safe="") for f in folders) + f"/{REPORT_NAME}.html"


def _read_summary(summary: Path) -> dict | None:
    """A report's summary.json as a dict, or None when it is unreadable, too big, not JSON, or
    not an object (another tool, a disk error or a hand edit must not stop the index)."""
    try:
        if summary.stat().st_size > _SUMMARY_MAX_BYTES:
            return None
        s = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return s if isinstance(s, dict) else None


def write_index(out_root: Path) -> Path:
    """reports/index.html: every report under `out_root`, newest as-of first, with its headline.
    A report whose summary.json cannot be read is named in a note instead of listed."""
    out_root = Path(out_root)
    clean_leftovers(out_root)
    rows, unreadable = [], []
    for summary in sorted(out_root.glob("*/*/summary.json")):
        if not (summary.parent / f"{REPORT_NAME}.html").exists():
            continue
        account_dir, period_dir = summary.parent.parent.name, summary.parent.name
        s = _read_summary(summary)
        if s is None:
            unreadable.append(f"{account_dir}/{period_dir}")
            continue
        markets = s.get("marketplaces", [])
        rows.append(
            {
                "account": _text(s.get("account") or account_dir),
                "period": _text(s.get("period") or period_dir),
                "asOf": _text(s.get("asOf") or ""),
                "marketplaces": ", ".join(_text(x) for x in markets)
                if isinstance(markets, list)
                else _text(markets),
                "status": _text(s.get("status") or "NONE"),
                "label": _text(s.get("label") or s.get("status") or ""),
                "incomplete": _text(s["incomplete"]) if s.get("incomplete") else "",
                "href": _href(account_dir, period_dir),
            }
        )
    rows.sort(key=lambda s: (s["asOf"], s["account"], s["href"]), reverse=True)
    e = html.escape
    body = "".join(
        f'<tr><td>{e(s["account"])}</td><td><a href="{e(s["href"])}">{e(s["period"])}</a></td>'
        f"<td>{e(s['asOf'])}</td><td>{e(s['marketplaces'])}</td>"
        f'<td><span class="badge {e(s["status"])}">{e(s["label"])}</span>'
        + (f'<br><span class="warn">incomplete: {e(s["incomplete"])}</span>' if s["incomplete"] else "")
        + "</td></tr>"
        for s in rows
    )
    note = (
        '<p class="warn">Not listed, their summary.json is not a report summary (unreadable, not JSON or not '
        "an object): " + ", ".join(e(_text(safety.terminal_text(u))) for u in unreadable) + ".</p>"
        if unreadable
        else ""
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width, initial-scale=1"><title>Account Health reports</title>'
        f"<style>{INDEX_CSS}</style></head><body><h1>Account Health reports</h1>"
        f"<p>{len(rows)} reports, newest first. Status: the worst Order Defect Rate status (Good, Fair, Poor; "
        "Incomplete when an export it needs was missing); reports of a period past the data say so.</p>"
        f"{note}"
        '<div class="scroll"><table><thead><tr><th>Account</th><th>Period</th><th>As of</th><th>Marketplaces</th>'
        f"<th>Status</th></tr></thead><tbody>{body}</tbody></table></div></body></html>\n"
    )
    path = out_root / "index.html"
    _atomic_write(path, page)
    return path
