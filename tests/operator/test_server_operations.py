"""Running the project on a server, as README "Going live" shows it, against the sandboxes:

- connecting Fortnox with ``meltano --environment prod invoke target-fortnox:authorize --paste``
  on a machine without a browser (the consent approved "elsewhere", the redirect address pasted
  into the command's stdin);
- a cron line, ``moment-webhooks run --command "meltano run …"``, whose ``meltano run`` fails
  (Moment answers 503): the failure is e-mailed (a real SMTP server) with the run's last output
  lines. Retries, the throttling of repeated alerts and the "works again" e-mail are covered,
  with a quick job in place of ``meltano run``, in ``moment-webhooks/tests/test_scheduled_run.py``.

One pair of fresh sandboxes for the module (``pipelines``); the tests run in order.
"""

from __future__ import annotations

import json
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TENANT = "1234567"


def approve_elsewhere(consent_url: str) -> str:
    """What a person does in a browser on another computer: approve, and copy the address the
    browser was sent to (which that computer cannot open)."""
    http = requests.Session()
    page = http.get(consent_url, timeout=10)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    consent = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert action, page.text
    assert consent, page.text
    answer = http.post(
        urljoin(page.url, action.group(1)),
        data={"consent": consent.group(1), "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (302, 303), answer.text
    return str(answer.headers["Location"])


def test_authorize_on_a_server_through_meltano_in_prod(pipelines: Any) -> None:
    env = pipelines.env(
        TARGET_FORTNOX_CLIENT_ID="sandbox-client", TARGET_FORTNOX_CLIENT_SECRET="sandbox-secret"
    )
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    process = subprocess.Popen(
        [
            str(BIN / "meltano"),
            "--environment",
            "prod",
            "invoke",
            "target-fortnox:authorize",
            "--paste",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        seen = []
        consent_url = None
        for line in process.stdout:
            seen.append(line)
            match = re.search(r"(http://\S+/oauth-v1/auth\?\S+)", line)
            consent_url = consent_url or (match.group(1) if match else None)
            if "paste it here" in line:
                break
        assert consent_url, "".join(seen)
        process.stdin.write(approve_elsewhere(consent_url) + "\n")
        process.stdin.flush()
        out = "".join(seen) + process.stdout.read()
        assert process.wait(60) == 0, out + (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert f"DatabaseNumber:   {TENANT}" in out
    store = pipelines.token_store
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text())["refresh_token_grant"]["tenant_id"] == TENANT


def test_cron_line_mails_when_meltano_run_fails(pipelines: Any, smtp_server: Any) -> None:
    inbox = smtp_server.inbox
    inbox.clear()
    env = pipelines.env(
        TAP_MOMENT_MAX_TRIES="1",  # a 503 from Moment ends the run at once
        TARGET_FORTNOX_NOTIFY_EMAIL="drift@example.se",
        TARGET_FORTNOX_SMTP_HOST="127.0.0.1",
        TARGET_FORTNOX_SMTP_PORT=str(smtp_server.port),
        TARGET_FORTNOX_SMTP_STARTTLS="false",
    )
    job = shlex.join([str(BIN / "meltano"), "run", "moment-to-fortnox"])
    # Moment is down: its first answer is a 503, so tap-moment and `meltano run` fail.
    pipelines.moment.admin("POST", "faults", {"kind": "status", "status": 503, "count": 1})
    failed = subprocess.run(
        [
            str(BIN / "moment-webhooks"),
            "run",
            "--tenant",
            "acme",
            "--command",
            job,
            "--lock-dir",
            str(pipelines.workdir / "locks"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert failed.returncode != 0, failed.stderr[-3000:]
    assert "run finished with exit_code=" in failed.stderr
    # The wrapper's alert, once; beside it target-fortnox mails the stopped run itself (the tap
    # has no notify address here, so its own mail reached nobody): README "Going live", step 11.
    wrapper = [
        (mail, to)
        for mail, to in zip(inbox.messages, inbox.recipients, strict=True)
        if "scheduled run failed" in str(mail["Subject"])
    ]
    assert len(wrapper) == 1, [str(m["Subject"]) for m in inbox.messages]
    (mail, to) = wrapper[0]
    assert to == ["drift@example.se"]
    assert "[moment-to-fortnox] scheduled run failed (exit code" in mail["Subject"]
    others = [str(m["Subject"]) for m in inbox.messages if m is not mail]
    assert all("stopped" in subject for subject in others), others
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "503" in body, body  # the tap's own error, from the last lines of the run's output
    assert f"&& {job}" in body
    for secret in ("sandbox-secret", "sandbox-key"):
        assert secret not in body
