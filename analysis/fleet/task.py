"""What a Dask worker does for one account: read its exports, compute the metrics document, last
week's rates, the period's open incidents and today's actions, and (when asked) render its report
and send its e-mail. The result is the account's row of fleet.json.

A problem of the account's own (bad data, a period past its data, a report notebook that fails,
an SMTP server that refuses) never raises: the row says "failed" with its one sentence, so the
other accounts finish. The row keeps what was computed before the failure (a failed e-mail still
leaves the metrics on the page).

Reports run in one kernel kept per worker process (`render.KernelSession`): a worker renders one
report after another, and a kept kernel saves each of them the kernel's start and its imports."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from analysis.deliver.email import Mail
    from analysis.metrics.health import AccountHealth
    from analysis.report.context import ReportContext
    from analysis.report.render import KernelSession

ERROR_CHARS = 600  # a reason longer than this is cut: it is a sentence, not a log


@dataclass(frozen=True)
class Job:
    """One account's work, as sent to a worker. Plain values only: unpickling a job on a worker
    imports nothing but this module, so a worker that dies on it restarts and retries fast."""

    name: str
    data: str  # absolute path, as the workers see it
    settings: dict  # Settings.to_dict(): the run's settings, as the report notebook receives them
    period: str | None = None  # a period label; None: the account's latest complete week
    reports: bool = False
    out_root: str = ""
    mail: dict | None = None  # the fields of deliver.email.Mail: send the e-mail so; None: no e-mail
    # the run's cache options (--cache-dir / $AH_CACHE_DIR, --no-cache), so that workers of a remote
    # cluster follow them too; None: the worker's own default folder
    cache_dir: str | None = None
    use_cache: bool = True

    def apply_cache_options(self) -> None:
        """Set the run's cache options in this worker's environment: its readers and the report
        kernel it starts read them there."""
        from analysis.inputs import cache

        if self.cache_dir:
            os.environ[cache.CACHE_ENV] = self.cache_dir
        if self.use_cache:
            os.environ.pop(cache.SWITCH_ENV, None)
        else:
            os.environ[cache.SWITCH_ENV] = "off"

    def mail_settings(self) -> Mail | None:
        from analysis.deliver.email import Mail

        return None if self.mail is None else Mail(**self.mail)


def process(job: Job) -> dict:
    """The fleet row of one account: {"name", "status", "error"?, "period", "asOf", "document",
    "lastWeek", "incidents", "actions", "state", "ahr", "report"?, "email"?, "seconds"}."""
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    job.apply_cache_options()
    row: dict = {"name": job.name, "status": "ok"}
    try:
        _compute(job, row)
    except AnalysisError as exc:
        fail(row, str(exc))
    except Exception as exc:  # a bug of the suite on this account's data: isolated, said, not hidden
        fail(row, f"internal error: {type(exc).__name__}: {exc}")
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["cpu"] = round(cpu_seconds() - cpu0, 3)
    return row


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its children (the report kernel): what an
    account costs, whatever else the machine runs (the benchmark reports it)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def fail(row: dict, reason: str) -> dict:
    """Mark `row` failed with its reason: buyer contact details masked, cut to one short paragraph."""
    from analysis import safety

    text = safety.mask(" ".join(str(reason).split())) or "failed"
    if len(text) > ERROR_CHARS:
        text = text[: ERROR_CHARS - 1] + "…"
    row["status"], row["error"] = "failed", text
    return row


def _compute(job: Job, row: dict) -> None:
    from analysis.inputs import sources
    from analysis.insights import actions
    from analysis.metrics import health
    from analysis.metrics.settings import Settings
    from analysis.report import context, render, summary
    from analysis.report.periods import latest_complete_week, parse_period

    if job.reports or job.mail is not None:
        session().warm()  # the kernel starts while the metrics are computed
    settings = Settings.from_dict(job.settings)
    data = sources.load(job.data)
    health.require_usable(data)
    newest = health.newest_order_day(data)
    p = parse_period(job.period or latest_complete_week(newest))
    row.update(period=p.label, asOf=p.as_of.isoformat(), dataEnds=newest.isoformat())
    result = health.account_health(data, p.as_of, settings, what=f"{p.kind} {p.label} (as of {p.as_of})")
    ctx = context.ReportContext(Path(job.data), p.label, p.as_of, "all", result, account=job.name)
    row["document"] = result.document
    row["lastWeek"] = last_week(result)
    row["incidents"] = len(context.week_incidents(ctx))
    row["actions"] = actions.today(data, p.as_of).actions.height
    state, source = summary.account_state(ctx)
    row["state"] = {"label": state, "source": source}
    row["ahr"] = ahr(ctx)
    html = None
    if job.reports:
        res = render.render(
            job.data, settings, period=p.label, account=job.name, out_root=job.out_root,
            index=False, newest=newest, session=session(),
        )  # fmt: skip
        html = res.html
        row["report"] = res.html.relative_to(Path(job.out_root)).as_posix()
    if job.mail is not None:
        row["email"] = send_email(job, settings, p.label, newest, html)


def last_week(result: AccountHealth) -> dict[str, dict[str, float]]:
    """Marketplace -> metric id -> the rate 7 days before the as-of day, as each report's first
    screen shows it ("from 1.50 %"): the same scorecard the report's trend reads, kept where the
    trend keeps that week (the day within the data and the trend's weeks, the window holding
    orders and beginning on or after the oldest order)."""
    import polars as pl

    from analysis.metrics import definitions as m
    from analysis.metrics import health
    from analysis.report.sections import SECTIONS

    data, as_of, settings = result.data, result.as_of, result.settings
    day = as_of - dt.timedelta(days=7)
    if settings.report.trend_weeks < 2 or day > health.newest_order_day(data):
        return {}
    shown = [metric_id for _, ids in SECTIONS for metric_id in ids]
    card = m.scorecard(m.evaluate(data, day, settings.metrics), settings.metrics).filter(
        pl.col("metric").is_in(shown)
        & (pl.col("denominator") > 0)
        & (pl.col("window_from") >= health.oldest_order_day(data))
    )
    out: dict[str, dict[str, float]] = {}
    for mkt, metric_id, rate in card.select("marketplace_id", "metric", "rate").iter_rows():
        out.setdefault(mkt, {})[metric_id] = rate
    return out


def ahr(ctx: ReportContext) -> list[dict]:
    """Amazon's Account Health Rating of each marketplace, as the report's verdict line gives it
    (`summary.ahr_text`): from the newest V2 snapshot on or before the as-of day, else not known."""
    from analysis.inputs.snapshots import newest_for
    from analysis.report.context import pm_of

    out = []
    for mkt in ctx.marketplaces:
        snap = newest_for(ctx.result.data.snapshots, mkt, ctx.as_of)
        rating = pm_of(ctx, mkt)["accountHealthRating"]
        if snap and rating.get("ahrStatus") not in (None, "NONE"):
            out.append(
                {
                    "marketplaceId": mkt,
                    "status": str(rating["ahrStatus"]).title(),
                    "score": rating.get("ahrScore"),
                    "date": str(snap[0]["_asOf"]),
                }
            )
        else:
            out.append({"marketplaceId": mkt, "status": None})
    return out


def send_email(job: Job, settings, label: str, newest: dt.date, html: Path | None) -> dict:
    """The period's e-mail of the account (its report attached), as `python -m analysis email`
    builds it; SMTP credentials from the worker's environment (AH_SMTP_USER, AH_SMTP_PASSWORD)."""
    from analysis.deliver import email as mail
    from analysis.report import context, render

    m = job.mail_settings()
    ctx = context.prepare(job.data, settings, account=job.name, period=label)
    with tempfile.TemporaryDirectory(prefix="account-health-mail-") as tmp:
        if html is None:  # no report asked for: render one to attach, as the email command does
            html = render.render(
                job.data, settings, period=label, account=job.name, out_root=Path(tmp),
                index=False, newest=newest, session=session(),
            ).html  # fmt: skip
        msg = mail.build(ctx, m, html)
    mail.send(msg, m)
    return {"sent": True, "recipients": len(m.to), "subject": msg["Subject"]}


# ------------------------------------------------------------------ the worker's kept kernel

_session: dict[str, KernelSession] = {}
_session_lock = threading.Lock()


def session() -> KernelSession:
    """This process's kept report kernel (started by its first report)."""
    from analysis.report.render import KernelSession

    with _session_lock:
        if "kernel" not in _session:
            _session["kernel"] = KernelSession()
        return _session["kernel"]


def close_session() -> bool:
    """Shut this process's kept kernel down (the run calls it on every worker when it ends)."""
    with _session_lock:
        s = _session.pop("kernel", None)
    if s is None:
        return False
    with contextlib.suppress(Exception):
        s.close()
    return True
