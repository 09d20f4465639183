"""Row qualification and record building on hand-written supplier invoices (no server)."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

import pytest
from fortnox_client import parse_fortnox_timestamp
from sync_common.timezones import STOCKHOLM
from tap_fortnox_expenses import expenses
from tap_fortnox_expenses.expenses import (
    CANCELLED,
    FILTERED_ACCOUNT,
    FILTERED_PROJECT,
    NO_PROJECT,
    UNBOOKED,
    ExpenseFilters,
    count_reasons,
    invoice_skip_reason,
    is_cost_row,
    project_expense_rows,
    removal_record,
)


def content_key(
    project: str, account: int, cost_center: str, article: str, text: str, item: str, n: int
) -> str:
    """The README's row key, computed here on its own: ``r`` + 12 hex digits of the SHA-256 of
    the compact JSON list [project, account, cost center, article, text, item text, occurrence]."""
    material = json.dumps(
        [project, str(account), cost_center, article, text, item, n],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "r" + hashlib.sha256(material.encode()).hexdigest()[:12]


def supplier_invoice(**overrides: Any) -> dict[str, Any]:
    """A booked SEK invoice: two cost rows (one on a row project), input VAT 25 %, payables."""
    invoice: dict[str, Any] = {
        "GivenNumber": 17,
        "SupplierNumber": 42,
        "SupplierName": "Åkesson Bygg AB",
        "InvoiceNumber": "F-9001",
        "InvoiceDate": "2026-11-02",
        "Currency": "SEK",
        "Project": "P100",
        "Booked": True,
        "Cancelled": False,
        "VAT": "300",
        "Comments": "November",
        "SupplierInvoiceRows": [
            {"Account": 2440, "Code": "TOT", "Debit": 0, "Credit": 1500},
            {
                "Account": 4010,
                "Code": "",
                "Debit": 800,
                "Credit": 0,
                "TransactionInformation": "Virke",
            },
            {
                "Account": 5460,
                "Code": "",
                "Debit": 400,
                "Credit": 0,
                "Project": "P200",
                "AccountDescription": "Förbrukningsmaterial",
            },
            {"Account": 2640, "Code": "VAT", "Debit": 300, "Credit": 0},
        ],
    }
    invoice.update(overrides)
    return invoice


def test_cost_rows_become_records_with_contract_fields() -> None:
    modified = datetime(2026, 11, 3, 9, 30, tzinfo=STOCKHOLM)
    outcomes = list(project_expense_rows(supplier_invoice(), modified=modified))

    # TOT (index 0) and VAT (index 3) are not expenses; the cost rows keep their positions.
    assert [o.row_index for o in outcomes] == [1, 2]
    first, second = (o.record for o in outcomes)
    assert first == {
        "source_key": "fortnox-si-17-" + content_key("P100", 4010, "", "", "Virke", "", 0),
        "legacy_source_key": "fortnox-si-17-1",
        "given_number": 17,
        "row_index": 1,
        "project_number": "P100",  # header project
        "expense_date": "2026-11-02",
        "account_number": 4010,
        "description": "Virke",
        "amount": 800.0,
        "vat_amount": 200.0,  # 300 × 800 / 1200
        "currency": "SEK",
        "supplier_number": "42",
        "supplier_name": "Åkesson Bygg AB",
        "supplier_invoice_number": "F-9001",
        "invoice_modified": "2026-11-03T09:30:00+01:00",
        "booked": True,
        "removed": False,
    }
    assert second is not None
    assert second["project_number"] == "P200"  # the row's project wins over the header's
    assert second["description"] == "Förbrukningsmaterial"
    assert second["vat_amount"] == 100.0


def test_credit_rows_are_negative_and_vat_follows() -> None:
    invoice = supplier_invoice(
        VAT="-50",
        SupplierInvoiceRows=[
            {"Account": 2440, "Code": "TOT", "Debit": 250, "Credit": 0},
            {"Account": 4010, "Code": "", "Debit": 0, "Credit": 200},
            {"Account": 2640, "Code": "VAT", "Debit": 0, "Credit": 50},
        ],
    )
    (outcome,) = project_expense_rows(invoice)
    assert outcome.record is not None
    assert outcome.record["amount"] == -200.0
    assert outcome.record["vat_amount"] == -50.0


def test_foreign_currency_rows_use_invoice_currency_amounts() -> None:
    invoice = supplier_invoice(
        Currency="EUR",
        VAT=None,
        SupplierInvoiceRows=[
            {"Account": 4010, "Code": "", "Debit": 1150, "DebitCurrency": 100, "Credit": 0},
            {"Account": 2640, "Code": "VAT", "Debit": 287.5, "DebitCurrency": 25, "Credit": 0},
        ],
    )
    (outcome,) = project_expense_rows(invoice)
    assert outcome.record is not None
    assert (outcome.record["amount"], outcome.record["vat_amount"]) == (100.0, 25.0)
    assert outcome.record["currency"] == "EUR"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Booked": False}, UNBOOKED),
        ({"Cancelled": True}, CANCELLED),
        ({"Cancel": "true", "Booked": False}, CANCELLED),  # list spelling; cancelled wins
    ],
)
def test_invoice_level_reasons_count_every_cost_row(overrides: dict[str, Any], reason: str) -> None:
    invoice = supplier_invoice(**overrides)
    assert invoice_skip_reason(invoice) == reason
    outcomes = list(project_expense_rows(invoice))
    assert all(o.record is None for o in outcomes)
    assert count_reasons(outcomes) == {reason: 2}


def test_rows_without_any_project_are_counted() -> None:
    outcomes = list(project_expense_rows(supplier_invoice(Project="")))
    # Row 2 has its own project; row 1 has none and the header has none.
    assert count_reasons(outcomes) == {NO_PROJECT: 1}
    assert [o.record["project_number"] for o in outcomes if o.record] == ["P200"]


def test_account_and_project_filters() -> None:
    by_account = ExpenseFilters.from_config({"account_numbers": [5460]})
    outcomes = list(project_expense_rows(supplier_invoice(), by_account))
    assert count_reasons(outcomes) == {FILTERED_ACCOUNT: 1}
    assert [o.record["account_number"] for o in outcomes if o.record] == [5460]

    by_project = ExpenseFilters.from_config({"include_projects": ["P100"]})
    outcomes = list(project_expense_rows(supplier_invoice(), by_project))
    assert count_reasons(outcomes) == {FILTERED_PROJECT: 1}
    assert [o.record["project_number"] for o in outcomes if o.record] == ["P100"]

    # Meltano may pass project numbers as integers; Fortnox's are strings.
    by_int = ExpenseFilters.from_config({"include_projects": [200]})
    assert by_int.project_numbers == frozenset({"200"})

    # Empty lists mean "no filter" (Meltano passes [] for an unset array).
    assert ExpenseFilters.from_config({"account_numbers": [], "include_projects": []}) == (
        ExpenseFilters()
    )


def test_vat_is_null_when_the_invoice_gives_none() -> None:
    rows = [{"Account": 4010, "Code": "", "Debit": 100, "Credit": 0}]
    (outcome,) = project_expense_rows(supplier_invoice(VAT=None, SupplierInvoiceRows=rows))
    assert outcome.record is not None
    assert outcome.record["vat_amount"] is None


def test_fortnox_timestamps_are_stockholm_time() -> None:
    summer = parse_fortnox_timestamp("2026-07-01 12:00:00")
    winter = parse_fortnox_timestamp("2026-12-01 12:00")
    assert summer is not None
    assert winter is not None
    assert summer.isoformat() == "2026-07-01T12:00:00+02:00"
    assert winter.isoformat() == "2026-12-01T12:00:00+01:00"
    assert parse_fortnox_timestamp("") is None
    assert parse_fortnox_timestamp("not a time") is None


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # Fortnox publishes no approval state of a supplier invoice; an ``ApprovalState`` (a
        # voucher field) or an empty ``AuthorizerName`` on a booked invoice holds nothing back.
        {"ApprovalState": 2},
        {"ApprovalState": "1"},
        {"AuthorizerName": ""},
    ],
)
def test_booked_not_cancelled_is_the_whole_invoice_rule(extra: dict[str, Any]) -> None:
    invoice = supplier_invoice(**extra)
    assert invoice_skip_reason(invoice) is None
    assert [o.row_index for o in project_expense_rows(invoice) if o.record] == [1, 2]


# Every row Code of Fortnox's OpenAPI (SupplierInvoiceRow.Code enum) and no code, with the decision
# of docs/SUPPLIER-INVOICES.md: on a cost account (6991) and on a balance-sheet account (1790).
ROW_CODE_DECISIONS = {
    "": (True, True),  # the purchase itself
    "FRT": (True, True),  # freight
    "AFE": (True, True),  # administration fee
    "TOT": (False, False),  # payables
    "VAT": (False, False),  # input VAT
    "ROV": (False, False),  # round-off
    "CND": (False, False),  # reverse-charge construction VAT, debit
    "CNC": (False, False),  # reverse-charge construction VAT, credit
    "PRD": (False, False),  # EU goods VAT, debit
    "PRC": (False, False),  # EU goods VAT, credit
    "SRD": (False, False),  # EU services VAT, debit
    "SRC": (False, False),  # EU services VAT, credit
    "PRE": (True, False),  # no published meaning: by account
    "GWB": (True, False),
    "ACC": (True, False),
    "XYZ": (True, False),  # a code Fortnox may add later
}


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expenses, "_warned_codes", set(), raising=False)


@pytest.mark.usefixtures("fresh_warnings")
@pytest.mark.parametrize(("code", "decision"), sorted(ROW_CODE_DECISIONS.items()))
def test_every_row_code_has_a_decision(code: str, decision: tuple[bool, bool]) -> None:
    on_cost_account, on_balance_account = decision
    assert is_cost_row({"Account": 6991, "Code": code}) is on_cost_account
    assert is_cost_row({"Account": "1790", "Code": code.lower()}) is on_balance_account


@pytest.mark.usefixtures("fresh_warnings")
def test_a_code_without_published_meaning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=expenses.__name__):
        assert is_cost_row({"Account": 6991, "Code": "GWB"})
        assert not is_cost_row({"Account": 1790, "Code": "GWB"})
        assert not is_cost_row({"Account": "not a number", "Code": "ACC"})
        assert is_cost_row({"Account": 4010, "Code": "FRT"})  # known: no warning
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "'GWB'" in warnings[0]
    assert "'ACC'" in warnings[1]
    assert all("docs/SUPPLIER-INVOICES.md" in w for w in warnings)


@pytest.mark.usefixtures("fresh_warnings")
def test_only_cost_rows_become_expenses_and_share_the_vat() -> None:
    """Round-off and reverse-charge VAT rows are neither expenses nor part of the VAT share."""
    invoice = supplier_invoice(
        VAT="250",
        SupplierInvoiceRows=[
            {"Account": 2440, "Code": "TOT", "Debit": 0, "Credit": 1250},
            {"Account": 4010, "Code": "", "Debit": 800, "Credit": 0},
            {"Account": 4010, "Code": "FRT", "Debit": 150, "Credit": 0},
            {"Account": 6991, "Code": "AFE", "Debit": 50, "Credit": 0},
            {"Account": 2647, "Code": "CND", "Debit": 200, "Credit": 0},
            {"Account": 2617, "Code": "CNC", "Debit": 0, "Credit": 200},
            {"Account": 2645, "Code": "PRD", "Debit": 10, "Credit": 0},
            {"Account": 2614, "Code": "PRC", "Debit": 0, "Credit": 10},
            {"Account": 2645, "Code": "SRD", "Debit": 20, "Credit": 0},
            {"Account": 2614, "Code": "SRC", "Debit": 0, "Credit": 20},
            {"Account": 3740, "Code": "ROV", "Debit": 0.4, "Credit": 0},
            {"Account": 1790, "Code": "ACC", "Debit": 30, "Credit": 0},
            {"Account": 2641, "Code": "VAT", "Debit": 250, "Credit": 0},
        ],
    )
    outcomes = list(project_expense_rows(invoice))
    assert [o.row_index for o in outcomes] == [1, 2, 3]
    assert [(o.record or {}).get("amount") for o in outcomes] == [800.0, 150.0, 50.0]
    assert [(o.record or {}).get("vat_amount") for o in outcomes] == [200.0, 37.5, 12.5]


@pytest.mark.parametrize("state", [0, 3, None])
def test_approved_or_not_subject_to_approval_qualifies(state: int | None) -> None:
    assert invoice_skip_reason(supplier_invoice(ApprovalState=state)) is None


def _keys(invoice: dict[str, Any]) -> dict[int, str]:
    """Source key by the row's 0-based position."""
    return {o.row_index: o.source_key for o in project_expense_rows(invoice)}


def test_keys_do_not_depend_on_the_row_position() -> None:
    invoice = supplier_invoice()
    rows = invoice["SupplierInvoiceRows"]
    before = _keys(invoice)
    # Fortnox re-orders the rows: cost rows swapped, the VAT row moved first.
    reordered = supplier_invoice(SupplierInvoiceRows=[rows[3], rows[2], rows[0], rows[1]])
    after = _keys(reordered)

    assert sorted(before.values()) == sorted(after.values())
    assert after[1] == before[2]
    assert after[3] == before[1]
    records = {r.source_key: r.record for r in project_expense_rows(reordered)}
    assert records[before[1]] is not None
    assert records[before[1]]["amount"] == 800.0
    # The key of earlier versions follows the position; target-moment uses it to adopt.
    assert records[before[1]]["legacy_source_key"] == "fortnox-si-17-3"


def test_keys_survive_an_amount_change_and_a_row_added_or_removed() -> None:
    invoice = supplier_invoice()
    rows = invoice["SupplierInvoiceRows"]
    before = _keys(invoice)
    changed_amount = supplier_invoice(
        SupplierInvoiceRows=[rows[0], {**rows[1], "Debit": 950}, rows[2], rows[3]]
    )
    assert _keys(changed_amount) == before
    added = supplier_invoice(
        SupplierInvoiceRows=[
            rows[0],
            {"Account": 6110, "Debit": 50, "TransactionInformation": "Frakt"},
            *rows[1:],
        ]
    )
    assert set(before.values()) < set(_keys(added).values())
    removed = supplier_invoice(SupplierInvoiceRows=[rows[0], rows[2], rows[3]])
    assert set(_keys(removed).values()) == {before[2]}


def test_equal_rows_are_told_apart_by_their_occurrence() -> None:
    row = {"Account": 4010, "Debit": 100, "TransactionInformation": "Virke"}
    invoice = supplier_invoice(
        SupplierInvoiceRows=[row, {**row, "Debit": 200}, {**row, "CostCenter": "CC1"}]
    )
    keys = _keys(invoice)
    assert keys == {
        0: "fortnox-si-17-" + content_key("P100", 4010, "", "", "Virke", "", 0),
        1: "fortnox-si-17-" + content_key("P100", 4010, "", "", "Virke", "", 1),
        2: "fortnox-si-17-" + content_key("P100", 4010, "CC1", "", "Virke", "", 0),
    }
    # A row's project is part of its identity: moving it is a removal plus a new expense.
    moved = supplier_invoice(SupplierInvoiceRows=[{**row, "Project": "P300"}])
    assert _keys(moved)[0] == "fortnox-si-17-" + content_key("P300", 4010, "", "", "Virke", "", 0)


def test_a_removal_record_carries_only_its_key() -> None:
    assert removal_record(17, "r0123456789ab") == {
        "source_key": "fortnox-si-17-r0123456789ab",
        "given_number": 17,
        "removed": True,
    }
