"""`python -m analysis ...`: sample, metrics, history, check, report.

Problems with the user's input end with one sentence and a non-zero exit (2); `--debug` shows
the traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from analysis import config
from analysis.errors import UsageError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; write it as YYYY-MM-DD") from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis", description="Amazon seller Account Health from the raw exports."
    )
    p.add_argument("--debug", action="store_true", help="show Python tracebacks")
    # --debug is accepted after the command too (SUPPRESS keeps the top-level value when absent)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks"
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser

    def add_parser(name: str, **kw) -> argparse.ArgumentParser:
        return _add(name, parents=[debug], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    s = sub.add_parser("sample", help="write the seeded sample account")
    s.add_argument("--out", type=Path, default=config.SAMPLE_DIR)
    s.add_argument("--seed", type=int, default=config.SAMPLE_SEED)
    s.add_argument("--end", type=_date, default=_date(config.SAMPLE_END_DATE), help="last day of the sample")

    def settings_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config",
            type=Path,
            help="TOML settings: [metric id] window_days/lag_days/target, [spikes] thresholds, [report] options",
        )
        sp.add_argument(
            "--allow-incomplete",
            action="store_true",
            help="compute an as-of day or period after the newest order day (marked incomplete)",
        )

    def data_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data", type=Path, required=True, help="folder of Seller Central exports")
        sp.add_argument(
            "--marketplace",
            help="only this marketplace: an id, a domain (amazon.de) or a country code (DE, UK); "
            "feedback whose order is unknown is taken as its",
        )
        settings_args(sp)

    mt = sub.add_parser("metrics", help="print the Account Health JSON document for one day")
    data_args(mt)
    mt.add_argument("--as-of", type=_date, required=True)

    h = sub.add_parser("history", help="every metric for every day of a range")
    data_args(h)
    h.add_argument("--from", dest="first", type=_date, required=True)
    h.add_argument("--to", dest="last", type=_date, required=True)
    h.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    h.add_argument("--out", type=Path, help="file to write (standard output for csv/json when omitted)")

    df = sub.add_parser("defects", help="one row per defect, or a breakdown with shrunk rates")
    data_args(df)
    df.add_argument("--as-of", type=_date, required=True)
    df.add_argument("--by", choices=("cause", "sku", "asin", "carrier", "channel", "marketplace_id", "week"))
    df.add_argument("--format", choices=("csv", "json"), default="csv")
    df.add_argument("--out", type=Path)

    sp = sub.add_parser("spikes", help="spike incidents (one per episode), or alarms per day and detector")
    data_args(sp)
    sp.add_argument("--as-of", type=_date, required=True)
    sp.add_argument(
        "--from", dest="first", type=_date, help="first day to report alarms for (default: 28 days back)"
    )
    sp.add_argument("--basis", choices=("arrival", "order"), default="arrival")
    sp.add_argument("--format", choices=("text", "json"), default="text")
    sp.add_argument(
        "--detectors", action="store_true", help="text: one line per day and detector instead of per incident"
    )

    c = sub.add_parser("check", help="list rows set aside; exit 1 when any")
    data_args(c)

    r = sub.add_parser("report", help="render metrics-summary reports for one or more periods")
    r.add_argument(
        "--data",
        type=Path,
        help="folder of Seller Central exports (default: the sample account, data/sample)",
    )
    period = r.add_mutually_exclusive_group()
    period.add_argument("--week", help="ISO week YYYY-Www, e.g. 2026-W46 (default: the latest complete week)")
    period.add_argument("--month", help="calendar month YYYY-MM, e.g. 2026-10")
    period.add_argument(
        "--as-of", dest="as_of", type=_date, help="one day YYYY-MM-DD: the 7 days ending on it"
    )
    period.add_argument(
        "--from", dest="first", type=_date, help="YYYY-MM-DD, with --to and --every: every period in a range"
    )
    r.add_argument("--to", dest="last", type=_date, help="YYYY-MM-DD, the end of a --from range")
    r.add_argument("--every", choices=("week", "month"), default="week")
    r.add_argument("--jobs", type=int, default=1, help="periods rendered in parallel")
    r.add_argument(
        "--account", help="account name for the folder and header (default: the data folder's name)"
    )
    r.add_argument(
        "--marketplace",
        default="all",
        help="only this marketplace: an id, a domain (amazon.de) or a country code (DE, UK); or 'all'",
    )
    r.add_argument("--out", type=Path, default=config.REPORTS_DIR)
    settings_args(r)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from analysis.errors import AnalysisError

    try:
        return _run(args)
    except (AnalysisError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of ours, not the user's input: say so
        if args.debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in the suite, not in your files; "
            "run again with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return 3


def _settings(args: argparse.Namespace):
    """The run's one settings object, from defaults and --config."""
    from analysis.metrics import settings

    return settings.build(
        getattr(args, "config", None), allow_incomplete=getattr(args, "allow_incomplete", False)
    )


def _load(args: argparse.Namespace, run, as_of: dt.date | None = None, what: str = ""):
    """Read the data folder, warn about skipped files and absent inputs, and refuse what the data
    cannot speak for (all rows of a kind set aside; an as-of day after the newest order)."""
    from analysis.inputs import sources
    from analysis.metrics import health

    data = sources.load(args.data, marketplace=_marketplace(args))
    _warn_skipped(data)
    health.require_usable(data)
    _require_marketplace(data, args.marketplace)
    if as_of is not None:
        health.require_covered(data, as_of, run, what)
        for line in (health.past_data_line(data, as_of), health.before_data_line(data, as_of, run.metrics)):
            if line:
                print(f"warning: {line}", file=sys.stderr)
    _warn_missing(data, run)
    if data.quarantine.height:
        print(
            f"warning: {data.quarantine.height} rows set aside (list them with `python -m analysis check`).",
            file=sys.stderr,
        )
    return data


def _marketplace(args: argparse.Namespace) -> str | None:
    """Resolve --marketplace once, up front, to an id (every command reads it the same way)."""
    from analysis.inputs import marketplaces

    if getattr(args, "marketplace", None) in (None, "all"):
        return None
    args.marketplace = marketplaces.resolve(args.marketplace)
    return args.marketplace


def _require_marketplace(data, marketplace: str | None) -> None:
    from analysis.inputs.marketplaces import marketplace_label
    from analysis.metrics import health

    present = sorted(health.channels_by_marketplace(data))
    if marketplace and marketplace not in present:
        raise UsageError(
            f"{marketplace_label(marketplace)} ({marketplace}) has no orders in {data.data_dir.name}; it holds "
            + ", ".join(f"{marketplace_label(x)} ({x})" for x in present)
        )


def _only(rows: list[dict], marketplace: str | None, key: str = "marketplaceId") -> list[dict]:
    return [r for r in rows if marketplace is None or r[key] == marketplace]


def _run(args: argparse.Namespace) -> int:
    run = _settings(args)
    if args.command == "sample":
        from analysis.inputs import sample

        paths = sample.generate(args.out, seed=args.seed, end=args.end)
        print(f"wrote {len(paths)} files to {args.out}")
        return 0
    if args.command == "metrics":
        from analysis.metrics import health

        res = health.account_health(_load(args, run, args.as_of), args.as_of, run)
        for key in ("performanceMetrics", "accountStatuses"):
            res.document[key] = _only(res.document[key], args.marketplace)
        print(res.to_json())
        return 0
    if args.command == "history":
        return _history(args)
    if args.command == "defects":
        from analysis.insights import defects

        data = _load(args, run, args.as_of)
        missing = _defect_files(data, run)
        if args.by:
            table = defects.breakdown(data, args.as_of, args.by, run.metrics, marketplace=args.marketplace)
        else:
            table = defects.defect_table(data, args.as_of, run.metrics)
            if args.marketplace:
                table = table.filter(table["marketplace_id"] == args.marketplace)
        if missing:  # every row says its counts can only be too low
            import polars as pl

            table = table.with_columns(pl.lit(", ".join(missing)).alias("data_missing"))
        if args.format == "csv":
            _emit(table.write_csv(), args.out)
        else:
            _emit(json.dumps(table.to_dicts(), default=str, indent=1, ensure_ascii=False), args.out)
        return 0
    if args.command == "spikes":
        from analysis.insights import spikes

        if args.first and args.first > args.as_of:
            raise UsageError(f"--from {args.first} is after --as-of {args.as_of}")
        data = _load(args, run, args.as_of)
        missing = _defect_files(data, run)
        alarms = _only(
            spikes.detect(data, args.as_of, run.spikes, first=args.first, basis=args.basis), args.marketplace
        )
        found = _only(
            spikes.incidents(data, args.as_of, run.spikes, first=args.first, basis=args.basis),
            args.marketplace,
        )
        if args.format == "json":
            doc = {
                "asOf": args.as_of.isoformat(),
                "basis": args.basis,
                "settings": run.to_dict()["spikes"],
                **({"dataMissing": missing} if missing else {}),
                "incidents": found,
                "alarms": alarms,
            }
            print(json.dumps(doc, indent=1))
        elif args.detectors:
            for a in alarms:
                print(_alarm_line(a))
            if not alarms:
                print("No spike: no detector fired.")
        else:
            if missing:
                print(
                    f"Incomplete: no {', '.join(missing)} file; only the defects of the files present are watched."
                )
            for i in found:
                print(_incident_line(i))
            if not found:
                print("No spike: no incident.")
        return 0
    if args.command == "check":
        from analysis.inputs import sources
        from analysis.metrics import health

        data = sources.load(args.data, marketplace=_marketplace(args))
        _warn_skipped(data)
        _warn_missing(data, run)
        changed = run.to_dict()
        tuned = [f"{k} {v}" for k, v in changed["metrics"].items()]
        tuned += [f"[{sec}] {k} = {v}" for sec in ("spikes", "report") for k, v in changed[sec].items()]
        print(f"settings: {run.source}" + "".join(f"; {t}" for t in tuned))
        for f in data.files:
            print(
                f"{f.path.name}: {f.kind}, {f.rows} rows: {f.accepted} used, {f.quarantined} set aside, "
                f"{f.duplicates} duplicates, {f.superseded} replaced by a later download; encoding {f.encoding}"
            )
        for r in data.quarantine.iter_rows(named=True):
            print(f"{r['file']}:{r['line']}: column '{r['column']}': {r['reason']} (value {r['value']!r})")
        for n in data.notes:
            print(f"note: {n}")
        print(f"{data.quarantine.height} rows set aside")
        return 1 if data.quarantine.height else 0
    if args.command == "report":
        return _report(args, run)
    raise AssertionError(args.command)


def _report(args: argparse.Namespace, run) -> int:
    from analysis.inputs import sources
    from analysis.metrics import health
    from analysis.report import periods
    from analysis.report import render as reports

    if args.data is None:
        args.data = config.SAMPLE_DIR
        print(
            f"no --data given: reporting on the sample account ({config.SAMPLE_DIR}); pass --data DIR for yours"
        )
    if args.last and not args.first:
        raise UsageError("--to goes with --from")
    args.marketplace = _marketplace(args) or "all"
    data = sources.load(args.data)
    health.require_usable(data)
    _require_marketplace(data, None if args.marketplace == "all" else args.marketplace)
    _warn_missing(data, run)
    newest = health.newest_order_day(data)
    if args.first or args.last:
        if not (args.first and args.last):
            raise UsageError("--from and --to go together")
        labels = [p.label for p in periods.periods_between(args.first, args.last, args.every)]
        if not labels:
            raise UsageError(f"no complete {args.every} between {args.first} and {args.last}")
    elif args.month:
        labels = [periods.parse_period(args.month).label]
    elif args.as_of:
        labels = [args.as_of.isoformat()]
    else:
        if args.week:
            periods.parse_week(args.week)  # "2026-46" is a mistyped week, not a month
        labels = [args.week or periods.latest_complete_week(newest)]
    for label in labels:  # refuse before anything is written
        p = periods.parse_period(label)
        health.require_covered(data, p.as_of, run, f"{p.kind} {p.label} (as of {p.as_of})")
    results, errors = reports.render_many(
        args.data,
        labels,
        settings=run,
        newest=newest,
        jobs=args.jobs,
        progress=sys.stderr.isatty(),
        marketplace=args.marketplace,
        account=args.account,
        out_root=args.out,
    )
    for res in results:
        print(f"report for {res.period}: {res.html}")
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    if results:
        print(f"index of all reports: {args.out / 'index.html'}")
    return 1 if errors else 0


def _history(args: argparse.Namespace) -> int:
    from analysis.metrics import definitions as metrics
    from analysis.metrics import health

    if args.last < args.first:
        raise UsageError("--to is before --from")
    run = _settings(args)
    data = _load(args, run, args.last, f"--to day {args.last}")
    defs = run.metrics
    card = health.mark_incomplete(
        metrics.scorecard(metrics.history(data, args.first, args.last, defs), defs), data, defs
    )
    if args.marketplace:
        card = card.filter(card["marketplace_id"] == args.marketplace)
    if args.format == "parquet":
        if not args.out:
            raise UsageError("--format parquet needs --out FILE")
        card.write_parquet(args.out)
    elif args.format == "csv":
        text = card.write_csv()
        _emit(text, args.out)
    else:
        _emit(json.dumps(card.to_dicts(), default=str, indent=1), args.out)
    return 0


def _defect_files(data, run) -> list[str]:
    """The ODR's absent kinds; with none of them there is no defect to show."""
    from analysis.metrics import health

    missing = health.odr_missing(data, run.metrics)
    if not any(data.has(k) for k in ("feedback", "claims", "chargebacks")):
        raise UsageError(
            f"No feedback, A-to-z claims or chargebacks file in {data.data_dir.name}: there is no defect to show; "
            "add the exports to the folder."
        )
    return missing


def _drivers_text(drivers: dict) -> str:
    return "; ".join(
        f"{k}: " + ", ".join(f"{x['value']} ({x['defects']})" for x in v) for k, v in drivers.items() if v
    )


def _alarm_line(a: dict) -> str:
    from analysis import wording

    since = f" since {a['windowStart']}" if a["windowStart"] != a["date"] else ""
    return (
        f"{a['date']} {a['marketplaceId']} {wording.CHANNEL_LABEL[a['channel']]} {a['detector']}: "
        f"{wording.count(a['observed'], 'defect')}{since}, {a['expected']:.2f} expected, "
        f"{wording.p_text(a['pValue'])}; {_drivers_text(a['drivers'])}"
    )


def _incident_line(i: dict) -> str:
    from analysis import wording

    learning = f" (learning: {i['historyDays']} days of history)" if i.get("learning") else ""
    return (
        f"{i['firstDay']} to {i['lastDay']} {i['marketplaceId']} {wording.CHANNEL_LABEL[i['channel']]}: "
        f"{wording.count(i['observed'], 'defect')} against {i['expected']:.1f} expected, "
        f"{wording.p_text(i['pValue'])}, strongest test {i['detector']}{learning}; {_drivers_text(i['drivers'])}"
    )


def _warn_missing(data, run) -> None:
    """One line per absent export kind, naming the metrics it leaves incomplete."""
    from analysis.metrics import health

    for line in health.missing_input_lines(data, run.metrics):
        print(f"warning: {line}", file=sys.stderr)


def _warn_skipped(data) -> None:
    for name, why in data.skipped:
        print(f"warning: skipped {name}: {why}", file=sys.stderr)


def _emit(text: str, out: Path | None) -> None:
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
