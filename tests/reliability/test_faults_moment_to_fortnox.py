"""Faults on the moment-to-fortnox job, end to end with `meltano run`: after every scenario the
customers, projects and invoices in Fortnox are exactly Moment's (each once), and the stored
bookmark is never past a Moment record that is not in Fortnox.

Scenarios run in file order on one pair of sandboxes; each first adds new Moment records so the
faulted run has something to write.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

JOB = "moment-to-fortnox"
SECTION = "faults: moment-to-fortnox"


def faulted_run(kit: Any, scenario: str, *faults: tuple[str, dict[str, Any]], **env: str) -> Any:
    """Arm the faults, run the job once, disarm, check the bookmark; return the process result."""
    kit.changes.add()
    mark = kit.log_mark()
    for sandbox, body in faults:
        kit.fault(sandbox, **body)
    started = time.monotonic()
    result = kit.pipelines.run(JOB, check=False, **env)
    seconds = round(time.monotonic() - started, 1)
    kit.clear_faults()
    kit.oracle.assert_bookmarks_not_past_unwritten()
    result.seconds = seconds
    result.faults_injected = kit.injected_since(mark)
    return result


def settle(kit: Any, scenario: str, result: Any, **extra: Any) -> dict[str, Any]:
    """A normal re-run after a failed faulted run; then Fortnox must mirror Moment exactly."""
    if result.returncode != 0:
        kit.pipelines.run(JOB)
    sizes = kit.oracle.assert_fortnox_mirrors_moment()
    kit.oracle.assert_bookmarks_not_past_unwritten()
    summary = kit.pipelines.last_summary("target-fortnox")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    row = {
        "faults_injected": getattr(result, "faults_injected", 0),
        # Asserted above by the oracle: Fortnox holds each Moment number exactly once.
        "records_lost": 0,
        "records_duplicated": 0,
        "faulted_run_exit": result.returncode,
        "faulted_run_seconds": result.seconds,
        "rerun_needed": result.returncode != 0,
        "fortnox_equals_moment": sizes,
        **extra,
    }
    kit.figures.add(SECTION, scenario, **row)
    return row


def test_429_storm_beyond_the_limiter(kit: Any) -> None:
    """Fortnox answers 30 % of API calls with 429 during the first, full load."""
    before = kit.pipelines.fortnox.admin("GET", "requests")["requests"]
    seq = before[-1]["seq"] if before else 0
    result = faulted_run(
        kit, "429", ("fortnox", {"kind": "status", "status": 429, "rate": 0.3, "path": "^/3/"})
    )
    # Either the retries carry the run, or it fails before STATE; settle() checks both ways.
    refused = [r for r in kit.pipelines.fortnox_writes(seq) if r["status"] == 429]
    summary = kit.pipelines.last_summary("target-fortnox")
    assert summary["requests"]["rate_limited"] > 0
    settle(
        kit,
        "429 storm (30 % of calls)",
        result,
        rate_limited=summary["requests"]["rate_limited"],
        retries=summary["requests"]["retries"],
        refused_writes=len(refused),
    )


def test_5xx_bursts(kit: Any) -> None:
    """Bursts of 503 and 502, and 500 answers to creates (an ambiguous failure)."""
    result = faulted_run(
        kit,
        "5xx",
        ("fortnox", {"kind": "status", "status": 503, "count": 3, "path": "^/3/"}),
        ("fortnox", {"kind": "status", "status": 502, "count": 2, "method": "GET"}),
        ("fortnox", {"kind": "status", "status": 500, "count": 2, "method": "POST"}),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = kit.pipelines.last_summary("target-fortnox")
    settle(
        kit,
        "5xx bursts (503×3, 502×2, 500×2 on POST)",
        result,
        retries=summary["requests"]["retries"],
    )


def test_connection_dropped_after_create_committed(kit: Any) -> None:
    """The ambiguous failure: Fortnox stored the record, the answer never came."""
    faults = [
        ("fortnox", {"kind": "drop_after_commit", "method": "POST", "path": f"^/3/{r}", "count": 1})
        for r in ("customers", "projects", "invoices")
    ]
    result = faulted_run(kit, "drop", *faults)
    assert result.returncode == 0, result.stderr[-3000:]
    dropped = [r for r in kit.pipelines.fortnox_writes(0) if r["note"] == "dropped after commit"]
    assert len(dropped) == 3, dropped
    summary = kit.pipelines.last_summary("target-fortnox")
    created = {s: v["created"] for s, v in summary["streams"].items()}
    assert created["customers"] == 2, created
    assert created["invoices"] == 1, created
    settle(kit, "connection dropped after commit (POST customer, project, invoice)", result)


def test_access_token_expires_mid_run(kit: Any) -> None:
    """Every access token is expired while the target is writing: it refreshes once and goes on."""
    kit.changes.add(customers=4)
    kit.fault("fortnox", kind="latency", seconds=0.4, path="^/3/")
    seq = kit.pipelines.fortnox.admin("GET", "requests")["requests"]
    since = seq[-1]["seq"] if seq else 0
    run = kit.background(JOB).start("token-expiry")
    assert kit.wait_for(lambda: kit.pipelines.fortnox_writes(since), timeout=120), "no write seen"
    kit.pipelines.fortnox.admin("POST", "tokens/expire")
    code = run.wait(300)
    kit.clear_faults()
    assert code == 0, run.stderr[-3000:]
    rejected = [
        r
        for r in kit.pipelines.fortnox.admin("GET", f"requests?since={since}")["requests"]
        if r["status"] == 401
    ]
    result = subprocess.CompletedProcess([], code)
    result.seconds = None  # type: ignore[attr-defined]
    result.faults_injected = 1  # type: ignore[attr-defined]  # every access token expired at once
    kit.oracle.assert_bookmarks_not_past_unwritten()
    settle(kit, "access token expired mid-run", result, answered_401=len(rejected))


def test_moment_unreachable_briefly_then_for_long(kit: Any) -> None:
    """Moment drops every connection: for 2 s the tap's retries bridge it; for 60 s the run fails
    before any state, and the next run brings everything. The long outage runs with 3 tries
    (`max_tries` through Meltano) so the tap gives up within seconds instead of after its full
    backoff: the outcome (no state, everything on the re-run) is the same, sooner."""
    short = faulted_run(kit, "moment-2s", ("moment", {"kind": "drop", "seconds": 2}))
    assert short.returncode == 0, short.stderr[-3000:]
    settle(kit, "Moment unreachable for 2 s", short)

    state_before = kit.state("dev:tap-moment-to-target-fortnox")
    long = faulted_run(
        kit, "moment-60s", ("moment", {"kind": "drop", "seconds": 60}), TAP_MOMENT_MAX_TRIES="3"
    )
    assert long.returncode != 0
    assert kit.state("dev:tap-moment-to-target-fortnox") == state_before
    settle(kit, "Moment unreachable for 60 s (run fails, re-run)", long)


def test_spent_refresh_token_fails_clearly_without_a_bookmark(kit: Any) -> None:
    """Another process rotated the chain: the store holds a spent refresh token. The run must stop
    with the re-authorise message and leave the bookmark where it was."""
    kit.spend_refresh_token()
    state_before = kit.state("dev:tap-moment-to-target-fortnox")

    result = faulted_run(kit, "spent")
    result.faults_injected = 1  # the refresh token in the store was spent by "another process"
    assert result.returncode != 0
    assert "invalid_grant" in result.stderr or "already used" in result.stderr, result.stderr[
        -2000:
    ]
    assert "authori" in result.stderr.lower(), result.stderr[-2000:]
    # ... naming the consent command as it runs in this project and environment.
    assert "meltano --environment dev invoke target-fortnox:authorize" in result.stderr
    assert kit.state("dev:tap-moment-to-target-fortnox") == state_before

    # Re-authorised: a new refresh token seeds a new store (pipelines.env mints it).
    kit.pipelines.token_store.unlink()
    settle(kit, "refresh token spent by another process (re-authorise, re-run)", result)


def test_slow_responses_past_the_client_timeout(kit: Any) -> None:
    """Fortnox answers 3 s late with a 1 s client timeout (`timeout` through Meltano): reads are
    retried, the unanswered create is looked up before it is sent again, never doubled."""
    kit.changes.add()
    mark = kit.log_mark()
    kit.fault("fortnox", kind="latency", seconds=3, count=2, method="GET", path="^/3/customers")
    kit.fault("fortnox", kind="latency", seconds=3, count=1, method="POST", path="^/3/customers")
    started = time.monotonic()
    result = kit.pipelines.run(JOB, check=False, TARGET_FORTNOX_TIMEOUT="1")
    seconds = round(time.monotonic() - started, 1)
    kit.clear_faults()
    assert result.returncode == 0, result.stderr[-3000:]
    # The late POST commits on the server after the client gave up; the look-up and the second
    # POST happen meanwhile. Customer numbers are unique in Fortnox, so the late one is refused
    # there: settle() below checks that each number is in Fortnox exactly once.
    summary = kit.pipelines.last_summary("target-fortnox")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    result.seconds = seconds
    # Late answers are no log note: count the three armed ones, plus any noted.
    result.faults_injected = 3 + kit.injected_since(mark)
    settle(kit, "responses 3 s late, client timeout 1 s", result)
