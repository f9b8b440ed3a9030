"""The first screen of every report (and the body of its e-mail): one verdict line, one compact
table of every metric with last week's value, and "Do this now" (at most 7 actions, the ones on
the worst metric first, then by deadline). The rest of the report follows it."""

from __future__ import annotations

import datetime as dt

import polars as pl

from analysis import wording
from analysis.inputs.marketplaces import marketplace_label
from analysis.inputs.snapshots import newest_for
from analysis.insights import actions as act
from analysis.insights import escalation, feedback_summary, triage
from analysis.metrics import definitions as m
from analysis.metrics import health
from analysis.report.context import ReportContext, metric_json, pm_of, week_incidents
from analysis.report.kit import badge, esc
from analysis.report.sections import (
    SECTIONS,
    STATUS_ORDER,
    cell_status,
    metric_trend,
    num_of,
    odr_objects,
    rate_text,
    shown_status,
)
from analysis.wording import CHANNEL_LABEL

MAX_ACTIONS = 7
ACCOUNT_STATE = {"NORMAL": "Healthy", "AT_RISK": "At risk", "DEACTIVATED": "Deactivated"}
# the metric family each kind of action improves (the tier of an action is its metric's status)
ACTION_METRIC = {
    "feedback-removal": "orderDefectRate",
    "incident": "orderDefectRate",
    "claim-appeal": "orderDefectRate",
    "feedback-reply": None,  # no metric: it helps buyers who read the feedback
    "ship-by": "lateShipmentRate",
    "invoice": "invoiceDefectRate",
    "message": "contactResponseTime",
}


def metric_rows(ctx: ReportContext) -> list[dict]:
    """Every metric of every marketplace shown: its object, our status and last week's rate."""
    trend = metric_trend(ctx)
    last_week = ctx.as_of - dt.timedelta(days=7)
    before = {
        (r["marketplace_id"], r["metric"]): r["rate"]
        for r in trend.filter(pl.col("as_of") == last_week).iter_rows(named=True)
    }
    rows = []
    for mkt in ctx.marketplaces:
        pm = pm_of(ctx, mkt)
        for _, ids in SECTIONS:
            for metric_id in ids:
                md, obj = ctx.settings.metric(metric_id), metric_json(pm, metric_id)
                rows.append(
                    {
                        "marketplace_id": mkt,
                        "md": md,
                        "obj": obj,
                        "status": cell_status(md, obj),
                        "last_week": before.get((mkt, metric_id)),
                    }
                )
    return rows


def _badness(r: dict) -> tuple[int, float]:
    """How much a metric needs attention: its status, then how far it is past its target."""
    md, obj = r["md"], r["obj"]
    rate = obj.get("rate")
    miss = 0.0
    if rate is not None and md.target:
        miss = (md.target - rate) / md.target if md.higher_is_better else (rate - md.target) / md.target
    return STATUS_ORDER.get(r["status"], 0), miss


def account_state(ctx: ReportContext) -> tuple[str, str]:
    """(state, where it comes from): Amazon's newest snapshot on or before the as-of day, or our
    estimate from the metrics (saying so); 'Not known' when an ODR is incomplete and none is Poor."""
    states = []
    for mkt in ctx.marketplaces:
        snap = newest_for(ctx.result.data.snapshots, mkt, ctx.as_of)
        st = next(
            (s for s in ctx.result.document.get("accountStatuses", []) if s["marketplaceId"] == mkt), None
        )
        if snap and st:
            states.append((st["status"], snap[0]["_asOf"]))
    if states and len(states) == len(ctx.marketplaces):
        order = {"DEACTIVATED": 3, "AT_RISK": 2, "NORMAL": 1}
        worst, day = max(states, key=lambda s: order.get(s[0], 0))
        source = f"Amazon, {day}"
        newest = health.newest_order_day(ctx.result.data)
        if ctx.as_of > newest:  # Amazon said it before the period's end: not the period's verdict
            source += f"; the data ends {newest}, before this period"
        return ACCOUNT_STATE.get(worst, worst.title()), source
    rows = metric_rows(ctx)
    statuses = [r["status"] for r in rows]
    if all(st == "NONE" for st in statuses):  # no window holds an order (a day before the data)
        return "Not known", "our estimate: no orders in any metric's window"
    if "BAD" in statuses:
        return "At risk", "our estimate: a metric is Poor"
    if all(r["status"] == "NONE" for r in rows if r["md"].population == "order_defects"):
        # the ODR decides most: with no order in its window (data starting days ago) "Healthy" says
        # more than the data knows
        return "Not known", "our estimate: no orders in the Order Defect Rate's window"
    if "INCOMPLETE" in statuses:
        return "Not known", "our estimate: some metrics are incomplete"
    return "Healthy", "our estimate: no metric is Poor"


def ahr_text(ctx: ReportContext) -> str:
    """The Account Health Rating of each marketplace with its snapshot's date, or 'not known'."""
    parts = []
    for mkt in ctx.marketplaces:
        snap = newest_for(ctx.result.data.snapshots, mkt, ctx.as_of)
        ahr = pm_of(ctx, mkt)["accountHealthRating"]
        if snap and ahr.get("ahrStatus") not in (None, "NONE"):
            score = f" {ahr['ahrScore']}" if "ahrScore" in ahr else ""
            parts.append(
                f"{marketplace_label(mkt)} {str(ahr['ahrStatus']).title()}{score} (Amazon, {snap[0]['_asOf']})"
            )
        else:
            parts.append(f"{marketplace_label(mkt)} not known (no Amazon snapshot)")
    return "; ".join(parts)


def attention(ctx: ReportContext) -> dict | None:
    """The metric that needs attention most (worst status, then furthest past its target)."""
    rows = [r for r in metric_rows(ctx) if r["status"] in ("BAD", "AT_RISK", "INCOMPLETE")]
    return max(rows, key=_badness) if rows else None


def _label(r: dict) -> str:
    return f"{r['md'].title} ({marketplace_label(r['marketplace_id'])})"


def escalations(ctx: ReportContext) -> pl.DataFrame:
    key = ("two_cycles", ctx.as_of, ctx.settings.metrics)
    cache = ctx.result.data.cache
    if key not in cache:
        oldest = health.oldest_order_day(ctx.result.data)
        cache[key] = escalation.two_cycles(ctx.result.data, ctx.as_of, ctx.settings.metrics, oldest)
    df = cache[key]
    return df.filter(pl.col("marketplace_id").is_in(ctx.marketplaces)) if df.height else df


def verdict_html(ctx: ReportContext) -> str:
    state, source = account_state(ctx)
    worst = attention(ctx)
    if worst is None:
        focus = "no metric needs attention"
    else:
        focus = (
            f"needs attention most: <b>{esc(_label(worst))}</b> {badge(worst['status'])} "
            f"{esc(rate_text(worst['md'], worst['obj']))}"
        )
    flagged = escalations(ctx).filter(pl.col("flagged").fill_null(False)) if escalations(ctx).height else None
    esc_line = ""
    if flagged is not None and flagged.height:
        r = flagged.row(0, named=True)
        esc_line = (
            '<p class="banner"><b>Two cycles over 2 %:</b> the Order Defect Rate of '
            f"{esc(marketplace_label(r['marketplace_id']))} {esc(CHANNEL_LABEL[r['channel']])} was "
            f"{esc(wording.pct(r['rate_before']))} in {esc(r['window_from_before'])} to {esc(r['window_to_before'])} "
            f"and is {esc(wording.pct(r['rate']))} in {esc(r['window_from'])} to {esc(r['window_to'])}, Poor at its "
            "volume in both: the point at which Amazon restricts an account.</p>"
        )
    return (
        '<div class="verdict"><p class="verdict-line">'
        f'<b>Account: {esc(state)}</b> <span class="muted">({esc(source)})</span> · '
        f"Account Health Rating: {esc(ahr_text(ctx))} · {focus}</p></div>" + esc_line
    )


def _arrow(md: m.MetricDef, now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    if abs(now - before) < 1e-12:
        return "= "
    up = now > before
    better = up == md.higher_is_better
    return f'<span class="{"better" if better else "worse"}">{"▲" if up else "▼"}</span> '


def counts_short(md: m.MetricDef, obj: dict) -> str:
    """'12 of 981 orders'."""
    return f"{num_of(md, obj):,} of {wording.count(obj[md.denominator_key], md.unit)}"


def compact_table_html(ctx: ReportContext) -> str:
    """Every metric (rows) of every marketplace (columns): status, value, last week, counts."""
    rows = metric_rows(ctx)
    head = "".join(f"<th>{esc(marketplace_label(x))}</th>" for x in ctx.marketplaces)
    body = []
    for _, ids in SECTIONS:
        for metric_id in ids:
            md = ctx.settings.metric(metric_id)
            cells = []
            for mkt in ctx.marketplaces:
                r = next(x for x in rows if x["marketplace_id"] == mkt and x["md"].id == metric_id)
                obj, den = r["obj"], r["obj"][md.denominator_key]
                if r["status"] == "NONE":  # nothing to show: no unit, no absent file or unread row
                    cells.append('<td class="muted">no orders in the window</td>')
                    continue
                now = obj.get("rate") if shown_status(obj) != "INCOMPLETE" else None
                last = (
                    f"{_arrow(md, now, r['last_week'])}from {esc(wording.pct(r['last_week']))} · "
                    if r["last_week"] is not None
                    else ""
                )
                counts = esc(counts_short(md, obj)) if den else ""
                cells.append(
                    f"<td>{badge(r['status'])} <b>{esc(rate_text(md, obj))}</b>"
                    f'<br><span class="muted">{last}{counts}</span></td>'
                )
            target = wording.target_text(md.target, md.higher_is_better)
            body.append(
                f'<tr><td>{esc(md.title)}<br><span class="muted">{esc(target)}</span></td>{"".join(cells)}</tr>'
            )
    return (
        '<div class="scroll"><table class="ah compact"><thead><tr><th>Metric</th>'
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


# ------------------------------------------------------------------------------- do this now


def _family_status(ctx: ReportContext, family: str | None) -> str:
    """The worst status of a metric family (all channels and marketplaces) shown."""
    if family is None:
        return "NONE"
    got = [r["status"] for r in metric_rows(ctx) if r["md"].id.split(".")[0] == family]
    return max(got, key=lambda s: STATUS_ORDER.get(s, 0), default="NONE")


def do_this_now(ctx: ReportContext) -> list[dict]:
    """At most `MAX_ACTIONS` actions: {what, effect, deadline (date or None), metric status}, the
    ones on the worst metric first, then by deadline."""
    out: list[dict] = []
    data, as_of = ctx.result.data, ctx.as_of
    if data.has("feedback"):
        t = triage.triage(data, as_of).filter(
            pl.col("marketplace_id").is_in(ctx.marketplaces)
            & pl.col("verdict").is_in([triage.REMOVABLE, triage.STRIKE, triage.STRIKE_IF_BUY_SHIPPING])
            & ~pl.col("expired")
        )
        if t.height:
            effect = ""
            w = triage.what_if(data, as_of, ctx.settings.metrics)
            w = w.filter(pl.col("marketplace_id").is_in(ctx.marketplaces))
            piv = w.pivot(on="scenario", index=["marketplace_id", "channel"], values="rate").drop_nulls()
            if piv.height:
                best = (
                    piv.with_columns((pl.col("now") - pl.col("if removed")).alias("gain"))
                    .sort("gain")
                    .row(-1, named=True)
                )
                if best["gain"] > 0:
                    effect = (
                        f"ODR {marketplace_label(best['marketplace_id'])} {CHANNEL_LABEL[best['channel']]} "
                        f"{wording.pct(best['now'])} → {wording.pct(best['if removed'])}"
                    )
            first = t["request_by"].min()
            out.append(
                {
                    "kind": "feedback-removal",
                    "what": f"Request removal of {wording.count(t.height, 'feedback')}",
                    "effect": effect or "fewer negative feedbacks shown to buyers",
                    "deadline": first,
                }
            )
    for i in week_incidents(ctx):
        carriers = i.get("drivers", {}).get("carriers") or []
        causes = i.get("drivers", {}).get("causes") or []
        who = carriers[0]["value"] if carriers else (causes[0]["value"] if causes else "")
        where = f"{marketplace_label(i['marketplaceId'])} {CHANNEL_LABEL.get(i['channel'], i['channel'])}"
        out.append(
            {
                "kind": "incident",
                "what": f"{(who + ' ') if who else ''}incident since {i['firstDay']} ({where}): find the cause",
                "effect": f"{wording.count(i['observed'], 'defect')} against {i['expected']:.1f} expected",
                "deadline": None,
            }
        )
    daily = act.today(data, as_of)
    for k in act.KINDS:
        rows = daily.actions.filter(
            (pl.col("kind") == k.name) & pl.col("marketplace_id").fill_null("").is_in(ctx.marketplaces)
        )
        if k.name == "feedback-removal" or not rows.height:
            continue  # removals are summed up above with their effect
        due = rows["due"].min() if k.overdue_days is not None else None  # replies have no deadline
        out.append(
            {
                "kind": k.name,
                "what": f"{rows.height:,} {act.NOUNS[k.name][rows.height != 1]}",
                "effect": rows["why"][0].split(";")[-1].strip(),
                "deadline": due.date() if due is not None else None,
            }
        )
    for a in out:
        a["status"] = _family_status(ctx, ACTION_METRIC.get(a["kind"]))
    far = dt.date.max
    out.sort(key=lambda a: (-STATUS_ORDER.get(a["status"], 0), a["deadline"] or far))
    return out[:MAX_ACTIONS]


def deadline_text(action: dict, as_of: dt.date) -> str:
    """'due 2026-11-21', or 'overdue since 2026-11-14' for a deadline before the as-of day."""
    day = action["deadline"]
    return f"overdue since {day}" if day < as_of else f"due {day}"


def not_checked(ctx: ReportContext) -> list[dict]:
    """The daily list's kinds not checked (a file absent), of the marketplaces shown."""
    return [
        s
        for s in act.today(ctx.result.data, ctx.as_of).not_checked
        if s.get("marketplaceId") in (None, *ctx.marketplaces)
    ]


def do_this_now_html(ctx: ReportContext) -> str:
    items = do_this_now(ctx)
    skipped = not_checked(ctx)
    note = (
        '<p class="muted">' + esc("; ".join(f"{s['kind']}: {s['reason']}" for s in skipped)) + "</p>"
        if skipped
        else ""
    )
    if not items:
        return "<h2>Do this now</h2><p>Nothing is due.</p>" + note
    lis = "".join(
        f"<li>{badge(a['status']) if a['status'] in ('BAD', 'AT_RISK') else ''} <b>{esc(a['what'])}</b>"
        + (f" · {esc(deadline_text(a, ctx.as_of))}" if a.get("deadline") else "")
        + f'<br><span class="muted">{esc(a["effect"])}</span></li>'
        for a in items
    )
    return f'<h2>Do this now</h2><ol class="actions">{lis}</ol>{note}'


def first_screen_html(ctx: ReportContext) -> str:
    """The verdict, the compact table and the actions: what a seller reads in one minute."""
    return (
        '<section class="first-screen">'
        + verdict_html(ctx)
        + compact_table_html(ctx)
        + do_this_now_html(ctx)
        + "</section>"
    )


def subject_counts(ctx: ReportContext) -> dict[str, int]:
    """How many metric cells are Poor, Fair, Incomplete (for an e-mail's subject)."""
    got: dict[str, int] = {}
    for r in metric_rows(ctx):
        got[r["status"]] = got.get(r["status"], 0) + 1
    return got


# ------------------------------------------------------------------------------- feedback


def feedback_summary_html(ctx: ReportContext) -> str:
    """Seller Central's Feedback Manager table: positive / neutral / negative for 30, 90, 365 days
    and the data's whole span, per marketplace."""
    if not ctx.result.data.has("feedback"):
        return "<h2>Feedback</h2><p>No data: no seller feedback file in the data folder.</p>"
    df = feedback_summary.feedback_summary(ctx.result.data, ctx.as_of)
    first = ctx.result.data.frame("feedback").select(pl.col("feedback_ts").min()).collect().item()
    oldest = first.date() if first is not None else ctx.as_of
    out = ["<h2>Feedback</h2>"]
    for mkt in ctx.marketplaces:
        part = df.filter(pl.col("marketplace_id") == mkt)
        head = "".join(
            f"<th>{esc(p if p != 'Lifetime' else f'All data (since {oldest})')}</th>" for p in part["period"]
        )
        body = []
        unknown = '<td class="muted">not known</td>'
        for name, _, _ in feedback_summary.KINDS:
            cells = "".join(
                unknown
                if n is None
                else f'<td>{wording.pct(s, 0) if s is not None else "–"} <span class="muted">({n:,})</span></td>'
                for s, n in zip(part[f"{name}_share"], part[name], strict=True)
            )
            body.append(f"<tr><td>{esc(name.title())}</td>{cells}</tr>")
        body.append(
            "<tr><td>Count</td>"
            + "".join(unknown if n is None else f"<td>{n:,}</td>" for n in part["total"])
            + "</tr>"
        )
        if not part["positives_known"].all():
            body.append(
                '<tr><td colspan="5" class="muted">Its feedback was pulled through the SP-API, which gives 1-3 star '
                "feedback only: positives, the count and the shares are not known (the Feedback Manager download "
                "has every rating).</td></tr>"
            )
        out.append(
            f"<h3>{esc(marketplace_label(mkt))}</h3>"
            f'<div class="scroll"><table class="ah"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
    out.append(
        '<p class="muted">Positive: 4-5 stars, neutral: 3, negative: 1-2; feedback Amazon removed is left out.</p>'
    )
    return "".join(out)


def escalation_html(ctx: ReportContext) -> str:
    """The two-cycle check of every marketplace and channel, said plainly."""
    df = escalations(ctx)
    if not df.height:
        return ""
    incomplete = {(mkt, ch) for mkt, ch, o in odr_objects(ctx) if shown_status(o) == "INCOMPLETE"}
    lines = []
    for r in df.iter_rows(named=True):
        where = f"{marketplace_label(r['marketplace_id'])} {CHANNEL_LABEL[r['channel']]}"
        if r["flagged"]:  # without a file the ODR needs its counts are a floor: still over
            verdict = "<b>over 2 % in both, beyond chance at this volume: the point at which Amazon restricts an account</b>"
        elif (r["marketplace_id"], r["channel"]) in incomplete or r["flagged"] is None:
            verdict = "not known (the earlier cycle is before the data, or a file the ODR needs is absent)"
        elif r["rate"] > escalation.THRESHOLD and r["rate_before"] > escalation.THRESHOLD:
            verdict = "over 2 % in both, but at this volume not beyond chance in both (not Poor)"
        else:
            verdict = "not over 2 % in both"
        before = wording.pct(r["rate_before"]) if r["rate_before"] is not None else "–"
        lines.append(f"<li>{esc(where)}: {esc(before)} then {esc(wording.pct(r['rate']))}: {verdict}</li>")
    return (
        "<h3>Two 60-day cycles</h3>"
        '<p class="muted">Amazon restricts an account whose Order Defect Rate is over 2 % in two consecutive '
        "60-day cycles; counted here when each cycle's rate is also Poor at its volume (p &lt; 0.05).</p><ul>"
        + "".join(lines)
        + "</ul>"
    )
