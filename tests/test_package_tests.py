"""Each package's tests run on their own: `cd <package> && pytest tests`, with that package's `test`
extra installed and without the repository's root conftest.py. For every package folder:

- its pyproject.toml declares a licence and has a `test` extra;
- every module its tests import is the package itself, one of its dependencies or in its `test`
  extra (or a script of the repository's scripts/ folder, which tests load by path), and so is the
  package behind every shared fixture its tests use (sandbox.pytest_plugin, sync_common.testing);
- pytest, run in the package folder with the conftest cut-off there (`--confcutdir=.`) and
  `--setup-plan`, collects its tests and finds every fixture they ask for (no test runs, no server
  starts: a few seconds for all packages at once).

`make test-packages` runs each package's tests in full that way.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(path.parent.name for path in ROOT.glob("*/pyproject.toml"))
# The pytest plugins that give every test folder its shared fixtures, and what a package's tests
# need installed to have them.
PLUGINS = {
    "sandbox/sandbox/pytest_plugin.py": {"moment-fortnox-sandbox"},
    "sync-common/sync_common/testing/smtp.py": {"sync-common", "aiosmtpd"},
}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.split(r"[\s<>=~!\[;]", requirement, maxsplit=1)[0])


def pyproject(package: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / package / "pyproject.toml").read_text(encoding="utf-8"))


@cache
def module_distributions() -> dict[str, set[str]]:
    """Top-level module → distributions: the repo's packages (installed editable, so their
    metadata does not list their modules) from their pyproject, the rest from what is installed."""
    found = {
        module: {normalized(d) for d in dists} for module, dists in packages_distributions().items()
    }
    for package in PACKAGES:
        project = pyproject(package)
        for module in project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
            found[module] = {normalized(project["project"]["name"])}
    return found


def fixture_names(path: Path) -> set[str]:
    """The functions of a module decorated with ``pytest.fixture`` (with or without arguments)."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) == "pytest.fixture":
                    names.add(node.name)
    return names


def test_licence_and_test_extra_in_every_package() -> None:
    missing = [
        f"{package}: {what}"
        for package in PACKAGES
        for what, present in (
            ("no license", bool(pyproject(package)["project"].get("license"))),
            (
                "no test extra",
                "test" in pyproject(package)["project"].get("optional-dependencies", {}),
            ),
        )
        if not present
    ]
    assert not missing, missing


@pytest.mark.parametrize("package", PACKAGES)
def test_what_the_tests_import_is_declared(package: str) -> None:
    project = pyproject(package)["project"]
    declared = {normalized(project["name"])}
    declared |= {requirement_name(r) for r in project.get("dependencies", [])}
    declared |= {requirement_name(r) for r in project["optional-dependencies"]["test"]}
    scripts = {path.stem for path in (ROOT / "scripts").glob("*.py")}
    needed: dict[str, set[str]] = {}  # distribution (or module, if unknown) → test files needing it
    for path in sorted((ROOT / package / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in (name.split(".")[0] for name in modules):
                if module in sys.stdlib_module_names or module == "__future__" or module in scripts:
                    continue
                for dist in module_distributions().get(module, {f"(module {module})"}):
                    needed.setdefault(dist, set()).add(path.name)
        for plugin, dists in PLUGINS.items():
            names = fixture_names(ROOT / plugin)
            if any(re.search(rf"\b{name}\b", text) for name in names):
                for dist in dists:
                    needed.setdefault(dist, set()).add(path.name)
    undeclared = {dist: sorted(files) for dist, files in needed.items() if dist not in declared}
    assert not undeclared, f"{package}/pyproject.toml: add to the test extra: {undeclared}"


@pytest.fixture(scope="module")
def setup_plans() -> dict[str, subprocess.CompletedProcess[str]]:
    """`pytest tests --confcutdir=. --setup-plan` in every package folder, all at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    pytest_bin = Path(sys.executable).parent / "pytest"
    args = [
        str(pytest_bin),
        "tests",
        "--confcutdir=.",
        "--setup-plan",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    processes = {
        package: subprocess.Popen(
            args,
            cwd=ROOT / package,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for package in PACKAGES
    }
    plans = {}
    for package, process in processes.items():
        output, _ = process.communicate(timeout=300)
        plans[package] = subprocess.CompletedProcess(process.args, process.returncode, output)
    return plans


@pytest.mark.parametrize("package", PACKAGES)
def test_tests_find_their_fixtures_without_the_root_conftest(
    package: str, setup_plans: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    plan = setup_plans[package]
    problems = [
        line
        for line in plan.stdout.splitlines()
        if line.startswith(("E ", "ERROR")) or "fixture '" in line
    ]
    assert plan.returncode == 0, f"cd {package} && pytest tests --confcutdir=.:\n" + "\n".join(
        problems or plan.stdout.splitlines()[-30:]
    )
    assert re.search(r"\bSETUP\b", plan.stdout), f"{package}: no test collected"
