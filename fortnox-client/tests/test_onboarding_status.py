"""``fortnox-auth status``: tenant, scopes, rotation and expiry from the token store, no tokens.

Stores are written by :class:`TokenStore` itself with a clock set back, so the file format is the
real one and the rotation time is what a chain that old would carry.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxSettings, TokenStore
from fortnox_client.cli import main
from fortnox_client.onboarding import token_status
from fortnox_client.token_store import write_private_json_atomically

TENANT = "7654321"  # the tenantId claim of the tests' JWTs (see conftest.make_jwt)
SCOPES = "customer project invoice"
DAY = 86400.0


def _write_chain(path: Path, jwt_factory: Any, *, rotated_days_ago: float) -> dict[str, str]:
    """A refresh-token chain last rotated ``rotated_days_ago`` days ago; returns its tokens."""
    rotated = time.time() - rotated_days_ago * DAY
    settings = FortnoxSettings(client_id="c", client_secret="s", token_store_path=path)
    access = jwt_factory(expires_in=3600 - rotated_days_ago * DAY)
    reply = {"access_token": access, "refresh_token": "RT-status-secret", "scope": SCOPES}
    TokenStore(settings, clock=lambda: rotated).store_authorization(reply)
    return {"access": access, "refresh": "RT-status-secret"}


def _reader(path: Path) -> TokenStore:
    """The store at ``path`` as ``status`` opens it: no secret, only read."""
    return TokenStore(FortnoxSettings(client_id="", client_secret="", token_store_path=path))


def _status(store: Path, *extra: str) -> list[str]:
    """``status`` argv with a config file (beside the store) naming ``store``."""
    store.parent.mkdir(parents=True, exist_ok=True)
    config = store.with_name("status-config.json")
    config.write_text(json.dumps({"token_store_path": str(store)}))
    return ["status", "--config", str(config), *extra]


def test_status_of_a_fresh_chain(
    tmp_path: Path, jwt_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store" / "token.json"
    tokens = _write_chain(store, jwt_factory, rotated_days_ago=2)

    assert main(_status(store, "--warn-exit")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"Tenant (DatabaseNumber):    {TENANT}" in out
    assert f"Scopes:                     {SCOPES}" in out
    assert "Refresh token last rotated: " in out
    assert "(2.0 days ago)" in out
    assert "(in 43.0 days)" in out
    # The access token of a 2-day-old rotation expired long ago; the next run refreshes it.
    assert "(the next run refreshes it)" in out
    assert "WARNING" not in out
    assert tokens["access"] not in out
    assert tokens["refresh"] not in out


def test_status_warns_under_seven_days_and_warn_exit_says_so(
    tmp_path: Path, jwt_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "token.json"
    _write_chain(store, jwt_factory, rotated_days_ago=40)

    assert main(_status(store)) == 0
    out, _ = capsys.readouterr()
    assert "WARNING: the refresh token expires in 5.0 days" in out
    assert "Run any Fortnox job" in out

    assert main(_status(store, "--warn-exit")) == 2


def test_status_json_has_dates_and_no_tokens(
    tmp_path: Path, jwt_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "token.json"
    tokens = _write_chain(store, jwt_factory, rotated_days_ago=40)

    assert main(_status(store, "--json", "--warn-exit")) == 2
    text = capsys.readouterr().out
    report = json.loads(text)
    assert report["status"] == "warning"
    assert report["tenant_id"] == TENANT
    assert report["scopes"] == SCOPES.split()
    assert report["refresh_token_present"] is True
    rotated = datetime.fromisoformat(report["refresh_token_rotated_at"])
    expires = datetime.fromisoformat(report["refresh_token_expires_at"])
    assert expires - rotated == timedelta(days=45)
    assert 4.9 < report["refresh_token_days_left"] < 5.1
    assert report["access_token_expires_at"] is not None
    assert tokens["access"] not in text
    assert tokens["refresh"] not in text


def test_status_of_an_expired_chain_fails_with_what_to_do(
    tmp_path: Path,
    jwt_factory: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MELTANO_ENVIRONMENT", raising=False)
    store = tmp_path / "token.json"
    _write_chain(store, jwt_factory, rotated_days_ago=50)

    assert main(_status(store)) == 1
    _, err = capsys.readouterr()
    assert "ERROR: the refresh token expired 5.0 days ago" in err
    assert "Run fortnox-auth authorize" in err


def test_status_of_an_expired_chain_under_meltano_names_the_meltano_command(
    tmp_path: Path,
    jwt_factory: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`meltano --environment prod invoke target-fortnox:status` runs this with
    MELTANO_ENVIRONMENT=prod: the fix it prints is the command that works there as written."""
    monkeypatch.setenv("MELTANO_ENVIRONMENT", "prod")
    store = tmp_path / "token.json"
    _write_chain(store, jwt_factory, rotated_days_ago=50)

    assert main(_status(store)) == 1
    _, err = capsys.readouterr()
    assert "Run meltano --environment prod invoke target-fortnox:authorize to give" in err


def test_status_without_a_store_says_how_to_create_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MELTANO_ENVIRONMENT", raising=False)
    assert main(_status(tmp_path / "none" / "token.json")) == 1
    _, err = capsys.readouterr()
    assert "no token store at" in err
    assert "fortnox-auth authorize" in err


def test_status_lists_service_account_tokens(tmp_path: Path, jwt_factory: Any) -> None:
    store = tmp_path / "token.json"
    expires = time.time() + 1800
    write_private_json_atomically(
        store,
        {
            "version": 1,
            "client_credentials": {
                "1234567": {
                    "access_token": jwt_factory(),
                    "expires_at": expires,
                    "rotated_at": None,
                    "scope": "customer settings",
                    "tenant_id": "1234567",
                }
            },
        },
    )
    status = token_status(_reader(store))
    assert status.level == "ok"
    assert not status.has_chain
    text = "\n".join(status.lines())
    assert "Service account, tenant 1234567: access token" in text
    assert "scopes customer settings" in text
    assert status.as_json()["service_accounts"][0][
        "access_token_expires_at"
    ] == datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")


def test_status_of_a_store_without_rotation_time_is_not_alarming(tmp_path: Path) -> None:
    store = tmp_path / "token.json"
    write_private_json_atomically(
        store,
        {
            "version": 1,
            "refresh_token_grant": {
                "access_token": "a",
                "expires_at": 0,
                "refresh_token": "r",
                "rotated_at": None,
                "scope": None,
                "tenant_id": None,
            },
        },
    )
    status = token_status(_reader(store))
    assert status.level == "ok"
    assert status.refresh_expires_at is None
    assert "expiry is unknown" in "\n".join(status.lines())


def test_status_reports_a_corrupt_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "token.json"
    store.write_text("{not json")
    assert main(_status(store)) == 1
    assert "is not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["authorize", "--port", "70000"],
        ["authorize", "--timeout", "0"],
        ["status", "--no-such-option"],
        [],
    ],
)
def test_bad_command_lines_exit_64_not_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 means "expires soon" for status --warn-exit, so usage errors must not use it.
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 64
    assert "usage: fortnox-auth" in capsys.readouterr().err


def test_settings_come_from_a_dotenv_file_and_the_environment_wins(
    tmp_path: Path,
    jwt_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.startswith(("TARGET_FORTNOX_", "TAP_FORTNOX_EXPENSES_")):
            monkeypatch.delenv(name)
    in_dotenv, in_environment = tmp_path / "dotenv.json", tmp_path / "environment.json"
    _write_chain(in_dotenv, jwt_factory, rotated_days_ago=1)
    _write_chain(in_environment, jwt_factory, rotated_days_ago=1)
    (tmp_path / ".env").write_text(
        f"TARGET_FORTNOX_TOKEN_STORE_PATH={in_dotenv}\nTARGET_FORTNOX_CLIENT_ID=from-dotenv\n"
    )
    project = tmp_path / "project" / "sub"  # .env is found in a parent, as singer-sdk does
    project.mkdir(parents=True)
    monkeypatch.chdir(project)

    assert main(["status", "--json", "--config", "ENV"]) == 0
    assert json.loads(capsys.readouterr().out)["token_store_path"] == str(in_dotenv)

    monkeypatch.setenv("TARGET_FORTNOX_TOKEN_STORE_PATH", str(in_environment))
    assert main(["status", "--json"]) == 0  # no --config means ENV
    assert json.loads(capsys.readouterr().out)["token_store_path"] == str(in_environment)
