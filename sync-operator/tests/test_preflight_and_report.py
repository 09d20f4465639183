"""PreflightReport verdicts, text and JSON; the sync-report command over real run files, also
one record's history (``--record``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sync_common import RunSummary
from sync_operator import CheckResult, PreflightReport, run_check
from sync_operator.report import main as report_main


def test_report_is_ready_unless_a_blocking_check_fails() -> None:
    report = PreflightReport("moment-to-fortnox")
    report.add(CheckResult("token", "pass", "valid"))
    report.add(CheckResult("ocr", "manual", "cannot be read", "Turn OCR off in Fortnox."))
    report.add(CheckResult("series", "warn", "gap", "Watch it."))
    assert report.ready
    assert report.exit_code == 0
    report.add(CheckResult("accounts", "fail", "2 missing", "Create them.", ["3999", "4999"]))
    assert not report.ready
    assert report.exit_code == 1
    data = json.loads(report.to_json())
    assert data["ready"] is False
    assert data["counts"] == {"pass": 1, "fail": 1, "warn": 1, "manual": 1}
    assert [c["blocking"] for c in data["checks"]] == [False, False, False, True]
    text = report.render()
    assert "[FAIL  ] accounts: 2 missing" in text
    assert "- 3999" in text
    assert "fix: Create them." in text
    assert "NOT READY" in text
    # A passing check's fix is noise: not printed.
    assert "valid" in text
    assert text.count("fix:") == 3


def test_a_check_that_raises_fails_by_name_and_the_others_still_run() -> None:
    report = PreflightReport("p")

    def broken() -> CheckResult:
        raise ConnectionError("no route to host")

    run_check(report, "moment-api", broken)
    run_check(report, "accounts", lambda: [CheckResult("accounts", "pass", "all there")])
    assert [(r.name, r.status) for r in report.results] == [
        ("moment-api", "fail"),
        ("accounts", "pass"),
    ]
    assert "ConnectionError: no route to host" in report.results[0].detail


def _write_run(folder: Path, plugin: str, start: datetime, created: int, failed: int = 0) -> None:
    times = iter([start, start + timedelta(seconds=4), start + timedelta(seconds=4)])
    summary = RunSummary(plugin, folder, clock=lambda: next(times))
    summary.record("customers", "created") if created else summary.add_stream("customers")
    for _ in range(created - 1):
        summary.record("customers", "created")
    for n in range(failed):
        summary.fail("customers", str(1000 + n), "Fortnox 2000637: number taken")
    summary.add_requests(requests=10, rate_limited=2)
    summary.finish()


def test_sync_report_merges_folders_limits_and_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = datetime(2026, 11, 1, 21, 0, tzinfo=UTC)
    _write_run(tmp_path / "a", "target-fortnox", t0, created=3)
    _write_run(tmp_path / "b", "target-moment", t0 + timedelta(hours=1), created=5)
    _write_run(tmp_path / "a", "target-fortnox", t0 + timedelta(hours=2), created=0, failed=1)
    argv = ["--results-dir", str(tmp_path / "a"), "--results-dir", str(tmp_path / "b")]

    assert report_main([*argv, "--limit", "2", "--failures"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("2026-")]
    assert [row.split()[2] for row in rows] == ["target-moment", "target-fortnox"]
    assert rows[0].split()[3:5] == ["customers", "5"]
    assert rows[1].split()[-2:] == ["4.0", "2"]  # seconds, 429s
    assert "failed customers 1000: Fortnox 2000637: number taken" in out

    assert report_main([*argv, "--plugin", "target-fortnox", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["totals"]["created"] for r in runs] == [3, 0]


def test_sync_report_without_runs_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report_main(["--results-dir", str(tmp_path)]) == 0
    assert "no runs recorded yet" in capsys.readouterr().out
    assert report_main(["--results-dir", str(tmp_path), "--limit", "-1"]) == 64


def test_sync_report_record_names_runs_that_listed_only_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = datetime(2026, 10, 1, 0, 2, tzinfo=UTC)
    first_clock = iter(t0 + timedelta(seconds=i) for i in range(100))
    first = RunSummary("target-fortnox", tmp_path, clock=lambda: next(first_clock), keep_days=7)
    first.add_stream("invoices")
    first.record("invoices", "created", "7012", "created detail", answer="created answer")
    first.finish()
    clock = iter(t0 + timedelta(days=1, seconds=i) for i in range(100))
    busy = RunSummary("target-fortnox", tmp_path, clock=lambda: next(clock), max_kept_records=1)
    busy.record("invoices", "created", "1")
    busy.record("invoices", "updated", "7012")  # not kept: beyond the bound
    busy.finish()

    assert report_main(["--results-dir", str(tmp_path), "--record", "invoices", "7012"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == [
        "invoices 7012: 1 event(s)",
        f"2026-10-01 00:02:01Z  target-fortnox  created  (run {t0:%Y%m%dT%H%M%S%fZ})",
        "    created detail",
        "    answer: created answer",
    ]
    assert "1 run(s) listed only part of their invoices records" in out
    assert f"target-fortnox {busy.run_id}" in out
