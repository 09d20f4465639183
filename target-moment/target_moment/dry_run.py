"""The dry-run plan: what target-moment would do with each expense, written and printed, no writes.

One entry per expense: create, update (with the changed fields, from → to), unchanged, conflict
(invoiced in Moment and different), skip (project unknown in Moment) or fail (with the fix).
Written as JSON to ``results_dir/plans/<UTC timestamp>-target-moment.json`` and printed as a
table on stderr (stdout is the Singer state channel); the layout is both targets'
(``sync_common.dry_run_plan``). Each entry: ``stream``, ``source_key``, ``project_number``,
``action``, and ``changes`` or ``reason`` where there are any.
"""

from __future__ import annotations

from typing import Any

from sync_common.dry_run_plan import DryRunPlan as SharedPlan

from target_moment.contract import PROJECT_EXPENSES
from target_moment.expense_plan import ExpenseDecision

PLUGIN = "target-moment"


class DryRunPlan(SharedPlan):
    """Planned actions of one run, in input order."""

    plugin = PLUGIN
    system = "Moment"

    def add(self, key: str, project_number: str, decision: ExpenseDecision) -> None:
        """Plan what ``decision`` says for the expense ``key``."""
        entry = self._entry(key, project_number, decision.action.value)
        if decision.changes:
            entry["changes"] = {k: v.to_json() for k, v in decision.changes.items()}
        self.add_entry(entry)

    def add_skip(self, key: str, project_number: str, reason: str) -> None:
        """Plan to leave the expense ``key`` out, saying why."""
        self.add_entry(self._entry(key, project_number, "skip") | {"reason": reason})

    def add_failure(self, key: str, project_number: str, message: str) -> None:
        """Plan the failure of the expense ``key``, with the fix."""
        self.add_entry(self._entry(key, project_number, "fail") | {"reason": message})

    def entry_line(self, entry: dict[str, Any]) -> str:
        """One line per expense, changes as ``field: from → to``."""
        detail = entry.get("reason", "")
        if "changes" in entry:
            detail = ", ".join(
                f"{name}: {change['from']!r} → {change['to']!r}"
                for name, change in entry["changes"].items()
            )
        return (
            f"  {entry['action']:<9} {entry['source_key']:<28} "
            f"project {entry['project_number']:<10} {detail}".rstrip()
        )

    @staticmethod
    def _entry(key: str, project_number: str, action: str) -> dict[str, Any]:
        return {
            "stream": PROJECT_EXPENSES,
            "source_key": key,
            "project_number": project_number,
            "action": action,
        }
