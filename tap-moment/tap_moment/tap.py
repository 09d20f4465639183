"""TapMoment: the tap's settings, its Moment client, its streams (Moment → Singer), and the run
around them: the run summary and the failure e-mail (Moment down, a revoked key), whose memory of
what was e-mailed is kept in the tap's run store (``run_store_url``, else ``run_store_path``,
default ``results_dir``), and the marks that tell target-fortnox how the tap ended
(``sync_common.tap_run``)."""

from __future__ import annotations

from functools import cached_property

from moment_client import (
    MAX_PAGE_SIZE,
    MomentClient,
    MomentSettings,
    connection_settings_schema,
    retry_settings_schema,
)
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from sync_common import (
    RunStoreSettings,
    RunSummary,
    keep_days_setting,
    notify_settings_schema,
    plugin_config_schema,
    reported_tap_run,
    run_settings_schema,
    run_store_settings_schema,
)

from tap_moment import streams

PLUGIN = "tap-moment"
DEFAULT_RESULTS_DIR = "output/"
# A target needs customers before the projects that refer to them, and both before invoices.
SYNC_ORDER = ("customers", "projects", "invoices")


class TapMoment(Tap):
    """Singer tap for Moment: customers, projects and finalised invoices, incremental."""

    name = PLUGIN

    # The shared Moment connection and retry settings (docs/ARCHITECTURE.md, "Settings") around
    # the tap's own, then the shared e-mail and run store settings.
    config_jsonschema = plugin_config_schema(
        connection_settings_schema(),
        th.PropertiesList(
            th.Property(
                "start_date",
                th.DateTimeType,
                description="Read records modified from this instant on when there is no bookmark",
            ),
            th.Property(
                "page_size",
                th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
                default=MAX_PAGE_SIZE,
                description=f"Records per list request (1-{MAX_PAGE_SIZE})",
            ),
        ).to_dict(),
        retry_settings_schema(),
        th.PropertiesList(
            th.Property(
                "lookback_minutes",
                th.IntegerType(minimum=0),
                default=5,
                description="Re-read this many minutes before the bookmark, so no late write is "
                "missed",
            ),
        ).to_dict(),
        notify_settings_schema(),
        th.PropertiesList(
            th.Property(
                "results_dir",
                th.StringType,
                default=DEFAULT_RESULTS_DIR,
                description="Run summaries go here (runs/<time>-tap-moment.json; need not outlive "
                "the worker)",
            ),
        ).to_dict(),
        run_settings_schema(),
        run_store_settings_schema(),
        overrides={
            "notify_email": {
                "description": "Address (or comma list) for the failure e-mail (Moment down, key "
                "refused): a new failure at once, failures that persist in a daily digest"
            },
            "run_store_path": {
                "description": "Folder of the run store: the memory of e-mailed failures, used "
                "when notify_email is set (default: results_dir)"
            },
        },
    )

    @cached_property
    def moment_client(self) -> MomentClient:
        """One client per run; built on first use, so discovery makes no request."""
        return MomentClient(MomentSettings.from_config(self.config))

    @cached_property
    def run_summary(self) -> RunSummary:
        results_dir = self.config.get("results_dir") or DEFAULT_RESULTS_DIR
        return RunSummary(
            plugin=PLUGIN, results_dir=results_dir, keep_days=keep_days_setting(self.config)
        )

    # singer-sdk marks sync_all final, but it is the one place that sees the whole run and an
    # error in any stream; the override only wraps the SDK's sync.
    def sync_all(self) -> None:  # type: ignore[misc]
        """Sync the streams; whatever happens, write the run summary, e-mail a failure (Moment
        down after the retries, a key Moment refuses) and say how the run ended.

        An exception propagates, so the tap exits non-zero without a STATE past the failure.
        """
        store = RunStoreSettings.from_config(
            self.config, default_path=self.config.get("results_dir") or DEFAULT_RESULTS_DIR
        )
        with reported_tap_run(
            self,
            self.run_summary,
            store,
            request_stats=lambda: (
                self.moment_client.stats if "moment_client" in self.__dict__ else None
            ),
        ):
            super().sync_all()

    def discover_streams(self) -> list[Stream]:
        return [
            streams.CustomersStream(self),
            streams.ProjectsStream(self),
            streams.InvoicesStream(self),
        ]

    @property
    def streams(self) -> dict[str, Stream]:
        """The streams in sync order (customers, projects, invoices).

        singer-sdk's ``load_streams`` (final) sorts streams by name, which would sync invoices
        before the projects they refer to; this re-orders its cached mapping once.
        """
        loaded = super().streams
        if tuple(loaded) != SYNC_ORDER:
            self._streams = {name: loaded[name] for name in SYNC_ORDER if name in loaded}
            return self._streams
        return loaded


if __name__ == "__main__":
    TapMoment.cli()
