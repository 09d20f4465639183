"""Moment's project states, in whatever spelling Moment uses, as planned / ongoing / finished.

No public source lists the values of ``projectState`` (docs/MOMENT-API.md): a public client that
read the real API filters projects on ``inProgress``; a workflow-tool node's example writes
``ACTIVE``; activities (``projectExtensionState``) are seen ``closed``. The project's own sandbox
serves ``PLANNED``/``ONGOING``/``FINISHED`` by default. Every spelling below is matched without
regard to case; a state none of them names is treated as ongoing (the state in which a project
takes costs and invoices), so an unexpected value never fails a project. The caller says so once.
"""

from __future__ import annotations

from typing import Any, Final

PLANNED: Final = "PLANNED"
ONGOING: Final = "ONGOING"
FINISHED: Final = "FINISHED"

# lower-cased spelling -> state; the evidence of each is in docs/MOMENT-API.md
_SPELLINGS: Final[dict[str, str]] = {
    "planned": PLANNED,
    "ongoing": ONGOING,
    "inprogress": ONGOING,  # seen in a public client of the real API
    "active": ONGOING,  # a workflow-tool node's example (weak)
    "finished": FINISHED,
    "closed": FINISHED,  # inferred from activities' projectExtensionState "closed"
}


def known_project_state(value: Any) -> str | None:
    """PLANNED, ONGOING or FINISHED for a spelling we know, else None."""
    if not isinstance(value, str):
        return None
    return _SPELLINGS.get(value.strip().replace("_", "").replace(" ", "").lower())


def project_state(value: Any) -> str:
    """PLANNED, ONGOING or FINISHED; an unknown state (or none) counts as ONGOING."""
    return known_project_state(value) or ONGOING
