"""Every account of an accounts file in one run, on Dask: one task per account on a LocalCluster of
worker processes (or on the cluster of a scheduler address), then `reports/fleet/<period>/`
holding fleet.json (every account's row) and index.html (the fleet page, worst first).

    from analysis.fleet.run import run
    res = run("accounts.toml", period="2026-W46", workers=2, reports=True)
    res.exit_code   # 0, or 1 when an account failed (everything is written either way)

Failure isolation: an account whose data is bad, or whose task crashes, is a failed row with its
one-sentence reason; the other accounts finish. A worker process that dies (killed, out of memory)
has its account retried once on a worker that lives, then marked failed: on a LocalCluster the
scheduler allows one failure per task (`distributed.scheduler.allowed-failures = 1`); a remote
scheduler applies its own setting (Dask's default retries 3 times). Problems with the run itself
(the accounts file, the period, an unreachable scheduler or SMTP server) are one sentence before any
account is computed (UsageError, SettingsError, PeriodError, DeliveryError: the CLI's exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from analysis import __version__, config, safety
from analysis.deliver import email as mail
from analysis.errors import PeriodError, UsageError
from analysis.fleet import accounts as fleet_accounts
from analysis.fleet import page, task
from analysis.inputs import cache
from analysis.report import render
from analysis.report.periods import parse_period

FLEET_DIR = "fleet"  # reports/fleet/<period>/
JSON_NAME, PAGE_NAME = "fleet.json", "index.html"
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)  # as the CLI's days
SCHEDULER_TIMEOUT = "15s"
# what a LocalCluster's workers get in their environment: one polars thread each, since each
# worker process (and its report kernel) already has a core of its own
WORKER_ENV = {"POLARS_MAX_THREADS": "1"}
# Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536 (memory handed back to the system at
# once), which also turns off glibc's adaptive thresholds: every allocation above 128 kB became a
# fresh mapping, page-faulted in and unmapped again (18 million faults, a fifth of the CPU of a
# 200-account run). These are glibc's own thresholds once it has adapted: that run 133 -> 112 s.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}

Progress = Callable[[int, int, dict], None]


@dataclass
class FleetResult:
    period: str  # the folder's period label (or "latest" when no account could say)
    as_of: str | None
    folder: Path  # reports/fleet/<period>
    json_path: Path
    page_path: Path
    rows: list[dict]  # fleet.json's accounts, in the accounts file's order
    seconds: float = 0.0
    dashboard: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # account -> seconds inside its task
    cpu: dict[str, float] = field(default_factory=dict)  # account -> CPU seconds (worker and kernel)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when every account succeeded, 1 when one failed (after everything was written)."""
        return 1 if self.failed else 0


def run(
    accounts_file: str | Path,
    *,
    period: str | None = None,
    as_of: dt.date | str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    reports: bool = False,
    email: bool = False,
    out_root: str | Path = config.REPORTS_DIR,
    progress: bool | Progress | None = None,
    dashboard: bool = False,
    allow_incomplete: bool = False,
    say: Callable[[str], None] | None = None,
    task_fn: Callable[[task.Job], dict] | None = None,
) -> FleetResult:
    """Compute every account of the accounts file and write reports/fleet/<period>/.

    period: a week (2026-W46) or month (2026-10); as_of: a day (the 7 days ending on it); neither:
    each account's latest complete week. scheduler: a Dask scheduler address (tcp://host:8786),
    else a LocalCluster of `workers` processes (default: one per core, at most one per account).
    reports: render each account's report (reports/<account>/<period>/) and the reports index;
    email: send each account's e-mail (recipients from the accounts file or its settings' [email],
    SMTP credentials from AH_SMTP_USER / AH_SMTP_PASSWORD of the workers' environment).
    progress: None shows a bar on a terminal, True always, False never, or a function called
    (done, total, row) as each account finishes. dashboard: say the Dask dashboard's address.
    say: where messages go (default: standard error). task_fn: the per-account function (tests)."""
    t0 = time.perf_counter()
    say = say or _stderr
    label = period_label(period, as_of)
    accts = fleet_accounts.read(accounts_file, allow_incomplete=allow_incomplete)
    out_root = Path(out_root).resolve()
    _check_out_root(out_root, accts, reports)
    if scheduler and workers:
        raise UsageError(
            "--workers sets the size of a local cluster; with --scheduler the cluster's own workers run the accounts."
        )
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1 worker process.")
    workers = workers or max(1, min(os.cpu_count() or 1, len(accts)))
    mails = _mails(accts, Path(accounts_file)) if email else {}
    jobs = [
        task.Job(
            name=a.name,
            data=str(a.data),
            settings=a.settings.to_dict(),
            period=label,
            reports=reports,
            out_root=str(out_root),
            mail=dataclasses.asdict(mails[a.name]) if a.name in mails else None,
            cache_dir=os.environ.get(cache.CACHE_ENV) or None,
            use_cache=cache.enabled(),
        )
        for a in accts
    ]
    with _client(scheduler, workers, dashboard) as client:
        link = client.dashboard_link if dashboard else None
        if link:
            say(f"Dask dashboard: {link}{_dashboard_note(link)}")
        rows = _gather(client, jobs, task_fn or task.process, progress)
        with contextlib.suppress(Exception):
            client.run(task.close_session)  # every worker's kept report kernel
    timings = {r["name"]: r.pop("seconds", 0.0) for r in rows}
    cpu = {r["name"]: r.pop("cpu", 0.0) for r in rows}
    folder_label = label or _newest_label(rows)
    fleet_as_of = parse_period(folder_label).as_of.isoformat() if folder_label != "latest" else None
    folder = out_root / FLEET_DIR / safety.folder_name(folder_label, "The period folder")
    doc = {"period": folder_label, "asOf": fleet_as_of, "version": __version__, "accounts": rows}
    folder.mkdir(parents=True, exist_ok=True)
    render.clean_leftovers(folder)
    json_path, page_path = folder / JSON_NAME, folder / PAGE_NAME
    render._atomic_write(json_path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    settings_of = {a.name: a.settings for a in accts}
    render._atomic_write(page_path, page.build(doc, settings_of, index_link=reports))
    if reports:
        render.write_index(out_root)
    return FleetResult(
        folder_label, fleet_as_of, folder, json_path, page_path, rows,
        time.perf_counter() - t0, link, timings, cpu,
    )  # fmt: skip


def period_label(period: str | None, as_of: dt.date | str | None) -> str | None:
    """The period every account is computed for (None: each account's latest complete week)."""
    if period and as_of:
        raise UsageError("Give a period (--week or --month) or --as-of, not both.")
    if as_of is not None:
        if isinstance(as_of, str):
            try:
                as_of = dt.date.fromisoformat(as_of)
            except ValueError:
                raise PeriodError(
                    f"'{safety.terminal_text(as_of)}' is not a date; write it as YYYY-MM-DD."
                ) from None
        period = as_of.isoformat()
    if not period:
        return None
    p = parse_period(period)
    if not FIRST_DAY <= p.as_of <= LAST_DAY:
        raise PeriodError(
            f"The period {safety.terminal_text(p.label)} is outside the days this suite computes "
            f"({FIRST_DAY} to {LAST_DAY}); give a period within your data."
        )
    return p.label


def _check_out_root(out_root: Path, accts: list[fleet_accounts.Account], reports: bool) -> None:
    if out_root.exists() and not out_root.is_dir():
        raise UsageError(
            f"--out {safety.terminal_text(out_root)} is a file; give the folder the reports go in."
        )
    for a in accts:
        own = out_root / a.name  # reports/<account>/: the account's reports go in it
        if reports and (own.exists() or own.is_symlink()) and not own.is_dir():
            raise UsageError(
                f"{safety.terminal_text(own)} is a file, not a folder: account "
                f"'{safety.terminal_text(a.name)}' cannot write its reports there; move it or give another --out."
            )
        if out_root == a.data or a.data in out_root.parents:
            raise UsageError(
                f"--out {safety.terminal_text(out_root)} is inside the data folder of account "
                f"'{safety.terminal_text(a.name)}', whose exports are only read; give another folder."
            )


def _mails(accts: list[fleet_accounts.Account], path: Path) -> dict[str, mail.Mail]:
    """Each account's mail (its recipients, its settings' server); every server is tried once
    (connect and log in) before any account is computed, so a wrong host or password is said first."""
    out = {}
    for a in accts:
        to = a.mail_to()
        if not to:
            raise UsageError(
                f"{safety.terminal_text(path)}: account '{safety.terminal_text(a.name)}' has no recipients; "
                'add recipients = ["ops@example.com"] to it, or [email] to = [...] to its settings file.'
            )
        o = a.settings.email
        out[a.name] = mail.Mail(
            to=to,
            sender=o.sender,
            smtp_host=o.smtp_host,
            smtp_port=o.smtp_port or (465 if o.security == "ssl" else 25),
            security=o.security,
        )
    for server in {(m.smtp_host, m.smtp_port, m.security): m for m in out.values()}.values():
        mail.check(server)
    return out


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int, dashboard: bool) -> Iterator:
    """A Dask client: of the cluster at `scheduler`, or of a LocalCluster of `workers`
    single-threaded processes (closed when the run ends)."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(
                f"Cannot reach the Dask scheduler at {safety.terminal_text(scheduler)} "
                f"({type(exc).__name__}); start it (dask scheduler) or check the address."
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    saved = dict(os.environ)  # a nanny sets its workers' variables in this process's environment
    with dask.config.set(
        {
            "distributed.nanny.pre-spawn-environ": {
                **dask.config.get("distributed.nanny.pre-spawn-environ", {}),
                **MALLOC_ENV,
            },
            # a task whose worker dies is tried once more, then fails as KilledWorker
            "distributed.scheduler.allowed-failures": 1,
            # a single-threaded worker holds only the task it runs: a killed worker takes no
            # other account down with it
            "distributed.scheduler.worker-saturation": 1.0,
            # what a local run does not need costs its workers' CPU: the statistical profiler
            # (a stack sample every 10 ms), work stealing (tasks are queued at the scheduler),
            # frequent system and memory polls (an idle pair of workers: 2.6 -> 1.6 CPU s a 30 s)
            "distributed.worker.profile.enabled": False,
            "distributed.scheduler.work-stealing": False,
            "distributed.admin.system-monitor.interval": "5s",
            "distributed.worker.memory.monitor-interval": "1s",
        }
    ):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            # asked for: the usual port (another if taken); else any free port, said to no one
            dashboard_address=":8787" if dashboard else ":0",
            silence_logs=logging.CRITICAL,
            env=WORKER_ENV,
        )
    _restore_environ(saved)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
        _restore_environ(saved)  # (again: a worker started anew after a crash set them again)


def _restore_environ(saved: dict[str, str]) -> None:
    """Put this process's environment back as it was. Dask's nanny runs here and, to start a
    worker, writes the workers' variables into `os.environ` (OMP_NUM_THREADS=1, the malloc
    thresholds, PYTHONHASHSEED...): left there, every process started after the run (a report
    kernel, a test's command) would inherit them."""
    for name in set(os.environ) - saved.keys():
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _dashboard_note(link: str) -> str:
    """Without bokeh (not a dependency of the suite) the dashboard's live pages say so; its
    plain pages of workers and tasks still work."""
    import importlib.util

    if importlib.util.find_spec("bokeh") is not None:
        return ""
    info = link.rsplit("/", 1)[0] + "/info/main/workers.html"
    return f" (its live pages need bokeh>=3.1 where the scheduler runs; without it: {info})"


def _gather(client, jobs: list[task.Job], fn, progress: bool | Progress | None) -> list[dict]:
    """Submit one task per account and collect the rows as they finish (in the jobs' order)."""
    from dask.distributed import as_completed

    run_id = uuid.uuid4().hex[:12]
    # the biggest accounts first: started last, they would keep one worker busy while the others
    # have nothing left to do (largest first keeps the run's tail short)
    size = [_data_bytes(job.data) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -size[i])
    futures = [
        client.submit(fn, jobs[i], key=f"fleet-{run_id}-{i}", pure=False, retries=1, priority=size[i])
        for i in order
    ]
    where = {f.key: i for f, i in zip(futures, order, strict=True)}
    rows: list[dict | None] = [None] * len(jobs)
    bar = _bar(progress, len(jobs))
    done = 0
    try:
        for fut in as_completed(futures):
            i = where[fut.key]
            rows[i] = _row_of(fut, jobs[i])
            fut.release()
            done += 1
            if callable(progress) and not isinstance(progress, bool):
                progress(done, len(jobs), rows[i])
            elif bar is not None:
                bar.update(1)
                failed = sum(1 for r in rows if r and r["status"] == "failed")
                if failed:
                    bar.set_postfix(failed=failed)
    finally:
        if bar is not None:
            bar.close()
    return rows  # type: ignore[return-value]


def _data_bytes(folder: str) -> int:
    """The size of the files in an account's data folder (0 when it cannot be read here): how
    long its task runs, roughly, for the order tasks are started in."""
    total = 0
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                with contextlib.suppress(OSError):
                    if e.is_file():
                        total += e.stat().st_size
    except OSError:
        return 0
    return total


def _row_of(fut, job: task.Job) -> dict:
    from distributed import KilledWorker

    try:
        row = fut.result()
        if not isinstance(row, dict) or row.get("name") != job.name:
            raise TypeError("the task returned no row for its account")
        return row
    except KilledWorker:
        return task.fail(
            {"name": job.name},
            "its worker process died while computing it, and again when it was retried (killed, or out of "
            "memory); give the workers more memory or look at this account's data size.",
        )
    except (Exception, asyncio.CancelledError) as exc:
        return task.fail({"name": job.name}, f"its task failed: {type(exc).__name__}: {exc}")


def _bar(progress, total: int):
    if progress is False or callable(progress) and not isinstance(progress, bool):
        return None
    if progress is None and not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="accounts", unit="account", file=sys.stderr)


def _newest_label(rows: list[dict]) -> str:
    """Without a period: the folder is named after the newest period an account was computed
    for (each row carries its own); "latest" when no account got that far."""
    got = [(r["asOf"], r["period"]) for r in rows if r.get("period") and r.get("asOf")]
    return max(got)[1] if got else "latest"


def _stderr(text: str) -> None:
    print(safety.terminal_text(text), file=sys.stderr)
