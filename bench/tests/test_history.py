"""The "report" rows' year of runs: both layouts hold the same runs, and the rows compare them."""

from __future__ import annotations

from pathlib import Path

from sync_common import load_runs

from bench.history import KEEP_DAYS, naive_runs, report_rows, write_year


def test_both_layouts_hold_the_same_runs_and_ours_is_compacted(tmp_path: Path) -> None:
    year = write_year(tmp_path, days=20, scheduled=12)

    assert year.runs == 20 * (12 + 10 + 2)
    assert year.compactions >= KEEP_DAYS - 1
    assert load_runs(year.ours) == naive_runs(year.baseline)
    files = {p.name[:8] for p in (year.ours / "runs").glob("*.json")}
    assert len(files) == KEEP_DAYS + 1  # a week of files, plus the last day
    assert [p.name for p in (year.ours / "runs" / "monthly").iterdir()] == ["2026-01.jsonl.gz"]
    assert len(list((year.baseline / "runs").glob("*.json"))) == year.runs


def test_report_rows_pass_only_when_ours_agrees_with_the_baseline(tmp_path: Path) -> None:
    rows = report_rows(tmp_path, days=20, scheduled=12)

    report, record, size, compaction = rows
    assert report.passed is True
    assert "same table as the baseline" in report.note
    assert record.passed is True
    assert "3 events" in record.note
    assert size.ours.startswith(f"{(KEEP_DAYS + 1) * 24 + 1:,} / ")
    assert compaction.passed is None
