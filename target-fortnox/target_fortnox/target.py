"""target-fortnox: settings, sinks per stream, and what happens around a run.

Owns: the settings (docs/ARCHITECTURE.md), which sink handles which stream, the per-run objects the
sinks share (Fortnox client, existing-record indexes, fingerprint ledger, run summary, dead letters,
dry-run plan, and the executor: the writer, or the dry-run planner), where the run store is (beside
the token store unless set: ``fortnox_client.run_store``), which dead letters are replayed before
new input, and draining streams in dependency order. The run's start and end (the run store opened
and refused if it would not outlive the run, no STATE in a dry run, the summary, plan or files,
failure e-mail and digest, an input that ended early because the tap failed) are both targets'
(``sync_common.target_base.SyncTarget``). Fatal errors (auth, transient errors after retries)
propagate out of the drain, which is before the SDK writes STATE, so the bookmark never passes a
record that was not written.
"""

from __future__ import annotations

import sys
from functools import cached_property
from typing import Any

from fortnox_client import FortnoxClient, FortnoxSettings, plugin_settings_schema
from fortnox_client.run_store import run_store_setting_overrides, run_store_settings
from singer_sdk import typing as th
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target
from sync_common import (
    DeadLetter,
    DeadLetters,
    RunStore,
    RunSummary,
    keep_days_setting,
    notify_settings_schema,
    plugin_config_schema,
    run_settings_schema,
    run_store_settings_schema,
)
from sync_common.target_base import SyncTarget, replayable_letters, target_settings_schema

from target_fortnox.executor import DryRunPlanner, Executor, Writer
from target_fortnox.existing import ExistingRecords, FingerprintLedger
from target_fortnox.plan import Plan
from target_fortnox.sinks import CustomerSink, InvoiceSink, ProjectSink, SkippedStreamSink

PLUGIN = "target-fortnox"
# Fortnox references run one way: invoices need customers (and projects), so drain in this order.
STREAM_ORDER = ("customers", "projects", "invoices")
SINKS: dict[str, type[Sink]] = {
    "customers": CustomerSink,
    "projects": ProjectSink,
    "invoices": InvoiceSink,
}


class TargetFortnox(SyncTarget, Target):
    """Upserts Moment customers, projects and invoices into Fortnox; Moment is master."""

    name = PLUGIN
    default_sink_class = SkippedStreamSink

    # The shared Fortnox and e-mail settings first (docs/ARCHITECTURE.md), in their shared words.
    config_jsonschema = plugin_config_schema(
        plugin_settings_schema(),
        notify_settings_schema(),
        target_settings_schema(PLUGIN),
        th.PropertiesList(
            th.Property(
                "push_invoices",
                th.BooleanType,
                default=True,
                description="Create Moment invoices in Fortnox (off: invoices are counted "
                "skipped).",
            ),
        ).to_dict(),
        run_settings_schema(),
        run_store_settings_schema(),
        overrides={
            **run_store_setting_overrides(
                "dead letters and the fingerprint ledger, which must outlive the worker"
            ),
            "smtp_starttls": {"default": True},
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One sink at a time, in STREAM_ORDER: an invoice batch must not race its customers.
        self.max_parallelism = 1
        self._indexes: dict[tuple[str, str], ExistingRecords] = {}
        self._letters_queued: set[str] = set()

    def open_run_store(self) -> RunStore:
        return run_store_settings(self.config).open()

    # --- settings ------------------------------------------------------------------------------

    @property
    def push_invoices(self) -> bool:
        return bool(self.config.get("push_invoices", True))

    # --- per-run objects -----------------------------------------------------------------------

    @cached_property
    def client(self) -> FortnoxClient:
        return FortnoxClient(FortnoxSettings.from_config(self.config))

    @cached_property
    def summary(self) -> RunSummary:
        summary = RunSummary(
            plugin=PLUGIN, results_dir=self.results_dir, keep_days=keep_days_setting(self.config)
        )
        for stream in STREAM_ORDER:
            summary.add_stream(stream)
        return summary

    @property
    def run_summary(self) -> RunSummary:
        return self.summary

    def run_client(self) -> FortnoxClient | None:
        return self.__dict__.get("client")

    @cached_property
    def dead_letters(self) -> DeadLetters:
        letters = DeadLetters(self.results_dir, PLUGIN, store=self.run_store)
        self.summary.dead_letters_at = letters.path or letters.location
        return letters

    @cached_property
    def ledger(self) -> FingerprintLedger:
        return FingerprintLedger(self.run_store, PLUGIN)

    @cached_property
    def plan(self) -> Plan:
        return Plan()

    @cached_property
    def executor(self) -> Executor:
        """The run's executor: the writer, or in a dry run the planner (``executor``)."""
        return DryRunPlanner(self) if self.dry_run else Writer(self)

    def existing(self, resource: str, key_field: str) -> ExistingRecords:
        """The run's one index of a Fortnox register (shared by sinks, kept across batches)."""
        index = self._indexes.get((resource, key_field))
        if index is None:
            index = self._indexes[(resource, key_field)] = ExistingRecords(
                self.client, resource, key_field
            )
        return index

    # --- sinks ---------------------------------------------------------------------------------

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        if stream_name == "invoices" and not self.push_invoices:
            return SkippedStreamSink
        return SINKS.get(stream_name, SkippedStreamSink)

    def skip_reason(self, stream_name: str) -> str:
        if stream_name == "invoices":
            return "push_invoices is off"
        return f"stream {stream_name!r} is not pushed to Fortnox"

    def drain_streams_before(self, stream_name: str) -> None:
        """Drain the sinks of streams that ``stream_name`` refers to, before its own batch.

        A full invoices batch is drained by the SDK on its own (``drain_one``), possibly while
        customers still wait in their sink; draining those first keeps references valid.
        """
        if stream_name not in STREAM_ORDER:
            return
        for upstream in STREAM_ORDER[: STREAM_ORDER.index(stream_name)]:
            if self.sink_exists(upstream):
                sink = self.get_sink(upstream)
                if sink.current_size:
                    self.drain_one(sink)

    # --- the run -------------------------------------------------------------------------------

    def dead_letters_to_replay(self, stream_name: str) -> list[DeadLetter]:
        """The pending dead letters of ``stream_name``, handed out once per run (not when dry).

        A sink queues them in ``setup()``, i.e. before any new record of its stream. A letter of
        a record that came without its key stays in the file and counts failed again: it cannot
        succeed until someone sets the key (in the source, or in the file, and replays it).
        """
        if self.dry_run or stream_name in self._letters_queued:
            return []
        self._letters_queued.add(stream_name)
        return replayable_letters(self.dead_letters, stream_name, self.summary, self.logger)

    # --- Singer protocol slips, per record (RecordGuard) --------------------------------------

    def expected_key_properties(self, stream: str) -> list[str]:
        sink = SINKS.get(stream)
        return [sink.moment_key] if sink is not None and hasattr(sink, "moment_key") else []

    def reject_record(
        self,
        stream: str,
        schema: dict[str, Any],
        key_properties: list[str],
        record: dict[str, Any],
        key: str,
        message: str,
    ) -> None:
        self.executor.fail(DeadLetter(stream, schema, key_properties, record, key, message))

    def count_record_without_schema(self, stream: str, key: str | None, message: str) -> None:
        self.summary.fail(stream, key, message)

    def replay_at_end_of_input(self) -> None:
        """Open the sinks of streams absent from the input whose dead letters wait (not dry)."""
        if self.dry_run:
            return
        for stream in STREAM_ORDER:
            letters = self.dead_letters.pending(stream)
            if letters and not self.sink_exists(stream):
                self.get_sink(
                    stream, schema=letters[0].schema, key_properties=letters[0].key_properties
                )

    def write_plan(self) -> None:
        path = self.plan.write(self.results_dir)
        self.plan.print()
        print(f"plan written to {path}", file=sys.stderr)

    def save_run_files(self) -> None:
        self.dead_letters.save()
        self.ledger.save()


if __name__ == "__main__":
    TargetFortnox.cli()
