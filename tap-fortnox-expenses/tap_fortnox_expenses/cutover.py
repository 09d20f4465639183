"""``tap-fortnox-expenses-cutover``: the expenses Moment's own Fortnox integration already imported.

Moment's built-in integration has imported Fortnox's project costs as Moment expenses without our
``externalReference`` (docs/SWITCH-OVER.md). Before the first fortnox-expenses-to-moment run this
command reads what that run would read (the tap's window, ``lookback_days`` or ``start_date``,
with the tap's own rules) and says, for each expense row, what the run will do with it:

- already imported by this pipeline (Moment has an expense with its reference);
- imported by Moment's own integration: the run adopts that expense (recognised by project, date,
  account, amount and text, ``moment_client.native_expenses``, the rule target-moment applies)
  and never imports the row a second time;
- in Fortnox only: the run imports it;
- on a project Moment does not have: skipped, as every run does.

And the other way: Moment expenses without a reference, on those projects and dated in the
window, that no row matches (entered by hand, or imported by Moment's integration with values
that differ from Fortnox's: worth a look before the first run, which would import such a row).

The window is where the first run starts: nothing older is read, so there is nothing to set.
Reads only. Settings as ``tap-fortnox-expenses-preflight``'s (the tap's own, and Moment's from
``TARGET_MOMENT_*``, including target-moment's ``expense_path`` and ``expense_fields``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fortnox_client.cli import ConfigError, load_config
from moment_client.native_expenses import CostRow, NativeExpenses, project_expenses
from sync_common import CheckResult, PreflightReport
from sync_common.connection_checks import moment_integration_off
from sync_common.preflight_command import PreflightCommand

from tap_fortnox_expenses.preflight import MOMENT_ENV_PREFIX, ExpensesPreflight, connect

PIPELINE = (
    "fortnox-expenses-to-moment (Moment's own Fortnox integration → tap-fortnox-expenses → "
    "target-moment)"
)
DOC = "docs/SWITCH-OVER.md"
OURS, ADOPTED, NEW, UNKNOWN_PROJECT = "ours", "adopted", "new", "unknown-project"


@dataclass
class WindowComparison:
    """Each expense row of the window by what the first run does with it, and Moment's
    unreferenced expenses in the window that no row is."""

    rows: dict[str, list[str]] = field(
        default_factory=lambda: {OURS: [], ADOPTED: [], NEW: [], UNKNOWN_PROJECT: []}
    )
    moment_only: list[str] = field(default_factory=list)
    invoices_read: int = 0

    def counts(self) -> dict[str, int]:
        return {**{k: len(v) for k, v in self.rows.items()}, "moment-only": len(self.moment_only)}


def _row(record: Mapping[str, Any]) -> str:
    text = record.get("description") or record.get("supplier_name") or ""
    return (
        f"{record['source_key']}: project {record['project_number']}, {record['expense_date']}, "
        f"account {record['account_number']}, {record['amount']:.2f} (VAT "
        f"{record.get('vat_amount') or 0:.2f}), {text!r}"
    )


def _expense(expense: Mapping[str, Any], number: str) -> str:
    return (
        f"Moment expense {expense.get('id')}: project {number}, {expense.get('expenseDate')}, "
        f"account {expense.get('accountNumber')}, {float(expense.get('amount') or 0):.2f}, "
        f"{expense.get('description')!r}"
    )


class ExpensesCutover(ExpensesPreflight):
    """The switch-over report of the expenses pipeline (the pre-flight's reading, another
    verdict); reads only."""

    def compare(self) -> WindowComparison:
        found = WindowComparison()
        projects = {str(p.get("projectNumber")): p for p in self.moment.list("projects")}
        by_project: dict[str, list[dict[str, Any]]] = {}

        def expenses_of(project_id: str) -> list[dict[str, Any]]:
            if project_id not in by_project:
                by_project[project_id] = list(
                    project_expenses(self.moment, self.expense_api, project_id)
                )
            return by_project[project_id]

        natives = NativeExpenses(expenses_of)
        for invoice in self.with_rows(self.window_list()):
            found.invoices_read += 1
            for record in self.expense_records(invoice):
                found.rows[self._decide(record, projects, expenses_of, natives)].append(
                    _row(record)
                )
        window = self.window()
        numbers = {str(p.get("id")): n for n, p in projects.items()}
        for project_id in by_project:
            for expense in natives.pool(project_id):
                day = str(expense.get("expenseDate") or "")[:10]
                if window.from_date.isoformat() <= day <= window.to_date.isoformat():
                    found.moment_only.append(_expense(expense, numbers.get(project_id, "?")))
        return found

    @staticmethod
    def _decide(
        record: Mapping[str, Any],
        projects: Mapping[str, Mapping[str, Any]],
        expenses_of: Callable[[str], Iterable[Mapping[str, Any]]],
        natives: NativeExpenses,
    ) -> str:
        project = projects.get(str(record["project_number"]))
        if project is None:
            return UNKNOWN_PROJECT
        project_id = str(project["id"])
        keys = {record["source_key"], record.get("legacy_source_key")} - {None}
        expenses: Iterable[Mapping[str, Any]] = expenses_of(project_id)
        if any(str(e.get("externalReference") or "") in keys for e in expenses):
            return OURS
        # The expense target-moment would write (its field names), for the shared rule.
        row = CostRow.of(
            {
                "projectId": project_id,
                "expenseDate": record["expense_date"],
                "accountNumber": str(record["account_number"]),
                "amount": record["amount"],
                "vatAmount": record.get("vat_amount"),
                "description": record.get("description"),
                "supplierName": record.get("supplier_name"),
            }
        )
        return ADOPTED if natives.take(row) is not None else NEW

    def run(self) -> PreflightReport:
        report = PreflightReport(PIPELINE, title="Switch-over")
        connected = self.connections(report)
        report.add(moment_integration_off("fortnox-expenses-to-moment", "import the same costs"))
        if not (connected.fortnox and connected.moment and connected.project_module):
            return report
        try:
            found = self.compare()
        except Exception as exc:  # reported like a failed check, naming the error
            report.add(
                CheckResult(
                    "expenses",
                    "fail",
                    f"the comparison could not run: {type(exc).__name__}: {exc}",
                    "Fix the error above (settings, network, expense_path), then run again.",
                )
            )
            return report
        window = self.window()
        report.details["window"] = {
            "from": window.from_date.isoformat(),
            "to": window.to_date.isoformat(),
            "supplier_invoices": found.invoices_read,
        }
        report.details["expenses"] = found.counts()
        for result in self.results(found):
            report.add(result)
        return report

    def results(self, found: WindowComparison) -> list[CheckResult]:
        window = self.window()
        rows = found.rows
        total = sum(len(v) for v in rows.values())
        results = [
            CheckResult(
                "expenses-window",
                "pass",
                f"the first run reads {total} expense rows of {found.invoices_read} supplier "
                f"invoices dated {window.from_date} – {window.to_date} (lookback_days or "
                "start_date); nothing older",
            ),
            CheckResult(
                "expenses-ours",
                "pass",
                f"{len(rows[OURS])} are in Moment already under their Fortnox source key",
            ),
            CheckResult(
                "expenses-adopted",
                "pass",
                f"{len(rows[ADOPTED])} were imported by Moment's own integration: the first run "
                "adopts those Moment expenses (sets its reference on them; an invoiced one is "
                "kept as it is and remembered) and does not import them again",
                items=rows[ADOPTED],
            ),
            CheckResult(
                "expenses-new",
                "pass",
                f"{len(rows[NEW])} are in Fortnox only: the first run imports them",
                items=rows[NEW],
            ),
        ]
        if rows[UNKNOWN_PROJECT]:
            results.append(
                CheckResult(
                    "expenses-unknown-project",
                    "warn",
                    f"{len(rows[UNKNOWN_PROJECT])} are on projects Moment does not have: skipped "
                    "and kept waiting, as every run does, until the project exists in Moment",
                    "Create the projects in Moment, or leave Fortnox-only projects be.",
                    rows[UNKNOWN_PROJECT],
                )
            )
        if found.moment_only:
            results.append(
                CheckResult(
                    "expenses-moment-only",
                    "warn",
                    f"{len(found.moment_only)} Moment expenses without a Fortnox source key, on "
                    "these projects and dated in the window, match no Fortnox row: left alone",
                    "Entered in Moment by hand: nothing to do. If one is the same cost as a row "
                    "under expenses-new (Moment's integration stored other values), the first run "
                    f"would import that cost again: see {DOC}, 'Expenses'.",
                    found.moment_only,
                )
            )
        return results


COMMAND = PreflightCommand(
    prog="tap-fortnox-expenses-cutover",
    description="Switch over from Moment's own Fortnox integration: which expenses in the tap's "
    f"window Moment already has, and what the first run does with each (reads only; {DOC}).",
    settings_label="tap settings",
    env_prefix="TAP_FORTNOX_EXPENSES",
    moment_env_prefix=MOMENT_ENV_PREFIX,
)


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(
        argv,
        load_config=load_config,
        config_error=ConfigError,
        connect=partial(connect, kind=ExpensesCutover),
    )


if __name__ == "__main__":
    sys.exit(main())
