"""Expenses that change after import, against the real Moment sandbox (issue 13, items 4 and 5).

A project created in Moment after its expense was skipped; a credit note; an amount changed; a row
removed (zeroed); rows re-ordered (content keys, nothing written); an expense imported under the
legacy position key adopted, never doubled; an invoiced expense never changed: a conflict, e-mailed.
The input is written per test as the tap sends it (its removal records and legacy keys included).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LATE_PROJECT = "TM-405"
PROJECTS = [
    {"project_number": "TM-100", "start_date": "2026-01-01"},
    {"project_number": LATE_PROJECT, "start_date": "2026-01-01"},
]
# As tap-fortnox-expenses declares it (--discover): a removal record carries its key only.
EXPENSE_SCHEMA = {
    "type": "object",
    "properties": {
        "source_key": {"type": "string"},
        "legacy_source_key": {"type": ["string", "null"]},
        "given_number": {"type": "integer"},
        "row_index": {"type": ["integer", "null"]},
        "project_number": {"type": ["string", "null"]},
        "expense_date": {"type": ["string", "null"], "format": "date"},
        "account_number": {"type": ["integer", "null"]},
        "description": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "vat_amount": {"type": ["number", "null"]},
        "currency": {"type": ["string", "null"]},
        "supplier_number": {"type": ["string", "null"]},
        "supplier_name": {"type": ["string", "null"]},
        "booked": {"type": ["boolean", "null"]},
        "removed": {"type": "boolean"},
    },
}


def expense(
    given: int, row_key: str, amount: float, *, project: str = "TM-100", **fields: Any
) -> dict[str, Any]:
    record = {
        "source_key": f"fortnox-si-{given}-{row_key}",
        "given_number": given,
        "row_index": 1,
        "project_number": project,
        "expense_date": "2026-11-02",
        "account_number": 5410,
        "description": f"Rad {row_key}",
        "amount": amount,
        "vat_amount": round(amount / 4, 2),
        "currency": "SEK",
        "supplier_number": "70",
        "supplier_name": "Kontorsbolaget i Göteborg AB",
        "booked": True,
        "removed": False,
    }
    record.update(fields)
    return record


def removal(given: int, row_key: str) -> dict[str, Any]:
    return {"source_key": f"fortnox-si-{given}-{row_key}", "given_number": given, "removed": True}


@pytest.fixture
def singer(tmp_path: Path) -> Any:
    """``singer(*expense_records)`` → a .singer file as the tap writes it (projects first)."""
    count = iter(range(1000))

    def write(*records: dict[str, Any]) -> str:
        messages: list[dict[str, Any]] = [
            {
                "type": "SCHEMA",
                "stream": "projects",
                "key_properties": ["project_number"],
                "schema": {
                    "type": "object",
                    "properties": {
                        "project_number": {"type": "string"},
                        "start_date": {"type": ["string", "null"], "format": "date"},
                    },
                },
            },
            *({"type": "RECORD", "stream": "projects", "record": p} for p in PROJECTS),
            {
                "type": "SCHEMA",
                "stream": "project_expenses",
                "key_properties": ["source_key"],
                "schema": EXPENSE_SCHEMA,
            },
            *({"type": "RECORD", "stream": "project_expenses", "record": r} for r in records),
            {"type": "STATE", "value": {"bookmarks": {"project_expenses": {"run": next(count)}}}},
        ]
        path = tmp_path / f"input-{next(count)}.singer"
        path.write_text("".join(json.dumps(m) + "\n" for m in messages), encoding="utf-8")
        return str(path)

    return write


def counts(replay: Any) -> dict[str, Any]:
    stream: dict[str, Any] = replay.summary()["streams"]["project_expenses"]
    return stream


@pytest.fixture
def late_project(moment: Any) -> Iterator[str]:
    """A project number Moment does not know yet; the test creates it. Removed afterwards."""
    assert not moment.call("GET", "projects", projectNumber=LATE_PROJECT)["content"]
    yield LATE_PROJECT
    found = moment.call("GET", "projects", projectNumber=LATE_PROJECT)["content"]
    for project in found:
        for item in moment.expenses(projectId=project["id"]):
            moment.call("DELETE", f"projectExpenses/{item['id']}")
        moment.call("DELETE", f"projects/{project['id']}")


def test_expense_waits_for_its_project_and_arrives_once_it_exists(
    moment: Any, replay: Any, singer: Any, late_project: str
) -> None:
    waiting = expense(9201, "rwait0000001", 480.0, project=late_project)
    replay(singer(waiting))

    assert waiting["source_key"] not in moment.test_expenses()
    first = counts(replay)
    assert first["skipped_reasons"] == {"project unknown in Moment": 1}
    assert first["failed"] == 0  # waiting is not a failure: no e-mail
    (letter,) = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert letter["record"]["source_key"] == waiting["source_key"]
    assert letter["error"]["message"].startswith("waiting: project TM-405")

    # The tap does not send the unchanged invoice again; a run without it still waits.
    replay(singer())
    assert counts(replay)["skipped_reasons"] == {"project unknown in Moment": 1}
    assert counts(replay)["failed"] == 0

    # Someone creates the project in Moment; the next run (still nothing new) imports it.
    customer = moment.call("GET", "customers", size=1)["content"][0]
    moment.call(
        "POST",
        "projects",
        {
            "projectNumber": late_project,
            "name": "Sent skapat",
            "customer": {"id": customer["id"]},
            "startDate": "2026-01-01",
        },
    )
    replay(singer())

    imported = moment.test_expenses()[waiting["source_key"]]
    assert imported["project"]["projectNumber"] == late_project
    assert float(imported["amount"]) == 480.0
    assert counts(replay)["created"] == 1
    assert replay.dead_letter_lines() == []


def test_credit_note_nets_the_project_cost_to_zero(moment: Any, replay: Any, singer: Any) -> None:
    replay(singer(expense(9202, "rcred0000001", 1000.0)))
    # The supplier credits it: a credit invoice of its own with the negative row.
    replay(singer(expense(9203, "rcred0000001", -1000.0, description="Kredit")))

    mine = {k: e for k, e in moment.test_expenses().items() if k.startswith("fortnox-si-920")}
    assert sorted(float(e["amount"]) for e in mine.values()) == [-1000.0, 1000.0]
    assert sum(float(e["amount"]) for e in mine.values()) == 0.0
    assert sum(float(e["vatAmount"]) for e in mine.values()) == 0.0
    # Re-sending both changes nothing and doubles nothing.
    seq = moment.last_request_seq()
    replay(
        singer(
            expense(9202, "rcred0000001", 1000.0),
            expense(9203, "rcred0000001", -1000.0, description="Kredit"),
        )
    )
    assert moment.writes_since(seq) == []


def test_removed_row_is_zeroed_in_place(moment: Any, replay: Any, singer: Any) -> None:
    kept, gone = expense(9204, "rkept0000001", 700.0), expense(9204, "rgone0000001", 300.0)
    replay(singer(kept, gone))
    ids = {k: e["id"] for k, e in moment.test_expenses().items()}
    seq = moment.last_request_seq()

    replay(singer({**kept, "row_index": 2}, removal(9204, "rgone0000001")))

    after = moment.test_expenses()
    assert {k: e["id"] for k, e in after.items()} == ids  # nothing created or deleted
    zeroed = after[gone["source_key"]]
    assert (float(zeroed["amount"]), float(zeroed["vatAmount"])) == (0.0, 0.0)
    assert float(after[kept["source_key"]]["amount"]) == 700.0
    path = f"/api/1.0/companies/demo/projectExpenses/{ids[gone['source_key']]}"
    assert moment.writes_since(seq) == [("PATCH", path)]
    assert (counts(replay)["updated"], counts(replay)["unchanged"]) == (1, 1)

    # Sent again (a re-read invoice): nothing more to do.
    seq = moment.last_request_seq()
    replay(singer(removal(9204, "rgone0000001")))
    assert moment.writes_since(seq) == []


def test_reordered_rows_write_nothing(moment: Any, replay: Any, singer: Any) -> None:
    first, second = expense(9205, "rorda0000001", 100.0), expense(9205, "rordb0000001", 200.0)
    replay(singer({**first, "row_index": 1}, {**second, "row_index": 2}))
    seq = moment.last_request_seq()

    replay(singer({**second, "row_index": 1}, {**first, "row_index": 2}))

    assert moment.writes_since(seq) == []
    assert counts(replay)["unchanged"] == 2


def test_expense_under_the_legacy_key_is_adopted_not_doubled(
    moment: Any, replay: Any, singer: Any
) -> None:
    # Imported by an earlier version: keyed by the row's position.
    replay(singer(expense(9206, "1", 640.0, legacy_source_key=None)))
    (old,) = [e for k, e in moment.test_expenses().items() if k.startswith("fortnox-si-9206-")]
    seq = moment.last_request_seq()

    new = expense(9206, "radopt000001", 650.0, legacy_source_key="fortnox-si-9206-1")
    replay(singer(new))

    mine = [e for k, e in moment.test_expenses().items() if k.startswith("fortnox-si-9206-")]
    assert [(e["id"], e["externalReference"], float(e["amount"])) for e in mine] == [
        (old["id"], new["source_key"], 650.0)
    ]
    assert [m for m, _ in moment.writes_since(seq)] == ["PATCH"]
    # From now on it is found under its new key.
    seq = moment.last_request_seq()
    replay(singer(new))
    assert moment.writes_since(seq) == []


def test_invoiced_expense_is_never_changed_changes_and_removals_are_emailed_conflicts(
    moment: Any, replay: Any, singer: Any, mail_inbox: Any
) -> None:
    changed, removed = expense(9207, "rinva0000001", 900.0), expense(9207, "rinvb0000001", 90.0)
    replay(singer(changed, removed))
    before = moment.test_expenses()
    for key in (changed["source_key"], removed["source_key"]):
        moment.set_invoiced(before[key]["id"])
    received, mail_settings = mail_inbox.messages, mail_inbox.settings()
    seq = moment.last_request_seq()

    # Fortnox corrects the invoice: one amount changed, the other row removed.
    replay(singer({**changed, "amount": 950.0}, removal(9207, "rinvb0000001")), **mail_settings)

    assert moment.writes_since(seq) == []
    after = moment.test_expenses()
    assert float(after[changed["source_key"]]["amount"]) == 900.0
    assert float(after[removed["source_key"]]["amount"]) == 90.0
    summary = replay.summary()
    assert counts(replay)["conflict"] == 2
    assert counts(replay)["failed"] == 0
    messages = {c["key"]: c["message"] for c in summary["conflicts"]}
    assert "already invoiced" in messages[changed["source_key"]]
    assert "amount" in messages[changed["source_key"]]
    assert "left Fortnox supplier invoice 9207" in messages[removed["source_key"]]
    (mail,) = received
    assert "2 conflict(s)" in mail["Subject"]
    body = mail.get_payload(decode=True).decode("utf-8")
    assert changed["source_key"] in body
    assert removed["source_key"] in body
    assert replay.dead_letter_lines() == []  # reported, not retried every run
