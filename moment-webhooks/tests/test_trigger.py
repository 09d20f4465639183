"""JobTrigger: coalescing, debounce, single flight, one queued batch, failures, tenant lock."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from moment_webhooks.trigger import JobTrigger


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_burst_of_webhooks_coalesces_into_one_run_after_debounce(
    make_trigger: Any, make_runner: Any, clock: Any
) -> None:
    runner = make_runner()
    trigger: JobTrigger = make_trigger(runner, debounce_seconds=2.0, clock=clock)
    for i in range(100):
        trigger.notify("invoices" if i % 2 else "customers")
        clock.advance(0.01)

    assert trigger.run_due() is None, "no run before the burst has been quiet for the debounce"
    assert trigger.due_in() == pytest.approx(2.0 - 0.01)
    assert trigger.status()["phase"] == "debouncing"
    clock.advance(1.98)
    assert trigger.run_due() is None
    clock.advance(0.02)

    record = trigger.run_due()

    assert record is not None
    assert runner.calls == 1
    assert record.triggers_coalesced == 100
    assert record.triggers_by_entity == {"customers": 50, "invoices": 50}
    assert record.exit_code == 0
    assert trigger.run_due() is None, "the batch is consumed by its run"
    assert trigger.due_in() is None
    status = trigger.status()
    assert status["phase"] == "idle"
    assert status["runs_total"] == 1
    assert status["last_run"]["triggers_coalesced"] == 100


def test_max_wait_caps_a_steady_trickle(make_trigger: Any, make_runner: Any, clock: Any) -> None:
    runner = make_runner()
    trigger: JobTrigger = make_trigger(
        runner, debounce_seconds=2.0, max_wait_seconds=5.0, clock=clock
    )
    for _ in range(4):  # one webhook every 1.5 s keeps the debounce from ever expiring
        trigger.notify("projects")
        clock.advance(1.5)
    assert clock.now == 1006.0
    # The first webhook came at 1000.0, so the cap (1005.0) has passed although the last
    # webhook (1004.5) is younger than the debounce.
    assert trigger.due_in() == 0.0
    record = trigger.run_due()
    assert record is not None
    assert record.triggers_coalesced == 4


def test_one_run_in_flight_and_one_batch_queued_behind_it(
    make_trigger: Any, make_runner: Any
) -> None:
    runner = make_runner(blocking=True)
    trigger: JobTrigger = make_trigger(runner)
    trigger.start()
    trigger.notify("invoices")
    assert runner.started.acquire(timeout=5)

    senders = [
        threading.Thread(target=lambda: [trigger.notify("customers") for _ in range(10)])
        for _ in range(5)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    status = trigger.status()
    assert status["in_flight"] is True
    assert status["phase"] == "running"
    assert status["queued"] is True
    assert status["queued_triggers"] == 50
    assert runner.calls == 1, "nothing starts while a run is in flight"

    runner.release.set()
    assert trigger.wait_idle(timeout=5)

    assert runner.calls == 2, "the 50 webhooks during the run made exactly one more run"
    assert runner.max_in_flight == 1
    last = trigger.status()["last_run"]
    assert last["triggers_coalesced"] == 50
    assert last["triggers_by_entity"] == {"customers": 50}


def test_concurrent_run_due_callers_start_a_single_run(make_trigger: Any, make_runner: Any) -> None:
    runner = make_runner(blocking=True)
    trigger: JobTrigger = make_trigger(runner)
    trigger.notify("invoices")
    callers = [threading.Thread(target=trigger.run_due) for _ in range(8)]
    for caller in callers:
        caller.start()
    assert runner.started.acquire(timeout=5)
    runner.release.set()
    for caller in callers:
        caller.join(5)
    assert runner.calls == 1
    assert runner.max_in_flight == 1


def test_failed_run_is_logged_with_exit_code_and_next_webhook_runs_again(
    make_trigger: Any, make_runner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runner = make_runner(exit_codes=[3, 0])
    trigger: JobTrigger = make_trigger(runner)
    trigger.notify("customers")
    with caplog.at_level(logging.INFO, logger="moment_webhooks"):
        failed = trigger.run_due()

    assert failed is not None
    assert failed.exit_code == 3
    assert not failed.succeeded
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "exit_code=3" in errors[0]
    assert "triggers_coalesced=1" in errors[0]
    assert trigger.status()["failures_total"] == 1
    assert trigger.run_due() is None, "a failure is not retried in a loop"

    trigger.notify("customers")
    retried = trigger.run_due()
    assert retried is not None
    assert retried.exit_code == 0
    status = trigger.status()
    assert status["runs_total"] == 2
    assert status["failures_total"] == 1
    assert status["last_run"]["succeeded"] is True


def test_runner_that_raises_is_a_failed_run_and_the_worker_survives(
    make_trigger: Any, make_runner: Any
) -> None:
    class ExplodingRunner:
        calls = 0

        def run(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise OSError("disk full")
            return 0

    runner = ExplodingRunner()
    trigger: JobTrigger = make_trigger(runner)
    trigger.start()
    trigger.notify("invoices")
    _wait_for(lambda: trigger.status()["runs_total"] == 1)
    last = trigger.status()["last_run"]
    assert last["exit_code"] is None
    assert last["error"] == "OSError: disk full"

    trigger.notify("invoices")
    _wait_for(lambda: trigger.status()["runs_total"] == 2)
    assert trigger.status()["last_run"]["succeeded"] is True


def _hold_lock_in_other_process(lock_path: Path) -> subprocess.Popen[str]:
    """A separate process (like a cron-started run) holding the tenant lock until stdin closes."""
    code = (
        "import filelock, sys\n"
        f"lock = filelock.FileLock({str(lock_path)!r}); lock.acquire()\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_webhook_run_waits_for_a_run_in_another_process(
    make_trigger: Any, make_runner: Any, lock_path: Path
) -> None:
    holder = _hold_lock_in_other_process(lock_path)
    try:
        runner = make_runner()
        trigger: JobTrigger = make_trigger(runner, lock_poll_seconds=0.05)
        trigger.start()
        for _ in range(20):
            trigger.notify("invoices")
        _wait_for(lambda: trigger.status()["phase"] == "waiting_for_lock")
        time.sleep(0.2)  # give a (wrong) run the chance to start despite the lock
        assert runner.calls == 0
        trigger.notify("projects")  # arrives while waiting: queued behind, not a second run
        assert trigger.status()["queued_triggers"] == 1
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(5)

    assert trigger.wait_idle(timeout=5)
    assert runner.calls == 2
    assert runner.max_in_flight == 1


def test_stop_while_waiting_for_the_lock_drops_the_batch(
    make_trigger: Any, make_runner: Any, lock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = _hold_lock_in_other_process(lock_path)
    try:
        runner = make_runner()
        trigger: JobTrigger = make_trigger(runner, lock_poll_seconds=0.05)
        trigger.start()
        trigger.notify("invoices")
        _wait_for(lambda: trigger.status()["phase"] == "waiting_for_lock")
        with caplog.at_level(logging.WARNING, logger="moment_webhooks"):
            assert trigger.stop(grace_seconds=5)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(5)
    assert runner.calls == 0
    assert any("scheduled run" in r.getMessage() for r in caplog.records)
