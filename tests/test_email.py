"""The weekly e-mail, sent to a real SMTP server (aiosmtpd) started here on 127.0.0.1, read back
and checked: both parts, every `cid:` image attached, the numbers of `account_health`, no buyer
e-mail, hostile buyer text inert; auth failure and a refused connection are one line, exit 2."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import Inbox, free_port

from analysis import wording
from analysis.metrics import health
from analysis.metrics.settings import Settings

pytestmark = pytest.mark.notebooks  # renders a report (papermill) for the attachment

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> =cmd|calc'
USER, PASSWORD = "reporter", "s3cret-pass"


def _auth(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    ctl = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_auth,
        auth_require_tls=False,
        auth_required=True,
    )
    ctl.start()
    try:
        yield ctl, inbox
    finally:
        ctl.stop()


@pytest.fixture(scope="module")
def hostile_sample(tmp_path_factory, sample_dir) -> Path:
    """The sample with a hostile comment on a negative feedback of the report's week."""
    dst = tmp_path_factory.mktemp("hostile") / "acme"
    shutil.copytree(sample_dir, dst)
    path = dst / "Feedback_com.txt"
    lines = path.read_text(encoding="latin-1").split("\n")
    for i, line in enumerate(lines[1:], 1):
        f = line.split("\t")
        if len(f) > 2 and f[1] in ("1", "2"):
            m, d, y = (int(x) for x in f[0].split("/"))
            if dt.date(2000 + y, m, d) >= dt.date(2026, 11, 9):
                f[2] = HOSTILE
                lines[i] = "\t".join(f)
                break
    path.write_text("\n".join(lines), encoding="latin-1")
    return dst


def _email(data: Path, port: int, *extra: str, env: dict | None = None):
    cmd = [
        sys.executable, "-m", "analysis", "email", "--data", str(data), "--week", "2026-W46",
        "--to", "ops@acme.example", "--to", "owner@acme.example",
        "--smtp-host", "127.0.0.1", "--smtp-port", str(port), *extra,
    ]  # fmt: skip
    run_env = {**os.environ, "AH_SMTP_USER": USER, "AH_SMTP_PASSWORD": PASSWORD, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=run_env)


def _texts(msg) -> str:
    """Every part of the message decoded (attachments included), for searching."""
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        out.append(payload.decode("utf-8", "replace") if part.get_content_maintype() == "text" else "")
    return "\n".join(out)


def test_email_is_received_whole_and_right(smtp_server, hostile_sample, tmp_path):
    ctl, inbox = smtp_server
    out = _email(hostile_sample, ctl.port)
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    assert len(inbox.messages) == 1
    sender, rcpts, raw = inbox.messages[0]
    assert rcpts == ["ops@acme.example", "owner@acme.example"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"].startswith("Account Health: acme 2026-W46: ")
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    html_text = html.get_content()
    # every cid: in the HTML has its image attached, and every image is used
    cids = {c.split('"')[0] for c in html_text.split('src="cid:')[1:]}
    images = {p["Content-ID"].strip("<>") for p in msg.walk() if p.get_content_type() == "image/png"}
    assert cids and cids == images
    # the report is attached
    attached = [p for p in msg.iter_attachments() if p.get_filename() == "account-health-acme-2026-W46.html"]
    assert len(attached) == 1
    # the numbers are account_health's for the period
    doc = health.account_health(hostile_sample, dt.date(2026, 11, 15), Settings()).document
    us = next(pm for pm in doc["performanceMetrics"] if pm["marketplaceId"] == "ATVPDKIKX0DER")
    odr = wording.pct(us["orderDefectRate"]["mfn"]["rate"])
    assert f"Order Defect Rate (seller-fulfilled), Amazon.com: {odr} Poor" in plain.get_content()
    assert f"<b>{odr.replace(chr(0xA0), '&nbsp;')}</b>" in html_text  # the inliner writes the entity
    # no buyer e-mail anywhere (the sample's raters are @marketplace.amazon.example), no script,
    # and the hostile comment is text in the attached report
    everything = _texts(msg)
    assert "marketplace.amazon.example" not in everything
    assert "<script" not in html_text.lower() and "onerror=" not in html_text
    report = attached[0].get_content()
    assert '<script>alert("x")' not in report and "<img src=x" not in report
    assert "&lt;script&gt;alert(" in report and "&lt;img src=x onerror=alert(1)&gt;" in report
    # CSS is inlined: no <style> block is needed by mail clients
    assert "<style" not in html_text and 'style="' in html_text


def test_dry_run_writes_the_eml_and_sends_nothing(smtp_server, sample_dir, tmp_path):
    ctl, inbox = smtp_server
    eml = tmp_path / "summary.eml"
    out = _email(sample_dir, ctl.port, "--dry-run", "--out", str(eml))
    assert out.returncode == 0, out.stderr
    assert inbox.messages == []
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None


def test_rejected_credentials_are_one_line(smtp_server, sample_dir, tmp_path):
    ctl, inbox = smtp_server
    out = _email(sample_dir, ctl.port, env={"AH_SMTP_PASSWORD": "wrong"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "rejected the user and password" in lines[0], out.stderr
    assert "wrong" not in out.stderr and "Traceback" not in out.stderr
    assert inbox.messages == []


def test_refused_connection_is_one_line(sample_dir, tmp_path):
    port = free_port()  # nothing listens there
    out = _email(sample_dir, port)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"No SMTP server at 127.0.0.1:{port}" in lines[0], out.stderr


def test_email_settings_from_toml(tmp_path):
    """[email] gives recipients and the server; credentials in a file are refused, bad values named."""
    from analysis.errors import SettingsError
    from analysis.metrics import settings

    ok = tmp_path / "ok.toml"
    ok.write_text('[email]\nto = ["ops@acme.example", "owner@acme.example"]\nsmtp_host = "mail.acme.example"\n'
                  'smtp_port = 587\nsecurity = "starttls"\n')  # fmt: skip
    run = settings.build(ok)
    assert run.email.to == ("ops@acme.example", "owner@acme.example")
    assert (run.email.smtp_host, run.email.smtp_port, run.email.security) == (
        "mail.acme.example",
        587,
        "starttls",
    )
    assert "email" not in run.to_dict()  # a report's notebook never keeps the recipients
    for body, words in (
        ('[email]\npassword = "x"\n', "credentials are never read from a file"),
        ('[email]\nto = "not-an-address"\n', "[email] to must be a list of e-mail addresses"),
        ("[email]\nsmtp_port = 70000\n", "smtp_port = 70000 is not a port number"),
        ('[email]\nsecurity = "tls"\n', "use one of none, starttls, ssl"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(body)
        with pytest.raises(SettingsError, match=re.escape(words)) as e:
            settings.build(bad)
        assert str(e.value).startswith(str(bad))


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--to", "ops@acme.example\r\nBcc: evil@x.example"], "--to"),
        (["--to", "not-an-address"], "--to"),
        (["--to", "a@b.example, c@d.example"], "--to"),
        (["--to", "ops@acme.example", "--from", "me@acme.example\nBcc: evil@x.example"], "--from"),
        (["--to", "ops@acme.example", "--smtp-host", "mail.example\r\nX: y"], "--smtp-host"),
    ],
)
def test_addresses_and_host_are_checked_before_anything(capsys, sample_dir, tmp_path, args, flag):
    """A line break in an address is a header injection; it was an internal error (exit 3). One
    sentence naming the option, exit 2, nothing written."""
    from analysis import cli

    out = tmp_path / "x.eml"
    rc = cli.main(
        ["email", "--data", str(sample_dir), "--week", "2026-W46", *args, "--dry-run", "--out", str(out)]
    )
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith(f"error: {flag} ") and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    "body",
    [
        'sender = "me@acme.example\\r\\nBcc: evil@x.example"',
        'to = ["ops@acme.example\\nBcc: e@x.example"]',
        'to = ["a b@c.example"]',
    ],
)
def test_email_settings_with_line_breaks_are_refused(tmp_path, body):
    from analysis.errors import SettingsError
    from analysis.metrics import settings

    toml = tmp_path / "settings.toml"
    toml.write_text(f"[email]\n{body}\n")
    with pytest.raises(SettingsError, match=r"\[email\] (sender|to) must be"):
        settings.build(toml)
