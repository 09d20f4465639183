"""target-moment against a Moment sandbox switched to the behaviour no public source rules out
(docs/MOMENT-API.md): filters ignored, the expense path elsewhere, other expense field names."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moment_client.expense_api import EXPENSE_FIELDS, ExpenseApi
from sandbox.launcher import SandboxProcess

Switch = Callable[..., None]


@pytest.fixture
def switched(moment: Any, moment_sandbox: SandboxProcess) -> Iterator[Switch]:
    """Switch the sandbox; switched back before ``moment`` cleans up (it needs the defaults)."""

    def switch(**settings: Any) -> None:
        moment_sandbox.admin("PATCH", "settings", settings)

    yield switch
    switch(filters_ignored=False, project_state_spelling="upper", expense_path="projectExpenses")


def ignored_filter_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ignored the filter" in r.getMessage()]


def test_filters_ignored_by_moment_match_nothing_wrong_and_are_said_once(
    moment: Any, replay: Any, switched: Switch, caplog: pytest.LogCaptureFixture
) -> None:
    switched(filters_ignored=True)
    others = {e["id"]: e for e in moment.expenses()}  # the seed's, entered in Moment
    seq = moment.last_request_seq()
    with caplog.at_level(logging.WARNING):
        replay("create.singer")

    # Every look-up got the whole list back; none matched another expense: two new ones.
    writes = moment.writes_since(seq)
    assert [method for method, _ in writes] == ["POST", "POST"], writes
    assert set(moment.test_expenses()) == {"fortnox-si-9001-0", "fortnox-si-9001-1"}
    assert {e["id"]: e for e in moment.expenses() if e["id"] in others} == others
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["failed"]) == (2, 0)
    said = ignored_filter_warnings(caplog)
    assert sum("externalReference on projectExpenses" in w for w in said) == 1, said
    assert sum("projectNumber on projects" in w for w in said) == 1, said

    # A re-read finds its own expenses among all the others and writes nothing.
    seq = moment.last_request_seq()
    replay("create.singer")
    assert moment.writes_since(seq) == []
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (0, 0, 2)


def test_expense_path_elsewhere_fails_naming_the_setting_then_works_once_set(
    moment: Any, replay: Any, switched: Switch
) -> None:
    switched(expense_path="expenses")
    replay("create.singer")
    letters = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert len(letters) == 2
    message = letters[0]["error"]["message"]
    for words in ("404", "'projectExpenses'", "expense_path", "docs/MOMENT-API.md"):
        assert words in message, message

    # Set to where this Moment keeps them: the dead letters and the file go through.
    replay("create.singer", expense_path="expenses")
    counts = replay.summary()["streams"]["project_expenses"]
    assert (counts["created"], counts["failed"]) == (2, 0)
    switched(expense_path="projectExpenses")
    assert set(moment.test_expenses()) == {"fortnox-si-9001-0", "fortnox-si-9001-1"}


def test_expense_fields_rename_what_is_sent_and_read_back() -> None:
    api = ExpenseApi.from_config(
        {"expense_path": "/expenses/", "expense_fields": '{"externalReference": "externalId"}'}
    )
    assert api.path == "expenses"
    assert api.name("externalReference") == "externalId"
    assert api.name("amount") == "amount"
    body = {"externalReference": "fortnox-si-1-0", "amount": 10.0}
    assert api.to_moment(body) == {"externalId": "fortnox-si-1-0", "amount": 10.0}
    assert api.from_moment(api.to_moment(body)) == body
    assert ExpenseApi.from_config({}) == ExpenseApi()


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"expense_fields": {"amout": "netAmount"}}, ("amout", "known:")),
        ({"expense_fields": {"amount": ""}}, ("amount", "empty")),
        ({"expense_fields": {"amount": "vatAmount"}}, ("same Moment name",)),
        ({"expense_fields": ["amount"]}, ("object",)),
        ({"expense_path": "a b"}, ("expense_path",)),
    ],
)
def test_bad_expense_settings_are_refused_naming_them(
    config: dict[str, Any], words: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="expense_") as caught:
        ExpenseApi.from_config(config)
    for word in words:
        assert word in str(caught.value)
    assert len(EXPENSE_FIELDS) == len(set(EXPENSE_FIELDS))
