"""tap-moment's failure e-mail against the Moment sandbox and a real local SMTP server: a key
Moment refuses and Moment down each mail once, naming the cause and the fix, never the key; the
same cause on the next runs mails nothing more; a new cause mails again; and the tap's output
ends with a mark that tells the target how the run ended (sync_common.tap_run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moment_client import MomentAuthError, MomentTransientError

RunTap = Any  # the run_tap fixture's callable (conftest cannot be imported under importlib mode)
REVOKED_KEY = "revoked-Key-7Qp2xZ"


def failing_run(run_tap: RunTap, config: dict[str, Any], error: type[Exception]) -> dict[str, Any]:
    """Run the tap expecting ``error``; the tap_run mark of its last output message."""
    with pytest.raises(error) as raised:
        run_tap(config)
    last = raised.value.tap_output.messages[-1]  # type: ignore[attr-defined]
    assert last["type"] == "STATE"
    return dict(last["tap_run"])


def last_summary(results: Path) -> dict[str, Any]:
    runs = sorted((results / "runs").glob("*-tap-moment.json"))
    return dict(json.loads(runs[-1].read_text()))


def test_a_refused_key_then_moment_down_each_mail_once(
    sandbox_config: dict[str, Any],
    run_tap: RunTap,
    moment_sandbox: Any,
    mail_inbox: Any,
    tmp_path: Path,
) -> None:
    results = tmp_path / "output"
    config = {
        **sandbox_config,
        **mail_inbox.settings(),
        "results_dir": str(results),
        "max_tries": 1,
    }
    revoked = {**config, "api_key": REVOKED_KEY}

    # A revoked key: one e-mail, with the cause and the fix; the same on the next two runs: none.
    mark = failing_run(run_tap, revoked, MomentAuthError)
    assert (mark["plugin"], mark["event"], mark["alerted"]) == ("tap-moment", "failed", True)
    assert "Moment refused the API key (401" in mark["error"]
    for _ in range(2):
        failing_run(run_tap, revoked, MomentAuthError)
    assert len(mail_inbox.messages) == 1
    (subject,), (body,) = mail_inbox.subjects(), mail_inbox.bodies()
    assert subject.startswith("[tap-moment] run ")
    assert "stopped: MomentAuthError: Moment refused the API key (401" in subject
    assert "Why it stopped, and what to do: MomentAuthError: Moment refused the API key" in body
    assert "Check that api_key is a valid, unexpired key" in body  # the fix
    assert REVOKED_KEY not in body
    assert REVOKED_KEY not in subject
    summary = last_summary(results)
    assert summary["stopped"].startswith("MomentAuthError: Moment refused the API key")
    assert summary["totals"]["failed"] == 1

    # The key fixed, Moment down (503 after the retries): a new cause, one more e-mail.
    moment_sandbox.admin("POST", "faults", {"kind": "status", "status": 503, "count": 20})
    for _ in range(2):
        mark = failing_run(run_tap, config, MomentTransientError)
    assert len(mail_inbox.messages) == 2
    assert "Moment answered 503" in mail_inbox.subjects()[1]
    assert "Moment may be down or rate limiting: re-run later" in mail_inbox.bodies()[1]
    assert mark["alerted"] is True  # e-mailed on the run before: the target need not mail it

    # Moment back: the run completes, says so, and mails nothing; down again: mailed again.
    moment_sandbox.admin("DELETE", "faults")
    run = run_tap(config)
    assert run.messages[0]["tap_run"] == {"plugin": "tap-moment", "event": "started"}
    assert run.messages[-1]["tap_run"] == {"plugin": "tap-moment", "event": "completed"}
    assert run.messages[-1]["value"] == run.state  # the mark moves no bookmark
    assert last_summary(results)["stopped"] is None
    moment_sandbox.admin("POST", "faults", {"kind": "status", "status": 503, "count": 20})
    failing_run(run_tap, config, MomentTransientError)
    assert len(mail_inbox.messages) == 3


def test_without_notify_email_the_target_is_told_nobody_was_mailed(
    sandbox_config: dict[str, Any], run_tap: RunTap, tmp_path: Path
) -> None:
    config = {**sandbox_config, "api_key": REVOKED_KEY, "results_dir": str(tmp_path / "out")}
    mark = failing_run(run_tap, config, MomentAuthError)
    assert (mark["event"], mark["alerted"]) == ("failed", False)
    assert not (tmp_path / "out" / "alerts").exists()  # no memory kept without e-mail


def test_with_e_mail_on_a_memory_that_would_not_outlive_the_worker_is_refused(
    sandbox_config: dict[str, Any], run_tap: RunTap, mail_inbox: Any, tmp_path: Path
) -> None:
    config = {
        **sandbox_config,
        **mail_inbox.settings(),
        "results_dir": str(tmp_path / "out"),
        "run_store_path_persists": False,  # the worker's disk goes with the run
    }
    with pytest.raises(SystemExit, match="Set run_store_url to a PostgreSQL database"):
        run_tap(config)
    # Without e-mail there is no memory to keep: the tap runs.
    del config["notify_email"]
    assert run_tap(config).records["customers"]
