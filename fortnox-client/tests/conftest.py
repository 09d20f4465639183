"""Fixtures for the fortnox-client unit tests.

``token_server`` is a tiny real OAuth token endpoint on a loopback port with Fortnox's rotation
rule (a refresh token works once, reuse → ``invalid_grant``). It has to be a real server, not
``responses``, because the race tests run refreshes from several processes at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from fortnox_client import FortnoxSettings, TokenStore
from fortnox_client.token_store import write_private_json_atomically

TENANT = "7654321"


def make_jwt(*, expires_in: float = 3600, tenant: str = TENANT) -> str:
    """An HS256 JWT shaped like Fortnox's (``exp``, ``tenantId``); the client never verifies it."""
    claims = {"exp": int(time.time() + expires_in), "tenantId": tenant, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, "test-signing-key-of-sufficient-length", algorithm="HS256")


class TokenServer:
    """Single-use, rotating refresh tokens and client credentials, with a log of every POST."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.valid_refresh: set[str] = set()
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = server.handle(form, dict(self.headers))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth-v1/token"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def mint_refresh_token(self) -> str:
        token = f"RT-{uuid.uuid4().hex}"
        with self._lock:
            self.valid_refresh.add(token)
        return token

    def handle(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.posts.append({"form": form, "headers": headers})
        grant = form.get("grant_type")
        if grant == "client_credentials":
            tenant = headers.get("TenantId") or headers.get("Tenantid")
            if not tenant:
                return 400, {"error": "invalid_request", "error_description": "TenantId missing"}
            return 200, {
                "access_token": make_jwt(tenant=tenant),
                "scope": "customer",
                "expires_in": 3600,
                "token_type": "bearer",
            }
        if grant != "refresh_token":
            return 400, {"error": "unsupported_grant_type", "error_description": grant or ""}
        # Check-and-consume happens first, then the (slow) minting: like a real server, the
        # second of two racing refreshes with one token loses.
        with self._lock:
            presented = form.get("refresh_token", "")
            known = presented in self.valid_refresh
            self.valid_refresh.discard(presented)
        time.sleep(self.delay)
        if not known:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid refresh token",
            }
        return 200, {
            "access_token": make_jwt(),
            "refresh_token": self.mint_refresh_token(),
            "scope": "customer project invoice",
            "expires_in": 3600,
            "token_type": "bearer",
        }

    def refresh_posts(self) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["form"].get("grant_type") == "refresh_token"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.close()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "fortnox-token.json"


def settings_for(store_path: Path, token_url: str, **overrides: Any) -> FortnoxSettings:
    config: dict[str, Any] = {
        "client_id": "test-client",
        "client_secret": "test-secret-value",
        "token_url": token_url,
        "api_url": "https://fortnox.test/3",
        "token_store_path": str(store_path),
        "max_requests_per_5s": 0,
        "retry_base_seconds": 0.001,
        **overrides,
    }
    return FortnoxSettings.from_config(config)


@pytest.fixture
def api_settings(store_path: Path) -> FortnoxSettings:
    """Settings whose store already holds a fresh access token (so API tests need no OAuth)."""
    write_private_json_atomically(
        store_path,
        {
            "version": 1,
            "refresh_token_grant": {
                "access_token": make_jwt(),
                "expires_at": time.time() + 3600,
                "refresh_token": "RT-stored",
                "rotated_at": None,
                "scope": "customer",
                "tenant_id": TENANT,
            },
        },
    )
    return settings_for(store_path, "https://apps.fortnox.test/oauth-v1/token", max_tries=4)


@pytest.fixture
def jwt_factory() -> Any:
    """``make_jwt`` for tests (test modules cannot import conftest under importlib mode)."""
    return make_jwt


@pytest.fixture
def settings_factory() -> Any:
    """``settings_for(store_path, token_url, **overrides)`` for tests."""
    return settings_for


_CLIENT_PROCESS = """
import json, sys, time
from fortnox_client import FortnoxClient, FortnoxSettings
client = FortnoxClient(FortnoxSettings.from_config(json.loads(sys.argv[1])))
client.tokens.access_token()
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
for _ in range(20):
    client.get_path("companyinformation")
print(json.dumps({"rate_limited": client.stats.rate_limited}))
"""


def two_clients_at_once(sandbox: Any, config: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Two client processes of one client and tenant, 20 requests each from the same instant,
    against ``sandbox`` limited to the real 25 per 5 s. Each alone would send its 20 at once
    (20 < 25); together that is 40 in 5 s, so only a window they share keeps them apart.

    Returns the HTTP statuses the sandbox logged and each process's count of 429s.
    """
    limited = {**config, "max_requests_per_5s": 25}
    TokenStore(FortnoxSettings.from_config(limited)).access_token()  # the chain, seeded once
    sandbox.admin("PATCH", "settings", {"max_requests_per_5s": 25})
    sandbox.admin("DELETE", "rate-limit")  # earlier tests' requests must not count
    try:
        since = int(sandbox.admin("GET", "requests?since=999999999")["last"])
        start_at = time.time() + 2.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CLIENT_PROCESS, json.dumps(limited), str(start_at)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        reports = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
        log = sandbox.admin("GET", f"requests?since={since}")["requests"]
    finally:
        sandbox.admin("PATCH", "settings", {"max_requests_per_5s": 0})
    assert [p.returncode for p in procs] == [0, 0]
    return [entry["status"] for entry in log], [r["rate_limited"] for r in reports]


@pytest.fixture
def clients_at_once() -> Any:
    """:func:`two_clients_at_once`, for the tests of each rate window."""
    return two_clients_at_once
