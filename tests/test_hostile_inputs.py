"""Hostile and broken input (issue 14, the readers' half): every file is read or refused loudly,
nothing personal leaks into a reason or a note, no file can exhaust time or memory, no input
gives a traceback, and implausible values are set aside instead of moving a number.

Each case alters a copy of the sample account (or a tiny folder) and checks the exact outcome;
the fuzz tests at the end feed every reader arbitrary bytes."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import account_health, config
from analysis.inputs import sources
from analysis.inputs.sample import FBA_RETURNS_HEADER, FEEDBACK_HEADER, MFN_RETURNS_HEADER, ORDERS_HEADER
from analysis.inputs.sources import DataError
from analysis.metrics import health

CORPUS = Path(__file__).parent / "corpus"
AS_OF = "2026-11-15"
US = "ATVPDKIKX0DER"
EMAIL = "jane.doe@example.com"
PHONE = "+1 555 010 0199"
CLAIMS_HEADER = "order-id,claim-date,claim-reason,claim-status,claim-amount"
CLAIM = "111-0000001-0000001,2026-05-05,not-received,granted,10.00"


# ----------------------------------------------------------------------------- helpers


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args],
        cwd=config.PROJ_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def us_pm(folder: Path) -> dict:
    doc = account_health(folder, AS_OF).document
    return next(pm for pm in doc["performanceMetrics"] if pm["marketplaceId"] == US)


def us_mfn_defects(folder: Path) -> int:
    return us_pm(folder)["orderDefectRate"]["mfn"]["orderWithDefects"]["count"]


def file_of(data: sources.Dataset, name: str) -> sources.SourceFile:
    return next(f for f in data.files if f.path.name == name)


def set_aside(data: sources.Dataset, name: str | None = None) -> list[tuple]:
    q = data.quarantine if name is None else data.quarantine.filter(pl.col("file") == name)
    return q.rows()


def tiny(tmp_path: Path, **files: bytes | str) -> Path:
    """The corpus' base orders plus `files` (name -> content) in a fresh folder."""
    d = tmp_path / "tiny"
    d.mkdir()
    shutil.copy(CORPUS / "_base_orders.txt", d / "base_orders.txt")
    for name, content in files.items():
        p = d / name.replace("__", ".")
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return d


def edit_cell(path: Path, line: int, column: str, value: str, encoding: str = "utf-8") -> str:
    """Set one cell of a tab-separated file (line numbers as the file's); returns the old value."""
    lines = path.read_text(encoding=encoding).split("\n")
    header = lines[0].split("\t")
    cells = lines[line - 1].split("\t")
    old, cells[header.index(column)] = cells[header.index(column)], value
    lines[line - 1] = "\t".join(cells)
    path.write_text("\n".join(lines), encoding=encoding)
    return old


def one_sentence_error(r: subprocess.CompletedProcess, starts: str) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {starts}"), r.stderr
    return lines[0]


def utc_day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


# ----------------------------------------------------------------------------- 1. silent loss


def test_cr_only_feedback_is_read(sample_copy):
    p = sample_copy / "Feedback_com.txt"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\r"))
    data = sources.load(sample_copy)
    f = file_of(data, "Feedback_com.txt")
    assert (f.rows, f.accepted, f.quarantined) == (132, 132, 0)
    assert us_mfn_defects(sample_copy) == 40  # 15 when the file read as header-only
    r = cli("check", "--data", str(sample_copy))
    assert r.returncode == 0 and "Feedback_com.txt: feedback, 132 rows: 132 used, 0 set aside" in r.stdout


def test_excel_unicode_text_feedback_is_read(sample_copy):
    """Excel's "Unicode text": UTF-16 LE with a BOM, tab-separated, CRLF."""
    p = sample_copy / "Feedback_com.txt"
    text = p.read_text(encoding="utf-8").replace("\n", "\r\n")
    p.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    data = sources.load(sample_copy)
    f = file_of(data, "Feedback_com.txt")
    assert (f.rows, f.accepted, f.quarantined, f.encoding) == (132, 132, 0, "utf-16-le")
    assert not data.skipped
    assert us_mfn_defects(sample_copy) == 40


@pytest.mark.parametrize(
    ("encode", "label"),
    [
        (lambda t: codecs_bom("utf-16-be") + t.encode("utf-16-be"), "utf-16-be"),
        (lambda t: t.encode("utf-32"), "utf-32-le"),
        (lambda t: t.encode("utf-16-le"), "utf-16-le (no BOM)"),
        (lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode("utf-8"), "utf-8-sig"),
        (lambda t: t.replace("\n", "\r").encode("utf-16"), "utf-16-le"),
        (lambda t: t.replace("\n", "\u2028").encode("utf-8"), "utf-8"),
    ],
    ids=["utf-16-be", "utf-32", "utf-16-no-bom", "utf-8-bom-crlf", "utf-16-cr", "line-separator"],
)
def test_feedback_in_other_encodings_and_line_ends(sample_copy, encode, label):
    p = sample_copy / "Feedback_com.txt"
    p.write_bytes(encode(p.read_text(encoding="utf-8")))
    f = file_of(sources.load(sample_copy), "Feedback_com.txt")
    assert (f.rows, f.accepted, f.quarantined, f.encoding) == (132, 132, 0, label)


def codecs_bom(enc: str) -> bytes:
    return {"utf-16-be": b"\xfe\xff"}[enc]


def test_cr_inside_a_value_is_a_space(sample_copy):
    edit_cell(sample_copy / "Feedback_com.txt", 3, "Comments", "late\rand broken")
    data = sources.load(sample_copy)
    assert file_of(data, "Feedback_com.txt").accepted == 132
    comments = data.frame("feedback").collect()["comments"].to_list()
    assert "late and broken" in comments


def test_claims_with_cr_line_ends_are_read(tmp_path):
    d = tiny(tmp_path, claims__csv=f"{CLAIMS_HEADER}\r{CLAIM}\r{CLAIM.replace('0001,2026', '0002,2026')}\r")
    f = file_of(sources.load(d), "claims.csv")
    assert (f.rows, f.accepted) == (2, 2)


def test_blank_lines_before_the_header(tmp_path):
    d = tiny(
        tmp_path, claims__csv=f"\n  \n{CLAIMS_HEADER}\n{CLAIM}\n111-0000001-0000002,someday,x,granted,1\n"
    )
    data = sources.load(d)
    assert file_of(data, "claims.csv").rows == 2
    assert set_aside(data) == [("claims.csv", 5, "claim-date", "someday", "cannot read as timestamp")]


def test_gzip_with_two_members_reads_both(tmp_path):
    first = gzip.compress(f"{CLAIMS_HEADER}\n{CLAIM}\n".encode())
    second = gzip.compress(CLAIM.replace("0001,2026", "0002,2026").encode() + b"\n")
    f = file_of(sources.load(tiny(tmp_path, claims__csv__gz=first + second)), "claims.csv.gz")
    assert (f.rows, f.accepted) == (2, 2)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda gz: gz[:-12],
            r"^claims.csv.gz: the gzip file is damaged \(it ends early, in line \d+\); download it again\.$",
        ),
        (lambda gz: gz + b"garbage", r"^claims.csv.gz: the gzip file is damaged \(bytes after its end\)"),
        (
            lambda gz: gz[:-8] + b"\0\0\0\0" + gz[-4:],
            r"^claims.csv.gz: the gzip file is damaged \(.*\); download it again\.$",
        ),
    ],
    ids=["truncated", "trailing-garbage", "bad-crc"],
)
def test_damaged_gzip_is_refused(tmp_path, damage, message):
    rows = [
        f"111-{i:07d}-{i * 7919 % 10**7:07d},2026-05-{1 + i % 28:02d},not-received,granted,{i}.00"
        for i in range(50)
    ]
    gz = gzip.compress("\n".join([CLAIMS_HEADER, *rows, ""]).encode())
    with pytest.raises(DataError, match=message):
        sources.load(tiny(tmp_path, claims__csv__gz=damage(gz)))


def test_archives_and_binary_files_are_skipped_with_a_note(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("claims.csv", f"{CLAIMS_HEADER}\n{CLAIM}\n")
    d = tiny(
        tmp_path,
        claims__zip=buf.getvalue(),
        blob__bin=b"\x00\x00\x07\xff" * 256,
        empty__txt=b"",
        blank__txt="\n \n",
    )
    data = sources.load(d)
    assert data.skipped == [
        ("blank.txt", "an empty file (no header line)"),
        ("blob.bin", "binary data, not text, not a text export; save or extract it as tab-separated text"),
        (
            "claims.zip",
            "a zip archive or an Excel workbook (.xlsx), not a text export; save or extract it as tab-separated text",
        ),
        ("empty.txt", "an empty file (no header line)"),
    ]
    assert "Skipped claims.zip: a zip archive or an Excel workbook (.xlsx), not a text export" in " ".join(
        data.notes
    )


def test_joined_downloads_repeat_header_is_set_aside(tmp_path):
    text = f"{CLAIMS_HEADER}\n{CLAIM}\n{CLAIMS_HEADER}\n{CLAIM.replace('0001,2026', '0002,2026')}\n"
    data = sources.load(tiny(tmp_path, claims__csv=text))
    f = file_of(data, "claims.csv")
    assert (f.rows, f.accepted, f.quarantined) == (3, 2, 1)
    assert set_aside(data) == [
        ("claims.csv", 3, "(row)", None, "the header line again (were two files joined?)")
    ]


def test_unbalanced_quote_does_not_swallow_rows_silently(tmp_path):
    text = f'{CLAIMS_HEADER}\n{CLAIM}\n111-0000001-0000002,2026-05-05,"oops,granted,1\n{CLAIM}3\n{CLAIM}4\n'
    data = sources.load(tiny(tmp_path, claims__csv=text))
    f = file_of(data, "claims.csv")
    # every line the quote swallowed is a row set aside (they were counted as one row)
    assert (f.rows, f.accepted, f.quarantined) == (4, 1, 3)
    assert set_aside(data) == [
        (
            "claims.csv",
            3,
            "(row)",
            None,
            "a quoted value runs from line 3 to line 5 (a '\"' without its pair?)",
        ),
        ("claims.csv", 4, "(row)", None, "inside the quoted value that opens on line 3"),
        ("claims.csv", 5, "(row)", None, "inside the quoted value that opens on line 3"),
    ]


def test_blank_lines_inside_a_runaway_quote_are_no_rows(tmp_path):
    text = f'{CLAIMS_HEADER}\n{CLAIM}\n111-0000001-0000002,2026-05-05,"oops,granted,1\n\n{CLAIM}3\n   \n{CLAIM}4\n'
    data = sources.load(tiny(tmp_path, claims__csv=text))
    f = file_of(data, "claims.csv")
    assert (f.rows, f.accepted, f.quarantined) == (4, 1, 3)
    assert [r[1] for r in set_aside(data)] == [3, 5, 7]


def test_semicolon_export_is_refused(tmp_path):
    d = tiny(tmp_path, claims__csv=f"{CLAIMS_HEADER.replace(',', ';')}\n{CLAIM.replace(',', ';')}\n")
    line = one_sentence_error(cli("check", "--data", str(d)), "claims.csv line 1:")
    assert "this A-to-z claims file has ';' between its cells, which is not read" in line


def test_every_data_line_of_a_recognised_file_is_a_row(sample_copy):
    """Whatever the damage, rows = used + set aside + duplicates + replaced, and no data line is lost."""
    p = sample_copy / "Feedback_com.txt"
    lines = p.read_text().split("\n")
    lines[2] += "\textra\tcells"  # ragged
    lines[3] = "\t".join(FEEDBACK_HEADER)  # the header again
    lines[4] = lines[4].replace("\t", "", 1)  # a tab missing
    p.write_text("\n".join(lines))
    data = sources.load(sample_copy)
    f = file_of(data, "Feedback_com.txt")
    assert f.rows == 132 and f.rows == f.accepted + f.quarantined + f.duplicates + f.superseded
    assert [r[1:3] for r in set_aside(data, "Feedback_com.txt")] == [
        (3, "(row)"),
        (4, "(row)"),
        (5, "Rating"),
    ]


# ----------------------------------------------------------------------------- 2. personal data


def test_tab_inside_your_response_sets_the_row_aside_without_the_email(sample_copy):
    p = sample_copy / "Feedback_com.txt"
    rater = p.read_text().split("\n")[3].split("\t")[5]
    edit_cell(p, 4, "Your Response", f"Sorry\tcall me at {EMAIL}")
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        ("Feedback_com.txt", 4, "(row)", "false", "8 cells where the header has 7 (a tab inside a value?)")
    ]
    r = cli("check", "--data", str(sample_copy))
    assert r.returncode == 1
    assert (
        "Feedback_com.txt:4: column '(row)': 8 cells where the header has 7 (a tab inside a value?) (value 'false')"
        in r.stdout
    )
    m = cli("metrics", "--data", str(sample_copy), "--as-of", AS_OF)
    assert m.returncode == 0
    for out in (r.stdout + r.stderr, m.stdout + m.stderr):
        assert rater not in out and EMAIL not in out


def test_extra_cells_are_shown_masked(sample_copy):
    p = sample_copy / "Feedback_com.txt"
    lines = p.read_text().split("\n")
    lines[4] += f"\t{EMAIL}\t{PHONE}"
    p.write_text("\n".join(lines))
    rows = set_aside(sources.load(sample_copy))
    assert rows == [
        (
            "Feedback_com.txt",
            5,
            "(row)",
            "[e-mail]\t[phone]",
            "9 cells where the header has 7 (a tab inside a value?)",
        )
    ]


def test_shifted_email_in_a_reason_is_masked(sample_copy):
    """A row missing one tab puts the Rater Email under Order ID: set aside, shown masked."""
    p = sample_copy / "Feedback_com.txt"
    lines = p.read_text().split("\n")
    cells = lines[5].split("\t")
    del cells[3]  # the empty Your Response
    lines[5] = "\t".join(cells)
    p.write_text("\n".join(lines))
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        ("Feedback_com.txt", 6, "Order ID", "[e-mail]", "feedback for an order not in any orders file")
    ]
    assert "@" not in json.dumps(data.quarantine.to_dicts())


def test_unknown_file_note_does_not_quote_its_first_line(tmp_path):
    d = tiny(
        tmp_path,
        customers__txt=f"Jane Doe\t{EMAIL}\t{PHONE}\t12 Main St\n",
        almost__txt="Date\tRating\tOrder Id\n6/6/26\t1\t111-0000001-0000001\n",
    )
    data = sources.load(d)
    assert data.skipped == [
        (
            "almost.txt",
            "not a known export (its first line has 'Rating', 'Date' but not 'Order ID' of the Seller feedback report)",
        ),
        (
            "customers.txt",
            "not a known export (its first line names none of the columns the exports are recognised by)",
        ),
    ]
    r = cli("check", "--data", str(d))
    for text in (r.stdout + r.stderr, " ".join(data.notes)):
        assert "Jane" not in text and EMAIL not in text and "555" not in text


@pytest.mark.parametrize(
    ("name", "header", "words"),
    [
        # All Orders without 'order-status': skipped, the marketplace vanished from every output
        (
            "All_Orders_com.txt",
            "amazon-order-id\tpurchase-date\tfulfillment-channel\tsales-channel\tsku\tquantity",
            "the All Orders report file has no 'order-status' column",
        ),
        # chargebacks without 'status'
        (
            "cb.csv",
            "order-id,chargeback-date,category,reason",
            "the Chargebacks file has no 'status' column",
        ),
    ],
)
def test_an_export_that_lost_a_column_is_refused_by_name(tmp_path, name, header, words):
    """A header with every required column of an export but one is that export with a column
    lost (or misspelt): one sentence naming the file and the column, exit 2, nothing quoted."""
    d = tiny(tmp_path, **{name.replace(".", "__"): f"{header}\n6/6/26\t{EMAIL}\t111-0000001-0000001\n"})
    r = cli("metrics", "--data", str(d), "--as-of", "2026-06-06")
    assert r.returncode == 2 and r.stderr.startswith(f"error: {name}: {words} (line 1)"), r.stderr
    assert EMAIL not in r.stderr and r.stderr.count("\n") == 1


def test_another_amazon_export_is_skipped_not_refused(tmp_path):
    """FBA shipments (not read) shares five columns with All Orders but lacks two it needs: skipped."""
    header = "amazon-order-id\tmerchant-order-id\tshipment-id\tpurchase-date\tsku\tquantity-shipped\tfulfillment-channel\tsales-channel"
    d = tiny(tmp_path, fba_shipments__txt=header + "\n")
    data = sources.load(d)
    assert [n for n, _ in data.skipped] == ["fba_shipments.txt"]


def test_links_out_of_the_folder_are_not_read(sample_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(
        "amazon-order-id\tpurchase-date\torder-status\tfulfillment-channel\tsales-channel\tsku\tquantity\n"
        "SECRET-hunter2\t2026-11-01\tShipped\tAmazon\tAmazon.com\tX\t1\n"
    )
    (sample_copy / "secret.txt").symlink_to(secret)
    (sample_copy / "environ.txt").symlink_to("/proc/self/environ")
    (sample_copy / "broken.txt").symlink_to(tmp_path / "nothing-here")
    (sample_copy / "inside.csv").symlink_to(sample_copy / "chargebacks.csv")  # inside: read
    data = sources.load(sample_copy)
    assert data.skipped == [
        ("broken.txt", "a link that leads to no file; it was not read"),
        ("environ.txt", "a link to a file outside the data folder; it was not read"),
        ("secret.txt", "a link to a file outside the data folder; it was not read"),
    ]
    assert "Skipped secret.txt: a link to a file outside the data folder; it was not read." in data.notes
    assert file_of(data, "inside.csv").duplicates == 12  # the same rows as chargebacks.csv
    m = cli("metrics", "--data", str(sample_copy), "--as-of", AS_OF)
    assert m.returncode == 0 and "hunter2" not in m.stdout and "PATH=" not in m.stdout
    assert "warning: skipped environ.txt: a link to a file outside the data folder" in m.stderr


def test_a_folder_of_links_out_says_why_it_has_no_orders(tmp_path):
    """Every file a link out of the folder: the run stops with 'No All Orders report' and used to
    say nothing of the links it skipped (their warnings come after loading, which never ends)."""
    d = tmp_path / "links"
    d.mkdir()
    (d / "orders.txt").symlink_to(CORPUS / "_base_orders.txt")
    r = cli("metrics", "--data", str(d), "--as-of", AS_OF)
    one_sentence_error(r, f"No All Orders report in {d}")
    assert (
        "(1 file(s) skipped: orders.txt: a link to a file outside the data folder; it was not read)"
        in r.stderr
    )


@pytest.mark.parametrize("command", ["email", "render", "report"])
def test_every_command_warns_of_what_it_cannot_read(sample_copy, tmp_path, command):
    """email and render said nothing of an absent export, report nothing of rows set aside."""
    (sample_copy / "a-to-z-claims.csv").unlink()
    edit_cell(sample_copy / "MFN_Returns.txt", 330, "Refunded Amount", "NaN")
    out = tmp_path / "out"
    args = {
        "email": [
            "email",
            "--data",
            str(sample_copy),
            "--week",
            "2026-W46",
            "--dry-run",
            "--out",
            str(tmp_path / "x.eml"),
        ],
        "render": [
            "render",
            "defects_by_cause",
            "--data",
            str(sample_copy),
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / "x.html"),
        ],
        "report": ["report", "--data", str(sample_copy), "--week", "2026-W46", "--out", str(out)],
    }[command]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert "warning: No A-to-z claims file" in r.stderr and "warning: 1 rows set aside" in r.stderr


def test_non_utf8_and_control_characters_in_file_names_print(sample_copy):
    raw = os.fsencode(str(sample_copy)) + b"/charge\xffbacks\x1b[31m.csv"
    os.rename(sample_copy / "chargebacks.csv", raw)
    (sample_copy / os.fsdecode(b"junk\xff.txt")).write_text("hello\n")
    data = sources.load(sample_copy)
    shown = "charge\\xffbacks\\x1b[31m.csv"
    assert file_of(data, shown).accepted == 12
    assert "Skipped junk\\xff.txt: not a known export" in " ".join(data.notes)
    r = cli("check", "--data", str(sample_copy))
    assert r.returncode == 0 and f"{shown}: chargebacks, 12 rows: 12 used" in r.stdout
    assert "\x1b" not in r.stdout + r.stderr
    m = cli("metrics", "--data", str(sample_copy), "--as-of", AS_OF)
    assert m.returncode == 0 and shown in {f["file"] for f in json.loads(m.stdout)["dataQuality"]["files"]}


def test_email_in_a_file_name_is_masked(sample_copy):
    os.rename(sample_copy / "chargebacks.csv", sample_copy / f"cb_{EMAIL}.csv")
    data = sources.load(sample_copy)
    assert file_of(data, "[e-mail]").accepted == 12
    r = cli("check", "--data", str(sample_copy))
    assert r.returncode == 0 and "[e-mail]: chargebacks, 12 rows" in r.stdout and EMAIL not in r.stdout


# ----------------------------------------------------------------------------- 3. time and memory


def _gzip_of_tabs(header: bytes, mib: int) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    return co.compress(header) + b"".join(co.compress(b"\t" * (1 << 20)) for _ in range(mib)) + co.flush()


def test_gzip_bomb_is_refused_naming_file_and_line(sample_copy):
    bomb = _gzip_of_tabs(("\t".join(FEEDBACK_HEADER) + "\n").encode(), 64)
    (sample_copy / "bomb.txt.gz").write_bytes(bomb)
    limit = 20 * len(bomb)
    with pytest.raises(DataError) as exc:
        sources.load(sample_copy)
    assert str(exc.value) == (
        f"bomb.txt.gz line 2: the gzip file expands to more than {limit:,} bytes (20 times its size, at most "
        "20,000,000,000), far more than an export; decompress and check it yourself, or remove it from the folder."
    )
    one_sentence_error(cli("check", "--data", str(sample_copy)), "bomb.txt.gz line 2: the gzip file expands")


def test_gzip_within_the_ratio_is_read(sample_copy):
    p = sample_copy / "Feedback_com.txt"
    (sample_copy / "Feedback_com.txt.gz").write_bytes(gzip.compress(p.read_bytes()))
    p.unlink()
    f = file_of(sources.load(sample_copy), "Feedback_com.txt.gz")
    assert (f.rows, f.accepted) == (132, 132)


def test_header_of_300k_commas_is_refused(tmp_path):
    d = tiny(tmp_path, wide__csv="order-id,claim-date,claim-status" + "," * 300_000 + "\n")
    with pytest.raises(DataError) as exc:
        sources.load(d)
    assert str(exc.value) == (
        "wide.csv line 1: the line has 300,003 fields, more than the 500 an export may have; "
        "check the file or remove it from the folder."
    )


def test_row_with_too_many_fields_is_refused(tmp_path):
    d = tiny(tmp_path, claims__csv=f"{CLAIMS_HEADER}\n{CLAIM}\n{CLAIM}{',' * 600}\n")
    with pytest.raises(DataError, match=r"^claims.csv line 3: the line has 605 fields, more than the 500"):
        sources.load(d)


def test_line_longer_than_a_million_characters_is_refused(tmp_path):
    d = tiny(tmp_path, claims__csv=f"{CLAIMS_HEADER}\n{CLAIM}\n{CLAIM}\n{CLAIM}{'x' * 1_000_000}\n")
    with pytest.raises(DataError, match=r"^claims.csv line 4: the line is longer than 1,000,000 characters"):
        sources.load(d)


def test_long_first_line_of_any_file_is_refused(tmp_path):
    d = tiny(tmp_path, notes__txt="x" * 2_000_000)
    one_sentence_error(cli("check", "--data", str(d)), "notes.txt line 1: the line is longer than 1,000,000")


def test_millions_of_blank_lines_keep_line_numbers(tmp_path, sample_copy):
    """Lines are read a chunk at a time (blank lines cost no memory); numbers run on across chunks."""
    d = tiny(
        tmp_path,
        claims__csv=f"{CLAIMS_HEADER}\n" + "\n" * 3_000_000 + "111-0000001-0000002,someday,x,granted,1\n",
    )
    data = sources.load(d)
    assert file_of(data, "claims.csv").rows == 1
    assert set_aside(data) == [("claims.csv", 3_000_002, "claim-date", "someday", "cannot read as timestamp")]
    edit_cell(sample_copy / "All_Orders_com.txt", 18_000, "quantity", "-2")  # past the first chunks
    assert set_aside(sources.load(sample_copy)) == [
        ("All_Orders_com.txt", 18_000, "quantity", "-2", "negative quantity")
    ]


def test_hostile_bench_runs_small():
    r = subprocess.run(
        [
            sys.executable,
            str(config.PROJ_ROOT / "benchmarks" / "hostile_bench.py"),
            "--bomb-mib",
            "16",
            "--header-kb",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "baseline: the sample account" in r.stdout and "refused: feedback_bomb.txt.gz line" in r.stdout
    assert "refused: claims_wide.csv line 1" in r.stdout


# ----------------------------------------------------------------------------- 4. no traceback from input


def test_json_nested_100000_deep_is_refused(tmp_path):
    d = tiny(tmp_path, deep__json='{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DataError) as exc:
        sources.load(d)
    assert str(exc.value) == (
        "deep.json line 1: the JSON nests deeper than 64 levels, which no performance report does; "
        "remove the file from the folder."
    )
    one_sentence_error(cli("check", "--data", str(d)), "deep.json line 1:")


SNAPSHOT = (config.SAMPLE_DIR / "V2_Seller_Performance_2026-11-15.json").read_text()
NOT_USABLE = ", so this is not a usable GET_V2_SELLER_PERFORMANCE_REPORT document; download it again or remove it from the folder."


def _first(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: _first(t, '"defectsCount": 1,', '"defectsCount": {},'),
            "performanceMetrics[0].listingPolicyViolations.defectsCount holds an object where a number is expected"
            + NOT_USABLE,
        ),
        (
            lambda t: _first(t, '"defectsCount": 1,', '"defectsCount": 1e400,'),
            "performanceMetrics[0].listingPolicyViolations.defectsCount holds a number too large to be finite; "
            "download the performance report again.",
        ),
        (
            lambda t: _first(t, '"defectsCount": 1,', '"defectsCount": "many",'),
            "performanceMetrics[0].listingPolicyViolations.defectsCount holds text where a number is expected"
            + NOT_USABLE,
        ),
        (
            lambda t: json.dumps({**json.loads(t), "performanceMetrics": 5}),
            "performanceMetrics holds a number where a list is expected" + NOT_USABLE,
        ),
        (
            lambda t: json.dumps({**json.loads(t), "performanceMetrics": ["x"]}),
            "performanceMetrics[0] holds text where an object is expected" + NOT_USABLE,
        ),
        (
            lambda t: _first(
                t, '"ahrStatus": "GREAT",', '"ahrStatus": "GREAT", "x": 1, "y": [1, 2],'
            ).replace('"accountHealthRating": {', '"accountHealthRating": [{', 1),
            None,  # a bracket without its pair: invalid JSON, named by line and column
        ),
        (
            lambda t: json.dumps(
                {
                    **json.loads(t),
                    "performanceMetrics": [
                        {**json.loads(t)["performanceMetrics"][0], "accountHealthRating": [1, 2]}
                    ],
                }
            ),
            "performanceMetrics[0].accountHealthRating holds a list where an object is expected" + NOT_USABLE,
        ),
        (
            lambda t: _first(t, '"defectsCount": 1,', '"defectsCount": NaN,'),
            "invalid JSON (a number it cannot hold); download the file again.",
        ),
        (
            lambda t: _first(t, '"defectsCount": 1,', '"defectsCount": ' + "9" * 5000 + ","),
            "invalid JSON (a number it cannot hold); download the file again.",
        ),
        (
            lambda t: _first(
                t, '"reportingDateTo": "2026-11-15T23:59:59Z"', '"reportingDateTo": "2026-13-45T23:59:59Z"'
            ),
            "performanceMetrics[0].accountHealthRating.reportingDateRange.reportingDateTo holds '2026-13-45', which "
            "is not a date; download the performance report again.",
        ),
        (
            lambda t: _first(
                t, '"marketplaceId": "ATVPDKIKX0DER",\n      "orderDefectRate"', '"orderDefectRate"'
            ),
            "performanceMetrics[0].marketplaceId holds null where a marketplace id is expected" + NOT_USABLE,
        ),
    ],
    ids=[
        "defectsCount-object",
        "defectsCount-1e400",
        "defectsCount-text",
        "performanceMetrics-5",
        "entry-not-object",
        "invalid-json",
        "accountHealthRating-list",
        "NaN-literal",
        "huge-integer",
        "impossible-date",
        "no-marketplace-id",
    ],
)
def test_snapshot_of_the_wrong_shape_is_one_sentence(tmp_path, edit, message):
    d = tiny(tmp_path, snap__json=edit(SNAPSHOT))
    with pytest.raises(DataError) as exc:
        sources.load(d)
    if message is None:
        assert str(exc.value).startswith("snap.json: invalid JSON at line ")
    else:
        assert str(exc.value) == f"snap.json: {message}"
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("claims.csv", f"{CLAIMS_HEADER.replace('claim-status', 'claim-status, claim-status ')}"),
        ("feedback.txt", "Date\tRating\tOrder ID\tOrder ID "),
    ],
)
def test_column_named_twice_once_trimmed_is_refused(tmp_path, name, header):
    d = tiny(tmp_path, **{name.replace(".", "__"): f"{header}\n"})
    column = "claim-status" if name == "claims.csv" else "Order ID"
    with pytest.raises(DataError) as exc:
        sources.load(d)
    assert str(exc.value) == (
        f"{name} line 1: the header names the column '{column}' 2 times, so which one holds its values is "
        "unclear; remove the extra one."
    )


def test_unused_column_named_twice_is_fine(tmp_path):
    d = tiny(tmp_path, claims__csv=f"{CLAIMS_HEADER},note,note\n{CLAIM},a,b\n")
    assert file_of(sources.load(d), "claims.csv").accepted == 1


# ----------------------------------------------------------------------------- 5. wrong numbers


def test_order_dated_2206_is_set_aside(sample_copy):
    p = sample_copy / "All_Orders_com.txt"
    old = edit_cell(p, 6, "purchase-date", "2206-05-20T01:24:46+00:00")
    assert old == "2026-05-20T01:24:46+00:00"
    stamp = dt.datetime(2026, 11, 16, 12, tzinfo=dt.UTC).timestamp()
    os.utime(p, (stamp, stamp))
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        (
            "All_Orders_com.txt",
            6,
            "purchase-date",
            "2206-05-20T01:24:46+00:00",
            "date more than a day after the download (2026-11-16)",
        )
    ]
    assert health.newest_order_day(data) == dt.date(2026, 11, 15)
    assert us_mfn_defects(sample_copy) == 40


def test_the_newest_plausible_day_stands_in_for_an_old_file_date(sample_copy):
    """Files dated before their data (a clock behind, a synthetic account): the folder's newest
    plausible day is the download day, so a lone order 34 days past the rest is set aside and one
    the next day is kept (and is that newest plausible day)."""
    p = sample_copy / "All_Orders_com.txt"
    edit_cell(p, 6, "purchase-date", "2026-12-20T10:00:00+00:00")
    edit_cell(p, 7, "purchase-date", "2026-11-16T10:00:00+00:00")
    stamp = dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp()
    for f in sample_copy.iterdir():
        os.utime(f, (stamp, stamp))
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        (
            "All_Orders_com.txt",
            6,
            "purchase-date",
            "2026-12-20T10:00:00+00:00",
            "date more than a day after the download (2026-11-16)",
        )
    ]
    assert health.newest_order_day(data) == dt.date(2026, 11, 16)


def test_future_and_ancient_dates_in_other_exports_are_set_aside(tmp_path):
    claims = f"{CLAIMS_HEADER}\n{CLAIM}\n{CLAIM.replace('2026-05-05', '2206-05-05')}\n{CLAIM.replace('2026-05-05', '1900-01-01')}\n"
    feedback = "\t".join(FEEDBACK_HEADER) + "\n" + "6/6/36\t1\tlate\t\t111-0000001-0000001\t\tfalse\n"
    d = tiny(tmp_path, claims__csv=claims, feedback__txt=feedback)
    stamp = dt.datetime(2026, 5, 10, tzinfo=dt.UTC).timestamp()
    for f in d.iterdir():
        os.utime(f, (stamp, stamp))
    data = sources.load(d)
    reason = "date more than a day after the download (2026-05-10)"
    assert set_aside(data) == [
        ("claims.csv", 3, "claim-date", "2206-05-05T00:00:00+00:00", reason),
        ("claims.csv", 4, "claim-date", "1900-01-01T00:00:00+00:00", "date before 2000"),
        ("feedback.txt", 2, "Date", "6/6/36", reason),
    ]


def test_nan_refunded_amount_is_not_a_refund(sample_copy):
    assert edit_cell(sample_copy / "MFN_Returns.txt", 330, "Refunded Amount", "NaN") == "0.00"
    data = sources.load(sample_copy)
    assert set_aside(data) == [("MFN_Returns.txt", 330, "Refunded Amount", "NaN", "not a finite number")]
    assert us_pm(sample_copy)["refundRate"]["refundedOrderCount"] == 65  # 66 when NaN counted as > 0


@pytest.mark.parametrize("value", ["inf", "-Infinity", "1e400"])
def test_non_finite_amounts_are_set_aside(tmp_path, value):
    d = tiny(tmp_path, claims__csv=f"{CLAIMS_HEADER}\n{CLAIM[: -len('10.00')]}{value}\n")
    assert set_aside(sources.load(d)) == [("claims.csv", 2, "claim-amount", value, "not a finite number")]


def test_absurd_quantities_are_set_aside(sample_copy):
    p = sample_copy / "All_Orders_com.txt"
    before = sources.load(config.SAMPLE_DIR).frame("orders").select(pl.col("quantity").sum()).collect().item()
    old = [edit_cell(p, line, "quantity", v) for line, v in ((3, "5e9"), (4, "9e18"), (5, "9e18"))]
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        ("All_Orders_com.txt", line, "quantity", v, "quantity above 10,000")
        for line, v in ((3, "5e9"), (4, "9e18"), (5, "9e18"))
    ]
    units = data.frame("orders").select(pl.col("quantity").sum()).collect().item()
    assert units == before - sum(int(q) for q in old)


def test_same_order_id_in_two_marketplaces_keeps_both(sample_copy):
    us_row = (sample_copy / "All_Orders_com.txt").read_text().split("\n")[1].split("\t")
    oid, sku = us_row[ORDERS_HEADER.index("amazon-order-id")], us_row[ORDERS_HEADER.index("sku")]
    uk = sample_copy / "All_Orders_co_uk.txt"
    edit_cell(uk, 2, "amazon-order-id", oid)
    edit_cell(uk, 2, "sku", sku)
    data = sources.load(sample_copy)
    assert [f.superseded for f in data.files if f.kind == "orders"] == [0, 0]
    copies = data.frame("orders").filter(pl.col("order_id") == oid).collect()
    assert sorted(copies["marketplace_id"].unique().to_list()) == ["A1F83G8C2ARO7P", US]
    assert data.notes == [
        "1 order id is in the orders of more than one marketplace; each marketplace keeps its own copy."
    ]


def test_snapshot_negative_count_is_set_aside(sample_copy):
    p = sample_copy / "V2_Seller_Performance_2026-11-15.json"
    p.write_text(_first(p.read_text(), '"defectsCount": 1,', '"defectsCount": -5,'))
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        (
            "V2_Seller_Performance_2026-11-15.json",
            92,
            "performanceMetrics[0].listingPolicyViolations.defectsCount",
            "-5",
            "negative count; Amazon's figure for this metric is not used",
        )
    ]
    shown = us_pm(sample_copy)["listingPolicyViolations"]
    assert (shown["defectsCount"], shown["status"]) == (0, "NONE")  # was -5


def test_snapshot_dated_past_the_download_is_set_aside(sample_copy):
    p = sample_copy / "V2_Seller_Performance_2026-11-15.json"
    p.write_text(p.read_text().replace("2026-11-15T23:59:59Z", "2206-11-15T23:59:59Z"))
    stamp = dt.datetime(2026, 11, 16, tzinfo=dt.UTC).timestamp()
    os.utime(p, (stamp, stamp))
    data = sources.load(sample_copy)
    assert set_aside(data) == [
        (
            "V2_Seller_Performance_2026-11-15.json",
            78,
            "reportingDateTo",
            "2206-11-15",
            "date more than a day after the download (2026-11-16)",
        )
    ]
    assert [s["_source"] for s in data.snapshots] == ["V2_Seller_Performance_2026-11-08.json"]


# ----------------------------------------------------------------------------- fuzzing every reader

HEADERS = {
    "orders": ORDERS_HEADER,
    "feedback": FEEDBACK_HEADER,
    "fba_returns": FBA_RETURNS_HEADER,
    "mfn_returns": MFN_RETURNS_HEADER,
    "claims": CLAIMS_HEADER.split(","),
    "chargebacks": ["order-id", "chargeback-date", "reason", "category", "status"],
    "shipments": [
        "order-id",
        "latest-ship-date",
        "ship-date",
        "carrier-code",
        "tracking-number",
        "tracking-valid",
        "latest-delivery-date",
        "delivery-date",
    ],
    "cancellations": ["order-id", "cancel-date", "requested-by"],
    "messages": ["thread-id", "order-id", "received-at", "responded-at"],
    "invoices": ["order-id", "invoice-uploaded-at"],
}
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "111-0000001-0000001",
            "2026-05-01",
            "2026-05-01T10:00:00+00:00",
            "2206-01-01",
            "1899-12-30",
            "0000-01-01",
            "-0001-01-01T10:00:00Z",
            "5/3/26",
            "3",
            "-1",
            "5e9",
            "NaN",
            "inf",
            "1e400",
            "true",
            "Shipped",
            "Amazon",
            "Amazon.com",
            "granted",
            "service",
            "buyer",
            EMAIL,
            f"call {PHONE}",
            '"',
            '"a,b"',
            "\ufeff",
            "\x00",
            "\r",
            "é£€",
            "ステンレス",
            "\u2028",
        ]
    ),
    st.text(max_size=12),
)


@st.composite
def export_file(draw):
    """(kind, bytes): an export kind's header and arbitrary rows, in any encoding and line end,
    with damaged bytes, maybe gzipped (and maybe cut short)."""
    kind = draw(st.sampled_from(sorted(HEADERS)))
    sep = draw(st.sampled_from(["\t", ","]))
    rows = [
        sep.join(draw(CELLS) for _ in range(draw(st.integers(0, len(HEADERS[kind]) + 2))))
        for _ in range(draw(st.integers(0, 6)))
    ]
    eol = draw(st.sampled_from(["\n", "\r\n", "\r", "\u2028"]))
    text = eol.join([sep.join(HEADERS[kind]), *rows]) + draw(st.sampled_from(["", eol, eol * 2]))
    encoding = draw(
        st.sampled_from(
            ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252", "cp932"]
        )
    )
    data = text.encode(encoding, errors="replace")
    for _ in range(draw(st.integers(0, 3))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + draw(st.binary(max_size=3)) + data[i + 1 :]
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
    return kind, data


def _loads_or_refuses(folder: Path) -> sources.Dataset | None:
    """sources.load gives a dataset or one DataError sentence, never another exception; nothing
    shown holds the e-mail; every row of a table file is accounted for."""
    try:
        data = sources.load(folder)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    shown = [
        *data.quarantine["value"].drop_nulls().to_list(),
        *data.quarantine["reason"].to_list(),
        *data.notes,
        *(why for _, why in data.skipped),
    ]
    assert not any(EMAIL in s or "555 010" in s for s in shown)
    for f in data.files:
        if f.kind in sources.TABLE_KINDS:
            assert f.rows == f.accepted + f.quarantined + f.duplicates + f.superseded, f
    return data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=export_file())
def test_fuzz_every_table_reader(tmp_path_factory, case):
    _, data = case
    d = tmp_path_factory.mktemp("fuzz")
    shutil.copy(CORPUS / "_base_orders.txt", d / "base_orders.txt")
    (d / "fuzz.bin").write_bytes(data)
    _loads_or_refuses(d)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "count",
                    "defectsCount",
                    "rate",
                    "status",
                    "ahrScore",
                    "reportingDateTo",
                    "marketplaceId",
                    "x",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=JSON_VALUES,
    where=st.integers(0, 10_000),
    raw=st.sampled_from(["", "1e400", "NaN", "-Infinity", "9" * 5000]),
)
def test_fuzz_snapshot_reader(tmp_path_factory, value, where, raw):
    """Any value (or a raw JSON token) anywhere in a V2 snapshot: read, set aside or refused; and
    what is read gives an Account Health document."""
    doc = copy.deepcopy(json.loads(SNAPSHOT.replace("2026-11-15", "2026-05-06")))
    paths: list[tuple] = []
    stack: list[tuple[tuple, object]] = [((), doc)]
    while stack:
        path, o = stack.pop()
        paths.append(path)
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        stack.extend((path + (k,), v) for k, v in items)
    path = paths[where % len(paths)]
    if path:
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = "__RAW__" if raw else value
    else:
        doc = value if not isinstance(value, dict) else {**value, "performanceMetrics": []}
    d = tmp_path_factory.mktemp("fuzzjson")
    shutil.copy(CORPUS / "_base_orders.txt", d / "base_orders.txt")
    (d / "snap.json").write_text(json.dumps(doc, indent=1).replace('"__RAW__"', raw))
    data = _loads_or_refuses(d)
    if data is not None:
        json.dumps(account_health(data, "2026-05-06").document)
