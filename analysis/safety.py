"""What leaves the company (reports, e-mails, CSVs, JSON, logs, the terminal) never carries a
buyer's contact details, never runs as a formula or a script, and never names a path outside the
folder it was meant for. One module, so every output applies the same rules.

The patterns run on buyer text: each repeat is bounded, so the time grows linearly with the
text's length (an unbounded `[\\w.+-]+@` retried at every start of a long comment without an "@"
grows with its square). Python's `re` and polars' Rust regex read them the same way (no
look-around), so `mask` and `mask_expr` agree.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

from analysis.errors import UsageError

# ASCII classes: Unicode `\w` under bounded repeats compiles past the Rust regex size limit; an
# address or a phone number typed by a buyer is written in ASCII.
# the local part takes every character RFC 5322 allows unquoted ("mary_ann.o'neil+amz@..." whole)
_PLAIN_EMAIL = r"[A-Za-z0-9_.+'!#$%&*/=?^`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
# an address written out to pass filters: "john [at] gmail (dot) com", "JOHN.DOE AT GMAIL DOT COM".
# A bare " at " needs a spelt-out "dot" too: "bought it at amazon.com" is not an address
_AT_MARK = r"\s*[\[({][Aa][Tt][\])}]\s*"
_DOT_WORD = r"(?:\s*[\[({][Dd][Oo][Tt][\])}]\s*|\s+[Dd][Oo][Tt]\s+)"
_LOCAL, _LABEL = r"[A-Za-z0-9_.+-]{1,64}", r"[A-Za-z0-9-]{1,63}"
_SPELT_EMAIL = (
    rf"{_LOCAL}{_AT_MARK}{_LABEL}(?:(?:{_DOT_WORD}|\.){_LABEL}){{1,4}}"
    rf"|{_LOCAL}\s+[Aa][Tt]\s+{_LABEL}(?:(?:{_DOT_WORD}|\.){_LABEL}){{0,3}}{_DOT_WORD}[A-Za-z]{{2,24}}\b"
)
EMAIL_PATTERN = f"{_PLAIN_EMAIL}|{_SPELT_EMAIL}"
# a phone: 9 to 15 digits (E.164's most), up to 3 separators between two digits, starting with a
# digit or "+", not inside a longer run of letters, digits or dashes. Dates (8 digits) are not
# phones; an Amazon order id (17 digits in 3-7-7 groups) is neither, nor is any part of one.
_PHONE_CORE = r"\+?[0-9](?:[ \t()./-]{0,3}[0-9]){8,14}"
PHONE_PATTERN = r"(?P<pre>^|[^A-Za-z0-9_+-])" + _PHONE_CORE + r"(?P<post>$|[^A-Za-z0-9_-])"
EMAIL_MASK = "[e-mail]"
# patterns that decide something (causes, removal rules) look at a buyer text's first 4 KB: a
# comment longer than that is not a review Amazon shows, and time stays bounded per row
LOOK_CHARS = 4096
PHONE_MASK = "[phone]"


def mask(text: object) -> str | None:
    """`text` with every e-mail address and phone number replaced by [e-mail] / [phone]: the
    same polars expression as `mask_expr`, on one value, so a note and a column agree."""
    if text is None:
        return None
    return pl.select(mask_expr(pl.lit(str(text), dtype=pl.String))).item()


PERSONAL_KINDS = ("e-mail address", "phone number")


def personal_data(text: str) -> list[str]:
    """What kinds of contact details `text` holds ("e-mail address", "phone number"): named, never
    quoted, so a triage table can say why a feedback can go without repeating them."""
    return personal_data_of(pl.DataFrame(), pl.lit(str(text), dtype=pl.String))[0]


def personal_data_of(frame: pl.DataFrame, text: pl.Expr) -> list[list[str]]:
    """`personal_data` of `text` (a column of `frame`) in every row, in one regex pass."""
    found = frame.select(personal_data_exprs(text))
    return [[k for k, hit in zip(PERSONAL_KINDS, hits, strict=True) if hit] for hits in found.iter_rows()]


def personal_data_exprs(expr: pl.Expr) -> list[pl.Expr]:
    """`personal_data` as one boolean expression per kind of PERSONAL_KINDS (for a whole column)."""
    s = expr.cast(pl.String)
    return [
        s.str.contains(EMAIL_PATTERN).alias("_email"),
        s.str.replace_all(EMAIL_PATTERN, EMAIL_MASK).str.contains(PHONE_PATTERN).alias("_phone"),
    ]


def mask_expr(expr: pl.Expr) -> pl.Expr:
    """The same masking as `mask`, as a polars expression (Rust regex: linear time)."""
    masked = expr.cast(pl.String).str.replace_all(EMAIL_PATTERN, EMAIL_MASK)
    # the surrounding character is captured and put back; run twice so that two phones
    # separated by one character are both masked (the first match consumes the separator)
    for _ in range(2):
        masked = masked.str.replace_all(PHONE_PATTERN, "${pre}" + PHONE_MASK + "${post}")
    return masked


def mask_frame(df: pl.DataFrame | pl.LazyFrame, columns: list[str] | tuple[str, ...]):
    """`df` with the free-text `columns` (those present) masked."""
    present = [c for c in columns if c in df.collect_schema().names()]
    return df.with_columns(mask_expr(pl.col(c)).alias(c) for c in present)


# --------------------------------------------------------------------------- spreadsheets

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR) gets a leading
    apostrophe, as OWASP advises; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Every text column of `df` neutralised for spreadsheets (`csv_cell`)."""
    starts = "^[" + re.escape("".join(_FORMULA_START)) + "]"
    return df.with_columns(
        pl.when(pl.col(c).str.contains(starts)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, t in df.schema.items()
        if t == pl.String
    )


# --------------------------------------------------------------------------- the terminal


# an address we send to or from: one "@", no spaces, controls, line breaks (a header injection),
# separators or brackets, at most 254 characters (RFC 5321)
_MAIL_ADDRESS = re.compile(r'[^@\s,;<>"()\[\]\\\x00-\x1f\x7f]{1,64}@[^@\s,;<>"()\[\]\\\x00-\x1f\x7f]{1,189}')


def is_mail_address(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 254 and _MAIL_ADDRESS.fullmatch(value) is not None


def is_host(value: object) -> bool:
    """A host name or an IP address (v6 in brackets): nothing that could end a line or a command."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9.:\[\]_-]{1,253}", value) is not None


# characters that change the direction of the text after them: "Shop \u202egnp.exe" shows as
# "Shop exe.png"; dropped from buyer text shown in HTML
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])


def no_bidi(text: str) -> str:
    """`text` without direction controls (embeddings, overrides, isolates, marks)."""
    return text.translate(_BIDI)


def terminal_text(text: object) -> str:
    """`text` safe to print: control characters (escape sequences included) shown as \\xNN, bytes
    of a file name that are not UTF-8 (held as surrogates by Python) shown as \\xNN too."""
    s = str(text)
    s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(
        c if c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs") else _escaped(c) for c in s
    )


def _escaped(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


# --------------------------------------------------------------------------- folder names

_BAD_NAME = re.compile(r'[/\\<>:"|?*\x00-\x1f\x7f]')


def _is_text(s: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (lone surrogates from the OS)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def folder_name(name: str, what: str) -> str:
    """`name` if it is safe as one folder name under an output folder, else a UsageError before
    anything is written: no separators, no `.`/`..`, no leading dot, no control characters, at most
    100 characters. Spaces and `#` are allowed (links to them are URL-encoded)."""
    shown = terminal_text(name)
    if not name or not name.strip():
        raise UsageError(f"{what} is empty; give a name such as 'acme-us'.")
    if len(name) > 100:
        raise UsageError(f"{what} '{shown[:40]}...' is longer than 100 characters.")
    if _BAD_NAME.search(name) or name.startswith(".") or name != name.strip() or not _is_text(name):
        raise UsageError(
            f"{what} '{shown}' cannot be a folder name: use letters, digits, spaces, '-', '_', '#' "
            "(no '/', '\\', leading '.', or control characters)."
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        # invisible or direction-changing characters: "Shop \u202egnp.exe" shows as "Shop exe.png",
        # and "Zero\u200bWidth" looks like "ZeroWidth"
        raise UsageError(
            f"{what} '{shown}' holds an invisible or direction-changing character; "
            "use letters, digits, spaces, '-', '_', '#'."
        )
    return name
