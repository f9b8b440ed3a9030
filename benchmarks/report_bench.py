"""Report run times on the seeded sample account, each command run as a user runs it (a new
process, warm cache), against the kernel path measured in the same run.

    .venv/bin/python benchmarks/report_bench.py [--runs 5] [--weeks 4] [--jobs 1]

Prints, best and median of `--runs` runs (wall and CPU seconds of the whole process: interpreter
start, imports, data, notebook, HTML, index):
- one period, `python -m analysis report --data data/sample`: its notebook in this process
  (`render.InProcessSession`), against the same command with the notebook in a new kernel (a kept
  kernel started for the one period, as `report` ran it before), and their ratio;
- `--weeks` periods in one `report --from --to --every week` run (kept kernels), and the time
  each period after the first adds, against the one-period kernel run.
The load average is printed beside them: other work on the machine slows every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analysis import config

KERNEL_PATH = (  # the one-period command with its notebook in a kernel: the in-process path refused
    "import sys; from analysis.report import render; render.in_process_available = lambda: False; "
    "from analysis.cli import main; sys.exit(main(sys.argv[1:]))"
)


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system, the process and its children, kernels included) seconds."""
    before = os.times()
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=config.PROJ_ROOT)
    wall = time.perf_counter() - t
    after = os.times()
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def runs(cmd: list[str], n: int) -> dict[str, float]:
    walls, cpus = zip(*(timed(cmd) for _ in range(n)), strict=True)
    return {
        "best": min(walls),
        "median": statistics.median(walls),
        "cpu_best": min(cpus),
        "cpu_median": statistics.median(cpus),
    }


def show(label: str, r: dict[str, float]) -> str:
    return (
        f"{label:38s} wall best {r['best']:5.2f} s, median {r['median']:5.2f} s; "
        f"CPU best {r['cpu_best']:5.2f} s, median {r['cpu_median']:5.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (best and median shown)")
    ap.add_argument("--weeks", type=int, default=4, help="periods of the multi-period run")
    ap.add_argument("--jobs", type=int, default=1, help="--jobs of the multi-period run")
    args = ap.parse_args()
    data = str(config.SAMPLE_DIR)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        out = Path(tmp)
        report = ["report", "--data", data, "--out", str(out / "one")]
        # a first run of each: the cache of typed rows, the Vega bundle and the compiled templates
        # are kept between runs on the user's machine too; not what is measured
        subprocess.run([sys.executable, "-m", "analysis", *report], capture_output=True, cwd=config.PROJ_ROOT)
        print(
            f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, {os.cpu_count()} cores"
        )
        kernel = runs([sys.executable, "-c", KERNEL_PATH, *report], args.runs)
        single = runs([sys.executable, "-m", "analysis", *report], args.runs)
        end = dt.date(2026, 11, 15)  # the sample's newest order day (a Sunday: week 2026-W46 complete)
        first = end - dt.timedelta(weeks=args.weeks - 1, days=6)
        many_cmd = [
            sys.executable, "-m", "analysis", "report", "--data", data, "--out", str(out / "many"),
            "--from", first.isoformat(), "--to", end.isoformat(), "--every", "week", "--jobs", str(args.jobs),
        ]  # fmt: skip
        many = runs(many_cmd, max(1, args.runs // 2))
        print(f"load average after:  {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(show("one period, notebook in a kernel", kernel))
    print(show("one period, notebook in-process", single))
    print(
        f"  in-process / kernel: wall {single['best'] / kernel['best']:.2f} (best), "
        f"{single['median'] / kernel['median']:.2f} (median); CPU {single['cpu_median'] / kernel['cpu_median']:.2f}"
    )
    print(show(f"{args.weeks} periods, kept kernels (--jobs {args.jobs})", many))
    per = (many["median"] - kernel["median"]) / max(1, args.weeks - 1)
    print(
        f"  each period after the first: {per:.2f} s (median), {per / kernel['median']:.2f} x the one-period "
        f"kernel run; {many['median'] / args.weeks:.2f} s per period over the whole run"
    )


if __name__ == "__main__":
    main()
