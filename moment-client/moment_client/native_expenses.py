"""Expenses Moment's own Fortnox integration imported: which Fortnox cost row each one is.

Moment's built-in integration imports Fortnox supplier-invoice costs as project expenses without
our ``externalReference`` (docs/SWITCH-OVER.md). After switching over, target-moment must not
import those costs a second time: it adopts such an expense instead (sets its reference), and the
expenses pipeline's cutover command reports them beforehand. Both decide here, the same way.

An expense without a reference is the Fortnox cost row when it is on the same Moment project and
agrees on date, account, amount and text. What Moment's integration writes in each field is not
public (docs/MOMENT-API.md), so two readings are accepted where it could go either way
(**inferred**):

- amount: to the öre, excluding VAT (as target-moment writes it) or including VAT (what Moment
  says its integrations import for other accounting systems);
- text: the expense's description, case and spacing aside, equals the row's description (as
  target-moment writes it) or the supplier's name.

Each expense is adopted by one row at most (``NativeExpenses.take``): two identical rows and one
such expense adopt it once and import the other row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from moment_client.client import MomentClient
from moment_client.expense_api import REFERENCE, ExpenseApi

CENT = Decimal("0.01")


def is_native(expense: Mapping[str, Any]) -> bool:
    """Whether ``expense`` (our field names) carries no reference: not imported by our target."""
    return not str(expense.get(REFERENCE) or "").strip()


def expense_project_id(expense: Mapping[str, Any]) -> str | None:
    """The Moment project id of an expense: read back as ``project {id}``, written as projectId."""
    project = expense.get("project")
    value = project.get("id") if isinstance(project, Mapping) else expense.get("projectId")
    return None if value is None else str(value)


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None


def _text(value: Any) -> str:
    return " ".join(str(value or "").split()).casefold()


@dataclass(frozen=True)
class CostRow:
    """What identifies a Fortnox cost row among a Moment project's expenses."""

    project_id: str
    expense_date: str
    account_number: str
    amounts: frozenset[Decimal]
    texts: frozenset[str]

    @classmethod
    def of(cls, expense: Mapping[str, Any]) -> CostRow:
        """The row target-moment would write as ``expense`` (a body in our field names)."""
        amount = _money(expense.get("amount")) or Decimal(0)
        vat = _money(expense.get("vatAmount")) or Decimal(0)
        texts = {_text(expense.get(name)) for name in ("description", "supplierName")}
        return cls(
            project_id=str(expense_project_id(expense)),
            expense_date=str(expense.get("expenseDate") or "")[:10],
            account_number=str(expense.get("accountNumber") or "").strip(),
            amounts=frozenset({amount, amount + vat}),
            texts=frozenset(texts - {""}),
        )

    def matches(self, expense: Mapping[str, Any]) -> bool:
        """Whether ``expense`` (our field names, without a reference) is this cost row."""
        return (
            is_native(expense)
            and expense_project_id(expense) == self.project_id
            and str(expense.get("expenseDate") or "")[:10] == self.expense_date
            and str(expense.get("accountNumber") or "").strip() == self.account_number
            and _money(expense.get("amount")) in self.amounts
            and _text(expense.get("description")) in self.texts
        )


def project_expenses(
    client: MomentClient, api: ExpenseApi, project_id: str
) -> Iterator[dict[str, Any]]:
    """The expenses of one Moment project, in our field names.

    Filtered by project (inferred filter, docs/MOMENT-API.md) and checked again on our side: a
    Moment that ignores the filter answers every expense, and only this project's are kept.
    """
    params = {api.name("projectId"): project_id}
    for record in client.list(api.path, params):
        expense = api.from_moment(record)
        if client.filters.keep(api.path, "projectId", expense_project_id(expense) == project_id):
            yield expense


class NativeExpenses:
    """Moment's expenses without a reference, per project, each handed out to one row at most.

    ``load(project_id)`` lists a project's expenses (our field names); it is called once per
    project, when a row of that project first asks.
    """

    def __init__(self, load: Callable[[str], Iterable[Mapping[str, Any]]]) -> None:
        self._load = load
        self._pools: dict[str, list[dict[str, Any]]] = {}

    def take(self, row: CostRow) -> dict[str, Any] | None:
        """The first (by id) unclaimed expense of the row's project that is this row, claimed."""
        pool = self.pool(row.project_id)
        for index, expense in enumerate(pool):
            if row.matches(expense):
                return pool.pop(index)
        return None

    def pool(self, project_id: str) -> list[dict[str, Any]]:
        """The project's unclaimed expenses without a reference, by id."""
        if project_id not in self._pools:
            natives = [dict(e) for e in self._load(project_id) if is_native(e)]
            natives.sort(key=lambda e: str(e.get("id") or "").zfill(20))
            self._pools[project_id] = natives
        return self._pools[project_id]
