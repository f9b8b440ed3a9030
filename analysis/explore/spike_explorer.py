"""Views of spike detection for notebooks/spike_detection.ipynb.

Live, the control chart is the control: a click on an alarm or on an incident's band, or a brush
across days, lists the defects behind it and draws their causes, SKUs and carriers; the series,
the detector and its sensitivity (which have no chart) stay a dropdown and a slider. Headless
(`interactive=False`) every series is drawn with every detector's alarms, and the defects behind
the newest alarm. Charts carry daily counts, never an order."""

from __future__ import annotations

import dataclasses
import datetime as dt

import altair as alt
import numpy as np
import polars as pl

from analysis import wording
from analysis.explore import widgets
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.sources import Dataset
from analysis.insights import causes, defects, spikes
from analysis.metrics.settings import Settings
from analysis.report import charts
from analysis.report.kit import esc, table_html

LIVE_WIDTH = 860  # px: a container width is 0 when a widget draws before it is on the page
SENSITIVITY_FIELDS = {
    "glr": "glr_h",
    "cusum": "cusum_h",
    "p-chart": "pchart_alpha",
    "ewma": "ewma_l",
    "laney": "laney_k",
}


def settings_for(detector: str, sensitivity: float, base: spikes.Settings | None = None) -> spikes.Settings:
    """Default settings with one detector made more (sensitivity > 1) or less sensitive."""
    base = base or spikes.Settings()
    field = SENSITIVITY_FIELDS[detector]
    value = getattr(base, field)
    new = value * sensitivity if detector == "p-chart" else value / sensitivity
    return dataclasses.replace(base, **{field: new})


def control_chart(
    series: pl.DataFrame,
    alarms: list[dict],
    mkt: str,
    ch: str,
    days: int = 120,
    *,
    incidents: list[dict] = (),
    selection: dict | None = None,
) -> alt.LayerChart:
    """Daily arrival rate with each day's baseline (`spikes.baseline_rates`), alarms marked by
    detector, incidents as bands. `selection` (live): the current alarm index into `alarms`,
    incident index into `incidents` and brushed days; clicks and brushes then reach Python."""
    s = series.filter((pl.col("marketplace_id") == mkt) & (pl.col("channel") == ch)).sort("day")
    arrived, exposure = s["arrived"].to_numpy().astype(float), np.maximum(s["exposure"].to_numpy(), 1.0)
    s = s.with_columns(
        (pl.col("arrived") / pl.col("exposure")).alias("rate"),
        pl.Series("baseline", spikes.baseline_rates(arrived, exposure)),
    ).tail(days)
    marks = pl.DataFrame(
        [
            {
                "alarm_id": i,
                "day": dt.date.fromisoformat(a["date"]),
                "detector": a["detector"],
                "observed": a["observed"],
                "expected": round(float(a["expected"]), 2),
            }
            for i, a in enumerate(alarms)
            if a["marketplaceId"] == mkt and a["channel"] == ch
        ],
        schema={
            "alarm_id": pl.Int64,
            "day": pl.Date,
            "detector": pl.String,
            "observed": pl.Int64,
            "expected": pl.Float64,
        },
    ).join(s.select("day", "rate"), on="day", how="inner")
    first_day = s["day"].min() if s.height else None
    bands = pl.DataFrame(
        [
            {
                "incident_id": i,
                "from": max(dt.date.fromisoformat(x["firstDay"]), first_day),
                "to": dt.date.fromisoformat(x["lastDay"]) + dt.timedelta(days=1),
                "first_day": x["firstDay"],
                "last_day": x["lastDay"],
                "observed": x["observed"],
                "expected": round(float(x["expected"]), 1),
            }
            for i, x in enumerate(incidents)
            if x["marketplaceId"] == mkt and x["channel"] == ch and first_day is not None
        ],
        schema={
            "incident_id": pl.Int64,
            "from": pl.Date,
            "to": pl.Date,
            "first_day": pl.String,
            "last_day": pl.String,
            "observed": pl.Int64,
            "expected": pl.Float64,
        },
    )
    live = selection is not None
    line = (
        alt.Chart(s)
        .mark_line(color="#555")
        .encode(
            x=alt.X("day:T", title=None),
            y=alt.Y("rate:Q", title="Defects arriving per order", axis=alt.Axis(format="%")),
            tooltip=[
                "day:T",
                "arrived:Q",
                alt.Tooltip("exposure:Q", format=",.0f"),
                alt.Tooltip("rate:Q", format=".2%"),
            ],
        )
    )
    rule = (
        alt.Chart(s)
        .mark_line(strokeDash=[4, 4], color="#2e7d32")
        .encode(x="day:T", y="baseline:Q", tooltip=["day:T", alt.Tooltip("baseline:Q", format=".2%")])
    )
    pts = (
        alt.Chart(marks)
        .mark_point(filled=True, size=110, cursor="pointer" if live else "default")
        .encode(
            x="day:T",
            y="rate:Q",
            color=alt.Color("detector:N", title="Alarm", legend=alt.Legend(orient="bottom")),
            tooltip=["day:T", "detector:N", "observed:Q", "expected:Q"],
        )
    )
    band = (
        alt.Chart(bands)
        .mark_rect(color="#ef6c00", cursor="pointer" if live else "default")
        .encode(
            x="from:T",
            x2="to:T",
            tooltip=[
                alt.Tooltip("first_day:N", title="incident from"),
                alt.Tooltip("last_day:N", title="to"),
                "observed:Q",
                "expected:Q",
            ],
        )
    )
    title = f"{marketplace_label(mkt)} · {wording.CHANNEL_LABEL[ch]}: defects by arrival day"
    if live:
        alarm = alt.selection_point(
            name="alarm",
            fields=["alarm_id"],
            toggle=False,
            value=alt.Undefined if selection.get("alarm") is None else [{"alarm_id": selection["alarm"]}],
        )
        incident = alt.selection_point(
            name="incident",
            fields=["incident_id"],
            toggle=False,
            value=alt.Undefined
            if selection.get("incident") is None
            else [{"incident_id": selection["incident"]}],
        )
        lo_hi = selection.get("range")
        brush = alt.selection_interval(
            name="range",
            encodings=["x"],
            value={
                "x": [
                    widgets.local_datetime(lo_hi[0]),
                    widgets.local_datetime(lo_hi[1] + dt.timedelta(days=1)),
                ]
            }
            if lo_hi
            else alt.Undefined,
        )
        pts = pts.add_params(alarm).encode(
            size=alt.condition(alarm, alt.value(220), alt.value(110), empty=False),
            stroke=alt.condition(alarm, alt.value("#000"), alt.value(None), empty=False),
        )
        band = band.add_params(incident).encode(
            opacity=alt.condition(incident, alt.value(0.35), alt.value(0.12), empty=False)
        )
        line = line.add_params(brush)
        title += ": click an alarm or an incident, or drag across days"
    else:
        band = band.encode(opacity=alt.value(0.15))
    return alt.layer(band, line, rule, pts).properties(
        title=charts.wrapped(title), width=LIVE_WIDTH if live else "container", height=220
    )


def nowcast_chart(
    series: pl.DataFrame, mkt: str, ch: str, days: int = 90, width: int | str = "container"
) -> alt.Chart:
    """Defects by order day as known now (too low for recent days: most have not arrived yet)
    next to the nowcast, which divides by the share expected to have arrived at that age."""
    s = series.filter((pl.col("marketplace_id") == mkt) & (pl.col("channel") == ch)).sort("day").tail(days)
    long = s.select(
        "day",
        pl.col("by_order_day").cast(pl.Float64).alias("known now"),
        pl.col("by_order_day_nowcast").alias("nowcast"),
    ).unpivot(index="day", variable_name="series", value_name="defects")
    title = f"{marketplace_label(mkt)} · {wording.CHANNEL_LABEL[ch]}: defects by order day"
    return (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("day:T", title="Order day"),
            y=alt.Y("defects:Q", title="Defective orders"),
            strokeDash=alt.StrokeDash("series:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=["day:T", "series:N", alt.Tooltip("defects:Q", format=".1f")],
        )
        .properties(title=charts.wrapped(title), width=width, height=180)
    )


def alarms_html(alarms: list[dict], limit: int = 40) -> str:
    if not alarms:
        return "<p><b>No spike.</b> No detector fired: the defects that arrived are in line with the account's own history at its volume.</p>"
    rows = []
    for a in alarms[:limit]:
        drv = "; ".join(
            f"{esc(k)}: " + ", ".join(f"{esc(x['value'])} ({x['defects']})" for x in v)
            for k, v in a["drivers"].items()
            if v
        )
        since = (
            f'<br><span class="muted">since {esc(a["windowStart"])}</span>'
            if a["windowStart"] != a["date"]
            else ""
        )
        rows.append(
            f"<tr><td>{esc(a['date'])}{since}</td><td>{esc(marketplace_label(a['marketplaceId']))}</td><td>{esc(a['channel'])}</td>"
            f"<td>{esc(a['detector'])}</td><td>{a['observed']}</td><td>{a['expected']:.2f}</td>"
            f"<td>{a['pValue']:.2g}</td><td>{drv}</td></tr>"
        )
    return (
        '<div class="scroll"><table class="ah"><thead><tr><th>Day</th><th>Marketplace</th><th>Channel</th><th>Detector</th>'
        "<th>Defects</th><th>Expected</th><th>p</th><th>Drivers (7 days)</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def drivers_chart(t: pl.DataFrame, title: str, top: int = 5) -> alt.FacetChart | str:
    """The causes, SKUs and carriers of some defects, the `top` of each, as bars."""
    if t.is_empty():
        return "<p>No defects.</p>"
    parts = []
    for col, label in (("cause", "Cause"), ("sku", "SKU"), ("carrier", "Carrier")):
        c = (
            t.group_by(col)
            .len("defects")
            .sort(["defects", col], descending=[True, False])
            .head(top)
            .select(
                pl.lit(label).alias("dimension"),
                (
                    pl.col(col).replace_strict(causes.CAUSE_LABELS, default=pl.col(col))
                    if col == "cause"
                    else pl.col(col)
                )
                .fill_null("unknown")
                .cast(pl.String)
                .alias("value"),
                "defects",
            )
        )
        parts.append(c)
    long = pl.concat(parts)
    return (
        alt.Chart(long)
        .mark_bar(color="#5c6bc0")
        .encode(
            x=alt.X("defects:Q", title="Defects"),
            y=alt.Y("value:N", sort="-x", title=None),
            tooltip=["dimension:N", "value:N", "defects:Q"],
        )
        .properties(width=260, height=alt.Step(16))
        .facet(row=alt.Row("dimension:N", title=None, sort=["Cause", "SKU", "Carrier"]))
        .resolve_scale(y="independent")
        .properties(title=charts.wrapped(title))
    )


DRILLDOWN_COLUMNS = {
    "order_id": "Order",
    "purchase_day": "Purchased",
    "defect_date": "Arrived",
    "defect_kind": "Kind",
    "cause_label": "Cause",
    "sku": "SKU",
    "carrier": "Carrier",
    "cause_text": "Comment / reason",
}


class SpikeExplorer:
    """Control charts with alarms and incidents, a detector and sensitivity picker, and the
    defects behind an alarm, an incident or a range of days."""

    def __init__(
        self,
        data: Dataset,
        as_of: dt.date,
        settings: Settings | None = None,
        *,
        interactive: bool = True,
        days: int = 120,
    ) -> None:
        self.data, self.as_of, self.interactive, self.days = data, as_of, interactive, days
        self.settings = settings or Settings()
        self.first = as_of - dt.timedelta(days=days - 1)
        self.series = spikes.nowcast(
            spikes.daily_series(data, as_of), spikes.delay_distribution(data, as_of), as_of
        )
        self.table = (
            defects.defect_table(data, as_of, self.settings.metrics)
            .filter(pl.col("defect_kind") != "return")
            .with_columns(
                pl.col("cause")
                .replace_strict(causes.CAUSE_LABELS, default=pl.col("cause"))
                .alias("cause_label")
            )
        )
        self.keys = (
            self.series.select("marketplace_id", "channel").unique().sort("marketplace_id", "channel").rows()
        )
        # incidents (runs of GLR alarms, as the report lists them) at the run's settings
        self.incidents = spikes.incidents(
            data, as_of, self.settings.spikes, first=self.first, series=self.series
        )
        live = interactive
        options = [(f"{marketplace_label(m)} {c}", (m, c)) for m, c in self.keys]
        if live:
            import ipywidgets as w

            series = w.Dropdown(options=options, value=self._default_series(), description="Series")
            detector = w.Dropdown(options=list(spikes.DETECTORS), value="glr", description="Detector")
            sensitivity = w.FloatLogSlider(
                value=1.0, base=10, min=-1, max=1, step=0.1, description="Sensitivity"
            )
        else:
            series = widgets.Fixed(self._default_series(), options)
            detector = widgets.Fixed("glr", list(spikes.DETECTORS))
            sensitivity = widgets.Fixed(1.0)
        self.controls = {"series": series, "detector": detector, "sensitivity": sensitivity}
        self._controls = widgets.Controls(self.controls, self.update)
        self.focus: tuple[str, object] = ("latest", None)
        self._charts: dict[str, widgets.LinkedChart] = {}
        self._boxes: dict = {}
        self.current: dict[str, object] = {}
        self.update()

    def value(self, name: str):
        return self.controls[name].value

    def _default_series(self) -> tuple[str, str] | None:
        """The series of the newest GLR alarm at the run's settings (the first series when none fired)."""
        found = [
            a
            for a in spikes.detect(
                self.data, self.as_of, self.settings.spikes, first=self.first, series=self.series
            )
            if a["detector"] == "glr"
        ]
        if found:
            a = max(found, key=lambda a: (a["date"], a["marketplaceId"], a["channel"]))
            return a["marketplaceId"], a["channel"]
        return self.keys[0] if self.keys else None

    def alarms(self) -> list[dict]:
        s = settings_for(self.value("detector"), self.value("sensitivity"), self.settings.spikes)
        found = spikes.detect(self.data, self.as_of, s, first=self.first, series=self.series)
        return [a for a in found if a["detector"] == self.value("detector")]

    # ------------------------------------------------------------------ the defects behind it
    def behind(self) -> tuple[str, pl.DataFrame]:
        """(heading, defects) of the focus: a clicked alarm or incident, a brushed range of days,
        or the newest alarm of the series."""
        mkt, ch = self.value("series")
        kind, what = self.focus
        if kind == "alarm" and what is not None and what < len(self._alarms):
            return self._alarm_defects(self._alarms[what])
        if kind == "incident" and what is not None and what < len(self.incidents):
            inc = self.incidents[what]
            lo, hi = dt.date.fromisoformat(inc["firstDay"]), dt.date.fromisoformat(inc["lastDay"])
            t = spikes.defects_between(self.table, inc["marketplaceId"], inc["channel"], lo, hi, inc["basis"])
            return f"Defects of the incident of {lo} to {hi}", t
        if kind == "range" and what:
            lo, hi = what
            return f"Defects that arrived {lo} to {hi}", spikes.defects_between(self.table, mkt, ch, lo, hi)
        return self._alarm_defects(self._mine[-1] if self._mine else None)

    def _alarm_defects(self, alarm: dict | None) -> tuple[str, pl.DataFrame]:
        if not alarm:
            return "", self.table.clear()
        day = dt.date.fromisoformat(alarm["date"])
        t = spikes.defects_behind(
            self.table, alarm["marketplaceId"], alarm["channel"], day, alarm.get("basis", "arrival")
        )
        return f"Defects behind the alarm of {day}", t

    def drilldown(self, heading: str, t: pl.DataFrame) -> str:
        if not heading:
            return "<p>Click an alarm to see the defects behind it.</p>"
        return f"<h3 class='ah-drill-heading'>{esc(heading)}</h3>" + table_html(t, DRILLDOWN_COLUMNS, 50)

    def _drill_views(self) -> None:
        heading, t = self.behind()
        self.current["drilldown"] = self.drilldown(heading, t)
        self.current["drivers"] = (
            drivers_chart(t, f"What drove it: {heading[0].lower() + heading[1:]}")
            if heading
            else ("<p>No alarm.</p>")
        )

    # ------------------------------------------------------------------ recompute and draw
    def update(self, changed: set[str] | None = None) -> None:
        mkt, ch = self.value("series")
        self._alarms = self.alarms()
        self._mine = [a for a in self._alarms if a["marketplaceId"] == mkt and a["channel"] == ch]
        self.focus = ("latest", None)  # a new chart: nothing clicked on it yet
        self.current = {
            "chart": control_chart(
                self.series,
                self._alarms,
                mkt,
                ch,
                self.days,
                incidents=self.incidents,
                selection={} if self.interactive else None,
            ),
            "nowcast": nowcast_chart(
                self.series, mkt, ch, width=LIVE_WIDTH if self.interactive else "container"
            ),
            "alarms": alarms_html(self._alarms),
        }
        self._drill_views()
        self._push(redraw=True)

    def _push(self, redraw: bool) -> None:
        if not self._charts:
            return
        if redraw:
            self._charts["chart"].set(self.current["chart"])
            self._charts["nowcast"].set(self.current["nowcast"])
        drivers = self.current["drivers"]
        if isinstance(drivers, str):
            self._boxes["drivers_note"].value = drivers
            self._charts["drivers"].widget.layout.display = "none"
        else:
            self._boxes["drivers_note"].value = ""
            self._charts["drivers"].widget.layout.display = None
            self._charts["drivers"].set(drivers)
        for name in ("alarms", "drilldown"):
            if self._boxes[name].value != self.current[name]:
                self._boxes[name].value = self.current[name]

    def _focus(self, kind: str, value: object) -> None:
        if value is not None:
            self.focus = (kind, value)
        elif self.focus[0] == kind:  # that selection was cleared
            self.focus = ("latest", None)
        else:
            return
        self._drill_views()
        self._push(redraw=False)

    def _on_alarm(self, selection) -> None:
        v = widgets.point_value(selection, "alarm_id")
        self._focus("alarm", None if v is None else int(v))

    def _on_incident(self, selection) -> None:
        v = widgets.point_value(selection, "incident_id")
        self._focus("incident", None if v is None else int(v))

    def _on_range(self, selection) -> None:
        self._focus("range", widgets.interval_days(selection, "day", self._charts["chart"].local_tz))

    def widget(self):
        import ipywidgets as w

        self._charts = {
            "chart": widgets.LinkedChart(
                "ah-chart-control",
                {"alarm": self._on_alarm, "incident": self._on_incident, "range": self._on_range},
                debounce_ms=200,
                while_dragging=False,
            ),
            "nowcast": widgets.LinkedChart("ah-chart-nowcast"),
            "drivers": widgets.LinkedChart("ah-chart-drivers"),
        }
        self._boxes = {
            name: widgets.html_box(f"ah-{name.replace('_', '-')}")
            for name in ("alarms", "drilldown", "drivers_note")
        }
        self._push(redraw=True)
        c = self.controls
        header = w.HTML(
            widgets.LIVE_CSS
            + f"<p class='muted'>Defects known on {esc(self.as_of)}. Click an alarm or an incident's band, or drag "
            "across days, to list the defects behind it.</p>"
        )
        box = w.VBox(
            [
                header,
                w.HBox([c["series"], c["detector"], c["sensitivity"]]),
                self._charts["chart"].widget,
                self._boxes["drilldown"],
                self._boxes["drivers_note"],
                self._charts["drivers"].widget,
                self._charts["nowcast"].widget,
                self._boxes["alarms"],
            ]
        )
        box.add_class("ah-explorer")
        return box

    def show_static(self) -> None:
        """Report mode: a control chart per series with every detector's alarms, and the alarms."""
        from IPython.display import HTML, display

        alarms = spikes.detect(
            self.data, self.as_of, self.settings.spikes, first=self.first, series=self.series
        )
        for mkt, ch in self.keys:
            display(control_chart(self.series, alarms, mkt, ch, self.days, incidents=self.incidents))
            display(nowcast_chart(self.series, mkt, ch))
        display(HTML(alarms_html(alarms)))
        heading, t = self._alarm_defects(alarms[-1] if alarms else None)
        display(HTML(self.drilldown(heading, t)))
        if heading:
            display(drivers_chart(t, f"What drove it: {heading[0].lower() + heading[1:]}"))
