"""Switches for the Moment behaviour no public source settles (docs/MOMENT-API.md: "inferred").

The sandbox answers one way by default and the other way when switched, so tests can run the
plugins against both (``GET|PATCH /_sandbox/settings``; kept in the store, so a restart or a
reseed keeps them):

- ``filters_ignored`` (default false): the list API ignores every filter (exact filters and
  ``lastModifiedDateFrom``/``To``) and answers the whole list, as a server that does not know a
  query parameter does. A public client saw the real API answer records outside the date range
  it asked for.
- ``project_state_spelling`` (default ``upper``): ``upper`` serves ``PLANNED``/``ONGOING``/
  ``FINISHED``; ``observed`` serves ``planned``/``inProgress``/``finished`` — ``inProgress`` is
  the value a public client filters real projects on (observed), the other two are inferred in
  the same camelCase. Either spelling is accepted in request bodies and in the ``projectState``
  filter; records are stored in the ``upper`` spelling.
- ``modified_from_filter`` (default true): false, ``lastModifiedDateFrom`` alone is ignored.
- ``sort_tie_breaks`` (default true): false, sort parameters after the first are ignored, with
  ties in the store's own order (newest id first, so a client cannot lean on id order by chance).
  Both are inferred (docs/MOMENT-API.md); tap-moment's reads stay right either way.
- ``expense_path`` (default ``projectExpenses``): the path project expenses live under. No public
  source shows it; switched (e.g. ``expenses``), the default path answers 404 as an unknown
  entity does.
"""

from __future__ import annotations

from typing import Any

from sandbox.fortnox.settings import SandboxSettings
from sandbox.moment.model import PROJECT_STATES
from sandbox.store import Store

DEFAULTS: dict[str, Any] = {
    "filters_ignored": False,
    "modified_from_filter": True,
    "sort_tie_breaks": True,
    "project_state_spelling": "upper",
    "expense_path": "projectExpenses",
}
SPELLINGS = ("upper", "observed")
# upper (stored) -> observed (inProgress observed in a public client; the others inferred)
_OBSERVED = dict(zip(PROJECT_STATES, ("planned", "inProgress", "finished"), strict=True))
_UPPER = {observed: upper for upper, observed in _OBSERVED.items()}


class MomentBehaviour(SandboxSettings):
    """The Moment sandbox's switches, persisted like the Fortnox sandbox's settings."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, defaults=DEFAULTS, key="moment:settings")

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        spelling = changes.get("project_state_spelling", SPELLINGS[0])
        if spelling not in SPELLINGS:
            raise ValueError(f"project_state_spelling must be one of {', '.join(SPELLINGS)}")
        path = changes.get("expense_path", DEFAULTS["expense_path"])
        if not isinstance(path, str) or not path.isidentifier():
            raise ValueError("setting expense_path must be one path segment such as 'expenses'")
        return super().update(changes)

    def served_state(self, state: Any) -> Any:
        """A stored project state as the API serves it under the current spelling."""
        if self["project_state_spelling"] == "observed":
            return _OBSERVED.get(state, state)
        return state

    @staticmethod
    def stored_state(state: Any) -> Any:
        """A project state as a client sent it (either spelling) in the stored spelling."""
        return _UPPER.get(state, state) if isinstance(state, str) else state
