"""Report periods: ISO weeks (`2026-W46`), their Sundays, and the latest complete week of data."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from analysis.errors import PeriodError

_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")


def parse_week(text: str) -> tuple[int, int]:
    m = _WEEK.match(text.strip())
    if not m:
        raise PeriodError(f"'{text}' is not an ISO week; write it like 2026-W46")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        dt.date.fromisocalendar(year, week, 7)
    except ValueError as exc:
        raise PeriodError(f"{text}: {year} has no week {week}") from exc
    return year, week


def week_sunday(year_week: tuple[int, int]) -> dt.date:
    """A week's report is made as of its Sunday."""
    return dt.date.fromisocalendar(year_week[0], year_week[1], 7)


def iso_week_of(day: dt.date) -> str:
    y, w, _ = day.isocalendar()
    return f"{y:04d}-W{w:02d}"


def latest_complete_week(newest_day: dt.date) -> str:
    """The newest ISO week whose Sunday is on or before the newest day of data."""
    sunday = newest_day - dt.timedelta(days=(newest_day.isoweekday() % 7))
    return iso_week_of(sunday)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Period:
    """A report period: an ISO week (as of its Sunday), a calendar month (as of its last day), or
    the 7 days ending on a day (`YYYY-MM-DD`)."""

    label: str
    first: dt.date
    as_of: dt.date

    @property
    def kind(self) -> str:
        return "week" if "W" in self.label else "month" if len(self.label) == 7 else "7 days"


def parse_period(text: str) -> Period:
    text = text.strip()
    if _WEEK.match(text):
        y, w = parse_week(text)
        return Period(f"{y:04d}-W{w:02d}", dt.date.fromisocalendar(y, w, 1), dt.date.fromisocalendar(y, w, 7))
    m = _MONTH.match(text)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        if not 1 <= mo <= 12:
            raise PeriodError(f"'{text}' is not a month; write it like 2026-10")
        if y < 1 or (y, mo) == (9999, 12):
            raise PeriodError(f"'{text}' is outside the calendar this suite computes")
        nxt = dt.date(y + (mo == 12), mo % 12 + 1, 1)
        return Period(text, dt.date(y, mo, 1), nxt - dt.timedelta(days=1))
    if _DAY.match(text):
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as exc:
            raise PeriodError(f"'{text}' is not a date; write it like 2026-11-12") from exc
        return Period(text, day - dt.timedelta(days=6), day)
    raise PeriodError(
        f"'{text}' is not a period: write an ISO week like 2026-W46, a month like 2026-10, or a day like 2026-11-12"
    )


def periods_between(first: dt.date, last: dt.date, every: str) -> list[Period]:
    """Every complete week or month whose as-of day falls in [first, last]."""
    out: list[Period] = []
    if every == "week":
        day = first + dt.timedelta(days=(6 - first.weekday()))  # first Sunday on or after `first`
        while day <= last:
            out.append(parse_period(iso_week_of(day)))
            day += dt.timedelta(days=7)
    elif every == "month":
        y, m = first.year, first.month
        while True:
            p = parse_period(f"{y}-{m:02d}")
            if p.as_of > last:
                break
            if p.as_of >= first:
                out.append(p)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:
        raise PeriodError("--every is week or month")
    return out
