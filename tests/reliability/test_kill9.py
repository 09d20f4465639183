"""kill -9 of `meltano run` at many points, both pipelines, then a normal re-run.

Each pipeline gets at least KILL_POINTS kills in a bounded loop. Before each run new source
records are added, and the writes are slowed by a latency fault (reads stay fast, so the oracle
is not), so that the deterministic spread of kill delays lands in every phase: Meltano starting,
the tap reading, the target writing (mid-POST included), STATE being written. The whole process
group (meltano, tap, target) gets SIGKILL, as an OOM kill or a lost container would do.

After every kill: the bookmark is never past a record that is not in the destination. After the
loop: one normal run, then the destination holds exactly the expected set, each record once.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SECTION = "kill -9"
KILL_POINTS = 20
MAX_ATTEMPTS = 30  # a run that ends before its kill delay is not a kill point; bounded anyway
MOMENT_TO_FORTNOX = "dev:tap-moment-to-target-fortnox"
EXPENSES_TO_MOMENT = "dev:tap-fortnox-expenses-to-target-moment"
WRITE_LATENCY = 0.5  # seconds per write request: a run's writes take a few seconds


def kill_delay(attempt: int) -> float:
    """Deterministic, spread over 1.5 … 8.0 s (a run here takes about 4 … 10 s)."""
    return round(1.5 + (attempt * 0.65) % 6.5, 2)


def last_seq(sandbox: Any) -> int:
    requests = sandbox.admin("GET", "requests")["requests"]
    return int(requests[-1]["seq"]) if requests else 0


def writes_since(sandbox: Any, seq: int) -> int:
    log = sandbox.admin("GET", f"requests?since={seq}")["requests"]
    return sum(1 for r in log if r["method"] in ("POST", "PUT", "PATCH"))


def kill_loop(kit: Any, name: str, add_source_records: Any, check_after_kill: Any) -> list[dict]:
    """Add records, start the job, SIGKILL it after the attempt's delay; check after each kill."""
    job = "moment-to-fortnox" if name == "moment-to-fortnox" else "fortnox-expenses-to-moment"
    destination = kit.pipelines.fortnox if name == "moment-to-fortnox" else kit.pipelines.moment
    kills: list[dict[str, Any]] = []
    deadline = time.monotonic() + 240  # the loop's own budget (the issue: bounded)
    for attempt in range(MAX_ATTEMPTS):
        if len(kills) >= KILL_POINTS or time.monotonic() > deadline:
            break
        add_source_records()
        before = check_after_kill.snapshot()
        seq = last_seq(destination)
        delay = kill_delay(attempt)
        # --force: the killed run is still "running" in Meltano's system database, and Meltano
        # refuses a new run of the same state id for 5 minutes (then it marks it stale). A
        # scheduler's next run after a crash is refused the same way: delayed, nothing lost.
        run = kit.background("--force", job).start(f"kill-{name}-{attempt}")
        assert run.process is not None
        try:
            run.process.wait(delay)
            finished = True
        except Exception:  # subprocess.TimeoutExpired: still running, so this is a kill point
            finished = False
        if finished:
            run.wait(5)
        else:
            run.kill9()
            kills.append({"delay_s": delay, "writes_before_kill": writes_since(destination, seq)})
        check_after_kill(before, killed=not finished)
    assert len(kills) >= KILL_POINTS, f"only {len(kills)} runs were still running at their kill"
    return kills


class FortnoxBookmarks:
    """After a kill: every Moment record at or before the stored bookmark is in Fortnox."""

    def __init__(self, kit: Any) -> None:
        self.kit = kit

    def snapshot(self) -> None:
        return None

    def __call__(self, _before: None, *, killed: bool) -> None:
        self.kit.oracle.assert_bookmarks_not_past_unwritten()


class ExpenseBookmarks:
    """After a kill: if the run moved the bookmark, every expense row posted before the run
    started is in Moment (the tap's mark is the time its window was read, so it covers them)."""

    def __init__(self, kit: Any, posted: list[str]) -> None:
        self.kit = kit
        self.posted = posted

    def snapshot(self) -> tuple[Any, list[str]]:
        mark = self.kit.state(EXPENSES_TO_MOMENT)["bookmarks"].get("project_expenses") or {}
        return mark.get("replication_key_value"), list(self.posted)

    def __call__(self, before: tuple[Any, list[str]], *, killed: bool) -> None:
        mark_before, posted_before = before
        mark = self.kit.state(EXPENSES_TO_MOMENT)["bookmarks"].get("project_expenses") or {}
        refs = self.kit.oracle.assert_expenses_once()
        if mark.get("replication_key_value") != mark_before:
            missing = [key for key in posted_before if key not in refs]
            assert not missing, f"bookmark moved to {mark} past unwritten expenses {missing}"


def test_kill9_moment_to_fortnox(kit: Any) -> None:
    kit.pipelines.run("moment-to-fortnox")  # the seed's full load, undisturbed
    kit.fault("fortnox", kind="latency", seconds=WRITE_LATENCY, method="POST", path="^/3/")
    kit.fault("fortnox", kind="latency", seconds=WRITE_LATENCY, method="PUT", path="^/3/")
    started = time.monotonic()
    try:
        kills = kill_loop(kit, "moment-to-fortnox", kit.changes.add, FortnoxBookmarks(kit))
    finally:
        kit.clear_faults()
    loop_seconds = round(time.monotonic() - started, 1)
    kit.pipelines.run("--force", "moment-to-fortnox")
    sizes = kit.oracle.assert_fortnox_mirrors_moment()
    kit.oracle.assert_bookmarks_not_past_unwritten()
    summary = kit.pipelines.last_summary("target-fortnox")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    kit.figures.add(
        SECTION,
        "moment-to-fortnox",
        kill_points=len(kills),
        kills_mid_write=sum(1 for k in kills if k["writes_before_kill"]),
        delays_s=f"{min(k['delay_s'] for k in kills)}–{max(k['delay_s'] for k in kills)}",
        loop_seconds=loop_seconds,
        records_lost=0,
        records_duplicated=0,
        fortnox_equals_moment=sizes,
    )


def test_kill9_fortnox_expenses_to_moment(kit: Any) -> None:
    # Expenses need their projects in Fortnox with a start date: the first job puts them there
    # (--force: the other loop's last killed run still counts as running for 5 minutes).
    kit.pipelines.run("--force", "moment-to-fortnox")
    kit.pipelines.run("fortnox-expenses-to-moment")
    posted: list[str] = []
    counter = iter(range(1, 10_000))

    def add_supplier_invoices() -> None:
        for _ in range(3):
            n = next(counter)
            posted.append(kit.post_supplier_invoice("5001", 2000 + n, f"Kill {n}")[1])

    kit.fault(
        "moment", kind="latency", seconds=WRITE_LATENCY, method="POST", path="projectExpenses"
    )
    kit.fault(
        "moment", kind="latency", seconds=WRITE_LATENCY, method="PATCH", path="projectExpenses"
    )
    started = time.monotonic()
    try:
        kills = kill_loop(
            kit, "fortnox-expenses-to-moment", add_supplier_invoices, ExpenseBookmarks(kit, posted)
        )
    finally:
        kit.clear_faults()
    loop_seconds = round(time.monotonic() - started, 1)
    kit.pipelines.run("--force", "fortnox-expenses-to-moment")
    refs = kit.oracle.assert_expenses_once()
    missing = [key for key in posted if key not in refs]
    assert not missing, f"expense rows lost across kills: {missing}"
    summary = kit.pipelines.last_summary("target-moment")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    kit.figures.add(
        SECTION,
        "fortnox-expenses-to-moment",
        kill_points=len(kills),
        kills_mid_write=sum(1 for k in kills if k["writes_before_kill"]),
        delays_s=f"{min(k['delay_s'] for k in kills)}–{max(k['delay_s'] for k in kills)}",
        loop_seconds=loop_seconds,
        records_lost=0,
        records_duplicated=0,
        expense_rows_posted=len(posted),
        expenses_in_moment=len(refs),
    )
