"""Altair charts that draw offline: a renderer that calls a `vegaEmbed` bundled once per page.

In a live JupyterLab the default renderer is kept; report runs switch to `use_offline_renderer`,
and the nbconvert template (templates/offline_vega) puts vl-convert's Vega bundle in the page head.
"""

from __future__ import annotations

import functools
import hashlib
import json

import polars as pl

from analysis.report import lazy

alt = lazy.module("altair")  # imported when a chart is drawn

_counter = {"n": 0}


def vl_version() -> str:
    """'v6.4.1' -> 'v6_4', the form vl-convert's bundler wants."""
    return "_".join(alt.SCHEMA_VERSION.split(".")[:2])


def _offline_renderer(spec: dict, **metadata) -> dict:
    # Deterministic element ids (a report must be byte-identical for the same inputs).
    _counter["n"] += 1
    text = json.dumps(spec, sort_keys=True)
    div = f"chart-{_counter['n']}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"
    embed = dict(metadata.get("embed_options") or {})
    embed.setdefault("mode", "vega-lite")
    embed.setdefault("actions", False)
    safe = text.replace("</", "<\\/")  # no buyer text can close the script element
    return {
        "text/html": f'<div class="vega-chart" id="{div}"></div><script type="text/javascript">'
        f'vegaEmbed("#{div}", {safe}, {json.dumps(embed)}).catch(function (e) {{ console.error(e); }});</script>'
    }


def use_offline_renderer() -> None:
    alt.renderers.register("offline_html", _offline_renderer)
    alt.renderers.enable("offline_html")
    _counter["n"] = 0


@functools.cache
def vega_bundle() -> str:
    import vl_convert as vlc

    return vlc.javascript_bundle(vl_version=vl_version())


def wrapped(text: str, width: int = 38) -> alt.TitleParams:
    """A chart title that wraps onto lines of at most `width` characters, so it fits a phone."""
    import textwrap

    return alt.TitleParams(textwrap.wrap(text, width) or [text], anchor="start")


def rate_trend(df: pl.DataFrame, *, title: str, target: float, facet: str | None = None) -> alt.Chart:
    """Weekly rate line with the target as a dashed rule; `df` has week, rate, series, numerator,
    denominator."""
    base = alt.Chart(df)
    line = base.mark_line(point=True).encode(
        x=alt.X("week:T", title="Week ending"),
        y=alt.Y("rate:Q", title="Rate", axis=alt.Axis(format="%")),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom", columns=2)),
        tooltip=[
            alt.Tooltip("week:T", title="As of"),
            alt.Tooltip("series:N"),
            alt.Tooltip("rate:Q", format=".2%"),
            alt.Tooltip("numerator:Q", title="Defective orders"),
            alt.Tooltip("denominator:Q", title="Orders"),
        ],
    )
    rule = (
        alt.Chart(pl.DataFrame({"target": [target]}))
        .mark_rule(strokeDash=[6, 4], color="#c62828")
        .encode(y="target:Q")
    )
    return (line + rule).properties(title=wrapped(title), width="container", height=220)


def to_png(chart: alt.TopLevelMixin, width: int = 640, scale: float = 2.0) -> bytes:
    """A chart as PNG (vl-convert, offline), for e-mail: a container width becomes `width` px."""
    import vl_convert as vlc

    spec = chart.to_dict()
    if spec.get("width") == "container":
        spec["width"] = width
    for layer in spec.get("layer", []) + spec.get("vconcat", []):
        if isinstance(layer, dict) and layer.get("width") == "container":
            layer["width"] = width
    return vlc.vegalite_to_png(spec, vl_version=vl_version(), scale=scale)
