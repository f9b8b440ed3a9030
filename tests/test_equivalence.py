"""The sample's metrics do not depend on how its files arrive: renamed, gzipped, re-encoded to
windows-1252, or split into two overlapping downloads."""

import gzip
import shutil

import pytest

from analysis.metrics import health

AS_OF = "2026-11-15"


def _strip(o):
    if isinstance(o, dict):
        return {k: _strip(v) for k, v in o.items() if k != "source"}
    if isinstance(o, list):
        return [_strip(v) for v in o]
    return o


def _metrics(folder):
    doc = health.account_health(folder, AS_OF).document
    return _strip(
        {"performanceMetrics": doc["performanceMetrics"], "accountStatuses": doc["accountStatuses"]}
    )


@pytest.fixture(scope="module")
def reference(sample_dir=None):
    from analysis import config

    return _metrics(config.SAMPLE_DIR)


def _text(p):
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def renamed(src, dst):
    for i, p in enumerate(sorted(src.iterdir())):
        shutil.copy(p, dst / f"2839274928{3018 + i}.txt")


def gzipped(src, dst):
    for p in src.iterdir():
        (dst / f"{p.name}.gz").write_bytes(gzip.compress(p.read_bytes(), mtime=0))


def windows_1252(src, dst):
    for p in src.iterdir():
        (dst / p.name).write_bytes(_text(p).encode("cp1252"))


def split_overlapping(src, dst):
    for p in src.iterdir():
        if p.suffix == ".json":
            shutil.copy(p, dst / p.name)
            continue
        raw = p.read_bytes()
        lines = raw.split(b"\n")
        header, rows = lines[0], [ln for ln in lines[1:] if ln]
        cut_a, cut_b = int(len(rows) * 0.6), int(len(rows) * 0.4)
        (dst / f"a_{p.name}").write_bytes(b"\n".join([header, *rows[:cut_a]]) + b"\n")
        (dst / f"b_{p.name}").write_bytes(b"\n".join([header, *rows[cut_b:]]) + b"\n")


@pytest.mark.parametrize("variant", [renamed, gzipped, windows_1252, split_overlapping])
def test_same_metrics(tmp_path, sample_dir, reference, variant):
    dst = tmp_path / variant.__name__
    dst.mkdir()
    variant(sample_dir, dst)
    assert _metrics(dst) == reference
