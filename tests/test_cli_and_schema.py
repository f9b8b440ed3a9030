"""`python -m analysis metrics` output validates against Amazon's schema; errors are one sentence."""

import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest

from analysis import config
from analysis.metrics import health


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=300
    )


def test_metrics_cli_on_sample_validates(sample_dir):
    r = _run("metrics", "--data", str(sample_dir), "--as-of", "2026-11-15")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    health.validate(doc)
    ids = [pm["marketplaceId"] for pm in doc["performanceMetrics"]]
    assert ids == sorted(ids) == ["A1F83G8C2ARO7P", "ATVPDKIKX0DER"]
    # Amazon-only numbers come from the newest snapshot known on the day
    us = doc["performanceMetrics"][1]
    assert us["accountHealthRating"]["source"] == "V2_Seller_Performance_2026-11-15.json"
    assert us["productConditionCustomerComplaints"]["defectsCount"] == 2
    assert doc["accountStatuses"][0]["source"] == "V2_Seller_Performance_2026-11-15.json"


def test_snapshot_newer_than_as_of_is_not_used(sample_data):
    doc = health.account_health(sample_data, "2026-11-10").document
    assert (
        doc["performanceMetrics"][0]["accountHealthRating"]["source"]
        == "V2_Seller_Performance_2026-11-08.json"
    )
    doc = health.account_health(sample_data, "2026-11-01").document
    assert doc["performanceMetrics"][0]["accountHealthRating"]["ahrStatus"] == "NONE"
    assert doc["accountStatuses"][0]["source"] == "estimate"


def test_orders_only_folder_validates(tmp_path, sample_dir):
    d = tmp_path / "only-orders"
    d.mkdir()
    shutil.copy(sample_dir / "All_Orders_com.txt", d / "28392749283018.txt")
    r = _run("metrics", "--data", str(d), "--as-of", "2026-11-15")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    health.validate(doc)
    pm = doc["performanceMetrics"][0]
    assert pm["orderDefectRate"]["afn"]["orderCount"] > 0
    assert pm["lateShipmentRate"]["status"] == "NONE" and pm["lateShipmentRate"]["dataMissing"] == [
        "shipments"
    ]
    assert any("No MFN shipments file" in n for n in doc["dataQuality"]["notes"])


def test_schema_rejects_a_broken_document(sample_data):
    doc = health.account_health(sample_data, "2026-11-15").document
    del doc["performanceMetrics"][0]["orderDefectRate"]["afn"]["orderCount"]
    with pytest.raises(jsonschema.ValidationError):
        health.validate(doc)


CORPUS = __import__("pathlib").Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (None, "does not exist; pass --data"),
        ([], "is empty; put your Seller Central downloads in it"),
        (["claims.csv.gz"], "No All Orders report in"),
        (
            ["orders_missing_column.txt"],
            "orders_missing_column.txt: the All Orders report file has no 'sales-channel' column",
        ),
        (["_base_orders.txt", "orders_damaged.txt.gz"], "orders_damaged.txt.gz: the gzip file is damaged"),
    ],
)
@pytest.mark.parametrize("command", ["metrics", "check", "history"])
def test_fatal_errors_are_one_sentence(tmp_path, files, expected, command):
    d = tmp_path / "data"
    if files is not None:
        d.mkdir()
        for f in files:
            shutil.copy(CORPUS / f, d / f)
    extra = {
        "metrics": ["--as-of", "2026-11-15"],
        "check": [],
        "history": ["--from", "2026-11-01", "--to", "2026-11-02"],
    }
    r = _run(command, "--data", str(d), *extra[command])
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and expected in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    debug = _run("--debug", command, "--data", str(d), *extra[command])
    assert "Traceback" in debug.stderr


def test_unknown_file_warned_on_stderr(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for f in ("_base_orders.txt", "unknown_export.txt"):
        shutil.copy(CORPUS / f, d / f)
    r = _run("metrics", "--data", str(d), "--as-of", "2026-05-31", "--allow-incomplete")
    assert r.returncode == 0
    assert "warning: skipped unknown_export.txt: not a known export" in r.stderr
    assert any("Skipped unknown_export.txt" in n for n in json.loads(r.stdout)["dataQuality"]["notes"])


def test_check_exit_code(account, sample_dir):
    assert _run("check", "--data", str(sample_dir)).returncode == 0
    account.order("O1", "2026-05-01").order("O2", "not a date")
    r = _run("check", "--data", str(account.write()))
    assert r.returncode == 1 and "orders.txt:3: column 'purchase-date'" in r.stdout


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_history_cli_formats(tmp_path, sample_dir, fmt):
    import polars as pl

    out = tmp_path / f"h.{fmt}"
    r = _run(
        "history",
        "--data",
        str(sample_dir),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-15",
        "--format",
        fmt,
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    df = {"csv": pl.read_csv, "json": pl.read_json, "parquet": pl.read_parquet}[fmt](out)
    assert df.height == 15 * 2 * 11  # days x marketplaces x metrics
    row = df.filter(
        (pl.col("metric") == "orderDefectRate.mfn") & (pl.col("marketplace_id") == "ATVPDKIKX0DER")
    )
    last = row.filter(pl.col("as_of").cast(pl.String) == "2026-11-15")
    doc = health.account_health(sample_dir, "2026-11-15").document
    mfn = doc["performanceMetrics"][1]["orderDefectRate"]["mfn"]
    assert (last["numerator"][0], last["denominator"][0]) == (
        mfn["orderWithDefects"]["count"],
        mfn["orderCount"],
    )


def test_debug_anywhere_and_bugs_say_internal_error(tmp_path):
    args = ("metrics", "--data", str(tmp_path / "nowhere"), "--as-of", "2026-11-15")
    for where in (["--debug", *args], [*args, "--debug"]):
        assert "Traceback" in _run(*where).stderr
    plain = _run(*args)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    # a bug (not a user error) inside a command: said as one, traceback only with --debug
    code = (
        "import sys; from analysis import cli\nfrom analysis.metrics import health\n"
        "def broken(*a, **k): raise KeyError('oops')\n"
        "health.account_health = broken\n"
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    run = [sys.executable, "-c", code, "metrics", "--data", str(config.SAMPLE_DIR), "--as-of", "2026-11-15"]
    bug = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert (
        bug.returncode == 3
        and bug.stderr.startswith("internal error: KeyError")
        and "Traceback" not in bug.stderr
    )
    bug = subprocess.run([*run, "--debug"], capture_output=True, text=True, timeout=120)
    assert "Traceback" in bug.stderr and "KeyError" in bug.stderr


def test_report_period_options():
    r = _run("report", "--week", "2026-W40", "--month", "2026-10")
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = _run("report", "--week", "2026-46")
    assert r.returncode == 2 and "'2026-46' is not an ISO week; write it like 2026-W46" in r.stderr
    assert "reporting on the sample account" in r.stdout
    r = _run("report", "--to", "2026-11-01")
    assert r.returncode == 2 and "--to goes with --from" in r.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("metrics", "--as-of", "2026-11-15"),
        ("history", "--from", "2026-11-14", "--to", "2026-11-15"),
        ("defects", "--as-of", "2026-11-15", "--by", "sku"),
        ("spikes", "--as-of", "2026-11-15", "--from", "2026-09-01", "--format", "json"),
        ("check",),
    ],
)
def test_marketplace_by_id_domain_or_country_code(command):
    outs = [
        _run(command[0], "--data", str(config.SAMPLE_DIR), *command[1:], "--marketplace", m)
        for m in ("A1F83G8C2ARO7P", "amazon.co.uk", "UK", "gb")
    ]
    assert all(o.returncode in (0, 1) for o in outs), outs[0].stderr
    assert len({o.stdout for o in outs}) == 1
    if command[0] == "metrics":  # one marketplace only
        doc = json.loads(outs[0].stdout)
        assert [pm["marketplaceId"] for pm in doc["performanceMetrics"]] == ["A1F83G8C2ARO7P"]


def test_unknown_or_absent_marketplace_is_refused_up_front(tmp_path):
    for m, words in (("Mars", "is not a marketplace"), ("FR", "Amazon.fr (A13V1IB3VIYZZH) has no orders")):
        r = _run("report", "--data", str(config.SAMPLE_DIR), "--marketplace", m, "--out", str(tmp_path / "r"))
        assert r.returncode == 2 and words in r.stderr
        r = _run("metrics", "--data", str(config.SAMPLE_DIR), "--as-of", "2026-11-15", "--marketplace", m)
        assert r.returncode == 2 and words in r.stderr
    assert not (tmp_path / "r").exists()  # no failed notebook left behind


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_ctrl_c_stops_in_one_line_and_leaves_nothing_half_written(tmp_path, delay):
    """Ctrl-C during a report (`delay` seconds after its report folder appears: while its notebook
    runs, or while its page is exported): one line, exit 130, no traceback, and no running or
    temporary file left in the report folder."""
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "analysis", "report", "--data", str(config.SAMPLE_DIR), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: SIGINT reaches it as a terminal's Ctrl-C would
    )
    deadline = time.monotonic() + 120
    while not any(out.glob("*/*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the report's folder is made when its notebook is about to run
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the report finished before the interrupt")
    assert proc.returncode == 130, stderr
    assert (
        "Traceback" not in stderr and stderr.strip() == "interrupted: the command stopped before it finished."
    )
    assert not [p for p in out.rglob(".*") if p.is_file()], list(out.rglob(".*"))


def test_ctrl_c_caught_in_code_made_from_a_string_still_exits_130(tmp_path):
    """CPython marks a KeyboardInterrupt that passed through code made from a string (a
    dataclass being defined by an import when Ctrl-C comes) as unhandled even when it was
    caught, and at a normal exit then kills itself with SIGINT (a parent sees -2): the command
    exits 130 all the same. The Ctrl-C is made to come there: in the started process, the
    command's run is replaced (by a sitecustomize) with such code."""
    from analysis.errors import INTERRUPTED

    (tmp_path / "sitecustomize.py").write_text(
        "import analysis.cli\n"
        "def _run(args):\n"
        "    exec('raise KeyboardInterrupt')\n"
        "analysis.cli._run = _run\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    }
    r = subprocess.run(
        [sys.executable, "-m", "analysis", "check", "--data", str(config.SAMPLE_DIR)],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.PROJ_ROOT,
        timeout=120,
    )
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert r.stderr.strip() == INTERRUPTED


def test_an_operating_system_refusal_is_one_sentence_naming_the_path(tmp_path):
    """`--out` under a file: the system's refusal said as a sentence with the path, not as
    Python's "[Errno 20] ..." text."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = _run("report", "--data", str(config.SAMPLE_DIR), "--out", str(blocker / "reports"))
    assert r.returncode == 2
    assert "[Errno" not in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {blocker / 'reports'}") and "not a directory" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
