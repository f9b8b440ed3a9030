"""Every account in one run (`analysis.fleet.run`), timed with 1 and 2 worker processes, with and
without reports.

    .venv/bin/python benchmarks/fleet_bench.py --accounts 200 [--days 90] [--volume 5:5000]
        [--workers 1,2] [--modes metrics,reports] [--report-accounts 30] [--keep DIR]
        [--cache cold|warm|cold,warm] [--cache-dir DIR]

Accounts come from the sample generator (`analysis.inputs.sample.Generator`), one seed each: by
default the sample's volume, about 110 orders a day; `--volume LO:HI` gives account i a volume
between LO and HI orders a day (log-spaced over the accounts) by scaling the generator's daily
order rate (the same Generator, its `make_orders` with the rate multiplied). `--keep DIR` keeps the
generated accounts for the next run (generating 5 to 5,000 orders a day for 200 accounts and 90
days, 13 million orders, takes about 30 minutes on 2 cores).

Prints per run the wall time, the time per account (wall / accounts), the steady time per account
(between the first and the last account finished: without the cluster's start and the first
report's kernel), the median seconds inside one account's task and its CPU seconds (worker and
report kernel: what an account costs whatever else the machine runs), the load average when the run
ended, and each time against a baseline in the same process: one single-account `account_health`
call on the account of median volume (its files read beforehand), so the ratios compare across
machines. The on-disk cache of parsed exports (`AH_CACHE_DIR`): `cold` gives each run an empty one
(every account's files parsed, as on the first run over new exports), `warm` one filled by an untimed
run (`--cache-dir DIR` keeps it for the next invocation), `cold,warm` times each run cold and then
again on the cache it filled (a weekly agency run). The cache is keyed by the readers' source: a run
while analysis/inputs changes reads nothing from it.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from analysis import config
from analysis.fleet import run as fleet
from analysis.inputs import sample, sources
from analysis.metrics import health

CACHE_ENV = "AH_CACHE_DIR"  # where sources.load keeps parsed exports (analysis.inputs.cache)

BASE_ORDERS = sum(m.base_orders for m in sample.MARKETS)  # the sample's orders a day


class ScaledGenerator(sample.Generator):
    """The sample generator with its daily order rate multiplied by `scale`."""

    def __init__(self, seed: int, end, days: int, scale: float) -> None:
        super().__init__(seed, end, days)
        self.scale = scale

    def make_orders(self) -> None:  # Generator.make_orders, with lam * scale
        import datetime as dt

        for m in sample.MARKETS:
            for i in range(self.days):
                day = self.start + dt.timedelta(days=i)
                trend = 0.85 + 0.3 * i / self.days
                lam = m.base_orders * self.scale * sample.WEEKDAY[day.weekday()] * trend
                for _ in range(self._poisson(lam)):
                    self.orders.append(self._order(m, day))
        self.orders.sort(key=lambda o: (o.purchase, o.order_id))


def make_account(args: tuple[Path, int, int, float | None]) -> float:
    folder, seed, days, per_day = args
    t = time.perf_counter()
    if per_day is None:
        sample.generate(folder, seed=seed, end=config.SAMPLE_END_DATE, days=days)
    else:
        import datetime as dt

        g = ScaledGenerator(seed, dt.date.fromisoformat(config.SAMPLE_END_DATE), days, per_day / BASE_ORDERS)
        g.make_orders()
        g.make_events()
        folder.mkdir(parents=True, exist_ok=True)
        g.write(folder)
    return time.perf_counter() - t


def volumes(n: int, spec: str | None) -> list[float | None]:
    if not spec:
        return [None] * n
    lo, hi = (float(x) for x in spec.split(":"))
    if n == 1:
        return [lo]
    return [round(math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (n - 1)), 1) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--volume", help="LO:HI orders a day over the accounts (default: the sample's)")
    ap.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated")
    ap.add_argument("--modes", default="metrics,reports", help="metrics, reports or both")
    ap.add_argument("--keep", type=Path, help="keep (and reuse) the generated accounts in this folder")
    ap.add_argument(
        "--cache",
        default="cold",
        help="the on-disk cache of parsed exports: cold (a new one for each run: every file parsed), "
        "warm (filled by an untimed run first), or cold,warm (each run cold, then again on the cache it filled)",
    )
    ap.add_argument(
        "--cache-dir",
        type=Path,
        help="with --cache warm: the cache every run reads, kept; filled by an untimed run when empty",
    )
    ap.add_argument(
        "--report-accounts",
        type=int,
        help="with reports: only this many of the accounts, evenly spaced over the volumes (default: all)",
    )
    args = ap.parse_args()
    caches = [c.strip() for c in args.cache.split(",") if c.strip()]
    if not caches or set(caches) - {"cold", "warm"}:
        ap.error("--cache: cold, warm or cold,warm")
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    root = args.keep or tmp / "accounts"
    try:
        vols = volumes(args.accounts, args.volume)
        folders = [
            root / (f"acct-{i:04d}" if v is None else f"acct-{i:04d}-{v:g}") for i, v in enumerate(vols)
        ]
        todo = [
            (f, 1000 + i, args.days, v)
            for i, (f, v) in enumerate(zip(folders, vols, strict=True))
            if not (f / "manifest.json").exists()
        ]
        todo.sort(key=lambda t: -(t[3] or 0))  # the biggest first: the two processes end together
        t = time.perf_counter()
        if todo:
            with ProcessPoolExecutor(max_workers=2) as pool:
                list(pool.map(make_account, todo))
        print(
            f"{args.accounts} accounts of {args.days} days "
            f"({'about 110' if args.volume is None else args.volume.replace(':', ' to ')} orders a day, "
            f"{size_gb(folders):.1f} GB of exports): {len(todo)} generated in {time.perf_counter() - t:.1f} s"
        )
        # baseline: one single-account account_health call in this process, on the account of
        # median volume, its files read beforehand (the median of 3)
        mid = folders[len(folders) // 2]
        times = []
        for _ in range(3):
            data = sources.load(mid)
            t = time.perf_counter()
            health.account_health(data, config.SAMPLE_END_DATE)
            times.append(time.perf_counter() - t)
        base = statistics.median(times)
        print(f"baseline: one account_health call on {mid.name}, files read: {base:.2f} s")
        print(f"load average before: {_load()} (2 cores; others' work included)\n")
        head = (
            f"{'run':<34}{'wall s':>8}{'per account s':>15}{'ratio':>7}{'steady s':>10}{'ratio':>7}"
            f"{'in task s':>11}{'cpu s':>7}{'cpu/workers':>13}{'failed':>8}  load 1/5 min"
        )
        print(head)
        print("-" * len(head))
        all_accounts = tmp / "accounts-all.toml"
        all_accounts.write_text(
            "".join(f'[[account]]\nname = "{f.name}"\ndata = "{f}"\n' for f in folders), encoding="utf-8"
        )
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            chosen = folders
            if mode == "reports" and args.report_accounts and args.report_accounts < len(folders):
                step = (len(folders) - 1) / max(1, args.report_accounts - 1)
                chosen = [folders[round(i * step)] for i in range(args.report_accounts)]
            accounts = tmp / f"accounts-{mode}.toml"
            accounts.write_text(
                "".join(f'[[account]]\nname = "{f.name}"\ndata = "{f}"\n' for f in chosen), encoding="utf-8"
            )
            for w in [int(x) for x in args.workers.split(",")]:
                if caches == ["warm"]:  # one cache for every run, filled once by an untimed run
                    cache = args.cache_dir or tmp / "cache-warm"
                    os.environ[CACHE_ENV] = str(cache)
                    if not (cache.is_dir() and any(cache.iterdir())):
                        fleet.run(
                            all_accounts, period=PERIOD, workers=2, out_root=tmp / "warm-up", progress=False
                        )
                        shutil.rmtree(tmp / "warm-up", ignore_errors=True)
                    label = f"{mode}, {w} worker{'s' if w > 1 else ''}, warm, {len(chosen)} accts"
                    one_run(label, accounts, mode, w, base, tmp / f"out-{mode}-{w}")
                    continue
                cache = tmp / f"cache-{mode}-{w}"
                for state in caches:
                    os.environ[CACHE_ENV] = str(cache)  # cold: new; warm: filled by the run before
                    label = f"{mode}, {w} worker{'s' if w > 1 else ''}, {state}, {len(chosen)} accts"
                    one_run(label, accounts, mode, w, base, tmp / f"out-{mode}-{w}")
                shutil.rmtree(cache, ignore_errors=True)
        print(
            "\nper account: wall / accounts; steady: between the first and the last account finished, "
            "/ (accounts - 1);\nin task: median seconds inside one account's task (load, metrics, last week, "
            "incidents, actions, report);\ncpu: median CPU seconds of one account (its worker and report kernel); "
            "cpu/workers: the time per account\nthose give on an otherwise idle machine with a core per worker. "
            "cold: every account's exports parsed\n(and the on-disk cache filled); warm: read from that cache, "
            "as a weekly run of an agency does."
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


PERIOD = "2026-W46"


def one_run(label: str, accounts: Path, mode: str, w: int, base: float, out: Path) -> None:
    """Time one fleet run and print its row."""
    done: list[float] = []
    t = time.perf_counter()
    res = fleet.run(
        accounts,
        period=PERIOD,
        workers=w,
        reports=mode == "reports",
        out_root=out,
        progress=lambda *_, done=done: done.append(time.perf_counter()),
    )
    wall = time.perf_counter() - t
    n = len(res.rows)
    steady = (done[-1] - done[0]) / (n - 1) if n > 1 else wall
    inside = statistics.median(res.timings.values())
    cpu = statistics.median(res.cpu.values())
    print(
        f"{label:<34}{wall:>8.1f}{wall / n:>15.2f}{wall / n / base:>7.1f}{steady:>10.2f}{steady / base:>7.1f}"
        f"{inside:>11.2f}{cpu:>7.2f}{cpu / w:>13.2f}{len(res.failed):>8}  {_load()}",
        flush=True,
    )
    total = sum(res.cpu.values())
    print(f"  {'':<32}all accounts: {total:.0f} CPU s, {total / w:.0f} s per worker process")
    for row in res.failed[:3]:
        print(f"  failed: {row['name']}: {row.get('error')}")
    shutil.rmtree(out, ignore_errors=True)


def size_gb(folders: list[Path]) -> float:
    """The generated exports' size on disk, in GB."""
    return sum(f.stat().st_size for d in folders if d.is_dir() for f in d.iterdir() if f.is_file()) / 1e9


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} / {five:.1f}"


if __name__ == "__main__":  # worker processes are spawned: they import this file without running it
    main()
