"""The messy-export corpus (tests/corpus, written by make_corpus.py): each file's expected outcome.

Every case is the base orders file plus the file under test, in a fresh folder.
"""

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from analysis.inputs import sources
from analysis.inputs.sources import DataError

CORPUS = Path(__file__).parent / "corpus"
UTC = dt.UTC


def load_case(tmp_path: Path, *names: str, base: bool = True) -> sources.Dataset:
    d = tmp_path / "case"
    d.mkdir()
    if base:
        shutil.copy(CORPUS / "_base_orders.txt", d / "base_orders.txt")
    for n in names:
        shutil.copy(CORPUS / n, d / Path(n).name)
    return sources.load(d)


def orders_of(data: sources.Dataset, file: str) -> pl.DataFrame:
    return data.frame("orders").filter(pl.col("_file") == file).collect()


@pytest.mark.parametrize(
    ("file", "product"),
    [
        ("orders_29_columns.txt", "Widget"),
        ("orders_33_columns.txt", "Widget"),
        ("orders_shuffled_extra.txt", "Widget"),
        ("orders_comma.csv", "Widget"),
        ("orders_trailing_tabs.txt", "Widget"),
        ("orders_stray_quote.txt", 'Skillet 12" "cast iron'),
        ("orders_cp932.txt", "ステンレス製 マグカップ 350ml"),
        ("orders_utf8_bom.txt", "Café crème"),
        ("orders_cp1252.txt", "Mug £9 – €10 café"),
    ],
)
def test_order_variants_parse_intact(tmp_path, file, product):
    data = load_case(tmp_path, file)
    o = orders_of(data, file)
    assert o.height == 1 and data.quarantine.height == 0
    assert o["product_name"][0] == product
    assert o["purchase_ts"][0] is not None and o["quantity"][0] == 1


def test_encodings_detected(tmp_path):
    data = load_case(
        tmp_path, "orders_cp932.txt", "orders_cp1252.txt", "orders_utf8_bom.txt", "feedback_cp1252.txt"
    )
    enc = {f.path.name: f.encoding for f in data.files}
    assert enc["orders_cp932.txt"] == "cp932"
    assert enc["orders_cp1252.txt"] == "cp1252"
    assert enc["feedback_cp1252.txt"] == "cp1252"
    assert enc["orders_utf8_bom.txt"] == "utf-8-sig"
    assert data.frame("feedback").collect()["comments"][0] == "Cassé à l'arrivée, 20 £ / 25 € perdus"


def test_timestamps_with_offsets_z_and_no_seconds(tmp_path):
    data = load_case(tmp_path, "orders_cp932.txt", "orders_utf8_bom.txt", "orders_cp1252.txt")
    ts = dict(data.frame("orders").select("product_name", "purchase_ts").collect().iter_rows())
    assert ts["ステンレス製 マグカップ 350ml"] == dt.datetime(2026, 5, 7, 1, 0, tzinfo=UTC)  # +09:00
    assert ts["Café crème"] == dt.datetime(2026, 5, 7, 10, 0, tzinfo=UTC)  # Z
    assert ts["Mug £9 – €10 café"] == dt.datetime(2026, 5, 7, 10, 0, tzinfo=UTC)  # no seconds, no offset


def test_gzipped_claims_and_date_forms(tmp_path):
    data = load_case(tmp_path, "claims.csv.gz")
    c = dict(data.frame("claims").select("order_id", "claim_ts").collect().iter_rows())
    assert c["111-0000001-0000001"] == dt.datetime(2026, 5, 5, 17, 0, tzinfo=UTC)
    assert c["111-0000001-0000002"] == dt.datetime(2026, 5, 5, 10, 0, tzinfo=UTC)
    assert c["202-0000001-0000003"] == dt.datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
    assert c["302-0000001-0000004"] == dt.datetime(2026, 5, 5, 21, 30, tzinfo=UTC)
    statuses = set(data.frame("claims").collect()["claim_status"])
    assert statuses == {"under-review", "seller-funded", "granted", "denied"}


def test_feedback_dates_per_marketplace(tmp_path):
    data = load_case(tmp_path, "feedback_marketplace_dates.txt")
    got = dict(
        data.frame("feedback").select("comments", pl.col("feedback_ts").dt.date()).collect().iter_rows()
    )
    assert got == {
        "US M/D/YY": dt.date(2026, 5, 3),
        "UK D/M/YY": dt.date(2026, 5, 3),
        "DE D.M.YY": dt.date(2026, 5, 4),
        "JP YY/M/D": dt.date(2026, 5, 6),
        "SE YYYY-MM-DD": dt.date(2026, 5, 7),
    }


def test_old_response_header(tmp_path):
    data = load_case(tmp_path, "feedback_old_response_header.txt")
    assert data.frame("feedback").collect().height == 1 and data.quarantine.height == 0


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (
            "orders_bad_values.txt",
            {
                (2, "quantity", "negative quantity"),
                (3, "order-status", "unknown value"),
                (4, "purchase-date", "cannot read as timestamp"),
                (5, "sales-channel", "unknown value"),
            },
        ),
        (
            "feedback_bad_rows.txt",
            {
                (2, "Rating", "rating outside 1 to 5"),
                (3, "Date", "cannot read as a date in the marketplace's format"),
                (4, "Order ID", "feedback for an order not in any orders file"),
                (5, "Date", "cannot read as a date in the marketplace's format"),
            },
        ),
    ],
)
def test_bad_rows_quarantined(tmp_path, file, expected):
    data = load_case(tmp_path, file)
    q = data.quarantine.filter(pl.col("file") == file)
    assert set(q.select("line", "column", "reason").rows()) == expected
    f = next(f for f in data.files if f.path.name == file)
    assert f.rows == f.accepted + f.quarantined + f.duplicates + f.superseded


def test_damaged_utf8_keeps_other_rows_intact(tmp_path):
    data = load_case(tmp_path, "orders_utf8_damaged.txt")
    assert orders_of(data, "orders_utf8_damaged.txt")["product_name"].to_list() == ["Crème brûlée set"]
    q = data.quarantine.select("file", "line", "column", "reason").rows()
    assert q == [("orders_utf8_damaged.txt", 3, "product-name", "bytes not valid in the file's encoding")]


def test_exact_duplicates_counted(tmp_path):
    data = load_case(tmp_path, "orders_exact_duplicates.txt")
    f = next(f for f in data.files if f.path.name == "orders_exact_duplicates.txt")
    assert (f.rows, f.accepted, f.duplicates) == (3, 2, 1)
    assert any("exact duplicate" in n for n in data.notes)


def test_overlapping_downloads_latest_wins(tmp_path):
    data = load_case(tmp_path, "overlap/orders_week1.txt", "overlap/orders_week2.txt", base=False)
    o = data.frame("orders").sort("order_id").collect()
    assert o["order_id"].to_list() == ["111-0000005-0000001", "111-0000005-0000002"]
    assert o["order_status"].to_list() == ["cancelled", "shipped"]
    files = {f.path.name: f for f in data.files}
    assert files["orders_week1.txt"].superseded == 1 and files["orders_week2.txt"].duplicates == 1


def test_unknown_file_skipped_with_warning(tmp_path):
    data = load_case(tmp_path, "unknown_export.txt")
    assert data.skipped and data.skipped[0][0] == "unknown_export.txt"
    assert any("Skipped unknown_export.txt" in n for n in data.notes)


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (
            "orders_missing_column.txt",
            r"orders_missing_column.txt: the All Orders report file has no 'sales-channel' column",
        ),
        ("orders_damaged.txt.gz", r"orders_damaged.txt.gz: the gzip file is damaged .*download it again"),
    ],
)
def test_fatal_files(tmp_path, file, message):
    with pytest.raises(DataError, match=message):
        load_case(tmp_path, file)


def test_inputs_never_modified(tmp_path):
    names = [
        p.name
        for p in CORPUS.iterdir()
        if p.is_file() and p.suffix != ".py" and "damaged" not in p.name and "missing" not in p.name
    ]
    d = tmp_path / "all"
    d.mkdir()
    for n in names:
        shutil.copy(CORPUS / n, d / n)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in d.iterdir()}
    sources.load(d)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in d.iterdir()}
    assert before == after
