"""Both jobs mail a failing tap, through `meltano run` and a real local SMTP server (aiosmtpd).

Meltano closes the target's input when the tap fails, and the target ends as after a short run.
Here the tap's failure reaches `notify_email` once (the tap's e-mail, naming the cause and the
fix; the target does not mail it again) and the target's run summary says the run stopped because
its tap failed. (That the same cause on the next runs mails nothing more is shown in-process, in
tap-moment/tests/test_alerts.py: a `meltano run` costs seconds.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

PLUGINS = ("TAP_MOMENT", "TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES", "TARGET_MOMENT")
REVOKED_KEY = "revoked-Moment-key-4Rt9"


@pytest.fixture
def mailing(pipelines: Any, mail_inbox: Any) -> Iterator[Any]:
    """Every plugin's notify/SMTP settings pointed at the test's SMTP server."""
    env = {}
    for plugin in PLUGINS:
        env |= {
            f"{plugin}_NOTIFY_EMAIL": "ekonomi@example.se",
            f"{plugin}_SMTP_HOST": mail_inbox.host,
            f"{plugin}_SMTP_PORT": str(mail_inbox.port),
            f"{plugin}_SMTP_STARTTLS": "false",
        }
    pipelines.extra_env.update(env)
    yield mail_inbox
    for name in env:
        pipelines.extra_env.pop(name)


def test_a_refused_moment_key_is_mailed_once_and_stops_the_target_run(
    pipelines: Any, mailing: Any
) -> None:
    result = pipelines.run("moment-to-fortnox", check=False, TAP_MOMENT_API_KEY=REVOKED_KEY)
    assert result.returncode != 0
    assert "Extractor failed" in result.stderr
    (subject,) = mailing.subjects()  # the tap's; target-fortnox knows it went out
    assert subject.startswith("[tap-moment] run ")
    assert "Moment refused the API key (401" in subject
    assert "Check that api_key is a valid, unexpired key" in mailing.bodies()[0]
    assert REVOKED_KEY not in mailing.bodies()[0]
    target = pipelines.last_summary("target-fortnox")
    assert target["stopped"].startswith("tap-moment failed, so this input ended early: ")
    assert target["totals"]["failed"] == 1


def test_fortnox_down_is_mailed_once_and_stops_target_moment(pipelines: Any, mailing: Any) -> None:
    pipelines.fortnox.admin("POST", "faults", {"kind": "status", "status": 503, "count": 50})
    try:
        result = pipelines.run(
            "fortnox-expenses-to-moment", check=False, TAP_FORTNOX_EXPENSES_MAX_TRIES="1"
        )
    finally:
        pipelines.fortnox.admin("DELETE", "faults")
    assert result.returncode != 0
    (subject,) = mailing.subjects()
    assert subject.startswith("[tap-fortnox-expenses] run ")
    assert "503" in subject
    target = pipelines.last_summary("target-moment")
    assert target["stopped"].startswith("tap-fortnox-expenses failed, so this input ended early")
