"""One run of importing Fortnox project expenses into Moment: lookups, upserts, outcomes.

``ExpenseImport`` owns what lives for exactly one run: the Moment client, the cache of Moment
projects by number, the Fortnox projects seen without a start date, the run summary, the dead
letters and (in dry run) the plan. The sinks hand it records; it decides with ``expense_plan``
and writes through ``moment_client`` — never HTTP directly.

Error policy (docs/ARCHITECTURE.md): a data problem (contract, Moment 4xx, no start date) is a
failure in the summary plus a dead letter, and the run goes on; ``MomentAuthError`` and
``MomentTransientError`` propagate and fail the run before the target emits state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moment_client import (
    MomentAmbiguousWriteError,
    MomentAuthError,
    MomentClient,
    MomentConflict,
    MomentError,
    MomentTransientError,
)
from moment_client.expense_api import ExpenseApi
from moment_client.native_expenses import CostRow, NativeExpenses
from sync_common import DeadLetters, ProgressReporter, RunSummary
from sync_common.contract import json_ready
from sync_common.create_once import CreatesUnanswered, create_once
from sync_common.ledger import RunStoreLedger
from sync_common.target_base import replayable_letters

from target_moment.contract import (
    PROJECT_EXPENSES,
    PROJECTS,
    ContractError,
    check_record,
)
from target_moment.dry_run import PLUGIN, DryRunPlan
from target_moment.expense_plan import (
    ExpenseAction,
    ExpenseDecision,
    decide,
    decide_removal,
    desired_expense,
)
from target_moment.moment_expenses import MomentExpenses

UNKNOWN_PROJECT = "project unknown in Moment"
# Dead letters whose message starts with this wait for their project; they are not failures.
WAITING = "waiting: "
# A create is tried again only after a lookup proved the earlier attempt left nothing behind.
MAX_CREATE_ATTEMPTS = 3

logger = logging.getLogger("target_moment")

# Run-store document: source key -> id of the Moment expense adopted for it (stream key).
ADOPTED_DOCUMENT = f"adopted/{PLUGIN}.json"

# What each decision counts as in the run summary (RunSummary outcome names).
_OUTCOMES = {
    ExpenseAction.CREATE: "created",
    ExpenseAction.UPDATE: "updated",
    ExpenseAction.UNCHANGED: "unchanged",
    ExpenseAction.CONFLICT: "conflict",
}


class ExpenseFailure(Exception):
    """A record that cannot be imported as it is; the message says what to fix."""


@dataclass
class ImportSettings:
    """The run-level choices taken from the target's config."""

    default_billable: bool = True
    dry_run: bool = False
    # Moment's expense path and field names (settings expense_path, expense_fields).
    expense_api: ExpenseApi = field(default_factory=ExpenseApi)


@dataclass
class FortnoxProjects:
    """Start dates of the Fortnox projects seen on the ``projects`` stream this run."""

    start_dates: dict[str, str | None] = field(default_factory=dict)

    def add(self, project_number: str, start_date: str | None) -> None:
        self.start_dates[project_number] = start_date

    def lacks_start_date(self, project_number: str) -> bool:
        """True only for a project the tap sent with no start date.

        A project the tap did not send (e.g. a dead-letter file replayed on its own) is not held
        back: Moment itself would accept the expense, and Fortnox already holds the cost.
        """
        return project_number in self.start_dates and not self.start_dates[project_number]


class MomentProjects:
    """Moment projects by project number, looked up once per run (unknown ones too)."""

    def __init__(self, client: MomentClient) -> None:
        self._client = client
        self._by_number: dict[str, dict[str, Any] | None] = {}

    def find(self, project_number: str) -> dict[str, Any] | None:
        if project_number not in self._by_number:
            self._by_number[project_number] = self._client.find_one(
                "projects", projectNumber=project_number
            )
        return self._by_number[project_number]


class ExpenseImport:
    """Imports ``project_expenses`` records into Moment for one run."""

    def __init__(
        self,
        client: MomentClient,
        summary: RunSummary,
        dead_letters: DeadLetters,
        settings: ImportSettings,
        plan: DryRunPlan | None = None,
    ) -> None:
        self.client = client
        self.summary = summary
        self.dead_letters = dead_letters
        self.settings = settings
        self.plan = plan if plan is not None else DryRunPlan()
        self.fortnox_projects = FortnoxProjects()
        self.moment_projects = MomentProjects(client)
        self.expenses = MomentExpenses(client, settings.expense_api)
        # Expenses Moment's own Fortnox integration imported (no reference), adopted instead of
        # imported again; which one each source key adopted is kept in the run store, since an
        # invoiced expense cannot take our reference (docs/SWITCH-OVER.md).
        self.natives = NativeExpenses(self.expenses.of_project)
        self.adopted = RunStoreLedger(dead_letters.store, ADOPTED_DOCUMENT)
        # Expenses this run wrote or read, by source key: a key repeated in one batch (or in a
        # retried dead letter and the fresh input) is compared against it without another lookup.
        self._known: dict[str, dict[str, Any]] = {}
        self._dead_letters_retried = False
        self._skipped: set[str] = set()
        self.progress = ProgressReporter(PROJECT_EXPENSES)
        summary.add_stream(PROJECT_EXPENSES)

    # projects ---------------------------------------------------------------------------------
    def add_fortnox_project(self, record: Mapping[str, Any]) -> None:
        """Remember a Fortnox project's start date (the tap sends projects before expenses).

        A project record that breaks the contract is a failure in the summary, not a dead
        letter: the tap sends the whole projects table again on every run.
        """
        try:
            check_record(PROJECTS, dict(record))
        except ContractError as exc:
            logger.error("projects record failed: %s", exc)
            self.summary.fail(PROJECTS, str(record.get("project_number") or "") or None, str(exc))
            return
        start_date = record.get("start_date")
        self.fortnox_projects.add(str(record["project_number"]), str(start_date or "") or None)

    # expenses ---------------------------------------------------------------------------------
    def retry_dead_letters(self) -> None:
        """Retry the expenses earlier runs could not import, once per run, before new records."""
        if self._dead_letters_retried:
            return
        self._dead_letters_retried = True
        for letter in replayable_letters(self.dead_letters, PROJECT_EXPENSES, self.summary, logger):
            self.import_expense(letter.record, letter.schema, letter.key_properties)

    def import_expense(
        self,
        record: Mapping[str, Any],
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
    ) -> str:
        """Import one expense; return the outcome counted in the summary.

        Raises only for run-level errors (auth, retries exhausted).
        """
        key = str(record.get("source_key") or "")
        self.progress.tick()
        try:
            decision, outcome, detail = self._import(record, key)
        except (MomentAuthError, MomentTransientError):
            raise
        except (ContractError, ExpenseFailure, MomentError) as exc:
            return self._fail(record, schema, key_properties, key, str(exc))
        if outcome == "skipped":
            # Once per key and run: a waiting letter and the same row sent again count once.
            if key not in self._skipped:
                self._skipped.add(key)
                self.summary.skip(PROJECT_EXPENSES, detail or UNKNOWN_PROJECT, key)
        elif decision is not None and decision.action is ExpenseAction.CONFLICT:
            self.summary.record(PROJECT_EXPENSES, outcome, key, detail)
        else:
            self.summary.record(PROJECT_EXPENSES, outcome, key)
        if self.settings.dry_run:
            return outcome
        if outcome == "skipped":
            self._park(record, schema, key_properties, key)
        else:
            self.dead_letters.resolve(PROJECT_EXPENSES, key)
        return outcome

    def _park(
        self,
        record: Mapping[str, Any],
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        key: str,
    ) -> None:
        """Keep an expense whose project Moment does not know yet, to re-drive it every run.

        The tap sends an invoice's rows once (and again only when the invoice changes), so the
        expense would never arrive once its project is created. Kept with the dead letters
        (re-driven first on every run, replayable like them) but counted as skipped, not failed:
        no failure e-mail while it waits.
        """
        number = str(record.get("project_number") or "")
        letter = self.dead_letters.add(
            PROJECT_EXPENSES,
            schema,
            key_properties,
            json_ready(record),
            key,
            f"{WAITING}project {number} does not exist in Moment yet; the expense is imported "
            "by the first run after it is created (or remove this letter to give up on it)",
        )
        if letter.attempts == 1:
            logger.info("project_expenses %s waits for project %s to exist in Moment", key, number)

    def _import(
        self, record: Mapping[str, Any], key: str
    ) -> tuple[ExpenseDecision | None, str, str | None]:
        check_record(PROJECT_EXPENSES, dict(record))
        if record.get("removed"):
            return self._remove(record, key)
        number = str(record["project_number"])
        if self.fortnox_projects.lacks_start_date(number):
            raise ExpenseFailure(
                f"Expense {key} is on Fortnox project {number}, which has no start date, so it "
                f"is not imported into Moment. Set a start date on project {number} in Fortnox; "
                "the next run imports the expense."
            )
        project = self.moment_projects.find(number)
        if project is None:
            self.plan.add_skip(key, number, UNKNOWN_PROJECT)
            return None, "skipped", UNKNOWN_PROJECT
        desired = desired_expense(record, project, self.settings.default_billable)
        existing = self._existing(key) or self._legacy(record, key) or self._adopted(key)
        adopting = None if existing is not None else self._native(desired, key)
        decision = decide(desired, existing or adopting)
        if adopting is not None and adopting.get("invoiced"):
            # The same cost, already invoiced: Moment locks it, so it is adopted as it is (no
            # reference; the run store remembers it) rather than reported as a conflict.
            decision = ExpenseDecision(ExpenseAction.UNCHANGED)
        existing = existing or adopting
        if self.settings.dry_run:
            self.plan.add(key, number, decision)
            return decision, _OUTCOMES[decision.action], _conflict_detail(key, decision)
        if decision.action is ExpenseAction.CREATE:
            decision = self._create(key, desired)
        elif decision.action is ExpenseAction.UPDATE:
            assert existing is not None
            self._known[key] = self.expenses.patch(existing["id"], decision.patch_body())
        return decision, _OUTCOMES[decision.action], _conflict_detail(key, decision)

    def _remove(
        self, record: Mapping[str, Any], key: str
    ) -> tuple[ExpenseDecision, str, str | None]:
        """A row that left its invoice: zero its expense (never an invoiced one)."""
        existing = self._existing(key)
        decision = decide_removal(existing)
        number = (
            ""
            if existing is None
            else str((existing.get("project") or {}).get("projectNumber") or "")
        )
        detail = None
        if decision.action is ExpenseAction.CONFLICT:
            detail = (
                f"Expense {key} left Fortnox supplier invoice {record.get('given_number')} (row "
                "removed, moved or no longer an expense) but is already invoiced in Moment; it is "
                "left unchanged. Correct it in Moment (e.g. with a credit) if the change is real."
            )
        if self.settings.dry_run:
            self.plan.add(key, number, decision)
            return decision, _OUTCOMES[decision.action], detail
        if decision.action is ExpenseAction.UPDATE:
            assert existing is not None
            self._known[key] = self.expenses.patch(existing["id"], decision.patch_body())
        return decision, _OUTCOMES[decision.action], detail

    def _legacy(self, record: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        """The expense an earlier version imported under ``fortnox-si-{GivenNumber}-{row_index}``.

        Found only when none exists under the new key; the decision then re-keys it (and
        corrects its fields), so an upgrade never doubles an expense.
        """
        legacy = str(record.get("legacy_source_key") or "")
        if not legacy or legacy == key:
            return None
        found = self.expenses.find(legacy)  # the reference is re-checked on our side
        if found is not None:
            logger.info("Expense %s was imported as %s; adopting it", key, legacy)
            return found
        return None

    def _adopted(self, key: str) -> dict[str, Any] | None:
        """The expense an earlier run adopted for ``key`` but could not give our reference.

        That happens when Moment had invoiced it. It is found by its Moment id, so a later change
        is compared against it (a conflict, being invoiced) and never imported beside it.
        """
        expense_id = self.adopted.get(PROJECT_EXPENSES, key)
        return None if expense_id is None else self.expenses.get(expense_id)

    def _native(self, desired: Mapping[str, Any], key: str) -> dict[str, Any] | None:
        """An expense Moment's own integration imported for this cost row, adopted.

        Such an expense has no reference and the same project, date, account, amount and text
        (``moment_client.native_expenses``). The decision then sets our reference on it (or, when
        it is invoiced, leaves it be).
        """
        found = self.natives.take(CostRow.of(desired))
        if found is None:
            return None
        logger.info(
            "Expense %s was imported by Moment's own integration as Moment expense %s; adopting it",
            key,
            found.get("id"),
        )
        if not self.settings.dry_run:
            self.adopted.put(PROJECT_EXPENSES, key, str(found["id"]))
        return found

    def _existing(self, key: str) -> dict[str, Any] | None:
        if key not in self._known:
            found = self.expenses.find(key)
            if found is None:
                return None
            self._known[key] = found
        return self._known[key]

    def _create(self, key: str, desired: dict[str, Any]) -> ExpenseDecision:
        """POST the expense without ever creating it twice.

        After a 409 (the reference exists) or an ambiguous failure (the POST may have landed),
        look it up: found → compare and update if needed; not found after an ambiguous failure →
        the earlier POST left nothing, so trying again is safe.
        """
        try:
            result = create_once(
                f"Expense {key}",
                lambda: self.expenses.create(desired),
                lambda: self.expenses.find(key),
                ambiguous=MomentAmbiguousWriteError,
                exists=MomentConflict,
                attempts=MAX_CREATE_ATTEMPTS,
                log=logger,
            )
        except MomentConflict as exc:
            raise ExpenseFailure(
                f"Moment refused expense {key} as a duplicate (409) but has no expense "
                f"with externalReference {key}: {exc}"
            ) from exc
        except CreatesUnanswered as exc:
            raise MomentTransientError(
                f"Could not create expense {key} in Moment after {MAX_CREATE_ATTEMPTS} attempts "
                f"(each unanswered, none landed): {exc.last_error}. Re-run later.",
                path=self.expenses.api.path,
            ) from exc
        if result.found is None:
            assert result.created is not None
            self._known[key] = result.created
            return ExpenseDecision(ExpenseAction.CREATE)
        decision = self._reconcile(key, desired, result.found)
        if result.landed and decision.action is ExpenseAction.UNCHANGED:
            return ExpenseDecision(ExpenseAction.CREATE)
        return decision

    def _reconcile(
        self, key: str, desired: dict[str, Any], existing: dict[str, Any]
    ) -> ExpenseDecision:
        self._known[key] = existing
        decision = decide(desired, existing)
        if decision.action is ExpenseAction.UPDATE:
            self._known[key] = self.expenses.patch(existing["id"], decision.patch_body())
        return decision

    def reject(
        self,
        stream: str,
        record: Mapping[str, Any],
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        key: str,
        message: str,
    ) -> None:
        """Fail a record the target refused before any sink saw it (e.g. without its key).

        The message was logged by the caller. An expense becomes a dead letter like any other;
        a record of another stream is only counted (projects are re-sent whole every run).
        """
        if stream == PROJECT_EXPENSES:
            # Earlier runs' letters go first, as for any new expense (and this letter must not
            # be retried by this run).
            self.retry_dead_letters()
        self.summary.fail(stream, key, message)
        if stream != PROJECT_EXPENSES:
            return
        if self.settings.dry_run:
            self.plan.add_failure(key, str(record.get("project_number") or ""), message)
        else:
            self.dead_letters.add(stream, schema, key_properties, json_ready(record), key, message)

    def _fail(
        self,
        record: Mapping[str, Any],
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        key: str,
        message: str,
    ) -> str:
        logger.error("project_expenses %s failed: %s", key or "(no source_key)", message)
        self.summary.fail(PROJECT_EXPENSES, key or None, message)
        if self.settings.dry_run:
            self.plan.add_failure(key, str(record.get("project_number") or ""), message)
        else:
            self.dead_letters.add(
                PROJECT_EXPENSES, schema, key_properties, json_ready(record), key, message
            )
        return "failed"


def _conflict_detail(key: str, decision: ExpenseDecision) -> str | None:
    if decision.action is not ExpenseAction.CONFLICT:
        return None
    fields = ", ".join(sorted(decision.changes))
    return (
        f"Expense {key} is already invoiced in Moment and differs from Fortnox in {fields}; it "
        "is left unchanged. Correct it in Moment (e.g. with a credit) if the change is real."
    )
