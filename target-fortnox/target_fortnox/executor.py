"""Carrying out a decision (``decision``): the writer, or the dry-run planner.

Both take the same calls from the sinks, so a sink decides once and never asks whether the run is
a dry run. ``Writer`` creates (``sync_common.create_once``: never twice after an unanswered POST),
PUTs what changed, keeps the fingerprint ledger, counts outcomes in the run summary and keeps
failed records as dead letters. ``DryRunPlanner`` writes nothing: it adds each action to the plan
(``plan``) and counts it as skipped ("dry run: would be created"); a planned create is remembered
in the run's index so that later records of the plan (an invoice's customer) may rely on it.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fortnox_client import AmbiguousWriteError, FortnoxClient
from sync_common import DeadLetter, DeadLetters, RunSummary
from sync_common.create_once import CreatesUnanswered, create_once
from sync_common.target_base import Action

from target_fortnox.decision import Decision
from target_fortnox.existing import ExistingRecords, FingerprintLedger
from target_fortnox.mapping import MappedRecord, fingerprint, to_json_body
from target_fortnox.plan import Plan

# Rounds of POST → unanswered (5xx, timeout, reset) → look-up → absent, before the record fails
# alone: each look-up proves the earlier POST left nothing, so another POST is safe.
MAX_AMBIGUOUS_CREATES = 3

Outcome = tuple[str, str | None]


class RecordRejected(Exception):
    """The target itself refuses a record (e.g. its customer is missing); the message says why."""


class RunObjects(Protocol):
    """The per-run objects an executor works with (the target makes them on first use)."""

    @property
    def client(self) -> FortnoxClient: ...

    @property
    def ledger(self) -> FingerprintLedger: ...

    @property
    def summary(self) -> RunSummary: ...

    @property
    def dead_letters(self) -> DeadLetters: ...

    @property
    def plan(self) -> Plan: ...


class Write(Protocol):
    """What an executor needs of the sink whose record it carries out."""

    stream_name: str
    logger: logging.Logger
    answer: str | None

    @property
    def resource(self) -> str: ...

    @property
    def existing(self) -> ExistingRecords: ...

    def saved_answer(self, what: str, record: dict[str, Any] | None) -> str: ...


# After a create found the record already there: decide again against it (the sink's rule).
Settle = Callable[[MappedRecord, dict[str, Any], str], Outcome]


class Executor(abc.ABC):
    """Carries out decisions for one run; ``Writer`` and ``DryRunPlanner`` implement it."""

    # Whether an update may carry fields the list row lacks (decision.decide_register).
    sends_unlisted: bool

    def __init__(self, run: RunObjects) -> None:
        """Work with the run's objects (``run.client`` etc. are made on first use)."""
        self.run = run
        # The keys that failed in this run, per stream: an invoice whose customer is among them
        # fails with that reason rather than Fortnox's.
        self.failed_keys: dict[str, set[str]] = {}

    def fingerprint_matches(self, stream: str, key: str, payload: dict[str, Any]) -> bool:
        """Tell whether ``payload`` is what the ledger says was last written for ``key``."""
        return self.run.ledger.matches(stream, key, fingerprint(payload))

    @abc.abstractmethod
    def create(
        self, sink: Write, item: MappedRecord, fields: Sequence[str], settle: Settle
    ) -> Outcome:
        """Create the record (or plan it); ``settle`` decides again if it turns out to exist."""

    @abc.abstractmethod
    def carry_out(
        self, sink: Write, item: MappedRecord, decision: Decision, *, same: str = "unchanged"
    ) -> Outcome:
        """Carry out an update, unchanged or conflict; ``same`` is the outcome of unchanged."""

    @abc.abstractmethod
    def succeed(self, sink: Write, key: str, outcome: str, detail: str | None) -> None:
        """Count a record done with ``outcome``."""

    @abc.abstractmethod
    def fail(self, letter: DeadLetter, answer: str | None = None) -> None:
        """Count a record failed and keep it (``letter.error`` is logged by the caller)."""


class Writer(Executor):
    """Writes to Fortnox: the real run."""

    sends_unlisted = True

    def create(
        self, sink: Write, item: MappedRecord, fields: Sequence[str], settle: Settle
    ) -> Outcome:
        """POST the record; after an ambiguous failure look it up, and POST again only if absent."""
        body = to_json_body(item.payload)
        try:
            result = create_once(
                f"{sink.stream_name} {item.key}",
                lambda: self.run.client.create(sink.resource, body),
                lambda: sink.existing.refresh(item.key),
                ambiguous=AmbiguousWriteError,
                attempts=MAX_AMBIGUOUS_CREATES,
                log=sink.logger,
            )
        except CreatesUnanswered:
            # Every POST went unanswered and none left a record: this record fails alone (dead
            # letter, retried first next run) rather than the whole run.
            raise RecordRejected(
                f"{sink.stream_name} {item.key}: Fortnox did not answer {MAX_AMBIGUOUS_CREATES} "
                "creates of this record and a look-up after each found it absent, so it was not "
                "written. Nothing to fix in Moment: the next run retries it from the dead letters "
                "(check status.fortnox.se if it keeps failing)."
            ) from None
        if result.found is not None:
            return settle(item, result.found, "created")
        sink.existing.remember(item.key, result.created)
        sink.answer = sink.saved_answer("created", result.created)
        self.run.ledger.put(sink.stream_name, item.key, fingerprint(item.payload))
        return "created", None

    def carry_out(
        self, sink: Write, item: MappedRecord, decision: Decision, *, same: str = "unchanged"
    ) -> Outcome:
        """PUT an update's changed fields; note an unchanged record's fingerprint."""
        if decision.action is Action.CONFLICT:
            return "conflict", decision.detail
        if decision.action is Action.UNCHANGED:
            self.run.ledger.put(sink.stream_name, item.key, fingerprint(item.payload))
            return same, None
        updated = self.run.client.update(
            sink.resource, item.key, to_json_body(decision.changes, drop_empty=False)
        )
        sink.existing.remember(item.key, updated)
        sink.answer = sink.saved_answer("updated", updated)
        self.run.ledger.put(sink.stream_name, item.key, fingerprint(item.payload))
        return "updated", ", ".join(sorted(decision.changes))

    def succeed(self, sink: Write, key: str, outcome: str, detail: str | None) -> None:
        """Count the outcome (with Fortnox's answer) and resolve the record's dead letter."""
        if outcome == "conflict":
            sink.logger.warning("%s %s: conflict: %s", sink.stream_name, key, detail)
        self.run.summary.record(sink.stream_name, outcome, key, detail, answer=sink.answer)
        # A conflict is reported, not retried: re-sending cannot resolve it.
        self.run.dead_letters.resolve(sink.stream_name, key)

    def fail(self, letter: DeadLetter, answer: str | None = None) -> None:
        """Count the record failed and keep it as a dead letter, retried first next run."""
        self.run.summary.fail(letter.stream, letter.key, letter.error, answer=answer)
        self.run.dead_letters.add(
            letter.stream,
            letter.schema,
            letter.key_properties,
            letter.record,
            letter.key,
            letter.error,
        )


class DryRunPlanner(Executor):
    """Writes nothing: plans each action (reads only) and counts it as skipped."""

    # A plan names only the fields that really change: read the record before deciding.
    sends_unlisted = False

    def create(
        self, sink: Write, item: MappedRecord, fields: Sequence[str], settle: Settle
    ) -> Outcome:
        """Plan the create; remember it, as later records of the plan may rely on it."""
        body = to_json_body(item.payload)
        self.run.plan.add(sink.stream_name, item.key, "create", body)
        sink.existing.remember(item.key, body)
        return "created", None

    def carry_out(
        self, sink: Write, item: MappedRecord, decision: Decision, *, same: str = "unchanged"
    ) -> Outcome:
        """Plan the update (its changed fields), unchanged or conflict."""
        if decision.action is Action.CONFLICT:
            self.run.plan.add(sink.stream_name, item.key, "conflict", detail=decision.detail)
            return "conflict", decision.detail
        if decision.action is Action.UNCHANGED:
            self.run.plan.add(sink.stream_name, item.key, "unchanged")
            return same, None
        self.run.plan.add(
            sink.stream_name, item.key, "update", to_json_body(decision.changes, drop_empty=False)
        )
        return "updated", None

    def succeed(self, sink: Write, key: str, outcome: str, detail: str | None) -> None:
        """Count the record as skipped: what it would have been."""
        self.run.summary.skip(sink.stream_name, f"dry run: would be {outcome}", key)

    def fail(self, letter: DeadLetter, answer: str | None = None) -> None:
        """Plan the failure and count the record as skipped; no dead letter in a dry run."""
        self.run.plan.add(letter.stream, letter.key, "failed", detail=letter.error)
        self.run.summary.skip(letter.stream, "dry run: would fail", letter.key)
