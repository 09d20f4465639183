"""Pre-flight probes of what the plugins assume about Moment and no public source settles.

Every Moment filter the plugins send, the project-state spelling, the project-expense path and
its field names are seen in a public client or inferred (docs/MOMENT-API.md). Each probe below
asks the real Moment one read-only question whose answer shows whether it behaves as assumed,
so a user learns on day one, before any write, what a run will meet:

- ``moment-filter-modified``: customers, projects and invoices modified after a date far in the
  future. Rows back → Moment ignores ``lastModifiedDateFrom``: tap-moment still emits the right
  rows (it checks the date itself) but reads everything on every run.
- ``moment-filter-invoice-state``: invoices with ``invoiceState=FINALIZED``. Drafts back → the
  filter is ignored (drafts are still never sent); no ``invoiceState`` field → no invoice would
  ever be sent (blocking).
- ``moment-project-states``: the states Moment's projects carry, and what each becomes in
  Fortnox; one not known is sent as ONGOING (a warning, never a failed project).
- ``moment-filter-project-number``: projects with a number that cannot exist. Rows back → the
  filter is ignored; each look-up reads every project and matches on our side.
- ``moment-expense-path``: a GET on the expense path. 404 → the path is not this Moment's
  (blocking: set ``expense_path``).
- ``moment-filter-external-reference``: expenses with a reference that cannot exist. Rows back →
  the filter is ignored; each look-up reads every expense and matches on our side. Also: do the
  expenses Moment sends carry the field names target-moment writes (``expense_fields``)?

Only the first page of each answer is read. The clients are passed in through the small protocol
below (``moment_client.MomentClient`` fits it), so a test can pass a stand-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Protocol

from sync_operator.connection_checks import error_status
from sync_operator.preflight import CheckResult, PreflightReport, run_check

DOC = "docs/MOMENT-API.md"
TAP_ENTITIES = ("customers", "projects", "invoices")
# Read at most this many rows of one answer: enough to see a filter ignored or the field names.
SAMPLE = 50


class MomentLister(Protocol):
    """What the checks need of a Moment client: listing an entity with query parameters."""

    def list(self, entity: str, params: Any = None) -> Iterable[dict[str, Any]]: ...


def _first(client: MomentLister, entity: str, params: Mapping[str, Any] | None = None) -> list[Any]:
    return list(islice(client.list(entity, params=dict(params or {})), SAMPLE))


def _impossible() -> str:
    return f"preflight-no-such-{uuid.uuid4().hex[:12]}"


def check_moment_reads(
    report: PreflightReport,
    client: MomentLister,
    known_state: Callable[[Any], str | None],
) -> None:
    """The probes of what tap-moment and target-fortnox assume (moment-to-fortnox pipeline).

    ``known_state`` maps a Moment project state to PLANNED/ONGOING/FINISHED, or None when it
    is not known (``target_fortnox.project_states.known_project_state``).
    """
    run_check(report, "moment-filter-modified", lambda: check_modified_filter(client))
    run_check(report, "moment-filter-invoice-state", lambda: check_invoice_state_filter(client))
    run_check(report, "moment-project-states", lambda: check_project_states(client, known_state))


def check_moment_expenses(
    report: PreflightReport,
    client: MomentLister,
    *,
    path: str,
    names: Mapping[str, str],
    settings_prefix: str,
) -> None:
    """The probes of what target-moment assumes (fortnox-expenses-to-moment pipeline).

    ``names``: Moment's name of each field target-moment writes (our name -> Moment's name).
    """
    run_check(report, "moment-filter-project-number", lambda: check_project_number_filter(client))
    path_ok = not run_check(
        report, "moment-expense-path", lambda: check_expense_path(client, path, settings_prefix)
    )[0].blocking
    if path_ok:
        run_check(
            report,
            "moment-filter-external-reference",
            lambda: check_reference_filter(client, path, names, settings_prefix),
        )


def check_modified_filter(client: MomentLister) -> CheckResult:
    """``moment-filter-modified``: whether Moment applies ``lastModifiedDateFrom``."""
    future = (datetime.now(UTC) + timedelta(days=3650)).isoformat(timespec="milliseconds")
    ignored = [e for e in TAP_ENTITIES if _first(client, e, {"lastModifiedDateFrom": future})]
    if ignored:
        return CheckResult(
            "moment-filter-modified",
            "warn",
            f"Moment answered {', '.join(ignored)} modified after {future[:10]}: it ignores "
            "lastModifiedDateFrom",
            "Nothing to fix: tap-moment checks the date itself and emits only changed rows, "
            "but every run reads all of them (slower, more requests). See " + DOC + ".",
            ignored,
        )
    empty = [e for e in TAP_ENTITIES if not _first(client, e)]
    if len(empty) == len(TAP_ENTITIES):
        return CheckResult(
            "moment-filter-modified",
            "warn",
            "cannot tell whether Moment applies lastModifiedDateFrom: it holds no customers, "
            "projects or invoices yet",
            "Run the pre-flight check again once Moment holds data.",
        )
    return CheckResult(
        "moment-filter-modified",
        "pass",
        "Moment applies lastModifiedDateFrom (nothing modified in the future came back)",
    )


def check_invoice_state_filter(client: MomentLister) -> CheckResult:
    """``moment-filter-invoice-state``: invoices carry ``invoiceState`` and Moment filters it."""
    rows = _first(client, "invoices", {"invoiceState": "FINALIZED"})
    if not rows:
        return CheckResult(
            "moment-filter-invoice-state",
            "warn",
            "cannot tell how Moment names an invoice's state: no finalised invoice came back",
            "Run the pre-flight check again once Moment holds a finalised invoice. See " + DOC,
        )
    if all("invoiceState" not in row for row in rows):
        return CheckResult(
            "moment-filter-invoice-state",
            "fail",
            "Moment's invoices carry no field invoiceState (an inferred name): tap-moment sends "
            "only invoices whose invoiceState is FINALIZED, so it would send none",
            "Report the field Moment uses for an invoice's state (see " + DOC + "); until "
            "then do not run the moment-to-fortnox job for invoices (push_invoices false).",
        )
    others = sorted({str(row.get("invoiceState")) for row in rows} - {"FINALIZED"})
    if others:
        return CheckResult(
            "moment-filter-invoice-state",
            "warn",
            f"Moment answered invoices in state {', '.join(others)} to invoiceState=FINALIZED: "
            "it ignores the filter",
            "Nothing to fix: tap-moment never emits an invoice that is not FINALIZED. See " + DOC,
            others,
        )
    return CheckResult(
        "moment-filter-invoice-state", "pass", "Moment applies invoiceState=FINALIZED"
    )


def check_project_states(
    client: MomentLister, known_state: Callable[[Any], str | None]
) -> CheckResult:
    """``moment-project-states``: every project state seen is one the pipeline knows."""
    rows = _first(client, "projects")
    if not rows:
        return CheckResult(
            "moment-project-states",
            "warn",
            "cannot tell how Moment spells project states: it holds no projects yet",
            "Run the pre-flight check again once Moment holds projects.",
        )
    states = sorted({str(row.get("projectState")) for row in rows})
    unknown = [s for s in states if known_state(s) is None]
    seen = ", ".join(f"{s} → {known_state(s) or 'ONGOING (not known)'}" for s in states)
    if unknown:
        return CheckResult(
            "moment-project-states",
            "warn",
            f"project states not known: {', '.join(unknown)} (seen: {seen})",
            "Projects in these states are sent to Fortnox as ONGOING and never fail. If one "
            "means planned or finished, report it (see " + DOC + ", project states).",
            unknown,
        )
    return CheckResult("moment-project-states", "pass", f"project states seen: {seen}")


def check_project_number_filter(client: MomentLister) -> CheckResult:
    """``moment-filter-project-number``: whether Moment applies the ``projectNumber`` filter."""
    rows = _first(client, "projects", {"projectNumber": _impossible()})
    if rows:
        return CheckResult(
            "moment-filter-project-number",
            "warn",
            "Moment answered projects to a projectNumber that cannot exist: it ignores the filter",
            "Nothing to fix: target-moment matches the project number itself, but each look-up "
            "reads every project (slower). See " + DOC + ".",
        )
    return CheckResult(
        "moment-filter-project-number", "pass", "Moment applies the projectNumber filter"
    )


def check_expense_path(client: MomentLister, path: str, prefix: str) -> CheckResult:
    """``moment-expense-path``: Moment answers on the (inferred) project-expense path."""
    try:
        _first(client, path)
    except Exception as exc:  # told apart by HTTP status below
        if error_status(exc) == 404:
            return CheckResult(
                "moment-expense-path",
                "fail",
                f"Moment answers 404 on the project-expense path {path!r}",
                f"The path is inferred (no public source shows it). Set {prefix}_EXPENSE_PATH "
                "(target-moment setting expense_path) to the path your Moment uses and run the "
                "pre-flight check again. See " + DOC + ".",
            )
        raise
    return CheckResult("moment-expense-path", "pass", f"Moment answers on {path!r}")


def check_reference_filter(
    client: MomentLister, path: str, names: Mapping[str, str], prefix: str
) -> CheckResult:
    """``moment-filter-external-reference``: expenses carry the fields and Moment filters them."""
    reference = names.get("externalReference", "externalReference")
    rows = _first(client, path, {reference: _impossible()})
    sample = rows or _first(client, path)
    # A JSON field left out when null cannot be told from a missing one: judged on all rows.
    wanted = [names.get(n, n) for n in ("externalReference", "expenseDate", "amount")]
    missing = [n for n in wanted if sample and all(n not in row for row in sample)]
    if missing:
        return CheckResult(
            "moment-filter-external-reference",
            "fail",
            f"Moment's expenses on {path!r} carry no field {', '.join(missing)}: target-moment "
            "would write them under names Moment does not know, and could never find its own "
            "expenses again",
            f"Set {prefix}_EXPENSE_FIELDS (target-moment setting expense_fields) to Moment's "
            'names, e.g. {"externalReference": "<Moment\'s name>"}. See ' + DOC + ".",
            missing,
        )
    if rows:
        return CheckResult(
            "moment-filter-external-reference",
            "warn",
            f"Moment answered expenses to a {reference} that cannot exist: it ignores the filter",
            "Nothing to fix: target-moment matches the reference itself (an expense without it "
            "never matches), but each look-up reads every expense (slower). See " + DOC + ".",
        )
    detail = f"Moment applies the {reference} filter"
    if not sample:
        detail += " (no expenses yet, so the field names could not be compared)"
    return CheckResult("moment-filter-external-reference", "pass", detail)
