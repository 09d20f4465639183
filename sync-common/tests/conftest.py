"""Fixtures for sync-common: clocks. (The SMTP servers are sync_common/testing/smtp.py's.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


class StepClock:
    """A UTC clock that advances ``step`` on every call, so durations are exact in tests."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)):
        self.now = start or datetime(2026, 11, 28, 21, 0, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


@pytest.fixture
def step_clock() -> StepClock:
    return StepClock()
