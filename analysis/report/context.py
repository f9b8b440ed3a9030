"""The report's context: one run's computed health for a period, built once by `prepare`, and the
readings every section shares (the period, the data's end, Amazon's snapshot values)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from analysis.errors import AnalysisError, UsageError
from analysis.inputs.snapshots import newest_for
from analysis.insights import spikes
from analysis.metrics import health
from analysis.metrics import settings as st
from analysis.metrics.settings import Settings
from analysis.report.periods import iso_week_of, parse_period, parse_week, week_sunday


@dataclass
class ReportContext:
    data_dir: Path
    week: str
    as_of: dt.date
    marketplace: str
    result: health.AccountHealth
    account: str = ""

    @property
    def settings(self) -> Settings:
        return self.result.settings

    @property
    def newest(self) -> dt.date:
        """The newest order day: the data says nothing about days after it."""
        return self.result.newest_order_day

    @property
    def first(self) -> dt.date:
        """The period's first day: a week's Monday, a month's 1st (what "this period" covers)."""
        try:
            return min(parse_period(self.week).first, self.as_of)
        except AnalysisError:
            return self.as_of - dt.timedelta(days=6)

    @property
    def past_data(self) -> bool:
        return self.as_of > self.newest

    @property
    def marketplaces(self) -> list[str]:
        ids = [pm["marketplaceId"] for pm in self.result.document["performanceMetrics"]]
        return ids if self.marketplace == "all" else [i for i in ids if i == self.marketplace]


def run_settings(settings: dict | None, config_file: str | None = None) -> Settings:
    """The run's settings inside a notebook: what papermill passed (`Settings.to_dict()`), or,
    opened by hand, the defaults and an optional TOML file."""
    return Settings.from_dict(settings) if settings else st.build(config_file)


def prepare(
    data_dir: str | Path,
    settings: Settings,
    week: str | None = None,
    as_of: str | None = None,
    marketplace: str = "all",
    account: str | None = None,
    period: str | None = None,
) -> ReportContext:
    """Compute everything the report shows: a week's report uses its Sunday as the as-of date,
    a month's report its last day."""
    if period and not week and not as_of:
        day = parse_period(period).as_of
    elif week:
        day = week_sunday(parse_week(week))
    elif as_of:
        day = dt.date.fromisoformat(as_of)
    else:
        raise UsageError("give the report a week (2026-W46), a month (2026-10) or an as-of date")
    label = period or week or iso_week_of(day)
    result = health.account_health(data_dir, day, settings, what=f"period {label} (as of {day})")
    known = {pm["marketplaceId"] for pm in result.document["performanceMetrics"]}
    if marketplace != "all" and marketplace not in known:
        raise UsageError(f"marketplace {marketplace} is not in the data; it holds {', '.join(sorted(known))}")
    ctx = ReportContext(Path(data_dir), label, day, marketplace, result)
    ctx.account = account or Path(data_dir).name
    return ctx


def amazon_metric(ctx: ReportContext, marketplace_id: str, metric_id: str) -> tuple[dict, dt.date] | None:
    """The metric's object in the newest V2 snapshot known on the as-of day, with its date
    (snapshots are read leniently: a missing or odd-shaped object is None)."""
    snap = newest_for(ctx.result.data.snapshots, marketplace_id, ctx.as_of)
    if not snap:
        return None
    doc, pm = snap
    try:
        obj = metric_json(pm, metric_id)
    except (KeyError, IndexError, TypeError):
        return None
    return (obj, doc["_asOf"]) if isinstance(obj, dict) else None


def amazon_status(ctx: ReportContext, marketplace_id: str, metric_id: str) -> tuple[str, dt.date] | None:
    """Amazon's own status for a metric, with the snapshot's date."""
    got = amazon_metric(ctx, marketplace_id, metric_id)
    status = str(got[0].get("status") or "").upper() if got else ""
    return (status, got[1]) if status else None


def amazon_target(ctx: ReportContext, marketplace_id: str, metric_id: str) -> float | None:
    got = amazon_metric(ctx, marketplace_id, metric_id)
    try:
        value = got[0].get("targetValue") if got else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def pm_of(ctx: ReportContext, marketplace_id: str) -> dict:
    return next(p for p in ctx.result.document["performanceMetrics"] if p["marketplaceId"] == marketplace_id)


def trend_weeks(ctx: ReportContext) -> int:
    return ctx.settings.report.trend_weeks


def series_in(pairs: list[tuple[str, str]]) -> pl.Expr:
    """Rows of these (marketplace, channel) series."""
    keep = pl.lit(False)
    for mkt, ch in pairs:
        keep = keep | ((pl.col("marketplace_id") == mkt) & (pl.col("channel") == ch))
    return keep


def metric_json(pm: dict, metric_id: str) -> dict:
    if metric_id.startswith("orderDefectRate."):
        return pm["orderDefectRate"][metric_id.split(".")[1]]
    if metric_id.startswith("lateShipmentRate."):
        return pm["lateShipmentRateList"][0 if metric_id.endswith("10d") else 1]
    return pm[metric_id]


def week_incidents(ctx: ReportContext) -> list[dict]:
    """The period's incidents (defects by arrival day), computed once per report."""
    key = ("incidents", ctx.as_of, ctx.first, ctx.settings.spikes)
    cache = ctx.result.data.cache
    if key not in cache:
        cache[key] = spikes.incidents(ctx.result.data, ctx.as_of, ctx.settings.spikes, first=ctx.first)
    return [i for i in cache[key] if i["marketplaceId"] in ctx.marketplaces and i["observed"] > i["expected"]]
