"""Progress lines while a stream reads: records done, rate, and time left from Moment's total."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tap_moment.client import MomentStream


def test_each_stream_logs_progress_with_time_left_and_a_closing_line(
    sandbox_config: dict[str, Any],
    run_tap: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every record passes the interval, so every tick logs (the default is one line per 10 s).
    monkeypatch.setattr(MomentStream, "progress_interval_seconds", 0.0)
    with caplog.at_level(logging.INFO):
        run_tap({**sandbox_config, "page_size": 7}, streams={"customers"})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("customers: ")]
    # 30 seeded customers over 5 pages: the total is known from the first page on.
    assert lines[0].startswith("customers: 1 done, ")
    assert "left" in lines[0]
    assert lines[28].startswith("customers: 29 done, ")
    assert lines[-1].startswith("customers: 30 done in ")


def test_default_interval_keeps_a_short_sync_quiet(
    sandbox_config: dict[str, Any], run_tap: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        run_tap(sandbox_config, streams={"customers"})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("customers: ")]
    assert len(lines) == 1
    assert lines[0].startswith("customers: 30 done in ")
