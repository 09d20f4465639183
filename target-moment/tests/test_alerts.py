"""target-moment's e-mail against the Moment sandbox and a real local SMTP server: the same failing
record over three runs mails once; an input that ended early because the tap failed or vanished
(the tap's marks, sync_common.tap_run) is a stopped run, never a success, and is mailed by the
target only when the tap's own e-mail did not reach anyone."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from target_moment.target import TargetMoment

DATA_FILES = Path(__file__).parent / "data_files"
TAP = "tap-fortnox-expenses"
TAP_ERROR = "FortnoxAuthError: Fortnox refused the refresh token (invalid_grant). Authorize again."


def mark(event: str, **details: Any) -> str:
    return json.dumps(
        {"type": "STATE", "value": {}, "tap_run": {"plugin": TAP, "event": event, **details}}
    )


def run_target(config: dict[str, Any], *lines: str) -> list[dict[str, Any]]:
    """One target run on ``lines``; the messages it wrote to stdout."""
    out = io.StringIO()
    with redirect_stdout(out):
        TargetMoment(config=config).listen(io.StringIO("\n".join(lines) + "\n"))
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def summary(config: dict[str, Any]) -> dict[str, Any]:
    runs = sorted((Path(config["results_dir"]) / "runs").glob("*-target-moment.json"))
    return dict(json.loads(runs[-1].read_text(encoding="utf-8")))


def test_the_same_failing_record_over_three_runs_mails_once(
    moment: Any, target_config: dict[str, Any], mail_inbox: Any
) -> None:
    config = {**target_config, **mail_inbox.settings()}
    failing = (DATA_FILES / "no_start_date.singer").read_text(encoding="utf-8").splitlines()
    for _ in range(3):  # the letter is retried first on every run, and fails the same way
        run_target(config, *failing)
        assert summary(config)["totals"]["failed"] >= 1
    assert len(mail_inbox.messages) == 1
    assert "Set a start date on project TM-300" in mail_inbox.bodies()[0]


def test_an_input_cut_short_by_the_tap_is_a_stopped_run(
    moment: Any, target_config: dict[str, Any], mail_inbox: Any
) -> None:
    config = {**target_config, **mail_inbox.settings()}
    records = (DATA_FILES / "create.singer").read_text(encoding="utf-8").splitlines()

    # The tap started and then vanished (killed): nothing else can tell anyone, so the target does.
    out = run_target(config, mark("started"), *records)
    stopped = summary(config)["stopped"]
    assert stopped.startswith(f"the input ended early: {TAP} started but never said it ended")
    assert summary(config)["totals"]["failed"] == 1
    assert len(mail_inbox.messages) == 1
    assert "stopped: the input ended early" in mail_inbox.subjects()[0]
    assert all("tap_run" not in m for m in out)  # the marks never reach Meltano's state

    # The tap failed and its own e-mail went out: the summary says so, no second e-mail.
    run_target(config, mark("started"), *records, mark("failed", error=TAP_ERROR, alerted=True))
    assert summary(config)["stopped"].startswith(f"{TAP} failed, so this input ended early: ")
    assert TAP_ERROR in summary(config)["stopped"]
    assert len(mail_inbox.messages) == 1

    # A completed tap: an ordinary run (and the earlier stops are fixed).
    run_target(config, mark("started"), *records, mark("completed"))
    assert summary(config)["stopped"] is None
    assert summary(config)["totals"]["failed"] == 0

    # The tap failed and nobody heard (its mail off or refused): the target mails the cause.
    run_target(config, mark("started"), *records, mark("failed", error=TAP_ERROR, alerted=False))
    assert len(mail_inbox.messages) == 2
    assert f"stopped: {TAP} failed, so this input ended early" in mail_inbox.subjects()[1]
    assert "Authorize again." in mail_inbox.bodies()[1]
