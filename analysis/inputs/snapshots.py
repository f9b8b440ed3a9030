"""Amazon's own numbers: GET_V2_SELLER_PERFORMANCE_REPORT documents, read leniently.

Real documents differ from the schema (inputs.md section 10); this module maps their variants to
the schema's keys so the rest of the suite sees one shape.
"""

from __future__ import annotations

import datetime as dt
import re

ALIASES = {
    "prefulfillmentCancelRate": "preFulfillmentCancellationRate",
    "warningState": "warningStates",
    "documentRequest": "documentRequests",
}
VIOLATION_KEYS = (
    "listingPolicyViolations",
    "productAuthenticityCustomerComplaints",
    "productConditionCustomerComplaints",
    "productSafetyCustomerComplaints",
    "receivedIntellectualPropertyComplaints",
    "restrictedProductPolicyViolations",
    "suspectedIntellectualPropertyViolations",
    "foodAndProductSafetyIssues",
    "otherPolicyViolations",
    "documentRequests",
)
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _day(value: object) -> dt.date | None:
    m = _DATE.search(str(value or ""))
    return dt.date.fromisoformat(m.group(1)) if m else None


def _report_day(doc: dict) -> dt.date | None:
    """The day a snapshot describes: the latest `reportingDateTo` anywhere in it."""
    days: list[dt.date] = []

    def walk(o: object) -> None:
        if isinstance(o, dict):
            if "reportingDateTo" in o and (d := _day(o["reportingDateTo"])):
                days.append(d)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(doc)
    return max(days) if days else None


def normalise_snapshot(doc: dict, source: str) -> dict:
    """Schema-shaped copy of a V2 document, with `_asOf` (its day) and `_source` (file name)."""
    metrics = []
    for pm in doc.get("performanceMetrics") or []:
        if not isinstance(pm, dict):
            continue
        out = {ALIASES.get(k, k): v for k, v in pm.items()}
        ws = out.get("warningStates")
        if isinstance(ws, list):
            out["warningStates"] = [
                w if isinstance(w, dict) else {"warningType": str(w), "status": "BAD"} for w in ws
            ]
        elif ws is not None:
            out["warningStates"] = []
        metrics.append(out)
    statuses = [s for s in doc.get("accountStatuses") or [] if isinstance(s, dict)]
    return {
        "accountStatuses": statuses,
        "performanceMetrics": metrics,
        "_asOf": _report_day(doc) or dt.date.min,
        "_source": source,
    }


def newest_for(snapshots: list[dict], marketplace_id: str, as_of: dt.date) -> tuple[dict, dict] | None:
    """(snapshot, its metrics for the marketplace) of the newest snapshot known on `as_of`."""
    for snap in sorted(snapshots, key=lambda s: s["_asOf"], reverse=True):
        if snap["_asOf"] > as_of:
            continue
        for pm in snap["performanceMetrics"]:
            if pm.get("marketplaceId") == marketplace_id:
                return snap, pm
    return None


def status3(value: object) -> str:
    """Amazon's status strings vary; the schema allows GOOD, BAD and NONE."""
    v = str(value or "").upper()
    if v in ("GOOD", "BAD", "NONE"):
        return v
    return "GOOD" if v in ("NORMAL", "GREEN", "GREAT") else ("NONE" if not v else "BAD")


def account_status(value: object) -> str:
    v = str(value or "").upper()
    if v in ("NORMAL", "AT_RISK", "DEACTIVATED"):
        return v
    return (
        "DEACTIVATED"
        if v in ("SUSPENDED", "DEACTIVATED")
        else ("NORMAL" if v in ("GOOD", "GREEN") else "AT_RISK")
    )
