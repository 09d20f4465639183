"""target-moment: the Singer target's settings, stream-to-sink routing and run lifecycle.

Settings: docs/ARCHITECTURE.md. A run: secrets are redacted from logging at start; records
flow through the sinks into one ``ExpenseImport``; at end of input the dead letters are retried
(if no expense arrived to trigger that earlier), the sinks drain and the SDK emits state; then the
run summary is written, the dead letters saved, the failure e-mail sent (new failures and
conflicts at once, the rest in the daily digest: ``sync_common.alerts``), and in dry run the plan
written and printed. An input that ended early because the tap failed is a stopped run
(``sync_common.tap_run``). A run-level error (auth, retries exhausted) writes the summary and e-mail
too, then fails the run before any state is emitted. The start and end of a run are both targets'
(``sync_common.target_base.SyncTarget``); this module says what is target-moment's own.
"""

from __future__ import annotations

from copy import deepcopy
from functools import cached_property
from typing import Any

from moment_client import (
    MomentAuthError,
    MomentClient,
    MomentSettings,
    MomentTransientError,
    connection_settings_schema,
    retry_settings_schema,
)
from moment_client.expense_api import DEFAULT_EXPENSE_PATH, EXPENSE_FIELDS, ExpenseApi
from singer_sdk import typing as th
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target
from sync_common import (
    DeadLetters,
    RunStore,
    RunStoreSettings,
    RunSummary,
    keep_days_setting,
    notify_settings_schema,
    plugin_config_schema,
    run_settings_schema,
    run_store_settings_schema,
)
from sync_common.target_base import SyncTarget, target_settings_schema

from target_moment.contract import KEY_PROPERTIES, PROJECT_EXPENSES, PROJECTS
from target_moment.dry_run import PLUGIN
from target_moment.expense_import import ExpenseImport, ImportSettings
from target_moment.sinks import FortnoxProjectsSink, IgnoredStreamSink, ProjectExpenseSink


class TargetMoment(SyncTarget, Target):
    """Writes Fortnox project expenses into Moment, idempotently (upsert by Fortnox source key)."""

    name = PLUGIN
    default_sink_class = IgnoredStreamSink

    # target-moment's settings (docs/ARCHITECTURE.md): the shared Moment and e-mail ones (in this
    # target's words) around its own. The SDK adds its built-ins to config_jsonschema, in place.
    own_settings = plugin_config_schema(
        connection_settings_schema(),
        retry_settings_schema(),
        th.PropertiesList(
            th.Property(
                "default_billable",
                th.BooleanType,
                default=True,
                description=(
                    "Whether imported expenses are billable when the Moment project's price "
                    "model does not say (priceModel.expensesBillable null)."
                ),
            ),
            th.Property(
                "expense_path",
                th.StringType,
                default=DEFAULT_EXPENSE_PATH,
                description=(
                    "Moment's path of project expenses, under /companies/{company_code}/. "
                    "Inferred (no public source shows it): the pre-flight check tests it; "
                    "see docs/MOMENT-API.md."
                ),
            ),
            th.Property(
                "expense_fields",
                th.ObjectType(),
                default={},
                description=(
                    "Moment's name of any expense field it names otherwise, as "
                    '{"our name": "Moment\'s name"}; our names: '
                    + ", ".join(EXPENSE_FIELDS)
                    + ". Inferred names; see docs/MOMENT-API.md."
                ),
            ),
        ).to_dict(),
        target_settings_schema(PLUGIN),
        run_settings_schema(),
        notify_settings_schema(),
        run_store_settings_schema(),
        overrides={
            "run_store_path": {
                "description": "Folder of the run store: the dead letters, which must outlive "
                "the worker (default: results_dir)."
            },
            "api_url": {"description": "Moment API base URL, up to and including /api/1.0."},
            "company_code": {
                "description": "Your Moment company code: the part after app.moment.team/ in "
                "your URL."
            },
            "api_key": {
                "description": "Moment API key (Company > API keys); sent as HTTP Basic "
                "apikey:<key>."
            },
            "timeout": {
                "description": "Seconds to wait for each Moment answer (a create that times out "
                "is looked up by its Fortnox source key before it is sent again)"
            },
            "notify_email": {
                "description": "E-mail address(es), comma separated, for the failure e-mail: new "
                "failures and conflicts at once, those that persist in a daily digest."
            },
            "smtp_starttls": {"description": "Use STARTTLS on the SMTP connection."},
        },
    )
    config_jsonschema = deepcopy(own_settings)

    # A run-level error is counted on the expenses; conflicts (an invoiced expense Fortnox
    # changed) must be corrected in Moment by someone: mailed when new, then in the digest.
    stop_stream = PROJECT_EXPENSES
    mail_conflicts = True

    def settings_schema(self) -> dict[str, Any]:
        return self.own_settings

    def open_run_store(self) -> RunStore:
        return RunStoreSettings.from_config(self.config, default_path=str(self.results_dir)).open()

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        if stream_name == PROJECTS:
            return FortnoxProjectsSink
        if stream_name == PROJECT_EXPENSES:
            return ProjectExpenseSink
        return IgnoredStreamSink

    @cached_property
    def expense_import(self) -> ExpenseImport:
        """The run's importer; created on first use so ``--about`` needs no results dir."""
        results_dir = self.results_dir
        summary = RunSummary(
            plugin=PLUGIN, results_dir=results_dir, keep_days=keep_days_setting(self.config)
        )
        dead_letters = DeadLetters(results_dir, PLUGIN, store=self.run_store)
        summary.dead_letters_at = dead_letters.path or dead_letters.location
        return ExpenseImport(
            client=MomentClient(MomentSettings.from_config(self.config)),
            summary=summary,
            dead_letters=dead_letters,
            settings=ImportSettings(
                default_billable=bool(self.config.get("default_billable", True)),
                dry_run=self.dry_run,
                expense_api=ExpenseApi.from_config(self.config),
            ),
        )

    # Singer protocol slips, per record (RecordGuard) ----------------------------------------
    def expected_key_properties(self, stream: str) -> list[str]:
        key = KEY_PROPERTIES.get(stream)
        return [key] if key else []

    def reject_record(
        self,
        stream: str,
        schema: dict[str, Any],
        key_properties: list[str],
        record: dict[str, Any],
        key: str,
        message: str,
    ) -> None:
        try:
            self.expense_import.reject(stream, record, schema, key_properties, key, message)
        except (MomentAuthError, MomentTransientError) as exc:
            # Retrying older dead letters first hit a run-level error: fail before any state.
            self.finish_run(exc)
            raise

    def count_record_without_schema(self, stream: str, key: str | None, message: str) -> None:
        self.expense_import.summary.fail(stream, key, message)

    def replay_at_end_of_input(self) -> None:
        # Dead letters are retried even when no new expense came (e.g. an empty window).
        self.expense_import.retry_dead_letters()

    @property
    def run_summary(self) -> RunSummary:
        return self.expense_import.summary

    def run_client(self) -> MomentClient:
        return self.expense_import.client

    def write_plan(self) -> None:
        plan = self.expense_import.plan
        path = plan.write(self.results_dir)
        plan.print()
        self.logger.info("Dry-run plan written to %s", path)

    def save_run_files(self) -> None:
        self.expense_import.dead_letters.save()
        self.expense_import.adopted.save()
