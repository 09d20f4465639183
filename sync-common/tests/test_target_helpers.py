"""The pieces both targets share: create-once, the dry-run plan file, records back to JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sync_common.contract import json_ready
from sync_common.create_once import CreatesUnanswered, create_once
from sync_common.dry_run_plan import DryRunPlan


class Unanswered(Exception):
    pass


class Exists(Exception):
    pass


class FakeApi:
    """Answers creates from a script: ``"lost"`` (unanswered, nothing stored), ``"landed"``
    (unanswered, stored), ``"ok"`` (answered), ``"exists"`` (refused: the key exists)."""

    def __init__(self, *script: str, stored: dict[str, Any] | None = None) -> None:
        self.script = list(script)
        self.stored = stored
        self.posts = 0
        self.look_ups = 0

    def create(self) -> dict[str, Any]:
        self.posts += 1
        step = self.script.pop(0)
        if step == "exists":
            raise Exists("409")
        if step == "landed":
            self.stored = {"id": 7}
        if step in ("lost", "landed"):
            raise Unanswered("timeout")
        self.stored = {"id": 7}
        return self.stored

    def look_up(self) -> dict[str, Any] | None:
        self.look_ups += 1
        return self.stored


def run(api: FakeApi, attempts: int = 3) -> Any:
    return create_once(
        "customers 1",
        api.create,
        api.look_up,
        ambiguous=Unanswered,
        exists=Exists,
        attempts=attempts,
    )


def test_a_create_that_landed_unanswered_is_found_not_posted_again() -> None:
    api = FakeApi("landed", "ok")
    result = run(api)
    assert (result.created, result.found, result.landed) == (None, {"id": 7}, True)
    assert (api.posts, api.look_ups) == (1, 1)


def test_a_create_that_left_nothing_is_posted_again_after_the_look_up() -> None:
    api = FakeApi("lost", "ok")
    result = run(api)
    assert result.created == {"id": 7}
    assert result.found is None
    assert (api.posts, api.look_ups) == (2, 1)


def test_creates_that_never_land_stop_after_the_attempts() -> None:
    api = FakeApi("lost", "lost", "lost", "ok")
    with pytest.raises(CreatesUnanswered) as caught:
        run(api)
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_error, Unanswered)
    assert (api.posts, api.look_ups) == (3, 3)


def test_a_refused_duplicate_is_looked_up_and_an_absent_one_re_raised() -> None:
    found = run(FakeApi("exists", stored={"id": 3}))
    assert (found.found, found.landed) == ({"id": 3}, False)
    with pytest.raises(Exists):
        run(FakeApi("exists"))


class PlanOfTest(DryRunPlan):
    plugin = "target-test"
    system = "Test"
    action_names = ("create", "update")

    def entry_line(self, entry: dict[str, Any]) -> str | None:
        return None if entry["action"] == "unchanged" else f"  {entry['key']} {entry['action']}"


def test_the_plan_file_layout_and_the_printed_plan(tmp_path: Path) -> None:
    plan = PlanOfTest()
    plan.add_entry({"stream": "a", "key": "1", "action": "create"})
    plan.add_entry({"stream": "a", "key": "2", "action": "unchanged"})
    plan.add_entry({"stream": "b", "key": "3", "action": "update"})
    path = plan.write(tmp_path, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert path == tmp_path / "plans" / "20260102T030405000000Z-target-test.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "plugin": "target-test",
        "dry_run": True,
        "counts": {"create": 1, "unchanged": 1, "update": 1},
        "counts_by_stream": {
            "a": {"create": 1, "update": 0, "unchanged": 1},
            "b": {"create": 0, "update": 1},
        },
        "plan": plan.entries,
    }
    assert plan.render().splitlines() == [
        "Dry run: nothing was written to Test. target-test plan (1 create, 1 update, 1 unchanged):",
        "  1 create",
        "  3 update",
        "  a: 1 create, 0 update, 1 unchanged",
        "  b: 0 create, 1 update",
    ]


def test_json_ready_gives_back_the_json_a_record_line_had() -> None:
    record = {
        "amount": Decimal("12.50"),
        "count": 3,
        "day": date(2026, 1, 2),
        "rows": [{"at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "price": Decimal("1.5")}],
        "text": "å",
    }
    assert json_ready(record) == {
        "amount": 12.5,
        "count": 3,
        "day": "2026-01-02",
        "rows": [{"at": "2026-01-02T03:04:00+00:00", "price": 1.5}],
        "text": "å",
    }
