"""Every request tap-fortnox-expenses sends uses only query parameters Fortnox documents for that
path (docs/FORTNOX-CONTRACT.md): a parameter Fortnox does not know may be ignored silently, and
then the tap would read far more (or other) invoices than it meant to."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import fortnox_contract  # noqa: E402

pytestmark = pytest.mark.usefixtures("seeded")


def test_every_list_request_uses_documented_parameters(
    run_tap: Any, fortnox_sandbox: SandboxProcess
) -> None:
    mark = fortnox_sandbox.admin("GET", "requests")["last"]
    first = run_tap()
    assert first.error is None
    second = run_tap(state=first.final_state)
    assert second.error is None

    log = fortnox_sandbox.admin("GET", f"requests?since={mark}")["requests"]
    lists = [e for e in log if e["method"] == "GET" and e["path"].count("/") == 2]
    assert {e["path"] for e in lists} >= {"/3/supplierinvoices", "/3/projects"}
    problems = sorted(
        {p for e in lists for p in fortnox_contract.query_problems(e["path"][3:], e["query"])}
    )
    assert problems == []
