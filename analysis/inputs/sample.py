"""A realistic, seeded sample account in the real export formats (`python -m analysis sample`).

Two marketplaces (Amazon.com, Amazon.co.uk), FBA and seller-fulfilled orders over 180 days with
weekly seasonality, multi-item and business orders; defects that arrive days to weeks after the
order, concentrated on a few SKUs and carriers; and two injected spikes (a bad carrier week and a
bad SKU batch) recorded in `manifest.json` so tests can check that they are found.

Everything comes from one `random.Random(seed)`, whose stream Python keeps stable, so the same
seed writes byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis.config import SAMPLE_END_DATE, SAMPLE_SEED
from analysis.errors import UsageError
from analysis.inputs import parsing
from analysis.safety import terminal_text

DAYS = 180
ORDERS_HEADER = (
    "amazon-order-id	merchant-order-id	purchase-date	last-updated-date	order-status	fulfillment-channel	"
    "sales-channel	order-channel	url	ship-service-level	product-name	sku	asin	item-status	quantity	currency	"
    "item-price	item-tax	shipping-price	shipping-tax	gift-wrap-price	gift-wrap-tax	item-promotion-discount	"
    "ship-promotion-discount	ship-city	ship-state	ship-postal-code	ship-country	promotion-ids	is-business-order	"
    "purchase-order-number	price-designation"
).split("\t")
FEEDBACK_HEADER = ["Date", "Rating", "Comments", "Your Response", "Order ID", "Rater Email", "Removed"]
FBA_RETURNS_HEADER = (
    "return-date order-id sku asin fnsku product-name quantity fulfillment-center-id detailed-disposition "
    "reason status license-plate-number customer-comments"
).split()
MFN_RETURNS_HEADER = [
    "Order ID", "Order date", "Return request date", "Return request status", "Amazon RMA ID",
    "Merchant RMA ID", "Label type", "Label cost", "Currency code", "Return carrier", "Tracking ID",
    "Label to be paid by", "A-to-Z Claim", "Is prime", "ASIN", "Merchant SKU", "Item Name",
    "Return quantity", "Return Reason", "In policy", "Return type", "Resolution", "Invoice number",
    "Return delivery date", "Order Amount", "Order quantity", "SafeT Action reason", "SafeT claim id",
    "SafeT claim state", "SafeT claim creation time", "SafeT claim reimbursement amount", "Refunded Amount",
]  # fmt: skip


@dataclass(frozen=True)
class Market:
    channel: str
    marketplace_id: str
    currency: str
    country: str
    prefix: str
    base_orders: float
    afn_share: float
    carriers: tuple[tuple[str, float], ...]
    feedback_format: str
    feedback_encoding: str
    cities: tuple[tuple[str, str, str], ...]


MARKETS = (
    Market(
        "Amazon.com", "ATVPDKIKX0DER", "USD", "US", "11", 80.0, 0.6,
        (("USPS", 0.5), ("UPS", 0.3), ("FedEx", 0.2)), "us", "utf-8",
        (("Austin", "TX", "78701"), ("Portland", "OR", "97201"), ("Columbus", "OH", "43004"), ("Raleigh", "NC", "27601")),
    ),
    Market(
        "Amazon.co.uk", "A1F83G8C2ARO7P", "GBP", "GB", "20", 30.0, 0.5,
        (("Royal Mail", 0.5), ("DPD", 0.3), ("Evri", 0.2)), "uk", "cp1252",
        (("Leeds", "West Yorkshire", "LS1 4AP"), ("Bristol", "", "BS1 5TR"), ("Glasgow", "", "G1 1XQ")),
    ),
)  # fmt: skip

# SKU, ASIN, product name, price (USD; GBP is 0.8 of it), baseline defect weight
CATALOG = (
    ("KB-200-BLK", "B0C7KB2001", "Mechanical Keyboard KB-200, black", 79.99, 1.0),
    ("KB-200-WHT", "B0C7KB2002", "Mechanical Keyboard KB-200, white", 79.99, 1.0),
    ("MS-10", "B0C7MS0010", "Wireless Mouse MS-10", 24.99, 0.6),
    ("MP-XL", "B0C7MPXL01", "Desk Mat XL (90 × 40 cm)", 19.99, 0.4),
    ("HUB-7", "B0C7HUB007", "USB-C Hub 7-in-1", 39.99, 2.2),
    ("CBL-2M", "B0C7CBL2M0", "USB-C Cable 2 m, braided", 9.99, 0.5),
    ("STAND-A", "B0C7STANDA", 'Laptop Stand 12" to 17", aluminium', 34.99, 1.4),
    ("LAMP-LED", "B0C7LAMP01", "LED Desk Lamp with wireless charger", 45.99, 3.0),
    ("CHAIR-CUSH", "B0C7CUSH01", "Memory-foam Seat Cushion", 29.99, 0.9),
    ("CAFE-MUG", "B0C7MUG001", "Café Mug 350 ml, insulated", 14.99, 0.5),
    ("HEADSET-P", "B0C7HEADP1", "Headset Pro with noise-cancelling mic", 69.99, 1.6),
    ("WEBCAM-4K", "B0C7CAM4K1", "Webcam 4K", 89.99, 1.2),
    ("SPK-MINI", "B0C7SPKM01", "Mini Bluetooth Speaker", 27.99, 0.8),
    ("PEN-SET", "B0C7PENS01", "Gel Pen Set, 12 colours", 11.99, 0.3),
    ("NOTE-A5", "B0C7NOTE05", "A5 Dotted Notebook", 12.99, 0.3),
    ("ORG-DRAW", "B0C7ORGD01", "Drawer Organiser, bamboo", 21.99, 0.5),
)
WEEKDAY = (1.12, 1.08, 1.04, 1.0, 0.95, 0.86, 0.95)  # Monday ... Sunday
BAD_SKU = "HUB-7"
BAD_CARRIER = ("ATVPDKIKX0DER", "FedEx")

CAUSE_COMMENTS = {
    "late": [
        "Arrived a week late, needed it for a trip.",
        "Took far longer than promised to arrive.",
        "Delivery was late and tracking didn't update for days.",
    ],
    "not_received": [
        "Never arrived. Tracking says delivered but nothing here.",
        "Package never showed up, still waiting on a refund.",
        "Item not received after 3 weeks.",
    ],
    "damaged": [
        "Box was crushed and the item arrived broken.",
        "Arrived damaged, one side cracked.",
        "Came broken, clearly dropped in transit.",
    ],
    "not_as_described": [
        "Not as described: listing says aluminium, this is plastic.",
        "Doesn't match the photos at all.",
        "Product stopped working after two days, poor quality.",
    ],
    "wrong_item": [
        "Wrong item sent, I ordered black and got white.",
        "Received a completely different product.",
    ],
    "service": [
        "Seller never answered my messages.",
        "Rude seller, refused to help with a return.",
        "Asked twice for an invoice & got no reply <3 not impressed",
    ],
}
UK_COMMENT_EXTRAS = ["Paid £24.99 for this, not worth it.", "£40 wasted, arrived broken."]
NEUTRAL_COMMENTS = ["OK product, packaging could be better.", "Fine, but took a while.", "Does the job."]
CLAIM_REASON = {
    "late": "not-received",
    "not_received": "not-received",
    "damaged": "damaged",
    "not_as_described": "not-as-described",
    "wrong_item": "wrong-item",
    "service": "refund-not-issued",
}
RETURN_REASON = {
    "damaged": ("DAMAGED_BY_CARRIER", "CARRIER_DAMAGED"),
    "not_as_described": ("NOT_AS_DESCRIBED", "DEFECTIVE"),
    "wrong_item": ("ORDERED_WRONG_ITEM", "SELLABLE"),
    "unwanted": ("UNWANTED_ITEM", "SELLABLE"),
    "defective": ("DEFECTIVE", "DEFECTIVE"),
}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _feedback_date(d: dt.date, style: str) -> str:
    if style == "us":
        return f"{d.month}/{d.day}/{d.strftime('%y')}"
    return f"{d.day}/{d.month}/{d.strftime('%y')}"


@dataclass
class Order:
    order_id: str
    market: Market
    purchase: dt.datetime
    channel: str  # AFN / MFN
    items: list[tuple[tuple, int]]  # (catalog row, quantity)
    business: bool
    status: str = "Shipped"
    last_updated: dt.datetime | None = None
    packages: list[dict] = field(default_factory=list)
    defects: list[dict] = field(default_factory=list)


class Generator:
    def __init__(self, seed: int, end: dt.date, days: int = DAYS) -> None:
        self.r = random.Random(seed)
        self.seed = seed
        self.end = end
        self.days = days
        self.start = end - dt.timedelta(days=days - 1)
        self.end_ts = parsing.end_of_day(end)
        self.carrier_spike = (end - dt.timedelta(days=69), end - dt.timedelta(days=63))
        self.sku_spike = (end - dt.timedelta(days=41), end - dt.timedelta(days=32))
        self.orders: list[Order] = []
        self.feedback: list[dict] = []
        self.claims: list[list] = []
        self.chargebacks: list[list] = []
        self.cancellations: list[list] = []
        self.fba_returns: list[list] = []
        self.mfn_returns: list[list] = []
        self.messages: list[list] = []
        self.invoices: list[list] = []
        self._ids: set[str] = set()

    # ------------------------------------------------------------------ helpers
    def _poisson(self, lam: float) -> int:
        if lam > 30:
            return max(0, round(self.r.gauss(lam, math.sqrt(lam))))
        k, p, threshold = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.r.random()
            if p <= threshold:
                return k
            k += 1

    def _order_id(self, m: Market) -> str:
        while True:
            oid = f"{m.prefix}{self.r.randint(1, 9)}-{self.r.randint(0, 9999999):07d}-{self.r.randint(0, 9999999):07d}"
            if oid not in self._ids:
                self._ids.add(oid)
                return oid

    def _at(self, day: dt.date, hour_lo: int = 0, hour_hi: int = 23) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(
            seconds=self.r.randint(hour_lo * 3600, hour_hi * 3600 + 3599)
        )

    def _delay(self, median_days: float, spread: float = 0.6) -> dt.timedelta:
        return dt.timedelta(hours=max(2.0, 24 * median_days * math.exp(self.r.gauss(0, spread))))

    def _pick_sku(self) -> tuple:
        return self.r.choices(
            CATALOG, weights=[4 if c[0].startswith("KB") else 3 if c[3] < 30 else 2 for c in CATALOG]
        )[0]

    # ------------------------------------------------------------------ orders
    def make_orders(self) -> None:
        for m in MARKETS:
            for i in range(self.days):
                day = self.start + dt.timedelta(days=i)
                trend = 0.85 + 0.3 * i / self.days
                lam = m.base_orders * WEEKDAY[day.weekday()] * trend
                for _ in range(self._poisson(lam)):
                    self.orders.append(self._order(m, day))
        self.orders.sort(key=lambda o: (o.purchase, o.order_id))

    def _order(self, m: Market, day: dt.date) -> Order:
        channel = "AFN" if self.r.random() < m.afn_share else "MFN"
        n_items = self.r.choices((1, 2, 3), weights=(76, 18, 6))[0]
        skus: list[tuple] = []
        while len(skus) < n_items:
            c = self._pick_sku()
            if c not in skus:
                skus.append(c)
        items = [(c, self.r.choices((1, 2, 3), weights=(85, 12, 3))[0]) for c in skus]
        o = Order(self._order_id(m), m, self._at(day), channel, items, self.r.random() < 0.08)
        age = (self.end_ts - o.purchase).total_seconds() / 86400
        cancel_p = 0.012 if channel == "MFN" else 0.004
        if self.r.random() < cancel_p:
            o.status = "Cancelled"
            o.last_updated = o.purchase + dt.timedelta(hours=self.r.uniform(1, 40))
            by = (
                self.r.choices(("buyer", "seller", "system"), weights=(6, 3, 1))[0]
                if channel == "MFN"
                else "buyer"
            )
            if o.last_updated < self.end_ts:
                self.cancellations.append([o.order_id, _iso(o.last_updated), by])
            return o
        if channel == "AFN":
            o.status = "Pending" if age < 0.3 else ("Shipping" if age < 1 else "Shipped")
            o.last_updated = min(
                o.purchase + dt.timedelta(hours=self.r.uniform(6, 48)), self.end_ts - dt.timedelta(minutes=5)
            )
        else:
            self._ship_mfn(o, age)
        return o

    def _ship_mfn(self, o: Order, age: float) -> None:
        m = o.market
        ship_by = dt.datetime.combine(
            o.purchase.date() + dt.timedelta(days=2), dt.time(23, 59, 59), tzinfo=dt.UTC
        )
        if o.purchase.date().weekday() >= 4:  # Friday and weekend orders: ship by Monday/Tuesday
            ship_by += dt.timedelta(days=2)
        carrier = self.r.choices([c for c, _ in m.carriers], weights=[w for _, w in m.carriers])[0]
        n_pkg = 2 if len(o.items) > 1 and self.r.random() < 0.3 else 1
        late_ship = self.r.random() < 0.025
        buy_shipping = self.r.random() < (0.7 if m.country == "US" else 0.5)
        for p in range(n_pkg):
            if late_ship:
                ship = ship_by + dt.timedelta(hours=self.r.uniform(2, 60))
            else:
                ship = o.purchase + dt.timedelta(hours=self.r.uniform(3, 44))
                ship = min(ship, ship_by - dt.timedelta(minutes=30))
            if p == 1:
                ship += dt.timedelta(hours=self.r.uniform(2, 30))
            transit = self.r.choice((3, 4, 5))
            deliver_by = dt.datetime.combine(
                ship_by.date() + dt.timedelta(days=transit), dt.time(23, 59, 59), tzinfo=dt.UTC
            )
            r = self.r.random()
            tracking = f"{carrier[:2].upper()}{self.r.randint(10**11, 10**12 - 1)}"
            valid = "true"
            if r < 0.012:
                tracking, valid = "", ""
            elif r < 0.022:
                valid = "false"
            elif r < 0.06:
                valid = ""
            in_spike = (m.marketplace_id, carrier) == BAD_CARRIER and self.carrier_spike[
                0
            ] <= ship.date() <= self.carrier_spike[1]
            late_p = 0.6 if in_spike else (0.03 if carrier in ("Evri", "USPS") else 0.012)
            lost_p = 0.2 if in_spike else 0.003
            u = self.r.random()
            if u < lost_p:
                delivery = None
                cause = "not_received"
            elif u < lost_p + late_p:
                delivery = deliver_by + dt.timedelta(hours=self.r.uniform(12, 120))
                cause = "late"
            else:
                delivery = ship + dt.timedelta(
                    hours=self.r.uniform(30, (deliver_by - ship).total_seconds() / 3600 - 1)
                )
                cause = None
            if ship >= self.end_ts:
                ship, delivery = None, None
            if delivery is not None and delivery >= self.end_ts:
                delivery = None
            o.packages.append(
                {
                    "ship_by": ship_by, "ship": ship, "carrier": carrier, "tracking": tracking,
                    "valid": valid, "deliver_by": deliver_by, "delivery": delivery, "cause": cause,
                    "in_spike": in_spike, "buy_shipping": "true" if buy_shipping else "false",
                }
            )  # fmt: skip
        shipped = [p["ship"] for p in o.packages if p["ship"] is not None]
        if not shipped:
            o.status = "Unshipped"
            o.last_updated = o.purchase + dt.timedelta(minutes=5)
        else:
            o.status = "Shipped" if len(shipped) == len(o.packages) else "PartiallyShipped"
            o.last_updated = max(shipped) + dt.timedelta(minutes=self.r.randint(1, 90))

    # ------------------------------------------------------------------ defects and other events
    def make_events(self) -> None:
        for o in self.orders:
            if o.status == "Cancelled":
                continue
            self._defects(o)
            self._returns(o)
            self._message(o)
            self._invoice(o)

    def _emit(self, when: dt.datetime) -> bool:
        return when < self.end_ts

    def _defects(self, o: Order) -> None:
        sku_weight = max(c[4] for c, _ in o.items)
        causes: list[str] = []
        bad_batch = (
            any(c[0] == BAD_SKU for c, _ in o.items)
            and self.sku_spike[0] <= o.purchase.date() <= self.sku_spike[1]
        )
        if bad_batch and self.r.random() < 0.5:
            causes.append(self.r.choice(("damaged", "not_as_described", "not_as_described")))
        for p in o.packages:
            if p["cause"] == "not_received" and self.r.random() < (0.7 if p["in_spike"] else 0.5):
                causes.append("not_received")
            elif p["cause"] == "late" and self.r.random() < (0.5 if p["in_spike"] else 0.12):
                causes.append("late")
        base = 0.0035 * sku_weight * (1.3 if o.channel == "MFN" else 0.8)
        if self.r.random() < base:
            causes.append(
                self.r.choices(
                    ("damaged", "not_as_described", "wrong_item", "service", "late"),
                    weights=(3, 4, 2, 2, 1 if o.channel == "MFN" else 0),
                )[0]
            )
        if self.r.random() < 0.0005:
            when = o.purchase + self._delay(25, 0.4)
            if self._emit(when):
                self.chargebacks.append(
                    [
                        o.order_id,
                        _iso(when),
                        "Unauthorised transaction",
                        "fraud",
                        self.r.choice(("open", "seller-lost", "amazon-funded")),
                    ]
                )
        if not causes:
            if self.r.random() < 0.004:  # neutral 3-star feedback, never a defect
                self._feedback(o, 3, self.r.choice(NEUTRAL_COMMENTS), o.purchase + self._delay(10))
            return
        cause = causes[0]
        base_time = o.purchase + dt.timedelta(days=4)
        kind = self.r.choices(("feedback", "claim", "both", "chargeback"), weights=(55, 28, 12, 5))[0]
        if cause == "not_received":
            kind = self.r.choices(("feedback", "claim", "both"), weights=(30, 45, 25))[0]
        if kind in ("feedback", "both"):
            rating = self.r.choices((1, 2), weights=(65, 35))[0]
            comment = self.r.choice(CAUSE_COMMENTS[cause])
            if (
                o.market.country == "GB"
                and cause in ("damaged", "not_as_described")
                and self.r.random() < 0.5
            ):
                comment = self.r.choice(UK_COMMENT_EXTRAS)
            self._feedback(o, rating, comment, base_time + self._delay(7))
        if kind in ("claim", "both"):
            when = base_time + self._delay(18, 0.5)
            if self._emit(when):
                status = self.r.choices(
                    (
                        "under-review",
                        "granted",
                        "seller-funded",
                        "amazon-funded",
                        "denied",
                        "withdrawn",
                        "appealed",
                    ),
                    weights=(12, 30, 18, 10, 14, 10, 6),
                )[0]
                if status == "under-review" and self.r.random() < 0.3:
                    status = "Under Review"  # the case/spacing variants of real exports
                price = sum(c[3] * q for c, q in o.items)
                self.claims.append(
                    [
                        o.order_id,
                        when.strftime("%Y-%m-%d") if self.r.random() < 0.3 else _iso(when),
                        CLAIM_REASON[cause],
                        status,
                        f"{price:.2f}",
                    ]
                )
        if kind == "chargeback":
            when = base_time + self._delay(30, 0.4)
            if self._emit(when):
                status = self.r.choices(
                    ("open", "seller-won", "seller-lost", "amazon-funded"), weights=(3, 3, 4, 1)
                )[0]
                self.chargebacks.append(
                    [
                        o.order_id,
                        _iso(when),
                        "Merchandise not received"
                        if cause in ("late", "not_received")
                        else "Not as described",
                        "service",
                        status,
                    ]
                )

    def _feedback(self, o: Order, rating: int, comment: str, when: dt.datetime) -> None:
        if not self._emit(when):
            return
        removed = rating <= 2 and self.r.random() < 0.06
        response = (
            "We're sorry to hear this, please contact us so we can help." if self.r.random() < 0.3 else ""
        )
        self.feedback.append(
            {
                "market": o.market,
                "date": when.date(),
                "row": [_feedback_date(when.date(), o.market.feedback_format), str(rating), comment, response,
                        o.order_id, f"{o.order_id[-7:]}@marketplace.amazon.example", "true" if removed else "false"],
            }
        )  # fmt: skip

    def _returns(self, o: Order) -> None:
        bad_batch = (
            any(c[0] == BAD_SKU for c, _ in o.items)
            and self.sku_spike[0] <= o.purchase.date() <= self.sku_spike[1]
        )
        if self.r.random() >= (0.2 if bad_batch else 0.045):
            return
        c, q = self.r.choice(o.items)
        reason_key = (
            "defective"
            if bad_batch
            else self.r.choice(
                ("unwanted", "unwanted", "damaged", "not_as_described", "wrong_item", "defective")
            )
        )
        reason, disposition = RETURN_REASON[reason_key]
        when = o.purchase + self._delay(12, 0.5)
        if not self._emit(when):
            return
        if o.channel == "AFN":
            self.fba_returns.append([
                _iso(when), o.order_id, c[0], c[1], f"X00{c[1][-7:]}", c[2], str(q),
                self.r.choice(("PHX7", "BHX4", "LTN1") if o.market.country == "GB" else ("PHX7", "ONT8", "BFI4")),
                disposition, reason, self.r.choice(("Unit returned to inventory", "Reimbursed")),
                f"LPN{self.r.randint(10**8, 10**9 - 1)}", "Stopped working | returning it" if reason_key == "defective" else "",
            ])  # fmt: skip
        else:
            price = c[3] * q * (0.8 if o.market.country == "GB" else 1.0)
            refunded = f"{price:.2f}" if self.r.random() < 0.85 else "0.00"
            row = dict.fromkeys(MFN_RETURNS_HEADER, "")
            row.update({
                "Order ID": o.order_id, "Order date": _iso(o.purchase), "Return request date": _iso(when),
                "Return request status": "Approved", "Amazon RMA ID": f"D{self.r.randint(10**8, 10**9 - 1)}",
                "Label type": "AmazonPrePaidLabel", "Currency code": o.market.currency, "A-to-Z Claim": "N",
                "Is prime": "N", "ASIN": c[1], "Merchant SKU": c[0], "Item Name": c[2], "Return quantity": str(q),
                "Return Reason": reason, "In policy": "Y", "Return type": "C-Returns", "Resolution": "StandardRefund",
                "Order Amount": f"{price:.2f}", "Order quantity": str(q), "Refunded Amount": refunded,
            })  # fmt: skip
            self.mfn_returns.append([row[h] for h in MFN_RETURNS_HEADER])

    def _message(self, o: Order) -> None:
        if self.r.random() >= 0.09:
            return
        received = o.purchase + self._delay(3, 0.7)
        if not self._emit(received):
            return
        u = self.r.random()
        if u < 0.03:
            responded = None
        elif u < 0.11:
            responded = received + dt.timedelta(hours=self.r.uniform(24.5, 60))
        else:
            responded = received + dt.timedelta(hours=self.r.uniform(0.2, 20))
        if responded is not None and responded >= self.end_ts:
            responded = None
        offset = dt.timezone(dt.timedelta(hours=-8)) if o.market.country == "US" else dt.UTC
        self.messages.append([
            f"T{self.r.randint(10**9, 10**10 - 1)}", o.order_id,
            received.astimezone(offset).replace(microsecond=0).isoformat(),
            responded.astimezone(offset).replace(microsecond=0).isoformat() if responded else "",
        ])  # fmt: skip

    def _invoice(self, o: Order) -> None:
        if not o.business or o.status != "Shipped" or self.r.random() < 0.03:
            return
        ship = min((p["ship"] for p in o.packages if p["ship"]), default=o.purchase)
        if self.r.random() < 0.04:
            when = ship + dt.timedelta(days=self.r.uniform(3, 7))
        else:
            when = ship + dt.timedelta(hours=self.r.uniform(1, 20))
        if self._emit(when):
            self.invoices.append([o.order_id, _iso(when)])

    # ------------------------------------------------------------------ files
    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for m in MARKETS:
            rows = []
            for o in (o for o in self.orders if o.market is m):
                rows += self._order_rows(o)
            name = "All_Orders_" + m.channel.replace("Amazon.", "").replace(".", "_") + ".txt"
            written.append(_write_tsv(out / name, ORDERS_HEADER, rows, "utf-8"))
            fb = sorted(
                (f for f in self.feedback if f["market"] is m), key=lambda f: (f["date"], f["row"][4])
            )
            name = "Feedback_" + m.channel.replace("Amazon.", "").replace(".", "_") + ".txt"
            written.append(
                _write_tsv(out / name, FEEDBACK_HEADER, [f["row"] for f in fb], m.feedback_encoding)
            )
        written.append(
            _write_csv(
                out / "a-to-z-claims.csv",
                ["order-id", "claim-date", "claim-reason", "claim-status", "claim-amount"],
                sorted(self.claims, key=lambda r: (r[1][:10], r[0])),
            )
        )
        written.append(
            _write_csv(
                out / "chargebacks.csv",
                ["order-id", "chargeback-date", "reason", "category", "status"],
                sorted(self.chargebacks, key=lambda r: (r[1], r[0])),
            )
        )
        ship_rows = []
        for o in self.orders:
            for p in o.packages:
                ship_rows.append([
                    o.order_id, _iso(p["ship_by"]), _iso(p["ship"]) if p["ship"] else "", p["carrier"],
                    p["tracking"] if p["ship"] else "", p["valid"] if p["ship"] else "",
                    p["deliver_by"].strftime("%Y-%m-%d"), _iso(p["delivery"]) if p["delivery"] else "",
                    p["buy_shipping"] if p["ship"] else "",
                ])  # fmt: skip
        written.append(
            _write_csv(
                out / "mfn-shipments.csv",
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
                ship_rows,
            )
        )
        written.append(
            _write_csv(
                out / "cancellations.csv",
                ["order-id", "cancel-date", "requested-by"],
                sorted(self.cancellations, key=lambda r: (r[1], r[0])),
            )
        )
        written.append(
            _write_tsv(
                out / "FBA_Customer_Returns.txt",
                FBA_RETURNS_HEADER,
                sorted(self.fba_returns, key=lambda r: (r[0], r[1])),
                "utf-8",
            )
        )
        written.append(
            _write_tsv(
                out / "MFN_Returns.txt",
                MFN_RETURNS_HEADER,
                sorted(self.mfn_returns, key=lambda r: (r[2], r[0])),
                "utf-8",
            )
        )
        written.append(
            _write_csv(
                out / "buyer-messages.csv",
                ["thread-id", "order-id", "received-at", "responded-at"],
                sorted(self.messages, key=lambda r: (r[2], r[0])),
            )
        )
        written.append(
            _write_csv(
                out / "business-invoices.csv",
                ["order-id", "invoice-uploaded-at"],
                sorted(self.invoices, key=lambda r: (r[1], r[0])),
            )
        )
        for days_back, style in ((7, "schema"), (0, "real")):
            written.append(self._snapshot(out, self.end - dt.timedelta(days=days_back), style))
        written.append(self._manifest(out))
        return written

    def _order_rows(self, o: Order) -> list[list[str]]:
        m = o.market
        rows = []
        city, state, postal = self.r.choice(m.cities)
        level = (
            self.r.choice(("Standard", "Expedited", "SecondDay"))
            if m.country == "US"
            else self.r.choice(("Standard", "Expedited"))
        )
        for c, q in o.items:
            price = c[3] * (0.8 if m.country == "GB" else 1.0) * q
            tax = price * (0.2 if m.country == "GB" else 0.07)
            item_status = (
                "Cancelled"
                if o.status == "Cancelled"
                else ("Unshipped" if o.status in ("Pending", "Unshipped") else "Shipped")
            )
            rows.append([
                o.order_id, "", _iso(o.purchase), _iso(o.last_updated or o.purchase), o.status,
                "Amazon" if o.channel == "AFN" else "Merchant", m.channel, "", "", level, c[2], c[0], c[1],
                item_status, str(q), m.currency, f"{price:.2f}", f"{tax:.2f}", "0.00", "0.00", "", "", "", "",
                city, state, postal, m.country, "", "true" if o.business else "false",
                f"PO-{o.order_id[-5:]}" if o.business and self.r.random() < 0.5 else "", "",
            ])  # fmt: skip
        return rows

    def _snapshot(self, out: Path, day: dt.date, style: str) -> Path:
        """Amazon's V2 report on `day`: what the exports cannot tell (violations, rating, warnings,
        account status) plus its own ODR counts, in the two shapes seen in the wild."""
        sec = ":59" if style == "real" else ""
        frm = "T00:00:00Z" if style == "real" else "T00:00Z"

        def rng(first: dt.date, last: dt.date) -> dict:
            return {"reportingDateFrom": f"{first}{frm}", "reportingDateTo": f"{last}T23:59{sec}Z"}

        odr_last, odr_first = day - dt.timedelta(days=15), day - dt.timedelta(days=74)
        perf, statuses = [], []
        for i, m in enumerate(MARKETS):
            odr = {}
            for ch in ("AFN", "MFN"):
                orders = [
                    o
                    for o in self.orders
                    if o.market is m
                    and o.channel == ch
                    and o.status != "Cancelled"
                    and odr_first <= o.purchase.date() <= odr_last
                ]
                ids = {o.order_id for o in orders}
                fb = {
                    f["row"][4]
                    for f in self.feedback
                    if f["row"][4] in ids
                    and int(f["row"][1]) <= 2
                    and f["row"][6] == "false"
                    and f["date"] <= day
                }
                cl = {
                    c[0]
                    for c in self.claims
                    if c[0] in ids
                    and c[1][:10] <= str(day)
                    and c[3].lower().replace(" ", "-") not in ("denied", "withdrawn", "amazon-funded")
                }
                cb = {
                    c[0]
                    for c in self.chargebacks
                    if c[0] in ids
                    and c[1][:10] <= str(day)
                    and c[3] == "service"
                    and c[4] not in ("seller-won", "amazon-funded")
                }
                n, d = len(orders), len(fb | cl | cb)
                odr[ch.lower()] = {
                    "reportingDateRange": rng(odr_first, odr_last), "orderCount": n,
                    "orderWithDefects": {"count": d, "status": "GOOD" if n and d / n < 0.01 else "BAD"},
                    "claims": {"count": len(cl), "status": "NONE"}, "chargebacks": {"count": len(cb), "status": "NONE"},
                    "negativeFeedback": {"count": len(fb), "status": "NONE"}, "fulfillmentType": ch.lower(),
                    "status": "GOOD" if n and d / n < 0.01 else "BAD", "rate": round(d / n, 4) if n else 0.0,
                    "targetValue": 0.01, "targetCondition": "LESS_THAN",
                }  # fmt: skip
            viol_first = day - dt.timedelta(days=179)
            violations = {
                k: {"reportingDateRange": rng(viol_first, day), "defectsCount": n, "status": "BAD" if n else "GOOD", "targetValue": 0, "targetCondition": "EQUALS"}
                for k, n in (
                    ("listingPolicyViolations", 1 if i == 0 else 0), ("productAuthenticityCustomerComplaints", 0),
                    ("productConditionCustomerComplaints", 2 if i == 0 else 0), ("productSafetyCustomerComplaints", 0),
                    ("receivedIntellectualPropertyComplaints", 0), ("restrictedProductPolicyViolations", 0),
                    ("suspectedIntellectualPropertyViolations", 0), ("foodAndProductSafetyIssues", 0),
                    ("otherPolicyViolations", 0), ("documentRequest" if style == "schema" else "documentRequests", 0),
                )
            }  # fmt: skip
            pm = {
                "marketplaceId": m.marketplace_id,
                "orderDefectRate": odr,
                "accountHealthRating": {"ahrStatus": "GREAT", "ahrScore": 262 if i == 0 else 310, "reportingDateRange": rng(viol_first, day)},
                ("warningState" if style == "schema" else "warningStates"): [{"warningType": "spammingSellerMessaging", "status": "GOOD"}],
                **violations,
            }  # fmt: skip
            perf.append(pm)
            statuses.append({"marketplaceId": m.marketplace_id, "status": "NORMAL"})
        path = out / f"V2_Seller_Performance_{day}.json"
        path.write_text(
            json.dumps({"accountStatuses": statuses, "performanceMetrics": perf}, indent=2) + "\n",
            encoding="utf-8",
        )
        return path

    def _manifest(self, out: Path) -> Path:
        doc = {
            "generator": "analysis.sample",
            "seed": self.seed,
            "start": str(self.start),
            "end": str(self.end),
            "spikes": [
                {
                    "kind": "carrier", "marketplaceId": BAD_CARRIER[0], "channel": "MFN", "carrier": BAD_CARRIER[1],
                    "dateBasis": "ship date", "start": str(self.carrier_spike[0]), "end": str(self.carrier_spike[1]),
                    "causes": ["late", "not_received"],
                },
                {
                    "kind": "sku", "sku": BAD_SKU, "marketplaceId": None, "channel": None, "dateBasis": "purchase date",
                    "start": str(self.sku_spike[0]), "end": str(self.sku_spike[1]),
                    "causes": ["damaged", "not_as_described"],
                },
            ],
        }  # fmt: skip
        path = out / "manifest.json"
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return path


def _write_tsv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> Path:
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def generate(
    out: str | Path, seed: int = SAMPLE_SEED, end: dt.date | str = SAMPLE_END_DATE, days: int = DAYS
) -> list[Path]:
    """Write the sample account into `out`; the same seed, end date and length give identical files.
    `out` must be new, empty, or hold only a previous sample (which is replaced, its snapshots of
    other days removed); anything else is refused before a file is written (`check_out`)."""
    if isinstance(end, str):
        end = dt.date.fromisoformat(end)
    out = Path(out)
    previous = check_out(out)
    g = Generator(seed, end, days)
    g.make_orders()
    g.make_events()
    written = g.write(out)
    for old in set(previous) - set(written):
        old.unlink(missing_ok=True)
    return written


# what `Generator.write` names its files (`tests/test_hostile_outputs.py` checks they agree)
_FIXED_NAMES = frozenset(
    {
        "manifest.json",
        "a-to-z-claims.csv",
        "chargebacks.csv",
        "mfn-shipments.csv",
        "cancellations.csv",
        "FBA_Customer_Returns.txt",
        "MFN_Returns.txt",
        "buyer-messages.csv",
        "business-invoices.csv",
    }
    | {
        f"{kind}_{m.channel.replace('Amazon.', '').replace('.', '_')}.txt"
        for m in MARKETS
        for kind in ("All_Orders", "Feedback")
    }
)
_SNAPSHOT_NAME = re.compile(r"V2_Seller_Performance_\d{4}-\d{2}-\d{2}\.json")


def is_sample_file(name: str) -> bool:
    return name in _FIXED_NAMES or _SNAPSHOT_NAME.fullmatch(name) is not None


def check_out(out: Path) -> list[Path]:
    """The files of a previous sample in `out` (to be replaced), [] when `out` is new or empty;
    a UsageError when `out` is a file or holds anything else (exports of a real account, say),
    so `python -m analysis sample --out DIR` never overwrites them."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise UsageError(f"--out {terminal_text(out)} is a file; give a new or empty folder.")
    entries = sorted(out.iterdir())
    if not entries:
        return []
    try:
        doc = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        ours = isinstance(doc, dict) and doc.get("generator") == "analysis.sample"
    except (OSError, UnicodeDecodeError, ValueError):
        ours = False
    others = [p for p in entries if not (p.is_file() and not p.is_symlink() and is_sample_file(p.name))]
    if not ours or others:
        what = f"'{terminal_text(others[0].name)}'" if others else "files without a sample's manifest.json"
        raise UsageError(
            f"--out {terminal_text(out)} already holds {what} and is not a previous sample; give a new or empty folder, "
            "so no export is overwritten."
        )
    return entries


def manifest(data_dir: str | Path) -> dict:
    return json.loads((Path(data_dir) / "manifest.json").read_text(encoding="utf-8"))
