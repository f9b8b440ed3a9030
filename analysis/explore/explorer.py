"""The defects-by-cause explorer behind notebooks/defects_by_cause.ipynb.

`Explorer` holds the defect table, ipywidgets controls (marketplace, channel, purchase dates,
cause, SKU) and the views they drive; the notebook only displays it. With `interactive=False`
(papermill reports) the same views are shown once, statically.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl

from analysis import wording
from analysis.explore.widgets import ViewPanel
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.sources import Dataset
from analysis.insights import causes, defects, rolloff, triage
from analysis.metrics.settings import Settings
from analysis.report import charts
from analysis.report.kit import esc, table_html

ALL = "all"


class Explorer(ViewPanel):
    def __init__(
        self, data: Dataset, as_of: dt.date, settings: Settings, *, interactive: bool = True
    ) -> None:
        import ipywidgets as w

        self.data, self.as_of, self.settings, self.interactive = data, as_of, settings, interactive
        self._init_panel()
        self.table = defects.defect_table(data, as_of, settings.metrics)
        self.triage = triage.triage(data, as_of)
        self.calendar = rolloff.calendar(data, as_of, settings.metrics)
        # the default purchase dates are the (FBA) ODR window, so the rates equal
        # `python -m analysis defects --by sku` for the same day and settings
        first, last = defects.odr_def(settings.metrics, "AFN").window(as_of)
        mkts = sorted(self.table["marketplace_id"].drop_nulls().unique().to_list())
        skus = sorted(self.table["sku"].drop_nulls().unique().to_list())
        self.controls = {
            "marketplace": w.Dropdown(options=[ALL, *mkts], value=ALL, description="Marketplace"),
            "channel": w.Dropdown(options=[ALL, "AFN", "MFN"], value=ALL, description="Channel"),
            "start": w.DatePicker(value=first, description="Bought from"),
            "end": w.DatePicker(value=last, description="Bought to"),
            "cause": w.Dropdown(options=[ALL, *causes.CAUSES], value=ALL, description="Cause"),
            "sku": w.Dropdown(options=[ALL, *skus], value=ALL, description="SKU"),
        }
        for c in self.controls.values():
            c.observe(self.update, names="value")
        self.update()

    # ------------------------------------------------------------------ filtering
    def filtered(self) -> pl.DataFrame:
        t = self.table
        if self.value("marketplace") != ALL:
            t = t.filter(pl.col("marketplace_id") == self.value("marketplace"))
        if self.value("channel") != ALL:
            t = t.filter(pl.col("channel").str.contains(self.value("channel")))
        if self.value("start"):
            t = t.filter(pl.col("purchase_day") >= self.value("start"))
        if self.value("end"):
            t = t.filter(pl.col("purchase_day") <= self.value("end"))
        if self.value("cause") != ALL:
            t = t.filter(pl.col("cause") == self.value("cause"))
        if self.value("sku") != ALL:
            t = t.filter(pl.col("skus").str.contains(self.value("sku"), literal=True))
        return t

    def _breakdown(self, by: str) -> pl.DataFrame:
        mkt = None if self.value("marketplace") == ALL else self.value("marketplace")
        ch = None if self.value("channel") == ALL else self.value("channel")
        return defects.breakdown(
            self.data,
            self.as_of,
            by,
            self.settings.metrics,
            first=self.value("start"),
            last=self.value("end"),
            defects=self.table,
            marketplace=mkt,
            channel=ch,
        )

    # ------------------------------------------------------------------ views
    def pareto(self, t: pl.DataFrame) -> alt.LayerChart:
        counts = (
            t.group_by("cause")
            .len("defects")
            .sort(["defects", "cause"], descending=[True, False])
            .with_columns(
                (pl.col("defects").cum_sum() / pl.col("defects").sum()).alias("cumulative"),
                pl.col("cause").replace_strict(causes.CAUSE_LABELS).alias("label"),
            )
        )
        order = counts["label"].to_list()
        base = alt.Chart(counts).encode(x=alt.X("label:N", sort=order, title=None))
        bars = base.mark_bar().encode(y=alt.Y("defects:Q", title="Defects"), tooltip=["label", "defects"])
        line = base.mark_line(point=True, color="#c62828").encode(
            y=alt.Y("cumulative:Q", axis=alt.Axis(format="%", title="Cumulative share"))
        )
        return (
            alt.layer(bars, line)
            .resolve_scale(y="independent")
            .properties(title=charts.wrapped("Defects by cause (Pareto)"), width="container", height=220)
        )

    def by_week(self, t: pl.DataFrame) -> alt.Chart:
        weekly = (
            t.with_columns(pl.col("defect_date").dt.truncate("1w").alias("week"))
            .group_by("week", "cause")
            .len("defects")
            .with_columns(pl.col("cause").replace_strict(causes.CAUSE_LABELS).alias("cause"))
            .sort("week", "cause")
        )
        return (
            alt.Chart(weekly)
            .mark_bar()
            .encode(
                x=alt.X("week:T", title="Week the defect arrived"),
                y=alt.Y("defects:Q", title="Defects"),
                color=alt.Color("cause:N", title="Cause"),
                tooltip=["week:T", "cause:N", "defects:Q"],
            )
            .properties(title=charts.wrapped("Defects by week and cause"), width="container", height=220)
        )

    def drilldown(self, t: pl.DataFrame, limit: int = 100) -> str:
        cols = {
            "order_id": "Order",
            "purchase_day": "Purchased",
            "defect_date": "Defect on",
            "defect_kind": "Kind",
            "cause": "Cause",
            "cause_words": "Because of",
            "sku": "SKU",
            "carrier": "Carrier",
            "cause_text": "Buyer comment / reason",
            "why_not_counted": "Not in ODR because",
        }
        return "<h3>The orders behind it</h3>" + table_html(t, cols, limit)

    def views(self) -> dict[str, object]:
        t = self.filtered()
        odr = t.filter(pl.col("defect_kind") != "return")
        shrunk = {
            "orders": "Orders",
            "defects": "Defective",
            "rate": "Rate",
            "shrunk_rate": "Shrunk rate",
            "p_above_target": f"P(rate > {wording.pct(defects.odr_def(self.settings.metrics, 'AFN').target, 1)})",
        }
        return {
            "pareto": self.pareto(odr) if odr.height else "<p>No defects for this selection.</p>",
            "by_week": self.by_week(odr) if odr.height else "<p>No defects for this selection.</p>",
            "skus": "<h3>SKUs (shrunk rates: a SKU with 1 defect in 2 orders does not top the list)</h3>"
            + table_html(self._breakdown("sku"), {"value": "SKU", **shrunk}, 15),
            "carriers": "<h3>Carriers</h3>"
            + table_html(self._breakdown("carrier"), {"value": "Carrier", **shrunk}, 15),
            "drilldown": self.drilldown(t),
            "triage": "<h3>Feedback-removal triage</h3>"
            + table_html(
                self.triage,
                triage.COLUMNS,
                50,
            ),
            "calendar": "<h3>Roll-off calendar</h3>"
            + table_html(
                self.calendar,
                {
                    "order_id": "Order",
                    "marketplace_id": "Marketplace",
                    "channel": "Channel",
                    "purchase_day": "Purchased",
                    "leaves_window": "Leaves the ODR window on",
                    "days_left": "Days left",
                },
                100,
            ),
        }

    def update(self, change=None) -> None:
        """The controls' callback: recompute every view and redraw them in the output area."""
        self.current = self.views()
        self._render()

    def show_static(self) -> None:
        """Report mode: the views for the default selection, without widgets."""
        from IPython.display import HTML, display

        labels = ", ".join(esc(marketplace_label(x)) for x in self.controls["marketplace"].options[1:])
        display(HTML(f"<p class='muted'>Defects known on {esc(self.as_of)} · marketplaces {labels}</p>"))
        for v in self.current.values():
            display(HTML(v) if isinstance(v, str) else v)
