"""The code stays ruff-clean (lint and format), so style never needs a review round."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import config

RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff(args):
    r = subprocess.run(
        [RUFF, *args, "analysis", "tests", "tools", "benchmarks"],
        cwd=config.PROJ_ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
