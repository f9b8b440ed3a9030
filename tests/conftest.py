"""Shared fixtures: a builder for tiny hand-made accounts in the real export formats."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from analysis import config
from analysis.inputs.sample import FEEDBACK_HEADER, ORDERS_HEADER

_CACHE_TMP: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Every run of the suite (and every process it starts) keeps its on-disk cache in a folder
    of its own, never in the user's cache folder."""
    _CACHE_TMP.append(tempfile.mkdtemp(prefix="ah-test-cache-"))
    os.environ["AH_CACHE_DIR"] = _CACHE_TMP[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _CACHE_TMP:
        shutil.rmtree(folder, ignore_errors=True)


def launch_chromium(host_rules: str = "MAP * ~NOTFOUND"):
    """Debian's Chromium, headless, every host unreachable unless `host_rules` says otherwise: a
    context manager giving the browser (skips the test when Chromium or Playwright is absent)."""
    import contextlib

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")

    @contextlib.contextmanager
    def launched():
        with playwright.sync_playwright() as p:
            b = p.chromium.launch(
                executable_path=chromium,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    f"--host-resolver-rules={host_rules}",
                ],
            )
            try:
                yield b
            finally:
                b.close()

    return launched()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module, with no network."""
    with launch_chromium() as b:
        yield b


class Inbox:
    """An aiosmtpd handler keeping every message it receives: (sender, recipients, bytes)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Account:
    """Write a tiny seller account, row by row, in the export formats of inputs.md."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.orders: list[dict] = []
        self.absent: set[str] = set()
        self.feedbacks: dict[str, list[list[str]]] = {}
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}

    def order(
        self,
        oid: str,
        purchase: str,
        channel: str = "AFN",
        status: str = "Shipped",
        sku: str = "SKU-1",
        qty: int = 1,
        market: str = "Amazon.com",
        business: bool = False,
        last_updated: str | None = None,
    ) -> Account:
        if "T" not in purchase:
            purchase += "T12:00:00+00:00"
        self.orders.append(
            {
                "amazon-order-id": oid,
                "purchase-date": purchase,
                "last-updated-date": last_updated or purchase,
                "order-status": status,
                "fulfillment-channel": {"AFN": "Amazon", "MFN": "Merchant"}.get(channel, channel),
                "sales-channel": market,
                "sku": sku,
                "asin": "B000" + sku,
                "product-name": f"Product {sku}",
                "item-status": status,
                "quantity": str(qty),
                "currency": "USD",
                "item-price": "10.00",
                "is-business-order": "true" if business else "false",
            }
        )
        return self

    def feedback(
        self,
        oid: str,
        date: str,
        rating: int,
        comment: str = "ok",
        removed: str | None = None,
        file: str = "feedback.txt",
        response: str = "",
    ) -> Account:
        self.feedbacks.setdefault(file, []).append(
            [date, str(rating), comment, response, oid, f"buyer-{oid}@example.com", removed or ""]
        )
        return self

    def without(self, *kinds: str) -> Account:
        """Leave these kinds' files out (`write` otherwise adds a header-only file, Seller
        Central's "nothing to download", for every kind the account has no row of)."""
        self.absent.update(kinds)
        return self

    def _row(self, name: str, header: list[str], row: list[str]) -> Account:
        self.tables.setdefault(name, (header, []))[1].append(row)
        return self

    def claim(self, oid: str, date: str, status: str, reason: str = "not-received") -> Account:
        return self._row(
            "claims.csv",
            ["order-id", "claim-date", "claim-reason", "claim-status", "claim-amount"],
            [oid, date, reason, status, "10.00"],
        )

    def chargeback(self, oid: str, date: str, category: str = "service", status: str = "open") -> Account:
        return self._row(
            "chargebacks.csv",
            ["order-id", "chargeback-date", "reason", "category", "status"],
            [oid, date, "reason", category, status],
        )

    def shipment(
        self,
        oid: str,
        latest_ship: str,
        ship: str = "",
        carrier: str = "UPS",
        tracking: str = "1Z999",
        valid: str = "",
        latest_delivery: str = "",
        delivery: str = "",
        buy_shipping: str = "",
    ) -> Account:
        return self._row(
            "shipments.csv",
            [
                "order-id",
                "latest-ship-date",
                "ship-date",
                "carrier-code",
                "tracking-number",
                "tracking-valid",
                "latest-delivery-date",
                "delivery-date",
                "buy-shipping",
            ],
            [oid, latest_ship, ship, carrier, tracking, valid, latest_delivery, delivery, buy_shipping],
        )

    def cancellation(self, oid: str, date: str, by: str) -> Account:
        return self._row("cancellations.csv", ["order-id", "cancel-date", "requested-by"], [oid, date, by])

    def message(self, thread: str, oid: str, received: str, responded: str = "") -> Account:
        return self._row(
            "messages.csv",
            ["thread-id", "order-id", "received-at", "responded-at"],
            [thread, oid, received, responded],
        )

    def invoice(self, oid: str, uploaded: str) -> Account:
        return self._row("invoices.csv", ["order-id", "invoice-uploaded-at"], [oid, uploaded])

    def fba_return(self, oid: str, date: str, sku: str = "SKU-1") -> Account:
        header = "return-date order-id sku asin fnsku product-name quantity fulfillment-center-id detailed-disposition reason status license-plate-number customer-comments".split()
        return self._row(
            "fba_returns.txt",
            header,
            [
                date,
                oid,
                sku,
                "B000",
                "X000",
                "p",
                "1",
                "PHX7",
                "SELLABLE",
                "UNWANTED_ITEM",
                "Unit returned to inventory",
                "LPN1",
                "",
            ],
        )

    def mfn_return(self, oid: str, date: str, refunded: str) -> Account:
        from analysis.inputs.sample import MFN_RETURNS_HEADER

        row = dict.fromkeys(MFN_RETURNS_HEADER, "")
        row.update(
            {
                "Order ID": oid,
                "Return request date": date,
                "Refunded Amount": refunded,
                "Merchant SKU": "SKU-1",
            }
        )
        return self._row("mfn_returns.txt", MFN_RETURNS_HEADER, [row[h] for h in MFN_RETURNS_HEADER])

    def write(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.orders:
            lines = ["\t".join(ORDERS_HEADER)]
            for o in self.orders:
                lines.append("\t".join(o.get(h, "") for h in ORDERS_HEADER))
            (self.root / "orders.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for name, rows in self.feedbacks.items():
            lines = ["\t".join(FEEDBACK_HEADER)] + ["\t".join(r) for r in rows]
            (self.root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        for name, (header, rows) in self.tables.items():
            with open(self.root / name, "w", newline="", encoding="utf-8") as fh:
                sep = "\t" if name.endswith(".txt") else ","
                w = csv.writer(
                    fh,
                    delimiter=sep,
                    lineterminator="\n",
                    quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE,
                    escapechar=None if sep == "," else "\\",
                )
                w.writerow(header)
                w.writerows(rows)
        self._write_empty()
        return self.root

    def _write_empty(self) -> None:
        from analysis.inputs.sample import MFN_RETURNS_HEADER

        empty = {
            "feedback": ("feedback.txt", FEEDBACK_HEADER),
            "claims": (
                "claims.csv",
                ["order-id", "claim-date", "claim-reason", "claim-status", "claim-amount"],
            ),
            "chargebacks": (
                "chargebacks.csv",
                ["order-id", "chargeback-date", "reason", "category", "status"],
            ),
            "shipments": ("shipments.csv", ["order-id", "latest-ship-date", "ship-date", "carrier-code"]),
            "cancellations": ("cancellations.csv", ["order-id", "cancel-date", "requested-by"]),
            "messages": ("messages.csv", ["thread-id", "order-id", "received-at", "responded-at"]),
            "invoices": ("invoices.csv", ["order-id", "invoice-uploaded-at"]),
            "fba_returns": (
                "fba_returns.txt",
                "return-date order-id sku asin fnsku product-name quantity fulfillment-center-id detailed-disposition reason status license-plate-number customer-comments".split(),
            ),
            "mfn_returns": ("mfn_returns.txt", MFN_RETURNS_HEADER),
        }
        written = set(self.tables) | set(self.feedbacks)
        for kind, (name, header) in empty.items():
            if kind in self.absent or (kind == "feedback" and self.feedbacks) or name in written:
                continue
            sep = "\t" if name.endswith(".txt") else ","
            (self.root / name).write_text(sep.join(header) + "\n", encoding="utf-8")


def cover_until(folder: Path, day) -> Path:
    """Make the data reach `day`: one Amazon.de order on it, in a file of its own. Hand-made
    accounts end before their as-of day, and windows past the newest order get no verdict; the
    marketplace is another one, so no count the tests read changes."""
    row = dict.fromkeys(ORDERS_HEADER, "")
    row.update(
        {
            "amazon-order-id": "302-END-OF-DATA",
            "purchase-date": f"{day}T12:00:00+00:00",
            "last-updated-date": f"{day}T12:00:00+00:00",
            "order-status": "Shipped",
            "fulfillment-channel": "Amazon",
            "sales-channel": "Amazon.de",
            "sku": "SKU-1",
            "quantity": "1",
        }
    )
    lines = ["\t".join(ORDERS_HEADER), "\t".join(row[h] for h in ORDERS_HEADER)]
    (folder / "orders_end_of_data.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def account(tmp_path: Path) -> Account:
    return Account(tmp_path / "account")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return config.SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_data(sample_dir: Path):
    from analysis.inputs import sources

    return sources.load(sample_dir)


@pytest.fixture
def sample_copy(tmp_path: Path, sample_dir: Path) -> Path:
    dst = tmp_path / "sample"
    shutil.copytree(sample_dir, dst)
    return dst
