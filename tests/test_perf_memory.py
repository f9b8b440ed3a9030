"""benchmarks/peer_bench.py keeps running and its three ODRs agree (tiny size; no time is asserted),
and reading a folder of many overlapping downloads keeps memory to the rows kept."""

import os
import re
import resource
import subprocess
import sys

import pytest

from analysis import config


def test_peer_bench_runs_small_and_the_odr_counts_agree(tmp_path):
    pytest.importorskip("duckdb")
    r = subprocess.run(
        [
            sys.executable,
            str(config.PROJ_ROOT / "benchmarks" / "peer_bench.py"),
            "--items",
            "4000",
            "--history-days",
            "30",
            "--folder",
            str(tmp_path / "exports"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "POLARS_MAX_THREADS": "2"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ODR counts agree exactly: yes" in r.stdout
    assert "metrics again (cache warm)" in r.stdout and "history, 30 days" in r.stdout
    assert not list((tmp_path / "exports").glob("*.parquet"))  # the cache is never in the data folder
    # DuckDB's typed read of the metric columns (for scale) holds every line of All Orders
    floor_rows = re.search(r"orders rows (\d[\d,]*\d)", r.stdout).group(1)
    assert f"DuckDB typed read {floor_rows} rows" in r.stdout and "16 metric columns typed" in r.stdout


def test_peer_bench_exports_option_times_a_folder_as_it_is(tmp_path):
    """`--exports DIR` reuses exports written before and never writes into a folder that holds
    none (it would mix generated files with someone's data)."""
    r = subprocess.run(
        [sys.executable, str(config.PROJ_ROOT / "benchmarks" / "peer_bench.py"), "--exports", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "holds no exports written by this benchmark" in r.stderr
    assert not list(tmp_path.iterdir())


_MANY_FILES = """
import resource, sys
from pathlib import Path
from analysis.inputs import sources
data = sources.load(Path(sys.argv[1]), use_cache=False)
rows = data.frame("orders").select("order_id").collect().height
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _orders_file(path, first: int, n: int) -> None:
    from analysis.inputs.sample import ORDERS_HEADER

    lines = ["\t".join(ORDERS_HEADER)]
    for i in range(first, first + n):
        row = dict.fromkeys(ORDERS_HEADER, "")
        row.update(
            {
                "amazon-order-id": f"111-{i:07d}-0000001",
                "purchase-date": f"2026-05-{1 + i % 28:02d}T10:00:00+00:00",
                "last-updated-date": "2026-06-01T10:00:00+00:00",
                "order-status": "Shipped",
                "fulfillment-channel": "Amazon",
                "sales-channel": "Amazon.com",
                "sku": f"SKU-{i % 50}",
                "quantity": "1",
            }
        )
        lines.append("\t".join(row[h] for h in ORDERS_HEADER))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_memory_follows_the_rows_kept_not_the_files(tmp_path):
    """Forty downloads of the same 20,000 orders (each overlapping the others) peak at about what
    one download needs: the duplicates are not all held as text at once."""
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir()
    many.mkdir()
    _orders_file(one / "orders.txt", 0, 20_000)
    for k in range(40):
        _orders_file(many / f"orders_{k:02d}.txt", 0, 20_000)

    def peak(folder):
        r = subprocess.run(
            [sys.executable, "-c", _MANY_FILES, str(folder)], capture_output=True, text=True, timeout=600
        )
        assert r.returncode == 0, r.stderr
        rows, kb = r.stdout.split()
        return int(rows), int(kb) * 1024

    rows_one, mem_one = peak(one)
    rows_many, mem_many = peak(many)
    assert rows_one == rows_many == 20_000
    # 40 times the input may not cost 40 times the memory (measured: well under 3 times)
    assert mem_many < 3 * mem_one, (mem_one, mem_many)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
