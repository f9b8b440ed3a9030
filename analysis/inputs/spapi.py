"""Pull the exports the Selling Partner API offers into a data folder's `raw/` (docs/pull.md).

The Reports API 2021-06-30 through python-amazon-sp-api: createReport, getReport polled until
it is final, getReportDocument, then the document itself, downloaded as bytes (the client's own
`download=True` decodes it to text, which would change what is stored).

What is written, and only this: `DIR/raw/<reportType>/<first>_<last>.<txt|json>.gz`, the
document's bytes unchanged, gzip-compressed (Amazon's own gzip stream when it sent one), and
`DIR/raw/<reportType>/<first>_<last>.cancelled` for a period Amazon answered CANCELLED ("no
data"). A file is never rewritten: it is written to a hidden temporary file in the same folder and
linked to its name only when complete, so an interrupted pull leaves nothing half-written and the
next pull fetches what is missing. The days a report type already covers are read from these
names; nothing else records state.

Credentials are python-amazon-sp-api's (environment variables or its credentials file, the
account being the profile). They go to Amazon's login service only; no message, progress line or
file of ours holds them.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sp_api.api import Reports
from sp_api.auth import AccessTokenClient
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import Marketplaces, SellingApiException
from sp_api.base.credential_provider import MissingCredentials

from analysis.errors import AnalysisError, UsageError
from analysis.inputs import marketplaces as mkt
from analysis.safety import mask, terminal_text


class PullError(AnalysisError):
    """The pull cannot go on (credentials, Amazon unreachable or throttling past the bound)."""


# --------------------------------------------------------------------------- what is pulled

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
FEEDBACK = "GET_SELLER_FEEDBACK_DATA"
FBA_RETURNS = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
MFN_RETURNS = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
FBA_SHIPMENTS = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL"
PERFORMANCE = "GET_V2_SELLER_PERFORMANCE_REPORT"

# short name (what a user types) -> report types, in the order they are pulled
REPORTS: dict[str, tuple[str, ...]] = {
    "orders": (ORDERS,),
    "feedback": (FEEDBACK,),
    "returns": (FBA_RETURNS, MFN_RETURNS),
    "fba-shipments": (FBA_SHIPMENTS,),
    "performance": (PERFORMANCE,),
}
REPORT_NAMES = tuple(REPORTS)
JSON_REPORTS = frozenset({PERFORMANCE})
# report types whose requested dates Amazon ignores: one document per day pulled
SNAPSHOT_REPORTS = frozenset({PERFORMANCE})

# The longest period one request asks for. Amazon's limits: the returns by return date report
# takes at most 60 days, the FBA shipments report at most a month; 30 days keeps every flat file
# well inside them and each document a manageable size. A longer range is cut into equal parts.
PERIOD_DAYS = 30
# Days fetched again before the first day not yet covered: orders change status, feedback and
# returns arrive, and Amazon's data for the last days of a pull may have been incomplete.
OVERLAP_DAYS = 3
# The shortest period requested: Amazon has answered CANCELLED to feedback requests of under
# about 5 days that did have data, and a CANCELLED period is recorded as empty for good.
MIN_PERIOD_DAYS = 7
DEFAULT_DAYS = 180

NOT_IN_API = (
    "Claims, chargebacks, buyer messages, business invoices, the seller-fulfilled shipments file "
    "and the optional cancellations file have no report in the SP-API: download them from "
    "Seller Central by hand into the data folder (docs/pull.md)."
)

DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
CREDENTIALS_FILE = "~/.config/python-sp-api/credentials.yml"

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})\.(?:(?:txt|json)\.gz|cancelled)$")
_STALE_PART_SECONDS = 3600.0


@dataclass(frozen=True)
class Timing:
    """Every wait of a pull, so tests can make them short. `retry_seconds` bounds the total time
    one call (a create, a poll, a document's download) spends retrying HTTP 429, 5xx and network
    errors; past it the pull stops with a `PullError` (what was written stays)."""

    retry_seconds: float = 300.0
    first_backoff: float = 2.0
    max_backoff: float = 60.0
    poll_seconds: float = 15.0  # the longest wait between two getReport calls
    poll_first: float = 1.0  # the first wait; each next one doubles, up to poll_seconds
    poll_timeout: float = 1800.0
    http_timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class Outcome:
    """One report period: what was asked and what came of it.

    status: DONE (written), CANCELLED (Amazon has no data: recorded as empty), FATAL (Amazon
    failed it; `message` holds its error document), REFUSED (Amazon answered 4xx: a missing role,
    a bad parameter), TIMEOUT (not final within `Timing.poll_timeout`), UP-TO-DATE (nothing to
    fetch)."""

    report_type: str
    first: date
    last: date
    status: str
    rows: int | None = None
    path: Path | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("FATAL", "REFUSED", "TIMEOUT")

    def line(self) -> str:
        """The progress line: type, period, status, rows."""
        text = f"{self.report_type} {self.first}..{self.last}: {self.status}"
        if self.rows is not None:
            text += f", {self.rows:,} {'row' if self.rows == 1 else 'rows'}"
        if self.message:
            text += f" ({self.message})"
        return terminal_text(text).replace("\n", " ")


@dataclass
class PullResult:
    data_dir: Path
    first: date
    last: date
    marketplace_ids: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    not_in_api: str = NOT_IN_API

    @property
    def written(self) -> list[Path]:
        return [o.path for o in self.outcomes if o.path is not None]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def ok(self) -> bool:
        return not self.failures


# --------------------------------------------------------------------------- periods


def raw_dir(data_dir: Path, report_type: str) -> Path:
    return Path(data_dir) / "raw" / report_type


def file_name(report_type: str, first: date, last: date) -> str:
    ext = "json" if report_type in JSON_REPORTS else "txt"
    return f"{first.isoformat()}_{last.isoformat()}.{ext}.gz"


def marker_name(first: date, last: date) -> str:
    return f"{first.isoformat()}_{last.isoformat()}.cancelled"


def covered(folder: Path) -> list[tuple[date, date]]:
    """The periods already under `folder`, from the names of its documents and markers."""
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _NAME.match(p.name)
            if m:
                with contextlib.suppress(ValueError):
                    a, b = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
                    if a <= b:
                        out.append((a, b))
    return sorted(out)


def plan(
    first: date,
    last: date,
    have: Sequence[tuple[date, date]],
    *,
    period_days: int = PERIOD_DAYS,
    overlap_days: int = OVERLAP_DAYS,
    min_days: int = MIN_PERIOD_DAYS,
) -> list[tuple[date, date]]:
    """The periods to request so that every day of first..last is covered: each run of days not
    in `have` starts `overlap_days` earlier when the day before it is covered, spans at least
    `min_days` (it starts earlier when shorter), and is cut into equal periods of at most
    `period_days`."""
    days_have = set()
    for a, b in have:
        days_have.update(a + timedelta(n) for n in range((b - a).days + 1))
    runs: list[list[date]] = []
    d = first
    while d <= last:
        if d not in days_have:
            start = d
            while d <= last and d not in days_have:
                d += timedelta(1)
            end = d - timedelta(1)
            if start - timedelta(1) in days_have:
                start -= timedelta(overlap_days)
            if (end - start).days + 1 < min_days:
                start = end - timedelta(min_days - 1)
            if runs and start <= runs[-1][1] + timedelta(1):
                runs[-1][1] = end
            else:
                runs.append([start, end])
        d += timedelta(1)
    out = []
    for start, end in runs:
        total = (end - start).days + 1
        n = math.ceil(total / period_days)
        size, extra = divmod(total, n)
        a = start
        for i in range(n):
            b = a + timedelta(size + (1 if i < extra else 0) - 1)
            out.append((a, b))
            a = b + timedelta(1)
    return out


# --------------------------------------------------------------------------- files


def _write_new(path: Path, data: bytes) -> bool:
    """Write `path` if it does not exist yet: a hidden temporary file in the same folder, synced,
    then linked to its name (which fails rather than replace a file). False when it existed."""
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: the check above, then a rename
            if path.exists():
                return False
            os.replace(tmp, path)
        _sync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _sync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_parts(folder: Path) -> None:
    """Temporary files left by a pull that was killed (an exception removes its own)."""
    cutoff = time.time() - _STALE_PART_SECONDS
    for p in folder.glob(".*.part"):
        with contextlib.suppress(OSError):
            if p.stat().st_mtime < cutoff:
                p.unlink()


def _rows(report_type: str, document: bytes) -> int:
    if report_type in JSON_REPORTS:
        try:
            metrics = json.loads(document).get("performanceMetrics")
        except (ValueError, AttributeError):
            return 0
        return len(metrics) if isinstance(metrics, list) else 1
    lines = [line for line in document.splitlines() if line.strip()]
    return max(len(lines) - 1, 0)


# --------------------------------------------------------------------------- the client


class _Refused(Exception):
    """Amazon refused one report (a 4xx, an answer without what it must hold): that report
    fails, the others go on."""


class _Retry(Exception):
    """A transient answer: retried with backoff until `Timing.retry_seconds` is spent."""

    def __init__(self, reason: str, min_wait: float = 0.0):
        super().__init__(reason)
        self.reason = reason
        self.min_wait = min_wait


def _rate_wait(headers) -> float:
    """1 / x-amzn-RateLimit-Limit: the wait Amazon's rate allows between two calls."""
    try:
        rate = float((headers or {}).get("x-amzn-RateLimit-Limit", ""))
    except ValueError:
        return 0.0
    return 1.0 / rate if rate > 0 else 0.0


def _token_client(token_url: str) -> type[AccessTokenClient]:
    """python-amazon-sp-api's access-token client aimed at `token_url`: its URL is the class
    attributes `scheme + host + path`. Its cache key also names the URL and the app, so a token
    of one login service or app is never sent to another; 429/5xx/network errors are retried."""
    parts = urlsplit(token_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the token URL '{terminal_text(token_url)}' is not an http(s) URL.")

    class TokenClient(AccessTokenClient):
        scheme = parts.scheme + "://"
        host = parts.netloc
        path = parts.path or "/"

        def _request(self, url, data, headers):
            try:
                response = self._transport.request("POST", url, data=data, headers=headers)
            except httpx.TransportError as e:
                raise _Retry(f"a network error ({type(e).__name__}) from the login service") from None
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retry(f"HTTP {response.status_code} from the login service")
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
                body = body if isinstance(body, dict) else {}
                raise AuthorizationError(
                    body.get("error"), body.get("error_description"), response.status_code
                )
            return body

        def _get_cache_key(self, token_flavor=""):
            return super()._get_cache_key(f"{token_url}|{self.cred.client_id}|{token_flavor}")

        def close(self):
            self._transport.close()

    return TokenClient


class _Reports(Reports):
    """python-amazon-sp-api's Reports client with the answers it would pass over made explicit:
    429 and 5xx are retried (a 5xx without an `errors` body would otherwise read as an empty
    success), other 4xx raise, and the Host header is the endpoint's (it assumes https://)."""

    @property
    def headers(self):
        h = super().headers
        h["host"] = urlsplit(self.endpoint).netloc
        return h

    def _check_response(self, res, res_no_data=False, bulk=False, wrap_list=False):
        if res.status_code == 429:
            raise _Retry("HTTP 429 (throttled)", _rate_wait(res.headers))
        if res.status_code >= 500:
            raise _Retry(f"HTTP {res.status_code}")
        response = super()._check_response(res, res_no_data, bulk, wrap_list)
        if res.status_code >= 400:
            raise SellingApiException(
                [{"code": str(res.status_code), "message": res.reason_phrase}], res.headers
            )
        return response


def _region_of(marketplace_ids: list[str]) -> Marketplaces:
    members = {}
    for mid in marketplace_ids:
        member = next((m for m in Marketplaces if m.marketplace_id == mid), None)
        if member is None:
            raise UsageError(f"python-amazon-sp-api does not know the marketplace {mid}.")
        members[mid] = member
    endpoints = {m.endpoint for m in members.values()}
    if len(endpoints) > 1:
        names = ", ".join(mkt.marketplace_label(mid) for mid in marketplace_ids)
        raise UsageError(
            f"{names} are in different SP-API regions: pull each region into its own data folder "
            "(one account each)."
        )
    return members[marketplace_ids[0]]


def _marketplace_ids(marketplaces: Sequence[str] | None) -> list[str]:
    if not marketplaces:
        marketplaces = [os.environ.get("SP_API_DEFAULT_MARKETPLACE") or "US"]
    out: list[str] = []
    for m in marketplaces:
        mid = mkt.resolve(m)
        if mid not in out:
            out.append(mid)
    return out


def _credentials_help(account: str) -> str:
    return (
        f"set LWA_APP_ID, LWA_CLIENT_SECRET and SP_API_REFRESH_TOKEN in the environment, or add a "
        f"profile '{account}' to {CREDENTIALS_FILE} (docs/pull.md)"
    )


def _login_refused(account: str, e: AuthorizationError) -> PullError:
    code = str(e.error_code or "")
    if code in ("invalid_client", "unauthorized_client"):
        what = (
            f"Amazon's login service refused the app's client id or secret for account '{account}' "
            f"({code}): check LWA_APP_ID and LWA_CLIENT_SECRET (or lwa_app_id and lwa_client_secret "
            f"in the profile '{account}' of {CREDENTIALS_FILE})."
        )
    elif code == "invalid_grant":
        what = (
            f"Amazon's login service refused the refresh token for account '{account}' (invalid_grant: "
            f"revoked, expired or for another app): authorise the app again in Seller Central and set "
            f"SP_API_REFRESH_TOKEN (or refresh_token in the profile '{account}' of {CREDENTIALS_FILE})."
        )
    else:
        what = (
            f"Amazon's login service refused the credentials for account '{account}' (HTTP "
            f"{e.status_code}{', ' + code if code else ''}): {_credentials_help(account)}."
        )
    return PullError(terminal_text(what))


class _Session:
    """One pull's client, waits and progress."""

    def __init__(
        self,
        account: str,
        marketplace_ids: list[str],
        endpoint: str | None,
        token_url: str | None,
        timing: Timing,
        progress: Callable[[str], None],
    ):
        self.account = account
        self.marketplace_ids = marketplace_ids
        self.timing = timing
        self.progress = progress
        region = _region_of(marketplace_ids)
        endpoint = (endpoint or region.endpoint).rstrip("/")
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc:
            raise UsageError(f"the endpoint '{terminal_text(endpoint)}' is not an http(s) URL.")
        try:
            self.client = _Reports(
                marketplace=region,
                account=account,
                auth_token_client_class=_token_client(token_url or DEFAULT_TOKEN_URL),
                timeout=timing.http_timeout,
            )
        except MissingCredentials:
            raise PullError(
                f"No SP-API credentials for account '{account}': {_credentials_help(account)}."
            ) from None
        except KeyError as e:  # SP_API_DEFAULT_MARKETPLACE names no marketplace of the client
            raise UsageError(
                f"SP_API_DEFAULT_MARKETPLACE={terminal_text(e.args[0])} is not a marketplace code such as US, UK or DE."
            ) from None
        # the library sets the endpoint from the marketplace (or SP_API_DEFAULT_MARKETPLACE): ours wins
        self.client.endpoint = endpoint
        creds = self.client.credentials
        if not creds.refresh_token:
            self.client.close()
            self.client._auth.close()
            raise PullError(
                f"No SP-API refresh token for account '{account}': set SP_API_REFRESH_TOKEN, or "
                f"refresh_token in the profile '{account}' of {CREDENTIALS_FILE} (docs/pull.md)."
            )
        self._secrets = [s for s in (creds.refresh_token, creds.lwa_client_secret, creds.lwa_app_id) if s]
        self.http = httpx.Client(timeout=timing.http_timeout)

    def close(self) -> None:
        self.http.close()
        self.client.close()
        self.client._auth.close()  # our TokenClient's transport

    def clean(self, text: object) -> str:
        """Amazon's words for a message: contact details masked, one line, no credential."""
        s = " ".join(str(text).split())
        for secret in self._secrets:
            s = s.replace(secret, "[credential]")
        return terminal_text(mask(s) or "")

    # ---- calls

    def call(self, what: str, fn: Callable[[], object]):
        """`fn()` with 429/5xx/network errors retried (exponential backoff, at least Amazon's rate,
        at most `max_backoff`) within `retry_seconds`; a refused login is one sentence."""
        t = self.timing
        deadline = t.clock() + t.retry_seconds
        delay = t.first_backoff
        while True:
            try:
                return fn()
            except _Retry as e:
                reason, min_wait = e.reason, e.min_wait
            except httpx.TransportError as e:
                reason, min_wait = f"a network error ({type(e).__name__})", 0.0
            except AuthorizationError as e:
                raise _login_refused(self.account, e) from None
            wait = min(max(delay, min_wait), t.max_backoff)
            if t.clock() + wait > deadline:
                raise PullError(
                    f"Amazon kept answering {reason} to {what} for {t.retry_seconds:g} s: the files "
                    "already pulled are kept; run the pull again later to resume."
                )
            if wait >= 10:
                self.progress(f"{what}: {reason}; retrying in {wait:.0f} s")
            t.sleep(wait)
            delay *= 2

    def login(self) -> None:
        self.call("the login service", lambda: self.client.auth)

    def create(self, report_type: str, first: date | None, last: date | None) -> str:
        body: dict[str, object] = {"reportType": report_type, "marketplaceIds": list(self.marketplace_ids)}
        if first is not None and last is not None:
            body["dataStartTime"] = f"{first.isoformat()}T00:00:00Z"
            body["dataEndTime"] = f"{last.isoformat()}T23:59:59Z"
        res = self.call(f"createReport {report_type}", lambda: self.client.create_report(**body))
        report_id = res.payload.get("reportId")
        if not report_id:
            raise _Refused("Amazon's answer to createReport has no reportId")
        return str(report_id)

    def wait(self, report_type: str, report_id: str) -> dict | None:
        """getReport until DONE, CANCELLED or FATAL; None past `poll_timeout`."""
        t = self.timing
        deadline = t.clock() + t.poll_timeout
        wait = min(t.poll_first, t.poll_seconds)
        while True:
            res = self.call(f"getReport {report_type}", lambda: self.client.get_report(report_id))
            report = dict(res.payload)
            if report.get("processingStatus") in ("DONE", "CANCELLED", "FATAL"):
                return report
            if t.clock() + wait > deadline:
                return None
            t.sleep(wait)
            wait = min(wait * 2, t.poll_seconds)  # small reports are ready in seconds, big ones take minutes

    def document(self, report_type: str, document_id: str) -> tuple[bytes, bytes]:
        """(bytes to store: gzip, the document itself). The pre-signed URL is asked for again on
        each retry (it expires after five minutes)."""

        def fetch() -> tuple[bytes, bytes]:
            meta = self.client.get_report_document(document_id).payload
            url, algorithm = meta.get("url"), meta.get("compressionAlgorithm")
            if not url:
                raise _Refused(f"Amazon's answer to getReportDocument {report_type} has no url")
            if algorithm not in (None, "GZIP"):
                raise _Refused(f"the document is compressed with {algorithm}, which the pull cannot read")
            with self.http.stream("GET", url) as response:  # pre-signed: no access token sent
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code}")
                if response.status_code == 403:  # the URL expired: ask for a new one
                    raise _Retry("HTTP 403 (the document's URL expired)")
                if response.status_code != 200:
                    raise _Refused(f"Amazon's document store answered HTTP {response.status_code}")
                body = b"".join(response.iter_raw())  # the bytes as sent, whatever Content-Encoding says
            if algorithm == "GZIP":
                try:
                    return body, gzip.decompress(body)
                except (OSError, EOFError, zlib.error):
                    raise _Retry("a damaged gzip document") from None
            return gzip.compress(body, mtime=0), body

        return self.call(f"the {report_type} document", fetch)


# --------------------------------------------------------------------------- the pull


def pull(
    account: str,
    data_dir: Path,
    first: date | None,
    last: date | None,
    reports: list[str],
    *,
    endpoint: str | None,
    token_url: str | None,
    progress: Callable[[str], None] | None,
    now: datetime | None = None,
    marketplaces: Sequence[str] | None = None,
    timing: Timing | None = None,
) -> PullResult:
    """Fetch every day of first..last not yet under `data_dir/raw/` for `reports` (short names of
    `REPORTS`; empty = all), and today's V2 performance report when it is asked for and not yet
    kept. `last` defaults to yesterday (UTC, relative to `now`), `first` to 180 days before it.
    `marketplaces`: ids, domains or country codes of one SP-API region (default
    SP_API_DEFAULT_MARKETPLACE, else US); one report per type and period covers them all."""
    if not account or not account.strip():
        raise UsageError("the account is empty: name the credentials profile, such as 'default'.")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    today = now.astimezone(UTC).date()
    last = last or today - timedelta(1)
    first = first or last - timedelta(DEFAULT_DAYS)
    if last >= today:
        raise UsageError(
            f"the last day {last} is not over yet (UTC): Amazon's data for a day is complete only after it; "
            f"use {today - timedelta(1)} or earlier."
        )
    if first > last:
        raise UsageError(f"the first day {first} is after the last day {last}.")
    unknown = [r for r in reports if r not in REPORTS]
    if unknown:
        raise UsageError(
            f"unknown report '{terminal_text(unknown[0])}'; use one of {', '.join(REPORT_NAMES)}."
        )
    wanted = [rt for name in REPORT_NAMES if not reports or name in reports for rt in REPORTS[name]]
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise UsageError(f"the data folder '{terminal_text(data_dir)}' is a file.")
    marketplace_ids = _marketplace_ids(marketplaces)
    say = progress or (lambda line: None)
    session = _Session(account, marketplace_ids, endpoint, token_url, timing or Timing(), say)
    result = PullResult(data_dir, first, last, marketplace_ids)
    try:
        session.login()
        for report_type in wanted:
            folder = raw_dir(data_dir, report_type)
            folder.mkdir(parents=True, exist_ok=True)
            _remove_stale_parts(folder)
            if report_type in SNAPSHOT_REPORTS:
                periods = [] if (today, today) in covered(folder) else [(today, today)]
                if not periods:
                    outcome = Outcome(report_type, today, today, "UP-TO-DATE", message="already pulled today")
                    result.outcomes.append(outcome)
                    say(outcome.line())
            else:
                periods = plan(first, last, covered(folder))
                if not periods:
                    outcome = Outcome(report_type, first, last, "UP-TO-DATE")
                    result.outcomes.append(outcome)
                    say(outcome.line())
            for a, b in periods:
                outcome = _pull_one(session, folder, report_type, a, b)
                result.outcomes.append(outcome)
                say(outcome.line())
                if outcome.status == "REFUSED":
                    break  # the same refusal for every period of this type (a role, a marketplace)
    finally:
        session.close()
    return result


def _pull_one(session: _Session, folder: Path, report_type: str, first: date, last: date) -> Outcome:
    snapshot = report_type in SNAPSHOT_REPORTS
    try:
        report_id = session.create(report_type, None if snapshot else first, None if snapshot else last)
        report = session.wait(report_type, report_id)
    except (SellingApiException, _Refused) as e:
        return Outcome(report_type, first, last, "REFUSED", message=session.clean(_api_error(e)))
    if report is None:
        return Outcome(
            report_type,
            first,
            last,
            "TIMEOUT",
            message=f"not ready after {session.timing.poll_timeout:g} s; the next pull asks again",
        )
    status = report["processingStatus"]
    if status == "CANCELLED":
        marker = {
            "processingStatus": "CANCELLED",
            "meaning": "Amazon found no data for this period; it is not requested again",
            "reportId": report.get("reportId"),
            "marketplaceIds": session.marketplace_ids,
        }
        path = folder / marker_name(first, last)
        _write_new(path, (json.dumps(marker, indent=2) + "\n").encode())
        return Outcome(
            report_type, first, last, "CANCELLED", rows=0, path=path, message="no data: recorded as empty"
        )
    document_id = report.get("reportDocumentId")
    if status == "FATAL":
        text = "no error document"
        if document_id:
            try:
                _, doc = session.document(report_type, str(document_id))
                text = "Amazon's error document: " + doc.decode("utf-8", "replace")
            except (SellingApiException, _Refused) as e:
                text = _api_error(e)
        return Outcome(report_type, first, last, "FATAL", message=session.clean(text)[:1000])
    if not document_id:
        return Outcome(report_type, first, last, "FATAL", message="DONE without a reportDocumentId")
    try:
        stored, doc = session.document(report_type, str(document_id))
    except (SellingApiException, _Refused) as e:
        return Outcome(report_type, first, last, "REFUSED", message=session.clean(_api_error(e)))
    path = folder / file_name(report_type, first, last)
    written = _write_new(path, stored)
    return Outcome(
        report_type,
        first,
        last,
        "DONE",
        rows=_rows(report_type, doc),
        path=path if written else None,
        message=None if written else "a file of this period was already there: kept",
    )


def _api_error(e: SellingApiException | _Refused) -> str:
    if isinstance(e, _Refused):
        return str(e)
    errors = getattr(e, "error", None) or []
    parts = []
    for err in errors if isinstance(errors, list) else [errors]:
        if isinstance(err, dict):
            parts.append(": ".join(str(err[k]) for k in ("code", "message", "details") if err.get(k)))
        else:
            parts.append(str(err))
    return "Amazon refused the request: " + ("; ".join(parts) or type(e).__name__)
