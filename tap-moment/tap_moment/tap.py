"""TapMoment: the tap's settings, its Moment client and its streams (Moment → Singer)."""

from __future__ import annotations

from functools import cached_property

from moment_client import DEFAULT_API_URL, MAX_PAGE_SIZE, MomentClient, MomentSettings
from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from tap_moment import streams

# A target needs customers before the projects that refer to them, and both before invoices.
SYNC_ORDER = ("customers", "projects", "invoices")


class TapMoment(Tap):
    """Singer tap for Moment: customers, projects and finalised invoices, incremental."""

    name = "tap-moment"

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            description="Moment API base URL, up to and including /api/1.0",
        ),
        th.Property(
            "company_code",
            th.StringType,
            required=True,
            description="Moment company code: the first path part of your Moment URL",
        ),
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Moment API key (Company > API keys), sent as HTTP Basic apikey:<key>",
        ),
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
        th.Property(
            "timeout",
            th.NumberType,
            default=60,
            description="Seconds to wait for each Moment answer",
        ),
        th.Property(
            "max_tries",
            th.IntegerType,
            default=5,
            description="Tries per Moment request on 429, 5xx, timeouts and resets (1 = no "
            "retry); when they run out the run fails before its state is saved",
        ),
        th.Property(
            "lookback_minutes",
            th.IntegerType(minimum=0),
            default=5,
            description="Re-read this many minutes before the bookmark, so no late write is missed",
        ),
    ).to_dict()

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
