"""Per-stream behaviour: what each incoming stream means to target-moment.

- ``FortnoxProjectsSink`` (``projects``): keeps each Fortnox project's start date; writes nothing.
- ``ProjectExpenseSink`` (``project_expenses``): retries dead letters first, then imports each
  expense through the run's ``ExpenseImport`` (which calls ``moment_client``).
- ``IgnoredStreamSink``: any other stream a composed tap may send; counted and logged once, so a
  pipeline that grows a stream does not break this target.

All three are ``RecordSink``s: Moment has no bulk endpoint, and writing each record before the next
keeps the at-least-once contract simple (state follows only fully written records). Records arrive
as the tap sent them (``RecordsAsSent``: singer-sdk neither validates them against the tap's SCHEMA
nor parses their dates, either of which would stop the run on one bad value); the import checks
each against the input contract (``contract.check_record``) and an invalid one fails alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from moment_client import MomentAuthError, MomentTransientError
from singer_sdk.sinks import RecordSink
from sync_common import RecordsAsSent

from target_moment.contract import KEY_PROPERTIES

if TYPE_CHECKING:
    from target_moment.expense_import import ExpenseImport
    from target_moment.target import TargetMoment


class _MomentSink(RecordsAsSent, RecordSink):
    """Gives the sinks the run's ``ExpenseImport``, created by the target on first use."""

    def __init__(
        self,
        target: TargetMoment,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        # The SDK keeps no reference to the target; the run lives there.
        self.moment_target = target

    @property
    def expense_import(self) -> ExpenseImport:
        return self.moment_target.expense_import


class FortnoxProjectsSink(_MomentSink):
    """``projects`` from tap-fortnox-expenses: only their start dates matter here."""

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.expense_import.add_fortnox_project(record)


class ProjectExpenseSink(_MomentSink):
    """``project_expenses``: upserted into Moment by source key (``externalReference``)."""

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        run = self.expense_import
        # Dead letters first: the projects stream (sent before expenses) is known by now, so a
        # project that got its start date since the last run lets its expenses through.
        try:
            run.retry_dead_letters()
            key_properties = list(self.key_properties or [KEY_PROPERTIES["project_expenses"]])
            run.import_expense(record, self.schema, key_properties)
        except (MomentAuthError, MomentTransientError) as exc:
            # Run-level: write the summary and e-mail now, then fail before any state is emitted.
            self.moment_target.finish_run(exc)
            raise


class IgnoredStreamSink(RecordsAsSent, RecordSink):
    """A stream target-moment does not write; its records are counted and dropped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ignored = 0
        self.logger.warning(
            "Stream %r is not one target-moment writes (it takes 'projects' and "
            "'project_expenses'); its records are ignored.",
            self.stream_name,
        )

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.ignored += 1
