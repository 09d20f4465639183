"""A dry run must not move the tap's bookmark: STATE is withheld.

tap-fortnox-expenses remembers the invoices it has read in its state and does not emit them again
while they are unchanged; a dry run that passed that state on would make the next real run skip
every expense the dry run only planned.
"""

from __future__ import annotations

from typing import Any


def test_dry_run_emits_no_state_and_a_real_run_does(replay: Any, moment: Any) -> None:
    seq = moment.last_request_seq()
    assert replay("create.singer", dry_run=True) == []
    assert moment.writes_since(seq) == []
    states = replay("create.singer")
    assert states
    assert states[-1]["bookmarks"]["project_expenses"]
