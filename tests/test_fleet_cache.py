"""Issue 17 with issue 16: the run's cache options reach workers that did not start from this
process (a cluster given by its scheduler address), so `--cache-dir` and `--no-cache` hold on a
remote cluster too. The cluster here is a real LocalCluster started before the options are set,
so its workers' own environment does not have them."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest

from analysis.fleet import run as fleet
from analysis.inputs import cache


@pytest.fixture(scope="module")
def scheduler():
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    ) as cluster:
        yield cluster.scheduler_address


def _accounts(tmp_path: Path, data: Path) -> Path:
    """One account: `data`, a copy of the sample in a folder of this test (its cache entries are its own)."""
    path = tmp_path / "accounts.toml"
    path.write_text(f'[[account]]\nname = "sample"\ndata = "{data}"\n', encoding="utf-8")
    return path


def _folder_entries(root: Path, data: Path) -> list[Path]:
    """Cache entries of the data folder `data` under the cache folder `root`."""
    key = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:16]
    return list(root.glob(f"v*/{key}/*/meta.json"))


def _entries(folder: Path) -> list[Path]:
    return list(folder.glob("v*/*/*/meta.json")) if folder.exists() else []


def test_cache_dir_reaches_a_clusters_workers(tmp_path, sample_copy, scheduler, monkeypatch):
    mine = tmp_path / "run-cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(mine))  # as --cache-dir sets it, after the workers started
    monkeypatch.delenv(cache.SWITCH_ENV, raising=False)
    res = fleet.run(
        _accounts(tmp_path, sample_copy),
        period="2026-W46",
        scheduler=scheduler,
        out_root=tmp_path / "out",
        progress=False,
    )
    assert res.exit_code == 0, res.failed
    assert len(_entries(mine)) == 1  # the worker wrote the cache where the run said


def test_no_cache_reaches_a_clusters_workers(tmp_path, sample_copy, scheduler, monkeypatch):
    workers_own = Path(os.environ[cache.CACHE_ENV])  # what the workers' environment says
    mine = tmp_path / "run-cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(mine))
    monkeypatch.setenv(cache.SWITCH_ENV, "off")  # as --no-cache sets it
    res = fleet.run(
        _accounts(tmp_path, sample_copy),
        period="2026-W46",
        scheduler=scheduler,
        out_root=tmp_path / "out",
        progress=False,
    )
    assert res.exit_code == 0, res.failed
    assert _entries(mine) == []
    assert _folder_entries(workers_own, sample_copy) == []  # nor in the workers' own folder
