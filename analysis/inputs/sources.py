"""Readers for every export of `inputs.md`: recognise a file by its header, type its columns.

A folder of downloads goes in; typed polars LazyFrames, one per kind of file, come out, together
with the rows that could not be used (quarantined with file, line, column and reason) and a list
of the files read with their checksums. Buyer personal data is dropped here, on load, so it can
never reach a metric, a report or a log.

Files are hostile until read: nothing outside the data folder is opened (links that lead out are
skipped), decompression and line sizes are bounded, every line of a recognised file becomes a row
(used, set aside with its reason, or counted as a duplicate), and what the files hold reaches a
note or a reason only masked (`analysis.safety`). Anything the readers cannot take is one
`DataError` sentence naming the file and the line.

Big accounts: a plain export (UTF-8, LF, no quotes in a comma file, no line past the limits,
checked on the bytes while they are hashed) is read by polars' CSV reader in bounded memory,
each repeated value (statuses, SKUs, quantities...) parsed and checked once, and only the rows
that break a rule or repeat another go through the line-by-line typing, so reasons, lines and
counts are the same. Rows are kept in narrow types (enums, categoricals; `Dataset.frame` shows
them as text) and in an on-disk cache (`analysis.inputs.cache`), so an unchanged folder is read
once.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import io
import json
import os
import re
import stat
import threading
import warnings
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from analysis import wording
from analysis.errors import DataError  # noqa: F401  (re-exported: callers catch sources.DataError)
from analysis.inputs import cache, parsing
from analysis.inputs.marketplaces import SALES_CHANNEL_TO_ID, feedback_date_format
from analysis.inputs.snapshots import ALIASES, SetAside, key_path, read_snapshot
from analysis.safety import EMAIL_MASK, EMAIL_PATTERN, mask, mask_expr, terminal_text


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    parse: str = "text"  # text | token | timestamp | promise | bool | int | float | raw
    required: bool = True
    # the column must be in the header even when not `required` (a blank cell is allowed): without
    # it the metric could not tell "none" from "not given"
    in_header: bool = False
    aliases: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    # (predicate on the parsed value, reason when it is false), checked in order
    checks: tuple[tuple[Callable[[pl.Expr], pl.Expr], str], ...] = ()

    @property
    def header_required(self) -> bool:
        """A file of its kind without this column is refused."""
        return self.required or self.in_header


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    signature: tuple[str, ...]
    columns: tuple[Column, ...]
    pii: tuple[str, ...] = ()


ORDER_STATUSES = ("pending", "unshipped", "partiallyshipped", "shipped", "shipping", "cancelled")
CLAIM_STATUSES = (
    "under-review",
    "granted",
    "seller-funded",
    "amazon-funded",
    "denied",
    "withdrawn",
    "appealed",
)
CHARGEBACK_STATUSES = ("open", "seller-won", "seller-lost", "amazon-funded")
PII_HEADERS = (
    "Rater Email",
    "buyer-email",
    "buyer-name",
    "buyer-phone-number",
    "recipient-name",
    "ship-address-1",
    "ship-address-2",
    "ship-address-3",
    "ship-phone-number",
    "bill-address-1",
    "bill-address-2",
    "bill-address-3",
)


MAX_QUANTITY = 10_000  # units in one order item or return: more is a broken cell, not a sale


def _nonneg(e: pl.Expr) -> pl.Expr:
    return e >= 0


def _not_huge(e: pl.Expr) -> pl.Expr:
    return e <= MAX_QUANTITY


QUANTITY_CHECKS = ((_nonneg, "negative quantity"), (_not_huge, f"quantity above {MAX_QUANTITY:,}"))


KINDS: tuple[Kind, ...] = (
    Kind(
        "orders",
        "All Orders report",
        ("amazon-order-id", "purchase-date", "order-status"),
        (
            Column("amazon-order-id", "order_id"),
            Column("purchase-date", "purchase_ts", "timestamp"),
            Column("last-updated-date", "last_updated_ts", "timestamp", required=False),
            Column("order-status", "order_status", "token", allowed=ORDER_STATUSES),
            Column(
                "fulfillment-channel",
                "fulfillment_channel",
                "token",
                allowed=("amazon", "afn", "merchant", "mfn"),
            ),
            Column("sales-channel", "sales_channel", allowed=tuple(SALES_CHANNEL_TO_ID)),
            Column("ship-service-level", "ship_service_level", required=False),
            Column("product-name", "product_name", required=False),
            Column("sku", "sku"),
            Column("asin", "asin", required=False),
            Column("item-status", "item_status", required=False),
            Column(
                "quantity",
                "quantity",
                "int",
                aliases=("quantity-purchased",),
                checks=QUANTITY_CHECKS,
            ),
            Column("currency", "currency", required=False),
            Column("item-price", "item_price", "float", required=False),
            Column("ship-country", "ship_country", required=False),
            Column("is-business-order", "is_business_order", "bool", required=False),
        ),
        pii=PII_HEADERS,
    ),
    Kind(
        "feedback",
        "Seller feedback report",
        ("Rating", "Order ID", "Date"),
        (
            Column("Date", "date_raw", "raw"),
            Column(
                "Rating", "rating", "int", checks=((lambda e: e.is_between(1, 5), "rating outside 1 to 5"),)
            ),
            Column("Comments", "comments", required=False),
            Column("Your Response", "response", required=False, aliases=("Response",)),
            Column("Order ID", "order_id"),
            Column("Removed", "removed", "bool", required=False),
        ),
        pii=PII_HEADERS,
    ),
    Kind(
        "claims",
        "A-to-z claims",
        ("claim-date", "claim-status"),
        (
            Column("order-id", "order_id"),
            Column("claim-date", "claim_ts", "timestamp"),
            Column("claim-reason", "claim_reason", "token", required=False),
            Column("claim-status", "claim_status", "token", allowed=CLAIM_STATUSES),
            Column("claim-amount", "claim_amount", "float", required=False),
        ),
    ),
    Kind(
        "chargebacks",
        "Chargebacks",
        ("chargeback-date", "category"),
        (
            Column("order-id", "order_id"),
            Column("chargeback-date", "chargeback_ts", "timestamp"),
            Column("reason", "reason", required=False),
            Column("category", "category", "token", allowed=("service", "fraud")),
            Column("status", "status", "token", allowed=CHARGEBACK_STATUSES),
        ),
    ),
    Kind(
        "shipments",
        "MFN shipments",
        ("latest-ship-date", "ship-date"),
        (
            Column("order-id", "order_id"),
            Column("latest-ship-date", "latest_ship_ts", "promise"),
            Column("ship-date", "ship_ts", "timestamp", required=False),
            Column("carrier-code", "carrier", required=False),
            Column("tracking-number", "tracking_number", required=False),
            Column("tracking-valid", "tracking_valid", "bool", required=False),
            Column("latest-delivery-date", "latest_delivery_ts", "promise", required=False),
            Column("delivery-date", "delivery_ts", "timestamp", required=False),
            # extension: true when the label was bought through Amazon's Buy Shipping
            Column("buy-shipping", "buy_shipping", "bool", required=False),
        ),
    ),
    Kind(
        "cancellations",
        "Cancellations",
        ("cancel-date", "requested-by"),
        (
            Column("order-id", "order_id"),
            Column("cancel-date", "cancel_ts", "timestamp"),
            Column("requested-by", "requested_by", "token", allowed=("buyer", "seller", "system")),
        ),
    ),
    Kind(
        "fba_returns",
        "FBA customer returns",
        ("return-date", "fulfillment-center-id"),
        (
            Column("return-date", "return_ts", "timestamp"),
            Column("order-id", "order_id"),
            Column("sku", "sku", required=False),
            Column("asin", "asin", required=False),
            Column("quantity", "quantity", "int", required=False, checks=QUANTITY_CHECKS),
            Column("detailed-disposition", "disposition", required=False),
            Column("reason", "reason", required=False),
            Column("customer-comments", "comments", required=False),
        ),
    ),
    Kind(
        "mfn_returns",
        "MFN returns",
        ("Order ID", "Return request date"),
        (
            Column("Order ID", "order_id"),
            Column("Return request date", "return_ts", "timestamp"),
            Column("Return request status", "return_status", required=False),
            Column("Merchant SKU", "sku", required=False),
            Column("Return Reason", "reason", required=False),
            Column("Return quantity", "quantity", "int", required=False, checks=QUANTITY_CHECKS),
            # a return request not (yet) refunded has it blank: no refund, not a bad row
            Column("Refunded Amount", "refunded_amount", "float", required=False, in_header=True),
        ),
        pii=PII_HEADERS,
    ),
    Kind(
        "messages",
        "Buyer messages",
        ("thread-id", "received-at"),
        (
            Column("thread-id", "thread_id"),
            Column("order-id", "order_id", required=False),
            Column("received-at", "received_ts", "timestamp"),
            Column("responded-at", "responded_ts", "timestamp", required=False),
        ),
    ),
    Kind(
        "invoices",
        "Business invoices",
        ("invoice-uploaded-at",),
        (
            Column("order-id", "order_id"),
            Column("invoice-uploaded-at", "invoice_ts", "timestamp"),
        ),
    ),
)
KIND_BY_NAME = {k.name: k for k in KINDS}
TABLE_KINDS = tuple(k.name for k in KINDS)
# Columns holding the moment something happened (not a promise): none can be after the download.
EVENT_COLUMNS = {k.name: tuple(c for c in k.columns if c.parse == "timestamp") for k in KINDS}

QUARANTINE_SCHEMA = {
    "file": pl.String,
    "line": pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "reason": pl.String,
}

# ----------------------------------------------------------------------------- limits

MAX_LINE_CHARS = 1_000_000  # characters in one line of a table file
MAX_FIELDS = 500  # cells in one line (an All Orders row has 33)
GZIP_MAX_RATIO = 20  # a .gz may expand to this many times its size on disk...
GZIP_MAX_BYTES = 20 * 10**9  # ...and never past 20 GB
MAX_JSON_DEPTH = 64  # a V2 document nests 6 deep
FUTURE_SLACK = dt.timedelta(days=1)  # a date may be this far past the download (time zones)
OUTLIER_GAP = dt.timedelta(days=30)  # newest dates this far from the rest, and few, are not plausible
EARLIEST_DAY = dt.date(2000, 1, 1)  # no seller export holds an event before this day
SHOWN_VALUE_CHARS = 200  # a set-aside value is shown up to this length (masked)
ROW = "(row)"  # the column of a reason about the whole line


@dataclass
class SourceFile:
    path: Path
    kind: str
    rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    superseded: int = 0
    accepted: int = 0
    sha256: str = ""
    encoding: str = ""


@dataclass
class Dataset:
    """Everything read from one folder: typed frames per kind, snapshots, and what was set aside.

    `frames` hold the rows in their stored, narrow types (statuses, channels and marketplaces as
    enums, SKUs and other repeated text as categoricals); `frame(kind)` gives them with every such
    column as text, the schema every consumer sees. `cache_notes` says what the on-disk cache did
    when it could not be used (printed as warnings; never part of the outputs)."""

    data_dir: Path
    files: list[SourceFile]
    frames: dict[str, pl.LazyFrame]
    snapshots: list[dict]
    quarantine: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False)  # derived tables, computed once per run
    cache_notes: list[str] = field(default_factory=list, repr=False)

    def has(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.files)

    def frame(self, kind: str) -> pl.LazyFrame:
        return as_text(self.frames[kind])

    def derived(self, name: str, build: Callable[[], pl.LazyFrame | pl.DataFrame]) -> pl.LazyFrame:
        """A table computed from the frames once per dataset (populations, ...): read from the
        on-disk cache when this dataset came from it and its frames are still the ones loaded,
        else built now (and stored for the next run). `name` must change with the code that
        builds it."""
        self.derive_all({name: build})
        return self.cache[("derived", name, frames_key(self))]

    def derive_all(self, builds: dict[str, Callable[[], pl.LazyFrame | pl.DataFrame]]) -> None:
        """`derived` for several tables at once (in this order), so that on a run that writes
        the cache each table is written while the next one is computed."""
        fk = frames_key(self)
        todo = [(name, build) for name, build in builds.items() if ("derived", name, fk) not in self.cache]
        if not todo:
            return
        store = self.cache.get(_STORE)
        if store is not None and store.serves(self):
            for name, lf in store.derived_many(todo, self.cache_notes).items():
                self.cache[("derived", name, fk)] = lf
            return
        for name, build in todo:
            built = build()
            self.cache[("derived", name, fk)] = (
                built.collect() if isinstance(built, pl.LazyFrame) else built
            ).lazy()


_STORE = "_on_disk_store"  # key in Dataset.cache: the cache entry this dataset was read from


def frames_key(data: Dataset) -> tuple:
    """Identifies the frames a derived table was computed from (a copy of a dataset with other
    frames, sharing its `cache` dict, gets its own)."""
    return tuple((k, id(v)) for k, v in data.frames.items())


def cache_entry(data: Dataset) -> cache.Store | None:
    """The on-disk cache entry `data` was read from or is being written to (None: not cached)."""
    return data.cache.get(_STORE)


def as_text(lf: pl.LazyFrame) -> pl.LazyFrame:
    """`lf` with its enum and categorical columns as text (the schema consumers see); only the
    columns a query uses are converted."""
    names = [c for c, t in lf.collect_schema().items() if isinstance(t, pl.Categorical | pl.Enum)]
    return lf.with_columns(pl.col(names).cast(pl.String)) if names else lf


_EMAIL = re.compile(EMAIL_PATTERN)


def _shown(name: str) -> str:
    """A file name as every output shows it: printable (bytes that are not UTF-8 and control
    characters as \\xNN), on one line, an e-mail address in it masked. Digits are left alone: a
    download is named like 28392749283018.txt, which `safety.mask` would take for a phone."""
    return _EMAIL.sub(EMAIL_MASK, terminal_text(name).replace("\n", "\\x0a"))


def _quarantine(rows: list[tuple[str, int | None, str, object, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(f, ln, c, None if v is None else str(v), r) for f, ln, c, v, r in rows],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )


# ----------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class _Entry:
    path: Path  # as listed in the folder
    target: Path  # what is read (a link's target, inside the folder)
    shown: str  # the name every output uses
    mtime: dt.date  # the UTC day the file was last written
    empty_kind: str = ""  # a pulled period Amazon had no data for: this kind is present, no rows


RAW_DIR = "raw"  # what `python -m analysis pull` writes: raw/<reportType>/<first>_<last>.<ext>.gz
# the kind each pulled report type holds; a type not listed (FBA shipments) is kept, not read
RAW_KINDS = {
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": "orders",
    "GET_SELLER_FEEDBACK_DATA": "feedback",
    "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA": "fba_returns",
    "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE": "mfn_returns",
    "GET_V2_SELLER_PERFORMANCE_REPORT": "performance_snapshot",
}
_RAW_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.(?:(?:txt|json)\.gz|cancelled)$")


def _raw_entries(raw: Path, root: Path, entries: list[_Entry], skipped: list[tuple[str, str]]) -> None:
    """The pulled documents under raw/<reportType>/ (regular files only, no links), named
    '<reportType>_<first>_<last>.txt.gz' in every output. A '.cancelled' marker (Amazon had no data
    for the period) is an entry too: the kind is present, with no rows."""
    for folder in sorted(raw.iterdir()):
        kind = RAW_KINDS.get(folder.name)
        if kind is None or folder.is_symlink() or not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if not _RAW_NAME.match(f.name) or f.is_symlink():
                continue  # temporary parts of an interrupted pull, anything else
            try:
                st = f.stat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not f.resolve().is_relative_to(root):
                continue
            mtime = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).date()
            shown = _shown(f"{folder.name}_{f.name}")
            entries.append(_Entry(f, f, shown, mtime, kind if f.name.endswith(".cancelled") else ""))


def _entries(data_dir: Path) -> tuple[list[_Entry], list[tuple[str, str]]]:
    """The files to read, in name order, and the ones skipped with why. A link is followed only
    when its target (every link resolved) is inside the data folder."""
    root = data_dir.resolve()
    try:
        listed = sorted(data_dir.iterdir())
    except OSError as exc:
        raise DataError(
            f"The data folder {_shown(str(data_dir))} cannot be listed ({exc.strerror}); check its permissions."
        ) from exc
    entries: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    for p in listed:
        if p.name.startswith(".") or p.name.lower().startswith("readme"):
            continue
        shown = _shown(p.name)
        try:
            target = p
            if p.is_symlink():
                try:
                    target = p.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append((shown, "a link that leads to no file; it was not read"))
                    continue
                if not target.is_relative_to(root):
                    skipped.append((shown, "a link to a file outside the data folder; it was not read"))
                    continue
            st = target.stat()
        except OSError as exc:
            skipped.append((shown, f"cannot be inspected ({exc.strerror}); it was not read"))
            continue
        if stat.S_ISDIR(st.st_mode):
            if p.name == RAW_DIR and not p.is_symlink():
                _raw_entries(p, root, entries, skipped)
            continue  # other subfolders are not read
        if not stat.S_ISREG(st.st_mode):
            skipped.append((shown, "not a regular file (a pipe, socket or device); it was not read"))
            continue
        mtime = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).date()
        entries.append(_Entry(p, target, shown, mtime))
    return entries, skipped


def _read_file(entry: _Entry) -> bytes:
    try:
        fd = os.open(entry.target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise DataError(f"{entry.shown}: not a regular file; move it out of the data folder.")
            return fh.read()
    except OSError as exc:
        raise DataError(
            f"{entry.shown}: cannot read the file ({exc.strerror}); check that it is readable or move it out of the folder."
        ) from exc


# ----------------------------------------------------------------------------- bytes to text


def _gunzip(raw: bytes, shown: str) -> bytes:
    """The bytes of a gzip file (every member), decompressed in bounded steps: past
    GZIP_MAX_RATIO times the size on disk (at most GZIP_MAX_BYTES) it is refused, so a small
    file that expands to gigabytes never reaches memory."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    limit = min(GZIP_MAX_RATIO * len(raw), GZIP_MAX_BYTES)
    out: list[bytes] = []
    total = lines = 0
    data = raw
    try:
        while True:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = data
            while not d.eof:
                chunk = d.decompress(pending, 1 << 20)
                pending = d.unconsumed_tail
                if chunk:
                    total += len(chunk)
                    if total > limit:
                        at = lines + chunk.count(b"\n", 0, len(chunk) - (total - limit)) + 1
                        raise DataError(
                            f"{shown} line {at}: the gzip file expands to more than {limit:,} bytes "
                            f"({GZIP_MAX_RATIO} times its size, at most {GZIP_MAX_BYTES:,}), far more than an "
                            "export; decompress and check it yourself, or remove it from the folder."
                        )
                    lines += chunk.count(b"\n")
                    out.append(chunk)
                elif not d.eof:  # no output and no end: the input ran out
                    raise DataError(
                        f"{shown}: the gzip file is damaged (it ends early, in line {lines + 1}); download it again."
                    )
            rest = d.unused_data
            if not rest.strip(b"\x00"):
                break
            if rest[:2] != b"\x1f\x8b":
                raise DataError(
                    f"{shown}: the gzip file is damaged (bytes after its end); download it again."
                )
            data = rest
    except zlib.error as exc:
        raise DataError(f"{shown}: the gzip file is damaged ({exc}); download it again.") from exc
    return b"".join(out)


# (magic bytes, what the file is): files that are not text are listed and skipped.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive or an Excel workbook (.xlsx)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
)
_BOMS = (  # UTF-32 first: its little-endian BOM starts like UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a BOM: ASCII letters leave a zero byte in every other place."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    z_even, z_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if z_odd > 0.3 and z_even < 0.05:
        return "utf-16-le"
    if z_even > 0.3 and z_odd < 0.05:
        return "utf-16-be"
    return None


def _decode(raw: bytes, path: Path | str = "") -> tuple[str | None, str]:
    """Text of a file and the encoding it was read with: UTF-32 or UTF-16 with a BOM (Excel's
    "Unicode text"), UTF-16 without one, UTF-8 (with or without BOM), else cp932 when the bytes
    are valid Shift_JIS holding Japanese, else windows-1252. (None, what it is) for a file that is
    not text (an archive, a workbook, an image, binary bytes).

    A UTF-8 file with a few damaged bytes stays UTF-8 (so its other accented letters are not
    garbled): the damaged bytes become U+FFFD and their rows are quarantined."""
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            return None, what
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :].decode(enc, errors="replace"), enc
    head = raw[:4096]
    if b"\x00" in head:
        enc = _utf16_without_bom(head)
        if enc:
            return raw.decode(enc, errors="replace"), f"{enc} (no BOM)"
        if head.count(0) * 100 > len(head):
            return None, "binary data, not text"
    bom = raw.startswith(codecs.BOM_UTF8)
    body = raw[len(codecs.BOM_UTF8) :] if bom else raw
    label = "utf-8-sig" if bom else "utf-8"
    try:
        return body.decode("utf-8"), label
    except UnicodeDecodeError:
        pass
    lenient = body.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd")
    good = len(lenient) - len(lenient.encode("ascii", "ignore")) - bad  # well-formed non-ASCII
    if bom or good > bad:
        return lenient, f"{label} (damaged bytes)"
    try:
        text = body.decode("cp932")
        # Hiragana or full-width katakana: windows-1252 text misread as cp932 gives kanji and
        # half-width katakana (for £, ×, ...) but practically never these.
        if re.search(r"[\u3041-\u3096\u30a1-\u30fa]", text):
            return text, "cp932"
    except UnicodeDecodeError:
        pass
    # windows-1252 leaves five bytes undefined: they become U+FFFD and their rows are quarantined.
    return body.decode("cp1252", errors="replace"), "cp1252"


def _normalise(text: str) -> str:
    """One line end (LF): CRLF, and CR alone where it ends most lines (old Mac files); a CR left
    inside a line is a space. NUL is damage (U+FFFD, its row is set aside); a BOM inside the text
    (files joined together) is dropped. U+2028/U+2029/NEL end lines only in a file without LF."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        text = text.replace("\r", "\n" if text.count("\r") > text.count("\n") else " ")
    if "\n" not in text and re.search("[\u2028\u2029\x85]", text):
        text = re.sub("[\u2028\u2029\x85]", "\n", text)
    return text


# ----------------------------------------------------------------------------- recognising


def _split_header(line: str) -> tuple[list[str], str]:
    sep = "\t" if "\t" in line else ","
    cells = [c.strip().strip('"').strip() for c in line.split(sep, MAX_FIELDS)[:MAX_FIELDS]]
    while cells and cells[-1] == "":
        cells.pop()
    return cells, sep


def recognise(header: list[str]) -> Kind | None:
    """The kind whose signature columns all appear in the header (most specific first)."""
    present = set(header)
    matches = [k for k in KINDS if set(k.signature) <= present]
    if not matches:
        return None
    return max(matches, key=lambda k: len(k.signature))


def _near_kind(header: list[str]) -> Kind | None:
    """The kind this header is with one required column added back: every required column but one
    present, of a kind with at least four (All Orders, chargebacks; two or three such columns,
    'Date' and 'Order ID', could be any spreadsheet's). Such a file is an export that lost a
    column, refused by name rather than skipped as unknown (skipped, a marketplace's orders would
    quietly vanish)."""
    present = set(header)
    for k in KINDS:
        needed = [(c.header, *c.aliases) for c in k.columns if c.header_required]
        missing = [names for names in needed if not present.intersection(names)]
        if len(needed) >= 4 and len(missing) == 1:
            return k
    return None


def _unknown(header: list[str]) -> str:
    """Why a first line is no export's header, naming only the columns it is recognised by (never
    the line itself: an unknown file may start with a customer's record)."""
    present = set(header)
    best = max(KINDS, key=lambda k: (len(set(k.signature) & present), len(k.signature)))
    have = [c for c in best.signature if c in present]
    if not have:
        return "not a known export (its first line names none of the columns the exports are recognised by)"
    lacking = ", ".join(f"'{c}'" for c in best.signature if c not in present)
    return f"not a known export (its first line has {', '.join(repr(c) for c in have)} but not {lacking} of the {best.title})"


_LEADING_BLANK_LINES = re.compile(r"(?:[ \t\f\v]*\n)*")


def _header_line(text: str, shown: str) -> tuple[int, int, str] | None:
    """(offset, line number, text) of the header, the first line that is not blank; None when
    the file holds nothing but blanks."""
    start = _LEADING_BLANK_LINES.match(text).end()
    nl = text.find("\n", start, start + MAX_LINE_CHARS + 1)
    end = nl if nl >= 0 else len(text)
    number = text.count("\n", 0, start) + 1
    if end - start > MAX_LINE_CHARS:
        raise DataError(_too_long(shown, number))
    line = text[start:end]
    return (start, number, line) if line.strip() else None


def _too_long(shown: str, line: int) -> str:
    return (
        f"{shown} line {line}: the line is longer than {MAX_LINE_CHARS:,} characters, which no export has; "
        "check the file or remove it from the folder."
    )


def _too_wide(shown: str, line: int, fields: int | None = None) -> str:
    n = f"{fields:,} fields" if fields else f"more than {MAX_FIELDS} fields"
    return (
        f"{shown} line {line}: the line has {n}, more than the {MAX_FIELDS} an export may have; "
        "check the file or remove it from the folder."
    )


# ----------------------------------------------------------------------------- one table file


def _columns_used(shown: str, kind: Kind, header: list[str], line: int) -> dict[str, str]:
    """field -> header name of the kind's columns in the header; DataError when a required one is
    absent or a used one is named twice (which of the two holds it is unclear)."""
    counts = Counter(header)
    selected: dict[str, str] = {}
    for col in kind.columns:
        found = next((h for h in (col.header, *col.aliases) if h in counts), None)
        if found is None and col.header_required:
            raise DataError(
                f"{shown}: the {kind.title} file has no '{col.header}' column (line {line}); "
                f"add it or download the report again with all columns."
            )
        if found is not None:
            if counts[found] > 1:
                raise DataError(
                    f"{shown} line {line}: the header names the column '{found}' {counts[found]} times, so which one "
                    "holds its values is unclear; remove the extra one."
                )
            selected[col.field] = found
    return selected


_CHUNK_CHARS = 1 << 21  # lines are split about 2 MB at a time, so blank lines cost no memory


def _chunks(shown: str, text: str, start: int, header_no: int, sep: str) -> Iterator[tuple[int, pl.Series]]:
    """The lines from `start` (the header's) on, about _CHUNK_CHARS characters at a time, with
    the file line of each chunk's first line; every line checked against MAX_LINE_CHARS and
    MAX_FIELDS before anything splits it into cells."""
    pos, line_no, n = start, header_no, len(text)
    while pos < n:
        cut = pos + _CHUNK_CHARS
        end = n if cut >= n else text.find("\n", cut, cut + MAX_LINE_CHARS + 1)
        if end < 0:
            if n - cut > MAX_LINE_CHARS:  # the line holding `cut` runs past the limit
                raise DataError(_too_long(shown, line_no + text.count("\n", pos, cut)))
            end = n
        s = pl.Series("_raw", text[pos:end].split("\n"), dtype=pl.String)
        over = (s.str.len_chars() > MAX_LINE_CHARS).arg_true()
        if over.len():
            raise DataError(_too_long(shown, line_no + over[0]))
        seps = s.str.count_matches(sep, literal=True)
        over = (seps >= MAX_FIELDS).arg_true()
        if over.len():
            raise DataError(_too_wide(shown, line_no + over[0], seps[over[0]] + 1))
        yield line_no, s
        line_no += s.len()
        pos = end + 1


def _read_table(
    shown: str, text: str, start: int, header_no: int, header: list[str], sep: str, used: list[str]
) -> pl.DataFrame:
    """One row per line that is not blank: `_line` (the file's line), the `used` header columns
    as raw text, and `__why` / `__value` for a line that cannot be a row at all (more cells than
    the header, the header again, a quoted value over several lines)."""
    width = len(header)
    index = {name: header.index(name) for name in used}
    word = "tab" if sep == "\t" else "comma"
    quoted = sep == "," and text.find('"', start) >= 0
    parts: list[pl.DataFrame] = []
    header_line: str | None = None
    for first, s in _chunks(shown, text, start, header_no, sep):
        if quoted:
            continue  # the limits only: the csv module reads it below
        if header_line is None:
            header_line = (s[0] or "").strip()
        blank = s.str.replace_all(sep, "", literal=True).str.strip_chars() == ""
        if first == header_no:
            blank[0] = True  # the header is not a row
        df = (
            s.to_frame()
            .with_row_index("_i")
            .filter(~blank)
            .with_columns(pl.col("_raw").str.split(sep).alias("_cells"))
        )
        n = pl.col("_cells").list.len()
        extra = pl.col("_cells").list.slice(width)
        ragged = (n > width) & extra.list.eval(pl.element().str.strip_chars() != "").list.any()
        again = pl.col("_raw").str.strip_chars() == header_line
        parts.append(
            df.select(
                (pl.col("_i").cast(pl.Int64) + first).alias("_line"),
                pl.when(again)
                .then(pl.lit("the header line again (were two files joined?)"))
                .when(ragged)
                .then(pl.format(f"{{}} cells where the header has {width} (a {word} inside a value?)", n))
                .otherwise(None)
                .alias("__why"),
                pl.when(ragged & ~again).then(extra.list.join(sep)).otherwise(None).alias("__value"),
                *[pl.col("_cells").list.get(i, null_on_oob=True).alias(name) for name, i in index.items()],
            )
        )
    if quoted:
        return _read_quoted(shown, text[start:], header_no, used, word)
    schema = {"_line": pl.Int64, "__why": pl.String, "__value": pl.String, **{u: pl.String for u in used}}
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _read_quoted(shown: str, body: str, header_no: int, used: list[str], word: str) -> pl.DataFrame:
    """A comma file with quotes, through the csv module: a quoted value may hold commas and line
    ends, so rows are not lines. A row over several lines is set aside (a quote without its pair
    swallows the lines after it); the line numbers are the file's."""
    reader = csv.reader(io.StringIO(body, newline=""), strict=False)
    out: dict[str, list] = {"_line": [], "__why": [], "__value": [], **{u: [] for u in used}}
    try:
        head = next(reader)
        cells = [c.strip().strip('"').strip() for c in head]
        while cells and cells[-1] == "":
            cells.pop()
        width = len(cells)
        if any(cells.count(u) != 1 for u in used):
            raise DataError(f"{shown} line {header_no}: the header cannot be read as comma-separated values.")
        index = {u: cells.index(u) for u in used}
        prev = reader.line_num
        body_lines: list[str] = []  # split only when a quoted value runs over lines
        for row in reader:
            first, last = prev + 1, reader.line_num
            prev = last
            if not row or all(not c.strip() for c in row):
                continue
            why = value = None
            if last > first:
                why = (
                    f"a quoted value runs from line {first + header_no - 1} to line {last + header_no - 1} "
                    "(a '\"' without its pair?)"
                )
                # every line it swallowed is a row set aside too: each may have been a row of its own
                # (79 claims after a stray quote were counted as one row)
                body_lines = body_lines or body.split("\n")
                for line in range(first + 1, last + 1):
                    if not body_lines[line - 1].strip():
                        continue  # a blank line is no row, here as anywhere
                    out["_line"].append(line + header_no - 1)
                    out["__why"].append(f"inside the quoted value that opens on line {first + header_no - 1}")
                    out["__value"].append(None)
                    for u in index:
                        out[u].append(None)
            elif [c.strip().strip('"').strip() for c in row[:width]] == cells and not any(
                c.strip() for c in row[width:]
            ):
                why = "the header line again (were two files joined?)"
            elif len(row) > width and any(c.strip() for c in row[width:]):
                why = f"{len(row)} cells where the header has {width} (a {word} inside a value?)"
                value = ",".join(row[width:])
            out["_line"].append(first + header_no - 1)
            out["__why"].append(why)
            out["__value"].append(value)
            for u, i in index.items():
                out[u].append(row[i] if i < len(row) else None)
    except csv.Error as exc:
        raise DataError(
            f"{shown} line {reader.line_num + header_no}: cannot be read as comma-separated values ({exc})."
        ) from exc
    schema = {"_line": pl.Int64, "__why": pl.String, "__value": pl.String, **{u: pl.String for u in used}}
    return pl.DataFrame(out, schema=schema)


def _typed(
    shown: str, kind: Kind, df: pl.DataFrame, selected: dict[str, str]
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Typed rows, quarantined cells, and the number of exact duplicate rows dropped."""
    raw = df.select(
        pl.col("_line"),
        pl.col("__why"),
        pl.col("__value"),
        *[pl.col(h).str.strip_chars().replace("", None).alias(f) for f, h in selected.items()],
    )
    whole = raw.filter(pl.col("__why").is_not_null())
    row_quarantine = whole.select(
        pl.lit(shown).alias("file"),
        pl.col("_line").alias("line"),
        pl.lit(ROW).alias("column"),
        pl.col("__value").alias("value"),
        pl.col("__why").alias("reason"),
    )
    raw = raw.filter(pl.col("__why").is_null()).drop("__why", "__value")
    data_cols = [f for f in selected]
    before = raw.height
    raw = _drop_exact_duplicates(raw, data_cols)
    duplicates = before - raw.height

    # Parse every column once; each column's first broken rule becomes the row's reason.
    typed_cols: dict[str, pl.Series] = {}
    reasons: list[pl.Expr] = []
    for col in kind.columns:
        if col.field not in selected:
            typed_cols[col.field] = pl.Series(
                col.field, [None] * raw.height, dtype=_DTYPES.get(col.parse, pl.String())
            )
            continue
        typed_cols[col.field] = _parse_series(col, raw[col.field])
        for cond, why in _rules(col, pl.col(col.field), pl.col(f"__p_{col.field}")):
            reasons.append(pl.when(cond).then(pl.lit(f"{selected[col.field]}\x00{why}\x00{col.field}")))
    checked = raw.with_columns(
        *[s.alias(f"__p_{f}") for f, s in typed_cols.items()],
    ).with_columns(pl.coalesce(reasons).alias("__why") if reasons else pl.lit(None, pl.String).alias("__why"))
    bad = checked.filter(pl.col("__why").is_not_null())
    quarantine = pl.concat([row_quarantine, _reasons_to_quarantine(shown, bad)])
    typed = (
        checked.filter(pl.col("__why").is_null())
        .select(pl.col("_line"), *[pl.col(f"__p_{f}").alias(f) for f in typed_cols])
        .with_columns(pl.lit(shown).alias("_file"))
    )
    return typed, quarantine, duplicates


def _rules(col: Column, given: pl.Expr, parsed: pl.Expr, damaged: bool = True) -> list[tuple[pl.Expr, str]]:
    """(condition, reason) of each rule of a column, in the order they are checked; `given` is
    the stripped cell (null when empty), `parsed` its typed value. `damaged`: the file may hold
    U+FFFD (a file without those bytes cannot break that rule)."""
    rules: list[tuple[pl.Expr, str]] = []
    if damaged:
        rules.append(
            (
                given.cast(pl.String).str.contains("\ufffd", literal=True),
                "bytes not valid in the file's encoding",
            )
        )
    if col.required:
        rules.append((given.is_null(), "missing value"))
    if col.parse in ("int", "float"):
        rules.append((given.is_not_null() & parsing.non_finite(given), "not a finite number"))
    if col.parse not in ("text", "raw", "token"):
        rules.append((given.is_not_null() & parsed.is_null(), f"cannot read as {col.parse}"))
    if col.allowed is not None:
        rules.append((given.is_not_null() & ~parsed.is_in(list(col.allowed)), "unknown value"))
    for pred, why in col.checks:
        rules.append((parsed.is_not_null() & ~pred(parsed), why))
    return rules


def _reasons_to_quarantine(file: str | None, bad: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows from `__why` = "column\\0reason\\0field" (the value is the row's `field`);
    the file is `file`, or each row's `_file`."""
    if not bad.height:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    parts = (
        bad["__why"]
        .str.split_exact("\x00", 2)
        .struct.rename_fields(["column", "reason", "field"])
        .struct.unnest()
    )
    fields = parts["field"].unique().to_list()
    texts = pl.DataFrame(
        {"__field": parts["field"], **{f"__{i}": _as_text(bad[f]) for i, f in enumerate(fields)}}
    )
    values = texts.select(
        pl.coalesce([pl.when(pl.col("__field") == f).then(pl.col(f"__{i}")) for i, f in enumerate(fields)])
    ).to_series()
    return pl.DataFrame(
        {
            "file": [file] * bad.height if file is not None else bad["_file"],
            "line": bad["_line"],
            "column": parts["column"],
            "value": values,
            "reason": parts["reason"],
        },
        schema=QUARANTINE_SCHEMA,
    )


def _as_text(values: pl.Series) -> pl.Series:
    """A set-aside value as text, in polars (a date of year 0 has no Python datetime)."""
    if isinstance(values.dtype, pl.Datetime):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
    if values.dtype == pl.Date:
        return values.dt.strftime("%Y-%m-%d")
    return values.cast(pl.String)


def _repeats(h: np.ndarray | pl.Series) -> pl.Series:
    """Whether each 64-bit hash occurs more than once (`Series.is_duplicated`, by a sort: about
    seven times faster, and most tables have no repeat at all)."""
    h = h.to_numpy() if isinstance(h, pl.Series) else h
    ordered = np.sort(h)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return pl.Series(np.zeros(len(h), dtype=bool))
    return pl.Series(np.isin(h, ordered[1:][same]))


def _drop_exact_duplicates(raw: pl.DataFrame, cols: list[str], key: str = "_line") -> pl.DataFrame:
    """Exact duplicate rows within one file (first kept). Row hashes find candidates fast; only
    rows sharing a hash are compared value by value, so a hash collision never drops a row."""
    if not cols:
        return raw
    shared = _repeats(raw.select(cols).hash_rows())
    if not shared.any():
        return raw
    cand = raw.filter(shared)
    drop = cand.filter(~pl.struct(cols).is_first_distinct())[key]
    return raw.filter(~pl.col(key).is_in(drop.implode()))


def _parse_series(col: Column, values: pl.Series) -> pl.Series:
    """Typed values of one column. Timestamps take a fast path: the format that reads the first
    value is tried on all; only the values it cannot read go through every accepted format."""
    if col.parse in ("timestamp", "promise"):
        return parsing.timestamp_series(values, date_only_end_of_day=col.parse == "promise")
    return values.to_frame().select(_parser(col)).to_series()


def _parser(col: Column) -> pl.Expr:
    f = col.field
    match col.parse:
        case "timestamp":
            return parsing.timestamp(f)
        case "promise":
            return parsing.timestamp(f, date_only_end_of_day=True)
        case "bool":
            return parsing.boolean(f)
        case "int":
            return parsing.integer(f)
        case "float":
            return parsing.number(f)
        case "token":
            return (
                parsing.token(f).str.replace_all("-", "") if col.field == "order_status" else parsing.token(f)
            )
        case _:
            return pl.col(f)


def _read_export(
    entry: _Entry, text: str, found: tuple[int, int, str], kind: Kind, header: list[str], sep: str
) -> tuple[pl.DataFrame, pl.DataFrame, int, int]:
    """(typed rows, quarantine, duplicates, rows) of one recognised table file."""
    start, header_no, line = found
    if line.count(sep) >= MAX_FIELDS:
        raise DataError(_too_wide(entry.shown, header_no, line.count(sep) + 1))
    selected = _columns_used(entry.shown, kind, header, header_no)
    try:
        df = _read_table(
            entry.shown, text, start, header_no, header, sep, list(dict.fromkeys(selected.values()))
        )
        typed, quarantine, dups = _typed(entry.shown, kind, df, selected)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise DataError(
            f"{entry.shown}: cannot be read as an export of its kind ({kind.title}; the table reader failed: {type(exc).__name__}); "
            "check the file or download it again."
        ) from exc
    return typed, quarantine, dups, df.height


# ----------------------------------------------------------------------------- the fast path

# Most exports are plain: UTF-8, one line end (LF), no NUL, no quote in a comma file, no line
# past the limits. For those, polars' own CSV reader (in parallel, in bounded memory) gives the
# very rows the line-by-line reader above would; every condition is checked on the bytes while
# they are hashed, and every row that breaks a rule (or repeats another) is handed to `_typed` on
# its text, so reasons, lines and duplicates are the same. Anything else takes the reader above.
FAST_PATH = True  # False: every file through the line-by-line reader (tests compare the two)
_BLOCK = 1 << 24  # bytes hashed and checked at a time
_HEAD = 1 << 16  # the first bytes, kept to read the header and sample values
_DECODE = 1 << 20  # bytes checked as UTF-8 at a time
_PROBE_INLINE = 1 << 20  # a file of at most this many bytes is checked before polars reads it
_NOT_UTF8 = re.compile("[\ud800-\udfff]")  # a file name's bytes that are not UTF-8 (surrogate escapes)
# types whose values repeat: read as categoricals and parsed and checked once per distinct value
_PER_VALUE_PARSES = ("token", "bool", "int", "float")
_PARALLEL_ROWS = 1 << 17  # a file with this many rows has its repeated columns typed in parallel
_IN_PLACE_ROWS = 20_000  # a file with at most this many rows has its cells typed where they stand


@dataclass
class _Probe:
    sha256: str = ""
    plain: bool = True  # polars reads it as the line-by-line reader would
    ascii: bool = True
    damaged: bool = False  # holds U+FFFD: the encoding rule has to be checked
    quote: bool = False  # holds '"'
    bom: bool = False  # starts with a UTF-8 BOM
    head: bytes = b""

    @functools.cached_property
    def head_lines(self) -> list[str]:
        """The whole lines of `head` after the header (decoded once: every timestamp column asks)."""
        return self.head.decode("utf-8", errors="ignore").split("\n")[1:-1]


def _probe_blocks(blocks: Iterator[bytes | bytearray], probe: _Probe, hasher=None) -> _Probe:
    """Check, block by block, that the bytes are plain (see above); hash them when `hasher`."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, last_nl, tail = 0, -1, b""
    for block in blocks:
        if hasher is not None:
            hasher.update(block)
        if not probe.plain:
            if hasher is None:
                break
            continue
        if offset == 0:
            probe.bom = block.startswith(codecs.BOM_UTF8)
        if b"\x00" in block or b"\r" in block:
            probe.plain = False
        if not probe.quote and b'"' in block:
            probe.quote = True
        if not block.isascii():
            probe.ascii = False
            try:  # a megabyte at a time: no 16 MB (or 64 MB) string is made
                view = memoryview(block)
                for i in range(0, len(block), _DECODE):
                    decoder.decode(view[i : i + _DECODE])
            except UnicodeDecodeError:
                probe.plain = False
            edge = tail + block[:4] if offset else b""
            if b"\xef" in block or b"\xef" in edge:  # the first byte of a BOM and of U+FFFD (a fast scan)
                body = block[3:] if offset == 0 and probe.bom else block
                if codecs.BOM_UTF8 in body or codecs.BOM_UTF8 in edge:  # files joined together
                    probe.plain = False
                if b"\xef\xbf\xbd" in block or b"\xef\xbf\xbd" in edge:
                    probe.damaged = True
        tail = block[-4:]
        # every line at most MAX_LINE_CHARS bytes: jump from line end to line end
        first = block.find(b"\n")
        if first < 0:
            if offset + len(block) - (last_nl + 1) > MAX_LINE_CHARS:
                probe.plain = False
        else:
            if offset + first - (last_nl + 1) > MAX_LINE_CHARS:
                probe.plain = False
            p, last = first, block.rfind(b"\n")
            while p < last:
                r = block.rfind(b"\n", p + 1, p + MAX_LINE_CHARS + 2)
                if r < 0:
                    probe.plain = False
                    break
                p = r
            last_nl = offset + last
        offset += len(block)
    if probe.plain:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            probe.plain = False
        if last_nl < 0 or offset - (last_nl + 1) > MAX_LINE_CHARS:
            probe.plain = False  # a single line, or a last line past the limit
    return probe


def _file_blocks(fh) -> Iterator[bytes | bytearray]:
    """The file's bytes, _BLOCK at a time, read into one buffer (a new 16 MB object per block
    costs more in page faults than the checks) no bigger than the file and 64 kB (a small
    account's files are mostly a few kB; a file that grows while read is still read in blocks
    of 64 kB or more); a block is valid until the next one is read."""
    buf = bytearray(min(_BLOCK, max(os.fstat(fh.fileno()).st_size + 1, 64 << 10)))
    view = memoryview(buf)
    while True:
        n = fh.readinto(buf)
        if not n:
            return
        yield buf if n == len(buf) else bytes(view[:n])


def _open_plain(entry: _Entry):
    fd = os.open(entry.target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise OSError("not a regular file")
    return fh


def _read_entry_fast(
    entry: _Entry,
    files: list[SourceFile],
    tables: dict[str, list[pl.DataFrame]],
    quarantines: list[pl.DataFrame],
) -> bool:
    """Read one plain export with polars' CSV reader; False (nothing recorded) when the file is
    not plain or not a recognised export, for the line-by-line reader to take. The bytes are
    hashed and checked in a thread while polars reads them."""
    try:
        with _open_plain(entry) as fh:
            head = fh.read(_HEAD)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return False  # the line-by-line reader says why
    probe = _Probe()
    if head[:2] == b"\x1f\x8b":
        on_disk = _read_file(entry)
        probe.sha256 = hashlib.sha256(on_disk).hexdigest()
        source: str | bytes = _gunzip(on_disk, entry.shown)
        del on_disk
        head = source[:_HEAD]
    else:
        source = str(entry.target)
        if not source.isprintable() or _NOT_UTF8.search(source):
            return False  # a name polars cannot open: the line-by-line reader reads it
    if any(head.startswith(m) for m, _ in _MAGIC) or b"\x00" in head or b"\r" in head:
        return False
    bom = head.startswith(codecs.BOM_UTF8)
    nl = head.find(b"\n")
    if nl <= 3 * bom:
        return False
    try:
        line = head[3 * bom : nl].decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not line.strip() or _JSON_START.match(line):
        return False
    header, sep = _split_header(line)
    kind = recognise(header)
    if kind is None or line.count(sep) >= MAX_FIELDS or len(line.split(sep)) != len(header):
        return False  # unknown, too wide, or trailing empty header cells: the line-by-line reader
    if sep == "," and b'"' in head:
        return False  # quoted values: the csv module reads them
    selected = _columns_used(entry.shown, kind, header, 1)
    probe.head = head

    def check() -> None:
        try:
            if isinstance(source, bytes):
                view = memoryview(source)
                _probe_blocks((bytes(view[i : i + _BLOCK]) for i in range(0, len(source), _BLOCK)), probe)
            else:
                hasher = hashlib.sha256()
                with _open_plain(entry) as fh:
                    _probe_blocks(_file_blocks(fh), probe, hasher)
                probe.sha256 = hasher.hexdigest()
        except OSError:
            probe.plain = False

    if (len(source) if isinstance(source, bytes) else size) <= _PROBE_INLINE:
        check()  # a small file: checked before it is read (a thread costs more than the checks)
        worker = None
    else:
        worker = threading.Thread(target=check, name="probe", daemon=True)
        worker.start()

    def checked() -> _Probe:
        if worker is not None:
            worker.join()
        return probe

    try:
        out = _fast_export(entry.shown, source, probe, checked, kind, header, sep, selected)
    finally:
        checked()
    if out is None or not probe.plain or (sep == "," and probe.quote):
        return False
    typed, quarantine, dups, rows = out
    tables[kind.name].append(typed)
    quarantines.append(quarantine)
    files.append(
        SourceFile(
            entry.path.parent / entry.shown,
            kind.name,
            rows=rows,
            duplicates=dups,
            sha256=probe.sha256,
            encoding="utf-8-sig" if probe.bom else "utf-8",
        )
    )
    return True


def _sample_values(probe: _Probe, sep: str, position: int) -> list[str]:
    """The first values of a column, from the head of the file (to pick a timestamp format)."""
    out = []
    for ln in probe.head_lines[:200]:
        cells = ln.split(sep)
        if position < len(cells) and cells[position].strip():
            out.append(cells[position].strip())
    return out


_ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00|Z)")


def _fast_timestamp(given: pl.Expr, col: Column, samples: list[str]) -> pl.Expr:
    """The timestamp expression of a column: the format that reads its first value (as
    `parsing.timestamp_series` picks it), or every accepted format when none is known. When its
    first values are all UTC to the second (`2026-10-03T08:04:21+00:00`, Amazon's form), the
    date and time are read without the offset wherever the value ends so: the same instant, three
    times faster; any other value is null here, so its row goes to the line-by-line typing."""
    end_of_day = col.parse == "promise"
    if samples:
        iso = [_ISO_SECONDS.fullmatch(v) for v in samples[:50]]
        if all(iso) and len({m.group(1) for m in iso}) == 1:
            suffix = iso[0].group(1)
            naive = given.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
            whole = given.str.ends_with(suffix) & (given.str.len_bytes() == 19 + len(suffix))
            return pl.when(whole).then(naive.dt.replace_time_zone(parsing.UTC)).otherwise(None)
        first = pl.Series([samples[0]])
        for f in parsing._DATETIME_FORMATS_TZ:
            if (
                first.str.to_datetime(f, strict=False, time_unit="us", time_zone=parsing.UTC)
                .is_not_null()
                .all()
            ):
                return given.str.to_datetime(f, strict=False, time_unit="us", time_zone=parsing.UTC)
        if first.str.to_date("%Y-%m-%d", strict=False).is_not_null().all():
            day = (
                given.str.to_date("%Y-%m-%d", strict=False)
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone(parsing.UTC)
            )
            return day + parsing._END_OF_DAY if end_of_day else day
    return parsing.timestamp(given, date_only_end_of_day=end_of_day)


def _scan(source: str | bytes, sep: str, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    return pl.scan_csv(
        io.BytesIO(source) if isinstance(source, bytes) else source,
        separator=sep,
        has_header=False,
        skip_rows=1,
        quote_char=None,
        schema=schema,
        truncate_ragged_lines=False,
        encoding="utf8",
    ).with_row_index("_i")


def _fast_export(
    shown: str,
    source: str | bytes,
    probe: _Probe,
    checked: Callable[[], _Probe],
    kind: Kind,
    header: list[str],
    sep: str,
    selected: dict[str, str],
) -> tuple[pl.DataFrame, pl.DataFrame, int, int] | None:
    """(typed rows, quarantine, duplicates, rows) of a plain file, or None when a line turns out
    to need the line-by-line reader (a blank line, the header again)."""
    position = {f: header.index(h) for f, h in selected.items()}
    cols = [c for c in kind.columns if c.field in selected]
    per_value = {
        c.field
        for c in cols
        if c.parse in _PER_VALUE_PARSES or c.field in _REPEATED_TEXT or c.allowed is not None or c.checks
    }
    schema: dict[str, pl.DataType] = {f"c{i}": pl.String() for i in range(len(header))}
    for f in per_value:
        schema[f"c{position[f]}"] = pl.Categorical()
    exprs: list[pl.Expr] = []
    redo: list[pl.Expr] = []  # the row needs the line-by-line typing
    blank: list[pl.Expr] = []
    hashed: list[pl.Expr] = []  # text not kept (timestamps): its hash, to find duplicate rows
    stripped: list[pl.Expr] = []  # each text cell stripped once (null when empty), then used
    for c in cols:
        raw = pl.col(f"c{position[c.field]}")
        if c.field in per_value:
            exprs.append(raw.alias(c.field))
            continue
        cell = raw.str.strip_chars()
        stripped.append(pl.when(cell == "").then(None).otherwise(cell).alias(f"__s_{c.field}"))
        given = pl.col(f"__s_{c.field}")
        blank.append(given.is_null())
        if c.parse in ("timestamp", "promise"):
            fast = _fast_timestamp(given, c, _sample_values(probe, sep, position[c.field]))
            exprs.append(fast.alias(c.field))
            redo.append(given.is_not_null() & fast.is_null())
            hashed.append(given.hash(seed=1).fill_null(0).alias(f"__g_{c.field}"))
        else:
            exprs.append(given.alias(c.field))
        if c.required:
            redo.append(given.is_null())
    exprs.append(pl.any_horizontal(redo).alias("__redo") if redo else pl.lit(False).alias("__redo"))
    exprs.append(pl.all_horizontal(blank).alias("__blank") if blank else pl.lit(True).alias("__blank"))
    if hashed:
        exprs.append(pl.struct(hashed).hash(seed=2).alias("__hs"))
    try:
        # every column parsed (no projection pushdown), so a line with more cells than the header
        # stops the read: the line-by-line reader sets such a row aside
        df = (
            _scan(source, sep, schema)
            .with_columns(stripped)
            .select("_i", *exprs)
            .collect(engine="streaming", optimizations=pl.QueryOptFlags(projection_pushdown=False))
        )
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, pl.exceptions.NoDataError):
        return None
    probe = checked()
    if not probe.plain:
        return None
    rows = df.height
    damaged = [  # U+FFFD in a kept text column (a timestamp holding one is not read by its format)
        df[c.field].str.contains("\ufffd", literal=True).fill_null(False)
        for c in cols
        if probe.damaged and c.field not in per_value and c.parse not in ("timestamp", "promise")
    ]

    redo_s = df["__redo"]
    blank_s: pl.Series | None = df["__blank"]  # None: no line is blank
    for d in damaged:
        redo_s = redo_s | d
    # one hash per row over every kept cell, as text: rows sharing it are compared value by value
    row_hash = np.zeros(rows, dtype=np.uint64)

    def mix(h: pl.Series) -> None:
        nonlocal row_hash
        row_hash = row_hash * np.uint64(0x9E3779B97F4A7C15) + h.to_numpy()

    for c in cols:
        if c.field not in per_value and c.parse not in ("timestamp", "promise"):
            mix(df[c.field].hash(seed=4).fill_null(1))
    if hashed:
        mix(df["__hs"])

    # per distinct value of the repeated columns: its text, typed value, and whether it breaks a rule
    def repeated(c: Column) -> tuple[pl.Series, pl.Series | None, pl.Series | None, pl.Series]:
        """(typed column, rows breaking a rule or None, rows blank there or None: none is, the
        values' identity for the duplicate search) of one repeated column."""
        values = df[c.field]
        distinct = values.unique().to_frame("raw").with_columns(pl.col("raw").to_physical().alias("code"))
        given = pl.col("raw").cast(pl.String).str.strip_chars()
        d = distinct.with_columns(pl.when(given == "").then(None).otherwise(given).alias(c.field))
        d = d.with_columns(_parser(c).alias("__parsed"))
        conds = [
            cond.fill_null(False) for cond, _ in _rules(c, pl.col(c.field), pl.col("__parsed"), probe.damaged)
        ]
        d = d.with_columns(
            (pl.any_horizontal(conds) if conds else pl.lit(False)).alias("__bad"),
            pl.col(c.field).hash(seed=3).fill_null(0).alias(f"__h_{c.field}"),
            pl.col("__parsed").cast(_stored_dtype(c), strict=False),
        )
        bad_any, blank_any = bool(d["__bad"].any()), bool(d[c.field].is_null().any())
        codes = values.to_physical()
        if (
            isinstance(_stored_dtype(c), pl.Categorical)
            and not bad_any
            and not blank_any
            and (d["raw"].cast(pl.String) == d[c.field]).all()
        ):
            # every value is its own stored value (text kept as it is, nothing to check): the
            # column as read, its codes identifying its values for the duplicate search
            return values, None, None, codes.cast(pl.UInt64)
        lookup = np.full(int(d["code"].max() or 0) + 2, len(d), dtype=np.int64)  # unknown -> past the end
        lookup[d["code"].drop_nulls().to_numpy()] = np.flatnonzero(d["code"].is_not_null().to_numpy())
        null_row = d["code"].is_null().arg_true()
        lookup[-1] = null_row[0] if null_row.len() else len(d)
        at = pl.Series(lookup).gather(codes.fill_null(len(lookup) - 1))
        return (
            d["__parsed"].gather(at),
            d["__bad"].gather(at) if bad_any else None,
            d[c.field].is_null().gather(at) if blank_any else None,
            d[f"__h_{c.field}"].gather(at),
        )

    def in_place() -> Iterator[tuple[Column, tuple]]:
        """`repeated` of every repeated column of a small file, in one query: each cell typed
        where it stands (for a few thousand rows, less work than the lookups per value)."""
        given, parsed, out = [], [], []
        for c in several:
            g = pl.col(c.field).cast(pl.String).str.strip_chars()
            given.append(pl.when(g == "").then(None).otherwise(g).alias(c.field))
            parsed.append(_parser(c).alias(f"__p_{c.field}"))
            g, p = pl.col(c.field), pl.col(f"__p_{c.field}")
            conds = [cond.fill_null(False) for cond, _ in _rules(c, g, p, probe.damaged)]
            out += [
                p.cast(_stored_dtype(c), strict=False).alias(f"__t_{c.field}"),
                (pl.any_horizontal(conds) if conds else pl.lit(False)).alias(f"__b_{c.field}"),
                g.is_null().alias(f"__n_{c.field}"),
                g.hash(seed=3).fill_null(0).alias(f"__h_{c.field}"),
            ]
        t = df.lazy().select(given).with_columns(parsed).select(out).collect()
        for c in several:
            bad, blank = t[f"__b_{c.field}"], t[f"__n_{c.field}"]
            yield (
                c,
                (
                    t[f"__t_{c.field}"],
                    bad if bad.any() else None,
                    blank if blank.any() else None,
                    t[f"__h_{c.field}"],
                ),
            )

    def results() -> Iterator[tuple[Column, tuple]]:
        """Each repeated column's `repeated`, in order; a big file's on every core, at most one
        column per core ahead of the one taken (each holds a hash per row until it is mixed in)."""
        if rows <= _IN_PLACE_ROWS:
            yield from in_place()
            return
        cores = pl.thread_pool_size()
        if rows < _PARALLEL_ROWS or len(several) < 2 or cores < 2:
            for c in several:
                yield c, repeated(c)
            return
        with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="repeated") as pool:
            running: deque = deque()
            for c in several:
                running.append((c, pool.submit(repeated, c)))
                if len(running) > cores:
                    first, future = running.popleft()
                    yield first, future.result()
            while running:
                first, future = running.popleft()
                yield first, future.result()

    typed_cols = {c.field: df[c.field] for c in cols if c.field not in per_value}
    several = [c for c in cols if c.field in per_value]
    for c, (typed_col, bad, blank, identity) in results():
        typed_cols[c.field] = typed_col
        if bad is not None:
            redo_s = redo_s | bad
        if blank is None:
            blank_s = None
        elif blank_s is not None:
            blank_s = blank_s & blank
        mix(identity)
        del identity
    if blank_s is not None and blank_s.any():
        return None  # a blank line is no row there: let the line-by-line reader count them
    dup_candidates = _repeats(row_hash)
    look = redo_s | dup_candidates
    quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    dropped = pl.Series("_i", [], dtype=pl.UInt32)
    parts: list[pl.DataFrame] = []
    if look.any():
        wanted = df["_i"].filter(look)
        used = list(dict.fromkeys(selected.values()))
        raw = (
            _scan(source, sep, {f"c{i}": pl.String() for i in range(len(header))})
            .filter(pl.col("_i").is_in(wanted.implode()))
            .select("_i", *[pl.col(f"c{header.index(h)}").alias(h) for h in used])
            .collect(engine="streaming")
        )
        again = pl.all_horizontal([pl.col(h).str.strip_chars() == h for h in used])
        if raw.filter(again).height:
            return None  # the header line again: set aside as a row by the line-by-line reader
        text = raw.select(
            (pl.col("_i").cast(pl.Int64) + 2).alias("_line"),
            pl.lit(None, pl.String).alias("__why"),
            pl.lit(None, pl.String).alias("__value"),
            *used,
        )
        cells = text.select(
            "_line", *[pl.col(h).str.strip_chars().replace("", None).alias(f) for f, h in selected.items()]
        )
        kept = _drop_exact_duplicates(cells, list(selected))
        gone_lines = cells["_line"].filter(~cells["_line"].is_in(kept["_line"].implode()))
        dropped = (gone_lines - 2).cast(pl.UInt32)
        redo_lines = df["_i"].filter(redo_s).cast(pl.Int64) + 2
        again_text = text.filter(
            pl.col("_line").is_in(redo_lines.implode()) & ~pl.col("_line").is_in(gone_lines.implode())
        )
        if again_text.height:
            typed_p, quarantine, _ = _typed(shown, kind, again_text, selected)
            parts.append(_stored(kind.name, typed_p))
    clean = ~redo_s & ~df["_i"].is_in(dropped.implode()) if dropped.len() else ~redo_s
    clean_df = pl.DataFrame({"_line": (df["_i"].cast(pl.Int64) + 2), **{f: s for f, s in typed_cols.items()}})
    if not clean.all():
        clean_df = clean_df.filter(clean)
    clean_df = _stored(kind.name, clean_df.with_columns(pl.lit(shown).alias("_file")))
    typed = pl.concat([clean_df, *parts]).sort("_line") if parts else clean_df
    return typed, quarantine, int(dropped.len()), rows


# ----------------------------------------------------------------------------- JSON

_JSON_START = re.compile(r"\s*\{")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.S)
_JSON_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.S)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def _json_too_deep(text: str) -> int | None:
    """The line where the document nests deeper than MAX_JSON_DEPTH (checked before parsing:
    the parser recurses)."""
    depth = 0
    for m in _JSON_BRACKET.finditer(text):
        t = m.group()
        if t in "{[":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return text.count("\n", 0, m.start()) + 1
        elif t in "}]":
            depth -= 1
    return None


def _json_line(text: str, target: tuple[str | int, ...]) -> int | None:
    """The line of the value at `target` (keys after ALIASES), found by walking the tokens."""
    stack: list[list] = []  # [is_object, key or index, expecting a key]
    for m in _JSON_TOKEN.finditer(text):
        t = m.group()
        if stack and stack[-1][0] and stack[-1][2]:
            if t.startswith('"'):
                try:
                    stack[-1][1] = ALIASES.get(json.loads(t), json.loads(t))
                except ValueError:
                    return None
                stack[-1][2] = False
            elif t == "}":
                stack.pop()
            continue
        if t == ":":
            continue
        if t == ",":
            if stack:
                if stack[-1][0]:
                    stack[-1][2] = True
                else:
                    stack[-1][1] += 1
            continue
        if t in "}]":
            if stack:
                stack.pop()
            continue
        if tuple(f[1] for f in stack) == target:
            return text.count("\n", 0, m.start()) + 1
        if t == "{":
            stack.append([True, None, True])
        elif t == "[":
            stack.append([False, 0, False])
    return None


def _read_json(
    entry: _Entry, text: str, snapshots: list[tuple[dict, str, str]], quarantines: list[pl.DataFrame]
) -> str | None:
    """The kind of a JSON file (a V2 snapshot, the sample's manifest) or None; a snapshot's values
    set aside go to `quarantines`."""
    deep = _json_too_deep(text)
    if deep is not None:
        raise DataError(
            f"{entry.shown} line {deep}: the JSON nests deeper than {MAX_JSON_DEPTH} levels, which no "
            "performance report does; remove the file from the folder."
        )
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{entry.shown}: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})."
        ) from exc
    except (ValueError, RecursionError) as exc:
        reason = "a number it cannot hold" if "digit" in str(exc) or "not a number" in str(exc) else "nesting"
        raise DataError(f"{entry.shown}: invalid JSON ({reason}); download the file again.") from exc
    if isinstance(doc, dict) and doc.get("generator") == "analysis.sample":
        return "sample_manifest"
    if isinstance(doc, dict) and "performanceMetrics" in doc:
        snapshot, set_aside = read_snapshot(doc, entry.shown)
        snapshots.append((snapshot, entry.shown, text))
        if set_aside:
            quarantines.append(_snapshot_quarantine(entry.shown, text, set_aside))
        return "performance_snapshot"
    return None


def _snapshot_quarantine(shown: str, text: str, set_aside: list[SetAside]) -> pl.DataFrame:
    return _quarantine(
        [(shown, _json_line(text, s.path), key_path(s.path), s.value, s.reason) for s in set_aside]
    )


# ----------------------------------------------------------------------------- the folder


def load(
    data_dir: str | Path,
    *,
    marketplace: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool | None = None,
) -> Dataset:
    """Read every export in `data_dir` (files recognised by content, whatever their names).

    The typed, validated rows are kept in an on-disk cache (`analysis.inputs.cache`: `cache_dir`,
    else $AH_CACHE_DIR, else the user's cache folder), so the next run on unchanged files reads
    them from there; `use_cache=False` (or $AH_CACHE=off, which the CLI's --no-cache sets for
    every process of the run) reads the files and writes nothing."""
    if use_cache is None:
        use_cache = cache.enabled()
    data_dir = Path(data_dir)
    folder = _shown(str(data_dir))
    if not data_dir.exists():
        raise DataError(
            f"The data folder {folder} does not exist; pass --data with the folder of your exports."
        )
    if not data_dir.is_dir():
        raise DataError(f"{folder} is a file, not a folder; pass --data with the folder that holds it.")
    entries, skipped = _entries(data_dir)
    if not entries and not skipped:
        raise DataError(f"The data folder {folder} is empty; put your Seller Central downloads in it.")
    notes: list[str] = []
    store = _open_store(data_dir, entries, skipped, marketplace, cache_dir, notes) if use_cache else None
    if store is not None:
        try:
            meta = store.read()
        except cache.CacheDamaged as exc:
            notes.append(f"The cache of {folder} was damaged ({exc}); the files were read again.")
            store.remove()
            meta = None
        if meta is not None:
            return _warned(_from_store(data_dir, store, meta), notes)
    data = _read_folder(data_dir, folder, entries, skipped, marketplace)
    if store is not None:
        try:
            tables = _to_store(store, data, entries)
        except Exception as exc:  # noqa: BLE001 (whatever failed, the rows read stand)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            notes.append(
                f"The cache folder {_shown(str(store.base))} cannot be written ({why}); "
                "every run reads the files again."
            )
        else:
            # the rows are on disk: go on with them from there (the memory they held goes), read
            # once into memory when they are small (scanned, each query would read them again)
            whole = store.keep(sum(t.estimated_size() for t in tables.values()))
            data = _from_store(data_dir, store, store.meta, whole)
    return _warned(data, notes)


def _warned(data: Dataset, notes: list[str]) -> Dataset:
    data.cache_notes.extend(notes)
    for note in notes:
        warnings.warn(note, cache.CacheWarning, stacklevel=3)
    return data


def _open_store(
    data_dir: Path,
    entries: list[_Entry],
    skipped: list[tuple[str, str]],
    marketplace: str | None,
    cache_dir: str | Path | None,
    notes: list[str],
) -> cache.Store | None:
    base = cache.root(cache_dir)
    try:
        cache.check_location(base, data_dir)
    except OSError as exc:  # a loop of symbolic links: as a folder that cannot be written
        why = exc.strerror or type(exc).__name__
        notes.append(
            f"The cache folder {_shown(str(base))} cannot be used ({why}); every run reads the files again."
        )
        return None
    listing = [(e.shown, str(e.path), e.empty_kind) for e in entries]
    limits = [MAX_LINE_CHARS, MAX_FIELDS, GZIP_MAX_RATIO, GZIP_MAX_BYTES, MAX_JSON_DEPTH, MAX_QUANTITY]
    try:
        return cache.Store(
            base, data_dir, [marketplace or "", skipped, listing, limits], [e.target for e in entries]
        )
    except OSError:
        return None  # a file went away while listing: read what is there, cache nothing


def _to_store(store: cache.Store, data: Dataset, entries: list[_Entry]) -> dict[str, pl.DataFrame]:
    """Write the rows read to the cache; the tables given to it."""
    shas = {f.path.name: f.sha256 for f in data.files}
    tables = {k: v.collect() for k, v in data.frames.items()}
    tables["quarantine"] = data.quarantine
    meta = {
        # every field of SourceFile in order, read back as SourceFile(Path(path), *rest)
        "files": [[str(f.path), *astuple(f)[1:]] for f in data.files],
        "snapshots": [cache.encode_snapshot(s) for s in data.snapshots],
        "notes": data.notes,
        "skipped": data.skipped,
    }
    store.write(tables, meta, [shas.get(e.shown) or cache.file_sha256(e.target) for e in entries])
    return tables


def _from_store(data_dir: Path, store: cache.Store, meta: dict, whole: bool = False) -> Dataset:
    """The dataset of a cache entry: its tables scanned, or read `whole` into memory."""
    frames = {
        k: pl.read_parquet(store.table(k)).lazy() if whole else pl.scan_parquet(store.table(k))
        for k in TABLE_KINDS
    }
    data = Dataset(
        data_dir=data_dir,
        files=[SourceFile(Path(f[0]), *f[1:]) for f in meta["files"]],
        frames=frames,
        snapshots=[cache.decode_snapshot(s) for s in meta["snapshots"]],
        quarantine=pl.read_parquet(store.table("quarantine")),
        notes=list(meta["notes"]),
        skipped=[(a, b) for a, b in meta["skipped"]],
    )
    store.frames = dict(frames)
    data.cache[_STORE] = store
    return data


def _read_folder(
    data_dir: Path,
    folder: str,
    entries: list[_Entry],
    skipped: list[tuple[str, str]],
    marketplace: str | None,
) -> Dataset:
    """Read every listed file, type and validate its rows, and merge the downloads."""
    skipped = list(skipped)
    files: list[SourceFile] = []
    tables: dict[str, list] = {k: [] for k in TABLE_KINDS}  # [(rows so far, their row hashes)]
    quarantines: list[pl.DataFrame] = []
    snapshots: list[tuple[dict, str, str]] = []
    mtimes: dict[str, dt.date] = {}
    for entry in entries:
        if entry.empty_kind:
            files.append(SourceFile(entry.path.parent / entry.shown, entry.empty_kind, encoding="none"))
            continue
        try:
            read: dict[str, list[pl.DataFrame]] = {k: [] for k in TABLE_KINDS}
            _read_entry(entry, files, read, quarantines, snapshots, skipped)
            for kind, parts in read.items():  # merged at once: memory follows the rows kept
                for part in parts:
                    tables[kind] = [_merge_download(tables[kind], _stored(kind, part), files)]
        except MemoryError:
            raise DataError(f"{entry.shown}: too large to read with the memory available.") from None
        mtimes[entry.shown] = entry.mtime
    if not tables["orders"]:
        why = ""
        if skipped:  # the run stops here: what was skipped is said now or never
            name, reason = skipped[0]
            more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
            why = f" ({len(skipped)} file(s) skipped: {name}: {mask(reason)}{more})"
        raise DataError(
            f"No All Orders report in {folder}{why}; download 'All Orders' (tab-separated) from "
            "Seller Central and put it in the folder."
        )

    by_name = {f.path.name: f for f in files}
    frames: dict[str, pl.DataFrame] = {}
    for kind, parts in tables.items():
        frames[kind] = parts[0][0] if parts else _empty(kind)

    # Dates past the download (or before 2000) are set aside before anything picks "the latest".
    plausible = _plausible_newest(frames)
    reference = {name: max(d for d in (day, plausible) if d is not None) for name, day in mtimes.items()}
    for kind in TABLE_KINDS:
        frames[kind], q = _set_aside_dates(
            frames[kind], [(c.header, c.field) for c in EVENT_COLUMNS[kind]], reference
        )
        quarantines.append(q)

    notes: list[str] = []
    replaced: list[pl.DataFrame] = []
    frames["orders"], gone = _latest_order_items(frames["orders"])
    replaced.append(gone)
    frames["shipments"], gone = _latest_package_rows(frames["shipments"])
    replaced.append(gone)
    # a row is one message of a thread (the contract counts messages): the same message in an
    # overlapping download (thread and time received) is one, answered when any download says so
    frames["messages"], gone = _latest_by(frames["messages"], ["thread_id", "received_ts"], "responded_ts")
    replaced.append(gone)
    frames["feedback"], fb_quarantine = _feedback_with_marketplace(
        frames["feedback"], frames["orders"], marketplace
    )
    frames["feedback"], fb_dates = _set_aside_dates(
        frames["feedback"], [("Date", "feedback_ts")], reference, "date_raw"
    )
    frames["feedback"], gone = _latest_by(frames["feedback"], ["order_id", "marketplace_id"], "feedback_ts")
    replaced.append(gone)
    frames["messages"], msg_quarantine = _messages_with_order(frames["messages"], frames["orders"])
    quarantines += [fb_quarantine, fb_dates, msg_quarantine]
    kept_snapshots = []
    for snap, shown, text in snapshots:
        limit = reference.get(shown, snap["_asOf"]) + FUTURE_SLACK
        if snap["_asOf"] > limit:
            day = snap["_asOf"].isoformat()
            quarantines.append(
                _quarantine(
                    [(shown, _line_of(text, day), "reportingDateTo", day, _future_reason(reference[shown]))]
                )
            )
            by_name[shown].accepted = 0
            continue
        kept_snapshots.append(snap)
    quarantine = _finish_quarantine(quarantines)
    for name, n in pl.concat(replaced).group_by("_file").len().iter_rows():
        by_name[name].superseded += n
    superseded = sum(f.superseded for f in files)
    if superseded:
        notes.append(
            f"{superseded} rows replaced by a later download of the same order item, package, message or feedback."
        )
    dup_total = sum(f.duplicates for f in files)
    if dup_total:
        notes.append(
            f"{dup_total} exact duplicate rows dropped (within a file or repeated across overlapping downloads)."
        )
    shared = _ids_in_several_marketplaces(frames["orders"])
    if shared.height:
        notes.append(
            f"{wording.count(shared.height, 'order id')} {'is' if shared.height == 1 else 'are'} in the orders of "
            "more than one marketplace; each marketplace keeps its own copy."
        )
    skipped = [(name, mask(why)) for name, why in skipped]
    for name, why in skipped:
        notes.append(f"Skipped {name}: {why}.")
    q_counts = dict(quarantine.group_by("file").len().iter_rows())
    accepted: dict[str, int] = {}
    for frame in frames.values():
        for name, n in frame.group_by("_file").len().iter_rows():
            accepted[name] = accepted.get(name, 0) + n
    for f in files:
        f.quarantined = q_counts.get(f.path.name, 0)
        if f.kind in TABLE_KINDS:
            f.accepted = accepted.get(f.path.name, 0)
    if frames["orders"].is_empty():
        notes.append("The orders files hold no usable rows.")
    return Dataset(
        data_dir=data_dir,
        files=files,
        frames={k: v.lazy() for k, v in frames.items()},
        snapshots=sorted(kept_snapshots, key=lambda s: s["_asOf"]),
        quarantine=quarantine,
        notes=notes,
        skipped=skipped,
    )


def _read_entry(
    entry: _Entry,
    files: list[SourceFile],
    tables: dict[str, list[pl.DataFrame]],
    quarantines: list[pl.DataFrame],
    snapshots: list[tuple[dict, str, str]],
    skipped: list[tuple[str, str]],
) -> None:
    """Read one file into `files` and `tables` (or `snapshots`), or list it in `skipped`."""
    if FAST_PATH and _read_entry_fast(entry, files, tables, quarantines):
        return
    on_disk = _read_file(entry)
    sha = hashlib.sha256(on_disk).hexdigest()
    text, encoding = _decode(_gunzip(on_disk, entry.shown))
    del on_disk
    if text is None:
        skipped.append(
            (entry.shown, f"{encoding}, not a text export; save or extract it as tab-separated text")
        )
        return
    text = _normalise(text)
    source = SourceFile(entry.path.parent / entry.shown, "", sha256=sha, encoding=encoding)
    if _JSON_START.match(text):
        kind = _read_json(entry, text, snapshots, quarantines)
        if kind is None:
            skipped.append(
                (entry.shown, "a JSON file that is not a GET_V2_SELLER_PERFORMANCE_REPORT document")
            )
        else:
            source.kind, source.rows, source.accepted = kind, 1, 1
            files.append(source)
        return
    found = _header_line(text, entry.shown)
    if found is None:
        skipped.append((entry.shown, "an empty file (no header line)"))
        return
    header, sep = _split_header(found[2])
    kind_def = recognise(header)
    if kind_def is None:
        _refuse_semicolons(entry.shown, found)
        near = _near_kind(header)
        if near is not None:
            _columns_used(entry.shown, near, header, found[1])  # names the column it lacks
        skipped.append((entry.shown, _unknown(header)))
        return
    typed, quarantine, dups, rows = _read_export(entry, text, found, kind_def, header, sep)
    tables[kind_def.name].append(typed)
    quarantines.append(quarantine)
    source.kind, source.rows, source.duplicates = kind_def.name, rows, dups
    files.append(source)


def _refuse_semicolons(shown: str, found: tuple[int, int, str]) -> None:
    """An export saved with ';' between cells (a spreadsheet set to a European locale) is
    recognisable but not read: its commas may be decimal marks."""
    line = found[2]
    if "\t" in line or ";" not in line:
        return
    cells = [c.strip().strip('"').strip() for c in line.split(";", MAX_FIELDS)[:MAX_FIELDS]]
    kind = recognise(cells)
    if kind is not None:
        raise DataError(
            f"{shown} line {found[1]}: this {kind.title} file has ';' between its cells, which is not read (its "
            "commas could be decimal marks); save it with tabs or commas between cells."
        )


def _line_of(text: str, needle: str) -> int | None:
    i = text.find(needle)
    return None if i < 0 else text.count("\n", 0, i) + 1


def _finish_quarantine(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """All set-aside rows, sorted, with values masked (e-mail addresses and phone numbers) and cut
    to SHOWN_VALUE_CHARS: they are printed, written to JSON and shown in reports."""
    q = pl.concat(
        [p.cast(QUARANTINE_SCHEMA) for p in parts if p.height] or [pl.DataFrame(schema=QUARANTINE_SCHEMA)]
    )
    masked = mask_expr(pl.col("value"))
    return q.with_columns(
        pl.when(masked.str.len_chars() > SHOWN_VALUE_CHARS)
        .then(masked.str.slice(0, SHOWN_VALUE_CHARS) + pl.lit("..."))
        .otherwise(masked)
        .alias("value"),
        mask_expr(pl.col("reason")).alias("reason"),
    ).sort("file", "line", nulls_last=True)


# ----------------------------------------------------------------------------- implausible dates


def _plausible_newest(frames: dict[str, pl.DataFrame]) -> dt.date | None:
    """The newest day of the folder's events that is not an outlier: the newest days are dropped
    while they lie more than OUTLIER_GAP after the rest and hold at most 1 % of the dates (at
    least 3), so one order typed as 2206 does not move "newest" with it."""
    parts = [
        frames[k].select(pl.col(c.field).dt.date().alias("d")) for k in TABLE_KINDS for c in EVENT_COLUMNS[k]
    ]
    days = pl.concat(parts).drop_nulls().filter(pl.col("d") >= EARLIEST_DAY).group_by("d").len().sort("d")
    if not days.height:
        return None
    d, c = days["d"].to_list(), days["len"].to_list()
    allowed = max(3, sum(c) // 100)
    cut, tail = len(d) - 1, 0
    for i in range(len(d) - 1, 0, -1):
        tail += c[i]
        if tail > allowed:
            break
        if d[i] - d[i - 1] > OUTLIER_GAP:
            cut = i - 1
    return d[cut]


def _future_reason(reference: dt.date) -> str:
    return f"date more than a day after the download ({reference.isoformat()})"


def _set_aside_dates(
    df: pl.DataFrame,
    columns: list[tuple[str, str]],
    reference: dict[str, dt.date],
    value_field: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows with an event dated more than FUTURE_SLACK after their file's download (the later of
    the file's modification day and the folder's newest plausible day), or before EARLIEST_DAY."""
    if not columns or df.is_empty():
        return df, pl.DataFrame(schema=QUARANTINE_SCHEMA)
    files = df["_file"].unique().to_list()
    limit = pl.col("_file").replace_strict(
        {f: reference[f] + FUTURE_SLACK for f in files}, default=None, return_dtype=pl.Date
    )
    why = pl.col("_file").replace_strict({f: _future_reason(reference[f]) for f in files}, default=None)
    reasons = []
    for header, fld in columns:
        day = pl.col(fld).dt.date()
        shown = value_field or fld
        reasons.append(
            pl.when(day < EARLIEST_DAY).then(
                pl.lit(f"{header}\x00date before {EARLIEST_DAY.year}\x00{shown}")
            )
        )
        reasons.append(pl.when(day > limit).then(pl.lit(f"{header}\x00") + why + pl.lit(f"\x00{shown}")))
    why = df.select(pl.coalesce(reasons).alias("__why")).to_series()
    if not why.is_not_null().any():
        return df, pl.DataFrame(schema=QUARANTINE_SCHEMA)
    checked = df.with_columns(why)
    bad = checked.filter(pl.col("__why").is_not_null())
    return checked.filter(pl.col("__why").is_null()).drop("__why"), _reasons_to_quarantine(None, bad)


# ----------------------------------------------------------------------------- combining files


def _row_hashes(df: pl.DataFrame, cols: list[str]) -> pl.Series:
    return df.select(cols).hash_rows() if df.height else pl.Series([], dtype=pl.UInt64)


def _merge_download(
    acc: list[tuple[pl.DataFrame, pl.Series | None]], part: pl.DataFrame, files: list[SourceFile]
) -> tuple[pl.DataFrame, pl.Series | None]:
    """The rows read so far of a kind (earlier files) and one more file's rows: a row identical to
    one already read is a duplicate of the later file (overlapping downloads). The row hashes of
    what was read are kept, so each file is hashed once, and only when a second file of its
    kind comes (most kinds are one download)."""
    cols = [c for c in part.columns if c not in ("_line", "_file")]
    if not acc:
        return part, None
    rows, hashes = acc[0]
    if hashes is None:
        hashes = _row_hashes(rows, cols)
    h = _row_hashes(part, cols)
    seen = h.is_in(hashes.implode())
    if seen.any():
        old = rows.filter(hashes.is_in(h.filter(seen).implode())).select(cols)
        cand = part.with_row_index("__k").filter(seen)
        both = pl.concat([old.with_columns(pl.lit(None, pl.UInt32).alias("__k")), cand.select(*cols, "__k")])
        again = both.filter(~pl.struct(cols).is_first_distinct())["__k"]
        if again.len():
            name = part["_file"][0]
            next(f for f in files if f.path.name == name).duplicates += again.len()
            keep = ~pl.int_range(part.height, eager=True).is_in(again.implode())
            part, h = part.filter(keep), h.filter(keep)
    return pl.concat([rows, part]), pl.concat([hashes, h])


def _key_hash(df: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """A 64-bit hash per row of `keys` (enums and categoricals by their codes): rows sharing it
    are compared value by value, so a collision never merges two keys."""
    h = np.zeros(df.height, dtype=np.uint64)
    for k in keys:
        s = df[k]
        part = (
            s.to_physical().cast(pl.UInt64)
            if isinstance(s.dtype, pl.Categorical | pl.Enum)
            else s.hash(seed=5)
        )
        h = h * np.uint64(0x9E3779B97F4A7C15) + part.fill_null(2**63).to_numpy()
    return h


def _latest_by(df: pl.DataFrame, keys: list[str], newest: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per key: the one with the latest (non-null) `newest`, later file on ties. Only the
    rows whose key hash repeats are ranked (a big download mostly has none)."""
    none = df.select("_file").head(0)
    if df.height < 2:
        return df, none
    shared = _repeats(_key_hash(df, keys))
    if not shared.any():
        return df, none
    ranked = (
        df.with_row_index("_i")
        .filter(shared)
        .sort([newest, "_file", "_line"], descending=[True, True, False], nulls_last=True)
    )
    kept = ranked.unique(subset=keys, keep="first")
    gone = ranked["_i"].filter(~ranked["_i"].is_in(kept["_i"].implode()))
    mask = np.ones(df.height, dtype=bool)
    mask[gone.to_numpy()] = False
    keep = pl.Series(mask)
    return df.filter(keep), df.select("_file").filter(~keep)


def _latest_package_rows(shipments: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A package (order, tracking number, ship time) downloaded twice keeps its most complete row."""
    tracked = shipments.filter(pl.col("tracking_number").is_not_null() & pl.col("ship_ts").is_not_null())
    untracked = shipments.filter(~(pl.col("tracking_number").is_not_null() & pl.col("ship_ts").is_not_null()))
    kept, gone = _latest_by(tracked, ["order_id", "tracking_number", "ship_ts"], "delivery_ts")
    return pl.concat([kept, untracked]), gone


_DTYPES = {
    "timestamp": pl.Datetime("us", "UTC"),
    "promise": pl.Datetime("us", "UTC"),
    "bool": pl.Boolean(),
    "int": pl.Int64(),
    "float": pl.Float64(),
}


# Stored types: the kept rows of a big account fit in memory and on disk because every repeated
# value is a small integer (enums for the closed lists, categoricals for SKUs and other repeated
# text); `Dataset.frame` shows them as text.
MARKETPLACE = pl.Enum(sorted(SALES_CHANNEL_TO_ID.values()))
CHANNEL = pl.Enum(["AFN", "MFN"])
_REPEATED_TEXT = {
    "sku",
    "asin",
    "product_name",
    "item_status",
    "currency",
    "ship_country",
    "ship_service_level",
    "carrier",
    "claim_reason",
    "reason",
    "disposition",
    "return_status",
}


def _stored_dtype(col: Column) -> pl.DataType:
    if col.parse in _DTYPES:
        return _DTYPES[col.parse]
    if col.allowed is not None:
        return pl.Enum(sorted(col.allowed))
    if col.parse == "token" or col.field in _REPEATED_TEXT:
        return pl.Categorical()
    return pl.String()


@functools.cache
def _stored_schema(kind: str) -> tuple[tuple[str, pl.DataType], ...]:
    """(column, stored type) of a kind's table, in order (built once: every file asks)."""
    schema: list[tuple[str, pl.DataType]] = [("_line", pl.Int64())]
    schema += [(col.field, _stored_dtype(col)) for col in KIND_BY_NAME[kind].columns]
    return (*schema, ("_file", pl.Categorical()))


def _empty(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(_stored_schema(kind)))


def _stored(kind: str, df: pl.DataFrame) -> pl.DataFrame:
    """`df` (one file's typed rows) in the stored column order and types."""
    return df.select(
        [pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c) for c, t in _stored_schema(kind)]
    )


def _latest_order_items(orders: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Overlapping downloads: per order item (order id + sku, in its marketplace) the latest
    last-updated-date wins. The same order id in two marketplaces is two orders."""
    kept, gone = _latest_by(orders, ["order_id", "sku", "sales_channel"], "last_updated_ts")
    channels = pl.Series(["AFN", "AFN", "MFN", "MFN"], dtype=CHANNEL)  # afn amazon merchant mfn
    ids = pl.Series(
        [SALES_CHANNEL_TO_ID[c] for c in kept["sales_channel"].dtype.categories], dtype=MARKETPLACE
    )
    out = kept.with_columns(
        channels.gather(kept["fulfillment_channel"].to_physical()).alias("channel"),
        ids.gather(kept["sales_channel"].to_physical()).alias("marketplace_id"),
        pl.col("is_business_order").fill_null(False),
    )
    return out, gone


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (`np.unique` by a sort: several times faster here)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered


def _ids_in_several_marketplaces(orders: pl.DataFrame) -> pl.DataFrame:
    """The order ids found in the orders of more than one marketplace (by hash first: a big
    account has none)."""
    if orders["marketplace_id"].n_unique() < 2:
        return orders.select("order_id").head(0)
    h = orders["order_id"].hash(seed=6).to_numpy()
    m = orders["marketplace_id"].to_physical().to_numpy()
    sets = [_distinct(h[m == k]) for k in np.unique(m)]
    cand = np.concatenate(
        [np.intersect1d(a, b, assume_unique=True) for i, a in enumerate(sets) for b in sets[i + 1 :]]
    )
    if not len(cand):
        return orders.select("order_id").head(0)
    ids = orders.filter(pl.Series(np.isin(h, cand)))
    return (
        ids.group_by("order_id").agg(pl.col("marketplace_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    )


def _with_order_marketplace(frame: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the `marketplace_id` of its `order_id` (null when no orders file has it). An
    order id in several marketplaces takes the one most of its file's other rows belong to (a
    feedback file is one marketplace's), else the first by id."""
    wanted = frame["order_id"].unique().implode()
    pairs = orders.filter(pl.col("order_id").is_in(wanted)).select("order_id", "marketplace_id").unique()
    cand = (
        frame.with_row_index("__r")
        .join(pairs, on="order_id", how="left")
        .with_columns(pl.len().over("__r").alias("__n"))
    )
    if cand["__n"].max() in (None, 1):
        return cand.drop("__r", "__n")
    mode = (
        cand.filter((pl.col("__n") == 1) & pl.col("marketplace_id").is_not_null())
        .group_by("_file", "marketplace_id")
        .len()
        .sort(["len", "marketplace_id"], descending=[True, False])
        .unique("_file", keep="first")
        .select("_file", pl.col("marketplace_id").alias("__mode"))
    )
    return (
        cand.join(mode, on="_file", how="left")
        .with_columns((pl.col("marketplace_id") == pl.col("__mode")).fill_null(False).alias("__pref"))
        .sort(["__r", "__pref", "marketplace_id"], descending=[False, True, False], nulls_last=True)
        .unique("__r", keep="first")
        .sort("__r")
        .drop("__r", "__n", "__mode", "__pref")
    )


def _feedback_with_marketplace(
    feedback: pl.DataFrame, orders: pl.DataFrame, default_marketplace: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feedback dates are written in the marketplace's own format, so the marketplace (from the
    order) must be known before the date can be read."""
    fb = _with_order_marketplace(feedback, orders)
    if default_marketplace:
        fb = fb.with_columns(
            pl.col("marketplace_id").fill_null(pl.lit(default_marketplace).cast(MARKETPLACE, strict=False))
        )
    unknown = fb.filter(pl.col("marketplace_id").is_null())
    known = fb.filter(pl.col("marketplace_id").is_not_null())
    date_expr = pl.lit(None, pl.Date)
    for mkt in known["marketplace_id"].unique().to_list():
        date_expr = (
            pl.when(pl.col("marketplace_id") == mkt)
            .then(pl.col("date_raw").str.to_date(feedback_date_format(mkt), strict=False))
            .otherwise(date_expr)
        )
    known = known.with_columns(date_expr.alias("feedback_date"))
    bad_date = known.filter(pl.col("feedback_date").is_null())
    good = known.filter(pl.col("feedback_date").is_not_null()).with_columns(
        pl.col("feedback_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("feedback_ts"),
        pl.col("removed").fill_null(False),
    )
    q = pl.concat(
        [
            unknown.select(
                pl.col("_file").alias("file"),
                pl.col("_line").alias("line"),
                pl.lit("Order ID").alias("column"),
                pl.col("order_id").alias("value"),
                pl.lit(UNKNOWN_ORDER_REASONS[0]).alias("reason"),
            ),
            bad_date.select(
                pl.col("_file").alias("file"),
                pl.col("_line").alias("line"),
                pl.lit("Date").alias("column"),
                pl.col("date_raw").alias("value"),
                pl.lit("cannot read as a date in the marketplace's format").alias("reason"),
            ),
        ]
    )
    return good, q


# rows set aside because their order is in no orders file (feedback, a buyer message): no metric
# could count them, so they never make a verdict "not known" (`health.unread_rows`)
UNKNOWN_ORDER_REASONS = (
    "feedback for an order not in any orders file",
    "message for an order not in any orders file",
)


def _messages_with_order(messages: pl.DataFrame, orders: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A message belongs to the marketplace of its order; one without a known order is set aside,
    and so is one answered before it was received (it would count as answered in negative hours)."""
    m = _with_order_marketplace(messages, orders)
    unknown = pl.col("marketplace_id").is_null()
    early = (pl.col("responded_ts") < pl.col("received_ts")).fill_null(False)
    bad = m.filter(unknown | early)
    q = bad.select(
        pl.col("_file").alias("file"),
        pl.col("_line").alias("line"),
        pl.when(unknown).then(pl.lit("order-id")).otherwise(pl.lit("responded-at")).alias("column"),
        pl.when(unknown)
        .then(pl.col("order_id").cast(pl.String))
        .otherwise(pl.col("responded_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .alias("value"),
        pl.when(unknown)
        .then(pl.lit(UNKNOWN_ORDER_REASONS[1]))
        .otherwise(pl.lit("answered before it was received (responded-at is before received-at)"))
        .alias("reason"),
    )
    return m.filter(~(unknown | early)), q


def kind_title(kind: str) -> str:
    """What a user calls an export kind ("fba_returns" -> "FBA customer returns")."""
    return KIND_BY_NAME[kind].title
