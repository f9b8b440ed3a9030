"""Readers: every kind of inputs.md recognised by its header, typed, with clear errors."""

import datetime as dt
import gzip

import polars as pl
import pytest

from analysis.inputs import sources
from analysis.inputs.sources import DataError

EXPECTED_KINDS = {
    "orders", "feedback", "claims", "chargebacks", "shipments", "cancellations", "fba_returns",
    "mfn_returns", "messages", "invoices", "performance_snapshot", "sample_manifest",
}  # fmt: skip


def test_sample_has_every_kind(sample_data):
    kinds = {f.kind for f in sample_data.files}
    assert kinds == EXPECTED_KINDS
    assert sample_data.quarantine.height == 0
    for kind in sources.TABLE_KINDS:
        assert sample_data.frame(kind).select(pl.len()).collect().item() > 0, kind


def test_sample_types(sample_data):
    schema = sample_data.frame("orders").collect_schema()
    assert schema["purchase_ts"] == pl.Datetime("us", "UTC")
    assert schema["quantity"] == pl.Int64
    assert schema["is_business_order"] == pl.Boolean
    fb = sample_data.frame("feedback").collect()
    assert fb.schema["rating"] == pl.Int64 and fb.schema["feedback_ts"] == pl.Datetime("us", "UTC")
    assert "Rater Email" not in fb.columns and not any("mail" in c.lower() for c in fb.columns)


def test_uk_feedback_is_windows_1252_with_pound(sample_data, sample_dir):
    raw = (sample_dir / "Feedback_co_uk.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert b"\xa3" in raw  # £ in windows-1252
    f = next(f for f in sample_data.files if f.path.name == "Feedback_co_uk.txt")
    assert f.encoding == "cp1252"
    comments = sample_data.frame("feedback").select("comments").collect()["comments"].to_list()
    assert any("£" in (c or "") for c in comments)


def _tiny(account):
    account.order("O1", "2026-05-01T10:00:00+00:00", channel="MFN", sku="A", qty=2, business=True)
    account.order("O1", "2026-05-01T10:00:00+00:00", channel="MFN", sku="B")
    account.order("O2", "2026-05-02", market="Amazon.co.uk")
    account.feedback("O1", "5/3/26", 2, comment="late")
    account.feedback("O2", "3/5/26", 1, comment="broken", file="feedback_uk.txt")
    account.claim("O1", "2026-05-06", "Under Review")
    account.chargeback("O1", "2026-05-07T01:02:03Z", "service", "open")
    account.shipment(
        "O1",
        "2026-05-03",
        "2026-05-02T09:00:00+00:00",
        valid="true",
        latest_delivery="2026-05-08",
        delivery="2026-05-07T10:00:00-05:00",
    )
    account.cancellation("O2", "2026-05-02T13:00:00+00:00", "buyer")
    account.message("T1", "O1", "2026-05-02T10:00:00-08:00", "2026-05-02T12:30:00-08:00")
    account.invoice("O1", "2026-05-03T08:00:00+00:00")
    account.fba_return("O2", "2026-05-09T00:00:00+00:00")
    return account.write()


def test_tiny_file_per_kind(account):
    data = sources.load(_tiny(account))
    assert data.quarantine.height == 0
    o = data.frame("orders").sort("sku").collect()
    assert o["channel"].to_list() == ["MFN", "MFN", "AFN"]
    assert o["marketplace_id"].to_list() == ["ATVPDKIKX0DER", "ATVPDKIKX0DER", "A1F83G8C2ARO7P"]
    assert o["quantity"].to_list() == [2, 1, 1]
    fb = data.frame("feedback").sort("order_id").collect()
    assert fb["feedback_ts"].dt.date().to_list() == [
        dt.date(2026, 5, 3),
        dt.date(2026, 5, 3),
    ]  # US M/D, UK D/M
    claims = data.frame("claims").collect()
    assert claims["claim_status"].to_list() == ["under-review"]
    s = data.frame("shipments").collect()
    assert s["latest_ship_ts"][0] == dt.datetime(
        2026, 5, 3, 23, 59, 59, tzinfo=dt.UTC
    )  # date only: end of day
    assert s["delivery_ts"][0] == dt.datetime(2026, 5, 7, 15, 0, tzinfo=dt.UTC)  # offset converted to UTC
    m = data.frame("messages").collect()
    assert m["received_ts"][0] == dt.datetime(2026, 5, 2, 18, 0, tzinfo=dt.UTC)
    assert data.frame("cancellations").collect()["requested_by"].to_list() == ["buyer"]
    assert data.frame("invoices").collect().height == 1
    assert data.frame("fba_returns").collect()["order_id"].to_list() == ["O2"]


def test_files_recognised_by_header_not_name(account, tmp_path):
    folder = _tiny(account)
    for i, p in enumerate(sorted(folder.iterdir())):
        p.rename(folder / f"2839274928{i:04d}.txt")
    data = sources.load(folder)
    assert {f.kind for f in data.files} >= {"orders", "feedback", "claims", "shipments", "messages"}


def test_gzip_and_bom(account):
    folder = _tiny(account)
    orders = folder / "orders.txt"
    (folder / "orders.txt.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + orders.read_bytes()))
    orders.unlink()
    data = sources.load(folder)
    assert data.frame("orders").collect().height == 3


def test_missing_required_column_names_file_and_column(account):
    folder = _tiny(account)
    p = folder / "claims.csv"
    p.write_text(p.read_text().replace("claim-reason,", "").replace("not-received,", ""))  # still fine
    sources.load(folder)
    p.write_text(
        "order-id,claim-date,claim-status\nO1,2026-05-06,granted\n".replace("order-id,", "").replace(
            "O1,", ""
        )
    )
    with pytest.raises(DataError, match=r"claims.csv: .*'order-id' column"):
        sources.load(folder)


def test_unknown_file_is_listed_and_skipped(account):
    folder = _tiny(account)
    (folder / "notes.csv").write_text("foo,bar\n1,2\n")
    (folder / "other.json").write_text('{"hello": 1}')
    data = sources.load(folder)
    assert [name for name, _ in data.skipped] == ["notes.csv", "other.json"]
    assert any(n.startswith("Skipped notes.csv: not a known export") for n in data.notes)
    assert "notes.csv" not in {f.path.name for f in data.files}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing", r"does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", r"is empty"),
    ],
)
def test_folder_errors(tmp_path, setup, message):
    with pytest.raises(DataError, match=message):
        sources.load(setup(tmp_path))


def test_no_orders_file(account):
    account.claim("O1", "2026-05-06", "granted")
    with pytest.raises(DataError, match=r"No All Orders report"):
        sources.load(account.write())


def test_bad_values_are_quarantined_with_line_and_column(account):
    account.order("O1", "2026-05-01")
    account.order("O2", "yesterday")
    account.order("O3", "2026-05-01", qty=-1)
    account.feedback("O1", "5/3/26", 7)
    account.feedback("ZZZ", "5/3/26", 1)
    data = sources.load(account.write())
    q = data.quarantine.sort("file", "line").select("file", "line", "column", "reason").rows()
    assert ("orders.txt", 3, "purchase-date", "cannot read as timestamp") in q
    assert ("orders.txt", 4, "quantity", "negative quantity") in q
    assert ("feedback.txt", 2, "Rating", "rating outside 1 to 5") in q
    assert ("feedback.txt", 3, "Order ID", "feedback for an order not in any orders file") in q
    assert data.frame("orders").collect()["order_id"].to_list() == ["O1"]


def test_latest_download_wins(account):
    account.order(
        "O1", "2026-05-01T10:00:00+00:00", status="Unshipped", last_updated="2026-05-01T11:00:00+00:00"
    )
    account.order(
        "O1", "2026-05-01T10:00:00+00:00", status="Cancelled", last_updated="2026-05-02T11:00:00+00:00"
    )
    data = sources.load(account.write())
    o = data.frame("orders").collect()
    assert o["order_status"].to_list() == ["cancelled"]


def test_exact_duplicate_rows_counted_and_dropped(account):
    account.order("O1", "2026-05-01").order("O1", "2026-05-01").order("O1", "2026-05-01", sku="B")
    data = sources.load(account.write())
    f = next(f for f in data.files if f.kind == "orders")
    assert (f.rows, f.duplicates) == (3, 1)
    assert data.frame("orders").collect().height == 2


def test_buyer_personal_data_dropped_on_load(account):
    account.order("O1", "2026-05-01")
    folder = account.write()
    p = folder / "orders.txt"
    lines = p.read_text().splitlines()
    lines[0] += "\tbuyer-email\tbuyer-name\tbuyer-phone-number\tship-address-1"
    lines[1] += "\tjane@example.com\tJane Doe\t+1 555 0100\t1 Main St"
    p.write_text("\n".join(lines) + "\n")
    data = sources.load(folder)
    for kind in sources.TABLE_KINDS:
        df = data.frame(kind).collect()
        assert not any(
            c in df.columns for c in ("buyer-email", "buyer-name", "buyer-phone-number", "ship-address-1")
        )
        text = df.write_csv()
        assert "jane@example.com" not in text and "Jane Doe" not in text and "555 0100" not in text


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # another offset
    ],
)
def test_instant_is_the_literal_of_the_aware_datetime(moment):
    """`parsing.instant` (built from microseconds, for speed) is `pl.lit` of the datetime: the same
    value and type, and the same comparisons one microsecond either side."""
    from analysis.inputs import parsing

    ts = pl.DataFrame(
        {"t": [moment - dt.timedelta(microseconds=1), moment, moment + dt.timedelta(microseconds=1)]},
        schema={"t": pl.Datetime("us", "UTC")},
    )
    got = pl.select(parsing.instant(moment).alias("x"))
    assert got.schema["x"] == pl.Datetime("us", "UTC") and got.item() == moment
    for op in ("__lt__", "__le__", "__ge__"):
        expected = ts.select(getattr(pl.col("t"), op)(pl.lit(moment)))["t"].to_list()
        assert ts.select(getattr(pl.col("t"), op)(parsing.instant(moment)))["t"].to_list() == expected
    with pytest.raises(TypeError):
        parsing.instant(moment.replace(tzinfo=None))
