"""The README's settings table is the one ``--about --format=markdown`` prints (no drift)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tap_fortnox_expenses.tap import TapFortnoxExpenses

README = Path(__file__).resolve().parents[1] / "README.md"
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


def test_readme_settings_table_matches_about(capsys: pytest.CaptureFixture[str]) -> None:
    TapFortnoxExpenses.print_about(output_format="markdown")
    about = capsys.readouterr().out
    rows = [
        line
        for line in about.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip() in SETTINGS
    ]
    assert [row.split("|")[1].strip() for row in rows] == list(SETTINGS)
    readme = README.read_text(encoding="utf-8")
    missing = [row for row in rows if row not in readme]
    assert not missing, "README settings table is stale; regenerate it from --about:\n" + "\n".join(
        missing
    )


def test_meltano_yml_declares_the_same_settings_and_secrets() -> None:
    meltano_yml = README.parents[1] / "meltano.yml"
    project = yaml.safe_load(meltano_yml.read_text(encoding="utf-8"))
    (plugin,) = [
        p for p in project["plugins"]["extractors"] if p["name"] == TapFortnoxExpenses.name
    ]
    # singer-sdk's own settings (stream maps) may be declared too, for `meltano config` and env.
    sdk_builtins = {"stream_maps", "stream_map_config"}
    declared = {s["name"]: s for s in plugin["settings"] if s["name"] not in sdk_builtins}
    assert list(declared) == list(SETTINGS)
    properties = TapFortnoxExpenses.config_jsonschema["properties"]
    for name in SETTINGS:
        assert bool(properties[name].get("secret")) == bool(declared[name].get("sensitive")), name
