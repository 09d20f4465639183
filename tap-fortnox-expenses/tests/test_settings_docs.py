"""The settings names are fixed (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from typing import Any

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
    # singer-sdk appends its built-in settings (stream_maps, flattening, batch_config, ...) to the
    # class's config_jsonschema in place the first time a tap is built, so whether they are there
    # depends on which test ran first: compare the tap's own names, and the rest with the SDK's.
    builtin: dict[str, Any] = {"type": "object", "properties": {}}
    TapFortnoxExpenses.append_builtin_config(builtin)
    names = list(TapFortnoxExpenses.config_jsonschema["properties"])
    assert [name for name in names if name not in builtin["properties"]] == list(SETTINGS)
    assert set(names) - set(SETTINGS) <= set(builtin["properties"])
