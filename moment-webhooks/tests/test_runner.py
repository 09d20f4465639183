"""CommandRunner: exit codes, missing command, timeout, and no path token in the job's env."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import pytest
from moment_webhooks.runner import EXIT_NOT_FOUND, CommandRunner


def _python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def test_returns_the_commands_exit_code() -> None:
    assert CommandRunner(_python("raise SystemExit(0)")).run() == 0
    assert CommandRunner(_python("raise SystemExit(4)")).run() == 4


def test_missing_command_is_exit_127_with_an_actionable_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="moment_webhooks"):
        code = CommandRunner("no-such-meltano-binary run moment-to-fortnox").run()
    assert code == EXIT_NOT_FOUND
    assert "no-such-meltano-binary" in caplog.text
    assert "PATH" in caplog.text


def test_a_hung_command_is_stopped_at_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    runner = CommandRunner(_python("import time; time.sleep(30)"), timeout_seconds=0.3)
    with caplog.at_level(logging.ERROR, logger="moment_webhooks"):
        code = runner.run()
    assert code != 0
    assert "--run-timeout-seconds" in caplog.text


def test_job_does_not_inherit_the_path_token(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    code = (
        "import os, sys; open(sys.argv[1], 'w').write("
        "os.environ.get('MOMENT_WEBHOOKS_PATH_TOKEN', '-') + ' ' + os.environ['KEEP'])"
    )
    env = {"MOMENT_WEBHOOKS_PATH_TOKEN": "s3cret-token", "KEEP": "kept", "PATH": "/usr/bin"}
    runner = CommandRunner([sys.executable, "-c", code, str(out)], env=env)
    assert runner.run() == 0
    assert out.read_text() == "- kept"
    assert "s3cret" not in repr(runner)
