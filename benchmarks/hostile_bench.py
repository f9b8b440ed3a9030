"""Peak memory of reading hostile inputs: a gzip bomb and a header line of 300,000 commas.

    .venv/bin/python benchmarks/hostile_bench.py [--bomb-mib 1024] [--header-kb 300]

Each case is a copy of the sample account plus one hostile file, read by `sources.load` in a
fresh Python process whose peak resident memory (ru_maxrss) is reported, against a baseline run
the same way: the unaltered sample. The readers must refuse both files (one DataError sentence)
with a peak under 1 GB; before issue 14 the bomb peaked at 3.2 GB and the header at 5.4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 1024


def _child(folder: str) -> None:
    """Read `folder` once and print what it cost (run in a fresh process)."""
    sys.path.insert(0, str(ROOT))
    from analysis.errors import DataError
    from analysis.inputs import sources

    t = time.perf_counter()
    try:
        data = sources.load(folder)
        outcome = f"read ({sum(f.rows for f in data.files)} rows)"
    except DataError as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"peak_mb": peak_kb / 1024, "seconds": seconds, "outcome": outcome}))


def _measure(folder: Path) -> dict:
    r = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True, check=True
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def _gzip_bomb(path: Path, mib: int) -> None:
    """A feedback file whose header is followed by `mib` MiB of tabs, gzip-compressed (about 1 MB
    for 1 GiB)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [co.compress(b"Date\tRating\tComments\tYour Response\tOrder ID\tRater Email\tRemoved\n")]
    block = b"\t" * (1 << 20)
    parts += [co.compress(block) for _ in range(mib)]
    parts.append(co.flush())
    path.write_bytes(b"".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bomb-mib", type=int, default=1024, help="decompressed size of the gzip bomb")
    ap.add_argument("--header-kb", type=int, default=300, help="length of the header line of commas")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = root / "sample"
        shutil.copytree(ROOT / "data" / "sample", base)
        bomb = root / "bomb"
        shutil.copytree(base, bomb)
        _gzip_bomb(bomb / "feedback_bomb.txt.gz", args.bomb_mib)
        wide = root / "wide"
        shutil.copytree(base, wide)
        (wide / "claims_wide.csv").write_text(
            "order-id,claim-date,claim-status" + "," * (args.header_kb * 1000) + "\n", encoding="utf-8"
        )
        size = (bomb / "feedback_bomb.txt.gz").stat().st_size
        cases = [
            ("baseline: the sample account", base),
            (f"gzip bomb: {size / 1e6:.1f} MB expanding to {args.bomb_mib} MiB", bomb),
            (f"header of {args.header_kb} KB of commas", wide),
        ]
        baseline = None
        ok = True
        for label, folder in cases:
            m = _measure(folder)
            baseline = baseline or m["peak_mb"]
            ratio = m["peak_mb"] / baseline
            within = m["peak_mb"] < TARGET_MB
            ok &= within
            print(
                f"{label:44s} peak {m['peak_mb']:7.0f} MB ({ratio:4.2f} x baseline), {m['seconds']:5.2f} s, "
                f"{'under' if within else 'OVER'} {TARGET_MB} MB; {m['outcome'][:110]}"
            )
        print("all cases under the target" if ok else "some case is over the target")


if __name__ == "__main__":
    main()
