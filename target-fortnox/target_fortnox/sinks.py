"""Per-stream behaviour: how customers, projects and invoices are upserted into Fortnox.

Owns: batching (BatchSink, 500 records: the size of one Fortnox list page, so that a batch can
decide between one listing and single GETs), per-record validation against the input contract
and reading what Fortnox holds. What to do with a record is decided in ``decision`` (pure: create,
update what changed, unchanged, conflict) and carried out by the run's executor (``executor``:
the writer, which never POSTs a record twice and keeps dead letters, or the dry-run planner), so
a sink never asks whether the run is dry. Talks to Fortnox only through ``fortnox_client``; the
mapping itself lives in ``mapping``.

Why BatchSink rather than RecordSink: a RecordSink sees one record at a time and cannot know
whether listing a register (N/500 pages) is cheaper than one GET per record; a batch can. Batches
are drained in stream order (customers, projects, invoices) so that an invoice never goes before
the customer it needs; see ``FortnoxSink.process_batch``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar

import jsonschema
from fortnox_client import (
    FortnoxDataError,
    FortnoxError,
)
from singer_sdk.sinks import BatchSink
from sync_common import DeadLetter, ProgressReporter, RecordsAsSent
from sync_common import contract as shared_contract
from sync_common.target_base import Action

from target_fortnox.account_rules import refusal_breach
from target_fortnox.decision import decide_invoice, decide_register
from target_fortnox.executor import Executor, RecordRejected
from target_fortnox.existing import ExistingRecords
from target_fortnox.mapping import (
    CREDIT_LINK,
    CUSTOMER_FIELDS,
    PROJECT_FIELDS,
    MappedRecord,
    MappingError,
    map_customer,
    map_invoice,
    map_project,
)
from target_fortnox.project_states import known_project_state

if TYPE_CHECKING:
    from target_fortnox.target import TargetFortnox

PACKAGE = "target_fortnox"
RESERVED_CUSTOMER_NUMBER = 2000637
BATCH_SIZE = 500


def contract_schema(stream: str) -> dict[str, Any]:
    """The input contract (JSON Schema) the target validates ``stream``'s records against."""
    return shared_contract.contract_schema(PACKAGE, stream)


def contract_validator(stream: str) -> Any:
    """A validator for ``stream``'s contract, built (and its schema checked) once per process."""
    return shared_contract.contract_validator(PACKAGE, stream)


def validate_contract(stream: str, record: dict[str, Any]) -> None:
    """Raise the most relevant ``jsonschema.ValidationError`` (as ``jsonschema.validate`` does)."""
    error = jsonschema.exceptions.best_match(contract_validator(stream).iter_errors(record))
    if error is not None:
        raise error


# The record as plain JSON (the SDK may have parsed date-times and fractions).
jsonable_record = shared_contract.json_ready


class FortnoxSink(RecordsAsSent, BatchSink):
    """Upserts one stream into one Fortnox register, a batch of up to 500 records at a time.

    Records arrive as the tap sent them (``RecordsAsSent``: singer-sdk neither validates nor
    parses them, which would stop the run on one bad value); ``map_record`` checks each against
    the input contract and an invalid one fails alone.
    """

    MAX_SIZE_DEFAULT = BATCH_SIZE
    # A long push (10,000 customers at 25 requests per 5 s) logs "customers: 2500 done, 4.9/s"
    # at most this often, so an operator sees it is alive without a flood of lines.
    progress_interval_seconds: ClassVar[float] = 10.0
    resource: ClassVar[str]
    fortnox_key: ClassVar[str]
    moment_key: ClassVar[str]
    # Fields of Fortnox's answer kept in the record's history (``sync-report --record``): enough
    # to see what Fortnox holds, few enough to keep every run summary small.
    answer_fields: ClassVar[Sequence[str]]

    def __init__(
        self,
        target: TargetFortnox,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.fortnox_target = target
        # Writes, or plans in a dry run: the sink decides, the executor carries it out.
        self.executor: Executor = target.executor
        self.progress = ProgressReporter(
            stream_name, interval_seconds=self.progress_interval_seconds, log=self.logger
        )
        # What Fortnox answered about the record being upserted (its saved or stored fields).
        self.answer: str | None = None

    def setup(self) -> None:
        """Queue this stream's dead letters first: they are retried before any new record."""
        super().setup()
        for letter in self.fortnox_target.dead_letters_to_replay(self.stream_name):
            self.process_record(dict(letter.record), self._get_context(letter.record))
            self.tally_record_read()

    @property
    def existing(self) -> ExistingRecords:
        return self.fortnox_target.existing(self.resource, self.fortnox_key)

    # --- the batch -----------------------------------------------------------------------------

    def process_batch(self, context: dict[str, Any]) -> None:
        try:
            self._upsert_batch(context)
        except FortnoxError as exc:
            # Per-record errors were handled inside; what arrives here is fatal (auth, transient
            # after retries, a create still ambiguous after its look-up): the run stops before
            # STATE. Still write the summary and send the e-mail.
            self.logger.error("%s: stopping the run: %s", self.stream_name, exc)
            self.fortnox_target.finish_run(exc)
            raise

    def _upsert_batch(self, context: dict[str, Any]) -> None:
        # Upstream streams first: their pending records may be what this batch refers to.
        self.fortnox_target.drain_streams_before(self.stream_name)
        latest: dict[str, dict[str, Any]] = {}
        for record in context.get("records", []):
            key = str(record.get(self.moment_key))
            if key in latest:
                self.tally_duplicate_merged()
            latest[key] = record  # the later version of a record wins
        mapped: list[tuple[dict[str, Any], MappedRecord]] = []
        for key, record in latest.items():
            try:
                mapped.append((record, self.map_record(record)))
            except (jsonschema.ValidationError, MappingError) as exc:
                self.fail(record, key, self.describe_invalid(key, exc))
        self.existing.prepare(item.key for _, item in mapped)
        for record, item in mapped:
            for warning in item.warnings:
                self.logger.warning(warning)
            self.answer = None
            try:
                outcome, detail = self.upsert(item)
            except RecordRejected as exc:
                self.fail(record, item.key, str(exc))
                continue
            except FortnoxDataError as exc:
                self.fail(record, item.key, self.describe_refusal(item, exc), refused_answer(exc))
                continue
            self.succeed(item.key, outcome, detail)
        self.progress.tick(len(latest))

    def map_record(self, record: dict[str, Any]) -> MappedRecord:
        plain = jsonable_record(record)
        validate_contract(self.stream_name, plain)
        return self.to_fortnox(plain)

    @abc.abstractmethod
    def to_fortnox(self, record: dict[str, Any]) -> MappedRecord:
        """Map a validated Moment record to its Fortnox payload (``mapping``)."""

    @abc.abstractmethod
    def upsert(self, item: MappedRecord) -> tuple[str, str | None]:
        """Create, update or compare one record; returns (outcome, detail) for the summary."""

    def describe_invalid(self, key: str, exc: Exception) -> str:
        if isinstance(exc, jsonschema.ValidationError):
            where = ".".join(str(p) for p in exc.absolute_path) or "(record)"
            # The contract's description says what the field must hold (e.g. "ISO ... alpha-2").
            expected = exc.schema.get("description") if isinstance(exc.schema, dict) else None
            hint = f" (expected: {expected})" if expected else ""
            return (
                f"{self.stream_name} {key}: field {where!r} is invalid: {exc.message}{hint}; "
                "correct it in Moment"
            )
        return str(exc)

    def describe_refusal(self, item: MappedRecord, exc: FortnoxDataError) -> str:
        field = f" (field {exc.field})" if getattr(exc, "field", None) else ""
        # Fortnox's own text names the problem, not the fix; Moment is master, so the fix is there.
        return (
            f"{self.stream_name} {item.key}: Fortnox refused the record{field}: {exc} "
            "Correct the record in Moment (or Fortnox's register it refers to); the next run "
            "retries it from the dead letters."
        )

    # --- outcomes ------------------------------------------------------------------------------

    def succeed(self, key: str, outcome: str, detail: str | None = None) -> None:
        self.executor.succeed(self, key, outcome, detail)

    def fail(
        self, record: dict[str, Any], key: str, message: str, answer: str | None = None
    ) -> None:
        self.logger.error(message)
        self.executor.failed_keys.setdefault(self.stream_name, set()).add(key)
        letter = DeadLetter(
            self.stream_name,
            self.schema,
            list(self.key_properties or [self.moment_key]),
            jsonable_record(record),
            key,
            message,
        )
        self.executor.fail(letter, answer)

    # --- shared write steps --------------------------------------------------------------------

    def create(self, item: MappedRecord, fields: Sequence[str]) -> tuple[str, str | None]:
        """Create the record (the executor never POSTs it twice)."""
        return self.executor.create(
            self, item, fields, lambda item, found, same: self.settle(item, found, fields, same)
        )

    def settle(
        self,
        item: MappedRecord,
        existing: dict[str, Any],
        fields: Sequence[str],
        same: str = "unchanged",
    ) -> tuple[str, str | None]:
        """Decide against what Fortnox holds (``decision``) and carry it out.

        When the list row cannot tell (only a field it lacks could differ), one GET of the full
        record decides.
        """
        decide = partial(
            decide_register,
            item.payload,
            fields=fields,
            fingerprint_matches=self.executor.fingerprint_matches(
                self.stream_name, item.key, item.payload
            ),
            send_unlisted=self.executor.sends_unlisted,
        )
        decision = decide(existing) or decide(
            self.existing.full(item.key) or existing, complete=True
        )
        assert decision is not None
        return self.executor.carry_out(self, item, decision, same=same)

    def saved_answer(self, what: str, record: dict[str, Any] | None) -> str:
        """Fortnox's answer in a line: ``created: DocumentNumber 7012, Total 1250, OCR ...``."""
        fields = [
            f"{name} {_answer_value(record[name])}"
            for name in self.answer_fields
            if record and _given(name, record.get(name))
        ]
        return f"{what}: {', '.join(fields) or 'no fields in the answer'}"


class RegisterSink(FortnoxSink):
    """A register Moment masters (customers, projects).

    A record is created when Fortnox lacks the number, else only the ``fields`` that differ are PUT.
    """

    fields: ClassVar[Sequence[str]]

    def upsert(self, item: MappedRecord) -> tuple[str, str | None]:
        existing = self.existing.find(item.key)
        if existing is None:
            return self.create(item, self.fields)
        return self.settle(item, existing, self.fields)


class CustomerSink(RegisterSink):
    """Moment customers → Fortnox customers, by CustomerNumber."""

    resource = "customers"
    fortnox_key = "CustomerNumber"
    moment_key = "customerNumber"
    fields = CUSTOMER_FIELDS
    answer_fields = ("CustomerNumber", "Name")  # no e-mail or organisation number kept a year

    def to_fortnox(self, record: dict[str, Any]) -> MappedRecord:
        return map_customer(record)

    def describe_refusal(self, item: MappedRecord, exc: FortnoxDataError) -> str:
        if exc.code == RESERVED_CUSTOMER_NUMBER:
            return (
                f"customers {item.key}: Fortnox refuses customer number {item.key} because it is "
                "taken or reserved by a deleted Fortnox customer "
                f"(error {RESERVED_CUSTOMER_NUMBER}). "
                f"Give the customer another number in Moment, or ask Fortnox support to free "
                f"number {item.key}."
            )
        return super().describe_refusal(item, exc)


class ProjectSink(RegisterSink):
    """Moment projects → Fortnox projects, by ProjectNumber."""

    resource = "projects"
    fortnox_key = "ProjectNumber"
    moment_key = "projectNumber"
    fields = PROJECT_FIELDS
    answer_fields = ("ProjectNumber", "Description", "Status", "StartDate", "EndDate")

    @cached_property
    def unknown_states(self) -> set[str]:
        """Moment project states not known (docs/MOMENT-API.md), each said once per run."""
        return set()

    def to_fortnox(self, record: dict[str, Any]) -> MappedRecord:
        state = record.get("projectState")
        if known_project_state(state) is None and str(state) not in self.unknown_states:
            self.unknown_states.add(str(state))
            self.logger.warning(
                "Moment project state %r (first on project %s) is not one target-fortnox "
                "knows; such projects are sent to Fortnox as ONGOING. If Moment spells a "
                "state this way, see docs/MOMENT-API.md (project states). Said once per run.",
                state,
                record.get(self.moment_key),
            )
        return map_project(record)


class InvoiceSink(FortnoxSink):
    """Moment invoices and credit notes → Fortnox invoices, by DocumentNumber; never overwritten.

    A booked invoice is law: an invoice already in Fortnox is either identical (unchanged) or a
    conflict that is reported, never a PUT.
    """

    resource = "invoices"
    fortnox_key = "DocumentNumber"
    moment_key = "invoiceNumber"
    answer_fields = (
        "DocumentNumber",
        "CustomerNumber",
        "InvoiceDate",
        "Total",
        "OCR",
        CREDIT_LINK,  # a credit note: the invoice it credits
        "CreditInvoiceReference",  # an invoice: the credit invoice Fortnox made of it
        "Booked",
        "Cancelled",
    )

    def to_fortnox(self, record: dict[str, Any]) -> MappedRecord:
        return map_invoice(record)

    def describe_refusal(self, item: MappedRecord, exc: FortnoxDataError) -> str:
        """An account or project rule names the account, the setting and where to change it."""
        rows = item.payload.get("InvoiceRows") or []
        breach = refusal_breach(
            str(exc), (row.get("AccountNumber") for row in rows), item.payload.get("Project")
        )
        if breach is None:
            return super().describe_refusal(item, exc)
        return (
            f"invoices {item.key}: Fortnox refused the invoice: {breach.describe()}. "
            f"(Fortnox: {exc}) The next run retries it from the dead letters."
        )

    def upsert(self, item: MappedRecord) -> tuple[str, str | None]:
        failed_keys = self.executor.failed_keys
        customer = item.customer_number or ""
        if customer in failed_keys.get("customers", set()):
            raise _customer_error(item, customer, "failed in this run (see its error)")
        project = item.payload.get("Project")
        if project and project in failed_keys.get("projects", set()):
            raise RecordRejected(
                f"invoices {item.key}: needs Fortnox project {project}, which failed in this run "
                f"(see its error). Fix project {project} in Moment; the invoice is retried on the "
                "next run"
            )
        existing = self.existing.find(item.key)
        if existing is not None:
            return self.compare_existing(item, existing)
        customers = self.fortnox_target.existing("customers", "CustomerNumber")
        # Only when already known (no extra request): else Fortnox's own refusal says it.
        if customers.is_known(customer) and customers.find(customer) is None:
            raise _customer_error(item, customer, "does not exist in Fortnox")
        try:
            return self.create(item, ())
        except FortnoxDataError as exc:
            if "customer" in f"{exc.field} {exc}".lower():
                raise _customer_error(
                    item, customer, f"was not accepted by Fortnox ({exc})"
                ) from exc
            raise

    def compare_existing(
        self, item: MappedRecord, existing: dict[str, Any]
    ) -> tuple[str, str | None]:
        """An invoice already in Fortnox: unchanged, or a conflict reported (never a PUT)."""
        decide = partial(
            decide_invoice,
            item.key,
            item.payload,
            fingerprint_matches=self.executor.fingerprint_matches(
                self.stream_name, item.key, item.payload
            ),
        )
        decision = decide(existing) or decide(
            self.existing.full(item.key) or existing, complete=True
        )
        assert decision is not None
        if decision.action is Action.CONFLICT:
            self.answer = self.saved_answer("Fortnox holds", existing)
        return self.executor.carry_out(self, item, decision)


class SkippedStreamSink(RecordsAsSent, BatchSink):
    """Any stream the target does not push: its records are counted as skipped.

    Unknown streams, or invoices with push_invoices off, are never an error (whatever their
    values), so that the target composes with other taps.
    """

    MAX_SIZE_DEFAULT = BATCH_SIZE

    def __init__(
        self,
        target: TargetFortnox,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.fortnox_target = target

    def process_batch(self, context: dict[str, Any]) -> None:
        reason = self.fortnox_target.skip_reason(self.stream_name)
        for _ in context.get("records", []):
            self.fortnox_target.summary.skip(self.stream_name, reason)


def _given(name: str, value: Any) -> bool:
    # Fortnox answers 0 for "no reference" (CreditInvoiceReference of an invoice that credits none).
    return value not in (None, "") and not (name.endswith("Reference") and str(value) == "0")


def _answer_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def refused_answer(exc: FortnoxDataError) -> str:
    """Fortnox's refusal in a line: HTTP status, Fortnox's error code and its own message."""
    code = f" error {exc.code}" if exc.code is not None else ""
    status = f"HTTP {exc.status}" if exc.status is not None else "refused"
    return f"{status}{code}: {exc.fortnox_message or exc.message}"


def _customer_error(item: MappedRecord, customer: str, why: str) -> RecordRejected:
    return RecordRejected(
        f"invoices {item.key}: needs Fortnox customer {customer}, which {why}. Fix customer "
        f"{customer} in Moment (failed customers are retried from the dead letters); the invoice "
        "is retried on the next run"
    )
