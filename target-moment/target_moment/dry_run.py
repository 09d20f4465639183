"""The dry-run plan: what target-moment would do with each expense, written and printed, no writes.

One entry per expense: create, update (with the changed fields, from → to), unchanged, conflict
(invoiced in Moment and different), skip (project unknown in Moment) or fail (with the fix).
Written as JSON to ``results_dir/plans/<UTC timestamp>-target-moment.json`` and printed as a
table on stderr (stdout is the Singer state channel).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sync_common.atomic_files import write_json_atomically

from target_moment.expense_plan import ExpenseDecision

PLUGIN = "target-moment"


@dataclass
class DryRunPlan:
    """Planned actions of one run, in input order."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, project_number: str, decision: ExpenseDecision) -> None:
        entry: dict[str, Any] = {
            "source_key": key,
            "project_number": project_number,
            "action": decision.action.value,
        }
        if decision.changes:
            entry["changes"] = {k: v.to_json() for k, v in decision.changes.items()}
        self.entries.append(entry)

    def add_skip(self, key: str, project_number: str, reason: str) -> None:
        self.entries.append(
            {"source_key": key, "project_number": project_number, "action": "skip"}
            | {"reason": reason}
        )

    def add_failure(self, key: str, project_number: str, message: str) -> None:
        self.entries.append(
            {"source_key": key, "project_number": project_number, "action": "fail"}
            | {"reason": message}
        )

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry["action"]] = counts.get(entry["action"], 0) + 1
        return counts

    def write(self, results_dir: str | os.PathLike[str], now: datetime | None = None) -> Path:
        """Write the plan as JSON (atomically) and return its path."""
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = Path(results_dir) / "plans" / f"{stamp}-{PLUGIN}.json"
        body = {"plugin": PLUGIN, "dry_run": True, "counts": self.counts(), "plan": self.entries}
        write_json_atomically(path, body)
        return path

    def render(self) -> str:
        """A readable table: one line per expense, changes as ``field: from → to``."""
        lines = [f"Dry run: nothing was written to Moment. {PLUGIN} plan ({self._count_text()}):"]
        for entry in self.entries:
            detail = entry.get("reason", "")
            if "changes" in entry:
                detail = ", ".join(
                    f"{name}: {change['from']!r} → {change['to']!r}"
                    for name, change in entry["changes"].items()
                )
            lines.append(
                f"  {entry['action']:<9} {entry['source_key']:<28} "
                f"project {entry['project_number']:<10} {detail}".rstrip()
            )
        return "\n".join(lines)

    def print(self, stream: TextIO | None = None) -> None:
        print(self.render(), file=stream or sys.stderr, flush=True)

    def _count_text(self) -> str:
        return ", ".join(f"{n} {action}" for action, n in sorted(self.counts().items())) or "empty"
