"""Run the report notebook with papermill for each period and export one self-contained, offline
HTML file per report, plus reports/index.html.

Layout: `reports/<account>/<period>/metrics-summary.html`, with the executed notebook beside it
as the record of the run (papermill's model) and `summary.json` for the index. A report is
written to a temporary file and moved into place only when its run succeeded; a failed run
leaves the previous good report untouched and keeps `metrics-summary.failed.ipynb` beside it.

Where the notebook runs: one period alone runs in this process (`InProcessSession`, papermill
with an in-process engine); several periods, the fleet and `render` without a session run in
kernels (`KernelSession`, kept across periods; a new kernel per call otherwise). The record and
the report are the same either way (tested). Measured on the sample, 2 cores shared with other
work (load 2.5-3.5): a one-period `report` took 7.9-11 s with a kernel (its start and imports
2.0 s, the Vega bundle built 1.7 s, the cells 1.2 s, the HTML export 0.6 s, the interpreter's
exit 0.5 s); in-process 2.8-3.0 s at best, 3.0-3.2 s median (benchmarks/report_bench.py).
"""

# ruff: noqa: E402 (a module is kept from importing before the imports: see NOT_IMPORTED)
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import html
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

# jsonschema (which nbformat, papermill and altair import) imports rfc3987_syntax when it is
# installed (jupyter's dependencies install it), and that module builds a Lark grammar while it
# is imported: 7.7 s measured with the 2 cores busy (load 7), in this process and again in every
# report kernel. It checks only the "iri" string formats, which neither the Vega-Lite schema altair
# checks charts against nor Amazon's schema of the metrics document uses; without it jsonschema
# leaves those formats unchecked. Set before the first import of jsonschema.
NOT_IMPORTED = ("rfc3987_syntax",)
for _name in NOT_IMPORTED:
    sys.modules.setdefault(_name, None)  # type: ignore[arg-type]

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
    # the report's own seconds: without the time it waited for a kept kernel (`KernelSession`)
    # that was starting or running another period's notebook
    seconds: float = 0.0
    kernel_seconds: float = 0.0  # of those, spent starting a kernel for it

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


_exporters: queue.SimpleQueue = queue.SimpleQueue()  # built HTML exporters not in use


def _new_exporter():
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
    _keep_compiled_templates(exporter)
    _plain_soup_selects()
    return exporter


def _has_class(tag, name: str) -> bool:
    return name in (tag.get("class") or ()) if hasattr(tag, "get") else False


# What nbconvert's HTMLExporter selects in its last step (images without alt text, the cells'
# input and output areas made focusable), found by walking the tree: soupsieve compiled these
# three selectors in 0.18 s of every process's first report (its regular expressions), and then
# matched them in 0.07-0.11 s per report. The same elements (tested against soupsieve).
_PLAIN_SELECTS = {
    "img:not([alt])": lambda soup: [t for t in soup.find_all("img") if "alt" not in t.attrs],
    ".jp-Notebook div.jp-Cell-inputWrapper": lambda soup: [
        t
        for t in soup.find_all("div", class_="jp-Cell-inputWrapper")
        if any(_has_class(p, "jp-Notebook") for p in t.parents)
    ],
    ".jp-Notebook div.jp-OutputArea-output": lambda soup: [
        t
        for t in soup.find_all("div", class_="jp-OutputArea-output")
        if any(_has_class(p, "jp-Notebook") for p in t.parents)
    ],
}


@functools.cache
def _plain_soup_selects() -> None:
    """Have nbconvert's HTML exporter parse its page with a BeautifulSoup whose `select` of the
    selectors in `_PLAIN_SELECTS` walks the tree instead of asking soupsieve; any other selector
    (another nbconvert version's) goes to soupsieve as before."""
    import nbconvert.exporters.html as nbconvert_html

    base = nbconvert_html.BeautifulSoup
    if getattr(base, "plain_selects", False):
        return

    class Soup(base):
        plain_selects = True

        def select(self, selector, *args, **kwargs):
            plain = _PLAIN_SELECTS.get(selector)
            if plain is None or args or kwargs:
                return super().select(selector, *args, **kwargs)
            return plain(self)

    nbconvert_html.BeautifulSoup = Soup


def _keep_compiled_templates(exporter) -> None:
    """Keep the Python code Jinja compiles the report's templates to in the on-disk cache's
    folder (`jinja/`): compiling them took 0.2 s of every process's first report. Jinja's own
    bytecode cache: an entry is used only for the same template source (its checksum) and
    Python version, else compiled again. Not with `--no-cache`, nor in a folder others can write."""
    from analysis.inputs import cache

    if not cache.enabled():
        return
    from jinja2 import FileSystemBytecodeCache

    folder = cache.root() / "jinja"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(folder, follow_symlinks=False)
    except OSError:
        return
    # compiled code is run when loaded: kept only in a folder of this user's that no one else can
    # write (a cache folder shared by an agency's workers keeps no code)
    if not private_folder(st):
        return
    exporter.environment.bytecode_cache = FileSystemBytecodeCache(str(folder))


def private_folder(st: os.stat_result) -> bool:
    """A real folder owned by this user, not writable by its group or others."""
    import stat

    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return stat.S_ISDIR(st.st_mode) and mine and not st.st_mode & 0o022


@contextlib.contextmanager
def _exporter() -> Iterator:
    """An HTML exporter of this process's pool, for one thread at a time: each is built once, so
    its Jinja templates are compiled once rather than once per report (a quarter of a second),
    and `render_many` can build one while its kernels start."""
    try:
        exporter = _exporters.get_nowait()
    except queue.Empty:
        exporter = _new_exporter()
    try:
        yield exporter
    finally:
        _exporters.put(exporter)


# The SHA-256 of the bundle each pinned vl-convert / Vega-Lite pair builds. The bundle is script
# inlined into every report, and a cache folder may be shared (an agency's workers): a stored
# bundle is used only when it is exactly this text, so a file written into the cache folder by
# anyone else can never put its script into a report.
KNOWN_BUNDLES = {
    "1.9.0-v6_4": "3425bd951a44d478d0505c6b5d1e8d57656b6e9a4da7bfe88a718ce61d76e572",
}


@functools.cache
def vega_bundle() -> str:
    """`charts.vega_bundle()` (vl-convert's offline Vega bundle, the same text for the same
    vl-convert and Vega-Lite versions), kept in the on-disk cache's folder (`vega/`): vl-convert
    builds it in 1.7-3.2 s on 2 busy cores, every process, which was the longest step of a
    single report. Stored and read only for a version in KNOWN_BUNDLES, and only when its text
    has that SHA-256: a damaged or replaced file is built again. No cache (`--no-cache`) or a cache folder that cannot be
    written: built in memory, as before."""
    from analysis.inputs import cache

    if not cache.enabled():
        return charts.vega_bundle()
    import hashlib

    import vl_convert as vlc

    name = re.sub(r"[^\w.-]", "_", f"{getattr(vlc, '__version__', 'unknown')}-{charts.vl_version()}")
    known = KNOWN_BUNDLES.get(name)
    if known is None:  # a version whose bundle we have not checked: built every time, never stored
        return charts.vega_bundle()
    path = cache.root() / "vega" / f"bundle-{name}.js"
    try:
        seal, _, body = path.read_bytes().decode("utf-8").partition("\n")  # bytes: no newline translation
        if seal == known and hashlib.sha256(body.encode("utf-8")).hexdigest() == known:
            return body
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    body = charts.vega_bundle()
    if hashlib.sha256(body.encode("utf-8")).hexdigest() != known:
        return body  # not the bundle this version built when pinned: used, never stored
    with contextlib.suppress(OSError):
        _atomic_write(path, hashlib.sha256(body.encode("utf-8")).hexdigest() + "\n" + body)
    return body


def export_html(notebook: nbformat.NotebookNode) -> str:
    with _exporter() as exporter:
        body, _ = exporter.from_notebook_node(
            notebook, resources={"vega_bundle": vega_bundle(), "report_css": REPORT_CSS}
        )
    return body


def _atomic_write(path: Path, text: str | bytes) -> None:
    """`path` replaced whole (readers never see half a file) through a new temporary file beside
    it (created exclusively: an existing file or link of that name is never written through); a
    failure removes it and names `path`, not the temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a run killed mid-write leaves a file the next run can clear
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent)
    try:
        if isinstance(text, bytes):
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
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


def _papermill(notebook: Path, out: Path, params: dict, progress: bool, **kernel) -> None:
    """papermill as every report runs it (python3 kernel, the project folder, 15 minutes per
    cell); `kernel`: how its kernel is started or which kept one it uses."""
    import papermill as pm

    def literal(path: Path) -> str:  # papermill fills "{name}" in paths from the parameters
        return str(path).replace("{", "{{").replace("}", "}}")

    pm.execute_notebook(
        literal(notebook),
        literal(out),
        parameters=params,
        kernel_name="python3",
        progress_bar=progress,
        cwd=str(config.PROJ_ROOT),
        execution_timeout=900,
        **kernel,
    )


def _execute(notebook: Path, out: Path, params: dict, progress: bool) -> float:
    """Run the notebook; returns the seconds spent starting its kernel."""
    _patch_kernel_start()
    _local.kernel = 0.0
    _papermill(notebook, out, params, progress, start_timeout=120, kernel_manager_class=_ipc_kernel_manager())
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


# ------------------------------------------------------------------ in-process execution

# A single report run (`report` for one period) executes its notebook in this process instead of
# a kernel: the kernel's start (0.2 s) and the kernel importing polars, scipy, altair and the
# suite a second time (1.8-2.5 s, on a second core that other work wants too) cost more than the
# cells themselves (1.2 s). papermill still runs it (parameters injected, the executed notebook
# written as the record, a failing cell raised as `PapermillExecutionError`); only its engine
# differs: the cells run in an IPython shell of this process whose display publisher, display
# hook, streams and tracebacks become the outputs ipykernel's messages would have become in
# nbclient (the same JSON round trip, the same `output_from_msg`), so the record and the report
# are those of a kernel run (tested).
INPROCESS_ENGINE = "account-health-inprocess"
_inprocess_lock = threading.Lock()  # one in-process notebook at a time (one IPython shell)
_MISSING = object()


def in_process_available() -> bool:
    """Whether notebooks can run in this process: not when it already has an IPython shell (a
    JupyterLab kernel calling `render_many`, say), which the notebook's shell would replace."""
    from IPython.core.interactiveshell import InteractiveShell

    return not InteractiveShell.initialized()


class InProcessSession:
    """`KernelSession`'s interface (`warm`, `execute`, `close`), running each notebook in this
    process (`INPROCESS_ENGINE`). Each notebook gets a new shell (empty namespace, execution
    count 1), as a new kernel would; what the shell and the notebooks change in the process
    (warning filters, `__main__`, builtins, standard output, Altair's renderer; papermill puts the
    working folder back) is put back after each notebook. Modules stay imported, as in a kept
    kernel (`KernelSession`).
    No cell timeout: a cell runs until it ends (a kernel's cell is stopped after 15 minutes)."""

    in_process = True

    def __init__(self) -> None:
        self.reports = 0
        self.starts = 0

    def __enter__(self) -> InProcessSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def warm(self) -> None:
        _inprocess_engine()

    def execute(self, notebook: Path, out: Path, params: dict, progress: bool) -> float:
        with _inprocess_lock:
            self.reports += 1
            _papermill(
                notebook,
                out,
                params,
                progress,
                engine_name=_inprocess_engine(),
                # written once at the end (or on a failure), not before and after every cell
                request_save_on_cell_execute=False,
            )
        return 0.0

    def close(self) -> None:
        pass


@functools.cache
def _inprocess_engine() -> str:
    """Register the in-process engine with papermill; returns its name."""
    from papermill.engines import Engine, papermill_engines

    class InProcessEngine(Engine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs) -> None:
            _run_in_process(nb_man)

    papermill_engines.register(INPROCESS_ENGINE, InProcessEngine)
    return INPROCESS_ENGINE


# ipykernel's `IPythonKernel.language_info`, which nbclient copies into the notebook's metadata
# after the cells (importing ipykernel.ipkernel for it costs a quarter of a second)
LANGUAGE_INFO = {
    "name": "python",
    "version": sys.version.split()[0],
    "mimetype": "text/x-python",
    "codemirror_mode": {"name": "ipython", "version": sys.version_info[0]},
    "pygments_lexer": "ipython3",
    "nbconvert_exporter": "python",
    "file_extension": ".py",
}


def _run_in_process(nb_man) -> None:
    """papermill's nbclient engine's loop (`PapermillNotebookClient.papermill_execute_cells`), each
    cell run by `_shell_class().run_notebook_cell` instead of a kernel."""
    import builtins

    from nbclient.exceptions import CellExecutionError

    shell_class = _shell_class()
    main = sys.modules.get("__main__", _MISSING)
    names = {k: builtins.__dict__.get(k, _MISSING) for k in ("__IPYTHON__", "display")}
    renderer = (charts.alt.renderers.active, dict(charts.alt.renderers.options))  # the report switches it
    with warnings.catch_warnings():  # the filters the shell and the notebook set are put back
        # warnings shown as a kernel shows them, on the cell's standard error (not as this
        # process's own handler, the CLI's or pytest's, would)
        warnings.showwarning = _show_warning
        from traitlets.config import Config

        shell_config = Config()
        shell_config.HistoryManager.hist_file = ":memory:"  # no history file, no thread writing it
        shell = shell_class.instance(config=shell_config)
        try:
            for index, cell in enumerate(nb_man.nb.cells):
                try:
                    nb_man.cell_start(cell, index)
                    shell.run_notebook_cell(cell)
                except CellExecutionError as ex:
                    nb_man.cell_exception(nb_man.nb.cells[index], cell_index=index, exception=ex)
                    break
                finally:
                    nb_man.cell_complete(nb_man.nb.cells[index], cell_index=index)
            nb_man.nb.metadata["language_info"] = json.loads(json.dumps(LANGUAGE_INFO))
        finally:
            import atexit

            atexit.unregister(shell.atexit_operations)
            with contextlib.suppress(Exception):
                shell.reset(new_session=False)  # the namespace's objects freed now
            shell_class.clear_instance()
            if main is _MISSING:
                sys.modules.pop("__main__", None)
            else:
                sys.modules["__main__"] = main
            for k, v in names.items():
                if v is _MISSING:
                    builtins.__dict__.pop(k, None)
                else:
                    builtins.__dict__[k] = v
            with contextlib.suppress(Exception):
                charts.alt.renderers.enable(renderer[0], **renderer[1])


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The standard library's way of showing a warning (`warnings.showwarning` unchanged)."""
    with contextlib.suppress(OSError, AttributeError):
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


@functools.cache
def _shell_class() -> type:
    """An IPython shell whose outputs become a notebook cell's outputs, as ipykernel's shell sends
    them (`ZMQDisplayPublisher`, `ZMQShellDisplayHook`, `_showtraceback`, `OutStream`) and
    nbclient turns its messages into outputs."""
    import io

    from ipykernel.compiler import XCachingCompiler
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from jupyter_client.session import Session
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import output_from_msg
    from traitlets import Type

    session = Session()  # its packer and unpacker: the JSON round trip of a kernel's messages

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, *args, transient=None, update=False, **kwargs) -> None:
            msg_type = "update_display_data" if update else "display_data"
            self.shell.emit(
                msg_type, {"data": data, "metadata": metadata or {}, "transient": transient or {}}
            )

        def clear_output(self, wait: bool = False) -> None:
            self.shell.clear(wait)

    class Hook(DisplayHook):
        msg: dict | None = None

        def start_displayhook(self) -> None:
            self.msg = {"data": {}, "metadata": {}}

        def write_output_prompt(self) -> None:
            if self.msg is not None:
                self.msg["execution_count"] = self.prompt_count

        def write_format_data(self, format_dict, md_dict=None) -> None:
            if self.msg is not None:
                self.msg["data"], self.msg["metadata"] = format_dict, md_dict

        def finish_displayhook(self) -> None:
            msg, self.msg = self.msg, None
            if msg and msg["data"]:
                self.shell.emit("execute_result", msg)

    class Stream(io.TextIOBase):
        """A cell's standard output or error, as ipykernel's `OutStream`: what the cell's thread
        writes is kept until a flush (its own, or before a display, a result, an error, a
        clear_output, and at the cell's end: standard output first) and becomes one stream
        output then; other threads of this process write to `fallback`, as before. (A kernel
        also flushes every 0.2 s: a cell writing for longer shows its text in more pieces.)"""

        def __init__(self, shell, name: str, fallback) -> None:
            self.shell, self.stream_name, self.fallback = shell, name, fallback
            self.thread = threading.get_ident()

        @property
        def encoding(self) -> str:
            return "utf-8"

        def writable(self) -> bool:
            return True

        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> int:
            if not isinstance(text, str):
                raise TypeError(f"write() argument must be str, not {type(text).__name__}")
            if threading.get_ident() != self.thread:
                return self.fallback.write(text) if self.fallback is not None else len(text)
            if text:
                self.shell.pending[self.stream_name].append(text)
            return len(text)

        def flush(self) -> None:
            if threading.get_ident() != self.thread:
                if self.fallback is not None:
                    self.fallback.flush()
            else:
                self.shell.flush_stream(self.stream_name)

    class Shell(InteractiveShell):
        displayhook_class = Type(Hook)
        display_pub_class = Type(Publisher)
        # ipykernel's: a cell's code is named /tmp/ipykernel_<pid>/<hash of the code>.py, as
        # warnings and tracebacks show it
        compiler_class = Type(XCachingCompiler)

        def init_virtualenv(self) -> None:
            pass  # this process's sys.path is the one the notebook should see

        def run_notebook_cell(self, cell) -> None:
            """Run a code cell as nbclient runs it in a kernel (skipped: empty, or tagged
            skip-execution); a failure raises CellExecutionError, as nbclient does."""
            if cell.cell_type != "code" or not cell.source.strip():
                return
            if "skip-execution" in cell.metadata.get("tags", []):
                return
            self._outputs = cell.outputs = []
            self._clear_next = False
            self._display_ids: dict[str, list] = {}
            self._error: dict | None = None
            self._hook_failed = False
            self.pending: dict[str, list[str]] = {"stdout": [], "stderr": []}
            cell["execution_count"] = self.execution_count
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = Stream(self, "stdout", stdout), Stream(self, "stderr", stderr)
            try:
                result = self.run_cell(cell.source, store_history=True)
            finally:
                sys.stdout, sys.stderr = stdout, stderr
                self.flush_streams()
            failed = result.error_in_exec or result.error_before_exec
            if isinstance(failed, KeyboardInterrupt):
                raise KeyboardInterrupt  # Ctrl-C stops the run, as it stops a kernel's report
            # as ipykernel replies: an error in the cell's code or in formatting its result fails
            # it (the cells after it are not run); an error output of a display() does not (papermill
            # raises it after the last cell)
            if failed is not None or self._hook_failed:
                raise CellExecutionError.from_cell_and_msg(cell, self._error or {})

        # ---------------------------------------------------------------- outputs

        def emit(self, msg_type: str, content: dict) -> None:
            if msg_type != "stream":
                self.flush_streams()
            content = session.unpack(session.pack(content))
            msg = {"msg_type": msg_type, "header": {"msg_type": msg_type}, "content": content}
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id and msg_type in ("display_data", "execute_result", "update_display_data"):
                shown = msg_type.replace("update_", "")
                update = output_from_msg({**msg, "msg_type": shown, "header": {"msg_type": shown}})
                for out in self._display_ids.get(display_id, []):
                    out["data"], out["metadata"] = update["data"], update["metadata"]
            if msg_type == "update_display_data":
                return
            out = output_from_msg(msg)
            if self._clear_next:
                self._outputs[:] = []
                self._display_ids.clear()
                self._clear_next = False
            if display_id:
                self._display_ids.setdefault(display_id, []).append(out)
            self._outputs.append(out)

        def flush_stream(self, name: str) -> None:
            text = "".join(self.pending[name])
            self.pending[name].clear()
            if text:
                self.emit("stream", {"name": name, "text": text})

        def flush_streams(self) -> None:
            self.flush_stream("stdout")
            self.flush_stream("stderr")

        def clear(self, wait: bool) -> None:
            self.flush_streams()
            if wait:
                self._clear_next = True
            else:
                self._outputs[:] = []
                self._display_ids.clear()

        def _showtraceback(self, etype, evalue, stb) -> None:
            content = {"traceback": stb, "ename": str(etype.__name__), "evalue": str(evalue)}
            if self.displayhook.msg is not None:
                self._hook_failed = True
            self._error = content
            self.emit("error", content)
            self._last_traceback = stb

    return Shell


# What the report notebook imports: a kept kernel imports it when it starts (`KernelSession.warm`
# starts it while the caller computes something else), so no report waits for these imports.
REPORT_IMPORTS = (
    "analysis.report.charts",
    "analysis.report.context",
    "analysis.report.defect_sections",
    "analysis.report.render",
    "analysis.report.sections",
    "analysis.report.summary",
    "IPython.display",
)
# Run silently (no output, no execution count) in a kept kernel. After its start: the imports, then
# the warning filters as they stand (kept to restore), then a reset. Before every notebook after
# the first: the reset alone, which gives the notebook the kernel a fresh start gives it (empty
# namespace, history and output cache, execution count 1, the same warning filters and so every
# module's "already warned" registry invalidated), with the modules already imported.
_RESET = (
    "import warnings\n"
    "warnings.filters[:] = get_ipython()._account_health_warning_filters\n"
    "warnings._filters_mutated()\n"
    "get_ipython().reset(new_session=True)\n"
    "__import__('gc').collect()\n"
)
_KEEP_FILTERS = "import warnings\nget_ipython()._account_health_warning_filters = list(warnings.filters)\n"


class KernelSession:
    """One kernel kept for many reports of this process (a fleet worker renders a report per
    account): started once and reset before each notebook, so a report costs its cells and its
    export, not a kernel start and the kernel importing polars, altair and the suite again.

    The executed notebook is the record a fresh kernel gives: same cells, outputs and execution
    counts (the reset empties the namespace, history and output cache, sets the count back to 1
    and restores the warning filters). Modules the notebooks import stay imported: that is the
    saving, and the suite keeps no state in them between reports (charts' chart counter starts
    again in `use_offline_renderer`; computed values are cached on each run's own dataset).

    Every call to the kernel runs on the session's own thread: the kernel's sockets belong to
    that thread's event loop, and the kernel is launched from it through KERNEL_GUARD, so it dies
    with this process. A kernel that died, timed out or failed to reset is replaced, as is one
    that has run `max_reports` notebooks (a bound on what a long-lived interpreter accumulates).
    `close()` shuts it down; use it as a context manager or close it when done."""

    def __init__(
        self, max_reports: int = 100, start_timeout: float = 120.0, imports: tuple[str, ...] = REPORT_IMPORTS
    ) -> None:
        self.max_reports = max_reports
        self.imports = imports  # imported by each kernel when it starts
        self.start_timeout = start_timeout
        self.reports = 0  # notebooks run by the current kernel
        self.starts = 0  # kernels started by this session
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-kernel")
        self._km = None
        self._dirty = False  # a notebook ran since the last reset
        self._closed = False

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def warm(self) -> None:
        """Start the kernel (and its imports) and build the offline Vega bundle now, on the
        session's thread, while the caller computes something else; returns at once. The next
        `execute` waits for it. Nothing happens when a kernel is up.

        papermill and jupyter_client are imported first, on the caller's thread: imported on the
        session's thread while the caller imported papermill too, a run failed at random with
        "cannot import name 'AsyncKernelManager' from partially initialized module"."""
        if not self._closed and self._km is None:
            _import_kernel_modules()
            self._pool.submit(self._warm)

    def execute(self, notebook: Path, out: Path, params: dict, progress: bool) -> float:
        """Run the notebook as `_execute` does, in the kept kernel; returns the seconds spent
        starting a kernel for it (0 when the kept one, or one warmed beforehand, was used)."""
        if self._closed:
            raise RuntimeError("this kernel session is closed")
        asked = time.perf_counter()
        began: list[float] = []

        def run() -> float:
            began.append(time.perf_counter())
            return self._execute(notebook, out, params, progress)

        try:
            return self._pool.submit(run).result()
        finally:
            # the time this notebook waited for the kernel to finish another's (threads sharing
            # a session): `render` leaves it out of the report's own seconds
            _local.waited = getattr(_local, "waited", 0.0) + ((began or [time.perf_counter()])[0] - asked)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._pool.submit(self._stop).result()
        finally:
            self._pool.shutdown(wait=True)

    # --------------------------------------------------------- on the session's thread only

    @staticmethod
    def _run(coro):
        from jupyter_core.utils import ensure_event_loop

        # the same loop nbclient's synchronous wrappers use on this thread
        return ensure_event_loop().run_until_complete(coro)

    def _warm(self) -> None:
        with contextlib.suppress(Exception):  # a failure shows again, and is raised, in `execute`
            if self._km is None:
                self._start()
            vega_bundle()

    def _execute(self, notebook: Path, out: Path, params: dict, progress: bool) -> float:
        from papermill.exceptions import PapermillExecutionError

        started = self._ready()
        self.reports += 1
        self._dirty = True
        try:
            _papermill(
                notebook,
                out,
                params,
                progress,
                start_timeout=int(self.start_timeout),
                km=self._km,
                # written once at the end (or on a failure), not after every cell: the record is
                # the same file, without rewriting a notebook of megabytes 30 times
                request_save_on_cell_execute=False,
            )
        except PapermillExecutionError:
            raise  # a cell failed; the kernel is sound and is reset before the next notebook
        except BaseException:
            self._stop()  # timed out, died, interrupted: not to be trusted with another report
            raise
        finally:
            if self._km is not None:
                self._km.release_clients()
                # reset now, while the caller exports this report (and a fleet worker computes
                # its next account); a notebook already waiting for the kernel resets it itself
                with contextlib.suppress(RuntimeError):  # the session's pool is shutting down
                    self._pool.submit(self._tidy)
        return started

    def _tidy(self) -> None:
        """Reset the kernel a notebook has run in (a kernel that cannot reset is stopped; the
        next notebook starts a new one)."""
        if self._closed or self._km is None or not self._dirty:
            return
        try:
            self._silent(_RESET)
            self._dirty = False
        except Exception:
            self._stop()

    def _ready(self) -> float:
        """A kernel ready for a notebook: the kept one (reset when a notebook ran in it), or a
        new one. Returns the seconds spent starting one."""
        if self._km is not None:
            if self.reports < self.max_reports and self._run(self._km.is_alive()):
                try:
                    if self._dirty:
                        self._silent(_RESET)
                        self._dirty = False
                    return 0.0
                except Exception:
                    pass  # a kernel that cannot reset is replaced
            self._stop()
        t = time.perf_counter()
        self._start()
        return time.perf_counter() - t

    def _start(self) -> None:
        _clean_kernel_dirs()
        km = _kept_kernel_manager()(kernel_name="python3")
        with _start_lock:
            self._run(km.start_kernel(cwd=str(config.PROJ_ROOT)))
        self._km = km
        try:
            start = (
                "".join(f"__import__('sys').modules.setdefault({m!r}, None)\n" for m in NOT_IMPORTED)
                + "".join(f"__import__({m!r})\n" for m in self.imports)
                + _KEEP_FILTERS
                + _RESET
            )
            self._silent(start, timeout=self.start_timeout)
        except BaseException:
            self._stop()
            raise
        self.reports, self._dirty = 0, False
        self.starts += 1

    def _silent(self, code: str, timeout: float = 60.0) -> None:
        """Run `code` silently (no outputs, no execution count) and wait for its reply."""
        kc = self._km.client()
        try:
            # the shell channel alone: its request waits in the socket until the kernel reads it
            kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
            msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
            deadline = time.monotonic() + timeout
            while True:
                reply = self._run(kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic())))
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            if reply["content"].get("status") != "ok":
                raise RuntimeError(
                    f"the kept kernel failed a silent command: {reply['content'].get('ename')}"
                )
        finally:
            self._km.release_clients()

    def _stop(self) -> None:
        km, self._km = self._km, None
        if km is None:
            return
        km.release_clients()
        try:
            self._run(km.shutdown_kernel(now=False))
        except Exception:
            with contextlib.suppress(Exception):
                self._run(km.shutdown_kernel(now=True))


def _import_kernel_modules() -> None:
    """What running a notebook in a kernel imports (papermill, nbclient, jupyter_client), on
    this thread, before a session's thread imports any of it."""
    import papermill  # noqa: F401
    from jupyter_core.utils import ensure_event_loop  # noqa: F401

    _kept_kernel_manager()


@functools.cache
def _kept_kernel_manager() -> type:
    """The IPC kernel manager, remembering the clients it handed out (nbclient leaves the
    client of a kernel it does not own open) so the session closes them after each notebook."""

    class KeptKernelManager(_ipc_kernel_manager()):
        def client(self, **kw):
            c = super().client(**kw)
            self.__dict__.setdefault("_handed_out", []).append(c)
            return c

        def release_clients(self) -> None:
            for c in self.__dict__.pop("_handed_out", []):
                with contextlib.suppress(Exception):
                    c.stop_channels()

    return KeptKernelManager


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
    session: KernelSession | InProcessSession | None = None,
) -> ReportResult:
    """Execute the metrics-summary notebook for one period (ISO week or month) and write its report.

    A period not yet over on the data is refused (PeriodError, nothing written) unless the
    settings allow incomplete periods; `newest` (the newest order day) saves reading the folder
    again when the caller knows it; `session` runs the notebook in that session's kept kernel
    instead of a new one, or in this process (`InProcessSession`): the same record and report,
    without the kernel's start-up."""
    from papermill.exceptions import PapermillExecutionError

    t0 = time.perf_counter()
    _local.waited = 0.0
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
        kernel = (session.execute if session is not None else _execute)(notebook, tmp_nb, params, progress)
    except PapermillExecutionError as exc:
        failed = out / f"{REPORT_NAME}.failed.ipynb"
        os.replace(tmp_nb, failed)
        evalue = " ".join(str(exc.evalue).split())  # one sentence: polars' messages span lines
        raise ReportError(
            f"{account} {p.label}: the report notebook failed in cell {exc.exec_count} ({exc.ename}: {evalue}); "
            f"the executed notebook with the error is kept at {failed}",
            failed,
            p.label,
        ) from exc
    except BaseException:
        tmp_nb.unlink(missing_ok=True)
        raise
    try:  # interrupted (Ctrl-C) while exporting: the running notebook is not left behind
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
    finally:
        tmp_nb.unlink(missing_ok=True)
    (out / f"{REPORT_NAME}.failed.ipynb").unlink(missing_ok=True)
    if index:
        write_index(Path(out_root))
    own = time.perf_counter() - t0 - getattr(_local, "waited", 0.0)  # less the wait for a shared kernel
    return ReportResult(out / f"{REPORT_NAME}.html", out / f"{REPORT_NAME}.ipynb", p.label, own, kernel)


def render_many(
    data_dir: str | Path,
    periods: list[str],
    settings: Settings | None = None,
    *,
    jobs: int = 1,
    progress: bool = True,
    **kw,
) -> tuple[list[ReportResult], list[ReportError]]:
    """Render several periods; failures do not stop the others.

    `jobs` kept kernels (`KernelSession`) render the periods, each one after another: started
    while this process reads the data and builds its HTML exporter, then reset before each
    notebook, so a period costs its cells, not a kernel start and the kernel's imports. Two
    threads per kernel: one period's HTML export and files are written while the kernel runs the
    next period's notebook. The reports are those `render` writes alone (tested).

    One period (and no session given): its notebook runs in this process (`InProcessSession`),
    on this thread, without a kernel: a kernel's start and its imports would be paid for one
    notebook only. In a process that already runs an IPython shell, a kernel as above."""
    from tqdm.auto import tqdm

    given = kw.pop("session", None)  # the caller's kept kernel (left open), else kernels of our own
    if given is None and len(periods) == 1 and in_process_available():
        return _render_in_process(data_dir, periods[0], settings, progress=progress, **kw)
    sessions = [given] if given else [KernelSession() for _ in range(min(max(1, jobs), len(periods)))]
    try:
        for s in sessions:
            s.warm()
        if kw.get("newest") is None:
            data = sources.load(data_dir)
            health.require_usable(data)
            kw["newest"] = health.newest_order_day(data)
        if sessions:
            import papermill  # noqa: F401  (imported while the kernels start)

            with _exporter():
                pass  # one exporter built while the kernels start
        results: list[ReportResult] = []
        errors: list[ReportError] = []
        cell_bars = progress and len(periods) == 1
        bar = tqdm(
            total=len(periods), desc="reports", unit="report", disable=not progress or len(periods) == 1
        )
        with ThreadPoolExecutor(max_workers=max(1, 2 * len(sessions))) as pool:
            futures = {
                pool.submit(
                    render, data_dir, settings, period=p, progress=cell_bars, index=False,
                    session=sessions[i % len(sessions)], **kw,
                ): p
                for i, p in enumerate(periods)
            }  # fmt: skip
            for fut in as_completed(futures):
                try:
                    results.append(fut.result())
                except ReportError as exc:
                    errors.append(exc)
                bar.update(1)
        bar.close()
    finally:
        for s in sessions:
            if s is not given:
                s.close()
    write_index(Path(kw.get("out_root", config.REPORTS_DIR)))
    return sorted(results, key=lambda r: r.period), errors


def _render_in_process(
    data_dir: str | Path, period: str, settings: Settings | None, *, progress: bool, **kw
) -> tuple[list[ReportResult], list[ReportError]]:
    """`render_many` of one period, its notebook run in this process (`InProcessSession`) on this
    thread. The objects alive now (the imported modules, the data) are left out of the garbage
    collector's full passes until the report is written, and out of the one at this process's
    exit: each scan of them took 0.1-0.4 s (a thread readying the HTML export beside the cells
    was measured too: no faster, the cells hold the interpreter)."""
    frozen = gc.get_freeze_count() == 0  # a caller's own frozen objects are left alone
    if frozen:
        gc.freeze()
    _freeze_at_exit()
    try:
        with InProcessSession() as session:
            results = [
                render(
                    data_dir, settings, period=period, progress=progress, index=False, session=session, **kw
                )
            ]
        errors: list[ReportError] = []
    except ReportError as exc:
        results, errors = [], [exc]
    finally:
        if frozen:
            gc.unfreeze()
    write_index(Path(kw.get("out_root", config.REPORTS_DIR)))
    return results, errors


@functools.cache
def _freeze_at_exit() -> None:
    """At this process's exit, keep what is alive then out of the interpreter's last collection
    (0.3-0.5 s of a report run's exit): the process ends, its memory goes with it."""
    import atexit

    atexit.register(gc.freeze)


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
