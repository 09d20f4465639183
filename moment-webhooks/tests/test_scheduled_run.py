"""``moment-webhooks run`` for the scheduler: retries of a failed run, and the alert e-mail.

The job is a small Python script (a counter file decides whether it fails); the e-mail goes to
a real local SMTP server (aiosmtpd, root ``smtp_server`` fixture). The notify/SMTP settings come
from a ``.env`` in the working directory, as cron runs the command from the project folder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import filelock
import pytest

SECRET = "client-secret-that-must-not-be-mailed"
FAILS_SAYING = "Fortnox answered invalid_grant: the refresh token was already used"


def _job(tmp_path: Path, fail_times: int, exit_code: int = 3) -> tuple[str, Path]:
    """A job that fails (printing an error and the client secret) its first ``fail_times`` runs."""
    marker = tmp_path / "runs.txt"
    code = (
        "import os, sys\n"
        f"marker = {str(marker)!r}\n"
        "runs = len(open(marker).read().splitlines()) if os.path.exists(marker) else 0\n"
        "open(marker, 'a').write('ran\\n')\n"
        f"if runs < {fail_times}:\n"
        f"    print({FAILS_SAYING!r}, 'secret', os.environ['TARGET_FORTNOX_CLIENT_SECRET'], "
        "file=sys.stderr)\n"
        f"    sys.exit({exit_code})\n"
        "print('job done')\n"
    )
    return shlex.join([sys.executable, "-c", code]), marker


def _body(mail: Any) -> str:
    return str(mail.get_payload(decode=True).decode()).replace("\r\n", "\n")


def _runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.fixture
def project(tmp_path: Path, smtp_server: Any) -> Path:
    """A project folder whose .env holds the notify/SMTP settings of target-fortnox."""
    smtp_server.inbox.clear()
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".env").write_text(
        "TARGET_FORTNOX_NOTIFY_EMAIL=ekonomi@example.se\n"
        "TARGET_FORTNOX_SMTP_HOST=127.0.0.1\n"
        f"TARGET_FORTNOX_SMTP_PORT={smtp_server.port}\n"
        "TARGET_FORTNOX_SMTP_STARTTLS=false\n"
        "TARGET_FORTNOX_SMTP_FROM=sync@example.se\n"
    )
    return folder


def _run(project: Path, command: str, *extra: str, wait: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_", "MOMENT_"))}
    env["TARGET_FORTNOX_CLIENT_SECRET"] = SECRET
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moment_webhooks",
            "run",
            "--tenant",
            "acme",
            "--command",
            command,
            "--lock-dir",
            str(project / ".locks"),
            *extra,
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    if not wait:
        return process
    out, _ = process.communicate(timeout=60)
    return process.returncode, out


def test_a_failed_run_is_tried_again_with_the_lock_free_meanwhile(
    project: Path, smtp_server: Any, tmp_path: Path
) -> None:
    command, marker = _job(tmp_path, fail_times=1)
    process = _run(project, command, "--retries", "2", "--retry-delay", "1.5", wait=False)
    deadline = time.monotonic() + 20
    while _runs(marker) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # Between the tries the tenant lock is free: a webhook run can take it, and the retry waits
    # for it (were the lock held through the delay, it would be free only after the second try).
    lock = filelock.FileLock(str(project / ".locks" / "moment-to-fortnox.acme.lock"))
    lock.acquire(timeout=30)
    try:
        assert _runs(marker) == 1
        time.sleep(0.3)
        assert _runs(marker) == 1
    finally:
        lock.release()
    out, _ = process.communicate(timeout=60)

    assert process.returncode == 0, out
    assert _runs(marker) == 2
    assert "failed with exit_code=3 (try 1 of 3); trying again in 1.5 s" in out
    assert "run finished with exit_code=0 after 2 tries" in out
    assert smtp_server.inbox.messages == [], "a run that worked on its retry alerts nobody"


def test_the_final_failure_mails_once_reminds_later_and_says_when_it_works_again(
    project: Path, smtp_server: Any, tmp_path: Path
) -> None:
    inbox = smtp_server.inbox
    command, marker = _job(tmp_path, fail_times=5)
    code, out = _run(project, command, "--retries", "1", "--retry-delay", "0")
    assert code == 3, out
    assert _runs(marker) == 2
    assert FAILS_SAYING in out  # the job's output still reaches the log

    (mail,) = inbox.messages
    assert inbox.recipients == [["ekonomi@example.se"]]
    assert mail["From"] == "sync@example.se"
    assert mail["Subject"].startswith("[")
    assert "scheduled run failed (exit code 3), tenant acme" in mail["Subject"]
    body = _body(mail)
    assert "failed: exit code 3 after 2 tries" in body
    assert "  1. " in body
    assert "  2. " in body
    assert FAILS_SAYING in body
    assert SECRET not in body
    assert "secret ***" in body
    assert f"cd {project} && {command}" in body
    assert "1 failed run in a row" in body

    # Still failing an instant later: no second e-mail (the 5-minute job would send 288 a day).
    code, out = _run(project, command)
    assert code == 3
    assert len(inbox.messages) == 1
    assert "is still failing (2 runs); the alert went out at" in out

    # Once the reminder interval has passed: one reminder.
    code, _ = _run(project, command, "--alert-every-hours", "0.000001")
    assert code == 3
    assert len(inbox.messages) == 2
    assert "still failing (exit code 3)" in inbox.messages[1]["Subject"]
    assert "3 failed runs in a row" in _body(inbox.messages[1])

    # It works again: one e-mail saying so, and the next failure is news again.
    code, _ = _run(project, command, "--retries", "2", "--retry-delay", "0")
    assert code == 0
    assert len(inbox.messages) == 3
    assert "works again, tenant acme" in inbox.messages[2]["Subject"]
    assert "after 3 failed runs since" in _body(inbox.messages[2])
    assert not any(SECRET in raw.decode() for raw in inbox.raw)


def test_without_notify_settings_the_log_says_what_to_set(tmp_path: Path) -> None:
    command, _ = _job(tmp_path, fail_times=1, exit_code=4)
    folder = tmp_path / "bare"
    folder.mkdir()
    code, out = _run(folder, command)
    assert code == 4
    assert "no alert e-mail is set up: set TARGET_FORTNOX_NOTIFY_EMAIL or" in out
