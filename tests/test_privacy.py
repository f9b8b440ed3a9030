"""What leaves the company (issue 14, classes 2, 3 and 5): buyer contact details masked in every
table we write, patterns linear in the text's length, spreadsheet-safe cells, terminal-safe
text, safe folder names. The CLI's CSV/paths and the readers' notes have their own tests
(test_hostile_outputs.py, test_hostile_inputs.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import polars as pl
import pytest
from conftest import cover_until
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import safety
from analysis.errors import UsageError
from analysis.inputs import sources
from analysis.insights import defects, triage
from analysis.report import kit

EMAIL = "jane.doe@example.com"


@pytest.mark.parametrize(
    ("text", "masked", "kinds"),
    [
        (f"write me at {EMAIL} thanks", "write me at [e-mail] thanks", ["e-mail address"]),
        ("call +1 (555) 123-4567 now", "call [phone] now", ["phone number"]),
        ("ruf an 030/12345678.", "ruf an [phone].", ["phone number"]),
        ("Tel:+49 30 1234567", "Tel:[phone]", ["phone number"]),
        ("two: 0176 1234567,0176 7654321", "two: [phone],[phone]", ["phone number"]),
        (f"{EMAIL}/+44 20 7946 0958", "[e-mail]/[phone]", ["e-mail address", "phone number"]),
        # not phones: a date (8 digits), an order id (17 digits in 3-7-7) and any part of it,
        # a price, digits inside a word, a 16-digit run (past E.164's 15)
        ("arrived 2026-11-01", "arrived 2026-11-01", []),
        ("order 111-2223334-5556667 late", "order 111-2223334-5556667 late", []),
        ("paid 1,299.99 USD", "paid 1,299.99 USD", []),
        ("sku abc12345678901def", "sku abc12345678901def", []),
        ("1234567890123456", "1234567890123456", []),
        ("no @ here, a@b is not an address", "no @ here, a@b is not an address", []),
        # every character RFC 5322 allows unquoted in the local part: the whole address goes
        ("Email: mary_ann.o'neil+amz@sub.example.co.uk ok", "Email: [e-mail] ok", ["e-mail address"]),
        ("x=j!m#s$%&*/=?^`{|}~-@mail.example", "[e-mail]", ["e-mail address"]),
        # written out to pass filters
        ("Write to JOHN.DOE AT GMAIL DOT COM now", "Write to [e-mail] now", ["e-mail address"]),
        ("mail john [at] gmail (dot) com", "mail [e-mail]", ["e-mail address"]),
        ("john(at)web.de", "[e-mail]", ["e-mail address"]),
        # ...but not plain sentences
        ("bought it at amazon.com, fine", "bought it at amazon.com, fine", []),
        ("delivered at 5.30pm", "delivered at 5.30pm", []),
        ("left at the door. Very bad", "left at the door. Very bad", []),
    ],
)
def test_mask_by_hand(text, masked, kinds):
    assert safety.mask(text) == masked
    assert safety.personal_data(text) == kinds
    # the column form gives the same text
    col = pl.DataFrame({"c": [text]}).select(safety.mask_expr(pl.col("c")))["c"][0]
    assert col == masked


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(codec="utf-8"), max_size=60),
    st.sampled_from([EMAIL, "a.b+c@mail.example.co.uk", "+1 555 123 4567", "0044 20 7946 0958"]),
    st.text(st.characters(codec="utf-8"), max_size=60),
)
def test_mask_hides_what_was_put_anywhere(before, secret, after):
    """Whatever surrounds it, an address or number put in a text is gone once masked (unless the
    surroundings make it part of a longer address or number, which is then masked whole)."""
    text = f"{before} {secret} {after}"
    out = safety.mask(text)
    assert secret not in out
    assert pl.DataFrame({"c": [text]}).select(safety.mask_expr(pl.col("c")))["c"][0] == out


def test_direction_controls_are_dropped_from_html():
    """A buyer's right-to-left override ("\u202egnp.exe" shows as "exe.png") never reaches a page:
    the report's escaping and a rendered notebook's outputs drop every direction control."""
    from analysis.report import kit, notebooks

    text = "Shop \u202egnp.exe\u202c \u2066x\u2069 \u200fy <b>"
    assert kit.esc(text) == "Shop gnp.exe x y &lt;b&gt;"
    assert notebooks._mask(text) == "Shop gnp.exe x y <b>"
    assert kit.esc_text(text) == kit.esc(text)


def test_csv_cells_cannot_run():
    assert [safety.csv_cell(v) for v in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "ok", -5, 1.5, None)] == [
        "'=1+1",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "ok",
        -5,
        1.5,
        None,
    ]
    df = pl.DataFrame({"sku": ['=HYPERLINK("x")', "SKU-1", None], "n": [-1, 2, 3]})
    out = safety.csv_safe(df)
    assert out["sku"].to_list() == ['\'=HYPERLINK("x")', "SKU-1", None] and out["n"].to_list() == [-1, 2, 3]


def test_terminal_text():
    assert safety.terminal_text("a\x1b[31mred\x07") == "a\\x1b[31mred\\x07"
    # a file name byte that is not UTF-8 (Python holds it as a surrogate)
    assert safety.terminal_text(b"caf\xe9.txt".decode("utf-8", "surrogateescape")) == "caf\\xe9.txt"
    assert safety.terminal_text("Müller\u202egnp.exe") == "Müller\\u202egnp.exe"  # bidi override


@pytest.mark.parametrize("name", ["acme", "Shop #2", "acme-us_2026", "Müller GmbH"])
def test_folder_names_accepted(name):
    assert safety.folder_name(name, "--account") == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../../x", "cannot be a folder name"),
        ("/etc", "cannot be a folder name"),
        ("a/b", "cannot be a folder name"),
        ("a\\b", "cannot be a folder name"),
        (".hidden", "cannot be a folder name"),
        ("..", "cannot be a folder name"),
        ("x\x1b[2J", "cannot be a folder name"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * 101, "longer than 100 characters"),
        (b"caf\xe9".decode("utf-8", "surrogateescape"), "cannot be a folder name"),
        ("Shop \u202egnp.exe", "invisible or direction-changing"),  # shows as "Shop exe.png"
        ("Zero\u200bWidth", "invisible or direction-changing"),  # looks like "ZeroWidth"
        ("x\u0085y", "invisible or direction-changing"),  # a C1 control
    ],
)
def test_folder_names_refused(name, words):
    with pytest.raises(UsageError, match=words) as e:
        safety.folder_name(name, "--account")
    assert "\x1b" not in str(e.value)


# ------------------------------------------------------------------ buyer text in our tables


def _account_with_contact(account):
    for i in range(20):
        account.order(f"111-0000000-00000{i:02d}", "2026-05-01")
    account.feedback(
        "111-0000000-0000001", "5/10/26", 1, comment=f"Broken. Mail {EMAIL} or call +1 555 123 4567"
    )
    account.feedback("111-0000000-0000002", "5/11/26", 1, comment='=HYPERLINK("http://x") never arrived')
    account.claim("111-0000000-0000003", "2026-05-12", "granted", reason=f"buyer wrote {EMAIL}")
    return sources.load(account.write())


def test_triage_names_the_contact_details_and_masks_the_comment(account):
    data = _account_with_contact(account)
    t = triage.triage(data, dt.date(2026, 6, 30)).filter(pl.col("order_id") == "111-0000000-0000001")
    row = t.row(0, named=True)
    assert row["verdict"] == triage.REMOVABLE
    assert row["trigger_words"] == "e-mail address, phone number"
    assert row["comments"] == "Broken. Mail [e-mail] or call [phone]"


def test_defect_rows_mask_buyer_text(account):
    data = _account_with_contact(account)
    rows = defects.defect_table(data, dt.date(2026, 6, 30))
    text = rows.write_csv()
    assert EMAIL not in text and "555 123" not in text
    assert "[e-mail]" in text


def test_defects_cli_masks_and_neutralises(account):
    _account_with_contact(account)
    folder = cover_until(account.root, dt.date(2026, 6, 30))
    run = [sys.executable, "-m", "analysis", "defects", "--data", str(folder), "--as-of", "2026-06-30"]
    csv = subprocess.run([*run, "--format", "csv"], capture_output=True, text=True, timeout=120)
    js = subprocess.run([*run, "--format", "json"], capture_output=True, text=True, timeout=120)
    for out in (csv, js):
        assert out.returncode == 0, out.stderr
        assert EMAIL not in out.stdout + out.stderr and "555 123 4567" not in out.stdout
    comments = [r["cause_text"] or "" for r in json.loads(js.stdout)]
    assert "Broken. Mail [e-mail] or call [phone]" in comments
    # the formula a buyer typed reaches the spreadsheet as text
    cells = pl.read_csv(csv.stdout.encode(), infer_schema=False)["cause_text"].to_list()
    assert '\'=HYPERLINK("http://x") never arrived' in cells


def test_long_buyer_text_is_cut_in_tables():
    short = kit.esc_text("<b>hi</b>")
    assert short == "&lt;b&gt;hi&lt;/b&gt;"
    long = kit.esc_text("é" * 1000)
    assert long.startswith("é" * kit.SHOWN_CHARS + " ") and "[600 more characters]" in long
    html = kit.table_html(pl.DataFrame({"comments": ["x" * 5000]}), {"comments": "Comment"})
    assert "[4,600 more characters]" in html and "x" * 401 not in html


def test_triage_finds_contact_details_for_the_column_as_for_one_comment(account):
    """triage looks for contact details over the whole column at once; each row's verdict is the
    one `verdict` gives that comment alone (a phone past the first LOOK_CHARS characters is not
    looked at, as one comment's check does not)."""
    comments = [
        f"Mail {EMAIL}",
        "call +44 20 7946 0958 now",
        "x" * safety.LOOK_CHARS + " +1 555 123 4567",
        "x" * (safety.LOOK_CHARS - 20) + " +1 555 123 4567",
        "order 111-2223334-5556667 never arrived",
        "",
    ]
    for i, _ in enumerate(comments):
        account.order(f"111-0000000-00000{i:02d}", "2026-05-01")
    for i, text in enumerate(comments):
        account.feedback(f"111-0000000-00000{i:02d}", f"5/{10 + i}/26", 1, comment=text)
    data = sources.load(account.write())
    t = triage.triage(data, dt.date(2026, 6, 30)).sort("order_id")
    assert t.height == len(comments)
    got = dict(zip(t["order_id"], t["trigger_words"], strict=True))
    for i, text in enumerate(comments):
        alone = triage.verdict(text, "AFN", None, None)
        assert got[f"111-0000000-00000{i:02d}"] == alone[2], text[-40:]
    assert got["111-0000000-0000000"] == "e-mail address"
    assert got["111-0000000-0000001"] == "phone number"
    assert got["111-0000000-0000002"] != "phone number"  # past the first LOOK_CHARS
    assert got["111-0000000-0000003"] == "phone number"
