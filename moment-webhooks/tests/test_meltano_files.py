"""Meltano's plugin config files: private under the launchers, and removed once no run can use
them (a concurrent run's files stay). Rules on synthetic processes, then real Meltano runs."""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from moment_webhooks import meltano_files
from moment_webhooks.meltano_files import LiveProcess, remove_stale_config_files
from moment_webhooks.runner import CommandRunner

MELTANO = str(Path(sys.executable).parent / "meltano")
NOW = time.time()


def _config(run_dir: Path, plugin: str, name: str, age_seconds: float) -> Path:
    path = run_dir / plugin / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"api_key": "very-secret-key"}')
    os.utime(path, (NOW - age_seconds, NOW - age_seconds))
    return path


def _meltano(*args: str, started_ago: float, sys_dir: Path | None) -> LiveProcess:
    argv = ("/srv/p/.venv/bin/python", "/srv/p/.venv/bin/meltano", *args)
    return LiveProcess(argv, NOW - started_ago, sys_dir)


@pytest.mark.parametrize(
    ("process", "kept"),
    [
        # No process at all: the run that wrote it is over.
        (None, False),
        # The plugin Meltano started names it, even after its meltano was killed.
        (LiveProcess(("tap-moment", "--config", "{path}"), NOW - 900, None), True),
        # A Meltano run of this project started before the file was written may have written it.
        ("run moment-to-fortnox", True),
        ("--environment prod invoke tap-moment:preflight --json", True),
        # ... but not a Meltano command for another plugin, nor one started after the file.
        ("invoke airflow scheduler", False),
        ("later: run moment-to-fortnox", False),
        # Nor a Meltano run with its own system directory (another project, a worker slot).
        ("elsewhere: run moment-to-fortnox", False),
        # A Meltano run whose system directory cannot be read: a doubt keeps the file.
        ("unknown: run moment-to-fortnox", True),
        # python -m meltano is Meltano too; a program merely named like it is not.
        (LiveProcess(("python", "-m", "meltano", "run", "x"), NOW - 900, "{sys}"), True),
        (LiveProcess(("/usr/bin/meltano-exporter",), NOW - 900, "{sys}"), False),
    ],
)
def test_a_config_file_stays_only_while_a_live_run_may_use_it(
    tmp_path: Path, process: LiveProcess | str | None, kept: bool
) -> None:
    sys_dir = tmp_path / ".meltano"
    run_dir = sys_dir / "run"
    path = _config(
        run_dir, "tap-moment", "tap.01a23bc3-041a-7b00-94e6-2ca60776fa00.config.json", 60
    )
    others = [_config(run_dir, "tap-moment", name, 3600) for name in ("state.json", "tap.x.conf")]
    processes: list[LiveProcess] = []
    if isinstance(process, str):
        where, _, command = process.rpartition(": ")
        started = {"later": 30.0}.get(where, 600.0)
        owner = {"elsewhere": tmp_path / "other" / ".meltano", "unknown": None}
        processes = [
            _meltano(*command.split(), started_ago=started, sys_dir=owner.get(where, sys_dir))
        ]
    elif process is not None:
        argv = tuple(arg.replace("{path}", str(path)) for arg in process.argv)
        processes = [LiveProcess(argv, process.started, sys_dir if process.sys_dir else None)]

    removed = remove_stale_config_files(run_dir, processes)

    assert path.exists() is kept
    assert removed == ([] if kept else [path])
    assert all(p.exists() for p in others)  # only config files are ever removed


def test_a_run_whose_tap_runs_on_another_file_did_not_write_this_one(tmp_path: Path) -> None:
    sys_dir = tmp_path / ".meltano"
    run_dir = sys_dir / "run"
    stale = _config(run_dir, "tap-moment", "tap.0001.config.json", 300)  # a killed run's
    current = _config(run_dir, "tap-moment", "tap.0002.config.json", 5)
    target = _config(run_dir, "target-fortnox", "target.0003.config.json", 5)
    job = LiveProcess(
        ("python", "/srv/p/.venv/bin/meltano", "run", "moment-to-fortnox"), NOW - 900, sys_dir, 40
    )
    tap = LiveProcess(("tap-moment", "--config", str(current)), NOW - 4, None, 41, 40)
    preparing = remove_stale_config_files(run_dir, [job])  # its tap not started yet: a doubt
    assert preparing == []
    assert remove_stale_config_files(run_dir, [job, tap]) == [stale]
    assert current.exists()
    assert target.exists()  # the job may still be preparing its target


def test_prepare_makes_the_run_folder_private_and_removes_what_no_live_process_uses(
    tmp_path: Path,
) -> None:
    (tmp_path / "meltano.yml").write_text("project_id: t\n")
    run_dir = tmp_path / ".meltano" / "run"
    stale = _config(run_dir, "target-fortnox", "target.0001.config.json", 3600)
    run_dir.chmod(0o755)

    (tmp_path / "sub").mkdir()
    assert meltano_files.prepare(tmp_path / "sub", {}) == [stale]  # the project above
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    # MELTANO_SYS_DIR_ROOT moves the run folder, as it moves Meltano's.
    moved = _config(tmp_path / "sys" / "run", "tap-moment", "tap.0002.config.json", 3600)
    assert meltano_files.prepare(tmp_path, {"MELTANO_SYS_DIR_ROOT": "sys"}) == [moved]


def test_the_launcher_runs_its_command_with_umask_077(tmp_path: Path) -> None:
    out = tmp_path / "umask.txt"
    code = "import os, sys; open(sys.argv[1], 'w').write(oct(os.umask(0)))"
    assert CommandRunner([sys.executable, "-c", code, str(out)], cwd=str(tmp_path)).run() == 0
    assert out.read_text() == "0o77"


# -- with Meltano itself ---------------------------------------------------------------------------

SLEEPY = """#!/bin/sh
# A Singer tap stand-in: says the mode of the config file Meltano gave it, then sleeps.
while [ $# -gt 0 ]; do
  if [ "$1" = "--config" ]; then stat -c 'config mode %a' "$2"; fi
  shift
done
sleep "${SLEEPY_SECONDS:-0}"
"""
PROJECT = """project_id: launcher-test
default_environment: dev
send_anonymous_usage_stats: false
environments:
- name: dev
plugins:
  extractors:
  - name: tap-sleepy
    namespace: tap_sleepy
    executable: ./sleepy.sh
    settings:
    - name: api_key
      kind: password
      sensitive: true
    config:
      api_key: very-secret-key
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Meltano project with one tap (a shell script, nothing to install)."""
    (tmp_path / "meltano.yml").write_text(PROJECT)
    script = tmp_path / "sleepy.sh"
    script.write_text(SLEEPY)
    script.chmod(0o755)
    return tmp_path


def _meltano_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTANO_")}
    return {**env, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def _configs(project: Path) -> list[Path]:
    return sorted((project / ".meltano" / "run" / "tap-sleepy").glob("*.config.json"))


def _start_sleeping_run(project: Path) -> subprocess.Popen[bytes]:
    """``meltano invoke tap-sleepy`` in its own process group, under the default umask 022."""
    return subprocess.Popen(
        [MELTANO, "invoke", "tap-sleepy"],
        cwd=project,
        env=_meltano_env(SLEEPY_SECONDS="120"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        umask=0o022,
    )


def _tap_config(run: subprocess.Popen[bytes]) -> Path:
    """The config file the tap of ``run`` (its process group) was started on, once it runs."""
    deadline = time.monotonic() + 120
    while True:
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            try:
                if "--config" in cmdline and os.getpgid(proc.pid) == run.pid:
                    return Path(cmdline[cmdline.index("--config") + 1])
            except ProcessLookupError:
                continue
        assert run.poll() is None, "the Meltano run ended before its tap started"
        assert time.monotonic() < deadline, "Meltano did not start the tap"
        time.sleep(0.2)


def _kill_group(run: subprocess.Popen[bytes]) -> None:
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()


@pytest.mark.e2e
def test_a_killed_runs_secrets_go_and_a_concurrent_runs_stay_with_meltano(project: Path) -> None:
    # Two runs at once, as the daily job beside a webhook run (the second starts once the first
    # has created Meltano's system database); then the first is killed with SIGKILL (meltano and
    # its tap): Meltano leaves its config file, secrets included, readable by all.
    killed = _start_sleeping_run(project)
    live: subprocess.Popen[bytes] | None = None
    try:
        leftover = _tap_config(killed)
        live = _start_sleeping_run(project)
        live_file = _tap_config(live)
        _kill_group(killed)
        assert _configs(project) == sorted([leftover, live_file])
        assert "very-secret-key" in leftover.read_text()
        assert stat.S_IMODE(leftover.stat().st_mode) == 0o644
        # The launcher's run: its tap sees a config file only its user can read; the killed
        # run's file is gone, the live run's stays, and its own is removed by Meltano.
        command = shlex.join([MELTANO, "invoke", "tap-sleepy"])
        launcher = [sys.executable, "-m", "moment_webhooks", "run", "--tenant", "t"]
        done = subprocess.run(
            [*launcher, "--command", command],
            cwd=project,
            env=_meltano_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "config mode 600" in done.stdout + done.stderr
        assert not leftover.exists()
        assert _configs(project) == [live_file]
        assert stat.S_IMODE((project / ".meltano" / "run").stat().st_mode) == 0o700

        # Once that run is over too, the next launch removes its file.
        _kill_group(live)
        assert meltano_files.prepare(project, _meltano_env()) == [live_file]
    finally:
        for run in (killed, live):
            if run is not None and run.poll() is None:
                _kill_group(run)
