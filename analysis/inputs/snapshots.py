"""Amazon's own numbers: GET_V2_SELLER_PERFORMANCE_REPORT documents, read leniently.

Real documents differ from the schema (inputs.md section 10); this module maps their variants to
the schema's keys so the rest of the suite sees one shape. Leniency stops at shapes the rest of the
suite could not use: an object where a number belongs, a list where an object belongs, a number
that is not finite or a date that does not exist stops the run (`DataError` naming the file and the
key); a count or rate below zero (or a count that is not whole) is set aside with its metric.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from analysis.errors import DataError
from analysis.safety import mask, terminal_text

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
# Keys whose value must be a JSON object (or null), wherever they appear.
OBJECT_KEYS = frozenset(
    {
        "orderDefectRate",
        "lateShipmentRate",
        "preFulfillmentCancellationRate",
        "validTrackingRate",
        "onTimeDeliveryRate",
        "unitOnTimeDeliveryRate",
        "invoiceDefectRate",
        "accountHealthRating",
        "reportingDateRange",
        "afn",
        "mfn",
        "orderWithDefects",
        "claims",
        "chargebacks",
        "negativeFeedback",
        *VIOLATION_KEYS,
    }
)
LIST_KEYS = frozenset({"performanceMetrics", "accountStatuses", "lateShipmentRateList"})
NUMBER_KEYS = frozenset({"rate", "targetValue", "ahrScore"})
TEXT_KEYS = frozenset(
    {
        "marketplaceId",
        "status",
        "ahrStatus",
        "accountHealthRatingStatus",
        "warningType",
        "targetCondition",
        "fulfillmentType",
        "reportingDateFrom",
        "reportingDateTo",
    }
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class SetAside:
    """A value of a snapshot that is not used: where it is (key path), what it was, and why."""

    path: tuple[str | int, ...]
    value: object
    reason: str


def key_path(path: tuple[str | int, ...]) -> str:
    """`performanceMetrics[0].orderDefectRate.afn.rate` from its parts. Keys come from the file,
    so the path is shown printable, on one line, with e-mail addresses and phone numbers masked."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return mask(terminal_text(out).replace("\n", "\\x0a")) or "(document)"


def _is_count_key(key: str) -> bool:
    return key == "count" or key.endswith("Count")


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _day(value: object, source: str, path: tuple) -> dt.date | None:
    m = _DATE.search(value if isinstance(value, str) else "")
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise DataError(
            f"{source}: {key_path(path)} holds {m.group(0)!r}, which is not a date; "
            "download the performance report again."
        ) from None


class _Checker:
    """Walks one document (iteratively: no recursion on input), raising DataError on shapes the
    suite cannot use and collecting the values to set aside."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.set_aside: list[SetAside] = []

    def fail(self, path: tuple, value: object, expected: str) -> None:
        raise DataError(
            f"{self.source}: {key_path(path)} holds {_kind_of(value)} where {expected} is expected, so this is not "
            "a usable GET_V2_SELLER_PERFORMANCE_REPORT document; download it again or remove it from the folder."
        )

    def number(self, path: tuple, value: object, *, count: bool) -> object:
        """The number at `path` (numeric text becomes a number); None when it is set aside."""
        if value is None:
            return None
        if isinstance(value, str) and len(value) <= 40 and _NUMBER_TEXT.fullmatch(value.strip()):
            value = float(value) if not value.strip().lstrip("+-").isdigit() else int(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, value, "a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise DataError(
                f"{self.source}: {key_path(path)} holds a number too large to be finite; "
                "download the performance report again."
            )
        if value < 0:
            what = "count" if count else "value"
            self.set_aside.append(
                SetAside(path, value, f"negative {what}; Amazon's figure for this metric is not used")
            )
            return None
        if count and value != int(value):
            self.set_aside.append(
                SetAside(
                    path,
                    value,
                    "count that is not a whole number; Amazon's figure for this metric is not used",
                )
            )
            return None
        return int(value) if count else value

    def walk(self, root: object, base: tuple) -> tuple[bool, object]:
        """Check every value under `root`, numbers given as text made numbers (in place); (False
        when a value in it was set aside, the checked root)."""
        before = len(self.set_aside)
        holder: dict = {"root": root}
        stack: list[tuple[tuple, dict | list, str | int]] = [(base, holder, "root")]
        while stack:
            path, parent, slot = stack.pop()
            value = parent[slot]
            key = next((p for p in reversed(path) if isinstance(p, str)), "")
            last = path[-1] if path else None
            if isinstance(value, float) and not math.isfinite(value):
                self.number(path, value, count=False)
            if isinstance(last, str):
                if last in OBJECT_KEYS and value is not None and not isinstance(value, dict):
                    self.fail(path, value, "an object")
                if last in LIST_KEYS and value is not None and not isinstance(value, list):
                    self.fail(path, value, "a list")
                if last in TEXT_KEYS and value is not None and not isinstance(value, str):
                    self.fail(path, value, "text")
                if last in ("reportingDateFrom", "reportingDateTo"):
                    _day(value, self.source, path)
                if last in NUMBER_KEYS or _is_count_key(last):
                    parent[slot] = self.number(path, value, count=_is_count_key(last))
                    continue
            if key == "lateShipmentRateList" and isinstance(last, int) and not isinstance(value, dict):
                self.fail(path, value, "an object")
            if isinstance(value, dict):
                stack.extend((path + (str(k),), value, k) for k in value)
            elif isinstance(value, list):
                stack.extend((path + (i,), value, i) for i in range(len(value)))
        return len(self.set_aside) == before, holder["root"]


def _report_day(doc: dict, source: str) -> dt.date | None:
    """The day a snapshot describes: the latest `reportingDateTo` anywhere in it."""
    days: list[dt.date] = []
    stack: list[tuple[tuple, object]] = [((), doc)]
    while stack:
        path, o = stack.pop()
        if isinstance(o, dict):
            if "reportingDateTo" in o and (
                d := _day(o["reportingDateTo"], source, path + ("reportingDateTo",))
            ):
                days.append(d)
            stack.extend((path + (str(k),), v) for k, v in o.items())
        elif isinstance(o, list):
            stack.extend((path + (i,), v) for i, v in enumerate(o))
    return max(days) if days else None


def read_snapshot(doc: dict, source: str) -> tuple[dict, list[SetAside]]:
    """Schema-shaped copy of a V2 document, with `_asOf` (its day) and `_source` (file name), and
    the values set aside. A metric object holding a value set aside is left out (as if Amazon had
    not reported it); a shape the suite cannot use raises DataError naming the file and key."""
    check = _Checker(source)
    pms = doc.get("performanceMetrics")
    if pms is not None and not isinstance(pms, list):
        check.fail(("performanceMetrics",), pms, "a list")
    metrics = []
    for i, pm in enumerate(pms or []):
        if not isinstance(pm, dict):
            check.fail(("performanceMetrics", i), pm, "an object")
        if not isinstance(pm.get("marketplaceId"), str):  # metrics of no known marketplace: never used
            check.fail(
                ("performanceMetrics", i, "marketplaceId"), pm.get("marketplaceId"), "a marketplace id"
            )
        out: dict = {}
        for k, v in pm.items():
            key = ALIASES.get(str(k), str(k))
            if key == "warningStates":
                v = (
                    [w if isinstance(w, dict) else {"warningType": str(w), "status": "BAD"} for w in v]
                    if isinstance(v, list)
                    else []
                )
            ok, v = check.walk(v, ("performanceMetrics", i, key))
            if ok:
                out[key] = v
        metrics.append(out)
    statuses = doc.get("accountStatuses")
    if statuses is not None and not isinstance(statuses, list):
        check.fail(("accountStatuses",), statuses, "a list")
    for i, s in enumerate(statuses or []):
        if not isinstance(s, dict):
            check.fail(("accountStatuses", i), s, "an object")
        check.walk(s, ("accountStatuses", i))  # text checks only: a status is kept whole
    snapshot = {
        "accountStatuses": list(statuses or []),
        "performanceMetrics": metrics,
        "_asOf": _report_day(doc, source) or dt.date.min,
        "_source": source,
    }
    return snapshot, check.set_aside


def normalise_snapshot(doc: dict, source: str) -> dict:
    """`read_snapshot` without the list of values set aside."""
    return read_snapshot(doc, source)[0]


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
