"""The dry-run plan: what a push would do, per stream and record, decided with reads only.

Owns: collecting planned actions (create, update with the changed fields, unchanged, conflict,
failed), writing them to ``results_dir/plan-<UTC timestamp>.json`` and rendering a readable plan.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACTIONS = ("create", "update", "unchanged", "conflict", "failed")


@dataclass
class PlannedAction:
    stream: str
    key: str
    action: str
    changes: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None


class Plan:
    """Planned actions in the order records were decided."""

    def __init__(self, results_dir: str | Path) -> None:
        self.results_dir = Path(results_dir)
        self.actions: list[PlannedAction] = []
        self._lock = threading.Lock()

    def add(
        self,
        stream: str,
        key: str,
        action: str,
        changes: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown plan action {action!r}: use one of {', '.join(ACTIONS)}")
        with self._lock:
            self.actions.append(PlannedAction(stream, key, action, dict(changes or {}), detail))

    def counts(self) -> dict[str, dict[str, int]]:
        per_stream: dict[str, Counter[str]] = {}
        for item in self.actions:
            per_stream.setdefault(item.stream, Counter())[item.action] += 1
        return {
            stream: {action: counter[action] for action in ACTIONS}
            for stream, counter in per_stream.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "counts": self.counts(),
            "actions": [asdict(item) for item in self.actions],
        }

    def write(self, now: datetime | None = None) -> Path:
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / f"plan-{stamp}.json"
        path.write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )
        return path

    def render(self) -> str:
        """A readable plan: one line per record that would change, then the counts."""
        lines = ["Dry run: nothing was written to Fortnox. Planned actions:"]
        for item in self.actions:
            if item.action == "unchanged":
                continue
            text = f"  {item.stream:<10} {item.key:<14} {item.action:<9}"
            if item.changes:
                text += " " + ", ".join(f"{k}={v!r}" for k, v in item.changes.items())
            if item.detail:
                text += f" ({item.detail})"
            lines.append(text)
        for stream, counts in self.counts().items():
            summary = ", ".join(f"{counts[action]} {action}" for action in ACTIONS)
            lines.append(f"  {stream}: {summary}")
        return "\n".join(lines)
