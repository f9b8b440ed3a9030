"""The pull (analysis/inputs/spapi.py) against a local stand-in of Amazon's login service and
Reports API (tests/spapi_standin.py): what is requested, what is written under raw/, how failures
and credentials are handled."""

from __future__ import annotations

import gzip
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from spapi_standin import StandIn

from analysis.errors import UsageError
from analysis.inputs import spapi
from analysis.inputs.spapi import (
    FBA_RETURNS,
    FBA_SHIPMENTS,
    FEEDBACK,
    MFN_RETURNS,
    ORDERS,
    PERFORMANCE,
    PullError,
    Timing,
)

FLAT = (ORDERS, FEEDBACK, FBA_RETURNS, MFN_RETURNS, FBA_SHIPMENTS)
FAST = Timing(retry_seconds=3.0, first_backoff=0.001, max_backoff=0.01, poll_seconds=0.0, poll_timeout=10.0)
NOV_1 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # last = 2026-10-31
NOV_16 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # last = 2026-11-15, the sample's last day


def span(a: str, b: str) -> tuple[str, str]:
    return (f"{a}T00:00:00Z", f"{b}T23:59:59Z")


FIRST_PULL = [
    span("2026-09-01", "2026-09-21"),
    span("2026-09-22", "2026-10-11"),
    span("2026-10-12", "2026-10-31"),
]


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """A running stand-in; the environment holds its credentials and nothing else of SP-API's."""
    for var in ("LWA_APP_ID", "LWA_CLIENT_SECRET", "SP_API_REFRESH_TOKEN", "SP_API_DEFAULT_MARKETPLACE"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(f"{var}_acme", raising=False)
    monkeypatch.delenv("SP_API_AWS_SECRET_ID", raising=False)
    config = tmp_path / "sp-api-config"
    config.mkdir()
    monkeypatch.setenv("PYTHON-SP-APIDIR", str(config))  # python-amazon-sp-api's credentials.yml folder
    # the library keeps access tokens per process, keyed by the login URL: a stand-in of an earlier
    # test on the same (reused) port would hand this one its token, and no login would be seen
    from sp_api.auth import access_token_client

    access_token_client.cache.clear()
    with StandIn() as st:
        for k, v in st.env().items():
            monkeypatch.setenv(k, v)
        yield st


def run(st: StandIn, data: Path, now: datetime, first: date | None = date(2026, 9, 1), reports=(), **kw):
    lines: list[str] = []
    kw.setdefault("timing", FAST)
    result = spapi.pull(
        "acme", data, first, None, list(reports), endpoint=st.url, token_url=st.token_url,
        progress=lines.append, now=now, **kw,
    )  # fmt: skip
    return result, lines


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the periods


@pytest.mark.parametrize(
    ("first", "last", "have", "expected"),
    [
        # nothing yet: 61 days in three equal parts of at most 30
        ("09-01", "10-31", [], [("09-01", "09-21"), ("09-22", "10-11"), ("10-12", "10-31")]),
        # a gap after covered days starts 3 days earlier
        ("09-01", "11-15", [("09-01", "10-31")], [("10-29", "11-15")]),
        # a short gap is widened to 7 days, backwards
        ("09-01", "11-02", [("09-01", "10-31")], [("10-27", "11-02")]),
        # a hole in the middle and one at the end; the first day has no day before it to overlap
        (
            "09-01",
            "11-15",
            [("09-22", "10-31")],
            [("09-01", "09-21"), ("10-29", "11-15")],
        ),
        # two gaps whose widened periods meet become one request (09-11 widened to 09-05..09-11)
        ("09-01", "09-30", [("09-01", "09-10"), ("09-12", "09-13")], [("09-05", "09-30")]),
        ("09-01", "10-31", [("08-01", "11-30")], []),
    ],
)
def test_plan(first, last, have, expected):
    d = lambda s: date.fromisoformat(f"2026-{s}")  # noqa: E731
    got = spapi.plan(d(first), d(last), [(d(a), d(b)) for a, b in have])
    assert got == [(d(a), d(b)) for a, b in expected]


# --------------------------------------------------------------------------- a full pull, then the next


def test_full_pull_then_incremental(standin, tmp_path):
    st, data = standin, tmp_path / "acme"
    st.throttle["createReport"] = 1  # one 429 QuotaExceeded
    st.server_errors["getReport"] = 1  # one 503 with an HTML body
    st.cancel.add((FEEDBACK, "2026-09-22"))  # "no data"
    st.fatal.add((FBA_RETURNS, "2026-09-01"))

    result, lines = run(st, data, NOV_1)

    for rt in FLAT:
        assert st.periods(rt) == FIRST_PULL, rt
    assert st.periods(PERFORMANCE) == [(None, None)]  # the V2 report ignores dates: none are sent
    assert st.count(429) == 1 and st.count(503) == 1  # both retried, the pull went on
    # one progress line per report: type, period, status, rows
    assert len(lines) == len(result.outcomes) == 3 * 5 + 1
    assert lines[0].startswith(f"{ORDERS} 2026-09-01..2026-09-21: DONE, ") and lines[0].endswith(" rows")
    # every document is kept, gzip, byte for byte what Amazon served
    for rt in FLAT:
        for a, b in FIRST_PULL:
            a, b = a[:10], b[:10]
            path = data / "raw" / rt / f"{a}_{b}.txt.gz"
            if (rt, a) in {(FEEDBACK, "2026-09-22"), (FBA_RETURNS, "2026-09-01")}:
                assert not path.exists()
                continue
            assert gzip.decompress(path.read_bytes()) == st.document_for(rt, a, b), path
    perf = data / "raw" / PERFORMANCE / "2026-11-01_2026-11-01.json.gz"
    assert gzip.decompress(perf.read_bytes()) == st.sample.document(PERFORMANCE, date.min, date.max, set())
    # Amazon's gzip stream itself is what is stored for compressed documents
    orders_doc = next(d for d, rt in st.doc_report.items() if rt == ORDERS)
    assert (data / "raw" / ORDERS / "2026-09-01_2026-09-21.txt.gz").read_bytes() == st.wire[orders_doc]
    # marketplaces default to US (SP_API_DEFAULT_MARKETPLACE unset): Amazon.com rows only
    assert b"Amazon.co.uk" not in gzip.decompress(
        (data / "raw" / ORDERS / "2026-09-01_2026-09-21.txt.gz").read_bytes()
    )

    # CANCELLED: recorded as an empty period
    marker = data / "raw" / FEEDBACK / "2026-09-22_2026-10-11.cancelled"
    assert marker.exists() and b"CANCELLED" in marker.read_bytes()
    cancelled = [o for o in result.outcomes if o.status == "CANCELLED"]
    assert [(o.report_type, o.first) for o in cancelled] == [(FEEDBACK, date(2026, 9, 22))]
    # FATAL: reported with Amazon's error document, contact details masked; nothing written
    assert [(o.report_type, o.first, o.status) for o in result.failures] == [
        (FBA_RETURNS, date(2026, 9, 1), "FATAL")
    ]
    fatal_line = next(line for line in lines if ": FATAL" in line)
    assert "Report processing failed" in fatal_line and "[e-mail]" in fatal_line and "[phone]" in fatal_line
    assert "seller-support@example.com" not in fatal_line and "266 1000" not in fatal_line
    assert not result.ok and "no report in the SP-API" in result.not_in_api
    # nothing but documents and markers: no temporary file left
    assert all(p.name.endswith((".txt.gz", ".json.gz", ".cancelled")) for p in data.rglob("*") if p.is_file())

    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.rglob("*") if p.is_file()}
    st.fatal.clear()
    st.created.clear()

    result2, lines2 = run(st, data, NOV_16)

    overlap = span("2026-10-29", "2026-11-15")  # the days not covered, 3 days earlier
    assert st.periods(ORDERS) == [overlap]
    assert st.periods(FEEDBACK) == [overlap]  # the CANCELLED period is not asked again
    assert st.periods(FBA_RETURNS) == [span("2026-09-01", "2026-09-21"), overlap]  # the FATAL one is
    assert st.periods(MFN_RETURNS) == [overlap]
    assert st.periods(FBA_SHIPMENTS) == [overlap]
    assert st.periods(PERFORMANCE) == [(None, None)]
    assert result2.ok and len(lines2) == 1 + 1 + 2 + 1 + 1 + 1
    # raw data is immutable: every file of the first pull is there, unchanged
    for p, (content, mtime) in before.items():
        assert p.read_bytes() == content and p.stat().st_mtime_ns == mtime
    assert gzip.decompress((data / "raw" / ORDERS / "2026-10-29_2026-11-15.txt.gz").read_bytes()) == (
        st.document_for(ORDERS, "2026-10-29", "2026-11-15")
    )
    assert (data / "raw" / PERFORMANCE / "2026-11-16_2026-11-16.json.gz").exists()

    # the same day again: nothing to fetch, the day's performance report is not pulled twice
    st.created.clear()
    result3, lines3 = run(st, data, NOV_16.replace(hour=20))
    assert st.created == []
    assert {o.status for o in result3.outcomes} == {"UP-TO-DATE"} and len(lines3) == 6


def test_first_defaults_to_180_days_before_yesterday(standin, tmp_path):
    run(standin, tmp_path / "acme", NOV_16, first=None, reports=["orders"])
    periods = standin.periods(ORDERS)
    assert periods[0][0] == "2026-05-19T00:00:00Z" and periods[-1][1] == "2026-11-15T23:59:59Z"
    assert len(periods) == 7  # 181 days in parts of at most 30


def test_a_refused_report_type_fails_alone(standin, tmp_path):
    standin.refuse.add(FEEDBACK)  # the app lacks the role: 403 for every period of it
    result, lines = run(standin, tmp_path / "acme", NOV_1, reports=["orders", "feedback"])
    assert standin.count(403) == 1  # not asked again for its other periods
    assert [(o.report_type, o.status) for o in result.failures] == [(FEEDBACK, "REFUSED")]
    assert "Unauthorized: Access to requested resource is denied." in lines[-1]
    assert len(list((tmp_path / "acme" / "raw" / ORDERS).glob("*.txt.gz"))) == 3
    assert list((tmp_path / "acme" / "raw" / FEEDBACK).iterdir()) == []


# --------------------------------------------------------------------------- interruptions


def test_interrupted_download_leaves_no_partial_file_and_the_next_pull_resumes(standin, tmp_path):
    st, data = standin, tmp_path / "acme"
    st.drop[ORDERS] = 1000  # every download of an orders document breaks halfway
    with pytest.raises(PullError, match="network error") as err:
        run(st, data, NOV_1, reports=["orders", "feedback"], timing=replace(FAST, retry_seconds=0.3))
    assert "\n" not in str(err.value) and "run the pull again" in str(err.value)
    assert st.count(-200) >= 2  # retried (asking for a fresh URL each time) before giving up
    assert [p.name for p in (data / "raw" / ORDERS).iterdir()] == []  # not even a hidden .part

    st.drop.clear()
    st.created.clear()
    result, _ = run(st, data, NOV_1, reports=["orders", "feedback"])
    assert result.ok and st.periods(ORDERS) == FIRST_PULL and st.periods(FEEDBACK) == FIRST_PULL
    for a, b in FIRST_PULL:
        path = data / "raw" / ORDERS / f"{a[:10]}_{b[:10]}.txt.gz"
        assert gzip.decompress(path.read_bytes()) == st.document_for(ORDERS, a[:10], b[:10])


def test_interrupted_write_leaves_no_partial_file(standin, tmp_path, monkeypatch):
    st, data = standin, tmp_path / "acme"
    real_fsync = spapi.os.fsync

    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C while the first document is being written

    monkeypatch.setattr(spapi.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(st, data, NOV_1, reports=["orders"])
    assert list((data / "raw" / ORDERS).iterdir()) == []
    monkeypatch.setattr(spapi.os, "fsync", real_fsync)

    st.created.clear()
    result, _ = run(st, data, NOV_1, reports=["orders"])
    assert result.ok and st.periods(ORDERS) == FIRST_PULL
    assert len(list((data / "raw" / ORDERS).glob("*.txt.gz"))) == 3


# --------------------------------------------------------------------------- waits are bounded


def fake_time(**kw) -> tuple[Timing, list[float]]:
    now, sleeps = [0.0], []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    return Timing(sleep=sleep, clock=lambda: now[0], **kw), sleeps


def test_throttling_past_the_bound_stops_with_one_sentence(standin, tmp_path):
    standin.throttle["createReport"] = 10_000
    timing, sleeps = fake_time(retry_seconds=300, first_backoff=2, max_backoff=60, poll_seconds=0)
    with pytest.raises(PullError) as err:
        run(standin, tmp_path / "acme", NOV_1, reports=["orders"], timing=timing)
    msg = str(err.value)
    assert "HTTP 429" in msg and "createReport" in msg and "300 s" in msg and "\n" not in msg
    # at least Amazon's rate (x-amzn-RateLimit-Limit 0.0167/s -> 60 s), at most max_backoff, 300 s in all
    assert sleeps and all(59 < s <= 60 for s in sleeps) and sum(sleeps) <= 300
    assert not (tmp_path / "acme" / "raw" / ORDERS).exists() or not any(
        (tmp_path / "acme" / "raw" / ORDERS).iterdir()
    )


def test_a_report_never_ready_is_a_timeout_and_is_asked_again(standin, tmp_path):
    standin.polls_before_final = 10_000
    timing, sleeps = fake_time(poll_seconds=5, poll_timeout=30, first_backoff=0.001, max_backoff=0.01)
    result, lines = run(standin, tmp_path / "acme", NOV_1, reports=["performance"], timing=timing)
    assert [o.status for o in result.failures] == ["TIMEOUT"] and "TIMEOUT" in lines[0]
    assert sum(sleeps) <= 30 and not list((tmp_path / "acme" / "raw" / PERFORMANCE).iterdir())


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("reject", "names"),
    [("invalid_grant", "SP_API_REFRESH_TOKEN"), ("invalid_client", "LWA_CLIENT_SECRET")],
)
def test_rejected_credentials_are_one_sentence(standin, tmp_path, reject, names):
    standin.reject = reject
    with pytest.raises(PullError) as err:
        run(standin, tmp_path / "acme", NOV_1)
    msg = str(err.value)
    assert reject in msg and names in msg and "'acme'" in msg and "\n" not in msg
    assert standin.created == [] and not (tmp_path / "acme").exists()


def test_missing_credentials_name_what_to_set(standin, tmp_path, monkeypatch):
    for k in standin.env():
        monkeypatch.delenv(k)
    with pytest.raises(
        PullError, match="No SP-API credentials for account 'acme'.*LWA_APP_ID.*credentials.yml"
    ):
        run(standin, tmp_path / "acme", NOV_1)
    monkeypatch.setenv("LWA_APP_ID", standin.client_id)
    monkeypatch.setenv("LWA_CLIENT_SECRET", standin.client_secret)
    with pytest.raises(PullError, match="No SP-API refresh token.*SP_API_REFRESH_TOKEN"):
        run(standin, tmp_path / "acme", NOV_1)


def test_credentials_file_profile_named_by_the_account(standin, tmp_path, monkeypatch):
    for k in standin.env():
        monkeypatch.delenv(k)
    (Path(os.environ["PYTHON-SP-APIDIR"]) / "credentials.yml").write_text(
        "default:\n  refresh_token: wrong\n  lwa_app_id: wrong\n  lwa_client_secret: wrong\n"
        f"acme:\n  refresh_token: '{standin.refresh_token}'\n  lwa_app_id: '{standin.client_id}'\n"
        f"  lwa_client_secret: '{standin.client_secret}'\n"
    )
    result, _ = run(standin, tmp_path / "acme", NOV_1, reports=["performance"])
    assert result.ok and result.written


def test_credentials_never_leave(standin, tmp_path):
    """Nothing written under the data folder, no progress line and no error holds a credential or an
    access token; the document downloads (pre-signed URLs) carry no token either."""
    st, data = standin, tmp_path / "acme"
    st.throttle["createReport"] = 2
    st.fatal.add((MFN_RETURNS, None))
    st.cancel.add((FEEDBACK, None))
    st.drop[ORDERS] = 1
    _, lines = run(st, data, NOV_1)
    with StandIn(reject="invalid_grant") as refusing, pytest.raises(PullError) as err:
        run(refusing, tmp_path / "other", NOV_16)  # a new login service: no cached access token
    said = "\n".join([*lines, str(err.value)])
    written = b"".join(
        content + (gzip.decompress(content) if name.endswith(".gz") else b"")
        for name, content in files_under(data).items()
    )
    secrets = [st.refresh_token, st.client_secret, *st.tokens]
    assert len(st.tokens) == 1  # one login per pull, the token reused
    for secret in secrets:
        assert secret not in said and secret.encode() not in written
    downloads = [s for s in st.seen if s.path.startswith("/report-documents/")]
    assert downloads and all("x-amz-access-token" not in {k.lower() for k in s.headers} for s in downloads)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"first": date(2026, 11, 1)}, "after the last day"),
        ({"reports": ["claims"]}, "unknown report 'claims'"),
        ({"marketplaces": ["US", "UK"]}, "different SP-API regions"),
        ({"marketplaces": ["XX"]}, "not a marketplace"),
    ],
)
def test_arguments_refused_before_anything_is_asked(standin, tmp_path, kw, words):
    with pytest.raises(UsageError, match=words):
        run(standin, tmp_path / "acme", NOV_1, **kw)
    assert standin.seen == []


def test_the_last_day_must_be_over(standin, tmp_path):
    with pytest.raises(UsageError, match="not over yet"):
        spapi.pull(
            "acme", tmp_path, None, date(2026, 11, 1), [], endpoint=standin.url, token_url=standin.token_url,
            progress=None, now=NOV_1,
        )  # fmt: skip
