"""hub/ (the plugin definitions for `meltano add --from-ref`) and the release versions stay true."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from meltano.core.plugin.base import PluginDefinition, PluginType
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import plugin_definitions  # noqa: E402

PACKAGES = sorted(p.parent.name for p in ROOT.glob("*/pyproject.toml"))
SHARED = ("sync-common", "moment-client", "fortnox-client")


def pyproject(folder: str) -> dict[str, object]:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))


def test_hub_definitions_match_the_plugins() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plugin_definitions.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_has_the_release_version_and_pins_its_siblings_to_it() -> None:
    versions = {folder: plugin_definitions.version(folder) for folder in PACKAGES}
    assert len(set(versions.values())) == 1, versions
    release = versions["tap-moment"]
    assert f"## {release}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for folder in PACKAGES:
        for dependency in pyproject(folder)["project"]["dependencies"]:  # type: ignore[index]
            name = re.split(r"[\[=<>~!; ]", dependency, maxsplit=1)[0]
            if name in PACKAGES:
                assert dependency == f"{name}=={release}", (folder, dependency)


def test_every_package_declares_the_repository_licence() -> None:
    # LICENSE at the root is the repository's licence; each package's metadata names it (SPDX).
    words = (ROOT / "LICENSE").read_text(encoding="utf-8").split()
    assert words[:4] == ["Apache", "License", "Version", "2.0,"]
    projects = {folder: pyproject(folder)["project"] for folder in PACKAGES}
    licences = {folder: project["license"] for folder, project in projects.items()}  # type: ignore[index]
    assert licences == dict.fromkeys(PACKAGES, "Apache-2.0")


@pytest.mark.parametrize("plugin", plugin_definitions.PLUGINS)
def test_definition_is_what_meltano_add_from_ref_reads(plugin: str) -> None:
    path = plugin_definitions.path_of(plugin)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    kind = PluginType.EXTRACTORS if plugin.startswith("tap-") else PluginType.LOADERS
    assert path.parent.name == str(kind)
    # What `meltano add --from-ref` does with the file (meltano/cli/utils.py add_plugin).
    parsed = PluginDefinition.parse({"plugin_type": kind, **data})
    assert parsed.extras == {}, f"keys Meltano does not know: {sorted(parsed.extras)}"
    canonical: dict[str, Any] = parsed.canonical()  # type: ignore[assignment]
    assert canonical["name"] == plugin
    assert canonical["executable"] == plugin
    assert {s["name"] for s in data["settings"]} == set(
        plugin_definitions.about(plugin)["settings"]["properties"]
    )
    for setting in data["settings"]:
        assert {"name", "kind", "label", "description"} <= set(setting), setting


@pytest.mark.parametrize("plugin", plugin_definitions.PLUGINS)
def test_pip_url_installs_from_the_tagged_repository_alone(plugin: str) -> None:
    data = yaml.safe_load(plugin_definitions.path_of(plugin).read_text(encoding="utf-8"))
    release = plugin_definitions.version(plugin)
    source = f"@git+{plugin_definitions.REPO_URL}@v{release}#subdirectory="
    requirements = data["pip_url"].split()
    names = [re.split(r"[\[@]", r, maxsplit=1)[0] for r in requirements]
    assert names[-1] == plugin
    for requirement, name in zip(requirements, names, strict=True):
        assert source in requirement, requirement
        assert requirement.endswith(f"={name}"), requirement
        # PEP 508 as pip and uv read it (a name, optional extras, `@`, the URL; no spaces, since
        # Meltano splits pip_url on them).
        parsed = Requirement(requirement)
        assert parsed.name == name
        assert parsed.url == requirement.split("@", 1)[1]
    # Every package of this repository the plugin depends on comes along, from the same tag.
    needed = {
        re.split(r"[\[=<>~!; ]", d, maxsplit=1)[0]
        for d in pyproject(plugin)["project"]["dependencies"]  # type: ignore[index]
    } & set(PACKAGES)
    assert needed <= set(names), needed - set(names)
    assert set(names) - {plugin} <= set(SHARED)


def test_readme_adds_every_plugin_from_its_definition_at_the_release_tag() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Add to your own Meltano project") :]
    section = section[: section.index("\n## ", 1)]
    assert f"TAG=v{plugin_definitions.version('tap-moment')}\n" in section
    raw = plugin_definitions.REPO_URL.replace("github.com", "raw.githubusercontent.com")
    assert f"HUB={raw}/$TAG/hub\n" in section
    for plugin in plugin_definitions.PLUGINS:
        relative = plugin_definitions.path_of(plugin).relative_to(plugin_definitions.HUB)
        assert f"meltano add --from-ref $HUB/{relative.as_posix()} {plugin}\n" in section
    assert "meltano run tap-moment target-fortnox" in section
    assert "meltano run tap-fortnox-expenses target-moment" in section
