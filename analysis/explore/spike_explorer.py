"""Views of spike detection for notebooks/spike_detection.ipynb and the weekly report."""

from __future__ import annotations

import dataclasses
import datetime as dt

import altair as alt
import numpy as np
import polars as pl

from analysis import wording
from analysis.explore.widgets import ViewPanel
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.sources import Dataset
from analysis.insights import defects, spikes
from analysis.metrics.settings import Settings
from analysis.report import charts
from analysis.report.kit import esc, table_html

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
    series: pl.DataFrame, alarms: list[dict], mkt: str, ch: str, days: int = 120
) -> alt.LayerChart:
    """Daily arrival rate with each day's baseline (`spikes.baseline_rates`), alarms marked by
    detector."""
    s = series.filter((pl.col("marketplace_id") == mkt) & (pl.col("channel") == ch)).sort("day")
    arrived, exposure = s["arrived"].to_numpy().astype(float), np.maximum(s["exposure"].to_numpy(), 1.0)
    s = s.with_columns(
        (pl.col("arrived") / pl.col("exposure")).alias("rate"),
        pl.Series("baseline", spikes.baseline_rates(arrived, exposure)),
    ).tail(days)
    marks = pl.DataFrame(
        [
            {"day": dt.date.fromisoformat(a["date"]), "detector": a["detector"], "observed": a["observed"]}
            for a in alarms
            if a["marketplaceId"] == mkt and a["channel"] == ch
        ],
        schema={"day": pl.Date, "detector": pl.String, "observed": pl.Int64},
    ).join(s.select("day", "rate"), on="day", how="inner")
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
        .mark_point(filled=True, size=80)
        .encode(
            x="day:T",
            y="rate:Q",
            color=alt.Color("detector:N", title="Alarm", legend=alt.Legend(orient="bottom")),
            tooltip=["day:T", "detector:N", "observed:Q"],
        )
    )
    title = f"{marketplace_label(mkt)} · {wording.CHANNEL_LABEL[ch]}: defects by arrival day"
    return alt.layer(line, rule, pts).properties(title=charts.wrapped(title), width="container", height=200)


def nowcast_chart(series: pl.DataFrame, mkt: str, ch: str, days: int = 90) -> alt.Chart:
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
        .properties(title=charts.wrapped(title), width="container", height=180)
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


class SpikeExplorer(ViewPanel):
    """Control charts with alarms, a detector and sensitivity picker, and the defects behind an alarm."""

    def __init__(
        self,
        data: Dataset,
        as_of: dt.date,
        settings: Settings | None = None,
        *,
        interactive: bool = True,
        days: int = 120,
    ) -> None:
        import ipywidgets as w

        self.data, self.as_of, self.interactive, self.days = data, as_of, interactive, days
        self._init_panel()
        self.row_split = 2
        self.series = spikes.nowcast(
            spikes.daily_series(data, as_of), spikes.delay_distribution(data, as_of), as_of
        )
        self.settings = settings or Settings()
        self.table = defects.defect_table(data, as_of, self.settings.metrics).filter(
            pl.col("defect_kind") != "return"
        )
        self.keys = (
            self.series.select("marketplace_id", "channel").unique().sort("marketplace_id", "channel").rows()
        )
        self.controls = {
            "series": w.Dropdown(
                options=[(f"{marketplace_label(m)} {c}", (m, c)) for m, c in self.keys], description="Series"
            ),
            "detector": w.Dropdown(options=list(spikes.DETECTORS), value="glr", description="Detector"),
            "sensitivity": w.FloatLogSlider(
                value=1.0, base=10, min=-1, max=1, step=0.1, description="Sensitivity"
            ),
            "alarm": w.Dropdown(options=[], description="Alarm"),
        }
        for name, c in self.controls.items():
            c.observe(self.update if name != "alarm" else self._drill, names="value")
        self.update()

    def alarms(self) -> list[dict]:
        s = settings_for(self.value("detector"), self.value("sensitivity"), self.settings.spikes)
        first = self.as_of - dt.timedelta(days=self.days - 1)
        found = spikes.detect(self.data, self.as_of, s, first=first, series=self.series)
        return [a for a in found if a["detector"] == self.value("detector")]

    def drilldown(self, alarm: dict | None) -> str:
        if not alarm:
            return "<p>Pick an alarm to see the defects behind it.</p>"
        day = dt.date.fromisoformat(alarm["date"])
        t = spikes.defects_behind(
            self.table, alarm["marketplaceId"], alarm["channel"], day, alarm.get("basis", "arrival")
        )
        return f"<h3>Defects behind the alarm of {esc(day)}</h3>" + table_html(
            t,
            {
                "order_id": "Order",
                "defect_date": "Arrived",
                "defect_kind": "Kind",
                "cause": "Cause",
                "sku": "SKU",
                "carrier": "Carrier",
                "cause_text": "Comment / reason",
            },
            50,
        )

    def update(self, change=None) -> None:
        mkt, ch = self.value("series")
        alarms = self.alarms()
        mine = [a for a in alarms if a["marketplaceId"] == mkt and a["channel"] == ch]
        self._mine = mine
        self._updating = True  # changing the options fires the alarm picker; draw once, below
        try:
            self.controls["alarm"].options = [(a["date"], i) for i, a in enumerate(mine)]
        finally:
            self._updating = False
        self.current = {
            "chart": control_chart(self.series, alarms, mkt, ch, self.days),
            "nowcast": nowcast_chart(self.series, mkt, ch),
            "alarms": alarms_html(alarms),
            "drilldown": self.drilldown(mine[-1] if mine else None),
        }
        self._render()

    def _drill(self, change=None) -> None:
        if getattr(self, "_updating", False):
            return
        i = self.value("alarm")
        self.current["drilldown"] = self.drilldown(
            self._mine[i] if i is not None and i < len(self._mine) else None
        )
        self._render()

    def show_static(self) -> None:
        """Report mode: a control chart per series with every detector's alarms, and the alarms."""
        from IPython.display import HTML, display

        first = self.as_of - dt.timedelta(days=self.days - 1)
        alarms = spikes.detect(self.data, self.as_of, self.settings.spikes, first=first, series=self.series)
        for mkt, ch in self.keys:
            display(control_chart(self.series, alarms, mkt, ch, self.days))
            display(nowcast_chart(self.series, mkt, ch))
        display(HTML(alarms_html(alarms)))
        display(HTML(self.drilldown(alarms[-1] if alarms else None)))
