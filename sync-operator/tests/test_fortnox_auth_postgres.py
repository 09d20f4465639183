"""``fortnox-auth status`` over a token store in PostgreSQL (the session's private cluster, the
Fortnox sandbox): it reads the row without refreshing and never shows the password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxSettings, TokenStore
from sandbox.postgres import PASSWORD, PostgresServer
from sync_operator.fortnox_auth import main

psycopg = pytest.importorskip("psycopg", reason="fortnox-client[postgres] (psycopg) not installed")


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresServer:
    """Return the session's PostgreSQL (the root conftest.py); each test uses its own tenant row."""
    return postgres_server


@pytest.fixture
def store_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """Return a URL whose tenant key is this test's own row."""
    return postgres.url() + f"?tenant={request.node.name[:60]}"


def _config(sandbox: Any, store_url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "api_url": f"{sandbox.url}/3",
        "token_url": f"{sandbox.url}/oauth-v1/token",
        "token_store_path": str(tmp_path / "never-written.json"),
        "token_store_url": store_url,
        "refresh_token": sandbox.admin("POST", "refresh-tokens", {})["refresh_token"],
    }


def _row(postgres: PostgresServer, tenant: str) -> dict[str, Any]:
    with psycopg.connect(postgres.url()) as conn:
        row = conn.execute(
            "SELECT document FROM fortnox_tokens WHERE client_id = %s AND tenant = %s",
            ("sandbox-client", tenant),
        ).fetchone()
    assert row is not None, f"no token row for tenant {tenant}"
    document: dict[str, Any] = row[0]
    return document


def _status_json(
    config: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "status-config.json"
    path.write_text(json.dumps(config))
    code = main(["status", "--json", "--config", str(path)])
    return code, json.loads(capsys.readouterr().out)


def test_status_reads_the_postgres_row_without_refreshing_or_showing_the_password(
    fortnox_sandbox: Any,
    postgres: PostgresServer,
    store_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _config(fortnox_sandbox, store_url, tmp_path)
    store = TokenStore(FortnoxSettings.from_config(config))
    store.access_token()
    tenant = store_url.rsplit("tenant=", 1)[1]
    before = _row(postgres, tenant)

    # status needs no secret: only the row's key (client id, tenant) and where the row is.
    reading = {k: config[k] for k in ("client_id", "token_store_url", "token_store_path")}
    code, status = _status_json(reading, tmp_path, capsys)
    assert code == 0
    assert status["status"] == "ok"
    assert status["tenant_id"] == "1234567"
    assert status["refresh_token_present"] is True
    assert status["token_store_path"] is None
    assert "fortnox_tokens" in status["token_store"]
    assert tenant in status["token_store"]
    assert PASSWORD not in json.dumps(status)
    assert status["refresh_token_days_left"] > 44
    assert _row(postgres, tenant) == before, "status must only read"

    # The human-readable form names the row, not a file.
    path = tmp_path / "status-config.json"
    assert main(["status", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Fortnox token store: postgresql://sandbox@" in text
    assert PASSWORD not in text


def test_status_of_an_empty_or_unreachable_postgres_store_fails_with_the_fix(
    fortnox_sandbox: Any,
    postgres: PostgresServer,
    store_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = {"client_id": "never-authorised-app", "token_store_url": store_url}
    code, status = _status_json(empty, tmp_path, capsys)
    assert code == 1
    assert status["status"] == "missing"
    assert "holds no refresh token. Run fortnox-auth authorize" in status["messages"][0]

    closed = f"postgresql://sandbox:{PASSWORD}@127.0.0.1:{postgres.port + 1}/postgres"
    code, status = _status_json(
        {"client_id": "sandbox-client", "token_store_url": closed}, tmp_path, capsys
    )
    assert code == 1
    assert "Check token_store_url" in status["messages"][0]
    assert PASSWORD not in json.dumps(status)

    path = tmp_path / "no-client.json"
    path.write_text(json.dumps({"token_store_url": store_url}))
    assert main(["status", "--config", str(path)]) == 1
    assert "set client_id" in capsys.readouterr().err
