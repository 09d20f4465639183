"""The ``moment-webhooks`` command: settings from env and flags, and ``run`` under the lock."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import filelock
import pytest
from moment_webhooks.cli import main

GOOD_TOKEN = "cli-test-token_0123456789abcdef"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "moment_webhooks", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _job(tmp_path: Path, exit_code: int = 0) -> tuple[str, Path]:
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'a').write('ran\\n'); raise SystemExit({exit_code})"
    return shlex.join([sys.executable, "-c", code]), marker


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["serve"], {}, "MOMENT_WEBHOOKS_PATH_TOKEN"),
        (["serve", "--path-token", "short"], {}, "at least 24"),
        (["serve", "--path-token", GOOD_TOKEN + "/x"], {}, "URL-safe"),
        (
            ["serve"],
            {"MOMENT_WEBHOOKS_PATH_TOKEN": GOOD_TOKEN, "MOMENT_WEBHOOKS_PORT": "x"},
            "MOMENT_WEBHOOKS_PORT",
        ),
        (["serve", "--path-token", GOOD_TOKEN, "--tenant", "../etc"], {}, "--tenant"),
        (
            [
                "serve",
                "--path-token",
                GOOD_TOKEN,
                "--debounce-seconds",
                "5",
                "--max-wait-seconds",
                "1",
            ],
            {},
            "--max-wait-seconds",
        ),
    ],
)
def test_bad_settings_exit_2_with_a_message_naming_the_setting(
    args: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [n for n in os.environ if n.startswith("MOMENT_WEBHOOKS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert GOOD_TOKEN not in err, "a token is never echoed back"


def test_run_passes_the_jobs_exit_code_through(tmp_path: Path) -> None:
    command, marker = _job(tmp_path, exit_code=5)
    proc = _cli("run", "--command", command, "--lock-dir", str(tmp_path), "--tenant", "t1")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 5, out
    assert marker.read_text() == "ran\n"
    assert "exit_code=5" in out


def test_run_waits_for_a_run_holding_the_tenant_lock(tmp_path: Path) -> None:
    command, marker = _job(tmp_path)
    held = filelock.FileLock(str(tmp_path / "moment-to-fortnox.t1.lock"))
    held.acquire()
    try:
        proc = _cli("run", "--command", command, "--lock-dir", str(tmp_path), "--tenant", "t1")
        assert proc.stdout is not None
        # Its first line (however long the interpreter takes to start on a busy machine).
        first = proc.stdout.readline()
        assert "waiting for it" in first
        assert proc.poll() is None
        assert not marker.exists(), "the job must not start while another run holds the lock"
    finally:
        held.release()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert marker.read_text() == "ran\n"


def test_run_skip_if_busy_exits_0_without_running(tmp_path: Path) -> None:
    command, marker = _job(tmp_path)
    held = filelock.FileLock(str(tmp_path / "moment-to-fortnox.t1.lock"))
    with held:
        proc = _cli(
            "run",
            "--skip-if-busy",
            "--command",
            command,
            "--lock-dir",
            str(tmp_path),
            "--tenant",
            "t1",
        )
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "skipping" in out
    assert not marker.exists()


def test_other_tenants_do_not_share_a_lock(tmp_path: Path) -> None:
    command, marker = _job(tmp_path)
    with filelock.FileLock(str(tmp_path / "moment-to-fortnox.t1.lock")):
        proc = _cli("run", "--command", command, "--lock-dir", str(tmp_path), "--tenant", "t2")
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert marker.read_text() == "ran\n"
