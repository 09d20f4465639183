"""Mapping a Fortnox project-expense record onto a Moment project expense, and deciding what to do.

Pure functions, no I/O: the Moment body a record becomes (``desired_expense``), whether it is
billable (``resolve_billable``), how it differs from what Moment already holds (``expense_changes``)
and the resulting ``ExpenseAction`` (create / update / unchanged / conflict). The importer executes
the decision; dry run only reports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sync_common.target_base import Action

# Fields compared between the desired and the existing Moment expense. ``billable`` is left out on
# purpose: Moment treats it as a default set at import that users override per expense when they
# invoice, so a re-read must not revert their choice (see README, "Billable").
COMPARED_FIELDS = (
    "projectId",
    "expenseDate",
    "description",
    "supplierName",
    "amount",
    "vatAmount",
    "currency",
    "accountNumber",
    # Differs only when an expense imported under its legacy key is adopted (re-keyed).
    "externalReference",
)
MONEY_FIELDS = frozenset({"amount", "vatAmount"})
REFERENCE_FIELD = "externalReference"


# What the target does (or, in a dry run, would do) with one expense: both targets' actions.
ExpenseAction = Action


@dataclass(frozen=True)
class FieldChange:
    """One field whose Moment value differs from the Fortnox one."""

    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"from": self.before, "to": self.after}


@dataclass(frozen=True)
class ExpenseDecision:
    """The action for one expense and, for update/conflict, the fields that differ."""

    action: ExpenseAction
    changes: dict[str, FieldChange] = field(default_factory=dict)

    def patch_body(self) -> dict[str, Any]:
        """The PATCH body of an update: only the changed fields, with their new values."""
        return {name: change.after for name, change in self.changes.items()}


def resolve_billable(project: Mapping[str, Any], default_billable: bool) -> bool:
    """Billable per the Moment project's price model where it says true/false, else the default."""
    price_model = project.get("priceModel")
    if isinstance(price_model, Mapping):
        setting = price_model.get("expensesBillable")
        if isinstance(setting, bool):
            return setting
    return default_billable


def fallback_description(record: Mapping[str, Any]) -> str:
    """A readable description when Fortnox gave none: supplier, its invoice number, our number."""
    parts = [str(record.get("supplier_name") or f"supplier {record.get('supplier_number')}")]
    if record.get("supplier_invoice_number"):
        parts.append(f"invoice {record['supplier_invoice_number']}")
    parts.append(f"(Fortnox supplier invoice {record.get('given_number')})")
    return " ".join(parts)


def desired_expense(
    record: Mapping[str, Any], project: Mapping[str, Any], default_billable: bool
) -> dict[str, Any]:
    """The Moment ``projectExpenses`` create body for a ``project_expenses`` record.

    ``project`` is the Moment project found by the record's project number.
    """
    return {
        "projectId": project["id"],
        "expenseDate": _date_text(record["expense_date"]),
        # Moment trims text; sending it trimmed keeps a re-read from looking like a change.
        "description": _text(record.get("description")) or fallback_description(record),
        "supplierName": _text(record.get("supplier_name")),
        "amount": money(record["amount"]),
        # No VAT share from Fortnox means none: Moment stores a missing vatAmount as 0.
        "vatAmount": money(record.get("vat_amount")) or 0.0,
        "currency": record.get("currency") or "SEK",
        # Moment's account numbers are text ("7799"), as in its financialAccounts.
        "accountNumber": str(record["account_number"]),
        "billable": resolve_billable(project, default_billable),
        "externalReference": record["source_key"],
    }


def expense_changes(
    desired: Mapping[str, Any], existing: Mapping[str, Any]
) -> dict[str, FieldChange]:
    """The compared fields whose value in Moment (``existing``) differs from ``desired``."""
    changes: dict[str, FieldChange] = {}
    for name in COMPARED_FIELDS:
        before = _existing_value(existing, name)
        after = desired.get(name)
        if _normalised(name, before) != _normalised(name, after):
            changes[name] = FieldChange(before=before, after=after)
    return changes


def decide(desired: Mapping[str, Any], existing: Mapping[str, Any] | None) -> ExpenseDecision:
    """Create when absent; unchanged when equal; conflict when invoiced; else update."""
    if existing is None:
        return ExpenseDecision(ExpenseAction.CREATE)
    changes = expense_changes(desired, existing)
    if not changes:
        return ExpenseDecision(ExpenseAction.UNCHANGED)
    if existing.get("invoiced"):
        if set(changes) == {REFERENCE_FIELD}:
            # An invoiced expense under its legacy key, equal to Fortnox: it cannot be re-keyed
            # (Moment locks it) and needs no change; it stays found by its legacy key.
            return ExpenseDecision(ExpenseAction.UNCHANGED)
        # Moment has billed the customer for it: changing it now would silently rewrite an invoice.
        return ExpenseDecision(ExpenseAction.CONFLICT, changes)
    return ExpenseDecision(ExpenseAction.UPDATE, changes)


def decide_removal(existing: Mapping[str, Any] | None) -> ExpenseDecision:
    """A row that left its Fortnox invoice: its expense's amount and VAT become 0.

    Zeroed rather than deleted: Moment's API lets a client update an expense it created, the
    zero keeps the trace (and the reference, should the row come back), and an invoiced expense
    is never touched: a conflict. Nothing to do when Moment has no such expense.
    """
    if existing is None:
        return ExpenseDecision(ExpenseAction.UNCHANGED)
    changes = {
        name: FieldChange(before=existing.get(name), after=0.0)
        for name in ("amount", "vatAmount")
        if money(existing.get(name)) not in (None, 0.0)
    }
    if not changes:
        return ExpenseDecision(ExpenseAction.UNCHANGED)
    if existing.get("invoiced"):
        return ExpenseDecision(ExpenseAction.CONFLICT, changes)
    return ExpenseDecision(ExpenseAction.UPDATE, changes)


def money(value: Any) -> float | None:
    """Amounts to öre (2 decimals, half up), as Moment stores them; None stays None."""
    if value is None:
        return None
    try:
        return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def _existing_value(existing: Mapping[str, Any], name: str) -> Any:
    if name == "projectId":
        # Moment reads the project back as {"id", "projectNumber"}; it is written as projectId.
        project = existing.get("project")
        if isinstance(project, Mapping):
            return project.get("id")
        return existing.get("projectId")
    return existing.get(name)


def _normalised(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in MONEY_FIELDS:
        return money(value)
    if name == "expenseDate":
        return _date_text(value)
    if name in {"projectId", "accountNumber"}:
        return str(value)
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _date_text(value: Any) -> str:
    """An ISO date; the SDK may hand us a parsed date/datetime for ``format: date`` fields."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:10]
