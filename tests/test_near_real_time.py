"""Near-real-time push: a Moment edit reaches Fortnox within seconds, through webhooks.

Everything is a real process over real HTTP: the Moment sandbox sends its webhooks to the
`moment-webhooks` receiver, which runs `meltano run moment-to-fortnox` (the pipelines' environment:
their sandboxes, state backend and token store), which pushes the change to the Fortnox sandbox.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PATH_TOKEN = "near-real-time-test-token_0123456789"
READY = "moment-webhooks listening on"
LATENCY_GOAL_SECONDS = 10.0


@dataclass
class WebhookReceiver:
    process: subprocess.Popen[str]
    url: str = ""
    output: list[str] = field(default_factory=list)

    def health(self) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/health", timeout=5)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture(scope="module")
def receiver(pipelines: Any) -> Iterator[WebhookReceiver]:
    # First run: everything is created, so the webhook-triggered run below is incremental.
    pipelines.run("moment-to-fortnox")
    command = shlex.join([str(BIN / "meltano"), "run", "moment-to-fortnox"])
    process = subprocess.Popen(
        [
            str(BIN / "moment-webhooks"),
            "serve",
            "--port",
            "0",
            "--command",
            command,
            "--tenant",
            "e2e",
            "--debounce-seconds",
            "0.2",
            "--lock-dir",
            str(pipelines.workdir / "locks"),
        ],
        cwd=ROOT,
        env={**pipelines.env(), "MOMENT_WEBHOOKS_PATH_TOKEN": PATH_TOKEN, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    hooks = WebhookReceiver(process)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            hooks.output.append(line)
            if line.startswith(READY):
                hooks.url = line.split()[3]
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(20):
        process.kill()
        pytest.fail("moment-webhooks did not start:\n" + "".join(hooks.output))
    for webhook_type in ("customers", "projects", "invoices"):
        pipelines.moment.admin(
            "POST",
            "webhooks",
            {"type": webhook_type, "url": f"{hooks.url}/hooks/{PATH_TOKEN}/{webhook_type}"},
        )
    try:
        yield hooks
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def fortnox_session(pipelines: Any) -> requests.Session:
    """A session with an access token of its own (a fresh refresh token, not the job's)."""
    minted = pipelines.fortnox.admin("POST", "refresh-tokens", {})
    token = requests.post(
        f"{pipelines.fortnox.url}/oauth-v1/token",
        data={"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=10,
    )
    token.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


def test_moment_customer_edit_reaches_fortnox_within_ten_seconds(
    pipelines: Any, receiver: WebhookReceiver
) -> None:
    fortnox = fortnox_session(pipelines)
    customer_url = f"{pipelines.fortnox.url}/3/customers/1005"
    new_email = f"realtid-{os.getpid()}@exempel.se"
    assert fortnox.get(customer_url, timeout=10).json()["Customer"]["Email"] != new_email

    edited_at = time.monotonic()
    pipelines.moment.admin("PATCH", "customers/1005", {"email": new_email})
    arrived_after = None
    while time.monotonic() - edited_at < LATENCY_GOAL_SECONDS:
        if fortnox.get(customer_url, timeout=10).json()["Customer"]["Email"] == new_email:
            arrived_after = time.monotonic() - edited_at
            break
        time.sleep(0.2)
    log = "".join(receiver.output)[-4000:]
    assert arrived_after is not None, f"not in Fortnox after {LATENCY_GOAL_SECONDS}s:\n{log}"

    # The webhook-triggered run was an incremental one: one customer updated, nothing created.
    deadline = time.monotonic() + 20
    while receiver.health()["phase"] != "idle" and time.monotonic() < deadline:
        time.sleep(0.1)
    health = receiver.health()
    assert health["last_run"]["succeeded"], log
    assert health["last_run"]["triggers_by_entity"] == {"customers": 1}
    customers = pipelines.last_summary("target-fortnox")["streams"]["customers"]
    assert (customers["created"], customers["updated"]) == (0, 1)
    print(f"Moment edit → Fortnox in {arrived_after:.1f}s")
