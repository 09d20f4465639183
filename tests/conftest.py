"""End-to-end fixtures: real `meltano run` processes against fresh sandboxes.

Meltano installs the plugins once per test session (uv backend, editable installs from this
repo). Each test module gets its own pair of sandboxes and its own state backend, token store and
results folder, so "run 1 creates everything" starts from nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
MELTANO = str(Path(sys.executable).parent / "meltano")


def _meltano_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_", "MELTANO_"))}
    env.update({"MELTANO_ENVIRONMENT": "dev", "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"})
    env.update(extra or {})
    return env


def private_sys_dir(workdir: Path) -> Path:
    """A Meltano system directory of the module's own, sharing the installed plugins.

    Meltano writes each plugin's config, catalog and logging files under `.meltano/run/<plugin>/`
    and `meltano install` empties those folders, so runs in other processes (a background run of
    the same plugin, another pytest session, `make demo`) could delete each other's files. Linking
    the installed plugin environments keeps the one install shared.
    """
    sys_dir = workdir / "meltano-sys"
    sys_dir.mkdir(exist_ok=True)
    for kind in ("extractors", "loaders"):
        link = sys_dir / kind
        if not link.exists():
            link.symlink_to(ROOT / ".meltano" / kind, target_is_directory=True)
    return sys_dir


@pytest.fixture(scope="session")
def meltano_installed() -> None:
    """`meltano install` once for the whole session (and across xdist workers)."""
    with FileLock(str(ROOT / ".meltano-install.lock")):
        result = subprocess.run(
            [MELTANO, "install"], cwd=ROOT, env=_meltano_env(), capture_output=True, text=True
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@dataclass
class Pipelines:
    """Both sandboxes plus a Meltano environment pointed at them; `run` executes `meltano run`."""

    fortnox: SandboxProcess
    moment: SandboxProcess
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def results_dir(self) -> Path:
        return self.workdir / "results"

    @property
    def token_store(self) -> Path:
        return self.workdir / "fortnox-token.json"

    @property
    def run_store(self) -> Path:
        """target-fortnox's run store by default: the folder beside the token store."""
        return self.workdir / "run-store"

    def dead_letters_file(self, plugin: str) -> Path:
        """Where ``plugin`` keeps its dead letters with the default settings (target-moment's run
        store defaults to its results_dir)."""
        folder = self.run_store if plugin == "target-fortnox" else self.results_dir
        return folder / "dead-letters" / f"{plugin}.singer"

    def env(self, **overrides: str) -> dict[str, str]:
        env: dict[str, str] = {
            "MELTANO_STATE_BACKEND_URI": (self.workdir / "state").as_uri(),
            "MELTANO_DATABASE_URI": f"sqlite:///{self.workdir / 'meltano.db'}",
        }
        for plugin in ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES"):
            env[f"{plugin}_API_URL"] = f"{self.fortnox.url}/3"
            env[f"{plugin}_TOKEN_URL"] = f"{self.fortnox.url}/oauth-v1/token"
            env[f"{plugin}_TOKEN_STORE_PATH"] = str(self.token_store)
            env[f"{plugin}_RESULTS_DIR"] = str(self.results_dir)
        for plugin in ("TAP_MOMENT", "TARGET_MOMENT"):
            env[f"{plugin}_API_URL"] = f"{self.moment.url}/api/1.0"
        env["TARGET_MOMENT_RESULTS_DIR"] = str(self.results_dir)
        env["TAP_MOMENT_RESULTS_DIR"] = str(self.results_dir)
        if not self.token_store.exists():
            minted = self.fortnox.admin("POST", "refresh-tokens", {})
            for plugin in ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES"):
                env[f"{plugin}_REFRESH_TOKEN"] = minted["refresh_token"]
        env.update(self.extra_env)
        env.update(overrides)
        return _meltano_env(env)

    def meltano(
        self, *args: str, timeout: float = 600, check: bool = True, **overrides: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [MELTANO, *args],
            cwd=ROOT,
            env=self.env(**overrides),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(f"meltano {' '.join(args)} failed:\n{result.stderr[-6000:]}")
        return result

    def run(self, *jobs: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.meltano("run", *jobs, **kwargs)

    def state(self, state_id: str) -> dict[str, Any]:
        out = self.meltano("state", "get", state_id, "--format", "json").stdout
        return json.loads(out) if out.strip() else {}

    def last_summary(self, plugin: str) -> dict[str, Any]:
        files = sorted((self.results_dir / "runs").glob(f"*{plugin}*.json"))
        assert files, f"no run summary of {plugin} under {self.results_dir}"
        return json.loads(files[-1].read_text())

    def fortnox_writes(self, since: int) -> list[dict[str, Any]]:
        requests = self.fortnox.admin("GET", f"requests?since={since}")["requests"]
        return [r for r in requests if r["method"] in ("POST", "PUT", "DELETE")]


@pytest.fixture(scope="module")
def pipelines(
    meltano_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipelines]:
    workdir = tmp_path_factory.mktemp("pipelines")
    with (
        SandboxProcess(
            "fortnox", workdir / "fortnox.db", seed=1, extra_args=["--max-requests-per-5s", "0"]
        ) as fortnox,
        SandboxProcess("moment", workdir / "moment.db", seed=1) as moment,
    ):
        yield Pipelines(
            fortnox=fortnox,
            moment=moment,
            workdir=workdir,
            extra_env={"MELTANO_SYS_DIR_ROOT": str(private_sys_dir(workdir))},
        )
    shutil.rmtree(workdir, ignore_errors=True)
