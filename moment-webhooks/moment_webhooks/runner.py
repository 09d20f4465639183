"""CommandRunner: runs the job command (``meltano run moment-to-fortnox``) once, to its exit code.

Owns the child process: no shell (the command is split with :mod:`shlex`), output inherited so
Meltano's own logs reach the receiver's log (or, with ``tail_lines``, copied line by line to
stderr keeping the last lines for an alert), a timeout so a hung run cannot hold the tenant
lock for ever, an environment without the receiver's path token, and umask 077, so the config
files Meltano writes with the plugins' secrets are readable by this user only; before and after
each run, config files of Meltano runs that are over are removed (:mod:`.meltano_files`).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO

from moment_webhooks import meltano_files

logger = logging.getLogger(__name__)

# Shell conventions, so that log lines read the same as a failing cron job's.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
# The path token authenticates webhooks only; the job must not see it.
_PRIVATE_ENV = ("MOMENT_WEBHOOKS_PATH_TOKEN",)
_TERMINATE_GRACE_SECONDS = 10.0


class CommandRunner:
    """Run ``command`` as a child process; :meth:`run` blocks and returns its exit code."""

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout_seconds: float | None = None,
        cwd: str | None = None,
        tail_lines: int = 0,
    ) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise ValueError("the job command is empty")
        base = dict(os.environ if env is None else env)
        for name in _PRIVATE_ENV:
            base.pop(name, None)
        self.env = base
        self.timeout_seconds = timeout_seconds
        self.cwd = cwd
        # The last lines of the command's output (stdout and stderr merged), kept when
        # tail_lines > 0: what an alert about a failed run shows.
        self.tail: deque[str] = deque(maxlen=max(tail_lines, 0))
        self._process: subprocess.Popen[bytes] | None = None
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"CommandRunner({shlex.join(self.argv)!r})"

    def run(self) -> int:
        """Start the command, wait for it (up to the timeout) and return its exit code."""
        with meltano_files.launching(self.cwd or os.getcwd(), self.env):
            return self._run()

    def _run(self) -> int:
        capture = self.tail.maxlen != 0
        self.tail.clear()
        try:
            process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.STDOUT if capture else None,
                umask=meltano_files.PRIVATE_UMASK,
            )
        except FileNotFoundError:
            logger.error(
                "job command not found: %r; check --command and that it is on PATH "
                "(e.g. run the receiver from the Meltano project's virtualenv)",
                self.argv[0],
            )
            return EXIT_NOT_FOUND
        except PermissionError:
            logger.error("job command %r is not executable; check its file mode", self.argv[0])
            return EXIT_NOT_EXECUTABLE
        with self._guard:
            self._process = process
        copier = None
        if process.stdout is not None:
            copier = threading.Thread(target=self._copy_output, args=(process.stdout,), daemon=True)
            copier.start()
        try:
            return process.wait(timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            logger.error(
                "job command %r ran longer than %.0f s; stopping it (raise --run-timeout-seconds "
                "if the job legitimately takes longer)",
                self.argv[0],
                self.timeout_seconds,
            )
            return self._stop(process)
        finally:
            with self._guard:
                self._process = None
            if copier is not None:
                copier.join(timeout=_TERMINATE_GRACE_SECONDS)

    def _copy_output(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            sys.stderr.write(line)
            sys.stderr.flush()
            self.tail.append(line.rstrip("\r\n"))

    def terminate(self) -> None:
        """Stop a running command (used on receiver shutdown); no-op when nothing runs."""
        with self._guard:
            process = self._process
        if process is not None:
            self._stop(process)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> int:
        process.terminate()
        try:
            return process.wait(timeout=_TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
