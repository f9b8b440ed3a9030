"""The daily action list: what a seller must do today, from the exports we read, each with its
deadline, why, and a link to the page in the marketplace's own Seller Central.

The moment of the list is the end of the as-of day (the data's knowledge point, as for every
metric: a shipment, response or invoice dated after it is not known). Each kind is a row of
`KINDS`: the files it reads and how to find its actions. A kind whose file is absent is not
checked, and the list says so: an empty list never means "nothing to do" when we could not look.
Actions overdue by more than `OVERDUE_DAYS` are left out (the metric has counted them, and a
daily list is for what can still be done), but replies to negative feedback of the last 90 days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from analysis.inputs import parsing
from analysis.inputs.marketplaces import ID_TO_SALES_CHANNEL
from analysis.inputs.sources import Dataset, kind_title
from analysis.insights import triage
from analysis.metrics import populations

OVERDUE_DAYS = 7  # an action whose deadline passed more than this long ago is no longer listed
FEEDBACK_REMOVAL_DAYS = 14  # a removal request window ending within this many days
MESSAGE_WARNING = dt.timedelta(hours=12)  # a 24-hour reply limit ending within this
CLAIM_RESPONSE = dt.timedelta(hours=72)  # Amazon asks for a response to an A-to-z claim within 72 hours
FEEDBACK_REPLY_DAYS = 1  # reply to a negative feedback publicly by the next day
FEEDBACK_REPLY_LOOKBACK = 90  # negative feedback older than the ODR window is left alone
COLUMNS = ("kind", "order_id", "marketplace_id", "due", "what", "why", "link")
SCHEMA = {
    "kind": pl.String,
    "order_id": pl.String,
    "marketplace_id": pl.String,
    "due": pl.Datetime("us", "UTC"),
    "what": pl.String,
    "why": pl.String,
    "link": pl.String,
}


@dataclass(frozen=True)
class Moment:
    """The list's point in time: `now` is the end of the as-of day."""

    as_of: dt.date

    @property
    def now(self) -> dt.datetime:
        return parsing.end_of_day(self.as_of)

    @property
    def at(self) -> pl.Expr:
        """`now` as a literal to compare a column with (built once: see `parsing.instant`)."""
        return parsing.end_of_day_instant(self.as_of)

    def end_of(self, days_after: int) -> dt.datetime:
        return parsing.end_of_day(self.as_of + dt.timedelta(days=days_after))


def seller_central(marketplace_id: str | None) -> str:
    """https://sellercentral.amazon.<the marketplace's domain> (amazon.com when not known)."""
    name = ID_TO_SALES_CHANNEL.get(marketplace_id or "", "Amazon.com")
    return f"https://sellercentral.{name.lower()}"


PAGES = {  # where each kind's link goes, under the marketplace's Seller Central
    "order": "/orders-v3/order/{order_id}",
    "claims": "/gp/guarantee-claims/home.html",
    "feedback": "/feedback-manager/index.html",
    "messages": "/messaging/inbox",
}


def _link(page: str) -> pl.Expr:
    base = pl.col("marketplace_id").map_elements(seller_central, return_dtype=pl.String)
    if "{order_id}" in page:
        before, after = page.split("{order_id}")
        return base + pl.lit(before) + pl.col("order_id") + pl.lit(after)
    return base + pl.lit(page)


def _only(frame: pl.LazyFrame, ids: pl.LazyFrame) -> pl.LazyFrame:
    """The rows of `frame` whose order is among `ids` (a few: the ones an action is about), in
    their order: what is grouped per order next is then a few orders, not every one."""
    return frame.join(ids.select("order_id"), on="order_id", how="semi", maintain_order="left")


def _order_markets(data: Dataset, ids: pl.LazyFrame) -> pl.LazyFrame:
    """The marketplace of each order among `ids`."""
    return _only(data.frame("orders"), ids).group_by("order_id").agg(pl.col("marketplace_id").first())


def ship_by(data: Dataset, t: Moment) -> pl.LazyFrame:
    """Seller-fulfilled orders not ship-confirmed whose ship-by time is before the end of the next
    day (overdue ones included: they turn late at their ship-by time)."""
    mfn = data.frame("orders").filter(pl.col("channel") == "MFN")
    # orders with a row not shipped or cancelled: the only ones whose first status can be open
    open_ = mfn.filter(~pl.col("order_status").is_in(["shipped", "cancelled"]))
    orders = (
        _only(mfn, open_)
        .group_by("order_id")
        .agg(pl.col("marketplace_id").first(), pl.col("order_status").first())
        .filter(~pl.col("order_status").is_in(["shipped", "cancelled"]))
    )
    s = (
        _only(data.frame("shipments"), open_)
        .group_by("order_id")
        .agg(
            pl.col("latest_ship_ts").min(),
            (pl.col("ship_ts").is_not_null() & (pl.col("ship_ts") < t.at)).any().alias("shipped"),
        )
        .filter(~pl.col("shipped") & (pl.col("latest_ship_ts") < parsing.instant(t.end_of(1))))
    )
    return orders.join(s, on="order_id").select(
        pl.lit("ship-by").alias("kind"),
        "order_id",
        "marketplace_id",
        pl.col("latest_ship_ts").alias("due"),
        pl.when(pl.col("latest_ship_ts") < t.at)
        .then(pl.lit("Ship and confirm now: the ship-by time has passed"))
        .otherwise(pl.lit("Ship and confirm before the ship-by time"))
        .alias("what"),
        pl.lit(
            "not ship-confirmed; a shipment confirmed after its ship-by time counts in the Late Shipment Rate"
        ).alias("why"),
        _link(PAGES["order"]).alias("link"),
    )


def invoice(data: Dataset, t: Moment) -> pl.LazyFrame:
    """Shipped business orders without an invoice whose deadline (the Invoice Defect Rate's: the end
    of the next business day after shipping) is at most one business day away, or has passed."""
    inv = populations.invoices(data)
    one_business_day = populations.next_business_day_end(pl.lit(t.as_of))
    return inv.filter(
        (pl.col("invoice_ts").is_null() | (pl.col("invoice_ts") >= t.at))
        & (pl.col("deadline") <= one_business_day)
        # an order whose purchase is after the moment is not known yet
        & (pl.col("purchase_ts") < t.at)
    ).select(
        pl.lit("invoice").alias("kind"),
        "order_id",
        "marketplace_id",
        pl.col("deadline").alias("due"),
        pl.when(pl.col("deadline") <= t.at)
        .then(pl.lit("Upload the invoice now: the deadline has passed"))
        .otherwise(pl.lit("Upload the invoice before the deadline"))
        .alias("what"),
        pl.lit(
            "business order shipped without an invoice; a missing or late invoice counts in the Invoice Defect Rate"
        ).alias("why"),
        _link(PAGES["order"]).alias("link"),
    )


def message(data: Dataset, t: Moment) -> pl.LazyFrame:
    """Buyer messages without a response whose 24-hour limit ends within 12 hours or has passed
    (messages received after the moment are not known)."""
    due = pl.col("received_ts") + populations.HOURS_24
    waiting = data.frame("messages").filter(
        (pl.col("received_ts") < t.at)
        & (pl.col("responded_ts").is_null() | (pl.col("responded_ts") >= t.at))
        & (due <= parsing.instant(t.now + MESSAGE_WARNING))
    )
    return waiting.join(_order_markets(data, waiting), on="order_id", how="left").select(
        pl.lit("message").alias("kind"),
        "order_id",
        "marketplace_id",
        due.alias("due"),
        pl.when(due <= t.at)
        .then(pl.lit("Answer the buyer now: the 24-hour limit has passed"))
        .otherwise(pl.lit("Answer the buyer before the 24-hour limit"))
        .alias("what"),
        pl.lit(
            "buyer message without a response; answers after 24 hours count in the contact response time"
        ).alias("why"),
        _link(PAGES["messages"]).alias("link"),
    )


def feedback_removal(data: Dataset, t: Moment) -> pl.LazyFrame:
    """Negative feedback that Amazon's rules let go (removable, or struck through) whose 90-day
    request window ends within 14 days."""
    tr = triage.triage(data, t.as_of)
    return (
        tr.lazy()
        .filter(
            pl.col("verdict").is_in([triage.REMOVABLE, triage.STRIKE, triage.STRIKE_IF_BUY_SHIPPING])
            & pl.col("days_left").is_between(0, FEEDBACK_REMOVAL_DAYS)
        )
        .select(
            pl.lit("feedback-removal").alias("kind"),
            "order_id",
            "marketplace_id",
            pl.col("request_by").cast(pl.Datetime("us", "UTC")).dt.offset_by("1d").alias("due"),
            pl.format("Request removal of this {}-star feedback", pl.col("rating")).alias("what"),
            (pl.col("verdict") + pl.lit(": ") + pl.col("rule")).alias("why"),
            _link(PAGES["feedback"]).alias("link"),
        )
    )


def claim_appeal(data: Dataset, t: Moment) -> pl.LazyFrame:
    """Open A-to-z claims (under review) on orders shipped on time with valid tracking (and Buy
    Shipping where the file says): eligible for Amazon's claim protection, so respond and appeal."""
    claims = data.frame("claims").filter(
        (pl.col("claim_status") == "under-review") & (pl.col("claim_ts") < t.at)
    )
    ship = (
        _only(data.frame("shipments"), claims)
        .filter(pl.col("ship_ts") < t.at)
        .group_by("order_id")
        .agg(
            (pl.col("ship_ts") <= pl.col("latest_ship_ts")).all().alias("on_time"),
            (pl.col("tracking_number").fill_null("").str.strip_chars() != "").all().alias("tracked"),
            (pl.col("tracking_valid").fill_null(True)).all().alias("valid"),
            pl.col("buy_shipping").fill_null(True).all().alias("buy_ok"),
        )
        .filter(pl.col("on_time") & pl.col("tracked") & pl.col("valid") & pl.col("buy_ok"))
    )
    due = pl.col("claim_ts") + pl.duration(hours=CLAIM_RESPONSE.total_seconds() / 3600)
    return (
        claims.join(ship, on="order_id")
        .join(_order_markets(data, claims), on="order_id", how="left")
        .select(
            pl.lit("claim-appeal").alias("kind"),
            "order_id",
            "marketplace_id",
            due.alias("due"),
            pl.lit("Respond to the A-to-z claim and ask for claim protection").alias("what"),
            pl.lit("shipped on time with valid tracking: the claim should not count against you").alias(
                "why"
            ),
            _link(PAGES["claims"]).alias("link"),
        )
    )


def feedback_reply(data: Dataset, t: Moment) -> pl.LazyFrame:
    """Negative feedback (1-2 stars, not removed) of the 90 days ending on the as-of day with no
    public response."""
    first = parsing.end_of_day_instant(t.as_of - dt.timedelta(days=FEEDBACK_REPLY_LOOKBACK))
    return (
        data.frame("feedback")
        .filter(
            (pl.col("rating") <= 2)
            & ~pl.col("removed")
            & (pl.col("feedback_ts") < t.at)
            & (pl.col("feedback_ts") >= first)
            & (pl.col("response").fill_null("").str.strip_chars() == "")
        )
        .select(
            pl.lit("feedback-reply").alias("kind"),
            "order_id",
            "marketplace_id",
            (pl.col("feedback_ts").dt.truncate("1d") + pl.duration(days=FEEDBACK_REPLY_DAYS + 1)).alias(
                "due"
            ),
            pl.format("Reply publicly to this {}-star feedback", pl.col("rating")).alias("what"),
            pl.lit("negative feedback without a response; other buyers read the reply").alias("why"),
            _link(PAGES["feedback"]).alias("link"),
        )
    )


@dataclass(frozen=True)
class ActionKind:
    name: str
    needs: tuple[str, ...]  # file kinds it reads besides All Orders
    find: Callable[[Dataset, Moment], pl.LazyFrame]
    title: str  # a group heading
    # listed until this many days past the deadline (None: the kind bounds its own look-back)
    overdue_days: int | None = OVERDUE_DAYS


KINDS: tuple[ActionKind, ...] = (
    ActionKind("ship-by", ("shipments",), ship_by, "Orders to ship"),
    ActionKind("invoice", ("invoices",), invoice, "Business invoices"),
    ActionKind("message", ("messages",), message, "Buyer messages"),
    ActionKind("feedback-removal", ("feedback",), feedback_removal, "Feedback to have removed"),
    ActionKind("claim-appeal", ("claims", "shipments"), claim_appeal, "A-to-z claims to answer"),
    # a public reply helps as long as buyers read the feedback: the 90 days bound it, not the due day
    ActionKind("feedback-reply", ("feedback",), feedback_reply, "Feedback to answer", overdue_days=None),
)


@dataclass(frozen=True)
class ActionList:
    as_of: dt.date
    actions: pl.DataFrame  # COLUMNS, sorted by due
    not_checked: list[dict]  # {"kind", "reason"} for kinds whose files are absent

    def to_dict(self) -> dict:
        return {
            "asOf": self.as_of.isoformat(),
            "actions": [
                {
                    "kind": r["kind"],
                    "orderId": r["order_id"],
                    "marketplaceId": r["marketplace_id"],
                    "due": r["due"].strftime("%Y-%m-%dT%H:%M:%SZ") if r["due"] else None,
                    "what": r["what"],
                    "why": r["why"],
                    "link": r["link"],
                }
                for r in self.actions.iter_rows(named=True)
            ],
            "notChecked": self.not_checked,
        }

    def counts(self) -> dict[str, int]:
        got = dict(self.actions.group_by("kind").len().iter_rows())
        return {k.name: got.get(k.name, 0) for k in KINDS}


def today(data: Dataset, as_of: dt.date) -> ActionList:
    """Every action due on `as_of` (or overdue), sorted by deadline, then kind and order."""
    from analysis.inputs.marketplaces import marketplace_label
    from analysis.metrics.health import coverage

    t = Moment(as_of)
    frames, skipped = [], []
    has_for = coverage(data)  # feedback is downloaded per marketplace: one can lack its file
    for k in KINDS:
        absent = [n for n in k.needs if not data.has(n)]
        if absent:
            files = " and ".join(kind_title(n) for n in absent)
            skipped.append({"kind": k.name, "reason": f"not checked: no {files} file"})
            continue
        for mkt, has in has_for.items():
            lacking = [n for n in k.needs if not has(n)]
            if lacking:
                files = " and ".join(kind_title(n) for n in lacking)
                skipped.append(
                    {
                        "kind": k.name,
                        "marketplaceId": mkt,
                        "reason": f"not checked for {marketplace_label(mkt)}: no {files} file for it",
                    }
                )
        found = k.find(data, t).select(*(pl.col(c).cast(SCHEMA[c]) for c in COLUMNS))
        if k.overdue_days is not None:
            # past its deadline for longer, it is lost (the metric counted it): the list is for
            # what can still be done
            found = found.filter(pl.col("due") >= parsing.instant(t.now - dt.timedelta(days=k.overdue_days)))
        frames.append(found)
    actions = pl.concat(frames).collect() if frames else pl.DataFrame(schema=SCHEMA)
    order = {k.name: i for i, k in enumerate(KINDS)}
    actions = (
        actions.with_columns(pl.col("kind").replace_strict(order, return_dtype=pl.Int32).alias("_k"))
        .sort("due", "_k", "order_id", nulls_last=True)
        .drop("_k")
    )
    return ActionList(as_of, actions, skipped)


def summary_line(actions: ActionList) -> str:
    """'3 orders to ship, 1 business invoice, ...' (kinds with none left out)."""
    parts = [f"{n:,} {NOUNS[k][n != 1]}" for k, n in actions.counts().items() if n]
    return ", ".join(parts) if parts else "nothing due"


NOUNS = {  # (one, many) per kind
    "ship-by": ("order to ship", "orders to ship"),
    "invoice": ("business invoice to upload", "business invoices to upload"),
    "message": ("buyer message to answer", "buyer messages to answer"),
    "feedback-removal": ("feedback to have removed", "feedbacks to have removed"),
    "claim-appeal": ("A-to-z claim to answer", "A-to-z claims to answer"),
    "feedback-reply": ("negative feedback to reply to", "negative feedbacks to reply to"),
}
