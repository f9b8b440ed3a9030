"""The what-if panel of notebooks/defects_by_cause.ipynb: move the ODR target, the window, the
daily volume and the removal requests granted, and read the status, the p-value and the day the
rate goes under target.

Nothing is recomputed here by hand: the counts and the projection are `rolloff.forecast` on the
run's settings with the target and window changed, the status and p-value `stats.judge`, the
removal candidates `triage.triage` (removable or struck-through feedback still in time, nearest
deadline first), the defect-free orders still needed `defects.orders_needed`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import polars as pl

from analysis import wording
from analysis.explore import widgets
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.sources import Dataset
from analysis.insights import defects, rolloff, triage
from analysis.metrics import stats
from analysis.metrics.settings import Settings
from analysis.report.kit import badge, esc, table_html

GRANTED = (triage.REMOVABLE, triage.STRIKE)  # the verdicts triage.what_if counts as removed
LIVE_SECONDS = 0.5  # slower than this per answer, the sliders answer on release


@dataclasses.dataclass(frozen=True)
class Scenario:
    target: float
    window_days: int
    daily_volume: float
    removals: int = 0


class WhatIf:
    """What-if computations for one account and day, per marketplace and channel."""

    def __init__(
        self,
        data: Dataset,
        as_of: dt.date,
        settings: Settings,
        *,
        table: pl.DataFrame | None = None,
        triaged: pl.DataFrame | None = None,
    ) -> None:
        self.data, self.as_of, self.settings = data, as_of, settings
        self.table = table if table is not None else defects.defect_table(data, as_of, settings.metrics)
        self.triaged = triaged if triaged is not None else triage.triage(data, as_of)
        self._after: dict[tuple[str, ...], Dataset] = {}
        self._volume: dict[tuple[str, str], float] = {}
        self._now: dict[tuple[str, int], dict[str, int]] = {}
        self._candidates: dict[tuple[str, str], pl.DataFrame] = {}
        self.recent_volume("", "")  # one forecast gives every series and its recent volume
        self.series: list[tuple[str, str]] = sorted(self._volume)

    # ------------------------------------------------------------------ inputs of a scenario
    def default(self, mkt: str, ch: str) -> Scenario:
        d = self.settings.odr(ch)
        return Scenario(d.target, d.window_days, self.recent_volume(mkt, ch), 0)

    def recent_volume(self, mkt: str, ch: str) -> float:
        """The mean daily orders of the last 28 days, as the roll-off forecast assumes: read off
        `rolloff.forecast` on the first day whose window holds only future days."""
        if not self._volume:
            f = rolloff.forecast(self.data, self.as_of, self.settings.metrics, horizon=self._horizon())
            for (m, c), g in f.group_by("marketplace_id", "channel"):
                d = self.settings.odr(c)
                ahead = self.as_of + dt.timedelta(days=d.lag_days + d.window_days)
                last = g.filter((pl.col("scenario") == rolloff.RECENT) & (pl.col("day") == ahead))
                self._volume[(m, c)] = float(last["orders"][0]) / d.window_days if last.height else 0.0
                today = g.filter((pl.col("scenario") == rolloff.RECENT) & (pl.col("day") == self.as_of))
                if today.height:  # the defects now at the run's window, for the removals' count
                    self._now.setdefault((c, d.window_days), {})[m] = int(today["defects"][0])
        return self._volume.get((mkt, ch), 0.0)

    def candidates(self, mkt: str, ch: str) -> pl.DataFrame:
        """Negative feedback Amazon would remove or strike through, still in time, on orders whose
        defect counts toward this ODR now: nearest deadline first."""
        if (mkt, ch) in self._candidates:
            return self._candidates[(mkt, ch)]
        counted = self.table.filter(
            pl.col("counts_toward_odr")
            & (pl.col("defect_kind") == "negative_feedback")
            & (pl.col("marketplace_id") == mkt)
            & pl.col("channel").str.contains(ch)
        )["order_id"]
        found = self.triaged.filter(
            (pl.col("marketplace_id") == mkt)
            & (pl.col("channel") == ch)
            & pl.col("verdict").is_in(GRANTED)
            & ~pl.col("expired")
            & pl.col("order_id").is_in(counted.implode())
        ).sort("request_by", "order_id")
        self._candidates[(mkt, ch)] = found
        return found

    def _without(self, orders: tuple[str, ...]) -> Dataset:
        """The dataset as if the negative feedback of `orders` were removed (as triage.what_if
        marks them)."""
        if not orders:
            return self.data
        if orders not in self._after:
            gone = pl.Series(orders, dtype=pl.String).implode()
            fb = self.data.frame("feedback").with_columns(
                (pl.col("removed") | ((pl.col("rating") <= 2) & pl.col("order_id").is_in(gone))).alias(
                    "removed"
                )
            )
            self._after.clear()  # one dataset kept: each holds its own caches
            self._after[orders] = dataclasses.replace(
                self.data, frames={**self.data.frames, "feedback": fb}, cache={}
            )
        return self._after[orders]

    def _defs(self, ch: str, target: float, window_days: int):
        base = self.settings.odr(ch)
        odr = dataclasses.replace(base, target=target, window_days=int(window_days))
        return odr, tuple(odr if d.id == base.id else d for d in self.settings.metrics)

    def _defects_now(self, mkt: str, ch: str, window_days: int) -> int:
        """Defective orders in the window today, no removal (what the removals are counted from)."""
        key = (ch, int(window_days))
        if key not in self._now:
            _, defs = self._defs(ch, self.settings.odr(ch).target, window_days)
            f = rolloff.forecast(self.data, self.as_of, defs, horizon=0).filter(
                (pl.col("channel") == ch) & (pl.col("scenario") == rolloff.RECENT)
            )
            self._now[key] = {r["marketplace_id"]: int(r["defects"]) for r in f.iter_rows(named=True)}
        return self._now[key].get(mkt, 0)

    # ------------------------------------------------------------------ the answer
    def compute(self, mkt: str, ch: str, s: Scenario) -> dict:
        """Counts today, status and p-value (volume-aware, as the report's), and the first day the
        projection (no new defect, `s.daily_volume` orders a day) is under the target: one
        `rolloff.forecast` with the target and window of `s`."""
        odr, defs = self._defs(ch, s.target, s.window_days)
        recent = self.recent_volume(mkt, ch)
        factor = s.daily_volume / recent if recent > 0 else 0.0
        gone = tuple(self.candidates(mkt, ch)["order_id"].head(max(s.removals, 0)).to_list())
        horizon = odr.lag_days + odr.window_days + 1  # by then the window holds only future days
        f = rolloff.forecast(self._without(gone), self.as_of, defs, horizon=horizon, low_volume=factor)
        return self._read(f, mkt, ch, s, odr.condition, rolloff.LOW)

    def compute_all(self, removed: bool) -> list[dict]:
        """Every series at the run's settings and recent volume, with no removal or with every
        candidate removed: one forecast for all of them (a removal touches one series only)."""
        gone = (
            tuple(
                sorted(o for mkt, ch in self.series for o in self.candidates(mkt, ch)["order_id"].to_list())
            )
            if removed
            else ()
        )
        f = rolloff.forecast(self._without(gone), self.as_of, self.settings.metrics, horizon=self._horizon())
        out = []
        for mkt, ch in self.series:
            d = self.default(mkt, ch)
            if removed:
                d = dataclasses.replace(d, removals=self.candidates(mkt, ch).height)
            out.append(self._read(f, mkt, ch, d, self.settings.odr(ch).condition, rolloff.RECENT))
        return out

    def _horizon(self) -> int:
        return max(
            d.lag_days + d.window_days + 1 for d in (self.settings.odr("AFN"), self.settings.odr("MFN"))
        )

    def _read(self, f: pl.DataFrame, mkt: str, ch: str, s: Scenario, condition: str, scenario: str) -> dict:
        f = f.filter(
            (pl.col("marketplace_id") == mkt) & (pl.col("channel") == ch) & (pl.col("scenario") == scenario)
        )
        today = f.filter(pl.col("day") == self.as_of)
        n_defects = int(today["defects"][0]) if today.height else 0
        n_orders = int(round(today["orders"][0])) if today.height else 0
        judged = stats.judge(n_defects, n_orders, s.target, condition)
        under = f.filter(pl.col("rate").is_not_null() & (pl.col("rate") < s.target)).sort("day")
        return {
            "marketplace_id": mkt,
            "channel": ch,
            "as_of": self.as_of,
            "scenario": s,
            "defects": n_defects,
            "orders": n_orders,
            "rate": judged["rate"],
            "status": judged["volumeAdjustedStatus"],
            "rule_status": judged["status"],
            "p_value": judged["pValue"],
            "under_target_from": under["day"][0] if under.height else None,
            "orders_needed": defects.orders_needed(n_defects, n_orders, s.target),
            "taken_out": self._defects_now(mkt, ch, s.window_days) - n_defects if s.removals else 0,
            "candidates": self.candidates(mkt, ch).height,
        }

    # ------------------------------------------------------------------ words
    @staticmethod
    def html(r: dict) -> str:
        s: Scenario = r["scenario"]
        series = f"{marketplace_label(r['marketplace_id'])} · {wording.CHANNEL_LABEL[r['channel']]}"
        if r["under_target_from"] is None:
            when = f"not in the next {s.window_days + 16} days at {s.daily_volume:,.1f} orders a day"
        elif r["under_target_from"] <= r["as_of"]:
            when = f"{esc(r['as_of'])} (under target now)"
        else:
            when = esc(r["under_target_from"])
        removed = (
            f"{r['taken_out']} {wording.plural('defect') if r['taken_out'] != 1 else 'defect'} taken out by "
            f"{s.removals} granted removal {wording.plural('request') if s.removals != 1 else 'request'} "
            f"(of {r['candidates']} candidates)"
            if s.removals
            else f"no removal request granted ({r['candidates']} candidates)"
        )
        return (
            f'<div class="ah-whatif-result"><p><b>{esc(series)}</b>: {badge(r["status"])} '
            f"ODR <b>{wording.pct(r['rate'])}</b> ({wording.count(r['defects'], 'defective order')} in "
            f"{wording.count(r['orders'], 'order')}, {s.window_days}-day window) against a target of "
            f"{wording.pct(s.target)}; {esc(wording.p_text(r['p_value']))}.</p>"
            f"<p>Under target from <b class='ah-rolloff'>{when}</b> with no new defect at "
            f"{s.daily_volume:,.1f} orders a day; {r['orders_needed']:,} defect-free orders still needed. "
            f'<span class="muted">{esc(removed)}.</span></p></div>'
        )


class WhatIfPanel:
    """Sliders over `WhatIf` (live), or a table of each series at the run's settings and with
    every candidate removed (headless)."""

    def __init__(self, what: WhatIf, *, interactive: bool = True) -> None:
        self.what, self.interactive = what, interactive
        self._box = None

    def static_html(self) -> str:
        rows = []
        results = {False: self.what.compute_all(False), True: self.what.compute_all(True)}
        for i, (mkt, ch) in enumerate(self.what.series):
            for removed, label in ((False, "run's settings"), (True, "every candidate removed")):
                r = results[removed][i]
                rows.append(
                    {
                        "series": f"{marketplace_label(mkt)} · {wording.CHANNEL_LABEL[ch]}",
                        "scenario": label,
                        "defects": r["defects"],
                        "orders": r["orders"],
                        "rate": r["rate"],
                        "status": wording.STATUS_LABEL.get(r["status"], r["status"]),
                        "p": wording.p_text(r["p_value"]),
                        "under": r["under_target_from"] or "not within the horizon",
                    }
                )
        return (
            "<h3>What if</h3><p class='muted'>The ODR today and the day it goes under target with no new "
            "defect at the recent daily volume (mean of the last 28 days), at the run's settings and if every "
            "removable or struck-through feedback still in time were removed. Live, sliders move the target, "
            "window, daily volume and the removal requests granted.</p>"
            + table_html(
                pl.DataFrame(rows),
                {
                    "series": "Marketplace · channel",
                    "scenario": "Scenario",
                    "defects": "Defective orders",
                    "orders": "Orders",
                    "rate": "ODR rate",
                    "status": "Status",
                    "p": "p-value",
                    "under": "Under target from",
                },
                20,
            )
        )

    def widget(self):
        import ipywidgets as w

        series = self.what.series
        self.controls = {
            "series": w.Dropdown(
                options=[(f"{marketplace_label(m)} · {wording.CHANNEL_LABEL[c]}", (m, c)) for m, c in series],
                description="Series",
            ),
            "target": w.FloatSlider(
                min=0.1,
                max=5.0,
                step=0.1,
                description="Target %",
                readout_format=".1f",
                continuous_update=True,
            ),
            "window": w.IntSlider(min=7, max=120, step=1, description="Window days", continuous_update=True),
            "volume": w.FloatSlider(
                min=0.0,
                max=1.0,
                step=0.1,
                description="Orders/day",
                readout_format=",.1f",
                continuous_update=True,
            ),
            "removals": w.IntSlider(min=0, max=0, description="Removals", continuous_update=True),
        }
        for c in self.controls.values():
            c.style.description_width = "90px"
        self.result = widgets.html_box("ah-whatif")
        self._holding = False
        self.controls["series"].observe(lambda _: self._reset(), names="value")
        for name in ("target", "window", "volume", "removals"):
            self.controls[name].observe(lambda _: self.update(), names="value")
        self._reset()
        c = self.controls
        intro = w.HTML(
            "<h3>What if</h3><p class='muted'>Move the target, the window, the daily volume and the removal "
            "requests Amazon grants (nearest deadline first): the status, p-value and the day the ODR goes under "
            "target follow, computed by the suite's own functions.</p>"
        )
        return w.VBox(
            [
                intro,
                c["series"],
                w.HBox([c["target"], c["window"]]),
                w.HBox([c["volume"], c["removals"]]),
                self.result,
            ]
        )

    def _reset(self) -> None:
        mkt, ch = self.controls["series"].value
        d = self.what.default(mkt, ch)
        self._holding = True
        try:
            c = self.controls
            c["volume"].max = max(10.0, round(d.daily_volume * 3, 1))
            c["removals"].max = self.what.candidates(mkt, ch).height
            c["target"].value = round(d.target * 100, 1)
            c["window"].value = d.window_days
            c["volume"].value = round(d.daily_volume, 1)
            c["removals"].value = 0
        finally:
            self._holding = False
        self.update()

    def scenario(self) -> Scenario:
        c = self.controls
        return Scenario(c["target"].value / 100, c["window"].value, c["volume"].value, c["removals"].value)

    def update(self) -> None:
        if self._holding:
            return
        mkt, ch = self.controls["series"].value
        started = time.perf_counter()
        self.last = self.what.compute(mkt, ch, self.scenario())
        self.result.value = WhatIf.html(self.last)
        # follow the sliders as they move while that keeps up; on a large account, on release
        live = time.perf_counter() - started < LIVE_SECONDS
        for name in ("target", "window", "volume", "removals"):
            self.controls[name].continuous_update = live
