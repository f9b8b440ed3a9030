"""Marketplace ids, names and the feedback report's per-marketplace date formats (inputs.md 1, 2)."""

from analysis.errors import UsageError

SALES_CHANNEL_TO_ID: dict[str, str] = {
    "Amazon.com": "ATVPDKIKX0DER",
    "Amazon.ca": "A2EUQ1WTGCTBG2",
    "Amazon.com.mx": "A1AM78C64UM0Y8",
    "Amazon.co.uk": "A1F83G8C2ARO7P",
    "Amazon.de": "A1PA6795UKMFR9",
    "Amazon.fr": "A13V1IB3VIYZZH",
    "Amazon.it": "APJ6JRA9NG5V4",
    "Amazon.es": "A1RKKUPIHCS9HS",
    "Amazon.nl": "A1805IZSGTT6HS",
    "Amazon.se": "A2NODRKZP88ZB9",
    "Amazon.pl": "A1C3SOZRARQ6R3",
    "Amazon.co.jp": "A1VC38T7YXB528",
    "Amazon.com.au": "A39IBJ37TRP1C6",
    "Amazon.in": "A21TJRUUN4KGV",
}
ID_TO_SALES_CHANNEL = {v: k for k, v in SALES_CHANNEL_TO_ID.items()}

# Feedback `Date` format per marketplace, unpadded (inputs.md section 2). Every marketplace not
# listed uses D/M/YY.
FEEDBACK_DATE_FORMAT: dict[str, str] = {
    "ATVPDKIKX0DER": "%m/%d/%y",
    "A1PA6795UKMFR9": "%d.%m.%y",
    "A1VC38T7YXB528": "%y/%m/%d",
    "A2NODRKZP88ZB9": "%Y-%m-%d",
}
DEFAULT_FEEDBACK_DATE_FORMAT = "%d/%m/%y"


def feedback_date_format(marketplace_id: str) -> str:
    return FEEDBACK_DATE_FORMAT.get(marketplace_id, DEFAULT_FEEDBACK_DATE_FORMAT)


def marketplace_label(marketplace_id: str) -> str:
    """Human name of a marketplace for reports (falls back to the id)."""
    return ID_TO_SALES_CHANNEL.get(marketplace_id, marketplace_id)


COUNTRY_TO_ID: dict[str, str] = {
    "US": "ATVPDKIKX0DER",
    "CA": "A2EUQ1WTGCTBG2",
    "MX": "A1AM78C64UM0Y8",
    "UK": "A1F83G8C2ARO7P",
    "GB": "A1F83G8C2ARO7P",
    "DE": "A1PA6795UKMFR9",
    "FR": "A13V1IB3VIYZZH",
    "IT": "APJ6JRA9NG5V4",
    "ES": "A1RKKUPIHCS9HS",
    "NL": "A1805IZSGTT6HS",
    "SE": "A2NODRKZP88ZB9",
    "PL": "A1C3SOZRARQ6R3",
    "JP": "A1VC38T7YXB528",
    "AU": "A39IBJ37TRP1C6",
    "IN": "A21TJRUUN4KGV",
}


def resolve(text: str) -> str:
    """A marketplace id from what a user types: an id (`A1PA6795UKMFR9`), a domain
    (`amazon.de`, `www.amazon.co.uk`) or a country code (`DE`, `UK`/`GB`)."""
    t = text.strip()
    if t in ID_TO_SALES_CHANNEL:
        return t
    if t.upper() in COUNTRY_TO_ID:
        return COUNTRY_TO_ID[t.upper()]
    domain = t.lower().removeprefix("https://").removeprefix("www.").rstrip("/")
    for name, mid in SALES_CHANNEL_TO_ID.items():
        if domain == name.lower():
            return mid
    raise UsageError(
        f"'{text}' is not a marketplace; use an id (ATVPDKIKX0DER), a domain (amazon.de) or a country code "
        f"({', '.join(sorted(COUNTRY_TO_ID))})"
    )
