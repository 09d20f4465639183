"""Shared fixtures: a fake clock, a fake job runner that measures concurrency, a trigger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from moment_webhooks.trigger import JobTrigger


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeRunner:
    """Counts runs and the most runs ever in flight at once; can block until released."""

    def __init__(self, exit_codes: list[int] | None = None, blocking: bool = False) -> None:
        self.exit_codes = list(exit_codes or [])
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        if not blocking:
            self.release.set()
        self._guard = threading.Lock()

    def run(self) -> int:
        with self._guard:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.release()
        try:
            if not self.release.wait(10):
                raise AssertionError("FakeRunner was never released")
            return self.exit_codes.pop(0) if self.exit_codes else 0
        finally:
            with self._guard:
                self.in_flight -= 1


@pytest.fixture
def make_runner() -> type[FakeRunner]:
    """The FakeRunner class (test modules cannot import conftest under importlib mode)."""
    return FakeRunner


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "locks" / "moment-to-fortnox.acme.lock"


@pytest.fixture
def make_trigger(lock_path: Path) -> Iterator[object]:
    """Factory for JobTriggers; any started worker is stopped after the test."""
    made: list[JobTrigger] = []

    def make(runner: FakeRunner, **kwargs: object) -> JobTrigger:
        kwargs.setdefault("debounce_seconds", 0.0)
        trigger = JobTrigger(runner, lock_path=lock_path, tenant="acme", **kwargs)  # type: ignore[arg-type]
        made.append(trigger)
        return trigger

    yield make
    for trigger in made:
        trigger.stop(grace_seconds=5)
