"""The benchmark scripts keep running (tiny sizes; their timings are never asserted)."""

import subprocess
import sys

from analysis import config


def test_metrics_bench_runs_small():
    r = subprocess.run(
        [
            sys.executable,
            str(config.PROJ_ROOT / "benchmarks" / "metrics_bench.py"),
            "--items",
            "3000",
            "--history-days",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "ratio" in r.stdout and "history, 30 days" in r.stdout


def test_spike_eval_runs_small():
    r = subprocess.run(
        [sys.executable, str(config.PROJ_ROOT / "benchmarks" / "spike_eval.py"), "--accounts", "20"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "limit (LR test, known spike)" in r.stdout and "false alarms/yr" in r.stdout
