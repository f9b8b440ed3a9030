"""Feedback-removal triage: for every negative feedback, can it go, by which of Amazon's rules,
which words decided it, and until when can the seller ask (90 days after the feedback)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import polars as pl

from analysis import safety
from analysis.inputs import parsing
from analysis.inputs.sources import Dataset
from analysis.insights import causes
from analysis.metrics import definitions as m
from analysis.metrics import stats

REQUEST_DAYS = 90
OBSCENE = (
    "fuck", "fucking", "shit", "shitty", "crap", "bullshit", "asshole", "bastard", "bitch", "damn", "scam artist",
    "scheisse", "scheiss", "arschloch", "mist", "verdammt", "merde", "putain", "connard", "salaud", "bordel",
)  # fmt: skip
_OBSCENE = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in OBSCENE) + r")(?!\w)")
COLUMNS = {  # headings of the triage table in the notebook and the report
    "order_id": "Order",
    "feedback_date": "Left on",
    "rating": "Stars",
    "comments": "Comment",
    "verdict": "Verdict",
    "rule": "Rule",
    "trigger_words": "Words",
    "request_by": "Ask by",
    "days_left": "Days left",
}
REMOVABLE, STRIKE, STRIKE_IF_BUY_SHIPPING, NOT_REMOVABLE = (
    "removable",
    "struck through",
    "struck through if the label came from Buy Shipping",
    "not removable",
)


def verdict(
    comment: str | None,
    channel: str,
    shipped_on_time: bool | None,
    buy_shipping: bool | None,
    *,
    personal: list[str] | None = None,
) -> tuple[str, str, str]:
    """(verdict, rule, trigger words) for one negative feedback, by Amazon's removal rules.
    `personal`: `safety.personal_data` of the comment's first LOOK_CHARS characters when the
    caller found it for a whole column at once."""
    text = (comment or "")[: safety.LOOK_CHARS]
    folded = causes.fold(text)
    words = sorted(set(_OBSCENE.findall(folded)))
    if words:
        return REMOVABLE, "obscene or profane language", ", ".join(words)
    if personal is None:
        personal = safety.personal_data(text)
    if personal:  # named, never quoted: the table leaves the company
        return REMOVABLE, "seller-specific personal information (e-mail or phone number)", ", ".join(personal)
    c, said = causes.analyse(text)
    found = set(c.all_causes)
    trigger = ", ".join(said)
    if found and found <= {"not_as_described", "product_quality"}:
        return REMOVABLE, "the whole comment is a product review", trigger
    if found and found <= causes.DELIVERY_CAUSES and channel == "AFN":
        return STRIKE, "FBA order and the comment is only about delivery (Amazon's responsibility)", trigger
    if found and found <= {"late", "not_received"} and channel == "MFN":
        if shipped_on_time and buy_shipping:
            return (
                STRIKE,
                "shipped on time with Buy Shipping; the comment is only about a late or missing delivery",
                trigger,
            )
        if shipped_on_time and buy_shipping is None:
            return (
                STRIKE_IF_BUY_SHIPPING,
                "shipped on time; the comment is only about a late or missing delivery",
                trigger,
            )
        if shipped_on_time is False:
            return NOT_REMOVABLE, "the order was shipped late, so a late-delivery comment stands", trigger
    if found & {"not_as_described", "product_quality"} and found - {"not_as_described", "product_quality"}:
        return (
            NOT_REMOVABLE,
            "mixes the product with service or delivery: only the buyer can remove it",
            trigger,
        )
    return NOT_REMOVABLE, "only the buyer can remove it (you may ask, without pressure or incentive)", trigger


def triage(data: Dataset, as_of: dt.date) -> pl.DataFrame:
    """Every negative feedback (1-2 stars, not already removed) known on `as_of`, with its verdict."""
    end = parsing.end_of_day_instant(as_of)
    fb = (
        data.frame("feedback")
        .filter((pl.col("rating") <= 2) & ~pl.col("removed") & (pl.col("feedback_ts") < end))
        .select(
            "order_id",
            "marketplace_id",
            pl.col("feedback_ts").dt.date().alias("feedback_date"),
            "rating",
            "comments",
        )
        .collect()
    )
    # only the orders with such a feedback are grouped (a few, out of every order)
    ids = pl.col("order_id").is_in(fb["order_id"].drop_nulls().unique().implode())
    chan = (
        data.frame("orders")
        .filter(ids)
        .group_by("order_id")
        .agg(
            pl.when((pl.col("channel") == "MFN").any())
            .then(pl.lit("MFN"))
            .otherwise(pl.lit("AFN"))
            .alias("channel")
        )
        .collect()
    )
    ship = (
        data.frame("shipments")
        .filter(ids)
        .group_by("order_id")
        .agg(
            (pl.col("ship_ts") <= pl.col("latest_ship_ts")).all().alias("shipped_on_time"),
            pl.col("buy_shipping").all().alias("buy_shipping"),
            pl.col("buy_shipping").is_null().any().alias("buy_unknown"),
        )
        .collect()
    )
    t = fb.join(chan, on="order_id", how="left").join(ship, on="order_id", how="left")
    # contact details found for the whole column at once (one regex pass, not one per comment)
    personal = safety.personal_data_of(t, pl.col("comments").fill_null("").str.slice(0, safety.LOOK_CHARS))
    rows = []
    for r, kinds in zip(t.iter_rows(named=True), personal, strict=True):
        bs = None if r["buy_unknown"] in (None, True) else r["buy_shipping"]
        v, rule, words = verdict(
            r["comments"], r["channel"] or "AFN", r["shipped_on_time"], bs, personal=kinds
        )
        rows.append((v, rule, words))
    deadline = pl.col("feedback_date") + pl.duration(days=REQUEST_DAYS)
    return (
        t.with_columns(
            safety.mask_expr(pl.col("comments")).alias("comments"),  # decided on the text, shown masked
            pl.Series("verdict", [x[0] for x in rows], dtype=pl.String),
            pl.Series("rule", [x[1] for x in rows], dtype=pl.String),
            pl.Series("trigger_words", [x[2] for x in rows], dtype=pl.String),
        )
        .with_columns(deadline.alias("request_by"))
        .with_columns(
            (pl.col("request_by") - pl.lit(as_of)).dt.total_days().alias("days_left"),
        )
        .with_columns((pl.col("days_left") < 0).alias("expired"))
        .drop("buy_unknown")
        .sort("request_by", "order_id")
    )


def what_if(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> pl.DataFrame:
    """ODR now and if every removable or struck-through feedback (still in time) were removed."""
    t = triage(data, as_of)
    gone = t.filter(pl.col("verdict").is_in([REMOVABLE, STRIKE]) & ~pl.col("expired"))["order_id"].to_list()
    fb = data.frame("feedback").with_columns(
        (pl.col("removed") | ((pl.col("rating") <= 2) & pl.col("order_id").is_in(gone))).alias("removed")
    )
    after = dataclasses.replace(data, frames={**data.frames, "feedback": fb}, cache={})
    odr = tuple(d for d in defs if d.population == "order_defects")
    marketplaces = sorted(data.frame("orders").select("marketplace_id").unique().collect()["marketplace_id"])
    rows = []
    for label, ds in (("now", data), ("if removed", after)):
        counts = m.evaluate(ds, as_of, odr).filter(pl.col("numerator") == "defects")
        got = {
            (r["marketplace_id"], r["metric"]): (r["count"], r["denominator"])
            for r in counts.iter_rows(named=True)
        }
        for mkt in marketplaces:
            for d in odr:
                defects, orders = got.get((mkt, d.id), (0, 0))
                j = stats.judge(defects, orders, d.target, d.condition)
                rows.append(
                    {
                        "marketplace_id": mkt,
                        "channel": d.channel,
                        "scenario": label,
                        "orders": orders,
                        "defects": defects,
                        "rate": j["rate"],
                        "status": j["volumeAdjustedStatus"],
                    }
                )
    return pl.DataFrame(rows).sort("marketplace_id", "channel", "scenario")
