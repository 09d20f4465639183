"""README "Add to your own Meltano project", end to end, in a brand-new Meltano project.

The project lives in a temporary folder outside this repository (`meltano init`). The four plugins
are added with `meltano add --from-ref` from the definitions in hub/, with `pip_url` pointing at
wheels built from this checkout instead of the git tag (the one change from the documented
commands), configured with `meltano config ... set` and `.env`, and both jobs run against fresh
sandboxes. The project also picks a loader of its own (target-jsonl from PyPI) for tap-moment.
Plugin environments come from uv's cache, so this takes well under a minute once warm.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sandbox.launcher import SandboxProcess

from tests.conftest import MELTANO, _meltano_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import plugin_definitions  # noqa: E402

pytestmark = pytest.mark.e2e

UV = str(Path(sys.executable).parent / "uv")
GIT_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9_.-]+)(?P<extras>\[[^\]]*\])?@git\+\S+#subdirectory=(?P<folder>\S+)"
)
# The loader this project chose for a copy of Moment's data: a JSON-lines file per stream.
TARGET_JSONL = {
    "name": "target-jsonl",
    "namespace": "target_jsonl",
    "variant": "andyh1203",
    "pip_url": "target-jsonl==0.1.4",
    "executable": "target-jsonl",
    "settings": [
        {"name": "destination_path", "kind": "string"},
        {"name": "do_timestamp_file", "kind": "boolean"},
    ],
}


def local_pip_url(pip_url: str, wheelhouse: Path) -> str:
    """The definition's git requirements, each pointed at the wheel built from this checkout."""
    requirements = []
    for token in pip_url.split():
        match = GIT_REQUIREMENT.fullmatch(token)
        assert match, f"pip_url entry {token!r} is not a git requirement of this repository"
        version = plugin_definitions.version(match["folder"])
        wheel = wheelhouse / f"{match['name'].replace('-', '_')}-{version}-py3-none-any.whl"
        assert wheel.is_file(), f"{wheel.name} was not built"
        requirements.append(f"{match['name']}{match['extras'] or ''}@{wheel.as_uri()}")
    return " ".join(requirements)


@dataclass
class Project:
    path: Path
    fortnox: SandboxProcess
    moment: SandboxProcess

    def meltano(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [MELTANO, *args],
            cwd=self.path,
            env=_meltano_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            pytest.fail(f"meltano {' '.join(args)} failed:\n{result.stderr[-6000:]}")
        return result

    def summary(self, plugin: str) -> dict[str, object]:
        files = sorted((self.path / "output" / "runs").glob(f"*{plugin}*.json"))
        assert files, f"no run summary of {plugin} in the project's output/runs"
        return json.loads(files[-1].read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    work = tmp_path_factory.mktemp("own-meltano-project")
    assert not work.is_relative_to(ROOT)
    wheelhouse = work / "wheelhouse"
    folders = {
        m["folder"]
        for plugin in plugin_definitions.PLUGINS
        for m in GIT_REQUIREMENT.finditer(
            plugin_definitions.definition(plugin, "x", None)["pip_url"]
        )
    }
    for folder in sorted(
        folders
    ):  # sdist, then the wheel built from the sdist (like python -m build)
        subprocess.run(
            [UV, "build", "--quiet", "-o", str(wheelhouse), str(ROOT / folder)], check=True
        )

    subprocess.run(
        [MELTANO, "init", "project", "--no-usage-stats"],
        cwd=work,
        env=_meltano_env(),
        check=True,
        capture_output=True,
    )
    refs = work / "refs"
    refs.mkdir()
    with (
        SandboxProcess(
            "fortnox", work / "fortnox.db", seed=1, extra_args=["--max-requests-per-5s", "0"]
        ) as fortnox,
        SandboxProcess("moment", work / "moment.db", seed=1) as moment,
    ):
        proj = Project(work / "project", fortnox, moment)
        # README: meltano add --from-ref <hub definition> <plugin>, one per plugin.
        for plugin in plugin_definitions.PLUGINS:
            definition = yaml.safe_load(plugin_definitions.path_of(plugin).read_text())
            definition["pip_url"] = local_pip_url(definition["pip_url"], wheelhouse)
            ref = refs / f"{plugin}.yml"
            ref.write_text(yaml.safe_dump(definition, sort_keys=False))
            proj.meltano("add", "--from-ref", str(ref), plugin, "--no-install")
        ref = refs / "target-jsonl.yml"
        ref.write_text(yaml.safe_dump(TARGET_JSONL, sort_keys=False))
        proj.meltano("add", "--from-ref", str(ref), "target-jsonl", "--no-install")
        proj.meltano("install")  # the five plugin environments, in parallel

        # README: the endpoints with `meltano config`, the credentials in .env.
        for plugin in ("tap-moment", "target-moment"):
            proj.meltano("config", "set", plugin, "api_url", f"{moment.url}/api/1.0")
        for plugin in ("target-fortnox", "tap-fortnox-expenses"):
            proj.meltano("config", "set", plugin, "api_url", f"{fortnox.url}/3")
            proj.meltano("config", "set", plugin, "token_url", f"{fortnox.url}/oauth-v1/token")
        proj.meltano("config", "set", "target-jsonl", "destination_path", "output")
        refresh_token = fortnox.admin("POST", "refresh-tokens", {})["refresh_token"]
        env_lines = []
        for prefix in ("TAP_MOMENT", "TARGET_MOMENT"):
            env_lines += [f"{prefix}_COMPANY_CODE=demo", f"{prefix}_API_KEY=sandbox-key"]
        for prefix in ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES"):
            env_lines += [
                f"{prefix}_CLIENT_ID=sandbox-client",
                f"{prefix}_CLIENT_SECRET=sandbox-secret",
                f"{prefix}_REFRESH_TOKEN={refresh_token}",
            ]
        (proj.path / ".env").write_text("\n".join(env_lines) + "\n")
        yield proj


def test_the_plugins_come_from_the_definitions_not_this_repository(project: Project) -> None:
    config = yaml.safe_load((project.path / "meltano.yml").read_text())
    plugins = config["plugins"]["extractors"] + config["plugins"]["loaders"]
    added = {p["name"]: p for p in plugins}
    assert set(added) == {*plugin_definitions.PLUGINS, "target-jsonl"}
    for plugin in plugin_definitions.PLUGINS:
        assert "-e " not in added[plugin]["pip_url"]
        assert "MELTANO_PROJECT_ROOT" not in added[plugin]["pip_url"]
        assert (
            added[plugin]["settings"]
            == plugin_definitions.definition(plugin, "x", None)["settings"]
        )
        # The plugin runs from the project's own environment, not this checkout's editable install.
        exe = project.path / ".meltano" / plugin_type(plugin) / plugin / "venv" / "bin" / plugin
        origin = subprocess.run(
            [
                str(exe.parent / "python"),
                "-c",
                f"import {added[plugin]['namespace']} as m; print(m.__file__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert not Path(origin.strip()).is_relative_to(ROOT), origin


def plugin_type(plugin: str) -> str:
    return "extractors" if plugin.startswith("tap-") else "loaders"


def test_moment_to_fortnox_and_expenses_to_moment_run(project: Project) -> None:
    project.meltano("run", "tap-moment", "target-fortnox")
    assert project.summary("target-fortnox")["streams"]["customers"]["created"] == 30  # type: ignore[index]
    project.meltano("run", "tap-fortnox-expenses", "target-moment")
    expenses = project.summary("target-moment")["streams"]["project_expenses"]  # type: ignore[index]
    assert expenses["created"] > 0


def test_tap_moment_feeds_a_loader_of_the_projects_choosing(project: Project) -> None:
    project.meltano("run", "tap-moment", "target-jsonl")
    # target-jsonl writes one file per stream, named with the run's timestamp.
    (file,) = (project.path / "output").glob("customers*.jsonl")
    lines = file.read_text().splitlines()
    customers = [json.loads(line) for line in lines]
    assert len(customers) == 30
    assert all(c["name"] for c in customers)
