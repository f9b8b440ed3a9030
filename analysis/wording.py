"""Every word a report, e-mail or CLI line shows about a number, in one place.

Labels of channels and statuses, nouns with their plurals, direction words and p-value
formatting live here, next to the metric table (`metrics.METRICS` names each metric's nouns), so
that views never spell a plural or a p-value in an f-string of their own.
"""

from __future__ import annotations

import math

CHANNEL_LABEL = {"AFN": "FBA", "MFN": "Seller-fulfilled", "ALL": "All channels", None: "All channels"}

# Our scorecard words (the old metrics summary's): Good meets the target; Fair misses it but at
# this volume that can be chance; Poor misses it beyond chance; Incomplete: a needed file is absent.
STATUS_LABEL = {
    "GOOD": "Good",
    "AT_RISK": "Fair",
    "BAD": "Poor",
    "NONE": "No data",
    "INCOMPLETE": "Incomplete",
}
# The bare rule (rate against target), named for what it is.
RULE_LABEL = {"GOOD": "Meets target", "BAD": "Over target", "NONE": "No data"}
RULE_LABEL_HIGHER = {"GOOD": "Meets target", "BAD": "Under target", "NONE": "No data"}
# Amazon's own status strings in a V2 snapshot.
AMAZON_LABEL = {
    "GOOD": "Good",
    "FAIR": "Fair",
    "AT_RISK": "At risk",
    "BAD": "Poor",
    "POOR": "Poor",
    "NONE": "No data",
}

# Irregular plurals; everything else takes an "s".
_PLURALS = {
    "defect": "defects",
    "order": "orders",
    "package": "packages",
    "tracked package": "tracked packages",
    "unit": "units",
    "message": "messages",
    "refunded order": "refunded orders",
    "claim": "claims",
    "chargeback": "chargebacks",
    "negative feedback": "negative feedback",
    "feedback": "feedbacks",
    "day": "days",
    "incident": "incidents",
    "alarm": "alarms",
    "row": "rows",
    "file": "files",
    "action": "actions",
    "week": "weeks",
}


def plural(noun: str) -> str:
    """The plural of a noun phrase: its last word's ("late delivery" -> "late deliveries")."""
    if noun in _PLURALS:
        return _PLURALS[noun]
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def count(n: float | int, noun: str) -> str:
    """'1 defect', '2 defects', '0 orders', '1,234 orders'."""
    shown = f"{n:,.1f}" if isinstance(n, float) and not n.is_integer() else f"{int(n):,}"
    return f"{shown} {noun if n == 1 else plural(noun)}"


def p_text(p: float | None) -> str:
    """'p < 0.001', 'p = 0.028', 'p = 0.50': two significant digits, never scientific notation."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p not defined"
    if p < 0.001:
        return "p < 0.001"
    digits = max(2, 1 - math.floor(math.log10(p)))
    return f"p = {p:.{digits}f}"


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}\u00a0%"


def target_text(target: float, higher_is_better: bool) -> str:
    """'> 95 %' or '< 1 %' with as many digits as the target needs."""
    digits = (
        0
        if round(100 * target, 6) == round(100 * target)
        else 1
        if round(1000 * target, 6) == round(1000 * target)
        else 2
    )
    return f"{'>' if higher_is_better else '<'} {pct(target, digits)}"


def direction(target: float, higher_is_better: bool, meets: bool) -> str:
    """'under the 1 % target' / 'over the 1 % target' (LESS_THAN), 'above the 95 % target' /
    'below the 95 % target' (GREATER_THAN)."""
    t = pct(target, 0 if round(100 * target, 6) == round(100 * target) else 1)
    if higher_is_better:
        return f"{'above' if meets else 'below'} the {t} target"
    return f"{'under' if meets else 'over'} the {t} target"
