"""Replay tests: ``tests/data_files/*.singer`` through the target against the real Moment sandbox.

Each test asserts what Moment holds afterwards (GET projectExpenses) and, where it matters, what
the target sent (the sandbox's request log), plus the run summary and dead letters it wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA_FILES = Path(__file__).parent / "data_files"
CREATE_STATE = {"bookmarks": {"project_expenses": {"replication_key_value": "2026-11-02"}}}


def by_key(expenses: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    assert key in expenses, f"{key} not in Moment: {sorted(expenses)}"
    return expenses[key]


def test_create_writes_each_expense_with_its_fields(moment: Any, replay: Any) -> None:
    states = replay("create.singer")

    expenses = moment.test_expenses()
    assert set(expenses) == {"fortnox-si-9001-0", "fortnox-si-9001-1"}
    first = by_key(expenses, "fortnox-si-9001-0")
    assert first["project"]["projectNumber"] == "TM-100"
    assert first["expenseDate"] == "2026-11-02"
    assert float(first["amount"]) == 1200.0
    assert float(first["vatAmount"]) == 300.0
    assert first["currency"] == "SEK"
    assert str(first["accountNumber"]) == "5410"
    assert first["supplierName"] == "Kontorsbolaget i Göteborg AB"
    assert first["description"] == "Skärmar till projektrummet"
    assert first["billable"] is True
    second = by_key(expenses, "fortnox-si-9001-1")
    # No description in Fortnox: the supplier and its invoice number stand in.
    assert second["description"].startswith("Kontorsbolaget i Göteborg AB invoice F-9001")
    assert states == [CREATE_STATE]
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["failed"]) == (2, 0)


def test_rereading_the_same_window_writes_nothing(moment: Any, replay: Any) -> None:
    replay("create.singer")
    before = moment.test_expenses()
    seq = moment.last_request_seq()

    replay("create.singer")

    assert moment.writes_since(seq) == []
    assert moment.test_expenses() == before
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (0, 0, 2)


def test_changed_amount_updates_only_that_expense(moment: Any, replay: Any) -> None:
    replay("create.singer")
    ids = {k: e["id"] for k, e in moment.test_expenses().items()}
    seq = moment.last_request_seq()

    replay("changed_amount.singer")

    expenses = moment.test_expenses()
    changed = by_key(expenses, "fortnox-si-9001-0")
    assert (float(changed["amount"]), float(changed["vatAmount"])) == (1350.0, 337.5)
    assert {k: e["id"] for k, e in expenses.items()} == ids  # updated in place, none created
    path = f"/api/1.0/companies/demo/projectExpenses/{ids['fortnox-si-9001-0']}"
    assert list(moment.writes_since(seq)) in ([("PATCH", path)], [("PUT", path)])
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["updated"], counts["unchanged"]) == (1, 1)


def test_invoiced_expense_is_never_changed_and_reported_as_conflict(
    moment: Any, replay: Any
) -> None:
    replay("create.singer")
    invoiced = by_key(moment.test_expenses(), "fortnox-si-9001-0")
    moment.set_invoiced(invoiced["id"])
    seq = moment.last_request_seq()

    replay("changed_amount.singer")

    assert moment.writes_since(seq) == []
    assert float(by_key(moment.test_expenses(), "fortnox-si-9001-0")["amount"]) == 1200.0
    summary = replay.summary()
    assert summary["streams"]["project_expenses"]["conflict"] == 1
    (conflict,) = summary["conflicts"]
    assert conflict["key"] == "fortnox-si-9001-0"
    assert "invoiced" in conflict["message"]
    assert "amount" in conflict["message"]
    assert replay.dead_letter_lines() == []  # a conflict is reported, not retried


def test_unknown_project_is_skipped_and_counted(moment: Any, replay: Any) -> None:
    states = replay("unknown_project.singer")

    assert "fortnox-si-9002-0" not in moment.test_expenses()
    assert "fortnox-si-9001-0" in moment.test_expenses()  # the run went on
    counts = replay.summary()["streams"]["project_expenses"]
    assert counts["skipped_reasons"] == {"project unknown in Moment": 1}
    assert counts["failed"] == 0
    assert states  # a skip is Moment's own behaviour, not an error: state still advances


def test_project_without_start_date_is_reported_dead_lettered_then_retried(
    moment: Any, replay: Any
) -> None:
    states = replay("no_start_date.singer")

    assert "fortnox-si-9003-0" not in moment.test_expenses()
    summary = replay.summary()
    (failure,) = summary["failures"]
    assert failure["key"] == "fortnox-si-9003-0"
    assert "Set a start date on project TM-300 in Fortnox" in failure["message"]
    letters = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert [m["record"]["source_key"] for m in letters] == ["fortnox-si-9003-0"]
    assert states  # a per-record failure does not stop the run

    # Next run: the project now has a start date in Fortnox, no new expense comes; the dead
    # letter is retried first, imported and resolved.
    replay("start_date_set.singer")

    assert "fortnox-si-9003-0" in moment.test_expenses()
    assert replay.summary()["streams"]["project_expenses"]["created"] == 1
    assert replay.dead_letter_lines() == []


def test_price_model_not_billable_overrides_default_on_that_project_only(
    moment: Any, replay: Any
) -> None:
    replay("price_model.singer", default_billable=True)

    expenses = moment.test_expenses()
    assert by_key(expenses, "fortnox-si-9004-0")["billable"] is False  # TM-200: price model
    assert by_key(expenses, "fortnox-si-9004-1")["billable"] is True  # TM-100: default


def test_default_billable_false_applies_where_price_model_is_silent(
    moment: Any, replay: Any
) -> None:
    replay("price_model.singer", default_billable=False)

    expenses = moment.test_expenses()
    assert by_key(expenses, "fortnox-si-9004-1")["billable"] is False


def test_duplicate_keys_in_one_batch_create_once_then_update(moment: Any, replay: Any) -> None:
    seq = moment.last_request_seq()

    replay("duplicate_keys.singer")

    duplicates = [e for k, e in moment.test_expenses().items() if k == "fortnox-si-9005-0"]
    assert len(duplicates) == 1
    assert float(duplicates[0]["amount"]) == 120.0  # the last record wins
    methods = [method for method, _ in moment.writes_since(seq)]
    assert methods.count("POST") == 1
    assert methods.count("PATCH") + methods.count("PUT") == 1
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (1, 1, 1)


def test_dry_run_writes_the_plan_and_nothing_to_moment(
    moment: Any, replay: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    replay("create.singer")
    seq = moment.last_request_seq()

    replay("changed_amount.singer", dry_run=True)
    replay("unknown_project.singer", dry_run=True)

    assert moment.writes_since(seq) == []
    assert float(by_key(moment.test_expenses(), "fortnox-si-9001-0")["amount"]) == 1200.0
    plans = sorted((replay.results_dir / "plans").glob("*-target-moment.json"))
    assert len(plans) == 2
    changed = json.loads(plans[0].read_text(encoding="utf-8"))["plan"]
    assert changed[0]["action"] == "update"
    assert changed[0]["changes"]["amount"] == {"from": 1200.0, "to": 1350.0}
    assert changed[1]["action"] == "unchanged"
    unknown = json.loads(plans[1].read_text(encoding="utf-8"))["plan"]
    assert [e["action"] for e in unknown] == ["skip", "unchanged"]
    printed = capsys.readouterr().err
    assert "Dry run: nothing was written to Moment" in printed
    assert "amount: 1200.0 → 1350.0" in printed


def test_command_line_prints_only_state_on_stdout(
    moment: Any, target_config: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(target_config), encoding="utf-8")
    executable = Path(sys.executable).with_name("target-moment")

    done = subprocess.run(
        [str(executable), "--config", str(config), "--input", str(DATA_FILES / "create.singer")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert [json.loads(line) for line in done.stdout.splitlines()] == [CREATE_STATE]
    assert "target-moment run: project_expenses created=2" in done.stderr
    assert target_config["api_key"] not in done.stderr
    assert set(moment.test_expenses()) == {"fortnox-si-9001-0", "fortnox-si-9001-1"}


def test_values_that_break_the_taps_typed_schema_fail_alone(moment: Any, replay: Any) -> None:
    """Under typed SCHEMA messages (number amount, ``format: date`` dates) a value that breaks
    them fails its own record with the contract's error, on every stream: an expense (dead
    letter naming the field), a Fortnox project (counted failed), an ignored stream (nothing);
    the good expense is written and state emitted. singer-sdk alone stopped the run here."""
    states = replay("typed_bad_values.singer")

    expenses = moment.test_expenses()
    assert "fortnox-si-9101-0" in expenses
    assert "fortnox-si-9102-0" not in expenses
    assert "fortnox-si-9103-0" not in expenses
    assert states
    summary = replay.summary()
    assert summary["streams"]["project_expenses"]["failed"] == 2
    assert summary["streams"]["projects"]["failed"] == 1
    messages = {f["key"]: f["message"] for f in summary["failures"]}
    assert "start_date" in messages["TM-200"]
    assert "01/02/2026" in messages["TM-200"]
    letters = {
        m["record"]["source_key"]: m["error"]["message"]
        for m in replay.dead_letter_lines()
        if m["type"] == "RECORD"
    }
    assert sorted(letters) == ["fortnox-si-9102-0", "fortnox-si-9103-0"]
    assert "amount" in letters["fortnox-si-9102-0"]
    assert "1 200,00" in letters["fortnox-si-9102-0"]
    assert "expense_date" in letters["fortnox-si-9103-0"]
    assert "02/11/2026" in letters["fortnox-si-9103-0"]
    assert all("Fix the tap" in message for message in letters.values())
