"""One run's settings, built once (defaults + a TOML file + overrides) and passed down to every
command, notebook and report, so no function quietly uses the built-in table when a run has its
own. A report notebook receives them as the papermill parameter `settings` (`to_dict()`), so its
executed copy records exactly what it was computed with.

TOML layout (every table optional):

    [orderDefectRate.afn]      # any metric id of metrics.METRICS
    target = 0.008             # window_days, lag_days, target
    [spikes]                   # any field of SpikeSettings
    glr_h = 6.0
    [report]                   # any field of ReportOptions
    trend_weeks = 13
    [email]                    # any field of EmailOptions (credentials: environment only)
    to = ["ops@example.com"]
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import SettingsError
from analysis.metrics import definitions as m
from analysis.safety import is_host, is_mail_address


@dataclass(frozen=True)
class SpikeSettings:
    """Detector settings. The thresholds are those benchmarks/spike_eval.py calibrates to at most
    1 false alarm per account-year at every volume (rounded to the stricter side); the GLR, the
    most powerful there, is the one to watch."""

    pchart_alpha: float = 0.0033
    order_pchart_alpha: float = 0.0012  # the order basis tests the last 7 order days every day
    cusum_ratio: float = 3.0  # p1 = ratio * p0
    cusum_h: float = 4.2
    ewma_lambda: float = 0.2
    ewma_l: float = 5.4
    laney_k: float = 2.1
    glr_window: int = 7
    glr_h: float = 5.0
    # order basis: windows of 4 to 7 order days, the 4-day one (a bad batch found within 3 days
    # of its first order day) at order_glr_h, longer ones need order_glr_penalty more
    order_glr_min_window: int = 4
    order_glr_penalty: float = 2.5
    order_glr_h: float = 3.8
    naive_days: int = 7
    naive_target: float = 0.01
    # Incidents (`incidents`: what the weekly report shows). Two tests on every series, their
    # alarm days merged into incidents; the thresholds hold the union over all of an account's
    # series to at most 1 false incident per account-year. Set with benchmarks/spike_eval.py
    # part 4 (accounts of 2-4 series of 30-600 orders a day, 150 days of data, 1,000 accounts):
    # on seed 11, 7.5 / 7.5 gave 0.86 false incidents/yr and found 91 % of 6-day x4 bad batches
    # within 14 days (7.5 / 7.25: 1.07/yr, 91 %; 7 / 7: 1.32/yr, 93 %; 7.5 / 8: 0.61/yr, 90 %);
    # on seeds 1-3: 0.91, 0.81, 0.99/yr and 92, 91, 90 %. The order-day GLR spends most of the
    # budget (0.83/yr on seed 1) and finds the batches (92 % alone, the arrival GLR 60 %); the
    # arrival GLR costs 0.12/yr and finds a carrier week (x3 arrivals for 7 days) within 7 days
    # on 74 % of accounts, against 59 % for the order-day GLR alone.
    incident_glr_h: float = 7.5  # the arrival GLR, two-sample (`poisson_glr2`), windows 1-glr_window
    incident_order_h: float = 7.5  # the order-day GLR (`_order_scan`), two-sample
    # order-day windows of 1 to 7 days (a 6-day batch fits) whose newest day is at most 14 days
    # old (a batch found "within 14 days"); 10 days: 0.77/yr and 91 % at 7.5 (seed 11), 12 or 10
    # days at a lower threshold did no better than 14 at 7.5
    incident_order_window: int = 7
    incident_order_max_age: int = 14
    incident_gap_days: int = 1  # alarm days with at most 1 quiet day between make one incident
    # "learning": the baseline holds fewer usable days than this (the first month of a
    # 150-day account held 31-60); the two-sample tests raise the bar by themselves, this says so
    incident_learning_days: int = 60


@dataclass(frozen=True)
class ReportOptions:
    """What the report shows, beside the metric definitions."""

    trend_weeks: int = 26  # weeks of history in the trend charts
    cause_baseline_weeks: int = 8  # "what caused it": this week against the weekly mean of these
    removal_rows: int = 50  # removal candidates listed (the rest: `python -m analysis defects`)
    defective_order_rows: int = 200


@dataclass(frozen=True)
class EmailOptions:
    """Where the weekly e-mail goes ([email]); the SMTP user and password never: they come from
    the environment (AH_SMTP_USER, AH_SMTP_PASSWORD) only."""

    to: tuple[str, ...] = ()
    sender: str = "account-health@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 0  # 0: 25, or 465 with ssl
    security: str = "none"  # none, starttls, ssl


SECURITY = ("none", "starttls", "ssl")


def _email_options(values: dict) -> EmailOptions:
    """[email] checked key by key: recipients a list of addresses, a port 1-65535, security one of
    SECURITY, and no credentials in a file."""
    values = dict(values)
    for secret in ("user", "password", "smtp_user", "smtp_password"):
        if secret in values:
            raise SettingsError(
                f"[email] {secret}: credentials are never read from a file; set AH_SMTP_USER and "
                "AH_SMTP_PASSWORD in the environment"
            )
    names = {f.name for f in dataclasses.fields(EmailOptions)}
    bad = set(values) - names
    if bad:
        raise SettingsError(
            f"[email]: unknown setting(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(names))}"
        )
    to = values.get("to", [])
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not all(is_mail_address(a) for a in to):
        raise SettingsError('[email] to must be a list of e-mail addresses, like to = ["ops@example.com"]')
    for key in ("sender", "smtp_host"):
        if key in values and not (isinstance(values[key], str) and values[key].strip()):
            raise SettingsError(f"[email] {key} must be a non-empty text")
    if "sender" in values and not is_mail_address(values["sender"]):
        raise SettingsError('[email] sender must be one e-mail address, like sender = "reports@example.com"')
    if "smtp_host" in values and not is_host(values["smtp_host"]):
        raise SettingsError("[email] smtp_host must be a host name or an IP address")
    port = values.get("smtp_port", 0)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise SettingsError(f"[email] smtp_port = {port!r} is not a port number from 1 to 65535")
    security = values.get("security", "none")
    if security not in SECURITY:
        raise SettingsError(f"[email] security = {security!r}: use one of {', '.join(SECURITY)}")
    values["to"] = tuple(to)
    return dataclasses.replace(EmailOptions(), **values)


@dataclass(frozen=True)
class Settings:
    metrics: tuple[m.MetricDef, ...] = m.METRICS
    spikes: SpikeSettings = field(default_factory=SpikeSettings)
    report: ReportOptions = field(default_factory=ReportOptions)
    # not in `to_dict`: a report needs no recipients (and its notebook would keep them)
    email: EmailOptions = field(default_factory=EmailOptions)
    allow_incomplete: bool = False  # periods past the newest order day are refused unless True
    source: str = "defaults"  # where the settings came from, for the report's footer

    def metric(self, metric_id: str) -> m.MetricDef:
        return next(d for d in self.metrics if d.id == metric_id)

    def odr(self, channel: str) -> m.MetricDef:
        return self.metric(f"orderDefectRate.{channel.lower()}")

    @property
    def odr_target(self) -> float:
        """The stricter of the two channels' ODR targets (for views that show one ODR line)."""
        return min(self.odr("AFN").target, self.odr("MFN").target)

    def to_dict(self) -> dict:
        """JSON-able: only what differs from the defaults, so `from_dict` rebuilds it exactly."""
        base = {d.id: d for d in m.METRICS}
        metrics = {}
        for d in self.metrics:
            changed = {k: getattr(d, k) for k in m.TUNABLE if getattr(d, k) != getattr(base[d.id], k)}
            if changed:
                metrics[d.id] = changed
        return {
            "metrics": metrics,
            "spikes": _changed(self.spikes, SpikeSettings()),
            "report": _changed(self.report, ReportOptions()),
            "allow_incomplete": self.allow_incomplete,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, doc: dict | None) -> Settings:
        doc = doc or {}
        return _make(
            doc.get("metrics") or {},
            doc.get("spikes") or {},
            doc.get("report") or {},
            allow_incomplete=bool(doc.get("allow_incomplete", False)),
            source=str(doc.get("source", "defaults")),
        )


def _changed(obj: object, default: object) -> dict:
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if getattr(obj, f.name) != getattr(default, f.name)
    }


def _replace(kind: str, obj, values: dict):
    names = {f.name: f for f in dataclasses.fields(obj)}
    bad = set(values) - set(names)
    if bad:
        raise SettingsError(
            f"[{kind}]: unknown setting(s) {', '.join(sorted(bad))}; known: {', '.join(names)}"
        )
    for k, v in values.items():
        want = type(getattr(obj, k))
        ok = isinstance(v, want) or (want is float and isinstance(v, int) and not isinstance(v, bool))
        if not ok or isinstance(v, bool) != (want is bool):
            raise SettingsError(f"[{kind}] {k} = {v!r} is not a {_TYPE_WORDS[want]}")
        lo, hi, words = _bounds(k, want)
        if want is not bool and not (lo <= v <= hi and (v != 0 or lo == 0) and math.isfinite(v)):
            raise SettingsError(f"[{kind}] {k} = {v!r} is out of range: it must be {words}")
    return dataclasses.replace(
        obj, **{k: (float(v) if type(getattr(obj, k)) is float else v) for k, v in values.items()}
    )


_TYPE_WORDS = {int: "whole number", float: "number", bool: "true or false", str: "text"}


def _bounds(name: str, want: type) -> tuple[float, float, str]:
    """The range a [spikes] or [report] value must lie in, by what its name says it is: a
    probability or rate in (0, 1), a ratio above 1, a smoothing weight in (0, 1], a window of
    days, a count of rows or weeks, else a positive threshold."""
    if name.endswith(("alpha", "_target")):
        return 1e-12, 1 - 1e-12, "a fraction between 0 and 1"
    if name.endswith("lambda"):
        return 1e-6, 1.0, "between 0 (exclusive) and 1"
    if name.endswith("ratio"):
        return 1.0 + 1e-9, 100.0, "above 1 and at most 100"
    if want is int and ("window" in name or name.endswith(("_days", "_age"))):
        return (0 if name.endswith("gap_days") else 1), 365, "a whole number of days from 1 to 365"
    if want is int and name.endswith("weeks"):
        return 1, 104, "a whole number of weeks from 1 to 104"
    if want is int:
        return 1, 10_000, "a whole number from 1 to 10,000"
    return 1e-9, 1e6, "a positive number"


def _make(metric_overrides: dict, spike_values: dict, report_values: dict, **kw) -> Settings:
    return Settings(
        metrics=m.configured(metric_overrides),
        spikes=_replace("spikes", SpikeSettings(), spike_values),
        report=_replace("report", ReportOptions(), report_values),
        **kw,
    )


def _flatten(doc: dict, prefix: str = "") -> dict[str, dict]:
    """`{"orderDefectRate": {"afn": {"target": 1}}}` -> `{"orderDefectRate.afn": {"target": 1}}`."""
    out: dict[str, dict] = {}
    leaf = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    if leaf and prefix:
        out[prefix] = leaf
    elif leaf:
        raise SettingsError(
            f"settings outside a table: {', '.join(sorted(leaf))}; put them under [metric id], [spikes] or [report]"
        )
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
    return out


_CONFIG_MAX_BYTES = 1_000_000


def _read_toml(path: Path) -> dict:
    """The TOML document of a settings file; any problem is one SettingsError naming the file."""
    try:
        if not path.is_file():
            raise SettingsError(
                f"The settings file {path} does not exist."
                if not path.exists()
                else f"The settings file {path} is not a file; give a TOML file."
            )
        if path.stat().st_size > _CONFIG_MAX_BYTES:
            raise SettingsError(f"The settings file {path} is larger than 1 MB; it is not a settings file.")
        # utf-8-sig: Notepad saves UTF-8 with a byte-order mark, which TOML itself refuses
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc}).") from exc
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise SettingsError(f"{path}: cannot be read ({exc.__class__.__name__}).") from exc


def _split(doc: dict, where: str) -> tuple[dict[str, dict], dict, dict]:
    """(metric overrides, [spikes], [report]) of a settings document; `where` names it in errors."""
    for section in ("spikes", "report", "email"):
        if not isinstance(doc.get(section, {}), dict):
            raise SettingsError(f"{where}: '{section}' must be a table ([{section}])")
    rest = {k: v for k, v in doc.items() if k not in ("spikes", "report", "email")}
    return _flatten(rest), dict(doc.get("spikes", {})), dict(doc.get("report", {}))


def build(
    config_file: str | Path | None = None,
    overrides: dict | None = None,
    *,
    allow_incomplete: bool = False,
) -> Settings:
    """Defaults, then `config_file` (TOML), then `overrides` (metric id -> {target, ...}, or
    "spikes"/"report" -> {...}). A bad value of the file is refused naming the file, the table
    and the key (`settings.toml: [orderDefectRate.afn] window_days = 'x' is not ...`)."""
    metric_overrides: dict[str, dict] = {}
    spike_values: dict = {}
    report_values: dict = {}
    email = EmailOptions()
    if config_file:
        path = Path(config_file)
        doc = _read_toml(path)
        try:  # the file's values alone first, so an error names the file
            metric_overrides, spike_values, report_values = _split(doc, str(path))
            _make(metric_overrides, spike_values, report_values)
            email = _email_options(doc.get("email", {}))
        except SettingsError as exc:
            msg = str(exc)
            raise SettingsError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from exc
    for k, v in (overrides or {}).items():
        if not isinstance(v, dict):
            raise SettingsError(f"override {k!r}: give a dict of settings, not {v!r}")
        if k == "spikes":
            spike_values.update(v)
        elif k == "report":
            report_values.update(v)
        else:
            metric_overrides.setdefault(k, {}).update(v)
    return _make(
        metric_overrides,
        spike_values,
        report_values,
        allow_incomplete=allow_incomplete,
        source=str(config_file) if config_file else "defaults",
        email=email,
    )
