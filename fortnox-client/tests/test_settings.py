"""FortnoxSettings.from_config: defaults (docs/ARCHITECTURE.md), validation, secret-free repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from fortnox_client import FortnoxSettings, SettingsError


def test_defaults_follow_the_design() -> None:
    settings = FortnoxSettings.from_config({"client_id": "cid", "client_secret": "s3cret"})
    assert settings.api_url == "https://api.fortnox.se/3"
    assert settings.token_url == "https://apps.fortnox.se/oauth-v1/token"
    assert settings.token_store_path == Path(".secrets/fortnox-token.json")
    assert settings.max_requests_per_5s == 25
    assert settings.timeout == (10.0, 60.0)
    assert settings.refresh_token is None
    assert not settings.uses_client_credentials


def test_missing_required_settings_are_all_named() -> None:
    with pytest.raises(SettingsError) as info:
        FortnoxSettings.from_config({"client_id": " ", "api_url": "http://x"})
    assert "client_id" in str(info.value)
    assert "client_secret" in str(info.value)


def test_values_are_normalised() -> None:
    settings = FortnoxSettings.from_config(
        {
            "client_id": "cid",
            "client_secret": "s",
            "api_url": "http://127.0.0.1:5000/3/",
            "tenant_id": 1234567,
            "max_requests_per_5s": "0",
            "timeout": 5,
            "refresh_token": "",
        }
    )
    assert settings.api_url == "http://127.0.0.1:5000/3"
    assert settings.tenant_id == "1234567"
    assert settings.uses_client_credentials
    assert settings.max_requests_per_5s == 0
    assert settings.timeout == (5.0, 5.0)
    assert settings.refresh_token is None
    pair = FortnoxSettings.from_config({"client_id": "c", "client_secret": "s", "timeout": [3, 30]})
    assert pair.timeout == (3.0, 30.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_requests_per_5s", "many"), ("max_requests_per_5s", -1), ("timeout", "soon")],
)
def test_malformed_values_name_the_setting(key: str, value: object) -> None:
    with pytest.raises(SettingsError, match=key):
        FortnoxSettings.from_config({"client_id": "c", "client_secret": "s", key: value})


def test_repr_hides_secrets() -> None:
    settings = FortnoxSettings.from_config(
        {"client_id": "cid", "client_secret": "s3cret-value", "refresh_token": "RT-value"}
    )
    assert "s3cret-value" not in repr(settings)
    assert "RT-value" not in repr(settings)
    assert "cid" in repr(settings)
