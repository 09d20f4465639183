"""A target's dry-run plan: what a run would do with each record, written as JSON and printed.

One layout for both targets (docs/PERSISTENCE.md): ``results_dir/plans/<UTC time>-<plugin>.json``
holding ``plugin``, ``dry_run`` (true), ``counts`` (records per action), ``counts_by_stream``
(the same per stream) and ``plan``: one entry per record, in the order records were decided.
Every entry has ``stream`` and ``action``; the rest is the target's own (target-fortnox: ``key``,
``changes``, ``detail``; target-moment: ``source_key``, ``project_number``, ``changes``,
``reason``). The plan is printed on stderr (stdout is the Singer state channel): a header that
says nothing was written, a line per record (``entry_line``), and the counts per stream.
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TextIO

from sync_common.atomic_files import write_json_atomically

PLANS_DIR = "plans"


def plan_path(
    results_dir: str | os.PathLike[str], plugin: str, now: datetime | None = None
) -> Path:
    """Return where a plan of ``plugin`` made at ``now`` (default: now) is written."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(results_dir) / PLANS_DIR / f"{stamp}-{plugin}.json"


class DryRunPlan:
    """Planned actions of one run, in the order records were decided (safe across threads)."""

    plugin: ClassVar[str]
    # The system a real run writes to, named in the printed header.
    system: ClassVar[str]
    # Actions counted per stream even when none happened (in this order), others after them.
    action_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        """Start an empty plan."""
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add_entry(self, entry: dict[str, Any]) -> None:
        """Add one record's entry (it has at least ``stream`` and ``action``)."""
        with self._lock:
            self.entries.append(entry)

    def counts(self) -> dict[str, int]:
        """Return how many records each action has, over all streams."""
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry["action"]] = counts.get(entry["action"], 0) + 1
        return counts

    def counts_by_stream(self) -> dict[str, dict[str, int]]:
        """Return how many records each action has, per stream (``action_names`` always listed)."""
        per_stream: dict[str, dict[str, int]] = {}
        for entry in self.entries:
            counts = per_stream.setdefault(entry["stream"], dict.fromkeys(self.action_names, 0))
            counts[entry["action"]] = counts.get(entry["action"], 0) + 1
        return per_stream

    def to_dict(self) -> dict[str, Any]:
        """Return the plan file's content."""
        return {
            "plugin": self.plugin,
            "dry_run": True,
            "counts": self.counts(),
            "counts_by_stream": self.counts_by_stream(),
            "plan": self.entries,
        }

    def write(self, results_dir: str | os.PathLike[str], now: datetime | None = None) -> Path:
        """Write the plan as JSON (atomically) and return its path."""
        path = plan_path(results_dir, self.plugin, now)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, self.to_dict())
        return path

    def entry_line(self, entry: dict[str, Any]) -> str | None:
        """Return the printed line of one entry, or None to leave it out."""
        return f"  {entry['stream']:<10} {entry['action']}"

    def render(self) -> str:
        """Return the readable plan: header, a line per entry, the counts per stream."""
        lines = [
            f"Dry run: nothing was written to {self.system}. {self.plugin} plan "
            f"({self._count_text(self.counts())}):"
        ]
        for entry in self.entries:
            line = self.entry_line(entry)
            if line is not None:
                lines.append(line)
        for stream, counts in self.counts_by_stream().items():
            lines.append(f"  {stream}: {self._count_text(counts, every=True)}")
        return "\n".join(lines)

    def print(self, stream: TextIO | None = None) -> None:
        """Print the readable plan (on stderr unless told otherwise)."""
        print(self.render(), file=stream or sys.stderr, flush=True)

    def _count_text(self, counts: dict[str, int], *, every: bool = False) -> str:
        names = self.action_names
        order = [a for a in names if a in counts] + sorted(set(counts) - set(names))
        text = ", ".join(f"{counts[a]} {a}" for a in order if every or counts[a])
        return text or "empty"
