"""Readers for every export of `inputs.md`: recognise a file by its header, type its columns.

A folder of downloads goes in; typed polars LazyFrames, one per kind of file, come out, together
with the rows that could not be used (quarantined with file, line, column and reason) and a list
of the files read with their checksums. Buyer personal data is dropped here, on load, so it can
never reach a metric, a report or a log.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analysis.errors import DataError  # noqa: F401  (re-exported: callers catch sources.DataError)
from analysis.inputs import parsing
from analysis.inputs.marketplaces import SALES_CHANNEL_TO_ID, feedback_date_format
from analysis.inputs.snapshots import normalise_snapshot


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    parse: str = "text"  # text | token | timestamp | promise | bool | int | float | raw
    required: bool = True
    aliases: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    check: tuple[Callable[[pl.Expr], pl.Expr], str] | None = None


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


def _nonneg(e: pl.Expr) -> pl.Expr:
    return e >= 0


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
                check=(_nonneg, "negative quantity"),
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
            Column("Rating", "rating", "int", check=(lambda e: e.is_between(1, 5), "rating outside 1 to 5")),
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
            Column("quantity", "quantity", "int", required=False, check=(_nonneg, "negative quantity")),
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
            Column(
                "Return quantity", "quantity", "int", required=False, check=(_nonneg, "negative quantity")
            ),
            Column("Refunded Amount", "refunded_amount", "float"),
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

QUARANTINE_SCHEMA = {
    "file": pl.String,
    "line": pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "reason": pl.String,
}


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
    """Everything read from one folder: typed frames per kind, snapshots, and what was set aside."""

    data_dir: Path
    files: list[SourceFile]
    frames: dict[str, pl.LazyFrame]
    snapshots: list[dict]
    quarantine: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False)  # derived tables, computed once per run

    def has(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.files)

    def frame(self, kind: str) -> pl.LazyFrame:
        return self.frames[kind]


# ----------------------------------------------------------------------------- bytes to text


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """Text of a file and the encoding it was read with: UTF-8 (with or without BOM), else cp932
    when the bytes are valid Shift_JIS holding Japanese, else windows-1252.

    A UTF-8 file with a few damaged bytes stays UTF-8 (so its other accented letters are not
    garbled): the damaged bytes become U+FFFD and their rows are quarantined."""
    bom = raw.startswith(codecs.BOM_UTF8)
    body = raw[len(codecs.BOM_UTF8) :] if bom else raw
    label = "utf-8-sig" if bom else "utf-8"
    try:
        return body.decode("utf-8"), label
    except UnicodeDecodeError:
        pass
    lenient = body.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd")
    good = len(re.findall(r"[\u0080-\ufffc\ufffe-\U0010ffff]", lenient))
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


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read the file ({exc.strerror}); check that it is readable or move it out of the folder."
        ) from exc


def _gunzip(raw: bytes, path: Path) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name}: the gzip file is damaged ({exc}); download it again.") from exc


def _split_header(line: str) -> tuple[list[str], str]:
    sep = "\t" if "\t" in line else ","
    cells = [c.strip().strip('"').strip() for c in line.split(sep)]
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


# ----------------------------------------------------------------------------- one table file


def _read_table(path: Path, text: str, kind: Kind, header: list[str], sep: str) -> pl.DataFrame:
    body = text.encode("utf-8")
    try:
        df = pl.read_csv(
            io.BytesIO(body),
            separator=sep,
            quote_char=None if sep == "\t" else '"',
            infer_schema=False,
            has_header=True,
            truncate_ragged_lines=True,
            new_columns=None,
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path.name}: cannot be read as a {kind.title} file ({exc}).") from exc
    names = [c.strip().strip('"').strip().lstrip("\ufeff") for c in df.columns]
    df.columns = [n if n else f"_empty_{i}" for i, n in enumerate(names)]
    df = df.select([c for c in df.columns if not c.startswith("_empty_")])
    df = df.with_row_index("_line", offset=2).with_columns(pl.col("_line").cast(pl.Int64))
    # Blank lines are not rows (the line numbers above still count them).
    data_cols = [c for c in df.columns if c != "_line"]
    blank = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in data_cols)
    return df.filter(~blank)


def _typed(path: Path, kind: Kind, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Typed rows, quarantined cells, and the number of exact duplicate rows dropped."""
    df = df.drop([c for c in kind.pii if c in df.columns])
    selected: dict[str, str] = {}
    for col in kind.columns:
        found = next((h for h in (col.header, *col.aliases) if h in df.columns), None)
        if found is None and col.required:
            raise DataError(
                f"{path.name}: the {kind.title} file has no '{col.header}' column (line 1); "
                f"add it or download the report again with all columns."
            )
        if found is not None:
            selected[col.field] = found
    raw = df.select(
        pl.col("_line"),
        *[pl.col(h).str.strip_chars().replace("", None).alias(f) for f, h in selected.items()],
    )
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
        given, parsed = pl.col(col.field), pl.col(f"__p_{col.field}")
        rules: list[tuple[pl.Expr, str]] = [
            (
                given.cast(pl.String).str.contains("\ufffd", literal=True),
                "bytes not valid in the file's encoding",
            )
        ]
        if col.required:
            rules.append((given.is_null(), "missing value"))
        if col.parse not in ("text", "raw", "token"):
            rules.append((given.is_not_null() & parsed.is_null(), f"cannot read as {col.parse}"))
        if col.allowed is not None:
            rules.append((given.is_not_null() & ~parsed.is_in(list(col.allowed)), "unknown value"))
        if col.check is not None:
            pred, why = col.check
            rules.append((parsed.is_not_null() & ~pred(parsed), why))
        for cond, why in rules:
            reasons.append(pl.when(cond).then(pl.lit(f"{selected[col.field]}\x00{why}\x00{col.field}")))
    checked = raw.with_columns(
        *[s.alias(f"__p_{f}") for f, s in typed_cols.items()],
    ).with_columns(pl.coalesce(reasons).alias("__why") if reasons else pl.lit(None, pl.String).alias("__why"))
    bad = checked.filter(pl.col("__why").is_not_null())
    if bad.height:
        parts = (
            bad["__why"]
            .str.split_exact("\x00", 2)
            .struct.rename_fields(["column", "reason", "field"])
            .struct.unnest()
        )
        values = [bad[f][i] for i, f in enumerate(parts["field"].to_list())]
        quarantine = pl.DataFrame(
            {
                "file": [path.name] * bad.height,
                "line": bad["_line"],
                "column": parts["column"],
                "value": [None if v is None else str(v) for v in values],
                "reason": parts["reason"],
            },
            schema=QUARANTINE_SCHEMA,
        )
    else:
        quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    typed = (
        checked.filter(pl.col("__why").is_null())
        .select(pl.col("_line"), *[pl.col(f"__p_{f}").alias(f) for f in typed_cols])
        .with_columns(pl.lit(path.name).alias("_file"))
    )
    return typed, quarantine, duplicates


def _drop_exact_duplicates(raw: pl.DataFrame, cols: list[str], key: str = "_line") -> pl.DataFrame:
    """Exact duplicate rows within one file (first kept). Row hashes find candidates fast; only
    rows sharing a hash are compared value by value, so a hash collision never drops a row."""
    h = raw.select(cols).hash_rows()
    shared = h.is_duplicated()
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


# ----------------------------------------------------------------------------- the folder


def _is_candidate(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and not p.name.lower().startswith("readme")


def load(data_dir: str | Path, *, marketplace: str | None = None) -> Dataset:
    """Read every export in `data_dir` (files recognised by content, whatever their names)."""
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise DataError(
            f"The data folder {data_dir} does not exist; pass --data with the folder of your exports."
        )
    if not data_dir.is_dir():
        raise DataError(f"{data_dir} is a file, not a folder; pass --data with the folder that holds it.")
    paths = sorted(p for p in data_dir.iterdir() if _is_candidate(p))
    if not paths:
        raise DataError(f"The data folder {data_dir} is empty; put your Seller Central downloads in it.")

    files: list[SourceFile] = []
    skipped: list[tuple[str, str]] = []
    tables: dict[str, list[pl.DataFrame]] = {k: [] for k in TABLE_KINDS}
    quarantines: list[pl.DataFrame] = []
    snapshots: list[dict] = []
    for path in paths:
        on_disk = _read_file(path)
        raw = _gunzip(on_disk, path)
        sha = hashlib.sha256(on_disk).hexdigest()
        text, encoding = _decode(raw, path)
        stripped = text.lstrip()
        if stripped.startswith("{"):
            kind = _read_json(path, stripped, snapshots)
            if kind is None:
                skipped.append(
                    (path.name, "a JSON file that is not a GET_V2_SELLER_PERFORMANCE_REPORT document")
                )
            else:
                files.append(SourceFile(path, kind, rows=1, accepted=1, sha256=sha, encoding=encoding))
            continue
        first_line = text.split("\n", 1)[0].rstrip("\r")
        header, sep = _split_header(first_line)
        kind_def = recognise(header)
        if kind_def is None:
            skipped.append((path.name, f"not a known export (header starts {first_line[:50]!r})"))
            continue
        df = _read_table(path, text, kind_def, header, sep)
        typed, quarantine, dups = _typed(path, kind_def, df)
        tables[kind_def.name].append(typed)
        quarantines.append(quarantine)
        files.append(SourceFile(path, kind_def.name, df.height, quarantine.height, dups, 0, 0, sha, encoding))
    if not tables["orders"]:
        raise DataError(
            f"No All Orders report in {data_dir}; download 'All Orders' (tab-separated) from "
            "Seller Central and put it in the folder."
        )

    by_name = {f.path.name: f for f in files}
    frames: dict[str, pl.DataFrame] = {}
    for kind, parts in tables.items():
        combined, dropped = _drop_duplicates_across_files(_combine(kind, parts))
        for name, n in dropped.items():
            by_name[name].duplicates += n
        frames[kind] = combined
    notes: list[str] = []
    replaced: list[pl.DataFrame] = []
    frames["orders"], gone = _latest_order_items(frames["orders"])
    replaced.append(gone)
    frames["shipments"], gone = _latest_package_rows(frames["shipments"])
    replaced.append(gone)
    frames["messages"], gone = _latest_by(frames["messages"], ["thread_id"], "responded_ts")
    replaced.append(gone)
    frames["feedback"], fb_quarantine = _feedback_with_marketplace(
        frames["feedback"], frames["orders"], marketplace
    )
    frames["feedback"], gone = _latest_by(frames["feedback"], ["order_id"], "feedback_ts")
    replaced.append(gone)
    frames["messages"], msg_quarantine = _messages_with_order(frames["messages"], frames["orders"])
    quarantines += [fb_quarantine, msg_quarantine]
    quarantine = pl.concat([q for q in quarantines if q.height] or [pl.DataFrame(schema=QUARANTINE_SCHEMA)])
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
        snapshots=sorted(snapshots, key=lambda s: s["_asOf"]),
        quarantine=quarantine.sort("file", "line"),
        notes=notes,
        skipped=skipped,
    )


def _drop_duplicates_across_files(df: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Overlapping downloads repeat rows; a row identical to one already read is counted once."""
    cols = [c for c in df.columns if c not in ("_line", "_file")]
    if df.is_empty() or df["_file"].n_unique() < 2:
        return df, {}
    kept = _drop_exact_duplicates(
        df.with_row_index("_i").with_columns(pl.col("_i").alias("_line_tmp")), cols, key="_i"
    )
    dropped_rows = df.with_row_index("_i").filter(~pl.col("_i").is_in(kept["_i"].implode()))
    counts = dict(dropped_rows.group_by("_file").len().iter_rows())
    return kept.drop("_i", "_line_tmp"), counts


def _latest_by(df: pl.DataFrame, keys: list[str], newest: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per key: the one with the latest (non-null) `newest`, later file on ties."""
    ranked = df.with_row_index("_i").sort(
        [newest, "_file", "_line"], descending=[True, True, False], nulls_last=True
    )
    kept = ranked.unique(subset=keys, keep="first").sort("_i")
    gone = ranked.filter(~pl.col("_i").is_in(kept["_i"].implode())).select("_file")
    return kept.drop("_i"), gone


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


def _empty(kind: str) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"_line": pl.Int64()}
    for col in KIND_BY_NAME[kind].columns:
        schema[col.field] = _DTYPES.get(col.parse, pl.String())
    schema["_file"] = pl.String()
    return pl.DataFrame(schema=schema)


def _combine(kind: str, parts: list[pl.DataFrame]) -> pl.DataFrame:
    empty = _empty(kind)
    if not parts:
        return empty
    aligned = [
        p.select(
            [
                pl.col(c).cast(t) if c in p.columns else pl.lit(None, t).alias(c)
                for c, t in empty.schema.items()
            ]
        )
        for p in parts
    ]
    return pl.concat(aligned)


def _latest_order_items(orders: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Overlapping downloads: per order item (order id + sku) the latest last-updated-date wins."""
    kept, gone = _latest_by(orders, ["order_id", "sku"], "last_updated_ts")
    out = kept.with_columns(
        pl.col("fulfillment_channel")
        .replace_strict({"amazon": "AFN", "afn": "AFN", "merchant": "MFN", "mfn": "MFN"})
        .alias("channel"),
        pl.col("sales_channel").replace_strict(SALES_CHANNEL_TO_ID).alias("marketplace_id"),
        pl.col("is_business_order").fill_null(False),
    )
    return out, gone


def _order_marketplaces(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.select("order_id", "marketplace_id").unique(subset=["order_id"], keep="first")


def _feedback_with_marketplace(
    feedback: pl.DataFrame, orders: pl.DataFrame, default_marketplace: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feedback dates are written in the marketplace's own format, so the marketplace (from the
    order) must be known before the date can be read."""
    fb = feedback.join(_order_marketplaces(orders), on="order_id", how="left")
    if default_marketplace:
        fb = fb.with_columns(pl.col("marketplace_id").fill_null(pl.lit(default_marketplace)))
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
                pl.lit("feedback for an order not in any orders file").alias("reason"),
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


def _messages_with_order(messages: pl.DataFrame, orders: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A message belongs to the marketplace of its order; one without a known order is set aside."""
    m = messages.join(_order_marketplaces(orders), on="order_id", how="left")
    bad = m.filter(pl.col("marketplace_id").is_null())
    q = bad.select(
        pl.col("_file").alias("file"),
        pl.col("_line").alias("line"),
        pl.lit("order-id").alias("column"),
        pl.col("order_id").alias("value"),
        pl.lit("message for an order not in any orders file").alias("reason"),
    )
    return m.filter(pl.col("marketplace_id").is_not_null()), q


def _read_json(path: Path, text: str, snapshots: list[dict]) -> str | None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path.name}: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})."
        ) from exc
    if isinstance(doc, dict) and doc.get("generator") == "analysis.sample":
        return "sample_manifest"
    if isinstance(doc, dict) and "performanceMetrics" in doc:
        snapshots.append(normalise_snapshot(doc, path.name))
        return "performance_snapshot"
    return None


def kind_title(kind: str) -> str:
    """What a user calls an export kind ("fba_returns" -> "FBA customer returns")."""
    return KIND_BY_NAME[kind].title
