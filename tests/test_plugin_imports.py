"""No tap or target imports the other system's client: what reads both systems is an operator tool
(sync-operator), run by hand, never inside a sync (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = {"moment_client", "fortnox_client"}
# Each plugin package and the one API client it may use.
PLUGINS = {
    "tap-moment/tap_moment": "moment_client",
    "target-moment/target_moment": "moment_client",
    "tap-fortnox-expenses/tap_fortnox_expenses": "fortnox_client",
    "target-fortnox/target_fortnox": "fortnox_client",
}


def imported_modules(source: str) -> set[str]:
    """Return the top-level names of every module the source imports, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_scan_sees_imports_inside_functions_and_from_submodules() -> None:
    source = (
        "import os\ndef f():\n    from moment_client.changes import x\n    import fortnox_client\n"
    )
    assert imported_modules(source) == {"os", "moment_client", "fortnox_client"}


@pytest.mark.parametrize("package", sorted(PLUGINS))
def test_a_plugin_imports_only_its_own_systems_client(package: str) -> None:
    allowed = PLUGINS[package]
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in imported_modules(path.read_text(encoding="utf-8")) & (CLIENTS - {allowed})
    }
    assert not offending, f"{package} imports the other system's client: {sorted(offending)}"


@pytest.mark.parametrize("package", sorted(PLUGINS))
def test_a_plugin_does_not_depend_on_the_other_systems_client(package: str) -> None:
    folder = package.split("/")[0]
    project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
    other = {name.replace("_", "-") for name in CLIENTS - {PLUGINS[package]}}
    depends = {Requirement(dep).name for dep in project["project"]["dependencies"]}
    assert not depends & other, f"{folder} depends on {sorted(depends & other)}"


def test_sync_report_runs_with_sync_common_alone(tmp_path: Path) -> None:
    # target-moment's `report` command installs plain sync-operator: no client, no other plugin.
    blocked = ["fortnox_client", "moment_client", "target_fortnox", "tap_fortnox_expenses"]
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "from sync_operator.report import main\n"
        f"sys.exit(main(['--results-dir', {str(tmp_path)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "no runs" in result.stdout.lower(), result.stdout
