"""The ``tap-fortnox-expenses`` Singer tap: settings, streams, and the run around them.

Owns the settings contract (docs/ARCHITECTURE.md: the Fortnox settings plus ``lookback_days``,
``start_date``, ``account_numbers``, ``include_projects``), the one ``FortnoxClient`` a run uses,
secret redaction, and the run summary (skips per reason, requests) with the failure e-mail, whose
memory of what was e-mailed is in the run store beside the token store.
"""

from __future__ import annotations

from functools import cached_property

from fortnox_client import FortnoxClient, FortnoxSettings, plugin_settings_schema
from fortnox_client.run_store import run_store_setting_overrides, run_store_settings
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from sync_common import (
    RunSummary,
    keep_days_setting,
    notify_settings_schema,
    plugin_config_schema,
    reported_tap_run,
    run_settings_schema,
    run_store_settings_schema,
)

from tap_fortnox_expenses.streams import ProjectExpensesStream, ProjectsStream
from tap_fortnox_expenses.window import DEFAULT_LOOKBACK_DAYS

PLUGIN_NAME = "tap-fortnox-expenses"
# In sync order: a target needs a project (and its start date) before its expenses.
STREAM_TYPES: tuple[type[Stream], ...] = (ProjectsStream, ProjectExpensesStream)


class TapFortnoxExpenses(Tap):
    """Project expenses from booked Fortnox supplier invoices, and Fortnox projects."""

    name = PLUGIN_NAME

    # Shared Fortnox and e-mail settings first (docs/ARCHITECTURE.md); e-mail in this tap's words.
    config_jsonschema = plugin_config_schema(
        plugin_settings_schema(),
        notify_settings_schema(),
        th.PropertiesList(
            th.Property(
                "results_dir",
                th.StringType,
                default="output/",
                description="Run summaries go here (runs/<time>-tap-fortnox-expenses.json)",
            ),
            th.Property(
                "lookback_days",
                th.IntegerType,
                default=DEFAULT_LOOKBACK_DAYS,
                description="Days of supplier invoices (by invoice date) re-listed every run: the "
                "window",
            ),
            th.Property(
                "start_date",
                th.DateType,
                description="Fixed from-date (invoice date) for a backfill; replaces lookback_days",
            ),
            th.Property(
                "account_numbers",
                th.ArrayType(th.IntegerType),
                description="Only cost rows on these accounts (default: all cost accounts)",
            ),
            th.Property(
                "include_projects",
                th.ArrayType(th.CustomType({"type": ["string", "integer"]})),
                description="Only expenses on these project numbers (default: all projects)",
            ),
        ).to_dict(),
        run_settings_schema(),
        run_store_settings_schema(),
        overrides={
            "notify_email": {
                "description": "Address (or comma list) for the failure e-mail: a new failure at "
                "once, failures that persist in a daily digest"
            },
            "smtp_host": {"description": "SMTP server for the failure e-mail"},
            "smtp_port": {"description": "SMTP port (587 with STARTTLS, 25 without)"},
            "smtp_username": {"description": "SMTP user"},
            "smtp_password": {"description": "SMTP password"},
            "smtp_from": {"description": "Sender address of the failure e-mail"},
            "smtp_starttls": {"description": "Use STARTTLS"},
            **run_store_setting_overrides(
                "the memory of e-mailed failures, used when notify_email is set"
            ),
        },
    )

    def discover_streams(self) -> list[Stream]:
        return [stream_type(self) for stream_type in STREAM_TYPES]

    @property
    def streams(self) -> dict[str, Stream]:
        # singer-sdk's (final) load_streams sorts streams by name, which would put
        # project_expenses before projects; the contract with target-moment is projects first.
        streams = super().streams
        order = [ProjectsStream.name, ProjectExpensesStream.name]
        return {name: streams[name] for name in sorted(streams, key=order.index)}

    @cached_property
    def fortnox(self) -> FortnoxClient:
        """One client per run: its limiter and token store are shared process-wide anyway."""
        return FortnoxClient(FortnoxSettings.from_config(self.config))

    @cached_property
    def run_summary(self) -> RunSummary:
        return RunSummary(
            plugin=PLUGIN_NAME,
            results_dir=self.config.get("results_dir", "output/"),
            keep_days=keep_days_setting(self.config),
        )

    # singer-sdk marks sync_all final, but it is the one place that sees the whole run (both
    # streams, and an error in either), which the run summary and the failure e-mail need. The
    # override only wraps the SDK's sync; it changes nothing in it.
    def sync_all(self) -> None:  # type: ignore[misc]
        """Sync both streams; whatever happens, write the run summary and mail it on failure.

        An exception (auth error, retries exhausted, unreadable invoice) propagates, so the tap
        exits non-zero without the final STATE: the bookmark never passes work not done. The
        tap's output says how it ended (``sync_common.tap_run``), so target-moment can tell.
        """
        # The memory of e-mailed failures is in the run store beside the token store.
        with reported_tap_run(
            self,
            self.run_summary,
            run_store_settings(self.config),
            request_stats=lambda: self.fortnox.stats if "fortnox" in self.__dict__ else None,
        ):
            super().sync_all()


if __name__ == "__main__":
    TapFortnoxExpenses.cli()
