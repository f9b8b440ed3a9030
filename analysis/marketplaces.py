"""Marketplace ids, names and the feedback report's per-marketplace date formats (inputs.md 1, 2)."""

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
