"""The Account Health document of metrics.md: every metric per marketplace, in Amazon's JSON shape
(validating against its schema) plus our extensions, and the same content as a long frame."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analysis import wording
from analysis.config import SCHEMA_FILE
from analysis.errors import DataError, PeriodError, SettingsError
from analysis.inputs import parsing, sources
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.snapshots import VIOLATION_KEYS, account_status, newest_for, status3
from analysis.metrics import definitions as m
from analysis.metrics import populations, stats
from analysis.metrics.settings import Settings
from analysis.metrics.settings import build as build_settings

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
    settings: Settings

    @property
    def metrics(self) -> tuple[m.MetricDef, ...]:
        return self.settings.metrics

    @property
    def newest_order_day(self) -> dt.date:
        return newest_order_day(self.data)

    def to_json(self) -> str:
        return json.dumps(self.document, indent=2, ensure_ascii=False)


def _range(first: dt.date, last: dt.date) -> dict:
    return {
        "reportingDateFrom": f"{first.isoformat()}T00:00:00Z",
        "reportingDateTo": f"{last.isoformat()}T23:59:59Z",
    }


def _metric_object(
    md: m.MetricDef,
    counts: pl.DataFrame,
    mkt: str,
    as_of: dt.date,
    missing: list[str],
    newest: dt.date,
    unread: int = 0,
) -> dict:
    rows = counts.filter((pl.col("marketplace_id") == mkt) & (pl.col("metric") == md.id))
    values = dict(zip(rows["numerator"].to_list(), rows["count"].to_list(), strict=True))
    den = int(rows["denominator"][0]) if rows.height else 0
    num = int(values.get(md.numerator, 0))
    judged = stats.judge(num, den, md.target, md.condition)
    first, last = md.window(as_of)
    # an as-of day past the newest order (--allow-incomplete): no verdict either. Not only windows
    # reaching past it: every metric counts what happened up to A (a lagged ODR the defects, the
    # on-time rates the deliveries), and what happened after the data ends is not in it
    past = as_of > newest
    # rows of its files we could not read that could change the verdict: no verdict either
    unsure = not missing and not past and unread_could_change(md, num, den, unread)
    if missing or past or unsure:  # metrics.md "Missing inputs": counts from what is there, but no verdict
        judged = {**judged, "status": "NONE", "volumeAdjustedStatus": "NONE"}
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
    if missing:
        obj["dataMissing"] = missing
    if past:
        obj["dataEnds"] = newest.isoformat()
    if unsure:
        obj["unreadRows"] = unread
    return obj


def newest_order_day(data: sources.Dataset) -> dt.date:
    """The newest purchase day of the orders: the last day the data can speak for."""
    key = "newest_order_day"
    if key not in data.cache:
        newest = data.frames["orders"].select(pl.col("purchase_ts").max()).collect().item()
        if newest is None:
            raise DataError(_no_orders_message(data))
        data.cache[key] = newest.date()
    return data.cache[key]


def _no_orders_message(data: sources.Dataset) -> str:
    orders = [f for f in data.files if f.kind == "orders"]
    q = data.quarantine.filter(pl.col("file").is_in([f.path.name for f in orders]))
    if q.height:
        return (
            f"Every row of the All Orders files was set aside ({q.height} rows), so no metric can be computed;"
            f"{_first_bad_row(q)} See them all with `python -m analysis check`."
        )
    return f"The All Orders files in {data.data_dir} hold no orders, so no metric can be computed."


def require_usable(data: sources.Dataset) -> None:
    """Stop (DataError) when the orders hold nothing, or when every row of an export file was set
    aside: such a file would read as "none" and every metric that needs it would look clean."""
    newest_order_day(data)
    for f in data.files:
        if f.kind not in sources.TABLE_KINDS or not f.rows or f.quarantined < f.rows:
            continue
        raise DataError(
            f"Every row of {f.path.name} ({sources.kind_title(f.kind)}, {wording.count(f.rows, 'row')}) was set "
            f"aside, so the metrics that need it cannot be computed;"
            f"{_first_bad_row(data.quarantine.filter(pl.col('file') == f.path.name))} "
            "See them all with `python -m analysis check`."
        )


def _first_bad_row(q: pl.DataFrame) -> str:
    """' the first: FILE line N, column 'C': REASON.' of set-aside rows (empty when none)."""
    if not q.height:
        return ""
    r = q.row(0, named=True)
    return f" the first: {r['file']} line {r['line']}, column '{r['column']}': {r['reason']}."


def coverage(data: sources.Dataset) -> dict[str, Callable[[str], bool]]:
    """Per marketplace of the orders: which file kinds the folder holds for it. Feedback is
    downloaded per marketplace, so a folder with the UK's feedback but not the US's lacks the
    US's (a header-only feedback file, which names no marketplace, counts for every one)."""
    marketplaces = sorted(channels_by_marketplace(data))
    fb_files = [f for f in data.files if f.kind == "feedback"]
    if any(f.rows == 0 for f in fb_files) or len(marketplaces) == 1:
        with_feedback = set(marketplaces) if fb_files else set()
    else:
        with_feedback = set(data.frame("feedback").select("marketplace_id").unique().collect().to_series())

    def has_for(mkt: str) -> Callable[[str], bool]:
        return lambda kind: data.has(kind) and (kind != "feedback" or mkt in with_feedback)

    return {mkt: has_for(mkt) for mkt in marketplaces}


def missing_inputs(data: sources.Dataset, defs: tuple[m.MetricDef, ...]) -> dict[str, dict[str, list[str]]]:
    """Marketplace -> metric id -> the file kinds it needs and the folder lacks for that
    marketplace; computed once per dataset and metric table (the JSON, the warnings, history and
    the report's notes all read it)."""
    key = ("missing_inputs", defs)
    if key not in data.cache:
        channels, has = channels_by_marketplace(data), coverage(data)
        data.cache[key] = {
            mkt: {d.id: m.missing_inputs(d, has[mkt], channels[mkt]) for d in defs}
            for mkt in sorted(channels)
        }
    return data.cache[key]


def unread_rows(data: sources.Dataset) -> dict[str, int]:
    """Kind -> rows of its files set aside (a value we could not read, a date past the download...)
    that could have counted in a metric: their order is not known to be outside the data."""
    key = "unread_rows"
    if key not in data.cache:
        kind_of = {f.path.name: f.kind for f in data.files}
        counts: dict[str, int] = {}
        q = data.quarantine.filter(~pl.col("reason").is_in(list(sources.UNKNOWN_ORDER_REASONS)))
        for file, n in q.group_by("file").len().iter_rows():
            kind = kind_of.get(file)
            if kind:
                counts[kind] = counts.get(kind, 0) + n
        data.cache[key] = counts
    return dict(data.cache[key])


def metric_unread(md: m.MetricDef, unread: dict[str, int]) -> int:
    """Rows set aside from the files `md` reads (All Orders and what it needs)."""
    kinds = dict.fromkeys(["orders", *md.needs, *(k for _, k in md.needs_for_channel)])
    return sum(unread.get(k, 0) for k in kinds)


def unread_could_change(md: m.MetricDef, num: int, den: int, unread: int) -> bool:
    """Whether `unread` rows, read, could change the verdict. At worst each is a miss: a defect of
    an order already counted (an unreadable feedback row), or a unit of the window that missed;
    at best a unit that did not. A verdict that holds at both ends stands; one that does not is
    not known."""
    if not unread:
        return False
    now = stats.judge(num, den, md.target, md.condition)
    if md.condition == stats.LESS_THAN:  # num counts misses (defects)
        ends = ((num + unread, max(den, num + unread)), (num, den + unread))
    else:  # num counts hits (on time, valid tracking)
        ends = ((num, den + unread), (num + unread, den + unread))
    keys = ("status", "volumeAdjustedStatus")
    return any(
        {k: stats.judge(a, b, md.target, md.condition)[k] for k in keys} != {k: now[k] for k in keys}
        for a, b in ends
    )


def require_covered(data: sources.Dataset, as_of: dt.date, settings: Settings, what: str = "") -> None:
    """An as-of day after the newest order day would show a window of missing days as a valid
    rate: refuse it unless the run allows incomplete periods."""
    newest = newest_order_day(data)
    if as_of > newest and not settings.allow_incomplete:
        what = what or f"as-of day {as_of}"
        raise PeriodError(
            f"The {what} is after the data: the newest order in {data.data_dir.name} is from {newest}; "
            "pick a day up to then, add newer exports, or pass --allow-incomplete to compute it anyway."
        )


def _violations(snapshot_pm: dict | None, as_of: dt.date) -> dict:
    first = as_of - dt.timedelta(days=VIOLATION_WINDOW_DAYS - 1)
    out = {}
    for key in VIOLATION_KEYS:
        given = (snapshot_pm or {}).get(key)
        if isinstance(given, dict) and "defectsCount" in given:
            out[key] = {
                "reportingDateRange": given.get("reportingDateRange") or _range(first, as_of),
                "defectsCount": int(given.get("defectsCount") or 0),
                "status": status3(given.get("status")),
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


def missing_input_lines(data: sources.Dataset, defs: tuple[m.MetricDef, ...]) -> list[str]:
    """One sentence per absent file kind (and marketplace, where only some lack it), naming the
    metrics it leaves incomplete: stderr of every command, the report's notes and banner."""
    missing = missing_inputs(data, defs)
    titles_of = {d.id: d.title for d in defs}
    lacking: dict[str, dict[str, list[str]]] = {}  # kind -> marketplace -> metric titles
    for mkt, by_metric in missing.items():
        for metric_id, kinds in by_metric.items():
            for k in kinds:
                lacking.setdefault(k, {}).setdefault(mkt, []).append(titles_of[metric_id])
    out = []
    for k, by_mkt in lacking.items():
        titles = list(dict.fromkeys(t for ts in by_mkt.values() for t in ts))
        where = (
            "in the data folder"
            if len(by_mkt) == len(missing) and not data.has(k)
            else "for " + ", ".join(marketplace_label(x) for x in by_mkt)
        )
        out.append(
            f"No {sources.kind_title(k)} file {where}: {', '.join(titles)} "
            f"{'is' if len(titles) == 1 else 'are'} incomplete (no status; counts from what is there)."
        )
    return out


def mark_incomplete(card: pl.DataFrame, data: sources.Dataset, defs: tuple[m.MetricDef, ...]) -> pl.DataFrame:
    """A scorecard (`metrics.scorecard`, one day or a history) with what the data could not tell:
    `data_missing` (the absent kinds, comma-separated) and `past_data` (the as-of day is past
    the newest order day), either with statuses NONE, as in the JSON."""
    rows = [
        {"marketplace_id": mkt, "metric": metric_id, "data_missing": ", ".join(kinds) or None}
        for mkt, by_metric in missing_inputs(data, defs).items()
        for metric_id, kinds in by_metric.items()
    ]
    gaps = pl.DataFrame(
        rows, schema={"marketplace_id": pl.String, "metric": pl.String, "data_missing": pl.String}
    )
    out = card.join(gaps, on=["marketplace_id", "metric"], how="left", maintain_order="left")
    # an as-of day past the newest order misses what happened since: no verdict, as in the JSON
    day = pl.col("as_of") if "as_of" in out.columns else pl.col("window_to")
    out = out.with_columns((day > newest_order_day(data)).alias("past_data"))
    # rows of its files we could not read that could change a day's verdict: no verdict that day
    unread = unread_rows(data)
    by_id = {d.id: d for d in defs}
    counts = {d.id: n for d in defs if (n := metric_unread(d, unread))}
    # judged once per distinct (metric, numerator, denominator): a long history repeats them
    triples = (
        out.filter(pl.col("metric").is_in(list(counts))).select("metric", "numerator", "denominator").unique()
    )
    unsure = pl.DataFrame(
        [
            (mid, num, den, counts[mid])
            for mid, num, den in triples.iter_rows()
            if unread_could_change(by_id[mid], num, den, counts[mid])
        ],
        schema={"metric": pl.String, "numerator": triples.schema["numerator"],
                "denominator": triples.schema["denominator"], "unread_rows": pl.Int64},
        orient="row",
    )  # fmt: skip
    out = out.join(unsure, on=["metric", "numerator", "denominator"], how="left", maintain_order="left")
    none = pl.col("data_missing").is_not_null() | pl.col("past_data") | pl.col("unread_rows").is_not_null()
    out = out.with_columns(
        pl.when(none).then(pl.lit("NONE")).otherwise(pl.col("status")).alias("status"),
        pl.when(none)
        .then(pl.lit("NONE"))
        .otherwise(pl.col("volume_adjusted_status"))
        .alias("volume_adjusted_status"),
    )
    return out


def odr_missing_by_marketplace(data: sources.Dataset, defs: tuple[m.MetricDef, ...]) -> dict[str, list[str]]:
    """Marketplace -> the kinds its ODR needs that the folder lacks for it (empty when complete)."""
    odr = {d.id for d in defs if d.population == "order_defects"}
    return {
        mkt: list(
            dict.fromkeys(k for metric_id, found in by_metric.items() if metric_id in odr for k in found)
        )
        for mkt, by_metric in missing_inputs(data, defs).items()
    }


def odr_missing(data: sources.Dataset, defs: tuple[m.MetricDef, ...]) -> list[str]:
    """The kinds the ODR needs that the folder lacks for some marketplace (defects and spikes
    see only the defects of the files present)."""
    odr = {d.id for d in defs if d.population == "order_defects"}
    kinds = [
        k
        for by_metric in missing_inputs(data, defs).values()
        for metric_id, found in by_metric.items()
        if metric_id in odr
        for k in found
    ]
    return list(dict.fromkeys(kinds))


def oldest_order_day(data: sources.Dataset) -> dt.date:
    key = "oldest_order_day"
    if key not in data.cache:
        data.cache[key] = data.frames["orders"].select(pl.col("purchase_ts").min()).collect().item().date()
    return data.cache[key]


def before_data_line(data: sources.Dataset, as_of: dt.date, defs: tuple[m.MetricDef, ...]) -> str | None:
    """Windows that begin before the oldest order count fewer days than they say."""
    oldest = oldest_order_day(data)
    early = [d for d in defs if d.window(as_of)[0] < oldest]
    if not early:
        return None
    titles = ", ".join(dict.fromkeys(d.title.split(" (")[0] for d in early))
    return (
        f"Data starts {oldest}: the windows of {titles} as of {as_of} begin before it, so they hold fewer "
        "days of orders than they say."
    )


def past_data_line(data: sources.Dataset, as_of: dt.date) -> str | None:
    newest = newest_order_day(data)
    if as_of <= newest:
        return None
    return (
        f"Data ends {newest}: the as-of day {as_of} is after the newest order, so no metric has a verdict "
        f"(what happened after {newest} is not in the data; allowed by --allow-incomplete)."
    )


def _data_notes(data: sources.Dataset, defs: tuple[m.MetricDef, ...]) -> list[str]:
    notes = missing_input_lines(data, defs)
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
    settings: Settings | None = None,
    *,
    overrides: dict | None = None,
    config_file: str | Path | None = None,
    marketplace: str | None = None,
    allow_incomplete: bool = False,
    what: str = "",
) -> AccountHealth:
    """Every Account Health metric of the exports in `data_dir` as known on `as_of`.

    A run passes its `settings`; in a notebook, `overrides` / `config_file` build them here."""
    if settings is None:
        settings = build_settings(config_file, overrides, allow_incomplete=allow_incomplete)
    elif overrides or config_file or allow_incomplete:
        raise SettingsError("pass either settings or overrides/config_file/allow_incomplete, not both")
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    data = (
        data_dir if isinstance(data_dir, sources.Dataset) else sources.load(data_dir, marketplace=marketplace)
    )
    require_usable(data)
    require_covered(data, as_of, settings, what)
    defs = settings.metrics
    counts = m.evaluate(data, as_of, defs)
    card = m.scorecard(counts, defs)
    marketplaces = sorted(channels_by_marketplace(data))
    by_id = {d.id: d for d in defs}
    perf = []
    statuses = []
    missing = missing_inputs(data, defs)
    newest = newest_order_day(data)
    unread = unread_rows(data)
    for mkt in marketplaces:
        obj = {
            d.id: _metric_object(d, counts, mkt, as_of, missing[mkt][d.id], newest, metric_unread(d, unread))
            for d in defs
        }
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
                {"warningType": str(w.get("warningType")), "status": status3(w.get("status"))}
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
    }
    past = past_data_line(data, as_of)
    if past:
        document["incomplete"] = past
    early = [x for x in (past, before_data_line(data, as_of, defs)) if x]
    document["dataQuality"] = _quarantine_section(data, early + _data_notes(data, defs))
    return AccountHealth(as_of, document, card, counts, data, settings)


def channels_by_marketplace(data: sources.Dataset) -> dict[str, set[str]]:
    """Marketplace -> the channels its orders came through (computed once per dataset)."""
    key = "channels_by_marketplace"
    if key not in data.cache:
        pairs = data.frames["orders"].select("marketplace_id", "channel").unique().collect()
        out: dict[str, set[str]] = {}
        for mkt, ch in pairs.cast(pl.String).iter_rows():
            out.setdefault(mkt, set()).add(ch)
        data.cache[key] = out
    return {mkt: set(chs) for mkt, chs in data.cache[key].items()}


def _estimated_status(snap_doc: dict | None, mkt: str, pm: dict) -> dict:
    if snap_doc:
        for s in snap_doc["accountStatuses"]:
            if s.get("marketplaceId") == mkt:
                return {"status": account_status(s.get("status")), "source": snap_doc["_source"]}
    keys = [
        pm["orderDefectRate"]["afn"],
        pm["orderDefectRate"]["mfn"],
        pm["lateShipmentRate"],
        pm["preFulfillmentCancellationRate"],
    ]
    bad = any(k["volumeAdjustedStatus"] == "BAD" for k in keys)
    missing = list(dict.fromkeys(x for k in keys for x in k.get("dataMissing", [])))
    out = {"status": "AT_RISK" if bad else "NORMAL", "source": "estimate"}
    if missing and not bad:  # "NORMAL" only as far as the files present tell
        out["dataMissing"] = missing
    unread = max((k.get("unreadRows", 0) for k in keys), default=0)
    if unread and not bad:  # ... and the rows we could read
        out["unreadRows"] = unread
    ends = next((k["dataEnds"] for k in keys if k.get("dataEnds")), None)
    if ends and not bad:  # ... and the days the data holds
        out["dataEnds"] = ends
    return out


def _median_response(data: sources.Dataset, md: m.MetricDef, mkt: str, as_of: dt.date) -> float | None:
    first, last = md.window(as_of)
    end = parsing.end_of_day_instant(as_of)
    hours = (
        populations.units(data, "responses")
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
