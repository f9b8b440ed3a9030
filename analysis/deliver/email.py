"""The weekly summary by e-mail: the report's first screen as the body (plain text and HTML, CSS
inlined because mail clients ignore `<style>` and run no script), its ODR chart as an inline PNG
(`cid:`), and the full offline report attached.

SMTP credentials come from the environment only (`AH_SMTP_USER`, `AH_SMTP_PASSWORD`): never from a
file in the repository, never printed. Every SMTP failure is one sentence (`DeliveryError`).
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import css_inline

from analysis import wording
from analysis.errors import AnalysisError
from analysis.inputs.marketplaces import marketplace_label
from analysis.report import charts, sections, summary
from analysis.report.context import ReportContext
from analysis.report.kit import REPORT_CSS, esc

USER_ENV, PASSWORD_ENV = "AH_SMTP_USER", "AH_SMTP_PASSWORD"


class DeliveryError(AnalysisError):
    """The message could not be sent (refused, rejected credentials, timeout)."""


@dataclass(frozen=True)
class Mail:
    """Where and how a message goes; the same fields as the settings' [email] table."""

    to: tuple[str, ...] = ()
    sender: str = "account-health@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    security: str = "none"  # "none", "starttls" or "ssl"
    timeout: float = 30.0
    extra_headers: dict = field(default_factory=dict)


def subject(ctx: ReportContext) -> str:
    """'Account Health: acme 2026-W46: 2 Poor, 3 Fair' (or 'all Good'); Incomplete is counted too."""
    n = summary.subject_counts(ctx)
    parts = [
        f"{n[s]} {label}"
        for s, label in (("BAD", "Poor"), ("AT_RISK", "Fair"), ("INCOMPLETE", "Incomplete"))
        if n.get(s)
    ]
    return f"Account Health: {ctx.account} {ctx.week}: {', '.join(parts) if parts else 'all Good'}"


def plain_text(ctx: ReportContext) -> str:
    """The first screen in words, for mail clients that show no HTML."""
    state, source = summary.account_state(ctx)
    worst = summary.attention(ctx)
    lines = [
        f"Account Health metrics summary: {ctx.account}, {ctx.week} (as of {ctx.as_of}, end of day UTC)",
        "",
        f"Account: {state} ({source})",
        f"Account Health Rating: {summary.ahr_text(ctx)}",
        "Needs attention most: "
        + (
            f"{worst['md'].title} ({marketplace_label(worst['marketplace_id'])}), "
            f"{wording.STATUS_LABEL.get(worst['status'], worst['status'])}, {sections.rate_text(worst['md'], worst['obj'])}"
            if worst
            else "nothing"
        ),
        "",
        "Metrics:",
    ]
    for r in summary.metric_rows(ctx):
        md, obj = r["md"], r["obj"]
        if r["status"] == "NONE":  # no unit in the window and nothing absent or unread to say
            continue
        last = f" (last week {wording.pct(r['last_week'])})" if r["last_week"] is not None else ""
        lines.append(
            f"- {md.title}, {marketplace_label(r['marketplace_id'])}: {sections.rate_text(md, obj)} "
            f"{wording.STATUS_LABEL.get(r['status'], r['status'])}{last}; target "
            f"{wording.target_text(md.target, md.higher_is_better)}"
        )
    lines += ["", "Do this now:"]
    todo = summary.do_this_now(ctx)
    for i, a in enumerate(todo, 1):
        due = f" ({summary.deadline_text(a, ctx.as_of)})" if a.get("deadline") else ""
        lines.append(f"{i}. {a['what']}{due}: {a['effect']}")
    if not todo:
        lines.append("Nothing is due.")
    lines += [f"({s['kind']}: {s['reason']})" for s in summary.not_checked(ctx)]
    lines += ["", "The full report is attached (open it in a browser; it works offline)."]
    return "\n".join(lines) + "\n"


def html_body(ctx: ReportContext, chart_cid: str | None) -> str:
    """The first screen as e-mail HTML: styles inlined, no script, the chart by `cid:`."""
    chart = (
        f'<h2>Order Defect Rate, week by week</h2><img src="cid:{chart_cid[1:-1]}" alt="ODR trend chart" '
        'style="max-width:100%;height:auto">'
        if chart_cid
        else ""
    )
    doc = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(subject(ctx))}</title><style>{REPORT_CSS}</style></head>"
        '<body style="font-family: -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif; max-width: 900px">'
        f"<h1>Account Health · {esc(ctx.account)} · {esc(ctx.week)}</h1>"
        f'<p class="muted">As of {esc(ctx.as_of)} (end of day, UTC); newest order {esc(ctx.newest)}.</p>'
        + sections.banners_html(ctx)
        + summary.first_screen_html(ctx)
        + chart
        + '<p class="muted">The full report is attached: open it in a browser (it works offline).</p>'
        "</body></html>"
    )
    return css_inline.inline(doc)


def chart_png(ctx: ReportContext) -> bytes | None:
    """The ODR trend chart as PNG (vl-convert), or None when there is nothing to draw."""
    chart = sections.odr_trend_chart(ctx)
    if not hasattr(chart, "to_dict"):
        return None
    return charts.to_png(chart)


def build(ctx: ReportContext, mail: Mail, report_html: Path | None) -> EmailMessage:
    """multipart/mixed: (plain text | HTML with its inline PNG) and the report attached."""
    msg = EmailMessage()
    msg["Subject"] = subject(ctx)
    msg["From"] = mail.sender
    msg["To"] = ", ".join(mail.to)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="account-health.local")
    for k, v in mail.extra_headers.items():
        msg[k] = v
    msg.set_content(plain_text(ctx))
    png = chart_png(ctx)
    cid = make_msgid(domain="account-health.local") if png else None
    msg.add_alternative(html_body(ctx, cid), subtype="html")
    if png:
        html_part = msg.get_payload()[1]
        html_part.add_related(png, "image", "png", cid=cid, filename="odr-trend.png")
    if report_html is not None:
        msg.add_attachment(
            Path(report_html).read_bytes(),
            maintype="text",
            subtype="html",
            filename=f"account-health-{ctx.account}-{ctx.week}.html",
        )
    return msg


@contextlib.contextmanager
def _session(mail: Mail) -> Iterator[smtplib.SMTP]:
    """A logged-in SMTP session (credentials from the environment); every failure, here or in
    the caller's block, becomes one sentence."""
    where = f"{mail.smtp_host}:{mail.smtp_port}"
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    try:
        if mail.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                mail.smtp_host, mail.smtp_port, timeout=mail.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=mail.timeout)
        with smtp:
            if mail.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, password or "")
            yield smtp
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"The SMTP server {where} rejected the user and password (from {USER_ENV} / {PASSWORD_ENV}): "
            f"{exc.smtp_code}."
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"The SMTP server {where} does not support {exc}.") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            f"The SMTP server {where} refused every recipient ({', '.join(exc.recipients)})."
        ) from exc
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code == 530:
            raise DeliveryError(
                f"The SMTP server {where} requires a login: set {USER_ENV} and {PASSWORD_ENV}."
            ) from exc
        raise DeliveryError(f"Sending through {where} failed: the server answered {exc.smtp_code}.") from exc
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"Sending through {where} failed: {exc.__class__.__name__}.") from exc
    except TimeoutError as exc:
        raise DeliveryError(f"The SMTP server {where} did not answer within {mail.timeout:g} s.") from exc
    except ConnectionRefusedError as exc:
        raise DeliveryError(f"No SMTP server at {where}: the connection was refused.") from exc
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS with the SMTP server {where} failed ({exc.reason}).") from exc
    except OSError as exc:
        raise DeliveryError(f"Cannot reach the SMTP server {where}: {exc.strerror or exc}.") from exc


def check(mail: Mail) -> None:
    """Connect and log in, then leave: a wrong host or password is said before a report is made."""
    with _session(mail):
        pass


def send(msg: EmailMessage, mail: Mail) -> None:
    """Send through SMTP; one sentence on any failure."""
    with _session(mail) as smtp:
        refused = smtp.send_message(msg, from_addr=mail.sender, to_addrs=list(mail.to))
    if refused:
        raise DeliveryError(
            f"The SMTP server {mail.smtp_host}:{mail.smtp_port} refused {', '.join(sorted(refused))}."
        )
