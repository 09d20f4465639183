"""The "report" rows: ``sync-report`` on a year of run summaries, beside a naive reader.

A job every 5 minutes writes ~300 run summaries a day (288 scheduled runs of moment-to-fortnox,
some webhook runs, the daily expenses job's two plugins): ~110,000 a year. This module writes such
a year twice, from the same runs:

- **ours**: as the plugins keep it, run files of the last ``runs_keep_days`` (7) days and one
  archive per month (``sync_common.run_history``), compacted once a day as the first run of each
  day does;
- **baseline**: every run its own file, never compacted, read the way ``sync-report`` read them
  before: every file parsed, then the last N taken.

and measures the report (the last 10 runs) and one record's history (``--record invoices 7012``)
on both, checks that both give the same answer, and reports the folder's size and the cost of the
compaction a run pays. No sandbox, no network: the files only.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sync_common import RunSummary, render_runs_table
from sync_common.run_history import archive_runs, compact_runs
from sync_operator.report import main as report_main

from bench.scenarios import MB, Row

SCHEDULED_PER_DAY = 288  # every 5 minutes
WEBHOOK_PER_DAY = 10
DAYS = 365
KEEP_DAYS = 7
LIMIT = 10
REPORT_GOAL_SECONDS = 1.0
RECORD_GOAL_SECONDS = 10.0
# The record whose history the row asks for: created early in the year, refused mid-year, a
# conflict on the last day (still a file).
RECORD = ("invoices", "7012")
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Year:
    """Where the two layouts are and what writing them cost."""

    ours: Path
    baseline: Path
    runs: int
    compactions: int
    slowest_compaction: float
    nothing_due_check: float


def _summary(plugin: str, start: datetime, events: list[tuple[str, str, str]]) -> dict[str, Any]:
    clock = iter(start + timedelta(milliseconds=10 * i) for i in range(100))
    summary = RunSummary(plugin, ".", clock=lambda: next(clock))
    for stream in ("customers", "projects", "invoices") if plugin == "target-fortnox" else ():
        summary.add_stream(stream)
    for stream, key, outcome in events:
        detail = "Email" if outcome == "updated" else None
        if outcome == "failed":
            detail = f"{stream} {key}: Fortnox refused the record: account 3011 requires a project"
        answer = f"{outcome}: DocumentNumber {key}, Total 12500.0, OCR {key}17, Booked false"
        summary.record(stream, outcome, key, detail, answer=answer)
    summary.add_requests(requests=4 + 2 * len(events))
    summary.ended_at = next(clock)
    return summary.to_dict()


def _day_runs(day: int, days: int, scheduled: int, rng: random.Random) -> list[dict[str, Any]]:
    """One day's runs, in start order."""
    base = START + timedelta(days=day)
    runs: list[tuple[datetime, str, list[tuple[str, str, str]]]] = []
    every = timedelta(days=1) / scheduled
    starts = [base + every * i + timedelta(seconds=2) for i in range(scheduled)]
    starts += [
        base + timedelta(microseconds=rng.randrange(86_400_000_000)) for _ in range(WEBHOOK_PER_DAY)
    ]
    for start in starts:
        events: list[tuple[str, str, str]] = []
        if rng.random() < 0.1:  # a run in ten moves a few records
            for _ in range(rng.randint(1, 4)):
                stream = rng.choice(("customers", "projects", "invoices"))
                events.append(
                    (stream, str(rng.randrange(1000, 9000)), rng.choice(("created", "updated")))
                )
        runs.append((start, "target-fortnox", [e for e in events if e[1] != RECORD[1]]))
    for plugin, seconds in (("tap-fortnox-expenses", 5.0), ("target-moment", 5.4)):
        runs.append((base + timedelta(hours=21, seconds=seconds), plugin, []))
    chosen = {days // 6: "created", days // 2: "failed", days - 1: "conflict"}.get(day)
    if chosen:
        start, plugin, events = runs[scheduled // 3]
        runs[scheduled // 3] = (start, plugin, [*events, (*RECORD, chosen)])
    runs.sort(key=lambda run: run[0])
    return [_summary(plugin, start, events) for start, plugin, events in runs]


def write_year(
    folder: Path, *, days: int = DAYS, scheduled: int = SCHEDULED_PER_DAY, seed: int = 15
) -> Year:
    """Both layouts of ``days`` days of runs under ``folder`` (``ours/``, ``baseline/``).

    The baseline gets every run as a file. Ours gets the runs of the last ``2 × KEEP_DAYS`` days
    as files, compacted by ``compact_runs`` at the first run of each day as the plugins do; the
    earlier days go straight into their months' archives through ``archive_runs``, the step of
    compaction that writes an archive (one call per month instead of writing 100,000 files to
    compact them again: the same archives, minutes less).
    """
    shutil.rmtree(folder, ignore_errors=True)
    ours, baseline = folder / "ours", folder / "baseline"
    (ours / "runs").mkdir(parents=True)
    (baseline / "runs").mkdir(parents=True)
    rng = random.Random(seed)
    runs = compactions = 0
    slowest = 0.0
    month: list[dict[str, Any]] = []
    for day in range(days):
        as_files = day >= days - 2 * KEEP_DAYS
        if month and (as_files or month[0]["run_id"][:6] != f"{START + timedelta(days=day):%Y%m}"):
            archive_runs(ours, f"{month[0]['run_id'][:4]}-{month[0]['run_id'][4:6]}", month)
            month = []
        for index, run in enumerate(_day_runs(day, days, scheduled, rng)):
            name = f"{run['run_id']}-{run['plugin']}.json"
            text = json.dumps(run, indent=2, ensure_ascii=False) + "\n"
            (baseline / "runs" / name).write_text(text, encoding="utf-8")
            runs += 1
            if not as_files:
                month.append(run)
                continue
            (ours / "runs" / name).write_text(text, encoding="utf-8")
            if index == 0:  # the first run of a day compacts the day that aged out
                ended = datetime.fromisoformat(run["ended_at"])
                began = time.perf_counter()
                compactions += bool(compact_runs(ours, KEEP_DAYS, now=ended))
                slowest = max(slowest, time.perf_counter() - began)
    # Every later run of a day finds nothing to compact: what that check costs each run.
    began = time.perf_counter()
    compact_runs(ours, KEEP_DAYS, now=START + timedelta(days=days - 1, hours=23))
    return Year(ours, baseline, runs, compactions, slowest, time.perf_counter() - began)


def naive_runs(results_dir: Path) -> list[dict[str, Any]]:
    """Every run file parsed, oldest first: how ``sync-report`` read the runs before compaction."""
    runs = []
    for path in sorted((results_dir / "runs").glob("*.json")):
        runs.append(json.loads(path.read_text(encoding="utf-8")))
    return runs


def naive_report(results_dir: Path) -> str:
    """The baseline's report: the last runs' table from every run file parsed."""
    return render_runs_table(naive_runs(results_dir)[-LIMIT:]) + "\n"


def naive_record(results_dir: Path) -> list[dict[str, Any]]:
    """The baseline's history of the bench's record: its events from every run file parsed."""
    stream, key = RECORD
    return [
        {"plugin": run["plugin"], "run_id": run["run_id"], **event}
        for run in naive_runs(results_dir)
        for event in run.get("records") or []
        if event["stream"] == stream and event["key"] == key
    ]


def our_report(results_dir: Path) -> str:
    """Our report: ``sync-report`` on the last runs, as it prints it."""
    return _captured(["--results-dir", str(results_dir), "--limit", str(LIMIT)])


def our_record(results_dir: Path) -> list[dict[str, Any]]:
    """Our history of the bench's record: ``sync-report --record ... --json``."""
    text = _captured(["--results-dir", str(results_dir), "--record", *RECORD, "--json"])
    events: list[dict[str, Any]] = json.loads(text)
    return events


def _captured(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        report_main(argv)
    return out.getvalue()


def _timed(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs (the files are in the page cache after the first)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - began)
    return best, result


def _size(results_dir: Path) -> tuple[int, float]:
    files = [
        p for p in (results_dir / "runs").rglob("*") if p.is_file() and not p.name.startswith(".")
    ]
    return len(files), sum(p.stat().st_size for p in files) / MB


def report_rows(folder: Path, *, days: int = DAYS, scheduled: int = SCHEDULED_PER_DAY) -> list[Row]:
    """Write the year, measure both layouts, and return the table rows."""
    began = time.perf_counter()
    year = write_year(folder, days=days, scheduled=scheduled)
    written = time.perf_counter() - began
    ours_s, ours_text = _timed(lambda: our_report(year.ours), 3)
    base_s, base_text = _timed(lambda: naive_report(year.baseline), 1)
    ours_rec_s, ours_events = _timed(lambda: our_record(year.ours), 3)
    base_rec_s, base_events = _timed(lambda: naive_record(year.baseline), 1)
    same_report = ours_text == base_text
    same_record = ours_events == base_events and len(ours_events) == 3
    ours_files, ours_mb = _size(year.ours)
    base_files, base_mb = _size(year.baseline)
    scenario = f"report, {days} days"
    agree = "same table as the baseline" if same_report else "DIFFERENT table from the baseline"
    return [
        Row(
            scenario,
            f"sync-report (last {LIMIT} runs) wall time, s",
            f"≤ {REPORT_GOAL_SECONDS:g} s, same runs",
            f"{ours_s:.3f}",
            f"{base_s:.2f}",
            ours_s <= REPORT_GOAL_SECONDS and same_report,
            f"{year.runs:,} runs ({year.runs // days}/day); ours: runs_keep_days {KEEP_DAYS}, "
            f"the newest files and archive tails read; baseline: every file parsed; {agree}; "
            f"warm page cache (best of 3 / one run); year written in {written:.0f} s",
        ),
        Row(
            scenario,
            f"sync-report --record {' '.join(RECORD)}, s",
            f"≤ {RECORD_GOAL_SECONDS:g} s, same events",
            f"{ours_rec_s:.2f}",
            f"{base_rec_s:.2f}",
            ours_rec_s <= RECORD_GOAL_SECONDS and same_record,
            f"{len(ours_events)} events (created, failed, conflict) over every run kept; "
            f"{'same events as the baseline' if same_record else 'DIFFERENT events'}",
        ),
        Row(
            scenario,
            "files / MB in results_dir/runs after the year",
            "—",
            f"{ours_files:,} / {ours_mb:.1f}",
            f"{base_files:,} / {base_mb:.1f}",
            None,
            f"ours: {KEEP_DAYS + 1} days of files and one .jsonl.gz per month",
        ),
        Row(
            scenario,
            "compaction a run pays, s (first run of a day / any other run)",
            "—",
            f"{year.slowest_compaction:.2f} / {year.nothing_due_check:.3f}",
            "—",
            None,
            f"{year.compactions} daily compactions measured (the last {2 * KEEP_DAYS} days); "
            "each rewrites its month's archive (up to a month of runs); other runs only list the "
            "folder",
        ),
    ]
