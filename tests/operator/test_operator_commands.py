"""Operator experience end to end: pre-flight, dry run, real run and report through Meltano.

One pair of fresh sandboxes for the module (the lead's ``pipelines`` fixture); the tests run in
order and build on each other: pre-flight on empty books, a dry run that writes nothing, the
first real run, a dry run that plans one update, then the report.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

STATE_ID = "dev:tap-moment-to-target-fortnox"
# The pre-flight commands read the other side's Moment settings from the other plugin's variables
# (in prod they sit in .env; in dev tap-moment's are in meltano.yml, which a command cannot see).
MOMENT_FOR_TARGET_FORTNOX = {"TAP_MOMENT_COMPANY_CODE": "demo", "TAP_MOMENT_API_KEY": "sandbox-key"}
MOMENT_FOR_EXPENSES = {"TARGET_MOMENT_COMPANY_CODE": "demo", "TARGET_MOMENT_API_KEY": "sandbox-key"}


def last_seq(pipelines: Any) -> int:
    return int(pipelines.fortnox.admin("GET", "requests?since=0")["last"])


def plans(pipelines: Any) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text())
        for p in sorted((pipelines.results_dir / "plans").glob("*-target-fortnox.json"))
    ]


def test_preflight_through_meltano_invoke(pipelines: Any) -> None:
    # Blocked: the exit code and --json come through `meltano invoke plugin:command`.
    pipelines.fortnox.admin("PATCH", "settings", {"project_module": False})
    try:
        blocked = pipelines.meltano(
            "invoke", "target-fortnox:preflight", "--json", check=False, **MOMENT_FOR_TARGET_FORTNOX
        )
    finally:
        pipelines.fortnox.admin("PATCH", "settings", {"project_module": True})
    assert blocked.returncode == 1
    report = json.loads(blocked.stdout)
    assert report["ready"] is False
    failed = [c["name"] for c in report["checks"] if c["status"] == "fail"]
    assert failed == ["project-module"]

    expenses = pipelines.meltano(
        "invoke", "tap-fortnox-expenses:preflight", check=False, **MOMENT_FOR_EXPENSES
    )
    assert expenses.returncode == 0, expenses.stdout + expenses.stderr[-3000:]
    assert "[PASS  ] expense-accounts" in expenses.stdout


def test_dry_run_plans_creates_and_writes_nothing(pipelines: Any) -> None:
    since = last_seq(pipelines)
    result = pipelines.run("moment-to-fortnox", TARGET_FORTNOX_DRY_RUN="true")
    assert pipelines.fortnox_writes(since) == []
    assert "Dry run: nothing was written to Fortnox" in result.stderr
    [plan] = plans(pipelines)
    assert plan["counts_by_stream"]["customers"]["create"] == 30
    assert plan["counts_by_stream"]["projects"]["create"] == 20
    # Nothing was written, so the bookmark must not have moved.
    assert not pipelines.state(STATE_ID).get("singer_state", {}).get("bookmarks")


def test_dry_run_after_a_real_run_plans_the_one_change(pipelines: Any) -> None:
    pipelines.run("moment-to-fortnox")
    assert pipelines.last_summary("target-fortnox")["streams"]["customers"]["created"] == 30
    pipelines.moment.admin("PATCH", "customers/1005", {"email": "ny.adress@example.se"})

    since = last_seq(pipelines)
    pipelines.run("moment-to-fortnox", TARGET_FORTNOX_DRY_RUN="true")
    assert pipelines.fortnox_writes(since) == []
    plan = plans(pipelines)[-1]
    changed = [a for a in plan["plan"] if a["action"] != "unchanged"]
    assert changed == [
        {
            "stream": "customers",
            "key": "1005",
            "action": "update",
            "changes": {"Email": "ny.adress@example.se"},
            "detail": None,
        }
    ]


def test_report_shows_the_runs(pipelines: Any) -> None:
    result = pipelines.meltano("invoke", "target-fortnox:report", "--plugin", "target-fortnox")
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("20")]
    # Two dry runs and one real run, oldest first; the real run created the 30 customers.
    assert len(rows) == 3
    assert rows[1][2:5] == ["target-fortnox", "customers", "30"]

    # One record's history through the same command: planned by the first dry run, created by
    # the real run with Fortnox's answer, then planned as an update by the dry run after it.
    history = pipelines.meltano("invoke", "target-fortnox:report", "--record", "customers", "1005")
    lines = history.stdout.splitlines()
    assert lines[0] == "customers 1005: 3 event(s)"
    assert [line.split()[2:4] for line in lines[1::2]] == [
        ["target-fortnox", "skipped"],
        ["target-fortnox", "created"],
        ["target-fortnox", "skipped"],
    ]
    assert lines[2::2] == [
        "    dry run: would be created",
        lines[4],
        "    dry run: would be updated",
    ]
    assert lines[4].startswith("    answer: created: CustomerNumber 1005, Name ")


def test_expenses_dry_run_keeps_the_state_so_the_real_run_creates(pipelines: Any) -> None:
    since = int(pipelines.moment.admin("GET", "requests?since=0")["last"])
    pipelines.run("fortnox-expenses-to-moment", TARGET_MOMENT_DRY_RUN="true")
    logged = pipelines.moment.admin("GET", f"requests?since={since}")["requests"]
    assert [r for r in logged if r["method"] in ("POST", "PUT", "PATCH", "DELETE")] == []
    planned = pipelines.last_summary("target-moment")["streams"]["project_expenses"]
    assert planned["created"] > 0
    # The tap does not re-emit invoices its state says it has read: a dry run must not save it.
    state = pipelines.state("dev:tap-fortnox-expenses-to-target-moment")
    assert not state.get("singer_state", {}).get("bookmarks")

    pipelines.run("fortnox-expenses-to-moment")
    created = pipelines.last_summary("target-moment")["streams"]["project_expenses"]["created"]
    assert created == planned["created"]
