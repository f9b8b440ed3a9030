"""Issue 14, outputs, paths and processes: what the suite writes never runs as a formula, a link or
an escape sequence; names never reach outside the output folder; arguments and settings are refused
with one sentence; a killed report leaves neither a running kernel nor files the next run trips on."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from unittest import mock

import nbformat
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import cli, config
from analysis.errors import SettingsError, UsageError
from analysis.inputs import sample
from analysis.metrics import settings as run_settings
from analysis.report import render

ESC = "\x1b"
FOLDER_RULE = "use letters, digits, spaces, '-', '_', '#' (no '/', '\\', leading '.', or control characters)."


# --------------------------------------------------------------------------- helpers


def _cli(capsys, *args: object) -> tuple[int, str, str]:
    """`python -m analysis ...` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _tree(root: Path) -> set[str]:
    """Every file and folder under `root` (relative paths), to see what a command wrote."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _set_aside(path: Path, text_from: str, text_to: str, encoding: str = "utf-8") -> None:
    path.write_text(path.read_text(encoding=encoding).replace(text_from, text_to), encoding=encoding)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """The sample account with spreadsheet formulas in a SKU, two carriers and a feedback comment."""
    d = tmp_path_factory.mktemp("hostile") / "acct"
    shutil.copytree(config.SAMPLE_DIR, d)
    _set_aside(d / "All_Orders_com.txt", "\tKB-200-BLK\t", '\t=HYPERLINK("http://x")\t')
    _set_aside(d / "mfn-shipments.csv", ",UPS,", ",+UPS,")
    _set_aside(d / "mfn-shipments.csv", ",USPS,", ",@USPS,")
    _set_aside(d / "Feedback_com.txt", "\tTook far longer than promised to arrive.", "\t-2+3 took far longer")
    return d


def _fake_execute(notebook, out, params, progress) -> float:
    """papermill stand-in: the executed notebook, without a kernel (path and index logic only)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"report of {params['account']} {params['period']}")]
    nb.metadata["papermill"] = {"parameters": params}
    nbformat.write(nb, out)
    return 0.0


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by its new parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def _csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run: starting with =, +, @, or - when not a number."""

    def number(c: str) -> bool:
        try:
            float(c)
        except ValueError:
            return False
        return True

    return [c for r in rows for c in r if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not number(c))]


# --------------------------------------------------------------------------- 1. injection


@pytest.mark.parametrize(
    ("by", "column", "expected"),
    [
        (None, "sku", '\'=HYPERLINK("http://x")'),
        (None, "carrier", "'+UPS"),
        (None, "cause_text", "'-2+3 took far longer"),
        ("sku", "value", '\'=HYPERLINK("http://x")'),
        ("carrier", "value", "'@USPS"),
    ],
)
def test_defects_csv_cells_never_run_as_formulas(capsys, hostile, by, column, expected):
    rc, out, err = _cli(
        capsys, "defects", "--data", hostile, "--as-of", "2026-11-15", *(["--by", by] if by else [])
    )
    assert rc == 0, err
    rows = _csv_cells(out)
    values = [r[rows[0].index(column)] for r in rows[1:]]
    assert expected in values
    assert _formula_cells(rows) == []


def test_defects_csv_file_is_neutralised_too(capsys, hostile, tmp_path):
    out = tmp_path / "d.csv"
    rc, stdout, err = _cli(
        capsys, "defects", "--data", hostile, "--as-of", "2026-11-15", "--by", "carrier", "--out", out
    )
    assert (rc, stdout) == (0, ""), err
    rows = _csv_cells(out.read_text(encoding="utf-8"))
    assert ["'+UPS", "'@USPS"] == sorted(r[0] for r in rows[1:] if r[0].startswith("'"))
    assert _formula_cells(rows) == []


def test_every_cli_csv_neutralises_text_and_categorical_cells(tmp_path):
    """history and defects write through one function: String and Categorical cells get the
    apostrophe, numbers stay numbers."""
    df = pl.DataFrame(
        {
            "s": ["=1+1", "+x", "-y", "@z", "\tt", "ok", "a=b"],
            "c": pl.Series(["=c", "ok", "ok", "ok", "ok", "ok", "ok"], dtype=pl.Categorical),
            "n": [-1.5, 2, 3, 4, 5, 6, 7],
        }
    )
    cli._emit_csv(df, tmp_path / "x.csv")
    rows = _csv_cells((tmp_path / "x.csv").read_text())
    assert [r[0] for r in rows[1:]] == ["'=1+1", "'+x", "'-y", "'@z", "'\tt", "ok", "a=b"]
    assert rows[1][1:] == ["'=c", "-1.5"]


def test_history_csv_on_stdout_is_neutralised(capsys, hostile):
    rc, out, err = _cli(capsys, "history", "--data", hostile, "--from", "2026-11-14", "--to", "2026-11-15")
    assert rc == 0, err
    assert _formula_cells(_csv_cells(out)) == []


def _index_links(out_root: Path, folders: dict[str, dict | str | None]) -> str:
    for rel, summary in folders.items():
        d = out_root / rel
        d.mkdir(parents=True)
        (d / "metrics-summary.html").write_text("<p>report</p>")
        text = summary if isinstance(summary, str) else json.dumps(summary)
        (d / "summary.json").write_text(text, encoding="utf-8")
    return render.write_index(out_root).read_text(encoding="utf-8")


def test_index_links_are_url_encoded_and_text_escaped(tmp_path):
    page = _index_links(
        tmp_path,
        {
            "javascript:alert(1)/2026-W45": {
                "account": "javascript:alert(1)",
                "period": "2026-W45",
                "asOf": "2026-11-08",
            },
            "Shop #2/2026-W46": {"account": "Shop #2 <b>x</b>", "period": "2026-W46", "asOf": "2026-11-15"},
            'q"uote/2026-W44': {"account": "q", "period": "2026-W44", "asOf": "2026-11-01"},
        },
    )
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == [
        "Shop%20%232/2026-W46/metrics-summary.html",
        "javascript%3Aalert%281%29/2026-W45/metrics-summary.html",
        "q%22uote/2026-W44/metrics-summary.html",
    ]
    assert all((tmp_path / urllib.parse.unquote(h)).exists() for h in hrefs)
    assert "Shop #2 &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_check_prints_no_escape_sequence_from_file_names(capsys, sample_copy):
    evil = "evil\x1b[31mred\x1b]0;title\x07.csv"
    shutil.copy(sample_copy / "cancellations.csv", sample_copy / evil)
    (sample_copy / "junk\x1b[2J.txt").write_text("junk\x1b[2J\n")
    rc, out, err = _cli(capsys, "check", "--data", sample_copy)
    assert rc == 0, err
    assert ESC not in out + err and "\x07" not in out + err
    assert "evil\\x1b[31mred\\x1b]0;title\\x07.csv: cancellations, 159 rows" in out
    assert "warning: skipped junk\\x1b[2J.txt: not a known export" in err


def test_errors_and_argparse_echo_no_escape_sequence(capsys, tmp_path):
    rc, out, err = _cli(capsys, "metrics", "--data", tmp_path / "x\x1b[2Jy", "--as-of", "2026-11-15")
    assert rc == 2 and ESC not in err and "x\\x1b[2Jy" in err
    rc, out, err = _cli(capsys, "metrics", "--data", tmp_path, "--as-of", "\x1b[2J")
    assert rc == 2 and ESC not in err
    assert err.endswith("error: argument --as-of: '\\x1b[2J' is not a date; write it as YYYY-MM-DD\n")
    rc, out, err = _cli(capsys, "check", "--data", tmp_path, "\x1b]0;x\x07")
    assert rc == 2 and ESC not in err and "\x07" not in err


def test_json_and_csv_on_stdout_escape_control_characters(capsys, sample_copy, tmp_path):
    comment = "late \x1b[2J\x9b31m \u202eevil"
    _set_aside(sample_copy / "Feedback_com.txt", "\tTook far longer than promised to arrive.", "\t" + comment)
    rc, out, err = _cli(capsys, "defects", "--data", sample_copy, "--as-of", "2026-11-15", "--format", "json")
    assert rc == 0, err
    assert not re.search("[\x1b\x9b\u202e]", out)
    assert comment in {r["cause_text"] for r in json.loads(out)}  # the same text, escaped
    rc, out, err = _cli(capsys, "defects", "--data", sample_copy, "--as-of", "2026-11-15")
    assert rc == 0 and not re.search("[\x1b\x9b\u202e]", out)
    # a file keeps the text as it is
    rc, _, err = _cli(
        capsys, "defects", "--data", sample_copy, "--as-of", "2026-11-15", "--out", tmp_path / "d.csv"
    )
    assert rc == 0 and comment in (tmp_path / "d.csv").read_text(encoding="utf-8")


def test_json_out_round_trips():
    text = json.dumps({"a": "x\x9by\u202ez\x7f", "b": "£ é 😀", "c": "\udcff"}, ensure_ascii=False)
    safe = cli._json_out(text)
    assert json.loads(safe) == json.loads(text)
    assert "£ é 😀" in safe and not re.search("[\x7f\x9b\u202e\udcff]", safe)


# --------------------------------------------------------------------------- 2. paths


@pytest.mark.parametrize(
    "account", ["../../x", "/abs/x", "a/b", ".hidden", "..", "", " pad", "x" * 101, "c:d", "t\x1b[2J"]
)
def test_report_account_is_one_folder_name_or_refused(capsys, sample_copy, tmp_path, account):
    before = _tree(tmp_path)
    rc, out, err = _cli(
        capsys, "report", "--data", sample_copy, "--account", account, "--out", tmp_path / "out"
    )
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: --account ")
    assert ESC not in err
    if account and account.strip() and len(account) <= 100:
        assert err.endswith(f"cannot be a folder name: {FOLDER_RULE}\n")
    assert _tree(tmp_path) == before  # nothing written, in --out or anywhere else


def test_report_default_account_from_an_unsafe_folder_name(capsys, tmp_path):
    data = tmp_path / ".acct"
    shutil.copytree(config.SAMPLE_DIR, data)
    before = _tree(tmp_path)
    rc, out, err = _cli(capsys, "report", "--data", data, "--out", tmp_path / "out")
    assert rc == 2
    assert err == (
        "error: The data folder's name (the default account name; pass --account NAME) '.acct' cannot be a "
        f"folder name: {FOLDER_RULE}\n"
    )
    assert _tree(tmp_path) == before


def test_report_marketplace_never_becomes_a_path(capsys, sample_copy, tmp_path):
    before = _tree(tmp_path)
    rc, out, err = _cli(
        capsys, "report", "--data", sample_copy, "--marketplace", "../../../../x", "--out", tmp_path / "out"
    )
    assert (
        rc == 2
        and err.startswith("error: '../../../../x' is not a marketplace;")
        and len(err.splitlines()) == 1
    )
    # the library refuses it too, before creating any folder
    with pytest.raises(UsageError, match="is not a marketplace id"):
        render.render(
            sample_copy,
            period="2026-W46",
            marketplace="../../../../x",
            out_root=tmp_path / "out",
            newest=dt.date(2026, 11, 15),
        )
    with pytest.raises(UsageError, match="cannot be a folder name"):
        render.render(
            sample_copy,
            period="2026-W46",
            account="../x",
            out_root=tmp_path / "out",
            newest=dt.date(2026, 11, 15),
        )
    assert _tree(tmp_path) == before


def test_report_out_must_be_a_folder_other_than_the_data(capsys, sample_copy, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = _cli(capsys, "report", "--data", sample_copy, "--out", f)
    assert (rc, err) == (2, f"error: --out {f} is a file; give the folder the reports go in.\n")
    before = _tree(tmp_path)
    rc, _, err = _cli(capsys, "report", "--data", sample_copy, "--out", sample_copy)
    assert (rc, err) == (
        2,
        f"error: --out {sample_copy} is the data folder, whose exports are only read; give another folder.\n",
    )
    assert _tree(tmp_path) == before


def test_sample_out_never_overwrites_exports(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "All_Orders_com.txt").write_text("my real orders")
    rc, out, err = _cli(capsys, "sample", "--out", mine)
    assert rc == 2
    assert err == (
        f"error: --out {mine} already holds files without a sample's manifest.json and is not a previous sample; "
        "give a new or empty folder, so no export is overwritten.\n"
    )
    (mine / "notes.txt").write_text("mine")
    (mine / "manifest.json").write_text('{"generator": "analysis.sample"}')
    rc, out, err = _cli(capsys, "sample", "--out", mine)
    assert rc == 2 and "already holds 'notes.txt' and is not a previous sample" in err
    assert (mine / "All_Orders_com.txt").read_text() == "my real orders"
    f = tmp_path / "f"
    f.write_text("x")
    rc, out, err = _cli(capsys, "sample", "--out", f)
    assert (rc, err) == (2, f"error: --out {f} is a file; give a new or empty folder.\n")


def test_sample_replaces_a_previous_sample(capsys, tmp_path):
    """An empty folder, then the same folder again (a previous sample), then another end date:
    the folder holds exactly the newest sample (the old day's snapshots removed)."""
    d = tmp_path / "s"
    d.mkdir()
    rc, out, err = _cli(capsys, "sample", "--out", d)
    assert rc == 0, err
    first = sorted(p.name for p in d.iterdir())
    assert all(sample.is_sample_file(n) for n in first)  # the check knows every name write() uses
    assert first == sorted(p.name for p in config.SAMPLE_DIR.iterdir() if p.is_file())
    rc, out, err = _cli(capsys, "sample", "--out", d, "--end", "2026-10-31")
    assert rc == 0, err
    now = sorted(p.name for p in d.iterdir())
    assert (
        "V2_Seller_Performance_2026-10-31.json" in now and "V2_Seller_Performance_2026-11-15.json" not in now
    )
    assert len(now) == len(first)


@pytest.mark.parametrize("command", ["defects", "history"])
def test_out_file_never_inside_the_data_folder(capsys, sample_copy, tmp_path, command):
    days = (
        ["--as-of", "2026-11-15"] if command == "defects" else ["--from", "2026-11-15", "--to", "2026-11-15"]
    )
    target = sample_copy / "a-to-z-claims.csv"
    before = target.read_bytes()
    rc, _, err = _cli(capsys, command, "--data", sample_copy, *days, "--out", target)
    assert rc == 2
    assert err == (
        f"error: --out {target} is inside the data folder {sample_copy}, whose exports are only read; write it elsewhere.\n"
    )
    assert target.read_bytes() == before
    rc, _, err = _cli(capsys, command, "--data", sample_copy, *days, "--out", tmp_path)
    assert (rc, err) == (2, f"error: --out {tmp_path} is a folder; give a file name such as {command}.csv.\n")
    missing = tmp_path / "no" / "such" / "x.csv"
    rc, _, err = _cli(capsys, command, "--data", sample_copy, *days, "--out", missing)
    assert (rc, err) == (
        2,
        f"error: --out {missing}: the folder {missing.parent} does not exist; create it first.\n",
    )


_OUT_COMMANDS = {
    "history": ["--from", "2026-11-15", "--to", "2026-11-15"],
    "defects": ["--as-of", "2026-11-15"],
    "removals": ["--as-of", "2026-11-15"],
    "email": ["--week", "2026-W46", "--to", "ops@acme.example", "--dry-run"],
    "render": [],
}


@pytest.mark.parametrize("command", list(_OUT_COMMANDS))
def test_out_is_never_a_link_or_a_device(capsys, sample_copy, tmp_path, command):
    """`--out` naming a pipe (or a device) would be replaced by a regular file, a link written
    through or replaced: refused before anything is read; the link's target is unchanged."""
    head = ["render", "metrics_summary"] if command == "render" else [command]
    outs = tmp_path / "outs"
    outs.mkdir()
    fifo = outs / "pipe"
    os.mkfifo(fifo)
    target = outs / "precious.txt"
    target.write_text("keep me")
    link = outs / "link.out"
    link.symlink_to(target)
    for out in (fifo, link):
        rc, _, err = _cli(capsys, *head, "--data", sample_copy, *_OUT_COMMANDS[command], "--out", out)
        assert (rc, err) == (
            2,
            f"error: --out {out} is not a regular file (a link, device or pipe), which would be replaced; "
            "give the name of a new or ordinary file.\n",
        )
    assert fifo.exists() and not fifo.is_file() and link.is_symlink() and target.read_text() == "keep me"
    assert sorted(p.name for p in outs.iterdir()) == ["link.out", "pipe", "precious.txt"]


_TOO_BIG = """
import resource, signal, sys
from pathlib import Path
from analysis.report.render import _atomic_write
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    _atomic_write(Path(sys.argv[1]), "x" * 5000)
except OSError as exc:
    print(exc.filename)
"""


def test_out_inside_the_sample_names_the_sample_when_no_data_is_given(capsys):
    """render reads the sample without --data: an --out inside it named the data folder "None"."""
    target = config.SAMPLE_DIR / "x.html"
    rc, _, err = _cli(capsys, "render", "metrics_summary", "--out", target)
    assert (rc, err) == (
        2,
        f"error: --out {target} is inside the data folder {config.SAMPLE_DIR}, whose exports are only read; "
        "write it elsewhere.\n",
    )
    assert not target.exists()


def test_a_failed_write_names_the_file_and_leaves_nothing(tmp_path):
    """A write that fails (here: past the process's file-size limit) names the file asked for, not
    the temporary one, leaves no temporary file and the old file whole."""
    out = tmp_path / "history.csv"
    out.write_text("old")
    r = subprocess.run(
        [sys.executable, "-c", _TOO_BIG, str(out)], capture_output=True, text=True, cwd=config.PROJ_ROOT
    )
    assert r.stdout.strip() == str(out), r.stderr
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["history.csv"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--every", "week"],
            "error: --every goes with --from and --to (a range of periods); it was not used",
        ),
        (["--week", "2026-W45", "--every", "month"], "error: --every goes with --from and --to"),
        (["--jobs", "0"], "argument --jobs: '0' is not a whole number of 1 or more"),
        (["--jobs", "-3"], "argument --jobs: '-3' is not a whole number of 1 or more"),
    ],
)
def test_report_options_that_would_be_ignored_are_refused(capsys, tmp_path, args, words):
    """--every without a range, or --jobs below 1, were accepted and quietly meant something else."""
    rc, _, err = _cli(capsys, "report", "--data", config.SAMPLE_DIR, "--out", tmp_path / "r", *args)
    assert rc == 2 and words in err
    assert not (tmp_path / "r").exists()


def test_report_range_says_the_period_it_leaves_out(capsys, tmp_path):
    """November ends after --to 2026-11-20: left out, and said (it was dropped without a word)."""
    rc, out, err = _cli(
        capsys, "report", "--data", config.SAMPLE_DIR, "--out", tmp_path / "r",
        "--from", "2026-10-20", "--to", "2026-11-20", "--every", "month",
    )  # fmt: skip
    assert rc == 0, err
    assert (
        "note: 2026-11 ends 2026-11-30, after --to 2026-11-20: not reported (a month is reported as of its last day)"
        in out + err
    )
    assert sorted(p.name for p in (tmp_path / "r" / "sample").iterdir()) == ["2026-10"]


def test_braces_in_an_output_path_are_taken_literally(capsys, tmp_path):
    """papermill fills "{name}" in its paths from the notebook's parameters: an --out holding a brace
    was an internal error (exit 3), found by the fuzz test below."""
    out = tmp_path / "{odd}} name{"
    rc, _, err = _cli(capsys, "report", "--data", config.SAMPLE_DIR, "--week", "2026-W46", "--out", out)
    assert rc == 0, err
    assert (out / "sample" / "2026-W46" / "metrics-summary.html").is_file()


# --------------------------------------------------------------------------- 3. arguments and settings


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("command", ["metrics", "defects", "spikes", "history", "report"])
def test_as_of_outside_the_computed_years_is_one_sentence(capsys, sample_copy, tmp_path, command, day, allow):
    days = ["--from", day, "--to", "2026-11-15"] if command == "history" else ["--as-of", day]
    extra = ["--out", tmp_path / "out"] if command == "report" else []
    before = _tree(tmp_path)
    rc, out, err = _cli(
        capsys, command, "--data", sample_copy, *days, *extra, *(["--allow-incomplete"] if allow else [])
    )
    flag = "--from" if command == "history" else "--as-of"
    assert (rc, out) == (2, "")
    assert err == (
        f"error: {flag} {day} is outside the days this suite computes (2000-01-01 to 2100-12-31); "
        "give a day within your data.\n"
    )
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [
        ["--week", "9999-W52"],
        ["--week", "0001-W01"],
        ["--month", "9999-12"],
        ["--month", "0001-01"],
        ["--from", "2026-01-01", "--to", "9999-12-31"],
        ["--from", "0001-01-01", "--to", "0001-03-01"],
    ],
)
def test_report_periods_outside_the_computed_years(capsys, sample_copy, tmp_path, args):
    rc, out, err = _cli(
        capsys, "report", "--data", sample_copy, *args, "--allow-incomplete", "--out", tmp_path / "o"
    )
    assert rc == 2 and len(err.splitlines()) == 1
    assert re.fullmatch(
        r"error: --(week|month|from|to) \S+ is outside the (years|days) this suite computes .*\n", err
    )
    assert not (tmp_path / "o").exists()


def test_sample_end_outside_the_computed_years(capsys, tmp_path):
    rc, _, err = _cli(capsys, "sample", "--out", tmp_path / "s", "--end", "0001-01-01")
    assert rc == 2 and err.startswith("error: --end 0001-01-01 is outside the days")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[orderDefectRate.afn]\nwindow_days = "x"',
            "orderDefectRate.afn: window_days = 'x' is not a whole number of days from 1 to 365",
        ),
        (
            "[orderDefectRate.afn]\nwindow_days = 100000000",
            "orderDefectRate.afn: window_days = 100000000 is not a whole number of days from 1 to 365",
        ),
        (
            "[orderDefectRate.afn]\nwindow_days = -5",
            "orderDefectRate.afn: window_days = -5 is not a whole number of days from 1 to 365",
        ),
        (
            "[lateShipmentRate.10d]\nlag_days = -1",
            "lateShipmentRate.10d: lag_days = -1 is not a whole number of days from 0 to 365",
        ),
        (
            "[orderDefectRate.mfn]\ntarget = -0.01",
            "orderDefectRate.mfn: target = -0.01 is not a fraction between 0 and 1 (0.01 = 1 %)",
        ),
        (
            "[orderDefectRate.mfn]\ntarget = nan",
            "orderDefectRate.mfn: target = nan is not a fraction between 0 and 1 (0.01 = 1 %)",
        ),
        (
            "[orderDefectRate.afn]\nwindow_days = true",
            "orderDefectRate.afn: window_days = True is not a whole number of days from 1 to 365",
        ),
        ("[spikes]\nglr_h = -1.0", "[spikes] glr_h = -1.0 is out of range: it must be a positive number"),
        ('[report]\ntrend_weeks = "x"', "[report] trend_weeks = 'x' is not a whole number"),
        (
            "[report]\ntrend_weeks = 100000000",
            "[report] trend_weeks = 100000000 is out of range: it must be a whole number of weeks from 1 to 104",
        ),
        ("spikes = 3", "'spikes' must be a table ([spikes])"),
        (
            "window_days = 3",
            "settings outside a table: window_days; put them under [metric id], [spikes] or [report]",
        ),
    ],
)
def test_bad_settings_name_the_file_and_key(capsys, tmp_path, body, message):
    cfg = tmp_path / "settings.toml"
    cfg.write_text(body + "\n")
    for command in (["metrics", "--as-of", "2026-11-15"], ["report", "--out", tmp_path / "o"], ["check"]):
        rc, out, err = _cli(capsys, command[0], "--data", config.SAMPLE_DIR, *command[1:], "--config", cfg)
        assert (rc, out, err) == (2, "", f"error: {cfg}: {message}\n")
    assert not (tmp_path / "o").exists()


def test_settings_file_that_is_not_a_file(tmp_path):
    with pytest.raises(SettingsError, match=r"is not a file; give a TOML file\.$"):
        run_settings.build(tmp_path)
    with pytest.raises(SettingsError, match=r"^The settings file /dev/zero is not a file"):
        run_settings.build("/dev/zero")  # a device would be read forever
    big = tmp_path / "big.toml"
    big.write_text("# x\n" * 300_000)
    with pytest.raises(SettingsError, match="larger than 1 MB"):
        run_settings.build(big)
    with pytest.raises(SettingsError, match="override 'spikes': give a dict"):
        run_settings.build(overrides={"spikes": 3})


GARBAGE = {
    "null": "null",
    "list": "[1, 2]",
    "string": '"x"',
    "number": "3",
    "broken": '{"account": ',
    "binary": "\udcff\udcfe",
    "deep": "[" * 100_000 + "]" * 100_000,
}


def test_index_skips_summaries_that_are_not_objects(tmp_path):
    folders: dict = {f"{name}/2026-W46": text for name, text in GARBAGE.items() if name != "binary"}
    folders["odd/2026-W45"] = {
        "account": None,
        "asOf": 5,
        "marketplaces": "abc",
        "status": None,
        "incomplete": [1],
    }
    folders["good/2026-W44"] = {
        "account": "good",
        "period": "2026-W44",
        "asOf": "2026-11-01",
        "status": "GOOD",
    }
    page = _index_links(tmp_path, folders)
    (tmp_path / "binary/2026-W46").mkdir(parents=True)
    (tmp_path / "binary/2026-W46/metrics-summary.html").write_text("x")
    (tmp_path / "binary/2026-W46/summary.json").write_bytes(b"\xff\xfe")
    page = render.write_index(tmp_path).read_text(encoding="utf-8")  # never raises
    assert re.findall(r'href="([^"]*)"', page) == [
        "odd/2026-W45/metrics-summary.html",
        "good/2026-W44/metrics-summary.html",
    ]
    note = re.search(r'<p class="warn">Not listed[^<]*</p>', page)[0]
    for name in GARBAGE:
        assert f"{name}/2026-W46" in note


# --------------------------------------------------------------------------- 4. leftovers


def test_stale_running_and_temporary_files_are_removed(tmp_path):
    folder = tmp_path / "acct" / "2026-W46"
    folder.mkdir(parents=True)
    dead = _dead_pid()
    stale = [
        folder / f".metrics-summary.running.{dead}.140000.ipynb",
        folder / f".metrics-summary.html.{dead}.abc_123",
        folder / f".summary.json.{dead}.x1",
    ]
    reused = folder / ".metrics-summary.running.1.140000.ipynb"  # pid 1 started long after 2001
    live = [
        folder / f".metrics-summary.running.{os.getpid()}.140000.ipynb",  # another thread of this run
        folder / ".metrics-summary.running.x.ipynb",  # not ours: left alone
        folder / "metrics-summary.html",
    ]
    for f in [*stale, reused, *live]:
        f.write_text("{}")
    os.utime(reused, (1e9, 1e9))
    removed = render.clean_leftovers(folder)
    assert sorted(removed) == sorted([*stale, reused])
    assert all(f.exists() for f in live)


def test_render_clears_leftovers_before_it_runs(tmp_path, sample_copy):
    out = tmp_path / "out"
    folder = out / "acme" / "2026-W46"
    folder.mkdir(parents=True)
    dead = _dead_pid()
    (folder / f".metrics-summary.running.{dead}.1.ipynb").write_text("{}")
    (out / f".index.html.{dead}.tmp1").write_text("x")
    kernel_dir = Path(render.tempfile.gettempdir()) / f"{render._KERNEL_DIR_PREFIX}{dead}-test"
    kernel_dir.mkdir()
    with mock.patch.object(render, "_execute", _fake_execute):
        res = render.render(
            sample_copy, period="2026-W46", account="acme", out_root=out, newest=dt.date(2026, 11, 15)
        )
    assert sorted(p.name for p in folder.iterdir()) == [
        "metrics-summary.html",
        "metrics-summary.ipynb",
        "summary.json",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["acme", "index.html"]
    assert not kernel_dir.exists()
    assert res.html == folder / "metrics-summary.html"


def test_kernel_command_is_guarded():
    cmd = ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "c.json"]
    guarded = render.guarded_kernel_cmd(cmd)
    if sys.platform.startswith("linux"):
        assert guarded[:3] == [sys.executable, "-c", render.KERNEL_GUARD]
        assert guarded[3:] == [str(os.getpid()), *cmd]
    else:
        assert guarded == cmd


HANG = r"""
import os, re
open(os.environ["KERNEL_PID_FILE"], "w").write(str(os.getpid()))
re.match(r"(a+)+$", "a" * 64 + "b")  # holds the GIL for ever: ipykernel's parent poller cannot run
"""


@pytest.mark.notebooks
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killed_report_leaves_no_kernel_running(tmp_path, sample_copy):
    """A report process killed (SIGKILL) while its kernel computes: the kernel dies with it; the
    running notebook and the kernel's socket folder it leaves are cleared by the next run."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(HANG)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = tmp_path / "hang.ipynb"
    nbformat.write(nb, notebook)
    pid_file = tmp_path / "kernel.pid"
    out = tmp_path / "out"
    code = (
        "import sys; from pathlib import Path; from analysis.report import render; "
        "render.render(sys.argv[1], period='2026-W46', account='acme', out_root=sys.argv[2], notebook=Path(sys.argv[3]))"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code, str(sample_copy), str(out), str(notebook)],
        cwd=config.PROJ_ROOT,
        env={**os.environ, "KERNEL_PID_FILE": str(pid_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kernel = None
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            assert parent.poll() is None, "the report process ended before its kernel ran the cell"
            time.sleep(0.1)
        kernel = int(pid_file.read_text())
        time.sleep(0.5)
        assert not _gone(kernel)  # computing
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while not _gone(kernel) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(kernel), "the kernel outlived its report process"
    finally:
        if parent.poll() is None:
            parent.kill()
        if kernel and not _gone(kernel):
            os.kill(kernel, signal.SIGKILL)
    folder = out / "acme" / "2026-W46"
    left = list(folder.glob(f".metrics-summary.running.{parent.pid}.*.ipynb"))
    sockets = list(Path(render.tempfile.gettempdir()).glob(f"{render._KERNEL_DIR_PREFIX}{parent.pid}-*"))
    assert len(left) == 1 and len(sockets) == 1
    with mock.patch.object(render, "_execute", _fake_execute):
        render.render(
            sample_copy, period="2026-W46", account="acme", out_root=out, newest=dt.date(2026, 11, 15)
        )
    assert not left[0].exists() and not sockets[0].exists()


@pytest.mark.notebooks
def test_report_cli_end_to_end_with_hostile_leftovers(tmp_path, sample_copy):
    """One real report run: an account name with a space and '#', a stale running notebook and
    temporary index of a killed run, another report's summary.json holding null."""
    out = tmp_path / "out"
    dead = _dead_pid()
    stale = out / "Shop #2" / "2026-W46" / f".metrics-summary.running.{dead}.77.ipynb"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    (out / f".index.html.{dead}.abcd").write_text("half")
    (out / "other" / "2026-W45").mkdir(parents=True)
    (out / "other" / "2026-W45" / "summary.json").write_text("null")
    (out / "other" / "2026-W45" / "metrics-summary.html").write_text("x")
    r = subprocess.run(
        [sys.executable, "-m", "analysis", "report", "--data", str(sample_copy), "--week", "2026-W46",
         "--account", "Shop #2", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=config.PROJ_ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == [
        f"report for 2026-W46: {out}/Shop #2/2026-W46/metrics-summary.html",
        f"index of all reports: {out}/index.html",
    ]
    assert not stale.exists() and not (out / f".index.html.{dead}.abcd").exists()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'href="([^"]*)"', page) == ["Shop%20%232/2026-W46/metrics-summary.html"]
    assert "other/2026-W45" in re.search(r'<p class="warn">Not listed[^<]*</p>', page)[0]
    assert sorted(p.name for p in out.rglob("*") if p.name.startswith(".")) == []


# --------------------------------------------------------------------------- fuzzing the arguments

DAY = st.one_of(
    st.sampled_from(
        ["2026-06-30", "2026-06-14", "2026-05-01", "9999-12-31", "0001-01-01", "2100-12-31", "2000-01-01"]
    ),
    st.dates().map(str),
    st.text(max_size=12),
)
NAME = st.one_of(
    st.sampled_from(
        [
            "../../x",
            "..",
            ".",
            "a/b",
            "/tmp/abs",
            "javascript:alert(1)",
            "Shop #2",
            "\x1b[2J",
            "",
            " ",
            "\udcff",
            "x" * 120,
        ]
    ),
    st.text(max_size=20),
)
MARKET = st.one_of(
    st.sampled_from(["US", "amazon.de", "ATVPDKIKX0DER", "all", "../../../../x", "UK"]), st.text(max_size=12)
)
WEEK = st.one_of(
    st.builds(lambda y, w: f"{y:04d}-W{w:02d}", st.integers(0, 9999), st.integers(0, 60)),
    st.text(max_size=10),
)
MONTH = st.one_of(
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 9999), st.integers(0, 13)), st.text(max_size=8)
)
# one path segment (".." included): the fuzzing folder is 3 levels below tmp_path, so it stays inside
OUT = st.one_of(
    st.sampled_from(["..", ".", "out", "x.csv", " ", "-", "\x1b[2J"]),
    st.text(max_size=12).filter(lambda s: "/" not in s),
)


def _no_nul(args: list[str]) -> bool:
    return not any("\x00" in a for a in args)  # a shell cannot pass NUL


@st.composite
def _command(draw) -> list[str]:
    command = draw(st.sampled_from(["metrics", "defects", "spikes", "history", "check", "report", "sample"]))
    args = [command]
    opt = lambda name, strat: [name, draw(strat)] if draw(st.booleans()) else []  # noqa: E731
    if command in ("metrics", "defects", "spikes"):
        args += ["--as-of", draw(DAY)] + opt("--marketplace", MARKET)
    if command == "defects":
        args += opt("--out", OUT) + opt("--by", st.sampled_from(["sku", "carrier", "week"]))
    if command == "spikes":
        args += opt("--from", DAY)
    if command == "history":
        args += ["--from", draw(DAY), "--to", draw(DAY)] + opt("--out", OUT) + opt("--marketplace", MARKET)
        args += opt("--format", st.sampled_from(["csv", "json", "parquet"]))
    if command == "check":
        args += opt("--marketplace", MARKET)
    if command == "report":
        args += draw(
            st.sampled_from([[], ["--week", draw(WEEK)], ["--month", draw(MONTH)], ["--as-of", draw(DAY)]])
        )
        args += opt("--account", NAME) + opt("--marketplace", MARKET) + ["--out", draw(OUT)]
    if command == "sample":
        args += ["--out", draw(OUT)] + opt("--end", DAY)
    if command != "sample":
        args += ["--allow-incomplete"] if draw(st.booleans()) else []
    return args


class _TinySample:
    """sample.generate's writer stand-in: the manifest only (the path checks run for real)."""

    def __init__(self, seed, end, days):
        self.end = end

    def make_orders(self):
        pass

    def make_events(self):
        pass

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").write_text('{"generator": "analysis.sample"}')
        return [out / "manifest.json"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from conftest import Account

    a = Account(tmp_path_factory.mktemp("tiny") / "tiny")
    for i in range(40):
        day = dt.date(2026, 5, 20) + dt.timedelta(days=i)
        a.order(f"111-0000000-00000{i:02d}", str(day), channel="AFN" if i % 2 else "MFN", sku=f"SKU-{i % 3}")
    a.feedback("111-0000000-0000001", "5/25/26", 1, comment="=cmd|' /C calc'!A0 \x1b[2J")
    a.claim("111-0000000-0000002", "2026-05-30", "granted")
    return a.write()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=_command().filter(_no_nul))
def test_fuzzed_arguments_exit_0_or_2_and_stay_inside(capsys, tmp_path, tiny, args):
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True, exist_ok=True)
    if args[0] != "sample":
        args[1:1] = ["--data", str(tiny)]
    before = _tree(tmp_path)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with (
            mock.patch.object(render, "_execute", _fake_execute),
            mock.patch.object(sample, "Generator", _TinySample),
        ):
            rc, out, err = _cli(capsys, *args)
    finally:
        os.chdir(cwd)
    assert rc in (0, 2), (args, err)
    assert "Traceback" not in err and "internal error" not in err, (args, err)
    assert ESC not in out + err, args
    if rc == 2:
        assert len([ln for ln in err.splitlines() if ln.startswith(("error:", "python -m analysis"))]) == 1, (
            err
        )
    new = {tmp_path / p for p in _tree(tmp_path) - before}
    if "--out" in args:  # only the --out file or folder (and the folders on the way to it)
        root = (work / args[args.index("--out") + 1]).resolve()
        outside = [
            p for p in new if not (p.resolve() == root or root in p.resolve().parents or p in root.parents)
        ]
        assert outside == [], args
    else:  # standard output only
        assert new == set(), args
