"""Report periods: ISO weeks (`2026-W46`), their Sundays, and the latest complete week of data."""

from __future__ import annotations

import datetime as dt
import re

_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")


def parse_week(text: str) -> tuple[int, int]:
    m = _WEEK.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not an ISO week; write it like 2026-W46")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        dt.date.fromisocalendar(year, week, 7)
    except ValueError as exc:
        raise ValueError(f"{text}: {year} has no week {week}") from exc
    return year, week


def week_sunday(year_week: tuple[int, int]) -> dt.date:
    """A week's report is made as of its Sunday."""
    return dt.date.fromisocalendar(year_week[0], year_week[1], 7)


def iso_week_of(day: dt.date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"


def latest_complete_week(newest_day: dt.date) -> str:
    """The newest ISO week whose Sunday is on or before the newest day of data."""
    sunday = newest_day - dt.timedelta(days=(newest_day.isoweekday() % 7))
    return iso_week_of(sunday)
