"""Fixtures for target-fortnox tests: a target config against the session's Fortnox sandbox,
replaying ``.singer`` files through the target, and reading the sandbox's request log."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient, FortnoxSettings
from sandbox.launcher import SandboxProcess
from target_fortnox.target import TargetFortnox

DATA_FILES = Path(__file__).parent / "data_files"
TENANT_ID = "1234567"  # the sandbox company's DatabaseNumber


@pytest.fixture
def fortnox_config(fortnox_sandbox: SandboxProcess, tmp_path: Path) -> dict[str, Any]:
    """Client-credentials config (sandbox-client, the sandbox tenant), stores under tmp_path."""
    return {
        "api_url": f"{fortnox_sandbox.url}/3",
        "token_url": f"{fortnox_sandbox.url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT_ID,
        "token_store_path": str(tmp_path / "secrets" / "fortnox-token.json"),
        "max_requests_per_5s": 0,
        "results_dir": str(tmp_path / "output"),
        # The unit tests read the dead letters there (the default is beside the token store).
        "run_store_path": str(tmp_path / "output"),
        # Small retry budget so that fault tests stay fast (fortnox_client reads these keys).
        "max_tries": 2,
        "retry_base_seconds": 0.01,
        "max_retry_seconds": 1.0,
    }


@pytest.fixture
def fortnox_api(fortnox_config: dict[str, Any]) -> FortnoxClient:
    """A plain client on the same sandbox, to arrange and inspect Fortnox data."""
    return FortnoxClient(FortnoxSettings.from_config(fortnox_config))


@dataclass
class Run:
    """What one replay did: STATE lines written, the sandbox API requests made, the target."""

    target: TargetFortnox
    states: list[dict[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def count(self, method: str, path_prefix: str = "/3/") -> int:
        return sum(
            1 for r in self.requests if r["method"] == method and r["path"].startswith(path_prefix)
        )

    @property
    def writes(self) -> int:
        return sum(self.count(method) for method in ("POST", "PUT", "DELETE"))


def singer_text(name: str) -> str:
    return (DATA_FILES / name).read_text(encoding="utf-8")


@pytest.fixture
def replay(fortnox_sandbox: SandboxProcess, fortnox_config: dict[str, Any]) -> Callable[..., Run]:
    """``replay("customers_create.singer", dry_run=True)`` feeds a data file (or raw text via
    ``text=``) to a fresh target; returns its STATE output and the API requests it caused."""

    def run(name: str | None = None, *, text: str | None = None, **overrides: Any) -> Run:
        lines = text if text is not None else singer_text(str(name))
        target = TargetFortnox(config={**fortnox_config, **overrides})
        since = fortnox_sandbox.admin("GET", "requests?since=0")["last"]
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                target.listen(io.StringIO(lines))
        finally:
            logged = fortnox_sandbox.admin("GET", f"requests?since={since}")["requests"]
            result = Run(target, _states(out.getvalue()), [r for r in logged if "/3/" in r["path"]])
            run.last = result  # type: ignore[attr-defined]
        return result

    return run


def _states(stdout: str) -> list[dict[str, Any]]:
    """The state values a target writes to stdout (singer-sdk writes the bare value per line)."""
    states = []
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                states.append(value)
    return states
