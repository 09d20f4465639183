"""Expenses Moment's own Fortnox integration imported (no externalReference) are adopted, never
imported a second time (docs/SWITCH-OVER.md).

The "native" expenses are created through the Moment sandbox's public API without a reference,
as Moment's integration leaves them; the rows of ``create.singer`` are the same costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

PROJECTS_PATH = "/api/1.0/companies/demo/projectExpenses"


@pytest.fixture
def natives(moment: Any) -> Iterator[list[int]]:
    """Ids of the native expenses a test creates on TM-100; all deleted afterwards."""
    made: list[int] = []
    yield made
    for expense in moment.expenses():
        if expense["id"] in made:
            if expense.get("invoiced"):
                moment.set_invoiced(expense["id"], invoiced=False)
            moment.call("DELETE", f"projectExpenses/{expense['id']}")


def native(moment: Any, made: list[int], **fields: Any) -> dict[str, Any]:
    """An expense on TM-100 as Moment's own integration imports it: no externalReference."""
    (project,) = moment.call("GET", "projects", projectNumber="TM-100")["content"]
    body = {"projectId": project["id"], "expenseDate": "2026-11-02", "currency": "SEK", **fields}
    created: dict[str, Any] = moment.call("POST", "projectExpenses", body)
    made.append(created["id"])
    return created


def on_tm100(moment: Any) -> list[dict[str, Any]]:
    return [e for e in moment.expenses() if e["project"]["projectNumber"] == "TM-100"]


def test_expenses_moments_integration_imported_are_adopted_not_imported_again(
    moment: Any, replay: Any, natives: list[int]
) -> None:
    same = native(
        moment,
        natives,
        description="Skärmar till  projektrummet",  # spacing aside, the row's text
        amount=1200.0,
        vatAmount=300.0,
        accountNumber="5410",
        supplierName="Kontorsbolaget i Göteborg AB",
    )
    # Row 1 has no description: Moment's integration named the supplier, and (inferred
    # either way) stored the amount with VAT.
    gross = native(
        moment,
        natives,
        description="Kontorsbolaget i Göteborg AB",
        amount=563.13,
        vatAmount=112.63,
        accountNumber="4010",
    )
    other = native(
        moment,
        natives,
        description="Skärmar till projektrummet",
        amount=999.0,  # another cost: left alone
        accountNumber="5410",
    )
    before = len(on_tm100(moment))
    seq = moment.last_request_seq()

    replay("create.singer")

    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["updated"], counts["failed"]) == (0, 2, 0)
    assert len(on_tm100(moment)) == before  # nothing imported twice
    expenses = moment.test_expenses()
    assert expenses["fortnox-si-9001-0"]["id"] == same["id"]
    assert expenses["fortnox-si-9001-1"]["id"] == gross["id"]
    # Adopted expenses are then kept like ours: the amount without VAT, as target-moment writes.
    assert float(expenses["fortnox-si-9001-1"]["amount"]) == 450.5
    writes = moment.writes_since(seq)
    assert sorted(writes) == sorted(
        [("PATCH", f"{PROJECTS_PATH}/{same['id']}"), ("PATCH", f"{PROJECTS_PATH}/{gross['id']}")]
    )
    untouched = next(e for e in on_tm100(moment) if e["id"] == other["id"])
    assert untouched["externalReference"] is None

    replay("create.singer")  # the next day: found by reference, nothing to do
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["unchanged"]) == (0, 2)


def test_invoiced_expense_of_moments_integration_is_adopted_by_record_and_never_doubled(
    moment: Any, replay: Any, natives: list[int]
) -> None:
    invoiced = native(
        moment,
        natives,
        description="Skärmar till projektrummet",
        amount=1200.0,
        vatAmount=300.0,
        accountNumber="5410",
    )
    moment.set_invoiced(invoiced["id"])

    replay("create.singer")

    counts = replay.summary()["streams"]["project_expenses"]
    # Invoiced: Moment refuses any change, so it keeps no reference and is adopted as it is.
    assert (counts["created"], counts["unchanged"]) == (1, 1)
    assert "fortnox-si-9001-0" not in moment.test_expenses()

    # Fortnox corrects the row: compared against the adopted expense (a conflict, as for any
    # invoiced expense), not imported beside it.
    seq = moment.last_request_seq()
    replay("changed_amount.singer")

    summary = replay.summary()
    assert summary["streams"]["project_expenses"]["conflict"] == 1
    assert [c["key"] for c in summary["conflicts"]] == ["fortnox-si-9001-0"]
    assert [w for w in moment.writes_since(seq) if w[0] == "POST"] == []
    costs = [e for e in on_tm100(moment) if e["accountNumber"] == "5410"]
    assert [e["id"] for e in costs] == [invoiced["id"]]
