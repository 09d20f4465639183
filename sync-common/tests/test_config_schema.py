"""plugin_config_schema: shared settings fragments merged in order, with a plugin's own words."""

from __future__ import annotations

import pytest
from sync_common import notify_settings_schema, plugin_config_schema, secret_setting_values

OWN = {
    "type": "object",
    "properties": {"results_dir": {"type": ["string", "null"], "default": "output/"}},
    "required": ["results_dir"],
    "$schema": "https://json-schema.org/draft/2020-12/schema",
}


def test_fragments_keep_their_order_required_list_and_dialect() -> None:
    schema = plugin_config_schema(notify_settings_schema(), OWN)
    assert list(schema["properties"]) == [
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
    ]
    assert schema["required"] == ["results_dir"]
    assert schema["$schema"] == OWN["$schema"]
    assert schema["properties"]["smtp_password"]["secret"] is True


def test_an_override_rewords_or_adds_a_default_in_singer_sdk_key_order() -> None:
    schema = plugin_config_schema(
        notify_settings_schema(),
        overrides={"smtp_starttls": {"default": True, "description": "Use STARTTLS."}},
    )
    starttls = schema["properties"]["smtp_starttls"]
    assert list(starttls) == ["type", "default", "description"]
    assert starttls["description"] == "Use STARTTLS."
    # The fragment itself is not changed: each plugin gets its own copy.
    assert "default" not in notify_settings_schema()["properties"]["smtp_starttls"]


def test_a_setting_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'notify_email' is declared by two"):
        plugin_config_schema(notify_settings_schema(), notify_settings_schema())


def test_an_override_of_an_undeclared_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="'smtp_hots', which no settings fragment declares"):
        plugin_config_schema(notify_settings_schema(), overrides={"smtp_hots": {"default": 1}})


def test_secret_setting_values_are_the_set_values_of_settings_marked_secret() -> None:
    schema = plugin_config_schema(notify_settings_schema(), OWN)
    config = {"smtp_password": "hemligt-123", "smtp_host": "mail.example.se", "results_dir": "x"}
    assert secret_setting_values(schema, config) == ["hemligt-123"]
    assert secret_setting_values(schema, {"smtp_password": ""}) == []
