"""Issue 16: the cache's command-line options. `--cache-dir` puts the cache where asked and
`--no-cache` writes none (for the whole run: kernels and workers read the environment the CLI
sets); a damaged cache is one plain warning line, and the run's output is the cold run's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from analysis import config

SAMPLE = config.SAMPLE_DIR
AS_OF = "2026-11-15"


def _metrics(*extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "analysis", *extra, "metrics", "--data", str(SAMPLE), "--as-of", AS_OF]
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=config.PROJ_ROOT, timeout=300)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _env(tmp_path: Path) -> dict:
    """No AH_CACHE_DIR: the default folder comes from XDG_CACHE_HOME, here a temporary one."""
    env = {k: v for k, v in os.environ.items() if k not in ("AH_CACHE_DIR", "AH_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return env


def test_cache_dir_option_is_where_the_cache_goes(tmp_path):
    env = _env(tmp_path)
    got = _metrics("--cache-dir", str(tmp_path / "mine"), env=env)
    assert got.returncode == 0, got.stderr
    assert any(p.name == "meta.json" for p in _files(tmp_path / "mine"))
    assert _files(tmp_path / "xdg") == []  # not the default folder
    # accepted after the command too, and the second run reads the cache: same bytes
    again = subprocess.run(
        [sys.executable, "-m", "analysis", "metrics", "--data", str(SAMPLE), "--as-of", AS_OF]
        + ["--cache-dir", str(tmp_path / "mine")],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.PROJ_ROOT,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == got.stdout


def test_default_cache_folder_is_the_users_cache_folder(tmp_path):
    got = _metrics(env=_env(tmp_path))
    assert got.returncode == 0, got.stderr
    assert any(p.name == "meta.json" for p in _files(tmp_path / "xdg" / "amazon-account-health"))


def test_no_cache_writes_nothing_and_gives_the_same_document(tmp_path):
    env = _env(tmp_path)
    cold = _metrics("--no-cache", "--cache-dir", str(tmp_path / "c"), env=env)
    assert cold.returncode == 0, cold.stderr
    assert _files(tmp_path / "c") == [] and _files(tmp_path / "xdg") == []
    warm = _metrics("--cache-dir", str(tmp_path / "c"), env=env)
    cached = _metrics("--cache-dir", str(tmp_path / "c"), env=env)
    assert cold.stdout == warm.stdout == cached.stdout


def test_damaged_cache_is_one_warning_line_and_the_files_are_read(tmp_path):
    env = _env(tmp_path)
    first = _metrics("--cache-dir", str(tmp_path / "c"), env=env)
    (orders,) = (tmp_path / "c").glob("v*/*/*/orders.parquet")
    with open(orders, "r+b") as fh:  # same size, other bytes
        fh.seek(100)
        fh.write(b"XXXX")
    got = _metrics("--cache-dir", str(tmp_path / "c"), env=env)
    assert got.returncode == 0, got.stderr
    assert got.stdout == first.stdout
    lines = [line for line in got.stderr.splitlines() if "cache" in line.lower()]
    assert len(lines) == 1, got.stderr
    assert lines[0].startswith("warning: The cache of ") and "damaged" in lines[0]
    assert "CacheWarning" not in got.stderr and ".py:" not in got.stderr


def test_cache_inside_the_data_folder_is_one_sentence(tmp_path, sample_copy):
    data = sample_copy
    before = _files(data)
    args = [sys.executable, "-m", "analysis", "metrics", "--data", str(data), "--as-of", AS_OF]
    got = subprocess.run(
        [*args, "--cache-dir", str(data / "cache")],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=config.PROJ_ROOT,
        timeout=300,
    )
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and "inside the data folder" in got.stderr
    assert _files(data) == before


def test_empty_cache_dir_is_refused_not_the_current_folder(tmp_path):
    env = _env(tmp_path)
    args = [sys.executable, "-m", "analysis", "metrics", "--data", str(SAMPLE), "--as-of", AS_OF]
    got = subprocess.run(
        [*args, "--cache-dir", ""], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert got.returncode == 2 and "--cache-dir" in got.stderr and "Traceback" not in got.stderr
    assert _files(tmp_path) == []  # nothing written where the run started
