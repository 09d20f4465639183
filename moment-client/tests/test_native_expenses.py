"""Recognising an expense Moment's own integration imported as the Fortnox cost row it is."""

from __future__ import annotations

from typing import Any

from moment_client.native_expenses import CostRow, NativeExpenses

ROW = {
    "projectId": 7,
    "expenseDate": "2026-11-02",
    "description": "Tågresa Göteborg",
    "supplierName": "SJ AB",
    "amount": 1000.0,
    "vatAmount": 60.0,
    "accountNumber": "5800",
}


def expense(expense_id: int, **fields: Any) -> dict[str, Any]:
    body = {key: value for key, value in ROW.items() if key != "projectId"}
    return {"id": expense_id, "project": {"id": 7, "projectNumber": "P1"}, **body, **fields}


def test_same_project_date_account_amount_and_text_is_the_row() -> None:
    row = CostRow.of(ROW)
    assert row.matches(expense(1))
    assert row.matches(expense(1, description="  tågresa   GÖTEBORG "))  # case, spacing
    assert row.matches(expense(1, description="SJ AB"))  # the supplier's name
    assert row.matches(expense(1, amount=1060.0))  # with VAT (inferred either way)
    assert row.matches(expense(1, externalReference=""))
    for other in (
        {"amount": 1000.01},
        {"expenseDate": "2026-11-03"},
        {"accountNumber": "5810"},
        {"description": "Hotell"},
        {"project": {"id": 8}},
        {"externalReference": "fortnox-si-1-r0"},  # ours: found by its reference instead
    ):
        assert not row.matches(expense(1, **other)), other


def test_each_expense_is_adopted_by_one_row_and_each_project_listed_once() -> None:
    listed: list[str] = []

    def load(project_id: str) -> list[dict[str, Any]]:
        listed.append(project_id)
        return [expense(12), expense(3), expense(5, externalReference="fortnox-si-1-r0")]

    natives = NativeExpenses(load)
    row = CostRow.of(ROW)
    assert [natives.take(row), natives.take(row), natives.take(row)] == [
        expense(3),
        expense(12),
        None,  # two expenses, three identical rows: the third row is imported
    ]
    assert listed == ["7"]
