"""``tap-fortnox-expenses-preflight``: can Fortnox's project costs land in Moment?

Owns the checks of the fortnox-expenses-to-moment pipeline before its first real run: Fortnox
token and scopes, project module, the Moment API key, and — over the supplier invoices of the
window the tap will read (``lookback_days``, or ``start_date``) — that every cost account on an
expense row exists among Moment's ``financialAccounts`` (blocking: Moment refuses the expense),
that those accounts and ``account_numbers`` allow a project in Fortnox (a warning otherwise),
that the rows' projects exist in Moment (a warning: those rows are skipped and counted, as
Moment's own integration does) and that those projects have a start date in Fortnox (a warning:
Fortnox needs one before costs can be booked on a project).

Why here and not in target-moment: most of what can go wrong is on the Fortnox side (token,
scopes, module, the rows the tap qualifies as expenses, with the tap's own rules and filters),
and the tap holds the Fortnox settings and token store; Moment needs only its three settings.
Settings: the tap's own (``--config ENV`` reads ``TAP_FORTNOX_EXPENSES_*``, or a JSON file) and
Moment's through ``--moment-config ENV`` (default: the target's ``TARGET_MOMENT_API_URL``,
``TARGET_MOMENT_COMPANY_CODE``, ``TARGET_MOMENT_API_KEY``) or ``--moment-config moment.json``.
Reads only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

from fortnox_client import FortnoxClient, FortnoxSettings
from fortnox_client.cli import ConfigError, load_config
from moment_client import ExpenseApi, MomentClient, MomentSettings
from sync_common import CheckResult, PreflightReport, meltano_command, run_check
from sync_common.connection_checks import (
    FORTNOX_MISSING_SCOPE,
    Connections,
    check_connections,
    error_code,
)
from sync_common.moment_checks import check_moment_expenses
from sync_common.preflight_command import PreflightCommand

from tap_fortnox_expenses.expenses import ExpenseFilters, invoice_skip_reason, project_expense_rows
from tap_fortnox_expenses.window import SyncWindow

PIPELINE = "fortnox-expenses-to-moment (tap-fortnox-expenses → target-moment)"
# The authorise command's arguments; printed with the environment the check runs in.
AUTHORIZE = "invoke tap-fortnox-expenses:authorize"
REQUIRED_SCOPES = ("supplierinvoice", "project", "companyinformation")
MOMENT_ENV_PREFIX = "TARGET_MOMENT"
# Each qualifying invoice costs one GET for its rows; enough to see the accounts in use without
# making pre-flight as slow as a full backfill (at 25 requests per 5 s: under a minute).
MAX_INVOICES_READ = 200


@dataclass
class WindowExpenses:
    """Accounts and projects of the expense rows in the window, each with its supplier invoices."""

    accounts: dict[str, list[str]] = field(default_factory=dict)
    projects: dict[str, list[str]] = field(default_factory=dict)
    invoices_read: int = 0
    invoices_not_read: int = 0

    def add(self, account: str, project: str, invoice: str) -> None:
        for index, key in ((self.accounts, account), (self.projects, project)):
            seen = index.setdefault(key, [])
            if invoice not in seen:
                seen.append(invoice)


def _examples(numbers: Sequence[str], n: int = 3) -> str:
    return ", ".join(numbers[:n]) + (f" and {len(numbers) - n} more" if len(numbers) > n else "")


def _setting_list(value: Any) -> Any:
    # Meltano hands array settings to a command as JSON text in the environment.
    return json.loads(value) if isinstance(value, str) and value.strip() else value


class ExpensesPreflight:
    """Runs every check of the expenses pipeline into a ``PreflightReport``; reads only."""

    def __init__(
        self,
        fortnox: FortnoxClient,
        moment: MomentClient,
        company_code: str,
        tap_config: Mapping[str, Any],
        expense_api: ExpenseApi | None = None,
    ) -> None:
        self.fortnox = fortnox
        # target-moment's expense_path / expense_fields (read from Moment's settings).
        self.expense_api = expense_api or ExpenseApi()
        self.moment = moment
        self.company_code = company_code
        self.tap_config = tap_config
        self._expenses: WindowExpenses | None = None

    def window(self, now: datetime | None = None) -> SyncWindow:
        start = self.tap_config.get("start_date")
        return SyncWindow.plan(
            started_at=now or datetime.now(UTC),
            lookback_days=int(self.tap_config.get("lookback_days") or 30),
            start_date=date.fromisoformat(str(start)[:10]) if start else None,
        )

    @property
    def expenses(self) -> WindowExpenses:
        if self._expenses is None:
            self._expenses = self.read_window()
        return self._expenses

    def read_window(self) -> WindowExpenses:
        """Accounts and projects of the window's expense rows (at most MAX_INVOICES_READ
        supplier invoices read)."""
        found = WindowExpenses()
        candidates = self.window_list()
        for invoice in self.with_rows(islice(candidates, MAX_INVOICES_READ)):
            found.invoices_read += 1
            for record in self.expense_records(invoice):
                found.add(
                    str(record["account_number"]),
                    str(record["project_number"]),
                    str(record["given_number"]),
                )
        found.invoices_not_read = sum(1 for _ in candidates)
        return found

    def window_list(self) -> Iterator[dict[str, Any]]:
        """The tap's own rules over the window's list: what never qualifies is left out."""
        window = self.window()
        listed = self.fortnox.list("supplierinvoices", window.window_params())
        # By InvoiceDate too: a supplier-invoice list may ignore fromdate/todate.
        return (item for item in listed if window.dates(item) and invoice_skip_reason(item) is None)

    def with_rows(self, items: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        """Each listed supplier invoice read with its rows (one GET each)."""
        for item in items:
            invoice = self.fortnox.get("supplierinvoices", item["GivenNumber"])
            if invoice is not None:
                yield invoice

    def expense_records(self, invoice: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The ``project_expenses`` records the tap emits for one supplier invoice."""
        filters = ExpenseFilters.from_config(
            {
                "account_numbers": _setting_list(self.tap_config.get("account_numbers")),
                "include_projects": _setting_list(self.tap_config.get("include_projects")),
            }
        )
        for outcome in project_expense_rows(invoice, filters):
            if outcome.record is not None:
                yield outcome.record

    def connections(self, report: PreflightReport) -> Connections:
        """The connection checks this pipeline starts with (pre-flight and switch-over)."""
        return check_connections(
            report,
            self.fortnox,
            self.moment,
            self.company_code,
            required_scopes=REQUIRED_SCOPES,
            authorize_command=meltano_command(AUTHORIZE),
            moment_env_prefix=MOMENT_ENV_PREFIX,
        )

    def run(self) -> PreflightReport:
        report = PreflightReport(PIPELINE)
        connected = self.connections(report)
        if connected.moment:
            # Read-only probes of the inferred expense path, names, filters (docs/MOMENT-API.md).
            check_moment_expenses(
                report,
                self.moment,
                path=self.expense_api.path,
                names=self.expense_api.renamed,
                settings_prefix=MOMENT_ENV_PREFIX,
            )
        # Without the project module no project cost can be read.
        if connected.project_module and connected.moment:
            run_check(report, "expense-accounts", self.check_expense_accounts)
            run_check(report, "expense-account-rules", self.check_expense_account_rules)
            run_check(report, "expense-projects", self.check_expense_projects)
            run_check(report, "project-start-dates", self.check_project_start_dates)
        return report

    def _scope_note(self) -> str:
        window = self.window()
        note = (
            f"{self.expenses.invoices_read} supplier invoice(s) dated {window.from_date} – "
            f"{window.to_date}"
        )
        if self.expenses.invoices_not_read:
            note += f" ({self.expenses.invoices_not_read} more not read: pre-flight reads at most "
            note += f"{MAX_INVOICES_READ})"
        return note

    def check_expense_accounts(self) -> CheckResult:
        moment_accounts = {str(a["accountNumber"]) for a in self.moment.list("financialAccounts")}
        used = self.expenses.accounts
        missing = sorted(a for a in used if a not in moment_accounts)
        if missing:
            return CheckResult(
                "expense-accounts",
                "fail",
                f"{len(missing)} cost account(s) on Fortnox expense rows are not among Moment's "
                f"financial accounts, so Moment would refuse those expenses ({self._scope_note()})",
                "Add the accounts in Moment (Setup > Settings > Financial accounts) with the same "
                "numbers as in Fortnox, or exclude them with the tap's account_numbers setting.",
                [f"{a} (supplier invoices {_examples(used[a])})" for a in missing],
            )
        return CheckResult(
            "expense-accounts",
            "pass",
            f"all {len(used)} cost accounts on expense rows exist in Moment ({self._scope_note()})",
        )

    def check_expense_account_rules(self) -> CheckResult:
        """The ProjectSettings of the cost accounts the tap reads (``account_numbers`` and those
        on expense rows): on a NOTALLOWED account Fortnox refuses a row with a project, so no
        expense can come from it (docs/FORTNOX_PROJECTS.md)."""
        configured = [str(a) for a in _setting_list(self.tap_config.get("account_numbers")) or []]
        used = self.expenses.accounts
        wanted = sorted(set(configured) | set(used))
        try:
            listed = {str(a.get("Number")): a for a in self.fortnox.list("accounts")}
        except Exception as exc:  # told apart by Fortnox's code below
            if error_code(exc) != FORTNOX_MISSING_SCOPE:
                raise
            return CheckResult(
                "expense-account-rules",
                "manual",
                "the token cannot read the chart of accounts (no bookkeeping scope), so the cost "
                "accounts' project rules are not checked",
                "In Fortnox (Register > Kontoplan) check that the cost accounts you import from "
                "allow a project (Projekt: Tillåtet or Obligatoriskt), or add the scope "
                "'bookkeeping' to the app and authorise again to let pre-flight read them.",
            )
        closed = [a for a in wanted if (listed.get(a) or {}).get("ProjectSettings") == "NOTALLOWED"]
        if closed:
            return CheckResult(
                "expense-account-rules",
                "warn",
                f"{len(closed)} cost account(s) the tap reads refuse a project in Fortnox "
                "(ProjectSettings NOTALLOWED): no cost on them can be booked on a project, so "
                "none becomes a Moment expense",
                "In Fortnox (Register > Kontoplan) change the account's Projekt setting to "
                "Tillåtet, or remove the account from the tap's account_numbers.",
                [
                    f"{a} ("
                    + (
                        f"expense rows of supplier invoices {_examples(used[a])}"
                        if a in used
                        else "in account_numbers"
                    )
                    + ")"
                    for a in closed
                ],
            )
        return CheckResult(
            "expense-account-rules",
            "pass",
            f"all {len(wanted)} cost accounts the tap reads allow a project",
        )

    def check_expense_projects(self) -> CheckResult:
        moment_projects = {str(p["projectNumber"]) for p in self.moment.list("projects")}
        used = self.expenses.projects
        unknown = sorted(p for p in used if p not in moment_projects)
        if unknown:
            return CheckResult(
                "expense-projects",
                "warn",
                f"{len(unknown)} project(s) on Fortnox expense rows do not exist in Moment; their "
                "expenses will be skipped and counted as 'unknown project'",
                "Create the projects in Moment with the same numbers (or move the costs to a "
                "Moment project in Fortnox); Fortnox-only projects are expected to be skipped.",
                [f"{p} (supplier invoices {_examples(used[p])})" for p in unknown],
            )
        return CheckResult(
            "expense-projects",
            "pass",
            f"all {len(used)} projects on expense rows exist in Moment",
        )

    def check_project_start_dates(self) -> CheckResult:
        used = self.expenses.projects
        without = sorted(
            str(p["ProjectNumber"])
            for p in self.fortnox.list("projects")
            if str(p.get("ProjectNumber")) in used and not p.get("StartDate")
        )
        if without:
            return CheckResult(
                "project-start-dates",
                "warn",
                f"{len(without)} Fortnox project(s) with expense rows have no start date; "
                "Fortnox needs one for project costs",
                "Give the projects a start date in Moment (target-fortnox sends it, or the "
                "create date) or in Fortnox under Register > Projekt.",
                without,
            )
        return CheckResult(
            "project-start-dates", "pass", "every project with expense rows has a start date"
        )


COMMAND = PreflightCommand(
    prog="tap-fortnox-expenses-preflight",
    description="Check Fortnox and Moment before the first fortnox-expenses-to-moment run "
    "(reads only).",
    settings_label="tap settings",
    env_prefix="TAP_FORTNOX_EXPENSES",
    moment_env_prefix=MOMENT_ENV_PREFIX,
)


def connect(
    tap_config: Mapping[str, Any],
    moment_config: Mapping[str, Any],
    *,
    kind: type[ExpensesPreflight] = ExpensesPreflight,
) -> ExpensesPreflight:
    """The checks (or ``kind``, the switch-over report) over clients built from the settings."""
    return kind(
        FortnoxClient(FortnoxSettings.from_config(tap_config)),
        MomentClient(MomentSettings.from_config(moment_config)),
        str(moment_config.get("company_code")),
        tap_config,
        ExpenseApi.from_config(moment_config),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(argv, load_config=load_config, config_error=ConfigError, connect=connect)


if __name__ == "__main__":
    sys.exit(main())
