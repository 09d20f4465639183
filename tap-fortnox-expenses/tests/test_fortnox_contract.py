"""Every request tap-fortnox-expenses sends uses only query parameters Fortnox documents for that
path (docs/FORTNOX-CONTRACT.md): a parameter Fortnox does not know may be ignored silently, and
then the tap would read far more (or other) invoices than it meant to."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess
from tap_fortnox_expenses.expenses import UnreadableAmount, project_expense_rows

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import fortnox_contract  # noqa: E402


@pytest.mark.usefixtures("seeded")
def test_every_list_request_uses_documented_parameters(
    run_tap: Any, fortnox_sandbox: SandboxProcess
) -> None:
    mark = fortnox_sandbox.admin("GET", "requests")["last"]
    first = run_tap()
    assert first.error is None
    second = run_tap(state=first.final_state)
    assert second.error is None

    log = fortnox_sandbox.admin("GET", f"requests?since={mark}")["requests"]
    lists = [e for e in log if e["method"] == "GET" and e["path"].count("/") == 2]
    assert {e["path"] for e in lists} >= {"/3/supplierinvoices", "/3/projects"}
    problems = sorted(
        {p for e in lists for p in fortnox_contract.query_problems(e["path"][3:], e["query"])}
    )
    assert problems == []


def _invoice(vat: object) -> dict[str, Any]:
    """A booked supplier invoice as a single GET answers it: header amounts are strings."""
    return {
        "GivenNumber": "41",
        "Booked": True,
        "Cancelled": False,
        "InvoiceDate": "2026-11-02",
        "Project": "5001",
        "Total": "1 250,00",
        "VAT": vat,
        "SupplierInvoiceRows": [
            {"Account": 2440, "Code": "TOT", "Debit": 0, "Credit": 1250, "Quantity": 0},
            {"Account": 5410, "Code": "", "Debit": 1000, "Credit": 0, "Quantity": 1},
        ],
    }


@pytest.mark.parametrize(
    ("vat", "expected"),
    [("250.00", 250.0), ("250,5", 250.5), ("1\u00a0250,00", 1250.0), (250, 250.0), ("", None)],
)
def test_string_amounts_of_supplier_invoices_parse(vat: object, expected: float | None) -> None:
    (row,) = list(project_expense_rows(_invoice(vat)))
    assert row.record is not None
    assert row.record["vat_amount"] == expected


@pytest.mark.parametrize("vat", ["250 kr", "2.500.00", "n/a"])
def test_an_unreadable_amount_stops_the_invoice_naming_it(vat: str) -> None:
    # Read as 0 it would lose the VAT silently; the run stops instead, naming invoice and field.
    with pytest.raises(UnreadableAmount, match=r"supplier invoice 41: VAT is"):
        list(project_expense_rows(_invoice(vat)))
