"""The pre-flight probes of Moment's inferred behaviour (docs/MOMENT-API.md), against the Moment
sandbox as it answers by default and switched to the other behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moment_client import MomentClient, MomentSettings
from sandbox.launcher import SandboxProcess
from sync_operator import PreflightReport
from sync_operator.moment_checks import check_moment_expenses, check_moment_reads
from target_fortnox.project_states import known_project_state

PREFIX = "TARGET_MOMENT"


@pytest.fixture
def moment(moment_sandbox: SandboxProcess) -> Iterator[tuple[MomentClient, Any]]:
    client = MomentClient(
        MomentSettings.from_config(
            {
                "api_url": f"{moment_sandbox.url}/api/1.0",
                "company_code": "demo",
                "api_key": "sandbox-key",
            }
        )
    )

    def switch(**settings: Any) -> None:
        moment_sandbox.admin("PATCH", "settings", settings)

    yield client, switch
    switch(filters_ignored=False, project_state_spelling="upper", expense_path="projectExpenses")
    client.close()


def probe(
    client: Any, *, path: str = "projectExpenses", names: dict[str, str] | None = None
) -> dict[str, Any]:
    report = PreflightReport("test")
    check_moment_reads(report, client, known_project_state)
    check_moment_expenses(report, client, path=path, names=names or {}, settings_prefix=PREFIX)
    return {result.name: result for result in report.results}


def statuses(results: dict[str, Any]) -> dict[str, str]:
    return {name: result.status for name, result in results.items()}


def test_a_moment_that_behaves_as_assumed_passes_every_probe(moment: Any) -> None:
    client, _ = moment
    results = probe(client)
    assert statuses(results) == {
        "moment-filter-modified": "pass",
        "moment-filter-invoice-state": "pass",
        "moment-project-states": "pass",
        "moment-filter-project-number": "pass",
        "moment-expense-path": "pass",
        "moment-filter-external-reference": "pass",
    }
    assert "ONGOING → ONGOING" in results["moment-project-states"].detail
    writes = [m for m in client.stats.by_method if m != "GET"]
    assert writes == [], "pre-flight probes only read"


def test_ignored_filters_are_told_apart_and_explained(moment: Any) -> None:
    client, switch = moment
    switch(filters_ignored=True)
    results = probe(client)
    assert statuses(results) == {
        "moment-filter-modified": "warn",
        "moment-filter-invoice-state": "warn",
        "moment-project-states": "pass",
        "moment-filter-project-number": "warn",
        "moment-expense-path": "pass",
        "moment-filter-external-reference": "warn",
    }
    assert results["moment-filter-modified"].items == ["customers", "projects", "invoices"]
    assert results["moment-filter-invoice-state"].items == ["DRAFT"]
    for name in ("moment-filter-modified", "moment-filter-external-reference"):
        assert "ignores" in results[name].detail
        assert "docs/MOMENT-API.md" in results[name].fix
    assert "never matches" in results["moment-filter-external-reference"].fix


def test_moments_own_project_state_spelling_is_known(moment: Any) -> None:
    client, switch = moment
    switch(project_state_spelling="observed")
    result = probe(client)["moment-project-states"]
    assert result.status == "pass"
    assert "inProgress → ONGOING" in result.detail


def test_an_unknown_project_state_is_a_warning_saying_ongoing() -> None:
    class Projects:
        def list(self, entity: str, params: Any = None) -> list[dict[str, Any]]:
            return [{"projectState": "inProgress"}, {"projectState": "onHold"}]

    report = PreflightReport("test")
    check_moment_reads(report, Projects(), known_project_state)
    result = next(r for r in report.results if r.name == "moment-project-states")
    assert result.status == "warn"
    assert result.items == ["onHold"]
    assert "ONGOING" in result.fix


def test_expense_path_elsewhere_blocks_naming_the_setting_until_it_is_set(moment: Any) -> None:
    client, switch = moment
    switch(expense_path="expenses")
    results = probe(client)
    path = results["moment-expense-path"]
    assert path.status == "fail"
    assert "'projectExpenses'" in path.detail
    assert "TARGET_MOMENT_EXPENSE_PATH" in path.fix
    assert "docs/MOMENT-API.md" in path.fix
    assert "moment-filter-external-reference" not in results

    results = probe(client, path="expenses")
    assert results["moment-expense-path"].status == "pass"
    assert results["moment-filter-external-reference"].status == "pass"


def test_expense_field_names_moment_does_not_send_block_naming_the_setting(moment: Any) -> None:
    client, _ = moment
    result = probe(client, names={"externalReference": "externalId"})[
        "moment-filter-external-reference"
    ]
    assert result.status == "fail"
    assert result.items == ["externalId"]
    assert "TARGET_MOMENT_EXPENSE_FIELDS" in result.fix
