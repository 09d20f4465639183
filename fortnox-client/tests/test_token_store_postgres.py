"""PostgresTokenStore against a real PostgreSQL server and the real Fortnox sandbox.

The server is a private cluster started for this module (``sandbox.postgres.PostgresServer``:
Debian's initdb + pg_ctl on a temp directory and a free port). The module is skipped, saying why,
only when the PostgreSQL binaries are not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxSettings, FortnoxTokenUnavailable, SettingsError, TokenStore
from fortnox_client.rate_limiter import IN_FLIGHT_POLL
from fortnox_client.token_store_postgres import PostgresWindow, _parse_url
from sandbox.postgres import PASSWORD, PostgresServer

psycopg = pytest.importorskip("psycopg", reason="fortnox-client[postgres] (psycopg) not installed")


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresServer:
    """The session's PostgreSQL (the root conftest.py); each test uses its own tenant row."""
    return postgres_server


@pytest.fixture
def store_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A URL whose tenant key is this test's own row."""
    return postgres.url() + f"?tenant={request.node.name[:60]}"


@pytest.fixture
def sandbox(fortnox_sandbox: Any) -> Any:
    return fortnox_sandbox


def _config(sandbox: Any, store_url: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "api_url": f"{sandbox.url}/3",
        "token_url": f"{sandbox.url}/oauth-v1/token",
        "token_store_path": str(tmp_path / "never-written.json"),
        "token_store_url": store_url,
        "refresh_token": sandbox.admin("POST", "refresh-tokens", {})["refresh_token"],
        **overrides,
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


def test_token_store_url_selects_postgres_and_wins_over_the_path(
    sandbox: Any, postgres: PostgresServer, store_url: str, tmp_path: Path
) -> None:
    settings = FortnoxSettings.from_config(_config(sandbox, store_url, tmp_path))
    store = TokenStore(settings)
    assert type(store).__name__ == "PostgresTokenStore"
    token = store.access_token()

    assert not (tmp_path / "never-written.json").exists()
    tenant = store_url.rsplit("tenant=", 1)[1]
    saved = _row(postgres, tenant)["refresh_token_grant"]
    assert saved["access_token"] == token
    assert saved["tenant_id"] == "1234567"
    # A second store (another plugin, another machine) uses the stored token: no new refresh.
    again = TokenStore(settings)
    assert again.access_token() == token
    assert again.refreshes == 0
    # The password never shows up where a log or error could carry it.
    assert PASSWORD not in repr(store)
    assert PASSWORD not in store.location
    assert PASSWORD not in repr(settings)


_PROCESS_SCRIPT = """
import json, sys
from fortnox_client import FortnoxSettings, TokenStore
settings = FortnoxSettings.from_config(json.loads(sys.argv[1]))
store = TokenStore(settings)
print("ready", flush=True)
sys.stdin.readline()
first = store.access_token()
print(json.dumps({"first": first}), flush=True)
# Every process rejects the same token at the same instant, as after a 401 on all of them.
sys.stdin.readline()
second = store.force_refresh(first)
print(json.dumps({"second": second, "refreshes": store.refreshes}), flush=True)
"""


def test_processes_refreshing_at_once_against_the_sandbox_never_burn_the_chain(
    sandbox: Any, postgres: PostgresServer, store_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, store_url, tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_SCRIPT, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]

    def release_all_then_read() -> list[str]:
        # Each round starts only when every process has finished the one before (a barrier, not
        # a wall-clock instant, so a slow start on a busy machine cannot split the rounds).
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        lines = []
        for proc in procs:
            assert proc.stdout is not None
            lines.append(proc.stdout.readline())
        return lines

    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr and proc.stderr.read()
        firsts = release_all_then_read()
        seconds = release_all_then_read()
        outputs = [p.communicate(timeout=45) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    errors = [err[-2000:] for _, err in outputs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert not any("invalid_grant" in err for err in errors)
    results = [
        json.loads(first) | json.loads(second)
        for first, second in zip(firsts, seconds, strict=True)
    ]

    # One refresh per round for all three: the first round seeds, the second rotates once.
    assert len({r["first"] for r in results}) == 1
    assert len({r["second"] for r in results}) == 1
    assert results[0]["first"] != results[0]["second"]
    assert sum(r["refreshes"] for r in results) == 2
    # The chain is alive: the stored refresh token still works (a spent one gives invalid_grant).
    follow_up = TokenStore(FortnoxSettings.from_config(config))
    assert follow_up.force_refresh(results[0]["second"]) != results[0]["second"]


def test_a_row_held_too_long_fails_with_a_clear_message(
    sandbox: Any, postgres: PostgresServer, store_url: str, tmp_path: Path
) -> None:
    settings = FortnoxSettings.from_config(_config(sandbox, store_url, tmp_path))
    store = TokenStore(settings, lock_timeout=0.3)
    token = store.access_token()  # creates the row
    tenant = store_url.rsplit("tenant=", 1)[1]
    with psycopg.connect(postgres.url()) as holder:
        holder.execute(
            "SELECT 1 FROM fortnox_tokens WHERE client_id = %s AND tenant = %s FOR UPDATE",
            ("sandbox-client", tenant),
        )
        with pytest.raises(FortnoxTokenUnavailable, match="Waited 0 s for the lock") as waited:
            store.force_refresh(token)
    assert "hung Fortnox job" in str(waited.value)
    assert PASSWORD not in str(waited.value)


def test_bad_or_unreachable_url_says_what_to_fix_without_the_password(
    sandbox: Any, postgres: PostgresServer, tmp_path: Path
) -> None:
    bad_scheme = _config(sandbox, "mysql://u:p@h/db", tmp_path)
    with pytest.raises(SettingsError, match="token_store_url must look like postgresql://"):
        TokenStore(FortnoxSettings.from_config(bad_scheme))

    closed = f"postgresql://sandbox:{PASSWORD}@127.0.0.1:{postgres.port + 1}/postgres"
    unreachable = TokenStore(FortnoxSettings.from_config(_config(sandbox, closed, tmp_path)))
    with pytest.raises(FortnoxTokenUnavailable, match="Check token_store_url") as failed:
        unreachable.access_token()
    assert PASSWORD not in str(failed.value)
    assert "postgresql://sandbox@127.0.0.1" in str(failed.value)


def test_processes_of_one_tenant_share_the_rate_window_in_postgres(
    sandbox: Any, postgres: PostgresServer, store_url: str, tmp_path: Path, clients_at_once: Any
) -> None:
    # Two workers (processes that share no disk: the window file is not used) of one client and
    # tenant: only a window in the database keeps their 40 requests apart.
    statuses, rate_limited = clients_at_once(sandbox, _config(sandbox, store_url, tmp_path))
    assert statuses.count(200) == 40
    assert statuses.count(429) == 0, "two workers together went over Fortnox's window"
    assert rate_limited == [0, 0]
    assert not list(tmp_path.glob("*.window.json")), "the window must be in the database"
    with psycopg.connect(postgres.url()) as conn:
        row = conn.execute(
            "SELECT starts FROM fortnox_tokens_rate_window WHERE key = %s",
            ("sandbox-client:1234567",),
        ).fetchone()
    assert row is not None
    # The row holds only the last window: at most 25 entries, all within 5 s (and the margin)
    # of the newest.
    assert 0 < len(row[0]) <= 25
    assert max(row[0]) - min(row[0]) < 5.1


def test_postgres_window_arithmetic_and_an_unreachable_database(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = _parse_url(postgres.url())[0]
    window = PostgresWindow(dsn, "window_unit_test", "postgresql://sandbox@127.0.0.1")
    taken = [window.reserve("a:1", 3, 5.1, 70.0) for _ in range(3)]
    assert [wait for wait, _ in taken] == [0.0, 0.0, 0.0]
    # In flight: each entry is its start plus the hold (the database's clock) ...
    entries = [entry for _, entry in taken]
    assert all(entry is not None and entry > time.time() + 60 for entry in entries)
    assert window.reserve("a:1", 3, 5.1, 70.0) == (IN_FLIGHT_POLL, None)  # all three in flight
    # ... and once answered, the time the answer came back.
    for entry in entries:
        assert entry is not None
        window.answered("a:1", entry)
    assert max(window.starts("a:1")) < time.time() + 1
    wait, entry = window.reserve("a:1", 3, 5.1, 70.0)
    assert 4.5 < wait <= 5.1  # the oldest answer leaves the window in ~5.1 s
    assert entry is None
    assert len(window.starts("a:1")) == 3
    assert window.reserve("b:1", 3, 5.1, 70.0)[0] == 0.0  # another client or tenant: its own

    closed = f"postgresql://sandbox:{PASSWORD}@127.0.0.1:{postgres.port + 1}/postgres"
    down = PostgresWindow(_parse_url(closed)[0], "window_unit_test", "postgresql://sandbox@…")
    with caplog.at_level("WARNING"):
        assert down.reserve("a:1", 3, 5.1, 70.0) == (0.0, None)
        assert down.reserve("a:1", 3, 5.1, 70.0) == (0.0, None)  # not tried again
        down.answered("a:1", 1.0)  # nor here: no connect per request
    warnings = [r.getMessage() for r in caplog.records if "shared window" in r.getMessage()]
    assert len(warnings) == 1
    assert "counts only its own requests" in warnings[0]
    assert PASSWORD not in warnings[0]
