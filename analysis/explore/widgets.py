"""What the explorer notebooks share: controls that are ipywidgets in a live kernel and plain
values in a headless run, charts whose clicks reach Python (Altair's `JupyterChart`, drawn
offline with vl-convert's bundle), and conversions of a chart's selection to days and values.

Live, a selection (a clicked bar or point, a brushed range) sets a control; the control's
observer recomputes the views and redraws the charts that depend on it. A chart is never
redrawn because of its own selection (the click stays where the user put it), and a chart
that is redrawn gets the current selection as its initial value, so what is selected stays
visible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import traitlets

ALL = "all"

# the explorers' tables inside JupyterLab (the report's stylesheet is only in exported pages)
LIVE_CSS = """<style>
.ah-explorer table.ah { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 12px; }
.ah-explorer table.ah th, .ah-explorer table.ah td { border-bottom: 1px solid #ddd; padding: 4px 6px;
  text-align: left; vertical-align: top; }
.ah-explorer table.ah th { background: #f5f5f5; }
.ah-explorer .scroll { overflow-x: auto; max-width: 100%; }
.ah-explorer .muted { color: #666; font-size: 12px; }
.ah-explorer .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; }
.ah-explorer .badge.GOOD { background: #2e7d32; } .ah-explorer .badge.AT_RISK { background: #ef6c00; }
.ah-explorer .badge.BAD { background: #c62828; } .ah-explorer .badge.NONE { background: #9e9e9e; }
</style>"""


class Fixed:
    """A control's value without a widget: headless runs create no comm and leave no widget
    state in the executed notebook. Same `value` / `options` / `observe` surface as a widget."""

    def __init__(self, value: object, options: list | tuple = ()) -> None:
        self.value = value
        self.options = list(options)

    def observe(self, *args, **kwargs) -> None:  # nothing changes a fixed value
        pass


class Controls:
    """Named controls (widgets live, `Fixed` values headless) with one callback for all of them,
    and `batch()` to change several at once with a single recomputation."""

    def __init__(self, controls: dict[str, object], on_change: Callable[[str | None], None]) -> None:
        self.controls = controls
        self._on_change = on_change
        self._held = 0
        self._pending: set[str] = set()
        for name, c in controls.items():
            c.observe(functools.partial(self._changed, name), names="value")

    def _changed(self, name: str, change=None) -> None:
        if self._held:
            self._pending.add(name)
            return
        self._on_change({name})

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self._pending:
            names, self._pending = self._pending, set()
            self._on_change(names)

    def set(self, **values: object) -> None:
        """Set several controls; one recomputation for all of them."""
        with self.batch():
            for name, v in values.items():
                c = self.controls[name]
                if c.value != v:
                    c.value = v


def dropdown(interactive: bool, options: list, value: object, description: str):
    if not interactive:
        return Fixed(value, options)
    import ipywidgets as w

    return w.Dropdown(options=options, value=value, description=description)


def date_picker(interactive: bool, value: dt.date, description: str):
    if not interactive:
        return Fixed(value)
    import ipywidgets as w

    return w.DatePicker(value=value, description=description)


class Selected(traitlets.HasTraits):
    """A selection's value, set by a chart (or by code) and observed like a widget's. It is not
    a widget: nothing of it goes to the browser, where the chart shows the selection."""

    value = traitlets.Any()

    def __init__(self, value: object = None) -> None:
        super().__init__(value=value)


@functools.cache
def offline_charts() -> None:
    """`JupyterChart` draws with vl-convert's Vega bundle instead of loading it from a CDN."""
    from altair import JupyterChart

    JupyterChart.enable_offline()


class LinkedChart:
    """A `JupyterChart` whose named selections call back into Python across redraws (a new
    chart gives the widget a new `selections` object: the observers are attached again)."""

    def __init__(
        self,
        css_class: str,
        on_select: dict[str, Callable[[object], None]] | None = None,
        *,
        debounce_ms: int = 10,
        while_dragging: bool = True,
    ) -> None:
        from altair import JupyterChart

        offline_charts()
        self.on_select = on_select or {}
        self.widget = JupyterChart(
            None,
            debounce_wait=debounce_ms,
            max_wait=while_dragging,
            embed_options={"renderer": "svg", "actions": False},
        )
        self.widget.add_class("ah-chart")
        self.widget.add_class(css_class)

    @property
    def local_tz(self) -> str | None:
        return self.widget.local_tz

    @property
    def spec(self) -> dict | None:
        return self.widget.spec

    def set(self, chart) -> None:
        """Draw `chart` and observe its selections."""
        self.widget.chart = chart
        names = set(self.widget.selections.trait_names())
        for name, callback in self.on_select.items():
            if name in names:
                self.widget.selections.observe(lambda change, cb=callback: cb(change["new"]), names=name)


def html_box(css_class: str, value: str = ""):
    import ipywidgets as w

    box = w.HTML(value=value)
    box.add_class(css_class)
    return box


# ------------------------------------------------------------------ selections -> values


def point_value(selection, field: str) -> object | None:
    """The `field` of the first selected point (None when nothing is selected)."""
    for v in getattr(selection, "value", None) or []:
        if field in v:
            x = v[field]
            return x[0] if isinstance(x, list) and x else x
    return None


def _day(value: object, tz: str | None, *, end: bool = False) -> dt.date:
    """A temporal selection bound as a day: Vega gives milliseconds since the epoch (the
    chart's data are parsed in the browser's time zone), or an ISO string. An `end` bound is
    exclusive: a brush ending at midnight ends on the day before."""
    if isinstance(value, int | float):
        try:
            zone = ZoneInfo(tz) if tz else dt.UTC
        except (ZoneInfoNotFoundError, ValueError):
            zone = dt.UTC
        return dt.datetime.fromtimestamp((value - (1 if end else 0)) / 1000, zone).date()
    return dt.date.fromisoformat(str(value)[:10])


def interval_days(selection, field: str, tz: str | None) -> tuple[dt.date, dt.date] | None:
    """The days a brush on the temporal `field` covers, or None when there is no brush."""
    bounds = (getattr(selection, "value", None) or {}).get(field)
    if not bounds or len(bounds) != 2:
        return None
    lo, hi = sorted(bounds, key=lambda b: b if isinstance(b, int | float) else str(b))
    first, last = _day(lo, tz), _day(hi, tz, end=True)
    return first, max(first, last)


def local_datetime(day: dt.date):
    """A day as Vega-Lite's DateTime in the browser's time zone, as the charts' dates are parsed."""
    import altair as alt

    return alt.DateTime(year=day.year, month=day.month, date=day.day)
