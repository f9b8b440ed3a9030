"""Reconciliation: Amazon's numbers (its V2 performance snapshot) against ours for the same window,
and each difference explained where the exports can explain it.

For every metric the snapshot gives with counts, ours is computed over Amazon's own reporting
window (its `reportingDateRange`; without one, our window as of the snapshot's day, said so), part
by part (orders, negative feedback, claims, chargebacks...). Then each difference gets the reasons
we can find: a file we lack, Amazon's window reaching outside the exports' days, orders of the
window not in our exports, feedback marked removed since. Ours is counted as known at the end of
the snapshot's day, so a defect that arrived later is no difference."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from analysis.inputs import parsing
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.sources import Dataset, kind_title
from analysis.metrics import definitions as m


def _day(text: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except (TypeError, ValueError):
        return None


def _days(obj: dict) -> int | None:
    rng = obj.get("reportingDateRange") or {}
    lo, hi = _day(rng.get("reportingDateFrom")), _day(rng.get("reportingDateTo"))
    return (hi - lo).days + 1 if lo and hi and lo <= hi else None


def _get(pm: dict, path: str) -> dict | None:
    """Amazon's object of a metric id: a path ("orderDefectRate.afn"), or for the late shipment
    rates the entry of `lateShipmentRateList` (or `lateShipmentRate`) whose window is that long;
    an entry without dates cannot be told apart and is not used."""
    if path.startswith("lateShipmentRate."):
        days = int(path.split(".")[1].rstrip("d"))
        cands = [o for o in pm.get("lateShipmentRateList") or [] if isinstance(o, dict)]
        if isinstance(pm.get("lateShipmentRate"), dict):
            cands.append(pm["lateShipmentRate"])
        return next((o for o in cands if _days(o) == days), None)
    obj: object = pm
    for key in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, dict) else None


def _count(obj: dict, key: str) -> int | None:
    v = obj.get(key)
    if isinstance(v, dict):
        v = v.get("count")
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclasses.dataclass(frozen=True)
class Row:
    marketplace_id: str
    metric: str  # metric id (JSON path)
    title: str
    part: str  # the JSON key compared (orderCount, orderWithDefects, negativeFeedback...)
    amazon: int | None
    ours: int
    window_from: dt.date
    window_to: dt.date
    window_source: str  # "Amazon's" or "ours as of the snapshot's day (Amazon gives no dates)"
    snapshot_day: dt.date
    reasons: tuple[str, ...]

    @property
    def difference(self) -> int | None:
        return None if self.amazon is None else self.amazon - self.ours

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(
            window_from=self.window_from.isoformat(),
            window_to=self.window_to.isoformat(),
            snapshot_day=self.snapshot_day.isoformat(),
            difference=self.difference,
            reasons=list(self.reasons),
        )
        return d


def reconcile(data: Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> list[Row]:
    """Rows for the newest snapshot of each marketplace on or before `as_of`."""
    from analysis.inputs.snapshots import newest_for

    orders = data.frame("orders").select("marketplace_id", pl.col("purchase_ts").dt.date().alias("day"))
    span = orders.group_by("marketplace_id").agg(
        pl.col("day").min().alias("lo"), pl.col("day").max().alias("hi")
    )
    spans = {r["marketplace_id"]: (r["lo"], r["hi"]) for r in span.collect().iter_rows(named=True)}
    out: list[Row] = []
    for mkt in sorted(spans):
        found = newest_for(data.snapshots, mkt, as_of)
        if not found:
            continue
        snap, pm = found
        snap_day: dt.date = snap["_asOf"]
        for md in defs:
            obj = _get(pm, md.id)
            if obj is None:
                continue
            rng = obj.get("reportingDateRange") or {}
            lo, hi = _day(rng.get("reportingDateFrom")), _day(rng.get("reportingDateTo"))
            if lo and hi and lo <= hi:
                source = "Amazon's"
            else:
                lo, hi = md.window(snap_day)
                source = "ours as of the snapshot's day (Amazon gives no dates)"
            # Amazon's window, known on the snapshot's day (what Amazon knew when it counted)
            known = max(snap_day, hi)
            ours_md = dataclasses.replace(md, window_days=(hi - lo).days + 1, lag_days=(known - hi).days)
            counts = m.evaluate(data, known, (ours_md,)).filter(pl.col("marketplace_id") == mkt)
            values = dict(zip(counts["numerator"].to_list(), counts["count"].to_list(), strict=True))
            den = int(counts["denominator"][0]) if counts.height else 0
            parts = [(md.denominator_key, den)] + [
                (p.key, int(values.get(p.name, 0))) for p in (md.numerator_part, *md.parts)
            ]
            for key, ours in parts:
                amazon = _count(obj, key)
                if amazon is None:
                    continue
                reasons = (
                    _explain(data, mkt, md, key, amazon, ours, lo, hi, snap_day, spans[mkt])
                    if amazon != ours
                    else ()
                )
                out.append(Row(mkt, md.id, md.title, key, amazon, ours, lo, hi, source, snap_day, reasons))
    return out


NEEDS_BY_PART = {  # the file kind a numerator part is read from
    "negativeFeedback": "feedback",
    "claims": "claims",
    "chargebacks": "chargebacks",
    "cancellationCount": "cancellations",
    "lateShipmentCount": "shipments",
    "validTrackingCount": "shipments",
    "onTimeDeliveryCount": "shipments",
    "shipmentCount": "shipments",
    "shipmentCountWithValidTracking": "shipments",
    "missingInvoice": "invoices",
    "lateInvoice": "invoices",
    "invoiceDefect": "invoices",
}


def _explain(
    data: Dataset,
    mkt: str,
    md: m.MetricDef,
    key: str,
    amazon: int,
    ours: int,
    lo: dt.date,
    hi: dt.date,
    snap_day: dt.date,
    span: tuple[dt.date, dt.date],
) -> tuple[str, ...]:
    """Every reason the exports give for `amazon != ours` (none found: said so)."""
    reasons: list[str] = []
    first, last = span
    kind = NEEDS_BY_PART.get(key)
    kinds = [kind] if kind else []
    if key == "orderWithDefects":
        kinds = [k for k in md.needs]
    for k in kinds:
        if not data.has(k):
            reasons.append(f"no {kind_title(k)} file: Amazon counts what we cannot see")
    if lo < first:
        reasons.append(
            f"Amazon's window starts {lo}, before the exports' first order of "
            f"{marketplace_label(mkt)} ({first}): orders and their defects before then are not in the exports"
        )
    if hi > last:
        reasons.append(
            f"Amazon's window ends {hi}, after the exports' newest order ({last}): newer orders are not in the exports"
        )
    if key == md.denominator_key and amazon > ours and not reasons:
        reasons.append(
            f"{amazon - ours:,} orders Amazon counts in {lo} to {hi} are not in the exports' All Orders files "
            "(a download that missed days, or orders of another channel or marketplace)"
        )
    if key in ("negativeFeedback", "orderWithDefects") and data.has("feedback"):
        end = parsing.end_of_day(hi)
        removed = (
            data.frame("feedback")
            .join(
                data.frame("orders")
                .group_by("order_id")
                .agg(pl.col("purchase_ts").min(), pl.col("marketplace_id").first()),
                on="order_id",
                how="left",
                suffix="_o",
            )
            .filter(
                (pl.coalesce("marketplace_id_o", "marketplace_id") == mkt)
                & (pl.col("rating") <= 2)
                & pl.col("removed").fill_null(False)
                & pl.col("purchase_ts").dt.date().is_between(lo, hi)
                & (pl.col("feedback_ts") < end + dt.timedelta(days=366))
            )
            .select(pl.len())
            .collect()
            .item()
        )
        if removed and amazon > ours:
            reasons.append(
                f"{removed:,} negative feedback on orders of the window are marked removed in the feedback file; "
                f"Amazon's snapshot of {snap_day} may predate their removal"
            )
    if not reasons:
        reasons.append("not explained by the exports (Amazon may count by rules it does not publish)")
    return tuple(reasons)
