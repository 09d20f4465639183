"""Faults on the fortnox-expenses-to-moment job, end to end with `meltano run`: after every
scenario each qualifying Fortnox cost row is in Moment exactly once (by externalReference).

What "qualifying" means is decided by a reference run: the same job, fault-free, into a second
Moment sandbox with the same seed. After all scenarios the faulted Moment must hold exactly the
reference's set. Each scenario also posts new supplier invoices and checks their rows arrived once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

pytestmark = pytest.mark.e2e

JOB = "fortnox-expenses-to-moment"
STATE_ID = "dev:tap-fortnox-expenses-to-target-moment"
SECTION = "faults: fortnox-expenses-to-moment"


@pytest.fixture(scope="module")
def reference_moment(kit: Any) -> Iterator[SandboxProcess]:
    """A second Moment with the same seed and sizes as the faulted one, for the reference run."""
    with SandboxProcess("moment", kit.pipelines.workdir / "reference-moment.db", seed=1) as moment:
        kit.reseed_small(moment=moment)
        yield moment


def scenario(
    kit: Any, name: str, *faults: tuple[str, dict[str, Any]], new_rows: int = 1, **env: str
) -> Any:
    """New supplier invoices, the faults armed, one run; then the invariants after a re-run."""
    keys = [
        # Scenario names hold × and similar, which Fortnox refuses in text fields.
        kit.post_supplier_invoice("5001", 1000 + i * 10, f"Resa {i}")[1]
        for i in range(new_rows)
    ]
    mark = kit.log_mark()
    for sandbox, body in faults:
        kit.fault(sandbox, **body)
    state_before = kit.state(STATE_ID)
    started = time.monotonic()
    result = kit.pipelines.run(JOB, check=False, **env)
    seconds = round(time.monotonic() - started, 1)
    kit.clear_faults()
    injected = kit.injected_since(mark)
    if result.returncode != 0:
        # A failed run may have saved the bookmark of a stream it finished before failing; it
        # must not have moved it past rows it did not write.
        def mark(state: dict[str, Any]) -> Any:
            return (state["bookmarks"].get("project_expenses") or {}).get("replication_key_value")

        if mark(kit.state(STATE_ID)) != mark(state_before):
            written = kit.oracle.expense_refs()
            unwritten = [k for k in keys if k not in written]
            assert not unwritten, f"bookmark moved past unwritten expense rows {unwritten}"
        kit.pipelines.run(JOB)
    refs = kit.oracle.assert_expenses_once()
    missing = [k for k in keys if k not in refs]
    assert not missing, f"new expense rows not imported: {missing}"
    summary = kit.pipelines.last_summary("target-moment")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    kit.figures.add(
        SECTION,
        name,
        faults_injected=injected,
        # Asserted above: every new row is in Moment, and no externalReference twice.
        records_lost=0,
        records_duplicated=0,
        faulted_run_exit=result.returncode,
        faulted_run_seconds=seconds,
        rerun_needed=result.returncode != 0,
        expenses_in_moment=len(refs),
        requests=summary["requests"],
    )
    return result


def test_projects_pushed_first(kit: Any) -> None:
    """Expenses need their projects in Fortnox with a start date: the other job puts them there."""
    kit.pipelines.run("moment-to-fortnox")
    assert kit.pipelines.last_summary("target-fortnox")["totals"]["failed"] == 0


def test_moment_429_storm_on_the_first_import(kit: Any) -> None:
    result = scenario(
        kit,
        "Moment 429 on 30 % of expense calls (first import)",
        ("moment", {"kind": "status", "status": 429, "rate": 0.3, "path": "projectExpenses"}),
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_fortnox_429_and_5xx_on_reads(kit: Any) -> None:
    """The first reads meet 503×2 and 502×2 back to back, plus 429 on 30 % of calls: the client
    may run out of tries on one of them. Either the retries carry the run, or it fails before
    any state and the re-run brings everything; scenario() checks both ways."""
    scenario(
        kit,
        "Fortnox 429 on 30 % of reads, 503×2, 502×2",
        ("fortnox", {"kind": "status", "status": 429, "rate": 0.3, "path": "^/3/"}),
        ("fortnox", {"kind": "status", "status": 503, "count": 2, "path": "^/3/"}),
        ("fortnox", {"kind": "status", "status": 502, "count": 2, "path": "^/3/"}),
    )


def test_ambiguous_creates_in_moment(kit: Any) -> None:
    """500 answers to creates (nothing stored) and connections dropped after the create was
    stored: the target looks each expense up by externalReference before creating it again."""
    result = scenario(
        kit,
        "Moment 500 on POST ×2 and dropped after commit ×2",
        ("moment", {"kind": "status", "status": 500, "count": 2, "method": "POST"}),
        ("moment", {"kind": "drop_after_commit", "count": 2, "method": "POST"}),
        new_rows=4,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_access_token_expires_mid_run(kit: Any) -> None:
    kit.post_supplier_invoice("5003", 777, "Hotell")
    kit.fault("fortnox", kind="latency", seconds=0.3, path="^/3/supplierinvoices/")
    requests = kit.pipelines.fortnox.admin("GET", "requests")["requests"]
    since = requests[-1]["seq"] if requests else 0

    def reading_details() -> bool:
        log = kit.pipelines.fortnox.admin("GET", f"requests?since={since}")["requests"]
        return any("/3/supplierinvoices/" in r["path"] for r in log)

    run = kit.background(JOB).start("expenses-token-expiry")
    assert kit.wait_for(reading_details, timeout=120), "the tap never read an invoice"
    kit.pipelines.fortnox.admin("POST", "tokens/expire")
    code = run.wait(300)
    kit.clear_faults()
    assert code == 0, run.stderr[-3000:]
    kit.oracle.assert_expenses_once()
    kit.figures.add(
        SECTION,
        "access token expired mid-run",
        faults_injected=1,
        records_lost=0,
        records_duplicated=0,
        faulted_run_exit=code,
    )


def test_moment_unreachable(kit: Any) -> None:
    short = scenario(kit, "Moment unreachable for 2 s", ("moment", {"kind": "drop", "seconds": 2}))
    assert short.returncode == 0, short.stderr[-3000:]
    long = scenario(
        kit,
        "Moment unreachable for 60 s (run fails, re-run)",
        ("moment", {"kind": "drop", "seconds": 60}),
        # 3 tries: the target gives up within seconds instead of after its full backoff.
        TARGET_MOMENT_MAX_TRIES="3",
    )
    assert long.returncode != 0


def test_slow_moment_past_the_client_timeout(kit: Any) -> None:
    """Moment answers 3 s late with a 1 s client timeout (`timeout` through Meltano): lookups are
    retried and the unanswered create is resolved by a lookup, never doubled."""
    _given, key = kit.post_supplier_invoice("5004", 4321, "Sen Moment")
    mark = kit.log_mark()
    kit.fault("moment", kind="latency", seconds=3, count=2, method="GET", path="projectExpenses")
    kit.fault("moment", kind="latency", seconds=3, count=1, method="POST", path="projectExpenses")
    started = time.monotonic()
    result = kit.pipelines.run(JOB, check=False, TARGET_MOMENT_TIMEOUT="1")
    seconds = round(time.monotonic() - started, 1)
    kit.clear_faults()
    assert result.returncode == 0, result.stderr[-3000:]
    assert kit.wait_for(lambda: kit.oracle.expense_refs()[key] >= 1, timeout=10)
    # The late POST's handler sleeps 3 s on the server before it commits (a duplicate would show
    # only then); the sandbox logs a request when it has answered, so wait for that entry.
    since = mark["moment"]

    def late_post_answered() -> bool:
        log = kit.pipelines.moment.admin("GET", f"requests?since={since}")["requests"]
        return any(
            r["method"] == "POST" and "projectExpenses" in r["path"] and r["ms"] >= 3000
            for r in log
        )

    assert kit.wait_for(late_post_answered, timeout=15), "the late POST never finished"
    refs = kit.oracle.assert_expenses_once()
    assert key in refs
    kit.figures.add(
        SECTION,
        "Moment 3 s late, client timeout 1 s",
        # Late answers are no log note: count the three armed ones, plus any noted.
        faults_injected=3 + kit.injected_since(mark),
        records_lost=0,
        records_duplicated=0,
        faulted_run_exit=0,
        faulted_run_seconds=seconds,
    )


def test_spent_refresh_token_fails_clearly_without_a_bookmark(kit: Any) -> None:
    """Another process rotated the chain: the store holds a spent refresh token. The run must
    stop with the re-authorise message and leave the bookmark where it was; after re-authorising,
    the next run imports what was waiting."""
    _given, key = kit.post_supplier_invoice("5002", 555, "Spenderad token")
    kit.spend_refresh_token()
    state_before = kit.state(STATE_ID)
    started = time.monotonic()
    result = kit.pipelines.run(JOB, check=False)
    seconds = round(time.monotonic() - started, 1)
    assert result.returncode != 0
    assert "invalid_grant" in result.stderr or "already used" in result.stderr, result.stderr[
        -2000:
    ]
    assert "authori" in result.stderr.lower(), result.stderr[-2000:]
    # The run may save state for the `projects` stream (it has no bookmark); the expenses'
    # bookmark and fingerprints must be exactly where they were.
    expenses_mark = kit.state(STATE_ID)["bookmarks"].get("project_expenses")
    assert expenses_mark == state_before["bookmarks"].get("project_expenses")
    # Re-authorised: a new refresh token seeds a new store (pipelines.env mints it).
    kit.pipelines.token_store.unlink()
    kit.pipelines.run(JOB)
    refs = kit.oracle.assert_expenses_once()
    assert key in refs, f"{key} not imported after re-authorising"
    kit.figures.add(
        SECTION,
        "refresh token spent by another process (re-authorise, re-run)",
        faults_injected=1,
        records_lost=0,
        records_duplicated=0,
        faulted_run_exit=result.returncode,
        faulted_run_seconds=seconds,
        rerun_needed=True,
        expenses_in_moment=len(refs),
    )


def test_faulted_moment_equals_the_fault_free_reference(
    kit: Any, reference_moment: SandboxProcess
) -> None:
    """The same job, fault-free, into a fresh Moment: both must hold the same expenses, once."""
    kit.pipelines.run(JOB)  # whatever the faulted runs left: one more normal run
    reference = kit.pipelines.run(
        JOB,
        TARGET_MOMENT_API_URL=f"{reference_moment.url}/api/1.0",
        TARGET_MOMENT_RESULTS_DIR=str(kit.pipelines.workdir / "reference-results"),
        TAP_FORTNOX_EXPENSES_RESULTS_DIR=str(kit.pipelines.workdir / "reference-results"),
        MELTANO_STATE_BACKEND_URI=(kit.pipelines.workdir / "reference-state").as_uri(),
    )
    assert reference.returncode == 0
    rows = reference_moment.admin("GET", "projectExpenses?size=500")["content"]
    expected = {r["externalReference"] for r in rows if r.get("externalReference")}
    actual = kit.oracle.assert_expenses_once()
    assert expected, "the reference run imported nothing"
    assert actual == expected, (sorted(expected - actual), sorted(actual - expected))
    kit.figures.add(
        SECTION,
        "equals fault-free reference",
        expenses=len(expected),
        records_lost=len(expected - actual),
        records_duplicated=0,
    )
