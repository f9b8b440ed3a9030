"""`python -m analysis ...`: sample, metrics, history, check, report.

Problems with the user's input end with one sentence and a non-zero exit (2); `--debug` shows
the traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import warnings
from pathlib import Path

from analysis import config
from analysis.errors import PeriodError, UsageError
from analysis.safety import terminal_text

# Days the suite computes: windows reach months before a day and periods end after it, and
# Python's dates stop at years 1 and 9999, so a day far outside the years of any data is refused
# with one sentence rather than an overflow deep inside.
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"'{terminal_text(text)}' is not a date; write it as YYYY-MM-DD"
        ) from exc


def _count(text: str) -> int:
    """A number of parallel jobs: a whole number from 1 (0 or less would quietly mean one)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"'{terminal_text(text)}' is not a whole number of 1 or more")
    return n


def _folder(text: str) -> Path:
    """A folder argument: an empty one would silently mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a folder (the empty name would mean the current folder)")
    return Path(text)


class _Parser(argparse.ArgumentParser):
    """argparse, with what it echoes of the arguments made safe for the terminal."""

    def error(self, message: str):  # type: ignore[override]
        super().error(terminal_text(message))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m analysis", description="Amazon seller Account Health from the raw exports.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks")
    cache_help = (
        "folder of the on-disk cache of typed rows (default $AH_CACHE_DIR, else "
        "$XDG_CACHE_HOME/amazon-account-health or ~/.cache/amazon-account-health)"
    )
    p.add_argument("--cache-dir", type=_folder, help=cache_help)
    p.add_argument("--no-cache", action="store_true", help="read every file; write no cache")
    # --debug and the cache options are accepted after the command too (SUPPRESS keeps the
    # top-level value when absent)
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks"
    )
    debug.add_argument("--cache-dir", type=_folder, default=argparse.SUPPRESS, help=cache_help)
    debug.add_argument(
        "--no-cache", action="store_true", default=argparse.SUPPRESS, help="read every file; write no cache"
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser

    def add_parser(name: str, **kw) -> argparse.ArgumentParser:
        return _add(name, parents=[debug], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    s = sub.add_parser("sample", help="write the seeded sample account")
    s.add_argument(
        "--out",
        type=Path,
        default=config.SAMPLE_DIR,
        help="folder to write (default data/sample): a new or empty folder, or one holding only a "
        "previous sample (its files and manifest.json), which is replaced; anything else is refused",
    )
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

    def period_args(sp: argparse.ArgumentParser, default: str) -> argparse._MutuallyExclusiveGroup:
        """--week, --month or --as-of: one period, the same words in every command."""
        group = sp.add_mutually_exclusive_group()
        group.add_argument("--week", help=f"ISO week YYYY-Www, e.g. 2026-W46 (default: {default})")
        group.add_argument("--month", help="calendar month YYYY-MM, e.g. 2026-10")
        group.add_argument(
            "--as-of", dest="as_of", type=_date, help="one day YYYY-MM-DD: the 7 days ending on it"
        )
        return group

    mt = sub.add_parser("metrics", help="print the Account Health JSON document for one day")
    data_args(mt)
    mt.add_argument("--as-of", type=_date, required=True)

    h = sub.add_parser("history", help="every metric for every day of a range")
    data_args(h)
    h.add_argument("--from", dest="first", type=_date, required=True)
    h.add_argument("--to", dest="last", type=_date, required=True)
    h.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    h.add_argument(
        "--out",
        type=Path,
        help="file to write, replaced if it exists, not inside --data (standard output for csv/json when omitted)",
    )

    df = sub.add_parser("defects", help="one row per defect, or a breakdown with shrunk rates")
    data_args(df)
    df.add_argument("--as-of", type=_date, required=True)
    df.add_argument("--by", choices=("cause", "sku", "asin", "carrier", "channel", "marketplace_id", "week"))
    df.add_argument("--format", choices=("csv", "json"), default="csv")
    df.add_argument(
        "--out",
        type=Path,
        help="file to write, replaced if it exists, not inside --data (default: standard output)",
    )

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

    td = sub.add_parser(
        "today", help="the daily action list: orders to ship, invoices, messages, feedback, claims"
    )
    data_args(td)
    td.add_argument(
        "--as-of", type=_date, help="YYYY-MM-DD, the day of the list (default: the newest order day)"
    )
    td.add_argument("--format", choices=("table", "csv", "json"), default="table")
    td.add_argument(
        "--out", type=Path, help="file to write, replaced if it exists (default: standard output)"
    )

    rm = sub.add_parser(
        "removals", help="every feedback Amazon's rules let you ask to remove, with its deadline"
    )
    data_args(rm)
    rm.add_argument("--as-of", type=_date, required=True)
    rm.add_argument(
        "--all", action="store_true", help="every negative feedback with its verdict, not only the candidates"
    )
    rm.add_argument("--format", choices=("csv", "json"), default="csv")
    rm.add_argument(
        "--out", type=Path, help="file to write, replaced if it exists (default: standard output)"
    )

    em = sub.add_parser("email", help="send a period's summary by e-mail, the full report attached")
    em.add_argument(
        "--data", type=Path, help="folder of Seller Central exports (default: the sample account)"
    )
    period_args(em, "the latest complete week")
    em.add_argument(
        "--account", help="account name for the subject and header (default: the data folder's name)"
    )
    em.add_argument("--marketplace", default="all", help="only this marketplace (id, domain or country code)")
    em.add_argument("--to", action="append", help="a recipient (repeat for more; or [email] to in --config)")
    em.add_argument("--from", dest="sender", help="the sender address (or [email] sender)")
    em.add_argument("--smtp-host", help="SMTP server (or [email] smtp_host; default localhost)")
    em.add_argument(
        "--smtp-port", type=int, help="SMTP port (or [email] smtp_port; default 25, 465 with --ssl)"
    )
    tls = em.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="upgrade the connection with STARTTLS")
    tls.add_argument("--ssl", action="store_true", help="connect over TLS (SMTPS)")
    em.add_argument(
        "--dry-run", action="store_true", help="write the message to --out FILE.eml, send nothing"
    )
    em.add_argument("--out", type=Path, help="with --dry-run: the .eml file to write")
    settings_args(em)

    pl_ = sub.add_parser("pull", help="download exports through Amazon's SP-API into DIR/raw/ (incremental)")
    pl_.add_argument(
        "--account", required=True, help="the credentials profile of python-amazon-sp-api to use"
    )
    pl_.add_argument(
        "--data", type=Path, required=True, help="the account's data folder (files go to DIR/raw/)"
    )
    pl_.add_argument(
        "--from", dest="first", type=_date, help="first day YYYY-MM-DD (default: 180 days before --to)"
    )
    pl_.add_argument("--to", dest="last", type=_date, help="last day YYYY-MM-DD (default: yesterday, UTC)")
    pl_.add_argument(
        "--reports",
        help="comma-separated: orders, feedback, returns, fba-shipments, performance (default: all)",
    )
    pl_.add_argument(
        "--marketplace", action="append", help="marketplace(s) of one region (id, domain or country code)"
    )
    pl_.add_argument("--endpoint", help="SP-API base URL (default: Amazon's for the marketplace's region)")
    pl_.add_argument("--token-url", help="LWA token URL (default: Amazon's)")

    rc = sub.add_parser(
        "reconcile", help="Amazon's counts (its V2 snapshot) against ours, each difference explained"
    )
    data_args(rc)
    rc.add_argument(
        "--as-of", type=_date, required=True, help="YYYY-MM-DD: the newest snapshot on or before it"
    )
    rc.add_argument("--format", choices=("text", "json"), default="text")

    rn = sub.add_parser("render", help="execute any notebook of notebooks/ and export it as offline HTML")
    rn.add_argument(
        "notebook",
        help="a notebook of notebooks/ (defects_by_cause, spike_detection, metrics_summary) or a path",
    )
    rn.add_argument(
        "--data", type=Path, help="folder of Seller Central exports (default: the sample account)"
    )
    rn.add_argument("--as-of", type=_date, help="YYYY-MM-DD (default: each notebook's own)")
    rn.add_argument("--out", type=Path, help="the HTML file to write (default: reports/<account>/notebooks/)")
    settings_args(rn)

    r = sub.add_parser("report", help="render metrics-summary reports for one or more periods")
    r.add_argument(
        "--data",
        type=Path,
        help="folder of Seller Central exports (default: the sample account, data/sample)",
    )
    period = period_args(r, "the latest complete week")
    period.add_argument(
        "--from", dest="first", type=_date, help="YYYY-MM-DD, with --to and --every: every period in a range"
    )
    r.add_argument("--to", dest="last", type=_date, help="YYYY-MM-DD, the end of a --from range")
    r.add_argument("--every", choices=("week", "month"), help="with --from and --to: week (default) or month")
    r.add_argument("--jobs", type=_count, default=1, help="periods rendered in parallel")
    r.add_argument(
        "--account",
        help="account name for the folder and header (default: the data folder's name); one folder name: "
        "letters, digits, spaces, '-', '_', '#', no '/', '\\', ':' or leading '.'",
    )
    r.add_argument(
        "--marketplace",
        default="all",
        help="only this marketplace: an id, a domain (amazon.de) or a country code (DE, UK); or 'all'",
    )
    r.add_argument(
        "--out",
        type=Path,
        default=config.REPORTS_DIR,
        help="folder of reports (default: reports/): <account>/<period>/ and index.html are written inside it",
    )
    settings_args(r)

    fl = sub.add_parser(
        "fleet", help="every account of an accounts file in one run (on Dask): fleet.json and one page"
    )
    fl.add_argument(
        "--accounts",
        type=Path,
        required=True,
        help="TOML file of [[account]] tables: name, data, optional config and recipients",
    )
    period_args(fl, "each account's latest complete week")
    where = fl.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", help="address of a running Dask scheduler (tcp://HOST:8786) instead of a local cluster"
    )
    where.add_argument(
        "--workers", type=int, help="worker processes of the local cluster (default: one per core)"
    )
    fl.add_argument("--reports", action="store_true", help="render each account's report too")
    fl.add_argument(
        "--email", action="store_true", help="send each account's e-mail to its recipients (SMTP as `email`)"
    )
    fl.add_argument("--dashboard", action="store_true", help="print the Dask dashboard's address")
    fl.add_argument(
        "--out",
        type=Path,
        default=config.REPORTS_DIR,
        help="folder of reports (default: reports/): fleet/<period>/ and each account's reports inside it",
    )
    fl.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="compute a period after an account's newest order day (marked incomplete)",
    )
    return p


def entry() -> None:
    """The command as a process (`python -m analysis`, `account-health`): `main`, then its exit
    status; after Ctrl-C through `errors.exit_interrupted`, so that it is 130."""
    from analysis.errors import INTERRUPTED_EXIT, exit_interrupted, interrupted

    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C outside the command's own handler (reading the arguments)
        if "--debug" in sys.argv:
            raise
        code = interrupted()
    if code == INTERRUPTED_EXIT:
        exit_interrupted()
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from analysis.errors import AnalysisError, interrupted

    _cache_environment(args)

    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C: stopped as asked, in one line (files are written whole or not at all)
        if args.debug:
            raise
        return interrupted()
    except AnalysisError as exc:
        if args.debug:
            raise
        _err(f"error: {exc}")
        return 2
    except OSError as exc:
        if args.debug:
            raise
        _err(f"error: {_os_error(exc)}")
        return 2
    except Exception as exc:  # a bug of ours, not the user's input: say so
        if args.debug:
            raise
        _err(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in the suite, not in your files; "
            "run again with --debug for the traceback and report it."
        )
        return 3


def _os_error(exc: OSError) -> str:
    """An operating-system error as a sentence: what the system said, and of which file."""
    what = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return f"{what}." if exc.strerror else str(exc)
    from analysis.safety import terminal_text

    return f"{terminal_text(str(exc.filename))}: {what.lower()} (the operating system refused it)."


def _cache_environment(args: argparse.Namespace) -> None:
    """--cache-dir and --no-cache hold for the whole run: set in the environment, they reach the
    readers of this process and of every kernel and worker it starts."""
    from analysis.inputs import cache

    if args.cache_dir is not None:
        os.environ[cache.CACHE_ENV] = str(Path(args.cache_dir).absolute())
    if args.no_cache:
        os.environ[cache.SWITCH_ENV] = "off"
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        """The cache's notes (rebuilt when damaged, not writable) as one plain line."""
        if issubclass(category, cache.CacheWarning):
            _err(f"warning: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _say(text: object) -> None:
    """Print a line to standard output; file names and data in it shown safely (`terminal_text`)."""
    print(terminal_text(text))


def _err(text: object) -> None:
    print(terminal_text(text), file=sys.stderr)


def _json_out(text: str) -> str:
    """JSON for the terminal: characters `terminal_text` would not print raw (C1 controls, DEL,
    bidi overrides, lone surrogates) written as \\uXXXX escapes, which JSON reads back the same."""
    return _NOT_PLAIN.sub(lambda m: m[0] if terminal_text(m[0]) == m[0] else _json_escape(m[0]), text)


_NOT_PLAIN = re.compile(r"[^\x20-\x7e\n]")


def _json_escape(c: str) -> str:
    n = ord(c)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


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
                _err(f"warning: {line}")
    _warn_loaded(data, run, skipped=False)
    return data


def _warn_loaded(data, run, skipped: bool = True) -> None:
    """What every command that reads a folder says on stderr: files skipped, exports absent, rows
    set aside."""
    if skipped:
        _warn_skipped(data)
    _warn_missing(data, run)
    if data.quarantine.height:
        _err(f"warning: {data.quarantine.height} rows set aside (list them with `python -m analysis check`).")


def _marketplace(args: argparse.Namespace) -> str | None:
    """Resolve --marketplace once, up front, to an id (every command reads it the same way)."""
    from analysis.inputs import marketplaces

    if getattr(args, "marketplace", None) in (None, "all"):  # every marketplace
        args.marketplace = None
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


def _check_days(args: argparse.Namespace) -> None:
    """Every day given lies between FIRST_DAY and LAST_DAY (refused with one sentence otherwise)."""
    for dest, flag in (("as_of", "--as-of"), ("first", "--from"), ("last", "--to"), ("end", "--end")):
        day = getattr(args, dest, None)
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise PeriodError(
                f"{flag} {day} is outside the days this suite computes ({FIRST_DAY} to {LAST_DAY}); "
                "give a day within your data."
            )
    for flag, text in (("--week", getattr(args, "week", None)), ("--month", getattr(args, "month", None))):
        year = re.match(r"\s*(\d{4})", text or "")
        if year and not FIRST_DAY.year <= int(year[1]) <= LAST_DAY.year:
            raise PeriodError(
                f"{flag} {terminal_text(text.strip())} is outside the years this suite computes "
                f"({FIRST_DAY.year} to {LAST_DAY.year}); give a period within your data."
            )


def _check_out_file(args: argparse.Namespace) -> None:
    """`--out FILE` of history, defects, today, removals, email and render: a regular file
    (replaced whole if it exists; never a device, pipe or link, which would be replaced or written
    through) in an existing folder, never inside the data folder (its exports are read, never
    written); checked before reading."""
    out = getattr(args, "out", None)
    if out is None:
        return
    shown = terminal_text(out)
    if out.is_dir():
        suffix = {"email": "eml", "render": "html"}.get(args.command, getattr(args, "format", "txt"))
        raise UsageError(f"--out {shown} is a folder; give a file name such as {args.command}.{suffix}.")
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise UsageError(
            f"--out {shown} is not a regular file (a link, device or pipe), which would be replaced; "
            "give the name of a new or ordinary file."
        )
    target = out.resolve()
    if not target.parent.is_dir():
        raise UsageError(
            f"--out {shown}: the folder {terminal_text(out.parent)} does not exist; create it first."
        )
    given = args.data or config.SAMPLE_DIR  # render and email read the sample without --data
    data = given.resolve()
    if target == data or data in target.parents:
        raise UsageError(
            f"--out {shown} is inside the data folder {terminal_text(given)}, whose exports are only read; "
            "write it elsewhere."
        )


def _run(args: argparse.Namespace) -> int:
    _check_days(args)
    if args.command in ("history", "defects", "today", "removals", "email", "render"):
        _check_out_file(args)
    run = _settings(args)
    if args.command == "sample":
        from analysis.inputs import sample

        paths = sample.generate(args.out, seed=args.seed, end=args.end)
        _say(f"wrote {len(paths)} files to {args.out}")
        return 0
    if args.command == "metrics":
        from analysis.metrics import health

        res = health.account_health(_load(args, run, args.as_of), args.as_of, run)
        for key in ("performanceMetrics", "accountStatuses"):
            res.document[key] = _only(res.document[key], args.marketplace)
        print(_json_out(res.to_json()))
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
        if missing:  # a row whose marketplace lacks a file the ODR needs: its counts can only be too low
            import polars as pl

            from analysis.metrics import health

            if "marketplace_id" in table.columns:
                by_mkt = {
                    k: ", ".join(v) for k, v in health.odr_missing_by_marketplace(data, run.metrics).items()
                }
                table = table.with_columns(
                    pl.col("marketplace_id")
                    .replace_strict(by_mkt, default="", return_dtype=pl.String)
                    .alias("data_missing")
                )
            else:
                table = table.with_columns(pl.lit(", ".join(missing)).alias("data_missing"))
        if args.format == "csv":
            _emit_csv(table, args.out)
        else:
            _emit(json.dumps(table.to_dicts(), default=str, indent=1, ensure_ascii=False), args.out, "json")
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
            print(_json_out(json.dumps(doc, indent=1)))
        elif args.detectors:
            for a in alarms:
                _say(_alarm_line(a))
            if not alarms:
                _say("No spike: no detector fired.")
        else:
            if missing:
                _say(
                    f"Incomplete: no {', '.join(missing)} file; only the defects of the files present are watched."
                )
            for i in found:
                _say(_incident_line(i))
            if not found:
                _say("No spike: no incident.")
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
        _say(f"settings: {run.source}" + "".join(f"; {t}" for t in tuned))
        for f in data.files:
            _say(
                f"{f.path.name}: {f.kind}, {f.rows} rows: {f.accepted} used, {f.quarantined} set aside, "
                f"{f.duplicates} duplicates, {f.superseded} replaced by a later download; encoding {f.encoding}"
            )
        for r in data.quarantine.iter_rows(named=True):
            _say(f"{r['file']}:{r['line']}: column '{r['column']}': {r['reason']} (value {r['value']!r})")
        for n in data.notes:
            _say(f"note: {n}")
        _say(f"{data.quarantine.height} rows set aside")
        return 1 if data.quarantine.height else 0
    if args.command == "today":
        return _today(args, run)
    if args.command == "render":
        from analysis.report.notebooks import render_notebook

        if args.data is None:
            args.data = config.SAMPLE_DIR
        data = _load(args, run, args.as_of)  # refused or warned here, as by every command
        path = render_notebook(args.notebook, args.data, run, args.as_of, args.out, data=data)
        _say(f"wrote {path}")
        return 0
    if args.command == "reconcile":
        return _reconcile(args, run)
    if args.command == "pull":
        return _pull(args)
    if args.command == "removals":
        return _removals(args, run)
    if args.command == "email":
        return _email(args, run)
    if args.command == "report":
        return _report(args, run)
    if args.command == "fleet":
        return _fleet(args)
    raise AssertionError(args.command)


def _fleet(args: argparse.Namespace) -> int:
    """Every account of the accounts file; exit 1 when an account failed (after writing all)."""
    from analysis.fleet import run as fleet

    period = args.week or args.month
    res = fleet.run(
        args.accounts,
        period=period,
        as_of=args.as_of,
        scheduler=args.scheduler,
        workers=args.workers,
        reports=args.reports,
        email=args.email,
        out_root=args.out,
        dashboard=args.dashboard,
        allow_incomplete=args.allow_incomplete,
        say=_err,
    )
    ok = len(res.rows) - len(res.failed)
    _say(f"{ok} of {len(res.rows)} accounts computed in {res.seconds:.0f} s: {res.page_path}")
    for row in res.failed:
        _err(f"failed: {row['name']}: {row.get('error', '')}")
    return res.exit_code


def _report(args: argparse.Namespace, run) -> int:
    from analysis.inputs import sources
    from analysis.metrics import health
    from analysis.report import periods
    from analysis.report import render as reports

    if args.data is None:
        args.data = config.SAMPLE_DIR
        _say(
            f"no --data given: reporting on the sample account ({config.SAMPLE_DIR}); pass --data DIR for yours"
        )
    if args.last and not args.first:
        raise UsageError("--to goes with --from")
    # names that become folders are checked before anything is read or written
    if args.account is None:
        args.account = reports.safe_name(
            args.data.resolve().name, "The data folder's name (the default account name; pass --account NAME)"
        )
    else:
        args.account = reports.safe_name(args.account, "--account")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {terminal_text(args.out)} is a file; give the folder the reports go in.")
    if args.out.resolve() == args.data.resolve():
        raise UsageError(
            f"--out {terminal_text(args.out)} is the data folder, whose exports are only read; give another folder."
        )
    args.marketplace = _marketplace(args) or "all"
    data = sources.load(args.data)
    health.require_usable(data)
    _require_marketplace(data, None if args.marketplace == "all" else args.marketplace)
    _warn_loaded(data, run)
    newest = health.newest_order_day(data)
    if args.every and not args.first:
        raise UsageError("--every goes with --from and --to (a range of periods); it was not used")
    if args.first or args.last:
        if not (args.first and args.last):
            raise UsageError("--from and --to go together")
        every = args.every or "week"
        between = periods.periods_between(args.first, args.last, every)
        labels = [p.label for p in between]
        if not labels:
            raise UsageError(f"no complete {every} between {args.first} and {args.last}")
        after = periods.periods_between(
            args.last + dt.timedelta(days=1), args.last + dt.timedelta(days=40), every
        )
        if after and after[0].first <= args.last:  # the period --to falls in ends after it
            _say(
                f"note: {after[0].label} ends {after[0].as_of}, after --to {args.last}: not reported "
                f"(a {every} is reported as of its last day)"
            )
    elif args.month:
        labels = [periods.parse_period(args.month).label]
    elif args.as_of:
        labels = [args.as_of.isoformat()]
    else:
        if args.week:
            periods.parse_week(args.week)  # "2026-46" is a mistyped week, not a month
        labels = [periods.parse_period(args.week or periods.latest_complete_week(newest)).label]
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
        _say(f"report for {res.period}: {res.html}")
    for err in errors:
        _err(f"error: {err}")
    if results:
        _say(f"index of all reports: {args.out / 'index.html'}")
    return 1 if errors else 0


def _today(args: argparse.Namespace, run) -> int:
    """The daily action list, sorted by deadline."""
    from analysis.insights import actions
    from analysis.metrics import health

    if args.as_of is None:
        data = _load(args, run)
        args.as_of = health.newest_order_day(data)
    else:
        data = _load(args, run, args.as_of)
    found = actions.today(data, args.as_of)
    table = found.actions
    if args.marketplace:
        table = table.filter(table["marketplace_id"] == args.marketplace)
        kept = [s for s in found.not_checked if s.get("marketplaceId") in (None, args.marketplace)]
        found = actions.ActionList(found.as_of, table, kept)
    for s in found.not_checked:
        _err(f"warning: {s['kind']}: {s['reason']}")
    if args.format == "json":
        _emit(json.dumps(found.to_dict(), indent=1, ensure_ascii=False), args.out, "json")
    elif args.format == "csv":
        import polars as pl

        _emit_csv(table.with_columns(pl.col("due").dt.strftime("%Y-%m-%dT%H:%M:%SZ")), args.out)
    else:
        lines = [f"Actions as of {args.as_of} (end of day, UTC): {actions.summary_line(found)}"]
        lines += [f"{s['kind']}: {s['reason']}" for s in found.not_checked]  # never read as "nothing to do"
        for r in table.iter_rows(named=True):
            due = r["due"].strftime("%Y-%m-%d %H:%M") if r["due"] else "-"
            lines.append(f"{due}  {r['kind']:<16} {r['order_id'] or '-':<19}  {r['what']}  {r['link']}")
        _emit("\n".join(lines) + "\n", args.out, "text")
    return 0


def _removals(args: argparse.Namespace, run) -> int:
    """Every removal candidate (or every negative feedback with --all), nearest deadline first."""
    import polars as pl

    from analysis.insights import triage

    data = _load(args, run, args.as_of)
    if not data.has("feedback"):
        raise UsageError(f"No seller feedback file in {data.data_dir.name}: there is no feedback to triage.")
    t = triage.triage(data, args.as_of)
    if args.marketplace:
        t = t.filter(pl.col("marketplace_id") == args.marketplace)
    if not args.all:
        t = t.filter(
            pl.col("verdict").is_in([triage.REMOVABLE, triage.STRIKE, triage.STRIKE_IF_BUY_SHIPPING])
            & ~pl.col("expired")
        )
    cols = ["order_id", "marketplace_id", "feedback_date", "rating", "verdict", "rule", "trigger_words",
            "request_by", "days_left", "expired", "comments"]  # fmt: skip
    t = t.select(cols)
    if args.format == "csv":
        _emit_csv(t, args.out)
    else:
        _emit(json.dumps(t.to_dicts(), default=str, indent=1, ensure_ascii=False), args.out, "json")
    return 0


def _email(args: argparse.Namespace, run) -> int:
    """Build the period's summary e-mail (the report attached) and send it, or write it (--dry-run)."""
    import tempfile

    from analysis.deliver import email as mail
    from analysis.report import context
    from analysis.report import render as reports

    if args.data is None:
        args.data = config.SAMPLE_DIR
        _say(f"no --data given: the sample account ({config.SAMPLE_DIR}); pass --data DIR for yours")
    opts = run.email
    security = "ssl" if args.ssl else "starttls" if args.starttls else opts.security
    m = mail.Mail(
        to=tuple(args.to or opts.to),
        sender=args.sender or opts.sender,
        smtp_host=args.smtp_host or opts.smtp_host,
        smtp_port=args.smtp_port
        or (opts.smtp_port if opts.smtp_port else (465 if security == "ssl" else 25)),
        security=security,
    )
    from analysis.safety import is_host, is_mail_address

    for flag, values in (("--to", args.to or ()), ("--from", [args.sender] if args.sender else [])):
        for a in values:
            if not is_mail_address(a):
                raise UsageError(
                    f"{flag} {terminal_text(a)!r} is not one e-mail address (no spaces, line breaks, commas or "
                    "brackets); give one address per --to, like --to ops@example.com."
                )
    if args.smtp_host and not is_host(args.smtp_host):
        raise UsageError(
            f"--smtp-host {terminal_text(args.smtp_host)!r} is not a host name or an IP address."
        )
    if args.dry_run and args.out is None:
        raise UsageError("--dry-run writes the message to a file: give --out FILE.eml")
    if not m.to and not args.dry_run:
        raise UsageError(
            "no recipient: give --to ADDRESS (repeat for more) or [email] to = [...] in --config"
        )
    if not args.dry_run:
        mail.check(m)  # a wrong host or password is said before the report is made
    account = reports.safe_name(args.account, "--account") if args.account else None
    marketplace = _marketplace(args) or "all"
    period = args.week or args.month or (str(args.as_of) if args.as_of else reports.default_week(args.data))
    ctx = context.prepare(args.data, run, marketplace=marketplace, account=account, period=period)
    _warn_loaded(ctx.result.data, run)
    with tempfile.TemporaryDirectory() as tmp:
        res = reports.render(
            args.data, run, period=ctx.week, marketplace=marketplace, account=ctx.account,
            out_root=Path(tmp), index=False,
        )  # fmt: skip
        msg = mail.build(ctx, m, res.html)
    if args.dry_run:
        from analysis.report.render import _atomic_write

        _atomic_write(args.out, bytes(msg))
        _say(f"wrote {args.out} ({msg['Subject']}); nothing sent")
        return 0
    mail.send(msg, m)
    _say(f"sent '{msg['Subject']}' to {len(m.to)} recipient(s) via {m.smtp_host}:{m.smtp_port}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    """Fetch the exports Amazon's API serves; exit 1 when some report could not be fetched."""
    from analysis.inputs import spapi

    reports = [r.strip() for r in (args.reports or "").split(",") if r.strip()]
    result = spapi.pull(
        args.account,
        args.data,
        args.first,
        args.last,
        reports,
        endpoint=args.endpoint,
        token_url=args.token_url,
        progress=_say,
        marketplaces=args.marketplace,
    )
    _say(result.not_in_api)
    for o in result.failures:
        _err(f"warning: {o.line()}")
    return 0 if result.ok else 1


def _reconcile(args: argparse.Namespace, run) -> int:
    """Each count of Amazon's newest snapshot against ours over the same window, and why they differ."""
    from analysis.inputs.marketplaces import marketplace_label
    from analysis.insights import reconcile

    data = _load(args, run, args.as_of)
    rows = [
        r
        for r in reconcile.reconcile(data, args.as_of, run.metrics)
        if not args.marketplace or r.marketplace_id == args.marketplace
    ]
    if not rows:
        raise UsageError(
            f"No Amazon performance report (V2 snapshot) dated on or before {args.as_of} with counts in "
            f"{data.data_dir.name}: there is nothing to reconcile."
        )
    if args.format == "json":
        _emit(
            json.dumps({"asOf": args.as_of.isoformat(), "rows": [r.to_dict() for r in rows]}, indent=1),
            None,
            "json",
        )
        return 0
    for r in rows:
        same = "same" if r.difference == 0 else f"Amazon {r.difference:+,}"
        _say(
            f"{marketplace_label(r.marketplace_id)} {r.title} {r.part}: Amazon {r.amazon:,}, ours {r.ours:,} ({same}); "
            f"window {r.window_from} to {r.window_to} ({r.window_source}), snapshot of {r.snapshot_day}"
        )
        for why in r.reasons:
            _say(f"    - {why}")
    return 0


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
        import io

        from analysis.report.render import _atomic_write

        buf = io.BytesIO()
        card.write_parquet(buf)
        _atomic_write(args.out, buf.getvalue())
    elif args.format == "csv":
        _emit_csv(card, args.out)
    else:
        _emit(json.dumps(card.to_dicts(), default=str, indent=1), args.out, "json")
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
        _err(f"warning: {line}")


def _warn_skipped(data) -> None:
    for name, why in data.skipped:
        _err(f"warning: skipped {name}: {why}")


def _emit_csv(df, out: Path | None) -> None:
    """A table as CSV that a spreadsheet opens without running any cell as a formula: a text
    cell starting with =, +, -, @, tab or CR gets a leading apostrophe (`safety.csv_safe`)."""
    import polars as pl

    from analysis.safety import csv_safe

    text_like = [c for c, t in df.schema.items() if isinstance(t, (pl.Categorical, pl.Enum))]
    _emit(csv_safe(df.with_columns(pl.col(text_like).cast(pl.String))).write_csv(), out, "csv")


def _emit(text: str, out: Path | None, kind: str) -> None:
    """To --out as written (UTF-8), or to standard output made safe for a terminal: control
    characters of the data escaped (\\uXXXX in JSON, which reads back the same; \\xNN in CSV)."""
    if out:
        from analysis.report.render import _atomic_write

        _atomic_write(out, text)
    else:
        sys.stdout.write(_json_out(text) if kind == "json" else terminal_text(text))
