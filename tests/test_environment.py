"""pyproject.toml, environment.yml and requirements.lock pin the same versions."""

import re
import tomllib

from analysis import config

ROOT = config.PROJ_ROOT


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(specs: list[str]) -> dict[str, str]:
    out = {}
    for s in specs:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", s)
        assert m, f"not pinned with ==: {s}"
        out[_norm(m.group(1))] = m.group(2)
    return out


def _pyproject() -> dict[str, str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = doc["project"]["dependencies"] + doc["project"]["optional-dependencies"]["dev"]
    return _pins(deps)


def _environment_yml() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_items = [ln.strip()[2:] for ln in lines if re.match(r"^\s{4,}- ", ln)]
    return _pins([p for p in pip_items if not p.startswith("-e")])


def test_environment_yml_matches_pyproject():
    assert _environment_yml() == _pyproject()


def test_lock_agrees_with_pins():
    lock = _pins(
        [ln for ln in (ROOT / "requirements.lock").read_text().splitlines() if ln and not ln.startswith("#")]
    )
    for name, version in _pyproject().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"
