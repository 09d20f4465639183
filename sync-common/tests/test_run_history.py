"""Run summaries over time: the bounded record list, compaction into monthly archives (also two
runs at once, a kill half-way, a damaged archive), reading the last runs fast, a record's history
and the ``sync-report --record`` command."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_common import RunSummary, keep_days_setting, load_runs, record_history
from sync_common import run_history as history_module
from sync_common.report import main as report_main
from sync_common.run_history import compact_runs
from sync_common.run_summary import MAX_EVENT_TEXT

T0 = datetime(2026, 10, 1, 0, 2, tzinfo=UTC)


def _run(
    results: Path,
    start: datetime,
    *,
    plugin: str = "target-fortnox",
    keep_days: int = 7,
    events: tuple[tuple[str, str, str], ...] = (),
) -> Path:
    """One finished run started at ``start`` (each clock call one second later)."""
    clock = iter(start + timedelta(seconds=i) for i in range(1000))
    summary = RunSummary(plugin, results, clock=lambda: next(clock), keep_days=keep_days)
    summary.add_stream("invoices")
    for stream, key, outcome in events:
        summary.record(stream, outcome, key, f"{outcome} detail", answer=f"{outcome} answer")
    return summary.finish()


def _archived(results: Path) -> list[tuple[str, str]]:
    lines = []
    for archive in sorted((results / "runs" / "monthly").glob("*.jsonl.gz")):
        with gzip.open(archive, "rt", encoding="utf-8") as file:
            lines += [json.loads(line) for line in file]
    return [(run["plugin"], run["run_id"]) for run in lines]


def test_a_run_lists_what_it_did_to_each_record_bounded(tmp_path: Path, step_clock: Any) -> None:
    summary = RunSummary("target-fortnox", tmp_path, clock=step_clock, max_kept_records=4)
    summary.record("invoices", "created", 7012, answer="created: DocumentNumber 7012")
    summary.record("invoices", "unchanged", 7013)  # nothing sent: counted, not listed
    summary.record("customers", "updated", "1001", "Email", answer="updated: CustomerNumber 1001")
    summary.skip("invoices", "dry run: would be created", 7014)
    summary.fail("customers", "1002", "x" * (MAX_EVENT_TEXT + 50), answer="HTTP 400 error 1")
    summary.record("invoices", "conflict", 7015, "differs")  # over the bound: counted only
    summary.record("invoices", "created")  # no key: nothing to list

    data = summary.to_dict()
    assert [(e["stream"], e["key"], e["outcome"]) for e in data["records"]] == [
        ("invoices", "7012", "created"),
        ("customers", "1001", "updated"),
        ("invoices", "7014", "skipped"),
        ("customers", "1002", "failed"),
    ]
    assert data["records_not_kept"] == 1
    assert data["records"][0]["answer"] == "created: DocumentNumber 7012"
    assert data["records"][1]["detail"] == "Email"
    assert data["records"][2]["detail"] == "dry run: would be created"
    failed = data["records"][3]
    assert len(failed["detail"]) == MAX_EVENT_TEXT
    assert failed["detail"].endswith("…")
    assert failed["answer"] == "HTTP 400 error 1"
    assert failed["time"] == data["failures"][0]["time"]
    assert len(data["failures"][0]["message"]) == MAX_EVENT_TEXT + 50  # the e-mail keeps it all
    assert data["totals"]["conflict"] == 1


def test_old_days_are_compacted_into_one_archive_per_month_and_read_back(tmp_path: Path) -> None:
    # 40 days across two months, two plugins, as the runs themselves compact at their end.
    written = []
    for day in range(40):
        for plugin, hour in (("target-fortnox", 0), ("tap-fortnox-expenses", 21)):
            start = T0 + timedelta(days=day, hours=hour)
            written.append((plugin, _run(tmp_path, start, plugin=plugin).name[:22]))
    runs_dir = tmp_path / "runs"
    last_day = (T0 + timedelta(days=39)).date()

    files = sorted(p.name for p in runs_dir.glob("*.json"))
    assert {name[:8] for name in files} == {
        f"{last_day - timedelta(days=d):%Y%m%d}" for d in range(8)
    }
    assert sorted(p.name for p in (runs_dir / "monthly").iterdir()) == [
        "2026-10.jsonl.gz",
        "2026-11.jsonl.gz",
    ]
    assert len(_archived(tmp_path)) == len(set(_archived(tmp_path))) == 80 - len(files)

    everything = load_runs(tmp_path)
    assert [(r["plugin"], r["run_id"]) for r in everything] == written
    assert load_runs(tmp_path, limit=3) == everything[-3:]
    assert load_runs(tmp_path, limit=30) == everything[-30:]  # files and an archive
    only = load_runs(tmp_path, limit=25, plugin="tap-fortnox-expenses")
    assert only == [r for r in everything if r["plugin"] == "tap-fortnox-expenses"][-25:]
    assert load_runs(tmp_path, limit=0) == []


def test_the_last_runs_are_read_without_parsing_older_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in range(70):  # 1 October to 9 December
        _run(tmp_path, T0 + timedelta(days=day))
    assert len(list((tmp_path / "runs").glob("*.json"))) == 8  # 2-9 December
    opened: list[str] = []
    parsed: list[Path] = []
    real_tail, real_parse = history_module.archive_tail, history_module._parse_run

    def tail(archive: Path, *args: Any) -> Any:
        opened.append(archive.name)
        return real_tail(archive, *args)

    def parse(text: str, where: Path, *args: Any) -> Any:
        parsed.append(where)
        return real_parse(text, where, *args)

    monkeypatch.setattr(history_module, "archive_tail", tail)
    monkeypatch.setattr(history_module, "_parse_run", parse)
    newest = load_runs(tmp_path, limit=5)
    assert [r["started_at"][:10] for r in newest] == [f"2026-12-0{d}" for d in range(5, 10)]
    # December's archive (1 December) may hold newer runs than the files, so its tail is read:
    # 5 files and at most 5 archive lines parsed, November and October never opened.
    assert opened == ["2026-12.jsonl.gz"]
    assert len(parsed) <= 10

    opened.clear()
    assert len(load_runs(tmp_path, limit=20)) == 20
    assert opened == ["2026-12.jsonl.gz", "2026-11.jsonl.gz"]  # never October


def test_a_kill_between_archive_and_removal_counts_each_run_once(tmp_path: Path) -> None:
    for day in range(10):
        _run(tmp_path, T0 + timedelta(days=day), keep_days=0)
    early = T0 + timedelta(hours=5)
    kept = _run(tmp_path, early, keep_days=0)  # a day-0 run, still a file
    copy = kept.read_text()
    compact_runs(tmp_path, 3, now=T0 + timedelta(days=9))
    assert not kept.exists()
    # Killed after the archive was written, before the file was removed: both exist.
    kept.write_text(copy)

    runs = load_runs(tmp_path)
    assert len(runs) == 11
    assert [(r["plugin"], r["run_id"]) for r in runs] == sorted(
        {(r["plugin"], r["run_id"]) for r in runs}, key=lambda k: k[1]
    )
    assert compact_runs(tmp_path, 3, now=T0 + timedelta(days=9)) == 1
    assert not kept.exists()
    assert len(_archived(tmp_path)) == len(set(_archived(tmp_path))) == 7


def test_runs_ending_at_once_compact_once_and_lose_nothing(tmp_path: Path) -> None:
    # Two days of a 5-minute job aged out, then four runs end at the same moment, each writing
    # its own summary and compacting: the lock lets one compact, the others skip or find
    # nothing left; no run is lost or archived twice.
    (tmp_path / "runs").mkdir()
    for n in range(2 * 288):
        summary = RunSummary(
            "target-fortnox", tmp_path, clock=lambda n=n: T0 + timedelta(minutes=5 * n)
        )
        (tmp_path / "runs" / f"{summary.run_id}-target-fortnox.json").write_text(
            json.dumps(summary.to_dict())
        )
    now = T0 + timedelta(days=9)
    script = (
        "import sys\n"
        "from datetime import datetime, timedelta\n"
        "from sync_common import RunSummary\n"
        "start = datetime.fromisoformat(sys.argv[2])\n"
        "clock = iter(start + timedelta(microseconds=i) for i in range(100))\n"
        "RunSummary(sys.argv[3], sys.argv[1], clock=lambda: next(clock), keep_days=7).finish()\n"
    )
    runners = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), now.isoformat(), f"plugin-{i}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for runner in runners:
        _, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err

    assert sorted(p.name[23:] for p in (tmp_path / "runs").glob("*.json")) == [
        f"plugin-{i}.json" for i in range(4)
    ]
    archived = _archived(tmp_path)
    assert len(archived) == len(set(archived)) == 2 * 288
    assert len(load_runs(tmp_path)) == 2 * 288 + 4


def test_a_damaged_archive_is_kept_aside_and_its_readable_runs_carried_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for day in range(3):
        _run(tmp_path, T0 + timedelta(days=day), keep_days=0)
    compact_runs(tmp_path, 1, now=T0 + timedelta(days=3))
    archive = tmp_path / "runs" / "monthly" / "2026-10.jsonl.gz"
    good = archive.read_bytes()
    # A good member, then a torn one (a disk that lost the end of a write).
    archive.write_bytes(good + gzip.compress(b'{"plugin": "x"}\n' * 50)[:30])
    _run(tmp_path, T0 + timedelta(days=3), keep_days=0)

    with caplog.at_level(logging.WARNING):
        assert compact_runs(tmp_path, 1, now=T0 + timedelta(days=5)) == 2
    [aside] = archive.parent.glob("2026-10.jsonl.gz.damaged-*")
    assert aside.read_bytes().startswith(good)
    assert len(_archived(tmp_path)) == 4
    assert "was damaged" in caplog.text


def test_an_unreadable_old_file_is_set_aside_not_compacted_again(tmp_path: Path) -> None:
    _run(tmp_path, T0, keep_days=0)
    broken = tmp_path / "runs" / "20261001T120000000000Z-target-fortnox.json"
    broken.write_text('{"plugin": "target-fortnox", "str')
    assert compact_runs(tmp_path, 1, now=T0 + timedelta(days=3)) == 1
    assert not broken.exists()
    assert broken.with_name(broken.name + ".unreadable").exists()
    assert compact_runs(tmp_path, 1, now=T0 + timedelta(days=3)) == 0


def test_runs_keep_days_setting() -> None:
    assert keep_days_setting({}) == 7
    assert keep_days_setting({"runs_keep_days": "30"}) == 30
    assert keep_days_setting({"runs_keep_days": 0}) == 0
    with pytest.raises(ValueError, match="runs_keep_days must be 0 or more"):
        keep_days_setting({"runs_keep_days": -1})
    with pytest.raises(ValueError, match="whole number of days"):
        keep_days_setting({"runs_keep_days": "a week"})


def test_zero_keep_days_never_compacts(tmp_path: Path) -> None:
    for day in range(20):
        _run(tmp_path, T0 + timedelta(days=day), keep_days=0)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 20
    assert not (tmp_path / "runs" / "monthly").exists()


def test_record_history_over_files_archives_and_old_summaries(tmp_path: Path) -> None:
    _run(tmp_path, T0, events=(("invoices", "7012", "failed"), ("invoices", "70120", "created")))
    _run(tmp_path, T0 + timedelta(days=1), events=(("invoices", "7012", "created"),))
    for day in range(2, 12):
        _run(tmp_path, T0 + timedelta(days=day), events=(("customers", "7012", "created"),))
    _run(tmp_path, T0 + timedelta(days=12), events=(("invoices", "7012", "conflict"),))
    # A summary written before records were listed: its failures are the history it has.
    old = tmp_path / "runs" / "20261013T000000000000Z-target-fortnox.json"
    failure = {
        "stream": "invoices",
        "key": "7012",
        "message": "refused",
        "time": "2026-10-13T12:00:00+00:00",
    }
    old.write_text(
        json.dumps(
            {"plugin": "target-fortnox", "run_id": "old", "streams": {}}
            | {"failures": [failure], "conflicts": []}
        )
    )
    assert list((tmp_path / "runs" / "monthly").glob("*"))  # the first days are archived

    history = record_history([tmp_path], "invoices", "7012")
    assert [(e["outcome"], e["time"][:10]) for e in history.events] == [
        ("failed", "2026-10-01"),
        ("created", "2026-10-02"),
        ("conflict", "2026-10-13"),
        ("failed", "2026-10-13"),
    ]
    assert history.events[1]["answer"] == "created answer"
    assert history.events[3]["detail"] == "refused"
    assert history.partial_runs == []


def test_sync_report_record_names_runs_that_listed_only_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path, T0, events=(("invoices", "7012", "created"),))
    clock = iter(T0 + timedelta(days=1, seconds=i) for i in range(100))
    busy = RunSummary("target-fortnox", tmp_path, clock=lambda: next(clock), max_kept_records=1)
    busy.record("invoices", "created", "1")
    busy.record("invoices", "updated", "7012")  # not kept: beyond the bound
    busy.finish()

    assert report_main(["--results-dir", str(tmp_path), "--record", "invoices", "7012"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == [
        "invoices 7012: 1 event(s)",
        f"2026-10-01 00:02:01Z  target-fortnox  created  (run {T0:%Y%m%dT%H%M%S%fZ})",
        "    created detail",
        "    answer: created answer",
    ]
    assert "1 run(s) listed only part of their invoices records" in out
    assert f"target-fortnox {busy.run_id}" in out
