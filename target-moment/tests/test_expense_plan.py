"""Unit tests of the mapping, billable and diff logic (no server)."""

from __future__ import annotations

import datetime as dt

import pytest
from target_moment.contract import ContractError, check_record
from target_moment.expense_plan import (
    ExpenseAction,
    decide,
    decide_removal,
    desired_expense,
    expense_changes,
    money,
    resolve_billable,
)

RECORD = {
    "source_key": "fortnox-si-101-0",
    "given_number": 101,
    "row_index": 0,
    "project_number": "P100",
    "expense_date": "2026-11-02",
    "account_number": 5410,
    "description": "Förbrukningsinventarier",
    "amount": 1234.5,
    "vat_amount": 308.625,
    "currency": "SEK",
    "supplier_number": "7",
    "supplier_name": "Åhléns AB",
    "supplier_invoice_number": "F-88",
    "invoice_modified": None,
    "booked": True,
}
PROJECT = {"id": 42, "projectNumber": "P100", "priceModel": {"expensesBillable": None}}


def moment_copy(desired: dict, **overrides: object) -> dict:
    """How Moment reads an expense back: project nested, id and read-only fields added."""
    existing = {k: v for k, v in desired.items() if k != "projectId"}
    existing.update(
        id=9, project={"id": desired["projectId"], "projectNumber": "P100"}, invoiced=False
    )
    existing.update(overrides)
    return existing


@pytest.mark.parametrize(
    ("price_model", "default", "expected"),
    [
        ({"expensesBillable": True}, False, True),
        ({"expensesBillable": False}, True, False),
        ({"expensesBillable": None}, True, True),
        ({"expensesBillable": None}, False, False),
        (None, False, False),
        ({}, True, True),
    ],
)
def test_billable_follows_price_model_else_default(
    price_model: dict | None, default: bool, expected: bool
) -> None:
    assert resolve_billable({"priceModel": price_model}, default) is expected


def test_desired_expense_maps_every_field() -> None:
    body = desired_expense(RECORD, PROJECT, default_billable=True)
    assert body == {
        "projectId": 42,
        "expenseDate": "2026-11-02",
        "description": "Förbrukningsinventarier",
        "supplierName": "Åhléns AB",
        "amount": 1234.5,
        "vatAmount": 308.63,  # rounded half up to öre
        "currency": "SEK",
        "accountNumber": "5410",
        "billable": True,
        "externalReference": "fortnox-si-101-0",
    }


def test_desired_expense_accepts_parsed_dates_and_fills_missing_description() -> None:
    record = {**RECORD, "expense_date": dt.date(2026, 11, 2), "description": None}
    body = desired_expense(record, PROJECT, default_billable=False)
    assert body["expenseDate"] == "2026-11-02"
    assert body["description"] == "Åhléns AB invoice F-88 (Fortnox supplier invoice 101)"
    assert body["billable"] is False


def test_desired_expense_trims_text_and_sends_no_vat_as_zero() -> None:
    record = {**RECORD, "description": "  Hyra lokal \n", "supplier_name": " ", "vat_amount": None}
    body = desired_expense(record, PROJECT, default_billable=True)
    assert body["description"] == "Hyra lokal"
    assert body["supplierName"] is None
    assert body["vatAmount"] == 0.0


def test_absent_expense_is_created() -> None:
    assert decide(desired_expense(RECORD, PROJECT, True), None).action is ExpenseAction.CREATE


def test_equal_expense_is_unchanged_despite_representation_differences() -> None:
    desired = desired_expense(RECORD, PROJECT, True)
    # Moment may send amounts as strings, account numbers as numbers, dates as date-times.
    existing = moment_copy(
        desired, amount="1234.50", accountNumber=5410, expenseDate="2026-11-02T00:00:00Z"
    )
    assert decide(desired, existing).action is ExpenseAction.UNCHANGED


def test_billable_is_not_compared_so_a_manual_choice_in_moment_survives() -> None:
    desired = desired_expense(RECORD, PROJECT, True)
    assert decide(desired, moment_copy(desired, billable=False)).action is ExpenseAction.UNCHANGED


def test_changed_amount_is_an_update_with_only_that_field() -> None:
    desired = desired_expense(RECORD, PROJECT, True)
    existing = moment_copy(desired, amount=1000.0)
    decision = decide(desired, existing)
    assert decision.action is ExpenseAction.UPDATE
    assert decision.patch_body() == {"amount": 1234.5}
    assert decision.changes["amount"].to_json() == {"from": 1000.0, "to": 1234.5}


def test_moved_project_is_an_update_of_project_id() -> None:
    desired = desired_expense(RECORD, {**PROJECT, "id": 43}, True)
    existing = moment_copy(desired_expense(RECORD, PROJECT, True))
    assert expense_changes(desired, existing).keys() == {"projectId"}


def test_invoiced_and_different_is_a_conflict_never_an_update() -> None:
    desired = desired_expense(RECORD, PROJECT, True)
    decision = decide(desired, moment_copy(desired, invoiced=True, amount=1.0))
    assert decision.action is ExpenseAction.CONFLICT
    assert set(decision.changes) == {"amount"}


def test_invoiced_and_equal_is_unchanged() -> None:
    desired = desired_expense(RECORD, PROJECT, True)
    assert decide(desired, moment_copy(desired, invoiced=True)).action is ExpenseAction.UNCHANGED


def test_legacy_expense_is_rekeyed_unless_invoiced() -> None:
    desired = desired_expense(RECORD, PROJECT, True)
    legacy = moment_copy(desired, externalReference="fortnox-si-101-1")
    decision = decide(desired, legacy)
    assert decision.action is ExpenseAction.UPDATE
    assert decision.patch_body() == {"externalReference": "fortnox-si-101-0"}
    # Moment locks an invoiced expense: equal but for the key, it is left as it is.
    locked = {**legacy, "invoiced": True}
    assert decide(desired, locked).action is ExpenseAction.UNCHANGED
    assert decide(desired, {**locked, "amount": 1.0}).action is ExpenseAction.CONFLICT


def test_a_removed_row_zeroes_its_expense_unless_invoiced() -> None:
    existing = moment_copy(desired_expense(RECORD, PROJECT, True))
    decision = decide_removal(existing)
    assert decision.action is ExpenseAction.UPDATE
    assert decision.patch_body() == {"amount": 0.0, "vatAmount": 0.0}
    assert decide_removal({**existing, "invoiced": True}).action is ExpenseAction.CONFLICT
    zeroed = {**existing, "amount": 0, "vatAmount": 0.0}
    assert decide_removal(zeroed).action is ExpenseAction.UNCHANGED
    assert decide_removal(None).action is ExpenseAction.UNCHANGED


def test_a_removal_needs_only_its_key_and_invoice_but_a_row_needs_its_fields() -> None:
    check_record(
        "project_expenses", {"source_key": "fortnox-si-1-r0", "given_number": 1, "removed": True}
    )
    with pytest.raises(ContractError, match="amount"):
        check_record("project_expenses", {"source_key": "fortnox-si-1-r0", "removed": False})


def test_money_rounds_half_up_and_rejects_text() -> None:
    assert money(0.125) == 0.13
    assert money("10") == 10.0
    assert money(None) is None
    with pytest.raises(ValueError, match="not an amount"):
        money("ten")


def test_contract_names_every_offending_field() -> None:
    bad = {**RECORD, "amount": "12", "currency": None}
    del bad["expense_date"]
    with pytest.raises(ContractError) as raised:
        check_record("project_expenses", bad)
    message = str(raised.value)
    assert "'fortnox-si-101-0'" in message
    assert "amount: '12' is not of type 'number'" in message
    assert "currency: None is not of type 'string'" in message
    assert "'expense_date' is a required property" in message


def test_contract_accepts_the_agreed_record() -> None:
    check_record("project_expenses", RECORD)
    check_record("projects", {"project_number": "P1", "start_date": None})
