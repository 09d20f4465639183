"""FortnoxClient against the real Fortnox sandbox over HTTP (root fixture ``fortnox_sandbox``).

Covers what mocks cannot: the real OAuth server's rotation, expiry and client credentials, the
server's sliding-window limiter, injected faults, and Fortnox's error bodies.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sandbox.fortnox.app", reason="the Fortnox sandbox is not there yet")

from fortnox_client import (
    AmbiguousWriteError,
    FortnoxAuthError,
    FortnoxClient,
    FortnoxDataError,
    FortnoxSettings,
    TokenStore,
)

TENANT = "1234567"  # the sandbox company's DatabaseNumber


@pytest.fixture
def sandbox(fortnox_sandbox: Any) -> Iterator[Any]:
    """The shared sandbox, left as found: no faults, limiter off, project module on."""
    yield fortnox_sandbox
    fortnox_sandbox.admin("DELETE", "faults")
    fortnox_sandbox.admin("PATCH", "settings", {"max_requests_per_5s": 0, "project_module": True})


def _config(sandbox: Any, store: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "api_url": f"{sandbox.url}/3",
        "token_url": f"{sandbox.url}/oauth-v1/token",
        "token_store_path": str(store),
        "max_requests_per_5s": 0,
        "retry_base_seconds": 0.01,
        **overrides,
    }


@pytest.fixture
def config(sandbox: Any, tmp_path: Path) -> dict[str, Any]:
    refresh_token = sandbox.admin("POST", "refresh-tokens", {})["refresh_token"]
    return _config(sandbox, tmp_path / "secrets" / "token.json", refresh_token=refresh_token)


def _client(config: dict[str, Any]) -> FortnoxClient:
    return FortnoxClient(FortnoxSettings.from_config(config))


def _log_since(sandbox: Any, seq: int) -> list[dict[str, Any]]:
    return list(sandbox.admin("GET", f"requests?since={seq}")["requests"])


def _last_seq(sandbox: Any) -> int:
    return int(sandbox.admin("GET", "requests?since=999999999")["last"])


def _customer_number() -> str:
    return str(random.randint(7_000_000, 7_999_999))


def test_refresh_chain_crud_and_tenant(sandbox: Any, config: dict[str, Any]) -> None:
    client = _client(config)
    info = client.get_path("companyinformation")["CompanyInformation"]
    assert str(info["DatabaseNumber"]) == client.tokens.tenant_id == TENANT

    number = _customer_number()
    created = client.create("customers", {"CustomerNumber": number, "Name": "Åkesson Konsult AB"})
    assert created["CustomerNumber"] == number
    updated = client.update("customers", number, {"City": "Göteborg"})
    assert updated["City"] == "Göteborg"
    assert client.get("customers", number)["Name"] == "Åkesson Konsult AB"  # type: ignore[index]
    assert client.get("customers", "0000000") is None
    assert client.stats.writes == 2


def test_list_pages_over_metainformation(sandbox: Any, config: dict[str, Any]) -> None:
    client = _client(config)
    mine = {_customer_number() for _ in range(7)}
    for number in mine:
        client.create("customers", {"CustomerNumber": number, "Name": f"Kund {number}"})
    before = client.stats.requests

    rows = list(client.list("customers", {"limit": 3}))

    numbers = [row["CustomerNumber"] for row in rows]
    assert mine <= set(numbers)
    assert len(numbers) == len(set(numbers))
    assert client.stats.requests - before == -(-len(numbers) // 3)  # one request per page


def test_expired_token_is_refreshed_once_and_the_chain_lives_on(
    sandbox: Any, config: dict[str, Any]
) -> None:
    client = _client(config)
    client.get_path("companyinformation")
    sandbox.admin("POST", "tokens/expire")
    mark = _last_seq(sandbox)

    client.get_path("companyinformation")

    log = _log_since(sandbox, mark)
    assert [(r["path"], r["status"]) for r in log] == [
        ("/3/companyinformation", 401),
        ("/oauth-v1/token", 200),
        ("/3/companyinformation", 200),
    ]
    assert client.stats.token_refreshes == 1
    # A new process (new store object) continues the rotated chain from the file.
    fresh = FortnoxSettings.from_config({**config, "refresh_token": None})
    assert TokenStore(fresh).force_refresh("not-the-current-token")


def test_two_clients_hitting_401_together_refresh_once(
    sandbox: Any, config: dict[str, Any]
) -> None:
    clients = [_client(config), _client(config)]
    for client in clients:
        client.get_path("companyinformation")
    sandbox.admin("POST", "tokens/expire")
    mark = _last_seq(sandbox)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def call(client: FortnoxClient) -> None:
        barrier.wait()
        try:
            client.get_path("companyinformation")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    token_posts = [r for r in _log_since(sandbox, mark) if r["path"] == "/oauth-v1/token"]
    assert [r["status"] for r in token_posts] == [200]


def test_reused_refresh_token_is_invalid_grant(
    sandbox: Any, config: dict[str, Any], tmp_path: Path
) -> None:
    _client(config).get_path("companyinformation")  # consumes the seed
    second = _config(
        sandbox, tmp_path / "other" / "token.json", refresh_token=config["refresh_token"]
    )
    with pytest.raises(FortnoxAuthError, match="already used or has expired"):
        _client(second).get_path("companyinformation")


def test_client_credentials_service_account(sandbox: Any, tmp_path: Path) -> None:
    store = tmp_path / "cc" / "token.json"
    client = _client(_config(sandbox, store, tenant_id=TENANT))
    info = client.get_path("settings/company")
    assert str(info["CompanySettings"]["DatabaseNumber"]) == TENANT
    saved = json.loads(store.read_text())
    assert set(saved["client_credentials"]) == {TENANT}
    assert "refresh_token_grant" not in saved


def test_sustained_rate_at_the_limit_without_429(sandbox: Any, config: dict[str, Any]) -> None:
    sandbox.admin("PATCH", "settings", {"max_requests_per_5s": 25})
    client = _client({**config, "max_requests_per_5s": 25})
    client.tokens.access_token()  # token first (not rate limited), so the timing is API only
    mark = _last_seq(sandbox)

    started = time.monotonic()
    for _ in range(50):
        client.get_path("companyinformation")
    elapsed = time.monotonic() - started

    statuses = [r["status"] for r in _log_since(sandbox, mark)]
    assert statuses.count(429) == 0
    assert client.stats.rate_limited == 0
    # 25 at once, the next 25 only after one window: the limiter waited, and once, not twice
    # (how close to the limit it runs is measured by `make bench`, not here).
    assert 5.0 <= elapsed < 10.0


def test_injected_faults_retry_or_become_ambiguous(sandbox: Any, config: dict[str, Any]) -> None:
    client = _client(config)
    client.get_path("companyinformation")

    sandbox.admin("POST", "faults", {"kind": "status", "status": 503, "count": 2, "method": "GET"})
    assert client.get_path("companyinformation")["CompanyInformation"]
    assert client.stats.retries == 2

    sandbox.admin("POST", "faults", {"kind": "status", "status": 429, "count": 1, "method": "POST"})
    number = _customer_number()
    assert client.create("customers", {"CustomerNumber": number, "Name": "Rate AB"})
    assert client.stats.rate_limited == 1

    other = _customer_number()
    sandbox.admin(
        "POST", "faults", {"kind": "drop_after_commit", "method": "POST", "path": "customers"}
    )
    with pytest.raises(AmbiguousWriteError):
        client.create("customers", {"CustomerNumber": other, "Name": "Tappad AB"})
    # The write was committed: the caller's lookup finds it.
    assert client.get("customers", other)["Name"] == "Tappad AB"  # type: ignore[index]


def test_fortnox_error_codes_from_the_sandbox(sandbox: Any, config: dict[str, Any]) -> None:
    client = _client(config)
    number = _customer_number()
    client.create("customers", {"CustomerNumber": number, "Name": "Borttagen AB"})
    assert client.delete("customers", number)
    with pytest.raises(FortnoxDataError) as taken:
        client.create("customers", {"CustomerNumber": number, "Name": "Ny AB"})
    assert taken.value.code == 2000637
    assert "deleted" in str(taken.value)

    sandbox.admin("PATCH", "settings", {"project_module": False})
    with pytest.raises(FortnoxAuthError, match="2001101") as licence:
        list(client.list("projects"))
    assert "Enable Project" in str(licence.value)


def test_two_plugin_processes_at_once_stay_inside_one_window(
    sandbox: Any, config: dict[str, Any], clients_at_once: Any
) -> None:
    # The daily expenses job starting while a push runs: two processes of one client and tenant,
    # one token store (its window file).
    statuses, rate_limited = clients_at_once(sandbox, config)
    assert statuses.count(200) == 40
    assert statuses.count(429) == 0, "the two processes together went over Fortnox's window"
    assert rate_limited == [0, 0]
