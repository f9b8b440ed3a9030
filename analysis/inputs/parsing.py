"""Polars expressions that turn the exports' text cells into typed values, or null when they can't.

Every parser returns null for a value it cannot read; `sources` compares raw and parsed columns to
quarantine such rows instead of letting a null slip into a metric.
"""

import datetime as dt
import functools

import polars as pl

UTC = "UTC"
_DATETIME_FORMATS_TZ = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",  # 2026-10-03T08:04:21+00:00, ...Z, with or without fraction
    "%Y-%m-%dT%H:%M%#z",  # 2026-10-03T08:04Z, 2026-10-03T08:04+01:00
)
_DATETIME_FORMATS_NAIVE = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
_END_OF_DAY = dt.timedelta(hours=23, minutes=59, seconds=59)


def timestamp(col: str | pl.Expr, *, date_only_end_of_day: bool = False) -> pl.Expr:
    """ISO-8601 date-time (any offset, `Z`, with or without seconds) or plain date, in UTC.

    A plain date means the start of that day, or its last second when `date_only_end_of_day`
    (promise dates: "a date without time means the end of that day, 23:59:59 UTC").
    """
    s = (pl.col(col) if isinstance(col, str) else col).str.strip_chars()
    with_tz = [
        s.str.to_datetime(f, strict=False, time_unit="us", time_zone=UTC) for f in _DATETIME_FORMATS_TZ
    ]
    naive = [
        s.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone(UTC)
        for f in _DATETIME_FORMATS_NAIVE
    ]
    day = s.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone(UTC)
    if date_only_end_of_day:
        day = day + pl.duration(hours=23, minutes=59, seconds=59)
    return pl.coalesce(*with_tz, *naive, day)


def timestamp_series(values: pl.Series, *, date_only_end_of_day: bool = False) -> pl.Series:
    """`timestamp` for a whole column, fast: exports use one format per column, so the format
    that reads the first value is applied to all, and only the rest go through every format."""
    name = values.name
    full = timestamp(name, date_only_end_of_day=date_only_end_of_day)
    s = values.str.strip_chars()
    first = s.drop_nulls().head(1)
    if first.len() == 0:
        return values.to_frame().select(full).to_series()
    fast = None
    for f in _DATETIME_FORMATS_TZ:
        if first.str.to_datetime(f, strict=False, time_unit="us", time_zone=UTC).is_not_null().all():
            fast = s.str.to_datetime(f, strict=False, time_unit="us", time_zone=UTC)
            break
    if fast is None and first.str.to_date("%Y-%m-%d", strict=False).is_not_null().all():
        fast = s.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone(UTC)
        if date_only_end_of_day:
            fast = fast + _END_OF_DAY
    if fast is None:
        return values.to_frame().select(full).to_series()
    missing = (fast.is_null() & s.is_not_null()).arg_true()
    if missing.len():
        slow = values.gather(missing).to_frame().select(full).to_series()
        fast = fast.scatter(missing, slow)
    return fast.alias(name)


def boolean(col: str) -> pl.Expr:
    s = pl.col(col).str.strip_chars().str.to_lowercase()
    return (
        pl.when(s.is_in(["true", "t", "yes", "y", "1"]))
        .then(True)
        .when(s.is_in(["false", "f", "no", "n", "0"]))
        .then(False)
        .otherwise(None)
    )


def _as_float(col: str | pl.Expr) -> pl.Expr:
    e = pl.col(col) if isinstance(col, str) else col
    return e.str.strip_chars().str.replace_all(r"[£$€¥,\s]", "").cast(pl.Float64, strict=False)


def number(col: str) -> pl.Expr:
    """Amounts and counts; tolerates a currency symbol or thousands separators in the cell. `NaN`,
    `inf` and numbers too large for a float (`1e400`) are not numbers: null."""
    f = _as_float(col)
    return pl.when(f.is_finite()).then(f).otherwise(None)


def non_finite(col: str | pl.Expr) -> pl.Expr:
    """True where the cell reads as a float that is not finite (`NaN`, `inf`, `-Infinity`, `1e400`)."""
    f = _as_float(col)
    return f.is_nan() | f.is_infinite()


def integer(col: str) -> pl.Expr:
    f = number(col)
    return pl.when(f == f.floor()).then(f).otherwise(None).cast(pl.Int64, strict=False)


def token(col: str) -> pl.Expr:
    """Enumerated value, compared case-, space-, underscore- and hyphen-insensitively."""
    return pl.col(col).str.strip_chars().str.to_lowercase().str.replace_all(r"[\s_]+", "-")


def end_of_day(day: dt.date) -> dt.datetime:
    """Exclusive end of a UTC day: what is known "on A" happened before this instant."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


@functools.lru_cache(maxsize=4096)
def instant(moment: dt.datetime) -> pl.Expr:
    """An aware instant as a literal of the stored type (microseconds, UTC), to compare a column
    with. Built from its microseconds: `pl.lit` of an aware datetime costs ~0.3 ms, and an
    account's windows compare with the same few instants some hundred times (a small account's
    metrics spent a tenth of their time there). A naive datetime is refused (TypeError)."""
    return pl.lit((moment - _EPOCH) // _MICROSECOND, pl.Int64).cast(pl.Datetime("us", UTC))


def end_of_day_instant(day: dt.date) -> pl.Expr:
    """`end_of_day` as a literal to compare a column with (see `instant`)."""
    return instant(end_of_day(day))
