"""TapMoment: the tap's settings, its Moment client and its streams (Moment → Singer)."""

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
from sync_common import plugin_config_schema

from tap_moment import streams

# A target needs customers before the projects that refer to them, and both before invoices.
SYNC_ORDER = ("customers", "projects", "invoices")


class TapMoment(Tap):
    """Singer tap for Moment: customers, projects and finalised invoices, incremental."""

    name = "tap-moment"

    # The shared Moment connection and retry settings (docs/ARCHITECTURE.md) around the tap's own.
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
    )

    @cached_property
    def moment_client(self) -> MomentClient:
        """One client per run; built on first use, so discovery makes no request."""
        return MomentClient(MomentSettings.from_config(self.config))

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
