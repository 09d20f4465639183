"""The receiver as a real process on a real port: a burst of 100 webhooks gives 1-2 job runs."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

TOKEN = "burst-test-token_0123456789abcdef"
READY = "moment-webhooks listening on"
# The job records its run, then holds until the test releases it (a file beside the runs file),
# so the test can tell that webhooks are answered while a run is in flight.
JOB_SCRIPT = """\
import pathlib, sys, time
runs = pathlib.Path(sys.argv[1])
with runs.open("a") as out:
    out.write(f"run {time.time()}\\n")
release = runs.with_suffix(".release")
deadline = time.monotonic() + 30
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


@dataclass
class Receiver:
    process: subprocess.Popen[str]
    url: str = ""
    output: list[str] = field(default_factory=list)

    def health(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/health", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)
    runs_file = tmp_path / "runs.txt"
    command = shlex.join([sys.executable, str(script), str(runs_file)])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moment_webhooks",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--path-token",
            TOKEN,
            "--command",
            command,
            "--tenant",
            "burst",
            "--debounce-seconds",
            "0.5",
            "--lock-dir",
            str(tmp_path / "locks"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    receiver = Receiver(process)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            receiver.output.append(line)
            if line.startswith(READY):
                receiver.url = line.split()[3]
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(15):
        process.kill()
        pytest.fail("receiver did not start:\n" + "".join(receiver.output))
    try:
        yield receiver, runs_file
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _post(url: str) -> int:
    body = {
        "event": "CREATE_NEW",
        "invoice": {"id": 1, "invoiceNumber": 1, "customer": {"id": 2, "customerNumber": "10001"}},
    }
    return requests.post(url, json=body, timeout=10).status_code


def test_burst_of_100_webhooks_runs_the_job_once_or_twice(
    receiver: tuple[Receiver, Path],
) -> None:
    server, runs_file = receiver
    hook = f"{server.url}/hooks/{TOKEN}/invoices"

    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(lambda _: _post(hook), range(100)))
    # Every answer came while the job could not finish (it waits for its release file): 202 first,
    # work after.
    assert answers == [202] * 100
    assert not runs_file.with_suffix(".release").exists()
    runs_file.with_suffix(".release").touch()

    wrong = requests.post(f"{server.url}/hooks/not-the-token/invoices", json={}, timeout=5)
    assert wrong.status_code == 404

    deadline = time.monotonic() + 15
    while True:
        health = server.health()
        if health["runs_total"] >= 1 and not health["in_flight"] and not health["queued"]:
            break
        assert time.monotonic() < deadline, f"runs did not finish: {health}"
        time.sleep(0.1)

    runs = runs_file.read_text().splitlines()
    assert 1 <= len(runs) <= 2, f"the burst ran the job {len(runs)} times"
    assert health["runs_total"] == len(runs)
    assert health["failures_total"] == 0
    assert health["last_run"]["exit_code"] == 0
    assert sum(1 for line in server.output if "run finished" in line) == len(runs)

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    log = "".join(server.output)
    assert TOKEN not in log, "the path token leaked into the receiver's log"
    assert "/hooks/*** " in log or "/hooks/***/" in log, "access log lines are expected, masked"
