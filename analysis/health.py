"""The Account Health document of metrics.md: every metric per marketplace, in Amazon's JSON shape
(validating against its schema) plus our extensions, and the same content as a long frame."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analysis import metrics as m
from analysis import populations, sources, stats
from analysis.config import SCHEMA_FILE
from analysis.snapshots import VIOLATION_KEYS, newest_for

VIOLATION_WINDOW_DAYS = 180
MAX_QUARANTINE_ROWS_IN_JSON = 1000


@dataclass
class AccountHealth:
    """Result of `account_health`: the JSON document, the long scorecard, and the data behind it."""

    as_of: dt.date
    document: dict
    scorecard: pl.DataFrame
    counts: pl.DataFrame
    data: sources.Dataset
    metrics: tuple[m.MetricDef, ...]

    def to_json(self) -> str:
        return json.dumps(self.document, indent=2, ensure_ascii=False)


def _range(first: dt.date, last: dt.date) -> dict:
    return {
        "reportingDateFrom": f"{first.isoformat()}T00:00:00Z",
        "reportingDateTo": f"{last.isoformat()}T23:59:59Z",
    }


def _metric_object(
    md: m.MetricDef, counts: pl.DataFrame, mkt: str, as_of: dt.date, data: sources.Dataset
) -> dict:
    rows = counts.filter((pl.col("marketplace_id") == mkt) & (pl.col("metric") == md.id))
    values = dict(zip(rows["numerator"].to_list(), rows["count"].to_list(), strict=True))
    den = int(rows["denominator"][0]) if rows.height else 0
    num = int(values.get(md.numerator, 0))
    judged = stats.judge(num, den, md.target, md.condition)
    first, last = md.window(as_of)
    obj: dict = {"reportingDateRange": _range(first, last), md.denominator_key: den}
    for part in (md.numerator_part, *md.parts):
        c = int(values.get(part.name, 0))
        if part.style == "object":
            obj[part.key] = {"count": c, "status": judged["status"] if part is md.numerator_part else "NONE"}
        else:
            obj[part.key] = c
    obj.update(
        {
            "status": judged["status"],
            "rate": judged["rate"],
            "targetValue": md.target,
            "targetCondition": md.condition,
            "volumeAdjustedStatus": judged["volumeAdjustedStatus"],
            "pValue": judged["pValue"],
            "rateInterval": judged["rateInterval"],
        }
    )
    missing = [k for k in md.needs if not data.has(k)]
    if missing:
        obj["dataMissing"] = missing
    return obj


def _violations(snapshot_pm: dict | None, as_of: dt.date) -> dict:
    first = as_of - dt.timedelta(days=VIOLATION_WINDOW_DAYS - 1)
    out = {}
    for key in VIOLATION_KEYS:
        given = (snapshot_pm or {}).get(key)
        if isinstance(given, dict) and "defectsCount" in given:
            out[key] = {
                "reportingDateRange": given.get("reportingDateRange") or _range(first, as_of),
                "defectsCount": int(given.get("defectsCount") or 0),
                "status": _status3(given.get("status")),
                "targetValue": given.get("targetValue", 0),
                "targetCondition": given.get("targetCondition", "EQUALS")
                if given.get("targetCondition") in ("EQUALS", "LESS_THAN", "GREATER_THAN")
                else "EQUALS",
                "source": "amazon",
            }
        else:
            out[key] = {
                "reportingDateRange": _range(first, as_of),
                "defectsCount": 0,
                "status": "NONE",
                "targetValue": 0,
                "targetCondition": "EQUALS",
            }
    return out


def _status3(value: object) -> str:
    """Amazon's status strings vary; the schema allows GOOD, BAD and NONE."""
    v = str(value or "").upper()
    if v in ("GOOD", "BAD", "NONE"):
        return v
    return "GOOD" if v in ("NORMAL", "GREEN", "GREAT") else ("NONE" if not v else "BAD")


def _account_status(value: object) -> str:
    v = str(value or "").upper()
    if v in ("NORMAL", "AT_RISK", "DEACTIVATED"):
        return v
    return (
        "DEACTIVATED"
        if v in ("SUSPENDED", "DEACTIVATED")
        else ("NORMAL" if v in ("GOOD", "GREEN") else "AT_RISK")
    )


def _quarantine_section(data: sources.Dataset, extra: list[str]) -> dict:
    q = data.quarantine
    by_reason = q.group_by("file", "reason").len().sort("file", "reason")
    return {
        "quarantinedRows": q.height,
        "byFileAndReason": [
            {"file": r["file"], "reason": r["reason"], "rows": r["len"]}
            for r in by_reason.iter_rows(named=True)
        ],
        "rows": q.head(MAX_QUARANTINE_ROWS_IN_JSON).to_dicts(),
        "notes": data.notes + extra,
        "files": [
            {
                "file": f.path.name,
                "kind": f.kind,
                "rows": f.rows,
                "quarantined": f.quarantined,
                "duplicatesDropped": f.duplicates,
                "encoding": f.encoding,
                "sha256": f.sha256,
            }
            for f in data.files
        ],
    }


def _data_notes(data: sources.Dataset, as_of: dt.date) -> list[str]:
    notes = []
    if not data.has("cancellations"):
        notes.append(
            "No cancellations file: every cancelled seller-fulfilled order counts as a seller cancellation."
        )
    for kind, label in (
        ("shipments", "MFN shipments"),
        ("messages", "buyer messages"),
        ("invoices", "business invoices"),
        ("feedback", "feedback"),
        ("claims", "A-to-z claims"),
        ("chargebacks", "chargebacks"),
    ):
        if not data.has(kind):
            notes.append(f"No {label} file in the data folder: metrics that need it show no data.")
    if data.has("shipments"):
        n = populations.mfn_orders_without_shipments(data).select(pl.len()).collect().item()
        if n:
            notes.append(
                f"{n} seller-fulfilled orders have no shipments row (no promise date): left out of the late shipment rate."
            )
    return notes


def account_health(
    data_dir: str | Path | sources.Dataset,
    as_of: dt.date | str,
    *,
    overrides: dict | None = None,
    config_file: str | Path | None = None,
    marketplace: str | None = None,
) -> AccountHealth:
    """Every Account Health metric of the exports in `data_dir` as known on `as_of`."""
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    data = (
        data_dir if isinstance(data_dir, sources.Dataset) else sources.load(data_dir, marketplace=marketplace)
    )
    defs = m.configured(overrides, config_file)
    counts = m.evaluate(data, as_of, defs)
    card = m.scorecard(counts, defs)
    marketplaces = sorted(
        data.frame("orders").select("marketplace_id").unique().collect()["marketplace_id"].to_list()
    )
    by_id = {d.id: d for d in defs}
    perf = []
    statuses = []
    for mkt in marketplaces:
        obj = {d.id: _metric_object(d, counts, mkt, as_of, data) for d in defs}
        snap = newest_for(data.snapshots, mkt, as_of)
        snap_doc, snap_pm = snap if snap else (None, None)
        pm: dict = {
            "marketplaceId": mkt,
            "orderDefectRate": {
                "afn": {**obj["orderDefectRate.afn"], "fulfillmentType": "AFN"},
                "mfn": {**obj["orderDefectRate.mfn"], "fulfillmentType": "MFN"},
            },
            "lateShipmentRate": obj["lateShipmentRate.30d"],
            "lateShipmentRateList": [obj["lateShipmentRate.10d"], obj["lateShipmentRate.30d"]],
            "preFulfillmentCancellationRate": obj["preFulfillmentCancellationRate"],
            "validTrackingRate": obj["validTrackingRate"],
            "onTimeDeliveryRate": obj["onTimeDeliveryRate"],
            "unitOnTimeDeliveryRate": obj["unitOnTimeDeliveryRate"],
            "invoiceDefectRate": obj["invoiceDefectRate"],
            "refundRate": obj["refundRate"],
            "contactResponseTime": {
                **obj["contactResponseTime"],
                "medianResponseHours": _median_response(data, by_id["contactResponseTime"], mkt, as_of),
            },
            **_violations(snap_pm, as_of),
        }
        if snap_pm:
            ahr = snap_pm.get("accountHealthRating") or {}
            pm["accountHealthRating"] = {
                "ahrStatus": str(ahr.get("ahrStatus") or ahr.get("accountHealthRatingStatus") or "NONE"),
                "reportingDateRange": ahr.get("reportingDateRange")
                or _range(as_of - dt.timedelta(days=VIOLATION_WINDOW_DAYS - 1), as_of),
                **({"ahrScore": ahr["ahrScore"]} if "ahrScore" in ahr else {}),
                "source": snap_doc["_source"],
            }
            pm["warningStates"] = [
                {"warningType": str(w.get("warningType")), "status": _status3(w.get("status"))}
                for w in snap_pm.get("warningStates") or []
            ]
        else:
            pm["accountHealthRating"] = {
                "ahrStatus": "NONE",
                "reportingDateRange": _range(as_of - dt.timedelta(days=VIOLATION_WINDOW_DAYS - 1), as_of),
            }
            pm["warningStates"] = []
        perf.append(pm)
        statuses.append({"marketplaceId": mkt, **_estimated_status(snap_doc, mkt, pm)})
    document = {
        "asOf": as_of.isoformat(),
        "accountStatuses": statuses,
        "performanceMetrics": perf,
        "dataQuality": _quarantine_section(data, _data_notes(data, as_of)),
    }
    return AccountHealth(as_of, document, card, counts, data, defs)


def _estimated_status(snap_doc: dict | None, mkt: str, pm: dict) -> dict:
    if snap_doc:
        for s in snap_doc["accountStatuses"]:
            if s.get("marketplaceId") == mkt:
                return {"status": _account_status(s.get("status")), "source": snap_doc["_source"]}
    keys = [
        pm["orderDefectRate"]["afn"],
        pm["orderDefectRate"]["mfn"],
        pm["lateShipmentRate"],
        pm["preFulfillmentCancellationRate"],
    ]
    bad = any(k["volumeAdjustedStatus"] == "BAD" for k in keys)
    return {"status": "AT_RISK" if bad else "NORMAL", "source": "estimate"}


def _median_response(data: sources.Dataset, md: m.MetricDef, mkt: str, as_of: dt.date) -> float | None:
    first, last = md.window(as_of)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    hours = (
        populations.responses(data)
        .filter(
            (pl.col("marketplace_id") == mkt)
            & pl.col("anchor_day").is_between(first, last)
            & pl.col("responded_ts").is_not_null()
            & (pl.col("responded_ts") < end)
        )
        .select(pl.col("response_hours").median())
        .collect()
        .item()
    )
    return None if hours is None else float(hours)


def validate(document: dict) -> None:
    """Raise jsonschema.ValidationError when the document does not follow Amazon's schema."""
    import jsonschema

    schema = json.loads(Path(SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
