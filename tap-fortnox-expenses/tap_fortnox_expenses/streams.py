"""The tap's two Singer streams: ``projects`` (full table) and ``project_expenses``.

``project_expenses`` reads a window plus late postings, re-reading only new or changed supplier
invoices.

Owns the Singer semantics: records, the stream's bookmark (see :mod:`tap_fortnox_expenses.window`
for its shape) and the skip counts. All HTTP goes through the tap's ``FortnoxClient``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from fortnox_client import (
    FortnoxClient,
    FortnoxDataError,
    parse_fortnox_date,
    parse_fortnox_timestamp,
)
from singer_sdk import SchemaDirectory, Stream, StreamSchema
from sync_common import RunSummary
from sync_common.timezones import stockholm_now

from tap_fortnox_expenses import schemas
from tap_fortnox_expenses.expenses import (
    ExpenseFilters,
    project_expense_rows,
    removal_record,
)
from tap_fortnox_expenses.window import (
    FINGERPRINTS_KEY,
    ROW_KEYS_KEY,
    EmittedRowKeys,
    InvoiceFingerprints,
    SyncWindow,
    format_mark,
    invoice_fingerprint,
    parse_mark,
)

if TYPE_CHECKING:
    from singer_sdk.helpers import types

    from tap_fortnox_expenses.tap import TapFortnoxExpenses

SCHEMAS = SchemaDirectory(schemas)
PROJECT_STATUSES = frozenset({"NOTSTARTED", "ONGOING", "COMPLETED"})
# "Last changed" time stamps a supplier invoice payload may carry. Fortnox documents none for
# supplier invoices and the sandbox keeps its own internal, so ``invoice_modified`` is often null;
# it is informational only (the bookmark never depends on it).
MODIFIED_FIELDS = ("LastModified", "LastModifiedDate")


class FortnoxStream(Stream):
    """A stream reading through the tap's shared client and reporting to its run summary."""

    @property
    def fortnox_tap(self) -> TapFortnoxExpenses:
        return cast("TapFortnoxExpenses", self._tap)

    @property
    def client(self) -> FortnoxClient:
        return self.fortnox_tap.fortnox

    @property
    def summary(self) -> RunSummary:
        return self.fortnox_tap.run_summary


class ProjectsStream(FortnoxStream):
    """Every Fortnox project with its start date.

    Target-moment needs the start date, and a project without one is visible here instead of its
    expenses being lost silently. Full table: one list of pages, no single GETs.
    """

    name = "projects"
    primary_keys = ("project_number",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)

    def get_records(self, context: types.Context | None) -> Iterable[dict[str, Any]]:
        self.summary.add_stream(self.name)
        for project in self.client.list("projects"):
            yield project_record(project)


def project_record(project: Mapping[str, Any]) -> dict[str, Any]:
    """The ``projects`` record of a Fortnox project: ISO dates, an unknown status as null."""
    start, end = (
        parse_fortnox_date(project.get("StartDate")),
        parse_fortnox_date(project.get("EndDate")),
    )
    status = str(project.get("Status") or "").upper() or None
    return {
        "project_number": str(project["ProjectNumber"]),
        "description": project.get("Description") or None,
        "start_date": start.isoformat() if start else None,
        "end_date": end.isoformat() if end else None,
        "status": status if status in PROJECT_STATUSES else None,
    }


class ProjectExpensesStream(FortnoxStream):
    """One record per qualifying cost row of the supplier invoices in this run's window.

    The bookmark is not a value read from the records. Records are not sorted by
    ``invoice_modified`` (Fortnox lists by number, and the field is often unknown), so singer-sdk
    would keep per-record values as non-resumable ``progress_markers`` and promote their maximum
    (clamped to the stream's start) at the end, and a run that emits nothing would never move the
    mark. Instead the stream plans its high-water mark at the START of the run (minus an overlap)
    and writes it, with the invoice fingerprints, after the last invoice was read; singer-sdk then
    emits that state at the end of the stream. A run that fails part-way (auth error, retries
    exhausted) raises before that, so no STATE with the new mark is ever emitted.
    """

    name = "project_expenses"
    primary_keys = ("source_key",)
    # Declared so catalogs and Meltano see an INCREMENTAL stream keyed on modification time.
    replication_key = "invoice_modified"
    is_sorted = False
    schema = StreamSchema(SCHEMAS)

    @cached_property
    def window(self) -> SyncWindow:
        """Planned once per run, when the stream starts reading."""
        config = self.config
        start_date = config.get("start_date")
        previous = None
        if self.stream_state.get("replication_key") == self.replication_key:
            # Read the bookmark directly: the SDK's starting value would mix in ``start_date``,
            # which here is an invoice date for the window, not a modification time.
            previous = parse_mark(self.stream_state.get("replication_key_value"))
        return SyncWindow.plan(
            started_at=stockholm_now(),
            lookback_days=int(config.get("lookback_days", 30)),
            start_date=parse_fortnox_date(start_date) if start_date else None,
            previous_mark=previous,
        )

    @cached_property
    def filters(self) -> ExpenseFilters:
        return ExpenseFilters.from_config(self.config)

    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        # Records never move the bookmark (see the class docstring): ``_finish_run`` sets it once
        # every listed invoice was read. This also keeps null ``invoice_modified`` values from
        # logging a warning per record.
        return

    def get_records(self, context: types.Context | None) -> Iterable[dict[str, Any]]:
        window = self.window
        fingerprints = InvoiceFingerprints.from_state(self.stream_state)
        row_keys = EmittedRowKeys.from_state(self.stream_state)
        reasons: Counter[str] = Counter()
        listed = changed = emitted = removed = 0
        self.summary.add_stream(self.name)
        self.logger.info(
            "Reading supplier invoices dated %s..%s%s",
            window.from_date,
            window.to_date,
            f" and modified since {window.modified_since.isoformat()}"
            if window.modified_since
            else "",
        )
        for item in self._listed_invoices(window):
            listed += 1
            given_number = str(item["GivenNumber"])
            fingerprint = invoice_fingerprint(item)
            if fingerprints.is_unchanged(given_number, fingerprint):
                fingerprints.remember(given_number, fingerprint)
                row_keys.carry(given_number)
                continue
            changed += 1
            invoice = self._read_invoice(given_number, item)
            emitted_keys: list[str] = []
            if invoice is not None:
                modified = _modified_at(invoice)
                for outcome in project_expense_rows(invoice, self.filters, modified=modified):
                    if outcome.record is not None:
                        emitted += 1
                        emitted_keys.append(outcome.row_key)
                        yield outcome.record
                    else:
                        reason = cast("str", outcome.skip_reason)
                        reasons[reason] += 1
                        self.summary.skip(self.name, reason, key=outcome.source_key)
            # Rows emitted last time and not now: removed, moved or no longer expenses.
            for row_key in row_keys.removed(given_number, emitted_keys):
                removed += 1
                yield removal_record(int(given_number), row_key)
            row_keys.remember(given_number, emitted_keys)
            if invoice is None:
                # Gone between list and read (deleted draft): nothing to remember.
                continue
            # Only after its rows went out: a crash before this line re-reads the invoice next run.
            fingerprints.remember(given_number, fingerprint)

        self._finish_run(fingerprints, row_keys)
        self.logger.info(
            "project_expenses: %d supplier invoices listed, %d new or changed read with rows, "
            "%d unchanged skipped, %d expense rows emitted, %d removed rows sent as removals; "
            "rows not emitted by reason: %s",
            listed,
            changed,
            listed - changed,
            emitted,
            removed,
            ", ".join(f"{r}={n}" for r, n in sorted(reasons.items())) or "none",
        )

    def _listed_invoices(self, window: SyncWindow) -> Iterator[dict[str, Any]]:
        """The window's invoices, then late postings not already seen; each GivenNumber once.

        The window's list is filtered by ``InvoiceDate`` here too: Fortnox documents
        ``fromdate``/``todate`` only for invoices, orders, offers and vouchers, and a list that
        ignores them would otherwise bring (and have us read) every supplier invoice ever booked.
        Late postings (``lastmodified``) are taken whatever their date.
        """
        seen: set[str] = set()
        outside = 0
        for item in self.client.list("supplierinvoices", params=window.window_params()):
            if not window.dates(item):
                outside += 1
                continue
            given_number = str(item["GivenNumber"])
            if given_number not in seen:
                seen.add(given_number)
                yield item
        if outside:
            self.logger.warning(
                "Fortnox listed %d supplier invoices dated outside %s..%s although the list asked "
                "for that window (fromdate/todate not applied to supplier invoices); they were "
                "left out, and only invoices modified since the last run are read whatever their "
                "date",
                outside,
                window.from_date,
                window.to_date,
            )
        if (modified := window.modified_params()) is None:
            return
        for item in self.client.list("supplierinvoices", params=modified):
            given_number = str(item["GivenNumber"])
            if given_number not in seen:
                seen.add(given_number)
                yield item

    def _read_invoice(self, given_number: str, item: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            detail = self.client.get("supplierinvoices", given_number)
        except FortnoxDataError as exc:
            self.summary.fail(self.name, f"supplier invoice {given_number}", str(exc))
            # Stop before state: the next run reads this invoice again instead of losing it.
            exc.add_note(
                f"while reading supplier invoice {given_number}; the run stops without "
                "writing state, so the next run retries it"
            )
            raise
        if detail is None:
            return None
        # List-only fields (e.g. ``Cancel``, ``AuthorizerName``) complete the single GET.
        return {**item, **detail}

    def _finish_run(self, fingerprints: InvoiceFingerprints, row_keys: EmittedRowKeys) -> None:
        """Every listed invoice was read: move the bookmark to the mark.

        The invoices' fingerprints and the emitted row keys are kept.
        """
        state = self.stream_state
        state[FINGERPRINTS_KEY] = fingerprints.to_state()
        state[ROW_KEYS_KEY] = row_keys.to_state()
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = format_mark(self.window.high_water_mark)


def _modified_at(invoice: Mapping[str, Any]) -> datetime | None:
    for key in MODIFIED_FIELDS:
        if (value := parse_fortnox_timestamp(invoice.get(key))) is not None:
            return value
    return None
