"""The installed plugins are shared by every run of every tenant: no run rebuilds them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from meltano.core.venv_service import fingerprint
from moment_fortnox_orchestrator.local import write_project
from moment_fortnox_orchestrator.settings import OrchestratorSettings
from moment_fortnox_orchestrator.tenants import Tenant
from moment_fortnox_orchestrator.worker import MELTANO, private_sys_dir, run_environment


def installed_plugin(repo: Path) -> Path:
    """A repo whose ``meltano install`` left one plugin: its venv, executable and fingerprint."""
    plugin = {
        "name": "tap-shared",
        "namespace": "tap_shared",
        "pip_url": "-e ${MELTANO_PROJECT_ROOT}/tap-shared",
        "executable": "tap-shared",
    }
    (repo / "meltano.yml").write_text(yaml.safe_dump({"plugins": {"extractors": [plugin]}}))
    venv = repo / ".meltano" / "extractors" / "tap-shared" / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    (venv / "bin" / "tap-shared").write_text("#!/bin/sh\necho '{}'\n")
    (venv / "bin" / "tap-shared").chmod(0o755)
    # What Meltano writes after installing `pip install -e <repo>/tap-shared`.
    (venv / ".meltano_plugin_fingerprint").write_text(fingerprint(["-e", f"{repo}/tap-shared"]))
    return venv


def listing(venv: Path) -> list[str]:
    return sorted(p.relative_to(venv).as_posix() for p in venv.rglob("*"))


def test_a_tenant_command_without_no_install_leaves_the_shared_plugins_alone(
    tmp_path: Path,
) -> None:
    """The local stack's project is not the repo the plugins were installed from; a Meltano
    command of a run that auto-installs (``meltano invoke`` without ``--no-install``, as an
    operator or the bench might run) must find them current, not clear their venv."""
    repo, project, secrets = (tmp_path / name for name in ("repo", "project", "secrets"))
    for folder in (repo, project, secrets):
        folder.mkdir()
    venv = installed_plugin(repo)
    before = listing(venv)
    path = write_project(project, repo)
    document = yaml.safe_load(path.read_text())
    document["environments"] = [{"name": "tenant-acme"}]
    path.write_text(yaml.safe_dump(document))
    (secrets / "acme.env").write_text("TAP_SHARED_API_KEY=k\n")
    settings = OrchestratorSettings(
        project_dir=project,
        meltano_database_uri=f"sqlite:///{tmp_path / 'meltano.db'}",
        store_url="postgresql://u:p@127.0.0.1/fortnox",
        secrets_dir=secrets,
        plugins_dir=repo / ".meltano",
        work_dir=tmp_path / "work",
    )
    work_dir = tmp_path / "work" / "run"
    work_dir.mkdir(parents=True)
    private_sys_dir(settings.plugins_dir, work_dir)
    env = run_environment(settings, Tenant("acme"), work_dir, "run-1")

    done = subprocess.run(
        [MELTANO, "--environment", "tenant-acme", "invoke", "--dump=config", "tap-shared"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert listing(venv) == before, done.stderr[-3000:]
    assert "Installing" not in done.stderr, done.stderr[-3000:]
