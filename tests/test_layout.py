"""The package's folders follow the pipeline: each module imports only from the base modules, its
own folder and the folders before it (README, "Layout"). This walks every import statement,
including those inside functions, and names the one that breaks the order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from analysis import config

# The order of the pipeline; the base modules come first, the CLI last.
LAYERS = ["base", "inputs", "metrics", "insights", "report", "deliver", "fleet", "explore", "app"]
BASE = {"config", "errors", "wording", "safety"}
APP = {"cli", "__main__", "__init__"}


def layer_of(module: str) -> str:
    """'analysis.metrics.health' -> 'metrics'; 'analysis.errors' -> 'base'; 'analysis' -> 'base'."""
    parts = module.split(".")
    assert parts[0] == "analysis", module
    if len(parts) == 1:
        return "base"  # the package itself (its __version__); it imports nothing on load
    if parts[1] in BASE:
        return "base"
    if parts[1] in APP:
        return "app"
    assert parts[1] in LAYERS, f"{module}: not in a layer folder or a base module"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(config.PACKAGE_DIR.parent).with_suffix("")
    return (
        ".".join(p for p in rel.parts if p != "__init__") if rel.name == "__init__" else ".".join(rel.parts)
    )


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported analysis module) for every import in the file, wherever it stands."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "analysis"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "analysis":
                continue
            for a in node.names:
                # `from analysis import errors` imports the module analysis.errors;
                # `from analysis.metrics.health import account_health` imports analysis.metrics.health
                sub = f"{node.module}.{a.name}"
                is_module = node.module.count(".") < 2 and (
                    (config.PACKAGE_DIR.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                    or (config.PACKAGE_DIR.parent / Path(*sub.split("."))).is_dir()
                )
                out.append((node.lineno, sub if is_module else node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import at line {node.lineno}; write analysis.<...>")
    return out


def violations(files: list[Path]) -> list[str]:
    bad = []
    for path in files:
        me = module_name(path)
        # the package root is the public API, named for notebooks: it may name anything (lazily)
        mine = LAYERS.index("app" if me == "analysis" else layer_of(me))
        for line, target in imports_of(path):
            theirs = LAYERS.index(layer_of(target))
            if theirs > mine:
                bad.append(
                    f"{path.relative_to(config.PROJ_ROOT)}:{line}: {me} ({LAYERS[mine]}) imports "
                    f"{target} ({LAYERS[theirs]}), a later folder"
                )
    return bad


PACKAGE_FILES = sorted(config.PACKAGE_DIR.rglob("*.py"))


def test_every_module_imports_only_from_earlier_folders():
    assert PACKAGE_FILES, "no package files found"
    assert violations(PACKAGE_FILES) == []


def test_no_module_is_left_outside_the_layers():
    for path in PACKAGE_FILES:
        layer_of(module_name(path))  # raises for a module in no folder


def test_the_package_root_imports_nothing_on_load():
    """`import analysis.errors` must not pull in the metrics: the public names load on first use."""
    tree = ast.parse((config.PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all((n.module or "").split(".")[0] != "analysis" for n in top if isinstance(n, ast.ImportFrom)), (
        "analysis/__init__.py imports a module of the package at load time"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # an insight imported by a metric module: against the flow
        (
            "from analysis.insights import spikes\n",
            "analysis.metrics.fake (metrics) imports analysis.insights.spikes",
        ),
        # inside a function counts too
        ("def f():\n    from analysis.report.kit import esc\n", "imports analysis.report.kit (report)"),
        ("import analysis.explore.widgets\n", "imports analysis.explore.widgets (explore)"),
    ],
)
def test_the_walk_names_the_import_that_breaks_the_order(tmp_path, monkeypatch, source, expected):
    fake_pkg = tmp_path / "analysis" / "metrics"
    fake_pkg.mkdir(parents=True)
    for layer in LAYERS[1:-1]:
        (tmp_path / "analysis" / layer).mkdir(exist_ok=True)
    (tmp_path / "analysis" / "insights" / "spikes.py").write_text("")
    (tmp_path / "analysis" / "report" / "kit.py").write_text("")
    (tmp_path / "analysis" / "explore" / "widgets.py").write_text("")
    fake = fake_pkg / "fake.py"
    fake.write_text(source)
    monkeypatch.setattr(config, "PACKAGE_DIR", tmp_path / "analysis")
    monkeypatch.setattr(config, "PROJ_ROOT", tmp_path)
    found = violations([fake])
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith("analysis/metrics/fake.py:")


def test_the_walk_allows_earlier_and_same_folders(tmp_path, monkeypatch):
    (tmp_path / "analysis" / "report").mkdir(parents=True)
    (tmp_path / "analysis" / "metrics").mkdir()
    (tmp_path / "analysis" / "metrics" / "health.py").write_text("")
    (tmp_path / "analysis" / "report" / "kit.py").write_text("")
    fake = tmp_path / "analysis" / "report" / "sections.py"
    fake.write_text(
        "from analysis import errors, wording\nfrom analysis.metrics import health\nfrom analysis.report import kit\n"
    )
    monkeypatch.setattr(config, "PACKAGE_DIR", tmp_path / "analysis")
    monkeypatch.setattr(config, "PROJ_ROOT", tmp_path)
    assert violations([fake]) == []
