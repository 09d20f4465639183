"""Run summaries: what one plugin run did, per stream, written as JSON under ``results_dir``.

Owns the counting of outcomes (created, updated, unchanged, skipped per reason, failed, conflict),
the bounded list of failures and conflicts (key and message, for the failure e-mail), the bounded
list of what the run did to each record (outcome, detail, the API's answer: a record's history,
``sync-report --record``), the request figures the API clients report, the file
``results_dir/runs/<UTC timestamp>-<plugin>.json`` (compacted later, ``sync_common.run_history``),
the one-line log summary and the readable tables (one run; the last N runs for a ``report``
command).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sync_common.atomic_files import write_json_atomically
from sync_common.run_history import DEFAULT_KEEP_DAYS, FILE_TIMESTAMP, RUNS_DIRNAME, compact_runs

OUTCOMES: Final = ("created", "updated", "unchanged", "skipped", "failed", "conflict")
# Enough to act on; a run with more failures than this has one cause worth fixing first, and an
# unbounded list would make the JSON and the e-mail grow with the size of the data.
MAX_KEPT_ISSUES: Final = 1000
# A record's history: what a run did to each record it sent or decided on. "unchanged" is only
# counted (nothing was sent). Bounded, so a first load of 100,000 records writes a summary of a
# few MB at most; ``records_not_kept`` says how many more there were.
MAX_KEPT_RECORDS: Final = 5000
LISTED_OUTCOMES: Final = ("created", "updated", "skipped", "failed", "conflict")
# A message or an API answer longer than this is cut in the record list (the failure list keeps
# the whole message): the list stays bounded in bytes, not only in entries.
MAX_EVENT_TEXT: Final = 1000

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RecordIssue:
    """A failed or conflicting record: which stream, which key, what went wrong and when."""

    stream: str
    key: str | None
    message: str
    time: str


@dataclass(frozen=True)
class RecordEvent:
    """What a run did to one record: outcome, detail and what the API answered.

    The detail is a reason, the changed fields or an error; the answer is e.g. the fields Fortnox
    saved, or its error code and message.
    """

    stream: str
    key: str
    outcome: str
    time: str
    detail: str | None = None
    answer: str | None = None


@dataclass
class StreamCounts:
    """Outcome counts for one stream; ``skipped_reasons`` splits ``skipped`` by reason."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    conflict: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)

    def total(self) -> int:
        return sum(getattr(self, outcome) for outcome in OUTCOMES)


@dataclass
class RequestCounts:
    """HTTP figures reported by the API clients: requests sent, 429 answers, retries."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0


class RunSummary:
    """Collects what one run of a plugin did and writes it when the run ends.

    Use one per run: ``record``/``skip``/``fail`` while records flow, ``add_requests`` with the
    client's figures, then ``finish()`` once. Safe to call from several threads.
    """

    def __init__(
        self,
        plugin: str,
        results_dir: str | os.PathLike[str],
        *,
        clock: Clock = _utc_now,
        max_kept_issues: int = MAX_KEPT_ISSUES,
        max_kept_records: int = MAX_KEPT_RECORDS,
        keep_days: int = DEFAULT_KEEP_DAYS,
        log: logging.Logger | None = None,
    ) -> None:
        if not plugin or "/" in plugin or "\\" in plugin:
            raise ValueError(f"plugin name {plugin!r} must be a non-empty name without slashes")
        self.plugin = plugin
        self.results_dir = Path(results_dir)
        self._clock = clock
        self._max_kept = max_kept_issues
        self._max_kept_records = max_kept_records
        # runs_keep_days: older run files are compacted when this run ends (0: never).
        self.keep_days = keep_days
        self._log = log or logger
        self._lock = threading.Lock()
        self.started_at = clock()
        self.ended_at: datetime | None = None
        self.streams: dict[str, StreamCounts] = {}
        self.requests = RequestCounts()
        self.failures: list[RecordIssue] = []
        self.conflicts: list[RecordIssue] = []
        # How many issues were counted but not kept because the lists were full.
        self.failures_not_kept = 0
        self.conflicts_not_kept = 0
        self.records: list[RecordEvent] = []
        self.records_not_kept = 0
        self.path: Path | None = None
        # Where the plugin keeps its dead letters (a file, or a run-store row described in
        # words), for the failure e-mail; None: results_dir/dead-letters/<plugin>.singer.
        self.dead_letters_at: Path | str | None = None
        # Why the run ended before its end (``stop``); None for a run that went to its end.
        self.stopped: str | None = None

    @property
    def run_id(self) -> str:
        """The run's identity: its UTC start time, as used in the file name."""
        return self.started_at.astimezone(UTC).strftime(FILE_TIMESTAMP)

    @property
    def has_failures(self) -> bool:
        return any(counts.failed for counts in self.streams.values())

    @property
    def failure_count(self) -> int:
        return sum(counts.failed for counts in self.streams.values())

    @property
    def conflict_count(self) -> int:
        return sum(counts.conflict for counts in self.streams.values())

    def add_stream(self, stream: str) -> StreamCounts:
        """Register a stream so it shows (with zeros) even when no record came through."""
        with self._lock:
            return self._stream(stream)

    def record(
        self,
        stream: str,
        outcome: str,
        key: str | int | None = None,
        detail: str | None = None,
        *,
        answer: str | None = None,
    ) -> None:
        """Count one outcome for a record.

        ``detail``: the reason (skipped), message (failed, conflict) or what changed (updated);
        ``answer``: what the API answered, for the record's history.
        """
        if outcome not in OUTCOMES:
            raise ValueError(
                f"unknown outcome {outcome!r} for stream {stream!r}: "
                f"use one of {', '.join(OUTCOMES)}"
            )
        if outcome == "skipped":
            self.skip(stream, detail or "unspecified", key)
        elif outcome == "failed":
            self.fail(stream, key, detail or "failed without a message", answer=answer)
        elif outcome == "conflict":
            self._add_issue(stream, "conflict", key, detail or "conflict without a message", answer)
        else:
            with self._lock:
                self._stream(stream).add(outcome)
                self._list(stream, key, outcome, detail, answer)

    def skip(self, stream: str, reason: str, key: str | int | None = None) -> None:
        """Count a skipped record under ``reason`` (e.g. ``unknown project``)."""
        with self._lock:
            counts = self._stream(stream)
            counts.add("skipped")
            counts.skipped_reasons[reason] = counts.skipped_reasons.get(reason, 0) + 1
            self._list(stream, key, "skipped", reason, None)

    def fail(
        self,
        stream: str,
        key: str | int | None,
        error_message: str,
        *,
        answer: str | None = None,
    ) -> None:
        """Count a failed record and keep its key and message for the summary and the e-mail."""
        self._add_issue(stream, "failed", key, error_message, answer)

    def stop(self, message: str, *, stream: str = "run", count: bool = True) -> RecordIssue | None:
        """The run ended before its end: a run-level error, or input that ended early.

        ``message`` says why and what to do; it is counted as a failure of ``stream`` (key none)
        unless ``count`` is false (the error is already counted on the record it concerns). A
        stopped run's summary never reads as a success, and its absent failures are not taken
        as fixed (``sync_common.alerts``): the run did not get to them. Returns the issue counted.
        """
        issue = self._add_issue(stream, "failed", None, message) if count else None
        with self._lock:
            if self.stopped is None:
                self.stopped = message
        return issue

    def add_requests(self, *, requests: int = 0, rate_limited: int = 0, retries: int = 0) -> None:
        """Add HTTP figures (call once per client at the end, or as they happen)."""
        with self._lock:
            self.requests.requests += requests
            self.requests.rate_limited += rate_limited
            self.requests.retries += retries

    def add_client_stats(self, stats: Any) -> None:
        """Add an API client's counters: ``requests``, ``retries``, ``rate_limited`` if counted."""
        self.add_requests(
            requests=stats.requests,
            rate_limited=getattr(stats, "rate_limited", 0),
            retries=stats.retries,
        )

    def duration_seconds(self) -> float:
        end = self.ended_at or self._clock()
        return round((end - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data: the format of the file ``finish()`` writes."""
        with self._lock:
            streams = {name: asdict(counts) for name, counts in self.streams.items()}
            totals = {outcome: sum(c[outcome] for c in streams.values()) for outcome in OUTCOMES}
            return {
                "plugin": self.plugin,
                "run_id": self.run_id,
                "started_at": self.started_at.isoformat(),
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "duration_seconds": self.duration_seconds(),
                "streams": streams,
                "totals": totals,
                "requests": asdict(self.requests),
                "failures": [asdict(issue) for issue in self.failures],
                "failures_not_kept": self.failures_not_kept,
                "conflicts": [asdict(issue) for issue in self.conflicts],
                "conflicts_not_kept": self.conflicts_not_kept,
                "records": [asdict(event) for event in self.records],
                "records_not_kept": self.records_not_kept,
                "stopped": self.stopped,
            }

    def summary_line(self) -> str:
        """One line for the log, e.g. ``target-fortnox run: customers created=3 updated=1 ...``."""
        with self._lock:
            parts = [
                f"{name} " + " ".join(f"{o}={getattr(c, o)}" for o in OUTCOMES)
                for name, c in self.streams.items()
            ] or ["no records"]
            r = self.requests
            stopped = f" STOPPED: {self.stopped};" if self.stopped else ""
        return (
            f"{self.plugin} run:{stopped} {'; '.join(parts)}; requests={r.requests} "
            f"429s={r.rate_limited} retries={r.retries} duration={self.duration_seconds():.1f}s"
        )

    def table(self) -> str:
        """The run as a readable table: one row per stream, then totals and skip reasons."""
        data = self.to_dict()
        rows = [
            [name, *(str(counts[o]) for o in OUTCOMES)] for name, counts in data["streams"].items()
        ]
        rows.append(["total", *(str(data["totals"][o]) for o in OUTCOMES)])
        lines = [_format_table(["stream", *OUTCOMES], rows)]
        for name, counts in data["streams"].items():
            for reason, n in sorted(counts["skipped_reasons"].items()):
                lines.append(f"  {name} skipped {n}: {reason}")
        if data["stopped"]:
            lines.append(f"STOPPED before its end: {data['stopped']}")
        r = data["requests"]
        lines.append(
            f"requests={r['requests']} 429s={r['rate_limited']} retries={r['retries']} "
            f"duration={data['duration_seconds']:.1f}s"
        )
        return "\n".join(lines)

    def finish(self) -> Path:
        """End the run: write the JSON atomically, log the summary and compact old run files.

        The summary line and the table are logged; run files older than ``keep_days`` are
        compacted (``sync_common.run_history``).
        """
        self.ended_at = self._clock()
        if self.path is None:
            self.path = self.results_dir / RUNS_DIRNAME / f"{self.run_id}-{self.plugin}.json"
        write_json_atomically(self.path, self.to_dict())
        self._log.info("%s", self.summary_line())
        self._log.info("%s run summary (%s):\n%s", self.plugin, self.path, self.table())
        try:
            compact_runs(self.results_dir, self.keep_days, now=self.ended_at, log=self._log)
        except (OSError, ValueError) as exc:
            # Only tidying: the run's own summary is written; the next run tries again.
            self._log.warning(
                "could not compact the run summaries in %s: %s", self.results_dir, exc
            )
        return self.path

    def _stream(self, stream: str) -> StreamCounts:
        counts = self.streams.get(stream)
        if counts is None:
            counts = self.streams[stream] = StreamCounts()
        return counts

    def _list(
        self,
        stream: str,
        key: str | int | None,
        outcome: str,
        detail: str | None,
        answer: str | None,
        time: str | None = None,
    ) -> None:
        """Add a record's event to the bounded list (under the lock)."""
        if key is None or outcome not in LISTED_OUTCOMES:
            return
        if len(self.records) >= self._max_kept_records:
            self.records_not_kept += 1
            return
        self.records.append(
            RecordEvent(
                stream=stream,
                key=str(key),
                outcome=outcome,
                time=time or self._clock().isoformat(),
                detail=_cut(detail),
                answer=_cut(answer),
            )
        )

    def _add_issue(
        self,
        stream: str,
        outcome: str,
        key: str | int | None,
        message: str,
        answer: str | None = None,
    ) -> RecordIssue:
        issue = RecordIssue(
            stream=stream,
            key=None if key is None else str(key),
            message=message,
            time=self._clock().isoformat(),
        )
        with self._lock:
            self._stream(stream).add(outcome)
            self._list(stream, key, outcome, message, answer, issue.time)
            kept = self.failures if outcome == "failed" else self.conflicts
            if len(kept) < self._max_kept:
                kept.append(issue)
            elif outcome == "failed":
                self.failures_not_kept += 1
            else:
                self.conflicts_not_kept += 1
        return issue


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_EVENT_TEXT:
        return text
    return text[: MAX_EVENT_TEXT - 1] + "…"


RUNS_TABLE_COLUMNS: Final = (
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
)


def render_runs_table(runs: Iterable[Mapping[str, Any]]) -> str:
    """The given runs as one table: a row per run and stream; seconds and 429s on its first row."""
    rows: list[list[str]] = []
    for run in runs:
        streams: Mapping[str, Mapping[str, Any]] = run.get("streams") or {}
        run_cells = [
            format_started(run.get("started_at")),
            str(run.get("plugin", "?")),
        ]
        run_figures = [
            f"{float(run.get('duration_seconds') or 0):.1f}",
            str((run.get("requests") or {}).get("rate_limited", 0)),
        ]
        if not streams:
            rows.append([*run_cells, "-", *("0" for _ in OUTCOMES), *run_figures])
            continue
        for index, (name, counts) in enumerate(streams.items()):
            first = index == 0
            rows.append(
                [
                    *(run_cells if first else ["", ""]),
                    name,
                    *(str(counts.get(o, 0)) for o in OUTCOMES),
                    *(run_figures if first else ["", ""]),
                ]
            )
    if not rows:
        return "no runs recorded yet"
    return _format_table(list(RUNS_TABLE_COLUMNS), rows)


def format_started(value: Any) -> str:
    """An ISO start time as ``YYYY-MM-DD HH:MM:SSZ`` in UTC; "?" when it is not a string."""
    if not isinstance(value, str):
        return "?"
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except ValueError:
        return value


def _format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width text table; the first column left-aligned (names), the rest right (numbers)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            text_cols = i == 0 or headers[i] in {"plugin", "stream"}
            out.append(cell.ljust(width) if text_cols else cell.rjust(width))
        return "  ".join(out).rstrip()

    separator = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), separator, *(line(row) for row in rows)])
