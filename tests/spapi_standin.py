"""A local stand-in for Amazon's login service and the SP-API Reports 2021-06-30 operations, for
the pull's tests (and by hand: `python tests/spapi_standin.py --port 8123`).

A real HTTP server on 127.0.0.1 speaking the operations as Amazon documents them:

- POST /auth/o2/token (Login with Amazon: form body grant_type=refresh_token, refresh_token,
  client_id, client_secret) -> {"access_token", "token_type": "bearer", "expires_in": 3600}; a
  wrong client id or secret is 401 invalid_client, a wrong refresh token 400 invalid_grant;
- POST /reports/2021-06-30/reports -> 202 {"reportId"};
- GET /reports/2021-06-30/reports/{reportId} -> processingStatus IN_QUEUE, then IN_PROGRESS, then
  DONE with a reportDocumentId (CANCELLED when the period has no rows, as Amazon does; FATAL with
  the reportDocumentId of an error document when told to);
- GET /reports/2021-06-30/documents/{documentId} -> {"reportDocumentId", "url",
  "compressionAlgorithm": "GZIP"} (the V2 JSON is sent uncompressed, without the key);
- GET the document URL itself (pre-signed: no access token needed) -> the bytes.

Every API call needs an `x-amz-access-token` this server issued (403 Unauthorized otherwise).
Documents are built from the sample account (`data/sample/`), rows filtered to the requested
dataStartTime..dataEndTime and marketplaces at byte level, so each file keeps its own encoding.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
REPORTS_PATH = "/reports/2021-06-30/reports"
DOCUMENTS_PATH = "/reports/2021-06-30/documents/"
DOWNLOAD_PATH = "/report-documents/"
TOKEN_PATH = "/auth/o2/token"

SALES_CHANNEL = {"Amazon.com": "ATVPDKIKX0DER", "Amazon.co.uk": "A1F83G8C2ARO7P"}
FEEDBACK_FORMAT = {"ATVPDKIKX0DER": "%m/%d/%y"}  # every other marketplace: D/M/YY

# GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL's 48 columns (shared/reference, Airbyte fixture)
FBA_SHIPMENTS_HEADER = (
    "amazon-order-id\tmerchant-order-id\tshipment-id\tshipment-item-id\tamazon-order-item-id\t"
    "merchant-order-item-id\tpurchase-date\tpayments-date\tshipment-date\treporting-date\tbuyer-email\t"
    "buyer-name\tbuyer-phone-number\tsku\tproduct-name\tquantity-shipped\tcurrency\titem-price\titem-tax\t"
    "shipping-price\tshipping-tax\tgift-wrap-price\tgift-wrap-tax\tship-service-level\trecipient-name\t"
    "ship-address-1\tship-address-2\tship-address-3\tship-city\tship-state\tship-postal-code\tship-country\t"
    "ship-phone-number\tbill-address-1\tbill-address-2\tbill-address-3\tbill-city\tbill-state\t"
    "bill-postal-code\tbill-country\titem-promotion-discount\tship-promotion-discount\tcarrier\t"
    "tracking-number\testimated-arrival-date\tfulfillment-center-id\tfulfillment-channel\tsales-channel"
).split("\t")

REPORT_TYPES = (
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
    "GET_SELLER_FEEDBACK_DATA",
    "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA",
    "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE",
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL",
    "GET_V2_SELLER_PERFORMANCE_REPORT",
)


def _lines(raw: bytes) -> tuple[bytes, list[bytes]]:
    lines = raw.splitlines(keepends=True)
    return lines[0], [line for line in lines[1:] if line.strip()]


def _cells(line: bytes) -> list[str]:
    return line.rstrip(b"\r\n").decode("latin-1").split("\t")


class Sample:
    """The sample account's files as Amazon would serve them, filtered per request."""

    def __init__(self, folder: Path = SAMPLE_DIR):
        self.folder = folder
        self.order_market: dict[str, str] = {}
        self.orders: list[tuple[bytes, list[bytes]]] = []
        for p in sorted(folder.glob("All_Orders_*.txt")):
            header, rows = _lines(p.read_bytes())
            self.orders.append((header, rows))
            names = _cells(header)
            oid, channel = names.index("amazon-order-id"), names.index("sales-channel")
            for row in rows:
                c = _cells(row)
                self.order_market[c[oid]] = SALES_CHANNEL.get(c[channel], "")

    def _flat(
        self,
        files: list[tuple[bytes, list[bytes]]],
        date_col: str,
        order_col: str | None,
        market_col: str | None,
        start: date,
        end: date,
        markets: set[str],
        feedback: bool = False,
    ) -> bytes:
        out_header, out = None, []
        for header, rows in files:
            names = _cells(header)
            di = names.index(date_col)
            for row in rows:
                c = _cells(row)
                if market_col:
                    market = SALES_CHANNEL.get(c[names.index(market_col)], "")
                else:
                    market = self.order_market.get(c[names.index(order_col)], "")
                if market not in markets:
                    continue
                if feedback:
                    day = datetime.strptime(c[di], FEEDBACK_FORMAT.get(market, "%d/%m/%y")).date()
                else:
                    day = date.fromisoformat(c[di][:10])
                if start <= day <= end:
                    out_header = out_header or header
                    out.append(row)
        return (out_header or files[0][0]) + b"".join(out) if out else b""

    def document(self, report_type: str, start: date, end: date, markets: set[str]) -> bytes:
        """The document's bytes, or b"" when the period has no rows (Amazon: CANCELLED)."""
        if report_type == "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL":
            return self._flat(self.orders, "purchase-date", None, "sales-channel", start, end, markets)
        if report_type == "GET_SELLER_FEEDBACK_DATA":
            files = [_lines(p.read_bytes()) for p in sorted(self.folder.glob("Feedback_*.txt"))]
            return self._flat(files, "Date", "Order ID", None, start, end, markets, feedback=True)
        if report_type == "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA":
            files = [_lines((self.folder / "FBA_Customer_Returns.txt").read_bytes())]
            return self._flat(files, "return-date", "order-id", None, start, end, markets)
        if report_type == "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE":
            files = [_lines((self.folder / "MFN_Returns.txt").read_bytes())]
            return self._flat(files, "Return request date", "Order ID", None, start, end, markets)
        if report_type == "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL":
            return self._fba_shipments(start, end, markets)
        if report_type == "GET_V2_SELLER_PERFORMANCE_REPORT":
            return sorted(self.folder.glob("V2_Seller_Performance_*.json"))[-1].read_bytes()
        raise KeyError(report_type)

    def _fba_shipments(self, start: date, end: date, markets: set[str]) -> bytes:
        """Shipped FBA order items, shipped on their last-updated day (the sample has no such file)."""
        rows = []
        for header, lines in self.orders:
            names = _cells(header)
            for line in lines:
                r = dict(zip(names, _cells(line), strict=False))
                market = SALES_CHANNEL.get(r["sales-channel"], "")
                if (
                    r["fulfillment-channel"] != "Amazon"
                    or r["order-status"] != "Shipped"
                    or market not in markets
                ):
                    continue
                if not start <= date.fromisoformat(r["last-updated-date"][:10]) <= end:
                    continue
                key = hashlib.sha1(f"{r['amazon-order-id']}{r['sku']}".encode()).hexdigest()[:10].upper()
                out = dict.fromkeys(FBA_SHIPMENTS_HEADER, "")
                out.update(
                    {
                        "amazon-order-id": r["amazon-order-id"],
                        "shipment-id": "D" + key[:8],
                        "shipment-item-id": "D" + key,
                        "amazon-order-item-id": key,
                        "purchase-date": r["purchase-date"],
                        "payments-date": r["purchase-date"],
                        "shipment-date": r["last-updated-date"],
                        "reporting-date": r["last-updated-date"],
                        "sku": r["sku"],
                        "product-name": r["product-name"],
                        "quantity-shipped": r["quantity"],
                        "currency": r["currency"],
                        "item-price": r["item-price"],
                        "ship-service-level": r["ship-service-level"],
                        "ship-country": r["ship-country"],
                        "carrier": "AMZN_US" if market == "ATVPDKIKX0DER" else "AMZN_UK",
                        "tracking-number": "TBA" + key,
                        "fulfillment-center-id": "BFI4",
                        "fulfillment-channel": "AFN",
                        "sales-channel": r["sales-channel"],
                    }
                )
                rows.append("\t".join(out[c] for c in FBA_SHIPMENTS_HEADER).encode("latin-1") + b"\n")
        return ("\t".join(FBA_SHIPMENTS_HEADER) + "\n").encode() + b"".join(rows) if rows else b""


@dataclass
class Report:
    report_id: str
    report_type: str
    start: str | None
    end: str | None
    marketplace_ids: list[str]
    polls: int = 0
    status: str = "IN_QUEUE"
    document_id: str | None = None


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class StandIn:
    client_id: str = "amzn1.application-oa2-client.standin"
    client_secret: str = "amzn1.oa2-cs.v1.standin-secret"
    refresh_token: str = "Atzr|standin-refresh-token"
    sample: Sample = field(default_factory=Sample)
    polls_before_final: int = 2
    # controls (tests set them between pulls)
    reject: str | None = None  # "invalid_grant" / "invalid_client": the login service says no
    throttle: dict[str, int] = field(default_factory=dict)  # operation -> answers of 429 still to give
    server_errors: dict[str, int] = field(default_factory=dict)  # operation -> answers of 503 to give
    cancel: set[tuple[str, str | None]] = field(default_factory=set)  # (reportType, start day or None)
    fatal: set[tuple[str, str | None]] = field(default_factory=set)
    drop: dict[str, int] = field(default_factory=dict)  # reportType -> downloads to cut short
    refuse: set[str] = field(default_factory=set)  # report types the app has no role for: 403
    fatal_text: str = (
        '{"errorDetails": "Report processing failed: internal error while generating the report. '
        'Contact seller-support@example.com or call +1 206 266 1000 with this report id."}'
    )

    def __post_init__(self):
        self.seen: list[Seen] = []
        self.created: list[dict] = []  # createReport bodies, in order
        self.reports: dict[str, Report] = {}
        self.documents: dict[str, bytes] = {}  # documentId -> the document (uncompressed)
        self.wire: dict[str, bytes] = {}  # documentId -> the bytes sent
        self.compressed: dict[str, bool] = {}
        self.doc_report: dict[str, str] = {}  # documentId -> reportType
        self.tokens: list[str] = []
        self.lock = threading.Lock()
        self._n = 0
        self.httpd: ThreadingHTTPServer | None = None

    # ---- life

    def start(self, port: int = 0) -> StandIn:
        """Serve on 127.0.0.1:`port` (0: a free one) in a background thread."""
        standin = self

        class Handler(_Handler):
            server_state = standin

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def env(self) -> dict[str, str]:
        return {
            "LWA_APP_ID": self.client_id,
            "LWA_CLIENT_SECRET": self.client_secret,
            "SP_API_REFRESH_TOKEN": self.refresh_token,
        }

    # ---- what the tests read

    def periods(self, report_type: str) -> list[tuple[str | None, str | None]]:
        """(dataStartTime, dataEndTime) of every createReport of `report_type`, in order."""
        return [
            (b.get("dataStartTime"), b.get("dataEndTime"))
            for b in self.created
            if b["reportType"] == report_type
        ]

    def count(self, status: int) -> int:
        return sum(1 for s in self.seen if s.status == status)

    def document_for(self, report_type: str, start: str, end: str) -> bytes:
        """The last document served for that report type and period (the days of its times)."""
        for rep in reversed(self.reports.values()):
            if (
                rep.report_type == report_type
                and (rep.start or "")[:10] == start
                and (rep.end or "")[:10] == end
                and rep.document_id in self.documents
            ):
                return self.documents[rep.document_id]
        raise KeyError((report_type, start, end))

    # ---- behaviour

    def _next(self, prefix: str) -> str:
        with self.lock:
            self._n += 1
            return f"{prefix}{self._n}"

    def _take(self, counters: dict[str, int], key: str) -> bool:
        with self.lock:
            if counters.get(key, 0) > 0:
                counters[key] -= 1
                return True
        return False

    def finalise(self, rep: Report) -> None:
        day = (rep.start or "")[:10] or None
        if (rep.report_type, day) in self.fatal or (rep.report_type, None) in self.fatal:
            rep.status = "FATAL"
            rep.document_id = self._store(self.fatal_text.encode(), rep.report_type, gzip_it=True)
            return
        if (rep.report_type, day) in self.cancel or (rep.report_type, None) in self.cancel:
            rep.status = "CANCELLED"
            return
        start = date.fromisoformat(rep.start[:10]) if rep.start else date.min
        end = date.fromisoformat(rep.end[:10]) if rep.end else date.max
        doc = self.sample.document(rep.report_type, start, end, set(rep.marketplace_ids))
        if not doc:
            rep.status = "CANCELLED"  # Amazon: "canceled if no eligible data is found"
            return
        rep.status = "DONE"
        rep.document_id = self._store(
            doc, rep.report_type, gzip_it=rep.report_type != "GET_V2_SELLER_PERFORMANCE_REPORT"
        )

    def _store(self, doc: bytes, report_type: str, gzip_it: bool) -> str:
        doc_id = self._next("amzn1.spdoc.1.4.na.standin.")
        self.documents[doc_id] = doc
        self.wire[doc_id] = gzip.compress(doc) if gzip_it else doc
        self.compressed[doc_id] = gzip_it
        self.doc_report[doc_id] = report_type
        return doc_id


class _Handler(BaseHTTPRequestHandler):
    server_state: StandIn
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def log_message(self, format, *args):  # quiet
        pass

    # ---- plumbing

    def _send(self, status: int, body: bytes | dict, content_type: str = "application/json", headers=None):
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self._record(status)

    def _record(self, status: int) -> None:
        st = self.server_state
        with st.lock:
            st.seen.append(Seen(self.command, self.path, status, dict(self.headers.items()), self._body))

    def _errors(self, status: int, code: str, message: str, headers=None):
        self._send(status, {"errors": [{"code": code, "message": message, "details": ""}]}, headers=headers)

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        self._body = self._read_body()
        path = urlsplit(self.path).path
        if path == TOKEN_PATH:
            return self._token()
        if path == REPORTS_PATH:
            return self._api("createReport", self._create)
        self._errors(404, "NotFound", "Resource not found.")

    def do_GET(self):
        self._body = b""
        path = urlsplit(self.path).path
        if path.startswith(REPORTS_PATH + "/"):
            return self._api("getReport", lambda: self._get_report(path.rsplit("/", 1)[1]))
        if path.startswith(DOCUMENTS_PATH):
            return self._api("getReportDocument", lambda: self._get_document(path.rsplit("/", 1)[1]))
        if path.startswith(DOWNLOAD_PATH):
            return self._download(path[len(DOWNLOAD_PATH) :])
        self._errors(404, "NotFound", "Resource not found.")

    # ---- Login with Amazon

    def _token(self):
        st = self.server_state
        form = {k: v[0] for k, v in parse_qs(self._body.decode()).items()}
        if st._take(st.throttle, "token"):
            return self._send(429, {"error": "too_many_requests", "error_description": "Rate exceeded"})
        if form.get("grant_type") != "refresh_token":
            return self._send(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        if (
            st.reject == "invalid_client"
            or form.get("client_id") != st.client_id
            or form.get("client_secret") != st.client_secret
        ):
            return self._send(
                401, {"error": "invalid_client", "error_description": "Client authentication failed"}
            )
        if st.reject == "invalid_grant" or form.get("refresh_token") != st.refresh_token:
            return self._send(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter : refresh_token",
                },
            )
        token = "Atza|" + secrets.token_hex(16)
        with st.lock:
            st.tokens.append(token)
        self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    # ---- the Reports API

    def _api(self, operation: str, handler):
        st = self.server_state
        if self.headers.get("x-amz-access-token") not in st.tokens:
            return self._errors(403, "Unauthorized", "Access to requested resource is denied.")
        if st._take(st.throttle, operation):
            return self._errors(
                429,
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                {"x-amzn-RateLimit-Limit": "0.0167"},
            )
        if st._take(st.server_errors, operation):
            return self._send(503, b"<html>Service Unavailable</html>", "text/html")
        handler()

    def _create(self):
        st = self.server_state
        try:
            body = json.loads(self._body)
        except ValueError:
            return self._errors(400, "InvalidInput", "The request body is not JSON.")
        if body.get("reportType") not in REPORT_TYPES:
            return self._errors(400, "InvalidInput", f"Invalid reportType {body.get('reportType')}.")
        if body["reportType"] in st.refuse:
            return self._errors(403, "Unauthorized", "Access to requested resource is denied.")
        if not body.get("marketplaceIds"):
            return self._errors(400, "InvalidInput", "marketplaceIds is required.")
        for key in ("dataStartTime", "dataEndTime"):
            if key in body:
                try:
                    datetime.fromisoformat(body[key].replace("Z", "+00:00"))
                except (AttributeError, ValueError):
                    return self._errors(400, "InvalidInput", f"{key} is not an ISO 8601 date-time.")
        rep = Report(
            st._next(""),
            body["reportType"],
            body.get("dataStartTime"),
            body.get("dataEndTime"),
            list(body["marketplaceIds"]),
        )
        with st.lock:
            st.reports[rep.report_id] = rep
            st.created.append(body)
        self._send(202, {"reportId": rep.report_id})

    def _get_report(self, report_id: str):
        st = self.server_state
        rep = st.reports.get(report_id)
        if rep is None:
            return self._errors(404, "NotFound", "Report not found.")
        rep.polls += 1
        if rep.status in ("IN_QUEUE", "IN_PROGRESS"):
            if rep.polls > st.polls_before_final:
                st.finalise(rep)
            elif rep.polls > 1:
                rep.status = "IN_PROGRESS"
        out = {
            "reportId": rep.report_id,
            "reportType": rep.report_type,
            "marketplaceIds": rep.marketplace_ids,
            "createdTime": "2026-11-16T06:00:00+00:00",
            "processingStatus": rep.status,
        }
        if rep.start:
            out |= {"dataStartTime": rep.start, "dataEndTime": rep.end}
        if rep.document_id:
            out["reportDocumentId"] = rep.document_id
        self._send(200, out)

    def _get_document(self, document_id: str):
        st = self.server_state
        if document_id not in st.documents:
            return self._errors(404, "NotFound", "Document not found.")
        out = {
            "reportDocumentId": document_id,
            "url": f"{st.url}{DOWNLOAD_PATH}{document_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Expires=300&X-Amz-Signature={secrets.token_hex(32)}",
        }
        if st.compressed[document_id]:
            out["compressionAlgorithm"] = "GZIP"
        self._send(200, out)

    def _download(self, document_id: str):
        st = self.server_state
        if "X-Amz-Signature" not in (urlsplit(self.path).query or "") or document_id not in st.wire:
            return self._send(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
        data = st.wire[document_id]
        if st._take(st.drop, st.doc_report[document_id]):
            # the connection breaks mid-document: headers promise every byte, half of them come
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self._record(-200)  # a cut download
            return
        self._send(200, data, "application/octet-stream" if st.compressed[document_id] else "text/plain")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8123)
    st = StandIn().start(ap.parse_args().port)
    print(f"endpoint {st.url}  token URL {st.token_url}", flush=True)
    for k, v in st.env().items():
        print(f"export {k}='{v}'", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
