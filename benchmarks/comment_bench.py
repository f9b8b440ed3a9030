"""What one very long buyer comment costs a weekly report (issue 14: at most 1 s more).

    .venv/bin/python benchmarks/comment_bench.py [--kb 120] [--runs 3]

Renders the sample account's latest weekly report (the baseline) and the same account with one
negative feedback of that week given a comment of `--kb` KB (an e-mail address and a phone number
repeated), alternately, `--runs` times each, in this process. Prints the median seconds of each,
the difference and the ratio, and checks the comment's e-mail never reaches the HTML or notebook.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from analysis import config
from analysis.metrics.settings import Settings
from analysis.report import render as reports

EMAIL = "jane.doe@example.com"


def long_comment_copy(src: Path, dst: Path, kb: int, week_first: str) -> None:
    """A copy of `src` whose first negative US feedback left on or after `week_first` (d/m/y
    dates in the US file are m/d/y: compared after parsing) has a `kb` KB comment."""
    import datetime as dt

    shutil.copytree(src, dst)
    path = dst / "Feedback_com.txt"
    lines = path.read_text(encoding="latin-1").split("\n")
    first = dt.date.fromisoformat(week_first)
    text = (f"it broke, write me at {EMAIL} or +1 555 123 4567. " * (kb * 20))[: kb * 1000]
    for i, line in enumerate(lines[1:], 1):
        f = line.split("\t")
        if len(f) > 2 and f[1] in ("1", "2"):
            m, d, y = (int(x) for x in f[0].split("/"))
            if dt.date(2000 + y, m, d) >= first:
                f[2] = text
                lines[i] = "\t".join(f)
                break
    else:
        raise SystemExit("no negative feedback in the report's week")
    path.write_text("\n".join(lines), encoding="latin-1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kb", type=int, default=120)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    week = reports.default_week(config.SAMPLE_DIR)
    from analysis.report.periods import parse_period

    first = parse_period(week).first.isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        long = root / "long-comment"
        long_comment_copy(config.SAMPLE_DIR, long, args.kb, first)
        times: dict[str, list[float]] = {"sample": [], "long comment": []}
        for i in range(args.runs):
            for label, data in (("sample", config.SAMPLE_DIR), ("long comment", long)):
                t = time.perf_counter()
                res = reports.render(
                    data,
                    Settings(),
                    week=week,
                    account=f"{label.replace(' ', '-')}-{i}",
                    out_root=root / "out",
                )
                times[label].append(time.perf_counter() - t)
                if label == "long comment":
                    for f in (res.html, res.notebook):
                        assert EMAIL not in Path(f).read_text(encoding="utf-8"), f"{f}: the e-mail leaked"
        base, longt = (statistics.median(times[k]) for k in ("sample", "long comment"))
        print(f"report of {week}, median of {args.runs} runs each")
        print(f"  sample:                 {base:6.2f} s")
        print(f"  + one {args.kb} KB comment: {longt:6.2f} s  (+{longt - base:.2f} s, {longt / base:.2f}x)")
        print(f"  the comment's e-mail in the HTML or notebook: no ({EMAIL} masked)")


if __name__ == "__main__":
    main()
