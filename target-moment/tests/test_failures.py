"""Failure handling against the real Moment sandbox with injected faults.

Per-record data errors go to dead letters and the run goes on; an ambiguous POST is resolved by a
lookup, never a blind second create; auth errors and exhausted retries fail the run before any
state is emitted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moment_client import MomentAuthError, MomentClient, MomentSettings, MomentTransientError
from sync_common import DeadLetters, RunSummary
from target_moment.expense_import import ExpenseImport, ImportSettings

DATA_FILES = Path(__file__).parent / "data_files"

EXPENSES_PATH = "projectExpenses"


def posts(moment: Any, seq: int) -> list[dict[str, Any]]:
    return [
        r
        for r in moment.requests_since(seq)
        if r["method"] == "POST" and r["path"].endswith(EXPENSES_PATH)
    ]


def test_answer_lost_after_commit_is_looked_up_not_created_twice(moment: Any, replay: Any) -> None:
    moment.sandbox.admin(
        "POST", "faults", {"kind": "drop_after_commit", "method": "POST", "path": EXPENSES_PATH}
    )
    seq = moment.last_request_seq()

    replay("create.singer")

    references = [str(e.get("externalReference")) for e in moment.expenses()]
    assert sorted(r for r in references if r.startswith("fortnox-si-9001")) == [
        "fortnox-si-9001-0",
        "fortnox-si-9001-1",
    ]
    assert len(posts(moment, seq)) == 2  # one per expense: the lost answer was not re-POSTed
    assert replay.summary()["streams"]["project_expenses"]["created"] == 2


def test_request_dropped_before_commit_is_created_after_a_lookup(moment: Any, replay: Any) -> None:
    moment.sandbox.admin(
        "POST", "faults", {"kind": "drop", "method": "POST", "path": EXPENSES_PATH}
    )
    seq = moment.last_request_seq()

    replay("create.singer")

    assert set(moment.test_expenses()) == {"fortnox-si-9001-0", "fortnox-si-9001-1"}
    sent = moment.requests_since(seq)
    dropped = [r for r in sent if r["method"] == "POST" and r["status"] == 0]
    assert len(dropped) == 1
    # Between the dropped POST and the next one, the target looked the expense up.
    # (The sandbox also logs the abandoned request itself, with status 499: not a new request.)
    after_drop = [r for r in sent if r["seq"] > dropped[0]["seq"] and r["status"] != 499]
    assert after_drop[0]["method"] == "GET"
    assert "externalReference=" in after_drop[0]["query"]


def test_data_errors_are_dead_lettered_and_the_run_goes_on(moment: Any, replay: Any) -> None:
    states = replay("invalid_records.singer")

    assert set(moment.test_expenses()) == {"fortnox-si-9006-2"}
    summary = replay.summary()
    failures = {f["key"]: f["message"] for f in summary["failures"]}
    assert set(failures) == {"fortnox-si-9006-0", "fortnox-si-9006-1"}
    assert "accountNumber" in failures["fortnox-si-9006-0"]
    assert "currency" in failures["fortnox-si-9006-1"]
    letters = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert [m["record"]["source_key"] for m in letters] == [
        "fortnox-si-9006-0",
        "fortnox-si-9006-1",
    ]
    assert all(m["error"]["message"] for m in letters)
    assert states  # state still advances: the failures are kept as dead letters

    # The next run retries them first; still wrong, they stay (one letter each, 2 attempts).
    replay("start_date_set.singer")
    letters = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert [m["error"]["attempts"] for m in letters] == [2, 2]


def test_wrong_api_key_fails_the_run_before_state(
    moment: Any, replay: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(MomentAuthError, match="api_key") as raised:
        replay("create.singer", api_key="not-the-key")

    assert "not-the-key" not in str(raised.value)
    assert "not-the-key" not in caplog.text
    assert replay.stdout == ""  # no STATE: the bookmark does not move past unwritten records
    assert moment.test_expenses() == {}
    (failure,) = replay.summary()["failures"]
    assert "no state emitted" in failure["message"]


def test_exhausted_retries_fail_the_run_before_state_and_the_rerun_recovers(
    moment: Any, replay: Any
) -> None:
    moment.sandbox.admin(
        "POST", "faults", {"kind": "status", "status": 503, "path": EXPENSES_PATH, "count": 50}
    )

    with pytest.raises(MomentTransientError):
        replay("create.singer")

    assert replay.stdout == ""
    assert replay.dead_letter_lines() == []  # not a data problem: the re-run re-sends it
    moment.sandbox.admin("DELETE", "faults")

    states = replay("create.singer")

    assert set(moment.test_expenses()) == {"fortnox-si-9001-0", "fortnox-si-9001-1"}
    assert states


class StaleLookupClient(MomentClient):
    """The real client, except that its first expense lookup misses (as a lookup racing another
    writer would), so the create meets Moment's 409 for the duplicate externalReference."""

    def __init__(self, settings: MomentSettings) -> None:
        super().__init__(settings)
        self.missed = False

    def find_one(self, entity: str, **filters: Any) -> dict[str, Any] | None:
        if entity == "projectExpenses" and not self.missed:
            self.missed = True
            return None
        return super().find_one(entity, **filters)


def test_duplicate_on_create_is_looked_up_and_updated_not_duplicated(
    moment: Any, target_config: dict[str, Any], tmp_path: Path
) -> None:
    project = moment.call("GET", "projects", projectNumber="TM-100")["content"][0]
    moment.call(
        "POST",
        "projectExpenses",
        {
            "projectId": project["id"],
            "expenseDate": "2026-11-02",
            "amount": 1.0,
            "accountNumber": "5410",
            "externalReference": "fortnox-si-9007-0",
        },
    )
    record = json.loads((DATA_FILES / "create.singer").read_text(encoding="utf-8").splitlines()[5])
    record = {**record["record"], "source_key": "fortnox-si-9007-0", "given_number": 9007}
    run = ExpenseImport(
        client=StaleLookupClient(MomentSettings.from_config(target_config)),
        summary=RunSummary(plugin="target-moment", results_dir=tmp_path),
        dead_letters=DeadLetters(tmp_path, "target-moment"),
        settings=ImportSettings(),
    )
    seq = moment.last_request_seq()

    outcome = run.import_expense(record, {}, ["source_key"])

    assert outcome == "updated"
    statuses = [(r["method"], r["status"]) for r in moment.requests_since(seq)]
    assert ("POST", 409) in statuses
    (expense,) = [e for k, e in moment.test_expenses().items() if k == "fortnox-si-9007-0"]
    assert float(expense["amount"]) == 1200.0


def test_a_run_with_failures_sends_one_email(moment: Any, replay: Any, mail_inbox: Any) -> None:
    received, mail_settings = mail_inbox.messages, mail_inbox.settings()
    replay("no_start_date.singer", **mail_settings)

    (message,) = received
    assert message["To"] == "ekonomi@example.se"
    body = message.get_payload(decode=True).decode("utf-8")
    assert "fortnox-si-9003-0" in body
    assert "Set a start date on project TM-300" in body
