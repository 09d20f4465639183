"""The README's settings table and input contract must match the code (no drift)."""

from __future__ import annotations

from pathlib import Path

from target_fortnox.contract import contract_markdown
from target_fortnox.target import TargetFortnox

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_holds_the_generated_input_contract() -> None:
    assert contract_markdown().strip() in README


# docs/ARCHITECTURE.md, Settings: the names are fixed (docs, meltano.yml and users rely on them).
DESIGN_SETTINGS = [
    "api_url",
    "token_url",
    "client_id",
    "client_secret",
    "refresh_token",
    "tenant_id",
    "token_store_path",
    "token_store_url",
    "max_requests_per_5s",
    "notify_email",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_from",
    "smtp_starttls",
    "results_dir",
    "dry_run",
    "push_invoices",
]
SECRETS = {"client_secret", "refresh_token", "token_store_url", "smtp_password"}


def test_settings_are_the_design_names_and_the_readme_lists_each_with_its_default() -> None:
    properties = TargetFortnox.config_jsonschema["properties"]
    for name in DESIGN_SETTINGS:
        assert name in properties, f"setting {name} missing from config_jsonschema"
        assert bool(properties[name].get("secret")) == (name in SECRETS), name
        row = next((line for line in README.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, f"setting {name} missing from the README settings table"
        assert str(properties[name].get("default", "None")) in row
