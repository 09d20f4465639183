"""Start a sandbox as a real child process and wait until it listens (for tests, demo, bench)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from sandbox.managed import ManagedServer
from sandbox.server import READY


class SandboxProcess(ManagedServer):
    """``with SandboxProcess("fortnox", db, seed=1) as fx: fx.url`` — stopped cleanly on exit."""

    def __init__(
        self,
        kind: str,
        db: str | Path,
        *,
        seed: int | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        extra_args: list[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.kind, self.db, self.seed, self.port, self.host = kind, Path(db), seed, port, host
        self.extra_args = extra_args or []
        self.startup_timeout = startup_timeout
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    def start(self) -> SandboxProcess:
        cmd = [sys.executable, "-m", "sandbox", self.kind, "--host", self.host]
        cmd += ["--port", str(self.port), "--db", str(self.db), *self.extra_args]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self._output.append(line)
                if line.startswith(READY):
                    self.url = line.split()[-1]
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"sandbox {self.kind} did not start:\n{''.join(self._output)[-4000:]}"
                )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def restart(self) -> SandboxProcess:
        """Stop and start again on the same database and port (to show persistence)."""
        self.port = int(self.url.rsplit(":", 1)[-1])
        self.stop()
        self.seed = None
        return self.start()

    @property
    def output(self) -> str:
        return "".join(self._output)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API (``/_sandbox/...``) and return the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_sandbox/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"null")
