"""The project-module check says what a read of /3/projects tells and what no API can tell."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from sync_operator.connection_checks import check_project_module


class Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"Fortnox error {code}")
        self.code = code


class Projects:
    """A FortnoxReader whose /3/projects answers ``answer`` (a body, or an exception to raise)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.tokens = None

    def get_path(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        assert path == "projects"
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)


def test_licence_missing_names_both_causes_and_the_fix() -> None:
    [result] = check_project_module(Projects(Refused(2001101)))  # type: ignore[arg-type]
    assert result.status == "fail"
    assert "2001101" in result.detail
    assert "no active licence" in result.detail
    assert "switched off" in result.detail
    assert "Tilläggsbeställning" in result.fix
    assert "Inställningar > Fakturering > Projekt" in result.fix


def test_missing_scope() -> None:
    [result] = check_project_module(Projects(Refused(2000663)))  # type: ignore[arg-type]
    assert result.status == "fail"
    assert "project scope" in result.detail


@pytest.mark.parametrize(("total", "seen"), [(0, "no project is registered"), (12, "12 project")])
def test_an_answer_proves_scope_and_licence_but_not_the_setting(total: int, seen: str) -> None:
    body = {"MetaInformation": {"@TotalResources": total}, "Projects": []}
    module, setting = check_project_module(Projects(body))  # type: ignore[arg-type]
    assert (module.name, module.status) == ("project-module", "pass")
    assert f"{total} project(s) registered" in module.detail
    assert (setting.name, setting.status) == ("project-accounting", "manual")
    assert "no Fortnox API returns" in setting.detail
    assert seen in setting.detail
    assert "Inställningar > Fakturering > Projekt" in setting.fix


def test_other_errors_are_not_hidden() -> None:
    with pytest.raises(Refused):
        check_project_module(Projects(Refused(2000311)))  # type: ignore[arg-type]
