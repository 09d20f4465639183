"""RunSummary: counting, bounded failure list, the JSON file, the log line and the tables."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sync_common import OUTCOMES, RunSummary, load_runs, render_runs_table


def test_counts_every_outcome_per_stream(tmp_path: Path, step_clock) -> None:
    summary = RunSummary("target-fortnox", tmp_path, clock=step_clock)
    for _ in range(3):
        summary.record("customers", "created")
    summary.record("customers", "updated", key="1001")
    summary.record("customers", "unchanged")
    summary.record("projects", "conflict", key="P1", detail="differs from booked invoice")
    summary.record("projects", "skipped", key="P2", detail="no start date")
    summary.record("projects", "failed", key="P3", detail="Fortnox 2000637: number taken")

    data = summary.to_dict()
    assert data["streams"]["customers"] == {
        "created": 3,
        "updated": 1,
        "unchanged": 1,
        "skipped": 0,
        "failed": 0,
        "conflict": 0,
        "skipped_reasons": {},
    }
    projects = data["streams"]["projects"]
    assert (projects["conflict"], projects["skipped"], projects["failed"]) == (1, 1, 1)
    assert projects["skipped_reasons"] == {"no start date": 1}
    assert data["totals"] == {
        "created": 3,
        "updated": 1,
        "unchanged": 1,
        "skipped": 1,
        "failed": 1,
        "conflict": 1,
    }
    assert data["failures"][0]["key"] == "P3"
    assert data["failures"][0]["message"] == "Fortnox 2000637: number taken"
    assert data["conflicts"][0]["message"] == "differs from booked invoice"
    assert summary.has_failures


def test_unknown_outcome_is_rejected_with_the_valid_ones(tmp_path: Path) -> None:
    summary = RunSummary("target-fortnox", tmp_path)
    with pytest.raises(ValueError, match=r"unknown outcome 'deleted'.*created, updated"):
        summary.record("customers", "deleted")


def test_skips_are_counted_per_reason(tmp_path: Path) -> None:
    summary = RunSummary("target-moment", tmp_path)
    summary.skip("project_expenses", "unknown project", key="4711-1")
    summary.skip("project_expenses", "unknown project", key="4711-2")
    summary.skip("project_expenses", "already invoiced in Moment", key="4712-1")
    counts = summary.to_dict()["streams"]["project_expenses"]
    assert counts["skipped"] == 3
    assert counts["skipped_reasons"] == {"unknown project": 2, "already invoiced in Moment": 1}
    assert not summary.has_failures


def test_failure_list_is_bounded_but_every_failure_counted(tmp_path: Path) -> None:
    summary = RunSummary("target-fortnox", tmp_path, max_kept_issues=5)
    for number in range(12):
        summary.fail("customers", number, f"bad record {number}")
    data = summary.to_dict()
    assert data["streams"]["customers"]["failed"] == 12
    assert [f["key"] for f in data["failures"]] == ["0", "1", "2", "3", "4"]
    assert data["failures_not_kept"] == 7
    assert summary.failure_count == 12


def test_requests_add_up(tmp_path: Path) -> None:
    summary = RunSummary("target-fortnox", tmp_path)
    summary.add_requests(requests=10, rate_limited=1, retries=2)
    summary.add_requests(requests=5)
    assert summary.to_dict()["requests"] == {"requests": 15, "rate_limited": 1, "retries": 2}


def test_finish_writes_json_logs_line_and_table(
    tmp_path: Path, step_clock, caplog: pytest.LogCaptureFixture
) -> None:
    summary = RunSummary("target-fortnox", tmp_path / "output", clock=step_clock)
    summary.record("customers", "created", key="1001")
    summary.record("customers", "updated", key="1002")
    summary.add_requests(requests=4, rate_limited=1, retries=1)
    with caplog.at_level(logging.INFO, logger="sync_common"):
        path = summary.finish()

    assert path.parent == tmp_path / "output" / "runs"
    assert re.fullmatch(r"20261128T210000\d{6}Z-target-fortnox\.json", path.name)
    # Atomic write: no temporary file left beside it.
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    written = json.loads(path.read_text())
    assert written == summary.to_dict()
    assert written["plugin"] == "target-fortnox"
    assert written["started_at"] == "2026-11-28T21:00:00+00:00"
    assert written["ended_at"] is not None
    assert written["duration_seconds"] > 0

    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        "target-fortnox run: customers created=1 updated=1 unchanged=0 skipped=0 failed=0 "
        f"conflict=0; requests=4 429s=1 retries=1 duration={written['duration_seconds']:.1f}s"
    )
    assert summary.table() in messages[1]


def test_table_has_a_row_per_stream_totals_and_skip_reasons(tmp_path: Path) -> None:
    summary = RunSummary("target-moment", tmp_path)
    summary.add_stream("projects")
    summary.record("project_expenses", "created")
    summary.skip("project_expenses", "unknown project")
    lines = summary.table().splitlines()
    assert lines[0].split() == ["stream", *OUTCOMES]
    assert lines[2].split() == ["projects", "0", "0", "0", "0", "0", "0"]
    assert lines[3].split() == ["project_expenses", "1", "0", "0", "1", "0", "0"]
    assert lines[4].split() == ["total", "1", "0", "0", "1", "0", "0"]
    assert "project_expenses skipped 1: unknown project" in lines[5]


def _finished_run(results_dir: Path, plugin: str, start: datetime, created: int) -> Path:
    clock_values = iter([start, start + timedelta(seconds=7), start + timedelta(seconds=12)])
    summary = RunSummary(plugin, results_dir, clock=lambda: next(clock_values))
    for _ in range(created):
        summary.record("customers", "created")
    summary.add_requests(requests=created, rate_limited=2)
    return summary.finish()


def test_load_runs_returns_runs_oldest_first_and_skips_broken_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for day in (3, 1, 2):
        _finished_run(tmp_path, "target-fortnox", base + timedelta(days=day), created=day)
    _finished_run(tmp_path, "target-moment", base + timedelta(days=4), created=9)
    (tmp_path / "runs" / "20261101T000000000000Z-broken.json").write_text('{"plugin": "x", "str')

    with caplog.at_level(logging.WARNING):
        runs = load_runs(tmp_path)
    assert [r["streams"]["customers"]["created"] for r in runs] == [1, 2, 3, 9]
    assert "skipping unreadable run summary" in caplog.text

    assert [r["plugin"] for r in load_runs(tmp_path, limit=2)] == [
        "target-fortnox",
        "target-moment",
    ]
    only = load_runs(tmp_path, plugin="target-fortnox", limit=1)
    assert [r["streams"]["customers"]["created"] for r in only] == [3]
    assert load_runs(tmp_path / "nothing-here") == []


def test_render_runs_table(tmp_path: Path) -> None:
    start = datetime(2026, 11, 2, 21, 0, tzinfo=UTC)
    clock_values = iter([start, start + timedelta(seconds=1), start + timedelta(seconds=42)])
    summary = RunSummary("target-fortnox", tmp_path, clock=lambda: next(clock_values))
    summary.record("customers", "created")
    summary.record("projects", "failed", key="P1", detail="bad")
    summary.add_requests(requests=30, rate_limited=3)
    summary.finish()

    table = render_runs_table(load_runs(tmp_path))
    lines = table.splitlines()
    assert lines[0].split() == [
        "run",
        "plugin",
        "stream",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "failed",
        "conflict",
        "seconds",
        "429s",
    ]
    assert lines[2].split() == [
        "2026-11-02",
        "21:00:00Z",
        "target-fortnox",
        "customers",
        "1",
        "0",
        "0",
        "0",
        "0",
        "0",
        "42.0",
        "3",
    ]
    assert lines[3].split() == ["projects", "0", "0", "0", "0", "1", "0"]
    assert render_runs_table([]) == "no runs recorded yet"


def test_plugin_name_must_be_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without slashes"):
        RunSummary("../evil", tmp_path)
