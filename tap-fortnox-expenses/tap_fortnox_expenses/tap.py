"""The ``tap-fortnox-expenses`` Singer tap: settings, streams, and the run around them.

Owns the settings contract (DESIGN §4: the shared Fortnox settings plus ``lookback_days``,
``start_date``, ``account_numbers``, ``include_projects``), the one ``FortnoxClient`` a run uses,
secret redaction, and the run summary (skips per reason, requests) with the failure e-mail.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from fortnox_client import FortnoxClient, FortnoxSettings
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from sync_common import FailureMailer, RunSummary, install_secret_redaction

from tap_fortnox_expenses.streams import ProjectExpensesStream, ProjectsStream
from tap_fortnox_expenses.window import DEFAULT_LOOKBACK_DAYS

PLUGIN_NAME = "tap-fortnox-expenses"
SECRET_SETTINGS = ("client_secret", "refresh_token", "smtp_password")
# In sync order: a target needs a project (and its start date) before its expenses.
STREAM_TYPES: tuple[type[Stream], ...] = (ProjectsStream, ProjectExpensesStream)


class TapFortnoxExpenses(Tap):
    """Project expenses from booked, approved Fortnox supplier invoices, and Fortnox projects."""

    name = PLUGIN_NAME

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            default="https://api.fortnox.se/3",
            description="Fortnox API base URL",
        ),
        th.Property(
            "token_url",
            th.StringType,
            default="https://apps.fortnox.se/oauth-v1/token",
            description="Fortnox OAuth2 token endpoint",
        ),
        th.Property("client_id", th.StringType, required=True, description="Fortnox app client id"),
        th.Property(
            "client_secret",
            th.StringType,
            required=True,
            secret=True,
            description="Fortnox app client secret",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            description="Initial refresh token (seeds the token store when it is empty; rotated "
            "tokens live in the store)",
        ),
        th.Property(
            "tenant_id",
            th.StringType,
            description="Fortnox TenantId (DatabaseNumber) for the client-credentials "
            "service-account flow; no refresh token then",
        ),
        th.Property(
            "token_store_path",
            th.StringType,
            default=".secrets/fortnox-token.json",
            description="Token store file shared by every Fortnox plugin (never the Meltano "
            "config)",
        ),
        th.Property(
            "token_store_url",
            th.StringType,
            secret=True,
            description="PostgreSQL URL of a token store shared across machines "
            "(postgresql://user:password@host/db?tenant=NAME, one row per client and tenant); "
            "wins over token_store_path when set. Needs fortnox-client[postgres].",
        ),
        th.Property(
            "max_requests_per_5s",
            th.IntegerType,
            default=25,
            description="Client-side limit per client and tenant (Fortnox allows 25 per sliding "
            "5 s)",
        ),
        th.Property(
            "timeout",
            th.NumberType,
            default=60,
            description="Seconds to wait for each Fortnox answer (read timeout; connecting may "
            "take 10 s). A create that times out is looked up before it is sent again",
        ),
        th.Property(
            "max_tries",
            th.IntegerType,
            default=8,
            description="Tries per Fortnox request on 429, 5xx, timeouts and resets (1 = no "
            "retry); when they run out the run fails before its state is saved",
        ),
        th.Property(
            "max_retry_seconds",
            th.NumberType,
            default=60,
            description="Longest time spent retrying one Fortnox request (backoff with jitter)",
        ),
        th.Property(
            "notify_email",
            th.StringType,
            description="Address (or comma list) that gets one e-mail per run with failures",
        ),
        th.Property("smtp_host", th.StringType, description="SMTP server for the failure e-mail"),
        th.Property(
            "smtp_port", th.IntegerType, description="SMTP port (587 with STARTTLS, 25 without)"
        ),
        th.Property("smtp_username", th.StringType, description="SMTP user"),
        th.Property("smtp_password", th.StringType, secret=True, description="SMTP password"),
        th.Property("smtp_from", th.StringType, description="Sender address of the failure e-mail"),
        th.Property("smtp_starttls", th.BooleanType, description="Use STARTTLS"),
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
    ).to_dict()

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
        return RunSummary(plugin=PLUGIN_NAME, results_dir=self.config.get("results_dir", "output/"))

    # singer-sdk marks sync_all final, but it is the one place that sees the whole run (both
    # streams, and an error in either), which the run summary and the failure e-mail need. The
    # override only wraps the SDK's sync; it changes nothing in it.
    def sync_all(self) -> None:  # type: ignore[misc]
        """Sync both streams; whatever happens, write the run summary and mail it on failure.

        An exception (auth error, retries exhausted, unreadable invoice) propagates, so the tap
        exits non-zero without the final STATE: the bookmark never passes work not done.
        """
        install_secret_redaction(self._secret_values())
        summary = self.run_summary
        try:
            super().sync_all()
        except Exception as exc:
            if not summary.has_failures:
                summary.fail("run", None, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if "fortnox" in self.__dict__:
                stats = self.fortnox.stats
                summary.add_requests(
                    requests=stats.requests, rate_limited=stats.rate_limited, retries=stats.retries
                )
            summary.finish()
            FailureMailer.from_config(dict(self.config)).send_if_failed(summary)

    def _secret_values(self) -> list[str]:
        values: list[Any] = [self.config.get(key) for key in SECRET_SETTINGS]
        return [str(v) for v in values if v]


if __name__ == "__main__":
    TapFortnoxExpenses.cli()
