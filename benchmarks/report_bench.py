"""Weekly reports for 52 weeks of a sample account, rendered with `--jobs 2`.

    .venv/bin/python benchmarks/report_bench.py [--weeks 52] [--jobs 2]

Prints the wall-clock seconds per report and the share of the time spent starting kernels (the
per-report overhead), against a baseline in the same process: one report of a trivial notebook
(kernel start, one cell, HTML export), so the figures compare across machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import nbformat

from analysis.inputs import sample
from analysis.report import charts
from analysis.report import render as reports
from analysis.report.periods import iso_week_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    end = dt.date(2026, 11, 15)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "bench-account"
        sample.generate(data, end=end, days=7 * args.weeks + 90)
        trivial = root / "trivial.ipynb"
        nb = nbformat.v4.new_notebook()
        p = nbformat.v4.new_code_cell(
            "period = None\ndata_dir = None\nmarketplace = 'all'\naccount = None\ninteractive = True"
        )
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, nbformat.v4.new_code_cell("print('hello')")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, trivial)
        charts.vega_bundle()  # built once per process; not a per-report cost
        t = time.perf_counter()
        base = reports.render(data, week=iso_week_of(end), notebook=trivial, out_root=root / "trivial")
        base_s = time.perf_counter() - t
        print(
            f"baseline: trivial notebook report            {base_s:6.2f} s (kernel start {base.kernel_seconds:.2f} s)"
        )
        weeks = [iso_week_of(end - dt.timedelta(weeks=i)) for i in range(args.weeks)][::-1]
        t = time.perf_counter()
        results, errors = reports.render_many(
            data, weeks, jobs=args.jobs, progress=False, out_root=root / "out"
        )
        wall = time.perf_counter() - t
        kernel = sum(r.kernel_seconds for r in results)
        busy = sum(r.seconds for r in results)
        n = len(results)
        print(
            f"{n} weekly reports, --jobs {args.jobs}: {wall:.1f} s wall, {wall / max(n, 1):.2f} s per report "
            f"({wall / max(n, 1) / base_s:.1f}x the trivial report)"
        )
        print(
            f"time inside each report: {busy / max(n, 1):.2f} s, of which starting the kernel "
            f"{kernel / max(n, 1):.2f} s ({kernel / max(busy, 1e-9):.0%})"
        )
        if errors:
            print(f"{len(errors)} reports failed: {errors[0]}")


if __name__ == "__main__":
    main()
