"""The defects-by-cause explorer behind notebooks/defects_by_cause.ipynb.

`Explorer` holds the defect table and the views of one selection: a Pareto of causes, defects by
the week the orders were bought, SKUs and carriers with shrunk rates, the orders behind the
selection, the feedback-removal triage, the roll-off calendar and the what-if panel.

Live (a kernel with a browser), the charts are the controls: a click on a cause, a SKU or a
carrier selects it (a click on empty space clears it), a brush on the weekly chart sets the
purchase dates; every other chart and the orders table follow. Marketplace and channel, which
have no chart, stay dropdowns; the dates also have pickers. Headless (`interactive=False`,
papermill reports) the same views are drawn once for the default selection.

Every chart carries aggregated rows only (causes, weeks x causes, the top SKUs and carriers),
never an order, so a large account's notebook stays light.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl

from analysis import wording
from analysis.explore import widgets
from analysis.explore.whatif import WhatIf, WhatIfPanel
from analysis.explore.widgets import ALL
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.sources import Dataset
from analysis.insights import causes, defects, rolloff, triage
from analysis.metrics.settings import Settings
from analysis.report import charts
from analysis.report.kit import esc, table_html

WEEKS_SHOWN = 52  # the weekly chart's history (its rows: weeks x causes)
TOP = 15  # SKUs and carriers in their charts and tables
LIVE_WIDTH = 390  # px: a container width is 0 when a widget draws before it is on the page
SELECTIONS = ("cause", "sku", "carrier")
# chart -> (the selection it sets, the controls it is filtered by)
CHARTS = {
    "pareto": ("cause", {"marketplace", "channel", "start", "end", "sku", "carrier"}),
    "by_week": ("dates", {"marketplace", "channel", "cause", "sku", "carrier"}),
    "sku_chart": ("sku", {"marketplace", "channel", "start", "end", "cause", "carrier"}),
    "carrier_chart": ("carrier", {"marketplace", "channel", "start", "end", "cause", "sku"}),
}
DRILLDOWN_COLUMNS = {
    "order_id": "Order",
    "purchase_day": "Purchased",
    "defect_date": "Defect on",
    "defect_kind": "Kind",
    "cause_label": "Cause",
    "cause_words": "Because of",
    "sku": "SKU",
    "carrier": "Carrier",
    "cause_text": "Buyer comment / reason",
    "why_not_counted": "Not in ODR because",
}
NO_DEFECTS = "<p>No defects for this selection.</p>"


class Explorer:
    """Defects by cause, SKU, carrier and week for one account and day (see the module docstring)."""

    def __init__(
        self, data: Dataset, as_of: dt.date, settings: Settings, *, interactive: bool = True
    ) -> None:
        self.data, self.as_of, self.settings, self.interactive = data, as_of, settings, interactive
        self._width = LIVE_WIDTH if interactive else "container"
        self.table = defects.defect_table(data, as_of, settings.metrics).with_columns(
            pl.col("cause").replace_strict(causes.CAUSE_LABELS, default=pl.col("cause")).alias("cause_label")
        )
        self.triage = triage.triage(data, as_of)
        self.calendar = rolloff.calendar(data, as_of, settings.metrics)
        self.what_if = WhatIfPanel(
            WhatIf(data, as_of, settings, table=self.table, triaged=self.triage), interactive=interactive
        )
        # the default purchase dates are the (FBA) ODR window, so the rates equal
        # `python -m analysis defects --by sku` for the same day and settings
        self.window = defects.odr_def(settings.metrics, "AFN").window(as_of)
        first, last = self.window
        mkts = sorted(self.table["marketplace_id"].drop_nulls().unique().to_list())
        live = interactive
        self.controls = {
            "marketplace": widgets.dropdown(live, [ALL, *mkts], ALL, "Marketplace"),
            "channel": widgets.dropdown(live, [ALL, "AFN", "MFN"], ALL, "Channel"),
            "start": widgets.date_picker(live, first, "Bought from"),
            "end": widgets.date_picker(live, last, "Bought to"),
            # selections: set by clicks on the charts, not shown as controls of their own
            "cause": widgets.Selected(ALL),
            "sku": widgets.Selected(ALL),
            "carrier": widgets.Selected(ALL),
        }
        self._controls = widgets.Controls(self.controls, self.update)
        self._charts: dict[str, widgets.LinkedChart] = {}
        self._boxes: dict = {}
        self._from_chart: str | None = None
        self._all_orders: pl.DataFrame | None = None
        self.current: dict[str, object] = {}
        self.update()

    def value(self, name: str):
        return self.controls[name].value

    # ------------------------------------------------------------------ filtering
    def filtered(self, *, skip: set[str] | frozenset = frozenset()) -> pl.DataFrame:
        """The defects of the selection; `skip` leaves some filters out (a chart is not filtered
        by its own selection)."""
        t = self.table
        v = self.value
        if "marketplace" not in skip and v("marketplace") != ALL:
            t = t.filter(pl.col("marketplace_id") == v("marketplace"))
        if "channel" not in skip and v("channel") != ALL:
            t = t.filter(pl.col("channel").str.contains(v("channel")))
        if "dates" not in skip:
            if v("start"):
                t = t.filter(pl.col("purchase_day") >= v("start"))
            if v("end"):
                t = t.filter(pl.col("purchase_day") <= v("end"))
        if "cause" not in skip and v("cause") != ALL:
            t = t.filter(pl.col("cause") == v("cause"))
        if "sku" not in skip and v("sku") != ALL:
            sku = v("sku")
            t = t.filter(
                (pl.col("sku") == sku) | pl.col("skus").str.split(", ").list.contains(pl.lit(sku, pl.String))
            )
        if "carrier" not in skip and v("carrier") != ALL:
            t = t.filter(pl.col("carrier") == v("carrier"))
        return t

    def _orders(self) -> pl.DataFrame:
        """Every order not cancelled, one row per order and item, as
        `defects.breakdown` counts them (`defects.orders_in`): read once, so a click on a large
        account filters this frame instead of grouping every order item again."""
        if self._all_orders is None:
            self._all_orders = defects.orders_in(self.data, dt.date(1900, 1, 1), dt.date(2999, 12, 31))
        return self._all_orders

    def _breakdown(self, by: str, t: pl.DataFrame | None = None) -> pl.DataFrame:
        """`defects.breakdown` by "sku" or "carrier" for the marketplace, channel and dates, over
        the defects `t` (all of them by default), on the orders read once (`_orders`): the same
        rows, rates and shrinkage as `python -m analysis defects --by` (tests/test_render_notebooks
        compares them for several selections)."""
        if by not in ("sku", "carrier"):
            raise ValueError(by)
        mkt = None if self.value("marketplace") == ALL else self.value("marketplace")
        ch = None if self.value("channel") == ALL else self.value("channel")
        first, last = self.value("start"), self.value("end")
        if first is None or last is None:
            first, last = self.window
        odr = defects.odr_def(self.settings.metrics, ch or "AFN")
        t = self.table if t is None else t
        orders = self._orders().filter(pl.col("purchase_day").is_between(first, last))
        t, orders = defects.in_period(t, orders, first, last, mkt, ch)
        if by == "sku":
            den = (
                orders.group_by("item_sku")
                .agg(pl.col("order_id").n_unique().alias("orders"))
                .rename({"item_sku": by})
            )
            items = orders.select("order_id", pl.col("item_sku").alias(by)).unique()
            num = (
                t.select("order_id")
                .unique()
                .join(items, on="order_id")
                .group_by(by)
                .agg(pl.len().alias("defects"))
            )
        else:
            den = orders.group_by(by).agg(pl.col("order_id").n_unique().alias("orders"))
            num = t.group_by(by).agg(pl.col("order_id").n_unique().alias("defects"))
        per = (
            den.join(num, on=by, how="left")
            .with_columns(pl.col("defects").fill_null(0))
            .sort(by)
            .filter(pl.col("orders") > 0)
            .with_columns(pl.col("defects").cast(pl.Int64), pl.col("orders").cast(pl.Int64))
            .with_columns((pl.col("defects") / pl.col("orders")).alias("rate"))
        )
        if per.is_empty():
            return per.rename({by: "value"}).with_columns(
                pl.lit(None, pl.Float64).alias("shrunk_rate"),
                pl.lit(None, pl.Float64).alias("p_above_target"),
            )
        return (
            defects.shrink(per, odr.target)
            .rename({by: "value"})
            .with_columns(pl.lit(by).alias("dimension"))
            .sort(["shrunk_rate", "value"], descending=[True, False])
        )

    @property
    def _target(self) -> float:
        return defects.odr_def(self.settings.metrics, "AFN").target

    # ------------------------------------------------------------------ charts
    def _select(self, name: str, field: str):
        """A click selection on `field`, starting at the current value (None headless)."""
        if not self.interactive:
            return None
        current = self.value(name)
        return alt.selection_point(
            name=name,
            fields=[field],
            value=alt.Undefined if current == ALL else [{field: current}],
            toggle=False,
            clear="dblclick",
        )

    def pareto(self, t: pl.DataFrame) -> alt.LayerChart:
        counts = (
            t.group_by("cause")
            .len("defects")
            .sort(["defects", "cause"], descending=[True, False])
            .with_columns(
                (pl.col("defects").cum_sum() / pl.col("defects").sum()).alias("cumulative"),
                pl.col("cause").replace_strict(causes.CAUSE_LABELS, default=pl.col("cause")).alias("label"),
            )
        )
        order = counts["label"].to_list()
        base = alt.Chart(counts).encode(
            x=alt.X("label:N", sort=order, title=None, axis=alt.Axis(labelAngle=-35, labelLimit=120))
        )
        bars = base.mark_bar(cursor="pointer").encode(
            y=alt.Y("defects:Q", title="Defects"), tooltip=["label", "defects"]
        )
        sel = self._select("cause", "cause")
        if sel is not None:
            bars = bars.add_params(sel).encode(
                opacity=alt.condition(sel, alt.value(1.0), alt.value(0.35), empty=True)
            )
        line = base.mark_line(point=True, color="#c62828").encode(
            y=alt.Y("cumulative:Q", axis=alt.Axis(format="%", title="Cumulative share"))
        )
        title = "Defects by cause (Pareto)" + (": click a bar to select a cause" if sel is not None else "")
        return (
            alt.layer(bars, line)
            .resolve_scale(y="independent")
            .properties(title=charts.wrapped(title), width=self._width, height=220)
        )

    def by_week(self, t: pl.DataFrame) -> alt.Chart:
        """ODR defects by the week their orders were bought (the explorer's dates are purchase
        dates): live, a brush on it sets them."""
        since = self.as_of - dt.timedelta(weeks=WEEKS_SHOWN)
        weekly = (
            t.filter(pl.col("purchase_day").is_not_null() & (pl.col("purchase_day") >= since))
            .with_columns(pl.col("purchase_day").dt.truncate("1w").alias("week"))
            .group_by("week", "cause")
            .len("defects")
            .with_columns(
                pl.col("cause").replace_strict(causes.CAUSE_LABELS, default=pl.col("cause")).alias("cause"),
                (pl.col("week") + pl.duration(days=7)).alias("week_end"),
            )
            .sort("week", "cause")
            # stacked by hand: a bar spanning its week (x to x2) is not stacked by Vega-Lite
            .with_columns(pl.col("defects").cum_sum().over("week").alias("top"))
            .with_columns((pl.col("top") - pl.col("defects")).alias("bottom"))
        )
        chart = (
            alt.Chart(weekly)
            .mark_bar(stroke="white", strokeWidth=0.5)
            .encode(
                x=alt.X("week:T", title="Week the orders were bought"),
                x2="week_end:T",
                y=alt.Y("bottom:Q", title="Defects"),
                y2="top:Q",
                color=alt.Color("cause:N", title="Cause", legend=alt.Legend(orient="bottom", columns=4)),
                tooltip=[alt.Tooltip("week:T", title="Week of"), "cause:N", "defects:Q"],
            )
        )
        title = "Defects by week and cause"
        if self.interactive:
            start, end = self.value("start"), self.value("end")
            brush = alt.selection_interval(
                name="dates",
                encodings=["x"],
                value={
                    "x": [widgets.local_datetime(start), widgets.local_datetime(end + dt.timedelta(days=1))]
                }
                if start and end
                else alt.Undefined,
            )
            chart = chart.add_params(brush)
            title += ": drag across weeks to set the purchase dates"
        return chart.properties(title=charts.wrapped(title), width=self._width, height=220)

    def _rate_chart(self, df: pl.DataFrame, dim: str, title: str) -> alt.LayerChart:
        """Top groups by shrunk rate, as horizontal bars (the raw rate as a tick), the target as a rule."""
        top = (
            df.head(TOP)
            .select(pl.col("value").alias(dim), "orders", "defects", "rate", "shrunk_rate", "p_above_target")
            .with_columns(pl.lit(self._target).alias("target"))
        )
        order = top[dim].to_list()
        base = alt.Chart(top).encode(y=alt.Y(f"{dim}:N", sort=order, title=None))
        tips = [
            f"{dim}:N",
            "defects:Q",
            "orders:Q",
            alt.Tooltip("rate:Q", format=".2%"),
            alt.Tooltip("shrunk_rate:Q", format=".2%", title="shrunk rate"),
            alt.Tooltip("p_above_target:Q", format=".2f", title="P(rate > target)"),
        ]
        bars = base.mark_bar(cursor="pointer").encode(
            x=alt.X("shrunk_rate:Q", title="Shrunk defect rate", axis=alt.Axis(format="%")), tooltip=tips
        )
        sel = self._select(dim, dim)
        if sel is not None:
            bars = bars.add_params(sel).encode(opacity=alt.condition(sel, alt.value(1.0), alt.value(0.35)))
            title += ": click a bar to select it"
        ticks = base.mark_tick(color="#333", thickness=2).encode(x="rate:Q", tooltip=tips)
        rule = alt.Chart(top.head(1)).mark_rule(color="#c62828", strokeDash=[4, 3]).encode(x="target:Q")
        return alt.layer(bars, ticks, rule).properties(
            title=charts.wrapped(title), width=self._width, height=max(80, 18 * len(order))
        )

    # ------------------------------------------------------------------ tables
    def drilldown(self, t: pl.DataFrame, limit: int = 100) -> str:
        what = [
            f"{label} {esc(self._shown(name))}"
            for name, label in (("cause", "cause"), ("sku", "SKU"), ("carrier", "carrier"))
            if self.value(name) != ALL
        ]
        sel = ("; ".join(what) + ", ") if what else ""
        dates = f"bought {esc(self.value('start'))} to {esc(self.value('end'))}"
        return (
            f"<h3>The orders behind it</h3><p class='muted ah-selection'>{sel}{dates}: "
            f"{wording.count(t.height, 'defect')}</p>" + table_html(t, DRILLDOWN_COLUMNS, limit)
        )

    def _shown(self, name: str) -> str:
        v = self.value(name)
        return causes.CAUSE_LABELS.get(v, v) if name == "cause" else v

    def _rates_table(self, df: pl.DataFrame, heading: str, first: str) -> str:
        shrunk = {
            "orders": "Orders",
            "defects": "Defective",
            "rate": "Rate",
            "shrunk_rate": "Shrunk rate",
            "p_above_target": f"P(rate > {wording.pct(self._target, 1)})",
        }
        return heading + table_html(df, {"value": first, **shrunk}, TOP)

    # ------------------------------------------------------------------ all views
    def views(self) -> dict[str, object]:
        t = self.filtered()
        selection = {n: self.value(n) for n in SELECTIONS if self.value(n) != ALL}
        sku_rates = self._breakdown("sku", self.filtered(skip={"sku", "dates", "marketplace", "channel"}))
        carrier_rates = self._breakdown(
            "carrier", self.filtered(skip={"carrier", "dates", "marketplace", "channel"})
        )
        filtered_note = (
            " (the selected "
            + ", ".join("cause" if n == "cause" else n.upper() if n == "sku" else n for n in selection)
            + "'s defects over all the orders)"
            if selection
            else ""
        )
        pareto_t = self.filtered(skip={"cause"}).filter(pl.col("defect_kind") != "return")
        week_t = self.filtered(skip={"dates"}).filter(pl.col("defect_kind") != "return")
        return {
            "pareto": self.pareto(pareto_t) if pareto_t.height else NO_DEFECTS,
            "by_week": self.by_week(week_t) if week_t.height else NO_DEFECTS,
            "sku_chart": self._rate_chart(sku_rates, "sku", "SKUs by shrunk rate")
            if sku_rates.height
            else NO_DEFECTS,
            "carrier_chart": self._rate_chart(carrier_rates, "carrier", "Carriers by shrunk rate")
            if carrier_rates.height
            else NO_DEFECTS,
            "skus": self._rates_table(
                sku_rates,
                "<h3>SKUs (shrunk rates: a SKU with 1 defect in 2 orders does not top the list)"
                f"{esc(filtered_note)}</h3>",
                "SKU",
            ),
            "carriers": self._rates_table(carrier_rates, f"<h3>Carriers{esc(filtered_note)}</h3>", "Carrier"),
            "drilldown": self.drilldown(t),
            "triage": "<h3>Feedback-removal triage</h3>" + table_html(self.triage, triage.COLUMNS, 50),
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

    def update(self, changed: set[str] | None = None) -> None:
        """Recompute every view; live, redraw the charts and tables that depend on what changed."""
        self.current = self.views()
        if self._charts:
            self._push(changed)

    # ------------------------------------------------------------------ live
    def _push(self, changed: set[str] | None) -> None:
        for name, linked in self._charts.items():
            own, deps = CHARTS[name]
            own_names = {"start", "end"} if own == "dates" else {own}
            mine = self._from_chart == name
            if changed is None or changed & deps or (changed & own_names and not mine):
                view = self.current[name]
                if isinstance(view, str):
                    linked.set(alt.Chart(pl.DataFrame({"x": []})).mark_text().properties(title="No defects"))
                else:
                    linked.set(view)
        for name, box in self._boxes.items():
            if box.value != self.current[name]:
                box.value = self.current[name]

    def _on_point(self, chart: str, name: str):
        def callback(selection) -> None:
            value = widgets.point_value(selection, name)
            self._from_chart = chart
            try:
                self._controls.set(**{name: ALL if value is None else str(value)})
            finally:
                self._from_chart = None

        return callback

    def _on_brush(self, selection) -> None:
        days = widgets.interval_days(selection, "week", self._charts["by_week"].local_tz)
        self._from_chart = "by_week" if days else None  # a cleared brush is drawn again at the window
        try:
            first, last = days or self.window
            self._controls.set(start=first, end=last)
        finally:
            self._from_chart = None

    def clear(self, _=None) -> None:
        """Back to the default selection: every cause, SKU and carrier, the ODR window."""
        first, last = self.window
        self._controls.set(cause=ALL, sku=ALL, carrier=ALL, start=first, end=last)

    def widget(self):
        import ipywidgets as w

        self._charts = {
            "pareto": widgets.LinkedChart("ah-chart-cause", {"cause": self._on_point("pareto", "cause")}),
            "by_week": widgets.LinkedChart(
                "ah-chart-week", {"dates": self._on_brush}, debounce_ms=300, while_dragging=False
            ),
            "sku_chart": widgets.LinkedChart("ah-chart-sku", {"sku": self._on_point("sku_chart", "sku")}),
            "carrier_chart": widgets.LinkedChart(
                "ah-chart-carrier", {"carrier": self._on_point("carrier_chart", "carrier")}
            ),
        }
        self._boxes = {
            name: widgets.html_box(f"ah-{name}")
            for name in ("skus", "carriers", "drilldown", "triage", "calendar")
        }
        self._push(None)
        c = self.controls
        clear = w.Button(description="Clear selection", icon="times")
        clear.on_click(self.clear)
        header = w.HTML(
            widgets.LIVE_CSS
            + f"<p class='muted'>Defects known on {esc(self.as_of)}. Click a cause, SKU or carrier to select it "
            "(double-click the chart to clear it); drag across the weekly chart to set the purchase dates.</p>"
        )
        ch = self._charts
        b = self._boxes
        box = w.VBox(
            [
                header,
                w.HBox([c["marketplace"], c["channel"]]),
                w.HBox([c["start"], c["end"], clear]),
                w.HBox([ch["pareto"].widget, ch["by_week"].widget]),
                w.HBox([ch["sku_chart"].widget, ch["carrier_chart"].widget]),
                b["drilldown"],
                b["skus"],
                b["carriers"],
                self.what_if.widget(),
                b["triage"],
                b["calendar"],
            ]
        )
        for row in box.children[3:5]:
            for child in row.children:
                child.layout = w.Layout(width="50%", min_width="320px")
            row.layout = w.Layout(flex_flow="row wrap", width="100%")
        box.add_class("ah-explorer")
        return box

    def show_static(self) -> None:
        """Report mode: the views for the default selection, without widgets."""
        from IPython.display import HTML, display

        labels = ", ".join(esc(marketplace_label(x)) for x in self.controls["marketplace"].options[1:])
        display(HTML(f"<p class='muted'>Defects known on {esc(self.as_of)} · marketplaces {labels}</p>"))
        order = ["pareto", "by_week", "sku_chart", "carrier_chart", "drilldown", "skus", "carriers"]
        for name in order:
            v = self.current[name]
            display(HTML(v) if isinstance(v, str) else v)
        display(HTML(self.what_if.static_html()))
        for name in ("triage", "calendar"):
            display(HTML(self.current[name]))
