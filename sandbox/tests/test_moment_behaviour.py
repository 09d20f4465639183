"""The Moment sandbox's behaviour switches (docs/MOMENT-API.md): each behaviour both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox.launcher import SandboxProcess

KEY = "sandbox-key"


@pytest.fixture(scope="module")
def moment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("moment-behaviour")) / "moment.db"
    with SandboxProcess("moment", db, seed=1) as proc:
        yield proc


class Sandbox:
    def __init__(self, proc: SandboxProcess) -> None:
        self.url = proc.url
        self.session = requests.Session()
        self.session.auth = ("apikey", KEY)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.url}/api/1.0/companies/demo/{path}"
        return self.session.request(method, url, timeout=30, **kwargs)

    def switch(self, **settings: Any) -> dict[str, Any]:
        response = requests.patch(f"{self.url}/_sandbox/settings", json=settings, timeout=30)
        assert response.ok, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def sandbox(moment: SandboxProcess) -> Iterator[Sandbox]:
    box = Sandbox(moment)
    yield box
    box.switch(
        filters_ignored=False, project_state_spelling="upper", expense_path="projectExpenses"
    )
    box.session.close()


def test_defaults(sandbox: Sandbox) -> None:
    settings = requests.get(f"{sandbox.url}/_sandbox/settings", timeout=30).json()
    assert settings == {
        "filters_ignored": False,
        "modified_from_filter": True,
        "sort_tie_breaks": True,
        "project_state_spelling": "upper",
        "expense_path": "projectExpenses",
    }


def test_filters_honoured_by_default_and_ignored_when_switched(sandbox: Sandbox) -> None:
    params = {"customerNumber": "1003", "size": 500}
    honoured = sandbox.api("GET", "customers", params=params).json()["content"]
    assert [c["customerNumber"] for c in honoured] == ["1003"]
    future = {"lastModifiedDateFrom": "2999-01-01T00:00:00.000Z"}
    assert sandbox.api("GET", "customers", params=future).json()["content"] == []

    sandbox.switch(filters_ignored=True)
    ignored = sandbox.api("GET", "customers", params=params).json()["content"]
    assert len(ignored) > 1
    assert "1003" in {c["customerNumber"] for c in ignored}
    assert sandbox.api("GET", "customers", params=future).json()["content"] != []
    reference = {"externalReference": "no-such-reference"}
    assert sandbox.api("GET", "projectExpenses", params=reference).json()["content"] != []


def test_project_state_spelling(sandbox: Sandbox) -> None:
    upper = {p["projectState"] for p in sandbox.api("GET", "projects").json()["content"]}
    assert upper <= {"PLANNED", "ONGOING", "FINISHED"}

    sandbox.switch(project_state_spelling="observed")
    projects = sandbox.api("GET", "projects", params={"size": 500}).json()["content"]
    assert {p["projectState"] for p in projects} == {"planned", "inProgress", "finished"}
    # The filter and a written body take the served spelling (and the stored one).
    ongoing = sandbox.api("GET", "projects", params={"projectState": "inProgress"}).json()
    assert {p["projectState"] for p in ongoing["content"]} == {"inProgress"}
    project = projects[0]
    changed = sandbox.api("PATCH", f"projects/{project['id']}", json={"projectState": "finished"})
    assert changed.ok, changed.text
    assert changed.json()["projectState"] == "finished"
    assert sandbox.api("GET", f"projects/{project['id']}").json()["projectState"] == "finished"

    sandbox.switch(project_state_spelling="upper")
    assert sandbox.api("GET", f"projects/{project['id']}").json()["projectState"] == "FINISHED"


def test_expense_path_elsewhere(sandbox: Sandbox) -> None:
    assert sandbox.api("GET", "projectExpenses").ok
    assert sandbox.api("GET", "expenses").status_code == 404

    sandbox.switch(expense_path="expenses")
    assert sandbox.api("GET", "projectExpenses").status_code == 404
    moved = sandbox.api("GET", "expenses")
    assert moved.ok, moved.text
    assert moved.json()["content"], "the seeded expenses are served under the new path"


def test_bad_settings_are_refused(sandbox: Sandbox) -> None:
    for body in (
        {"project_state_spelling": "lower"},
        {"expense_path": "a/b"},
        {"filters_ignored": "yes"},
        {"unknown": 1},
    ):
        response = requests.patch(f"{sandbox.url}/_sandbox/settings", json=body, timeout=30)
        assert response.status_code == 400, body
