"""kill -9 of `meltano run` at many points, both pipelines, then a normal re-run.

Each pipeline gets at least KILL_POINTS kills in a bounded loop. Before each run new source
records are added and the writes are slowed a little by a latency fault (reads stay fast, so the
oracle is not). The loop first times one whole run (the same job, the same amount of new records,
not killed) and then kills each run at a deterministic fraction of that length, spread evenly over
it, so the kill points land in every phase whatever the machine's speed: Meltano starting, the tap
reading, the target writing (mid-POST included), STATE being written. The whole process group
(meltano, tap, target) gets SIGKILL, as an OOM kill or a lost container would do. (Running the
two loops at once was tried: on two cores the runs then take twice as long, nothing is gained.)

After every kill: the bookmark is never past a record that is not in the destination, and nothing
is in the destination twice. After the loop: one normal run, then the destination holds exactly
the expected set, each record once.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SECTION = "kill -9"
KILL_POINTS = 20
MAX_ATTEMPTS = 40  # a run that ends before its kill delay is not a kill point; bounded anyway
LOOP_BUDGET_S = 420  # the loop's bound; ~60-80 s idle, 2-3x that beside a second xdist worker
MOMENT_TO_FORTNOX = "dev:tap-moment-to-target-fortnox"
EXPENSES_TO_MOMENT = "dev:tap-fortnox-expenses-to-target-moment"
WRITE_LATENCY = 0.3  # seconds per write request: a run's writes take a second or two
GOLDEN = 0.6180339887


def kill_fraction(attempt: int) -> float:
    """Where in a run attempt `attempt` kills it: 0.04 … 0.98 of its length, deterministic
    (golden-ratio steps fill the interval without clustering). The square root leans the spread
    towards the end of the run: Meltano's own start-up is most of a short run, and the kills
    that matter most land once the tap reads and the target writes."""
    return 0.04 + 0.94 * math.sqrt((attempt * GOLDEN) % 1.0)


def last_seq(sandbox: Any) -> int:
    return int(sandbox.admin("GET", "requests?since=999999999")["last"])


def api_requests_since(sandbox: Any, seq: int) -> list[dict[str, Any]]:
    return list(sandbox.admin("GET", f"requests?since={seq}")["requests"])


def is_write(request: dict[str, Any]) -> bool:
    return request["method"] in ("POST", "PUT", "PATCH")


@dataclass
class Side:
    """A sandbox one end of a job talks to, and which of its logged requests are that job's."""

    sandbox: Any
    ours: Callable[[dict[str, Any]], bool]

    def mark(self) -> int:
        return last_seq(self.sandbox)

    def started_between(self, seq: int, start: float, end: float) -> list[dict[str, Any]]:
        """Our requests logged after `seq` that the server began in [start, end) (wall clock).

        The log notes a request when it is answered, so a request in flight at a kill is noted
        after it: it is told by its start time (answer time minus duration), not its position.
        """
        return [
            r
            for r in api_requests_since(self.sandbox, seq)
            if self.ours(r) and start <= r["time"] - r["ms"] / 1000 < end
        ]


class KillLoop:
    """One pipeline's loop: time a whole run, then kill runs at spread fractions of that time."""

    def __init__(
        self,
        kit: Any,
        job: str,
        source: Side,
        destination: Side,
        add_source_records: Callable[[], None],
        check_after_run: Any,
    ) -> None:
        self.kit, self.job = kit, job
        self.source, self.destination = source, destination
        self.add_source_records, self.check = add_source_records, check_after_run
        self.kills: list[dict[str, Any]] = []

    def timed_run(self) -> float:
        """One whole run with the loop's faults and the usual amount of new records: its length
        is what the kill fractions are taken of (measured here, so load does not skew them)."""
        self.add_source_records()
        before = self.check.snapshot()
        started = time.monotonic()
        result = self.kit.pipelines.run("--force", self.job, check=False)
        seconds = time.monotonic() - started
        assert result.returncode == 0, result.stderr[-3000:]
        self.check(before, killed=False)
        return seconds

    def run(self) -> None:
        run_seconds = self.timed_run()
        self.run_seconds = round(run_seconds, 1)
        deadline = time.monotonic() + LOOP_BUDGET_S
        for attempt in range(MAX_ATTEMPTS):
            if len(self.kills) >= KILL_POINTS or time.monotonic() > deadline:
                break
            self.add_source_records()
            before = self.check.snapshot()
            source_seq, destination_seq = self.source.mark(), self.destination.mark()
            # By kills so far: a run that ended before its kill gets the same point again, timed
            # by that run's own length (runs vary with the machine's load).
            fraction = kill_fraction(len(self.kills))
            delay = round(run_seconds * fraction, 2)
            # --force: the killed run is still "running" in Meltano's system database, and
            # Meltano refuses a new run of the same state id for 5 minutes (then marks it stale).
            # A scheduler's next run after a crash is refused the same way: delayed, nothing lost.
            started_at = time.time()
            run = self.kit.background("--force", self.job).start(f"kill-{self.job}-{attempt}")
            assert run.process is not None
            try:
                run.process.wait(delay)
                finished = True
            except subprocess.TimeoutExpired:
                finished = False
            if finished:
                run_seconds = time.time() - started_at
                run.wait(5)
            else:
                killed_at = time.time()
                run.kill9()
                # Phases are read from the logs after the loop, when requests that were in
                # flight at the kill have been answered and noted.
                self.kills.append(
                    {
                        "delay_s": delay,
                        "fraction": round(fraction, 2),
                        "window": (source_seq, destination_seq, started_at, killed_at),
                    }
                )
            self.check(before, killed=not finished)
        self.classify()
        assert len(self.kills) >= KILL_POINTS, (
            f"only {len(self.kills)} of {KILL_POINTS} runs were still running at their kill "
            f"(a whole run took {run_seconds:.1f} s)"
        )

    def classify(self) -> None:
        """Each kill's phase: requests of this run the source and destination began before it,
        and whether a write was in flight (begun before the kill, answered after it)."""
        for kill in self.kills:
            source_seq, destination_seq, started_at, killed_at = kill.pop("window")
            reads = self.source.started_between(source_seq, started_at, killed_at)
            writes = [
                r
                for r in self.destination.started_between(destination_seq, started_at, killed_at)
                if is_write(r)
            ]
            kill["source_requests"] = len(reads)
            kill["destination_writes"] = len(writes)
            kill["write_in_flight"] = any(r["time"] > killed_at for r in writes)

    def figures(self) -> dict[str, Any]:
        """Kill points per phase (exclusive), as the sandboxes' request logs saw each run."""
        kills = self.kills
        return {
            "kill_points": len(kills),
            "before_the_tap_read": sum(1 for k in kills if not k["source_requests"]),
            "while_reading": sum(
                1 for k in kills if k["source_requests"] and not k["destination_writes"]
            ),
            "after_writes_began": sum(
                1 for k in kills if k["source_requests"] and k["destination_writes"]
            ),
            "of_these_mid_write": sum(1 for k in kills if k["write_in_flight"]),
            "delays_s": f"{min(k['delay_s'] for k in kills)}–{max(k['delay_s'] for k in kills)}",
            "whole_run_s": self.run_seconds,
        }


class FortnoxBookmarks:
    """After each run: every Moment record at or before the stored bookmark is in Fortnox, and
    no Moment number is in Fortnox twice."""

    def __init__(self, kit: Any) -> None:
        self.kit = kit

    def snapshot(self) -> None:
        return None

    def __call__(self, _before: None, *, killed: bool) -> None:
        self.kit.oracle.assert_bookmarks_not_past_unwritten()
        for resource in ("customers", "projects", "invoices"):
            listed = self.kit.oracle.fortnox_numbers(resource)
            twice = sorted({n for n in listed if listed.count(n) > 1})
            assert not twice, f"{resource} in Fortnox twice after a kill: {twice}"


class ExpenseBookmarks:
    """After each run: no expense twice in Moment; if the run moved the bookmark, every expense
    row posted before the run started is in Moment (the tap's mark is the time its window was
    read, so it covers them)."""

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


@pytest.fixture(scope="module", autouse=True)
def steady_run_times(kit: Any) -> None:
    """Kill delays are fractions of one timed run, so every run must take about as long.

    With the client limiter on, a run started right after another waits for the requests that
    run left in the shared window, and how many depends on where the kill fell: run times would
    vary with the kill pattern. The sandbox's limiter is off here, and what the loop proves is
    state and idempotency across kills, not pacing (the rate-limit tests prove that), so the
    plugins run without their limiter.
    """
    kit.pipelines.extra_env.update(
        {"TARGET_FORTNOX_MAX_REQUESTS_PER_5S": "0", "TAP_FORTNOX_EXPENSES_MAX_REQUESTS_PER_5S": "0"}
    )


def test_kill9_moment_to_fortnox(kit: Any) -> None:
    kit.pipelines.run("moment-to-fortnox")  # the seed's full load, undisturbed
    for method in ("POST", "PUT"):
        kit.fault("fortnox", kind="latency", seconds=WRITE_LATENCY, method=method, path="^/3/")
    # A phase is told by requests of this job: tap-moment reads customers first, and
    # target-fortnox is the only writer to Fortnox (the oracle only reads).
    loop = KillLoop(
        kit,
        "moment-to-fortnox",
        Side(kit.pipelines.moment, lambda r: r["method"] == "GET" and "/customers" in r["path"]),
        Side(kit.pipelines.fortnox, is_write),
        lambda: kit.changes.add(customers=1),
        FortnoxBookmarks(kit),
    )
    started = time.monotonic()
    try:
        loop.run()
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
        **loop.figures(),
        loop_seconds=loop_seconds,
        records_lost=0,
        records_duplicated=0,
        fortnox_equals_moment=sizes,
    )


def test_kill9_fortnox_expenses_to_moment(kit: Any) -> None:
    # Expenses need their projects in Fortnox with a start date: the first job puts them there
    # (--force: the other loop's last killed run may still count as running).
    kit.pipelines.run("--force", "moment-to-fortnox")
    kit.pipelines.run("fortnox-expenses-to-moment")
    posted: list[str] = []
    counter = iter(range(1, 10_000))

    def add_supplier_invoices() -> None:
        for _ in range(3):
            n = next(counter)
            posted.append(kit.post_supplier_invoice("5001", 2000 + n, f"Kill {n}")[1])

    for method in ("POST", "PATCH"):
        kit.fault(
            "moment", kind="latency", seconds=WRITE_LATENCY, method=method, path="projectExpenses"
        )
    # tap-fortnox-expenses reads supplier invoices; target-moment writes project expenses.
    loop = KillLoop(
        kit,
        "fortnox-expenses-to-moment",
        Side(kit.pipelines.fortnox, lambda r: r["path"].startswith("/3/supplierinvoices")),
        Side(kit.pipelines.moment, lambda r: is_write(r) and "projectExpenses" in r["path"]),
        add_supplier_invoices,
        ExpenseBookmarks(kit, posted),
    )
    started = time.monotonic()
    try:
        loop.run()
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
        **loop.figures(),
        loop_seconds=loop_seconds,
        records_lost=0,
        records_duplicated=0,
        expense_rows_posted=len(posted),
        expenses_in_moment=len(refs),
    )
