"""Fixtures for the tap's tests: a config pointing at the session's Fortnox sandbox, a reseeded
sandbox per test, and ``run_tap`` which runs the tap in-process and returns its Singer output."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient, FortnoxSettings
from sandbox.launcher import SandboxProcess
from tap_fortnox_expenses.tap import TapFortnoxExpenses

TENANT_ID = "1234567"  # the sandbox company's DatabaseNumber (sandbox.fortnox.oauth.TENANT_ID)


def sandbox_config(url: str, tmp: Path) -> dict[str, Any]:
    """Client-credentials access to the sandbox; token store and results under ``tmp``."""
    return {
        "api_url": f"{url}/3",
        "token_url": f"{url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT_ID,
        "token_store_path": str(tmp / "fortnox-token.json"),
        # The session's sandbox has its limiter off; so has the client, to keep tests fast.
        "max_requests_per_5s": 0,
        "results_dir": str(tmp / "output"),
        # Client retry budget (fortnox-client settings): small, so fault tests end quickly.
        "max_tries": 2,
        "retry_base_seconds": 0.01,
        "max_retry_seconds": 1,
    }


@dataclass
class TapRun:
    """What one run of the tap wrote to stdout, decoded."""

    messages: list[dict[str, Any]]
    error: BaseException | None = None
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def expenses(self) -> list[dict[str, Any]]:
        return self.records.get("project_expenses", [])

    @property
    def final_state(self) -> dict[str, Any]:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else {}

    @property
    def bookmark(self) -> dict[str, Any]:
        return dict(self.final_state.get("bookmarks", {}).get("project_expenses", {}))


RunTap = Callable[..., TapRun]


@pytest.fixture
def tap_config(fortnox_sandbox: SandboxProcess, tmp_path: Path) -> dict[str, Any]:
    return sandbox_config(fortnox_sandbox.url, tmp_path)


@pytest.fixture
def seeded(fortnox_sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    """The session's sandbox at seed 1, and restored to it afterwards: tests here change supplier
    invoices, and the sandbox is shared with every other folder's tests in the session."""
    fortnox_sandbox.admin("POST", "seed", {"seed": 1})
    yield fortnox_sandbox
    fortnox_sandbox.admin("DELETE", "faults")
    fortnox_sandbox.admin("POST", "seed", {"seed": 1})


@pytest.fixture
def run_tap(tap_config: dict[str, Any]) -> RunTap:
    """``run_tap(state=None, **config_overrides)``: one in-process sync, stdout captured.

    A failing run does not raise here: the error is returned with what was written before it,
    so tests can check that no final state went out.
    """

    def run(state: dict[str, Any] | None = None, **overrides: Any) -> TapRun:
        out = io.StringIO()
        error: BaseException | None = None
        with contextlib.redirect_stdout(out):
            tap = TapFortnoxExpenses(
                config={**tap_config, **overrides}, state=state, parse_env_config=False
            )
            try:
                tap.sync_all()
            except Exception as exc:
                error = exc
        messages = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
        return TapRun(messages, error)

    return run


@pytest.fixture
def fortnox(tap_config: dict[str, Any]) -> FortnoxClient:
    """A client of its own, to read and change sandbox data the way a Fortnox user would."""
    return FortnoxClient(FortnoxSettings.from_config(tap_config))


class RequestLog:
    """The sandbox's request log (emulated API only): ``mark()`` now, ``since(mark)`` later."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox

    def mark(self) -> int:
        return int(self.sandbox.admin("GET", "requests")["last"])

    def since(self, seq: int) -> list[tuple[str, str]]:
        """``(method, path)`` of every request after ``seq``, token requests left out."""
        log = self.sandbox.admin("GET", f"requests?since={seq}")["requests"]
        return [(e["method"], e["path"]) for e in log if e["path"].startswith("/3/")]


@pytest.fixture
def request_log(fortnox_sandbox: SandboxProcess) -> RequestLog:
    return RequestLog(fortnox_sandbox)
