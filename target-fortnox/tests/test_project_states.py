"""Moment's project states in every spelling the target knows (target_fortnox.project_states)."""

from __future__ import annotations

from typing import Any

import pytest
from target_fortnox.project_states import known_project_state, project_state


@pytest.mark.parametrize(
    ("value", "known", "state"),
    [
        ("PLANNED", "PLANNED", "PLANNED"),
        ("ONGOING", "ONGOING", "ONGOING"),
        ("FINISHED", "FINISHED", "FINISHED"),
        ("inProgress", "ONGOING", "ONGOING"),
        ("ACTIVE", "ONGOING", "ONGOING"),
        ("planned", "PLANNED", "PLANNED"),
        ("finished", "FINISHED", "FINISHED"),
        ("closed", "FINISHED", "FINISHED"),
        ("in_progress", "ONGOING", "ONGOING"),
        ("PAUSED", None, "ONGOING"),
        (None, None, "ONGOING"),
    ],
)
def test_project_states(value: Any, known: str | None, state: str) -> None:
    assert known_project_state(value) == known
    assert project_state(value) == state
