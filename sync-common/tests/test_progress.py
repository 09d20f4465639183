"""ProgressReporter with an injected clock: throttling, rate and time left."""

from __future__ import annotations

import logging

import pytest
from sync_common import ProgressReporter
from sync_common.progress import format_duration


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reports_at_most_once_per_interval_with_rate_and_time_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    progress = ProgressReporter("customers", total=2550, interval_seconds=10, clock=clock)
    caplog.set_level(logging.INFO, logger="sync_common.progress")

    for _ in range(100):
        assert progress.tick() is None  # no time has passed
    clock.now += 9.9
    assert progress.tick(350) is None
    clock.now += 16.8  # 26.7 s after start
    assert progress.tick(750) == "customers: 1200 done, 44.9/s, ~30 s left"
    assert progress.tick() is None  # the next line waits for another interval
    assert [r.getMessage() for r in caplog.records] == ["customers: 1200 done, 44.9/s, ~30 s left"]


def test_without_total_there_is_no_estimate() -> None:
    clock = ManualClock()
    progress = ProgressReporter("invoices", interval_seconds=5, clock=clock)
    clock.now += 5
    assert progress.tick(50) == "invoices: 50 done, 10.0/s"


def test_finish_line_and_coarse_durations() -> None:
    clock = ManualClock()
    progress = ProgressReporter("projects", total=10, clock=clock)
    progress.tick(10)
    clock.now += 240
    assert progress.finish() == "projects: 10 done in 4 min, 0.0/s"
    assert format_duration(12.4) == "12 s"
    assert format_duration(600) == "10 min"
    assert format_duration(4 * 3600) == "4.0 h"
