"""Run summaries over time: recent runs one file each, older runs one file per month.

Owns the layout of ``results_dir/runs/``, its compaction at the end of a run, reading the runs
back (the last N fast, however long the history) and one record's history over every run.

A job every 5 minutes writes ~300 summaries a day, ~110,000 a year. Left as files, a folder of
that size makes every report read them all. So:

- ``runs/<UTC start>-<plugin>.json``: one run (``RunSummary.finish``), kept as its own file for
  ``runs_keep_days`` days (default 7);
- ``runs/monthly/<YYYY-MM>.jsonl.gz``: the runs of older days, one JSON line per run, gzip.

**Compaction** (:func:`compact_runs`) runs at the end of every run. It takes the files of the days
older than ``runs_keep_days`` (so in practice the first run of a day moves the day that just
aged out), writes each month's archive again with its new lines (temporary file, fsync, rename)
and only then removes those files. A run killed between the two leaves a run in both places;
readers and the next compaction count it once (by plugin and run id). Two runs ending at once
cannot compact together: compaction holds ``runs/.compact.lock`` and a run that finds it taken
skips compaction (the other run does it). A damaged archive is kept aside
(``<name>.damaged-<time>``) and the runs that could be read from it are written to the new one;
an unreadable run file is renamed ``<name>.unreadable``.

**Reading** (:func:`load_runs`): the newest files first, stopping at ``limit``; a month's archive
is opened only when it can still hold one of the last ``limit`` runs, and only its last ``limit``
lines are parsed (they are in start order). Files are read before archives, so a file compacted
while a report reads is found in its archive.

**A record's history** (:func:`record_history`): every run lists what it did to each record
(``records`` in the summary, see ``RunSummary``), so the runs that mention a stream and key give
when it was sent, with what outcome and what the API answered. Summaries written before records
were listed give their failures and conflicts.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from filelock import FileLock, Timeout

from sync_common.atomic_files import write_bytes_atomically

RUNS_DIRNAME: Final = "runs"
MONTHLY_DIRNAME: Final = "monthly"
ARCHIVE_SUFFIX: Final = ".jsonl.gz"
COMPACT_LOCK_NAME: Final = ".compact.lock"
# A week of runs stays as files to open by hand; older ones are in their month's archive.
DEFAULT_KEEP_DAYS: Final = 7
# Sortable, filesystem-safe on every OS (no colons), microseconds so two runs never collide.
FILE_TIMESTAMP: Final = "%Y%m%dT%H%M%S%fZ"
_TIMESTAMP_LENGTH: Final = len("20261128T210000123456Z")
# A run summary that lists only part of its records (see RunSummary's max_kept_records).
_PARTIAL = re.compile(r'"records_not_kept":\s*[1-9]')
_RUN_FILE = re.compile(r"\d{8}T\d{12}Z-")
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_LINE_IDENTITY = re.compile(rf'\{{"plugin":({_JSON_STRING}),"run_id":({_JSON_STRING}),')

logger = logging.getLogger(__name__)

Run = dict[str, Any]


def runs_dir(results_dir: str | os.PathLike[str]) -> Path:
    """The folder of run files under ``results_dir``."""
    return Path(results_dir) / RUNS_DIRNAME


def run_file_time(path: Path) -> datetime | None:
    """The UTC start time in a run file's name, None when the name has none."""
    try:
        parsed = datetime.strptime(path.name[:_TIMESTAMP_LENGTH], FILE_TIMESTAMP)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


def run_settings_schema() -> dict[str, Any]:
    """``runs_keep_days`` as a JSON-schema fragment (every plugin that writes run summaries)."""
    return {
        "type": "object",
        "properties": {
            "runs_keep_days": {
                "type": ["integer", "null"],
                "default": DEFAULT_KEEP_DAYS,
                "description": "Days a run summary stays a file of its own in results_dir/runs; "
                "older ones are compacted into runs/monthly/<YYYY-MM>.jsonl.gz at the end of "
                "a run (0: never)",
            }
        },
    }


def keep_days_setting(config: Mapping[str, Any]) -> int:
    """``runs_keep_days`` from a plugin's config (the default when unset; 0: never compact)."""
    value = config.get("runs_keep_days")
    if value is None or value == "":
        return DEFAULT_KEEP_DAYS
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"runs_keep_days must be a whole number of days (0: never compact), got {value!r}"
        ) from None
    if days < 0:
        raise ValueError(f"runs_keep_days must be 0 or more, got {days}")
    return days


# -- compaction ---------------------------------------------------------------------------------


def compact_runs(
    results_dir: str | os.PathLike[str],
    keep_days: int,
    *,
    now: datetime | None = None,
    log: logging.Logger | None = None,
) -> int:
    """Move the run files of days older than ``keep_days`` into their months' archives.

    Returns how many files were compacted (0 also when another run is compacting now).
    """
    log = log or logger
    folder = runs_dir(results_dir)
    if keep_days <= 0 or not folder.is_dir():
        return 0
    first_kept_day = _first_kept_day(keep_days, now)
    if not _due(folder, first_kept_day):
        return 0  # the common case: a listing, no lock
    lock = FileLock(str(folder / COMPACT_LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("run summaries: another run is compacting %s; leaving it to that run", folder)
        return 0
    try:
        # Listed again under the lock: a run that compacted just before has moved some.
        moved = sum(
            _compact_month(folder, month, paths, log)
            for month, paths in _due(folder, first_kept_day).items()
        )
    finally:
        lock.release()
    if moved:
        log.info(
            "run summaries: %d run(s) before %s compacted into %s",
            moved,
            first_kept_day,
            folder / MONTHLY_DIRNAME,
        )
    return moved


def _due(folder: Path, first_kept_day: date) -> dict[str, list[Path]]:
    """The run files of days before ``first_kept_day``, by month (``YYYY-MM``).

    Compared by name (``YYYYMMDD…``), not parsed: every run ends with this check.
    """
    first_kept = f"{first_kept_day:%Y%m%d}"
    by_month: dict[str, list[Path]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and name[:8] < first_kept and _RUN_FILE.match(name):
                by_month.setdefault(f"{name[:4]}-{name[4:6]}", []).append(Path(entry.path))
    return by_month


def _first_kept_day(keep_days: int, now: datetime | None) -> date:
    """The oldest UTC day whose run files stay files."""
    return (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=keep_days)


def _compact_month(folder: Path, month: str, paths: list[Path], log: logging.Logger) -> int:
    runs: list[Run] = []
    done: list[Path] = []
    for path in sorted(paths):
        run = _read_run_file(path, log)
        if run is None:
            if path.exists():  # unreadable: kept aside, out of the way of the next compaction
                path.replace(path.with_name(path.name + ".unreadable"))
            continue
        runs.append(run)
        done.append(path)
    if not done:
        return 0
    archive_runs(folder.parent, month, runs, log=log)
    for path in done:
        path.unlink(missing_ok=True)
    return len(done)


def archive_runs(
    results_dir: str | os.PathLike[str],
    month: str,
    runs: Iterable[Mapping[str, Any]],
    *,
    log: logging.Logger = logger,
) -> Path:
    """Write ``month``'s archive again with ``runs`` added (each run once, in start order).

    The step of compaction after the files are read; callers hold the compaction lock.
    """
    archive = runs_dir(results_dir) / MONTHLY_DIRNAME / f"{month}{ARCHIVE_SUFFIX}"
    lines: dict[tuple[str, str], str] = {}
    complete = _read_archive_lines(archive, lines, log) if archive.exists() else True
    for run in runs:
        lines.setdefault(_identity(run), _json_line(run))
    if not complete:
        aside = archive.with_name(f"{archive.name}.damaged-{datetime.now(UTC):{FILE_TIMESTAMP}}")
        archive.replace(aside)
        log.warning(
            "run summaries: %s was damaged; kept as %s, its readable runs carried over",
            archive,
            aside,
        )
    # The run id is the UTC start time, so id order is start order (archive_tail relies on it).
    payload = "".join(lines[identity] for identity in sorted(lines, key=lambda i: (i[1], i[0])))
    write_bytes_atomically(archive, gzip.compress(payload.encode("utf-8"), 6, mtime=0))
    return archive


def _json_line(run: Mapping[str, Any]) -> str:
    return json.dumps(run, ensure_ascii=False, separators=(",", ":")) + "\n"


def _identity(run: Mapping[str, Any]) -> tuple[str, str]:
    return (str(run.get("plugin")), str(run.get("run_id")))


# -- reading --------------------------------------------------------------------------------------


def _read_run_file(path: Path, log: logging.Logger = logger) -> Run | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None  # compacted since it was listed: its archive is read after the files
    except OSError as exc:
        log.warning("skipping unreadable run summary %s: %s", path, exc)
        return None
    return _parse_run(text, path, log)


def _parse_run(text: str, where: Path, log: logging.Logger = logger) -> Run | None:
    try:
        run = json.loads(text)
    except ValueError as exc:
        log.warning("skipping unreadable run summary %s: %s", where, exc)
        return None
    if not isinstance(run, dict) or "streams" not in run:
        log.warning("skipping %s: not a run summary (no 'streams' member)", where)
        return None
    return run


def _archive_text_lines(archive: Path, log: logging.Logger) -> Iterator[str]:
    """The lines of an archive; a damaged end is logged, what came before it still read."""
    try:
        with gzip.open(archive, "rt", encoding="utf-8") as file:
            yield from file
    except FileNotFoundError:
        return
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        log.warning("run summaries: %s is damaged (%s); read up to the damage", archive, exc)
        raise _DamagedArchive from None


class _DamagedArchive(Exception):
    pass


def _archive_runs(archive: Path, log: logging.Logger) -> Iterator[tuple[str, Run]]:
    """(line, run) of each readable line; raises _DamagedArchive at a damaged end."""
    for line in _archive_text_lines(archive, log):
        run = _parse_run(line, archive, log) if line.strip() else None
        if run is not None:
            yield line, run


def _read_archive_lines(
    archive: Path, into: dict[tuple[str, str], str], log: logging.Logger
) -> bool:
    """Add an archive's lines to ``into`` (identity → line); False when it is damaged.

    The identity is read from the start of the line (``{"plugin":…,"run_id":…``, as
    :func:`_json_line` writes it), so a month is not parsed again every day it grows.
    """
    try:
        for line in _archive_text_lines(archive, log):
            head = _LINE_IDENTITY.match(line)
            if head is not None:
                into.setdefault((json.loads(head[1]), json.loads(head[2])), line)
            elif (run := _parse_run(line, archive, log) if line.strip() else None) is not None:
                into.setdefault(_identity(run), _json_line(run))
    except _DamagedArchive:
        return False
    return True


def iter_archive(archive: Path, *, log: logging.Logger = logger) -> Iterator[Run]:
    """The runs of one monthly archive, in its order (oldest first)."""
    try:
        for _, run in _archive_runs(archive, log):
            yield run
    except _DamagedArchive:
        return


def archive_tail(archive: Path, limit: int, plugin: str | None = None) -> list[Run]:
    """The newest ``limit`` runs (of ``plugin``) of an archive.

    Its lines are in start order, so only the last matching lines are parsed, however many runs
    the month holds.
    """
    prefix = '{"plugin":' + json.dumps(plugin, ensure_ascii=False) + ","
    tail: deque[str] = deque(maxlen=max(limit, 0))
    try:
        for line in _archive_text_lines(archive, logger):
            # Archive lines start with the plugin (RunSummary.to_dict's first member).
            if plugin is None or line.startswith(prefix) or not line.startswith('{"plugin":'):
                tail.append(line)
    except _DamagedArchive:
        pass
    runs = (_parse_run(line, archive) for line in tail if line.strip())
    return [run for run in runs if run is not None]


def _archives_newest_first(folder: Path) -> list[Path]:
    return sorted((folder / MONTHLY_DIRNAME).glob(f"*{ARCHIVE_SUFFIX}"), reverse=True)


def _month_end(archive: Path) -> datetime | None:
    """The first instant after the month an archive holds (from its name)."""
    try:
        start = datetime.strptime(archive.name[: len("2026-11")], "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (start + timedelta(days=32)).replace(day=1)


def _started(run: Mapping[str, Any]) -> str:
    return str(run.get("started_at") or "")


def _started_at(run: Mapping[str, Any]) -> datetime | None:
    try:
        started = datetime.fromisoformat(_started(run))
    except ValueError:
        return None
    return started if started.tzinfo else started.replace(tzinfo=UTC)


@dataclass
class _Collected:
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)

    def add(self, run: Run, plugin: str | None) -> None:
        if plugin is None or run.get("plugin") == plugin:
            self.runs.setdefault(_identity(run), run)

    def newest(self, limit: int | None) -> list[Run]:
        # Runs started at the same instant in file-name order (start time, then plugin).
        ordered = sorted(
            self.runs.values(), key=lambda run: (_started(run), str(run.get("plugin")))
        )
        if limit is None:
            return ordered
        return ordered[-limit:] if limit > 0 else []


def load_runs(
    results_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    plugin: str | None = None,
) -> list[Run]:
    """Run summaries of ``results_dir``, oldest first; only the last ``limit`` when given.

    Reads the newest files first and opens a monthly archive only when it can still hold one of
    the last ``limit`` runs. Unreadable files are skipped with a warning, never failing a report.
    """
    folder = runs_dir(results_dir)
    if not folder.is_dir():
        return []
    collected = _Collected()
    # File names start with the UTC start time, so name order is time order.
    names = sorted(
        path
        for path in folder.glob("*.json")
        if plugin is None or path.name.endswith(f"-{plugin}.json") or run_file_time(path) is None
    )
    for path in reversed(names):
        if limit is not None and len(collected.runs) >= limit:
            break
        run = _read_run_file(path)
        if run is not None:
            collected.add(run, plugin)
    for archive in _archives_newest_first(folder):
        if limit is None:
            for run in iter_archive(archive):
                collected.add(run, plugin)
            continue
        if len(collected.runs) >= limit:
            kept = collected.newest(limit)
            month_end, oldest_kept = _month_end(archive), _started_at(kept[0]) if kept else None
            if not kept or (month_end and oldest_kept and oldest_kept >= month_end):
                break  # this month and older ones hold only older runs
        for run in archive_tail(archive, limit, plugin):
            collected.add(run, plugin)
    return collected.newest(limit)


def iter_all_runs(
    results_dir: str | os.PathLike[str], *, needle: str | None = None
) -> Iterator[Run]:
    """Every run of ``results_dir`` (files, then archives), each once.

    With ``needle``, only runs whose text contains it or that list only part of their records
    are parsed (a quick filter for :func:`record_history` over a year of runs).
    """
    folder = runs_dir(results_dir)
    if not folder.is_dir():
        return
    seen: set[tuple[str, str]] = set()

    def wanted(text: str) -> bool:
        return needle is None or needle in text or _PARTIAL.search(text) is not None

    def fresh(run: Run | None) -> Run | None:
        if run is None or _identity(run) in seen:
            return None
        seen.add(_identity(run))
        return run

    for path in sorted(folder.glob("*.json")):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue  # compacted meanwhile (its archive follows), or unreadable
        run = fresh(_parse_run(text, path)) if wanted(text) else None
        if run is not None:
            yield run
    for archive in sorted(_archives_newest_first(folder)):
        try:
            for line in _archive_text_lines(archive, logger):
                run = fresh(_parse_run(line, archive)) if line.strip() and wanted(line) else None
                if run is not None:
                    yield run
        except _DamagedArchive:
            continue


# -- one record's history -----------------------------------------------------------------------


@dataclass
class RecordHistory:
    """What the runs say about one record: its events, oldest first.

    ``partial_runs`` says where the list may be incomplete (runs that listed only part of their
    records for that stream).
    """

    stream: str
    key: str
    events: list[dict[str, Any]] = field(default_factory=list)
    partial_runs: list[str] = field(default_factory=list)


def record_history(
    results_dirs: Sequence[str | os.PathLike[str]], stream: str, key: str
) -> RecordHistory:
    """Every event of ``stream`` ``key`` in the runs of ``results_dirs`` (see the module doc)."""
    history = RecordHistory(stream, str(key))
    needle = json.dumps(str(key), ensure_ascii=False)
    seen: set[tuple[str, str]] = set()
    for folder in results_dirs:
        for run in iter_all_runs(folder, needle=needle):
            if _identity(run) in seen:
                continue
            seen.add(_identity(run))
            history.events += _events_of(run, stream, str(key))
            if run.get("records_not_kept") and stream in (run.get("streams") or {}):
                history.partial_runs.append(f"{run.get('plugin')} {run.get('run_id')}")
    history.events.sort(key=lambda event: (str(event.get("time") or ""), str(event["run_id"])))
    return history


def _events_of(run: Mapping[str, Any], stream: str, key: str) -> Iterable[dict[str, Any]]:
    context = {"plugin": run.get("plugin"), "run_id": run.get("run_id")}
    if "records" in run:
        for event in run.get("records") or []:
            if event.get("stream") == stream and str(event.get("key")) == key:
                yield {**context, **event}
        return
    # A summary written before records were listed: its failures and conflicts only.
    for member, outcome in (("failures", "failed"), ("conflicts", "conflict")):
        for issue in run.get(member) or []:
            if issue.get("stream") == stream and str(issue.get("key")) == key:
                yield {
                    **context,
                    "stream": stream,
                    "key": key,
                    "outcome": outcome,
                    "time": issue.get("time"),
                    "detail": issue.get("message"),
                    "answer": None,
                }
