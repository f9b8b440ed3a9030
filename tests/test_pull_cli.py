"""`python -m analysis pull` end to end against the local SP-API stand-in: the pulled folder gives
the same metrics as the same documents placed by hand, credentials never appear, a second pull
fetches only what is new, and a rejected login is one sentence."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from spapi_standin import StandIn

# what the API does not serve: the user keeps placing these files by hand
BY_HAND = (
    "a-to-z-claims.csv",
    "chargebacks.csv",
    "mfn-shipments.csv",
    "cancellations.csv",
    "buyer-messages.csv",
    "business-invoices.csv",
)


@pytest.fixture
def standin(tmp_path):
    with StandIn() as st:
        yield st


def _env(st: StandIn, tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LWA_", "SP_API_"))}
    cfg = tmp_path / "sp-api-config"
    cfg.mkdir(exist_ok=True)
    return {**env, **st.env(), "PYTHON-SP-APIDIR": str(cfg), **extra}


def _pull(st: StandIn, data: Path, env: dict, *extra: str):
    cmd = [
        sys.executable, "-m", "analysis", "pull", "--account", "acme", "--data", str(data),
        "--from", "2026-09-01", "--to", "2026-11-15", "--endpoint", st.url, "--token-url", st.token_url, *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _metrics(data: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "analysis", "metrics", "--data", str(data), "--as-of", "2026-11-15"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    doc.pop("dataQuality")  # names the files, which differ
    return doc


def test_pulled_folder_equals_hand_placed(standin, tmp_path, sample_dir):
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    env = _env(standin, tmp_path)
    first = _pull(standin, pulled, env, "--reports", "orders,feedback,returns")
    assert first.returncode == 0, first.stderr
    assert "no report in the API" in first.stdout or "by hand" in first.stdout
    files = sorted(p for p in (pulled / "raw").rglob("*") if p.is_file())
    assert files and all(p.name.endswith((".txt.gz", ".cancelled")) for p in files)
    # the same documents placed by hand, decompressed
    hand = tmp_path / "hand"
    hand.mkdir()
    for p in files:
        if p.name.endswith(".gz"):
            (hand / f"{p.parent.name}_{p.name[:-3]}").write_bytes(gzip.decompress(p.read_bytes()))
    for name in (*BY_HAND, *(p.name for p in sample_dir.glob("V2_Seller_Performance_*.json"))):
        shutil.copy(sample_dir / name, pulled / name)
        shutil.copy(sample_dir / name, hand / name)
    assert _metrics(pulled) == _metrics(hand)
    # nothing written holds a credential
    secrets = [v for k, v in standin.env().items()]
    for p in pulled.rglob("*"):
        if p.is_file():
            body = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
            assert not any(s.encode() in body for s in secrets), p
    assert not any(s in first.stdout + first.stderr for s in secrets)
    # a second pull fetches nothing new: every period is already there
    before = {p: p.stat().st_mtime_ns for p in files}
    again = _pull(standin, pulled, env, "--reports", "orders,feedback,returns")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in files} == before  # never rewritten


def test_rejected_credentials_are_one_sentence(standin, tmp_path):
    data = tmp_path / "acme"
    data.mkdir()
    out = _pull(
        standin, data, _env(standin, tmp_path, LWA_CLIENT_SECRET="wrong-secret"), "--reports", "orders"
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr
    assert "wrong-secret" not in out.stderr + out.stdout
    assert not (data / "raw").exists() or not any((data / "raw").rglob("*.gz"))
