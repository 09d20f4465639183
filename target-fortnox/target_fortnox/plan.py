"""The dry-run plan: what a push would do, per stream and record, decided with reads only.

Owns: collecting planned actions (create, update with the changed fields, unchanged, conflict,
failed) and how each is printed. The file, ``results_dir/plans/<UTC time>-target-fortnox.json``,
and the printed plan are laid out as both targets lay them out (``sync_common.dry_run_plan``).
Each entry: ``stream``, ``key``, ``action``, ``changes`` (the fields a create or an update
sends), ``detail`` (a conflict's or a failure's explanation).
"""

from __future__ import annotations

from typing import Any

from sync_common.dry_run_plan import DryRunPlan

ACTIONS = ("create", "update", "unchanged", "conflict", "failed")


class Plan(DryRunPlan):
    """Planned actions in the order records were decided."""

    plugin = "target-fortnox"
    system = "Fortnox"
    action_names = ACTIONS

    def add(
        self,
        stream: str,
        key: str,
        action: str,
        changes: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        """Plan ``action`` for the record ``key`` of ``stream``."""
        if action not in ACTIONS:
            raise ValueError(f"unknown plan action {action!r}: use one of {', '.join(ACTIONS)}")
        self.add_entry(
            {
                "stream": stream,
                "key": key,
                "action": action,
                "changes": dict(changes or {}),
                "detail": detail,
            }
        )

    def entry_line(self, entry: dict[str, Any]) -> str | None:
        """One line per record that would change: stream, key, action, fields, explanation."""
        if entry["action"] == "unchanged":
            return None
        text = f"  {entry['stream']:<10} {entry['key']:<14} {entry['action']:<9}"
        if entry["changes"]:
            text += " " + ", ".join(f"{k}={v!r}" for k, v in entry["changes"].items())
        if entry["detail"]:
            text += f" ({entry['detail']})"
        return text
