"""JobTrigger: turns a stream of webhooks into few, never overlapping, runs of the job.

The rules, for one tenant:

- :meth:`JobTrigger.notify` only counts the webhook and wakes the worker, so the HTTP handler can
  answer at once.
- Webhooks that arrive before a run starts form one *batch*; the batch runs when no webhook came
  for ``debounce_seconds`` (a burst gives one run), or at the latest ``max_wait_seconds`` after
  its first webhook (a steady trickle cannot postpone it for ever).
- At most one run is in flight and at most one batch is queued behind it: webhooks that arrive
  during a run join the queued batch, however many there are.
- Every run holds the tenant's exclusive file lock, the same lock ``moment-webhooks run`` takes
  for scheduled runs, so a webhook run and a cron run in another process never overlap: the
  second one waits for the lock.
- A failed run is logged with its exit code and not retried by itself; the next webhook triggers
  a run again, and the scheduled run is the safety net (the job is incremental on
  ``lastModifiedDate``, so nothing is lost, only delayed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import filelock

logger = logging.getLogger(__name__)


class JobRunner(Protocol):
    """Runs the job once and returns its exit code (0 = success)."""

    def run(self) -> int: ...


class TriggerPhase(StrEnum):
    """What the trigger is doing now, as ``GET /health`` shows it."""

    IDLE = "idle"
    DEBOUNCING = "debouncing"
    WAITING_FOR_LOCK = "waiting_for_lock"
    RUNNING = "running"


@dataclass(frozen=True)
class RunRecord:
    """One finished run: when, how long, its exit code and the webhooks it coalesced."""

    started_at: str
    duration_seconds: float
    exit_code: int | None
    triggers_coalesced: int
    triggers_by_entity: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "succeeded": self.succeeded}


class JobTrigger:
    """Coalescing, single-flight, per-tenant-locked trigger of one job (see the module doc)."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        lock_path: Path,
        tenant: str = "default",
        debounce_seconds: float = 2.0,
        max_wait_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        lock_poll_seconds: float = 0.25,
    ) -> None:
        self.runner = runner
        self.tenant = tenant
        self.lock_path = lock_path
        self.debounce_seconds = debounce_seconds
        self.max_wait_seconds = max(max_wait_seconds, debounce_seconds)
        self._clock = clock
        self._lock_poll_seconds = lock_poll_seconds
        self._cond = threading.Condition()
        self._pending: Counter[str] = Counter()
        self._first_pending_at = 0.0
        self._last_pending_at = 0.0
        self._phase = TriggerPhase.IDLE
        self._in_flight = False
        self._stopping = False
        self._last_run: RunRecord | None = None
        self._runs_total = 0
        self._failures_total = 0
        self._worker: threading.Thread | None = None

    # -- called by the receiver -------------------------------------------------------------

    def notify(self, entity_type: str = "unknown") -> None:
        """Record one webhook; never blocks on a run."""
        with self._cond:
            now = self._clock()
            if not self._pending:
                self._first_pending_at = now
            self._pending[entity_type] += 1
            self._last_pending_at = now
            self._cond.notify_all()

    def status(self) -> dict[str, Any]:
        """A snapshot for ``GET /health``: in-flight, queued and the last run."""
        with self._cond:
            queued = sum(self._pending.values())
            if self._in_flight:
                phase = self._phase
            else:
                phase = TriggerPhase.DEBOUNCING if queued else TriggerPhase.IDLE
            return {
                "tenant": self.tenant,
                "phase": str(phase),
                "in_flight": self._in_flight,
                "queued": queued > 0,
                "queued_triggers": queued,
                "runs_total": self._runs_total,
                "failures_total": self._failures_total,
                "last_run": self._last_run.as_dict() if self._last_run else None,
            }

    # -- running, synchronously (tests) or from the worker thread ---------------------------

    def due_in(self) -> float | None:
        """Seconds until the queued batch may start (0 = now); None when nothing is queued."""
        with self._cond:
            return self._due_in_locked()

    def run_due(self) -> RunRecord | None:
        """Run the queued batch if it is due and no run is in flight; return the run's record.

        Taking the batch and marking the run in flight happen under one lock, so however many
        threads call this, one run at most is in flight.
        """
        with self._cond:
            due = self._due_in_locked()
            if self._in_flight or self._stopping or due is None or due > 0:
                return None
            batch, self._pending = self._pending, Counter()
            self._in_flight = True
            self._phase = TriggerPhase.WAITING_FOR_LOCK
        try:
            return self._run_batch(batch)
        finally:
            with self._cond:
                self._in_flight = False
                self._phase = TriggerPhase.IDLE
                self._cond.notify_all()

    # -- background worker ------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread that runs batches when they are due."""
        if self._worker is not None:
            raise RuntimeError("JobTrigger.start() called twice")
        self._worker = threading.Thread(
            target=self._work, name=f"job-trigger-{self.tenant}", daemon=True
        )
        self._worker.start()

    def stop(self, grace_seconds: float = 30.0) -> bool:
        """Stop the worker; True when it ended in time.

        The run in flight may finish within the grace time, else it is terminated; a queued
        batch is dropped (the next scheduled run covers it).
        """
        with self._cond:
            self._stopping = True
            dropped = sum(self._pending.values())
            self._cond.notify_all()
        if dropped:
            logger.warning(
                "tenant %s: stopping with %d webhook(s) not yet run; the next scheduled run of "
                "the job picks up their changes",
                self.tenant,
                dropped,
            )
        if self._worker is None:
            return True
        self._worker.join(grace_seconds)
        if self._worker.is_alive():
            terminate = getattr(self.runner, "terminate", None)
            if callable(terminate):
                logger.warning(
                    "tenant %s: run still going after %.0f s; terminating it",
                    self.tenant,
                    grace_seconds,
                )
                terminate()
            self._worker.join(grace_seconds)
        return not self._worker.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight (True), or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # -- internals ------------------------------------------------------------------------

    def _due_in_locked(self) -> float | None:
        if not self._pending:
            return None
        quiet_at = self._last_pending_at + self.debounce_seconds
        cap_at = self._first_pending_at + self.max_wait_seconds
        return max(0.0, min(quiet_at, cap_at) - self._clock())

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    due = self._due_in_locked()
                    if due is not None and due <= 0 and not self._in_flight:
                        break
                    # Woken by notify() and by the end of a run; the timeout re-checks the
                    # debounce deadline (none while a run is in flight: its end wakes us).
                    self._cond.wait(timeout=None if due is None or self._in_flight else due)
                if self._stopping:
                    return
            self.run_due()

    def _acquire_tenant_lock(self) -> filelock.BaseFileLock | None:
        """Wait for the tenant's cross-process lock; None if the trigger is stopped meanwhile."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.lock_path))
        waited_logged = False
        while True:
            try:
                lock.acquire(timeout=self._lock_poll_seconds)
                return lock
            except filelock.Timeout:
                if not waited_logged:
                    logger.info(
                        "tenant %s: another run of the job holds %s; waiting for it to finish",
                        self.tenant,
                        self.lock_path,
                    )
                    waited_logged = True
                with self._cond:
                    if self._stopping:
                        return None

    def _run_batch(self, batch: Counter[str]) -> RunRecord | None:
        coalesced = sum(batch.values())
        lock = self._acquire_tenant_lock()
        if lock is None:
            logger.warning(
                "tenant %s: stopped while waiting for the run lock; %d webhook(s) not run "
                "(the next scheduled run covers them)",
                self.tenant,
                coalesced,
            )
            return None
        try:
            with self._cond:
                self._phase = TriggerPhase.RUNNING
            started_at = datetime.now(UTC).isoformat(timespec="seconds")
            start = self._clock()
            logger.info(
                "tenant %s: run started for %d coalesced webhook(s) %s",
                self.tenant,
                coalesced,
                dict(sorted(batch.items())),
            )
            exit_code: int | None
            error: str | None = None
            try:
                exit_code = self.runner.run()
            except Exception as exc:
                # A broken runner must not kill the worker: the next webhook tries again.
                logger.exception("tenant %s: the job runner raised", self.tenant)
                exit_code, error = None, f"{type(exc).__name__}: {exc}"
            duration = round(self._clock() - start, 3)
        finally:
            lock.release()
        record = RunRecord(
            started_at=started_at,
            duration_seconds=duration,
            exit_code=exit_code,
            triggers_coalesced=coalesced,
            triggers_by_entity=dict(batch),
            error=error,
        )
        self._record(record)
        return record

    def _record(self, record: RunRecord) -> None:
        with self._cond:
            self._last_run = record
            self._runs_total += 1
            if not record.succeeded:
                self._failures_total += 1
        if record.succeeded:
            logger.info(
                "tenant %s: run finished: triggers_coalesced=%d duration=%.2fs exit_code=0",
                self.tenant,
                record.triggers_coalesced,
                record.duration_seconds,
            )
        else:
            logger.error(
                "tenant %s: run FAILED: triggers_coalesced=%d duration=%.2fs exit_code=%s; "
                "see the job's log above; the next webhook triggers a new run and the "
                "scheduled run retries too",
                self.tenant,
                record.triggers_coalesced,
                record.duration_seconds,
                record.exit_code,
            )
