"""The settings names are fixed (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from tap_fortnox_expenses.tap import TapFortnoxExpenses

# docs/ARCHITECTURE.md: the shared Fortnox settings, then this tap's own; the names are fixed.
SETTINGS = (
    "api_url",
    "token_url",
    "client_id",
    "client_secret",
    "refresh_token",
    "tenant_id",
    "token_store_path",
    "token_store_url",
    "max_requests_per_5s",
    "timeout",
    "max_tries",
    "max_retry_seconds",
    "notify_email",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_from",
    "smtp_starttls",
    "notify_digest_time",
    "notify_digest_timezone",
    "results_dir",
    "lookback_days",
    "start_date",
    "account_numbers",
    "include_projects",
    "runs_keep_days",
    "run_store_path",
    "run_store_url",
    "run_store_path_persists",
)


def test_settings_are_the_fixed_names_in_order() -> None:
    # The README's settings table and meltano.yml's settings (with `sensitive`) are written and
    # checked by scripts/plugin_settings.py (tests/test_plugin_settings.py).
    assert list(TapFortnoxExpenses.config_jsonschema["properties"]) == list(SETTINGS)
