"""Pre-flight of fortnox-expenses-to-moment against this module's own sandbox processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient, FortnoxSettings
from moment_client import MomentClient, MomentSettings
from sandbox.launcher import SandboxProcess
from sync_operator.tap_fortnox_expenses_preflight import ExpensesPreflight, main

TENANT_ID = "1234567"


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxProcess, ...]]:
    folder = tmp_path_factory.mktemp("expenses-preflight")
    with (
        SandboxProcess(
            "fortnox", folder / "f.db", seed=1, extra_args=["--max-requests-per-5s", "0"]
        ) as fortnox,
        SandboxProcess("moment", folder / "m.db", seed=1) as moment,
    ):
        yield fortnox, moment


@pytest.fixture
def fortnox(sandboxes: tuple[SandboxProcess, ...]) -> Iterator[SandboxProcess]:
    yield sandboxes[0]
    sandboxes[0].admin("PATCH", "settings", {"project_module": True})
    sandboxes[0].admin("POST", "seed", {"seed": 1})


@pytest.fixture
def moment(sandboxes: tuple[SandboxProcess, ...]) -> Iterator[SandboxProcess]:
    yield sandboxes[1]
    sandboxes[1].admin("POST", "seed", {"seed": 1})


def tap_config(fortnox: SandboxProcess, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_url": f"{fortnox.url}/3",
        "token_url": f"{fortnox.url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT_ID,
        "token_store_path": str(tmp_path / "fortnox-token.json"),
        "max_requests_per_5s": 0,
        "max_tries": 1,
        "lookback_days": 30,
    }
    config.update(extra)
    return {k: v for k, v in config.items() if v is not None}


def moment_config(moment: SandboxProcess, **extra: Any) -> dict[str, Any]:
    return {
        "api_url": f"{moment.url}/api/1.0",
        "company_code": "demo",
        "api_key": "sandbox-key",
        "max_tries": 1,
        **extra,
    }


def preflight(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path, **tap_extra: Any
) -> ExpensesPreflight:
    config = tap_config(fortnox, tmp_path, **tap_extra)
    return ExpensesPreflight(
        FortnoxClient(FortnoxSettings.from_config(config)),
        MomentClient(MomentSettings.from_config(moment_config(moment))),
        "demo",
        config,
    )


def result(report: Any, name: str) -> Any:
    return next(r for r in report.results if r.name == name)


def test_fresh_sandboxes_are_ready(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    check = preflight(fortnox, moment, tmp_path)
    report = check.run()
    assert report.ready
    assert {r.name: r.status for r in report.results} == {
        "fortnox-token": "pass",
        "fortnox-scopes": "pass",
        "moment-api": "pass",
        "project-module": "pass",
        "project-accounting": "manual",
        "moment-filter-project-number": "pass",
        "moment-expense-path": "pass",
        "moment-filter-external-reference": "pass",
        "expense-accounts": "pass",
        "expense-account-rules": "pass",
        # The seed books costs on Fortnox's own project 9001 too: skipped by design, worth a word.
        "expense-projects": "warn",
        "project-start-dates": "pass",
    }
    assert [item.split()[0] for item in result(report, "expense-projects").items] == ["9001"]
    assert check.expenses.invoices_read > 0
    assert {p for p in check.expenses.projects if p.startswith("50")}


def test_reads_only_invoices_dated_in_the_window_when_fortnox_ignores_fromdate(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    """The sandbox ignores fromdate/todate on supplier invoices by default (Fortnox documents them
    for invoices, orders, offers and vouchers only): pre-flight keeps the window by InvoiceDate."""
    config = tap_config(fortnox, tmp_path)
    items = list(FortnoxClient(FortnoxSettings.from_config(config)).list("supplierinvoices"))
    check = preflight(fortnox, moment, tmp_path)
    window = check.window()
    expected = [
        i
        for i in items
        if window.covers(date.fromisoformat(i["InvoiceDate"]))
        and i["Booked"]
        and not (i.get("Cancel") or i.get("Cancelled"))
    ]
    assert 0 < len(expected) < len([i for i in items if i["Booked"]])

    check.run()

    assert check.expenses.invoices_read == len(expected)
    assert check.expenses.invoices_not_read == 0


def test_cost_account_missing_in_moment_blocks(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    used = sorted(preflight(fortnox, moment, tmp_path).expenses.accounts)
    moment.admin("DELETE", f"financialAccounts/{used[0]}")
    report = preflight(fortnox, moment, tmp_path).run()
    accounts = result(report, "expense-accounts")
    assert accounts.status == "fail"
    assert [item.split()[0] for item in accounts.items] == [used[0]]
    assert "account_numbers" in accounts.fix
    assert report.exit_code == 1
    # The tap's own account filter leaves that account out, and then nothing is missing.
    others = [int(a) for a in used[1:]]
    filtered = preflight(fortnox, moment, tmp_path, account_numbers=json.dumps(others)).run()
    assert result(filtered, "expense-accounts").status == "pass"


def test_cost_account_refusing_projects_warns(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    # The Fortnox seed's 3740 refuses a project (ProjectSettings NOTALLOWED).
    check = preflight(fortnox, moment, tmp_path, account_numbers=json.dumps([5800, 3740]))
    outcome = check.check_expense_account_rules()
    assert outcome.status == "warn"
    assert outcome.items == ["3740 (in account_numbers)"]
    assert "Register > Kontoplan" in outcome.fix
    # Without the bookkeeping scope the chart cannot be read: said, not failed.
    minted = fortnox.admin("POST", "refresh-tokens", {"scope": "supplierinvoice project"})
    narrow = preflight(
        fortnox, moment, tmp_path / "narrow", tenant_id=None, refresh_token=minted["refresh_token"]
    )
    assert narrow.check_expense_account_rules().status == "manual"


def test_project_without_start_date_warns(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    check = preflight(fortnox, moment, tmp_path)
    number = sorted(p for p in check.expenses.projects if p.startswith("50"))[0]
    check.fortnox.create("projects", {"ProjectNumber": number, "Description": "Utan start"})
    outcome = check.check_project_start_dates()
    assert outcome.status == "warn"
    assert outcome.items == [number]


def test_missing_scope_and_module_off(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    minted = fortnox.admin(
        "POST", "refresh-tokens", {"scope": "supplierinvoice companyinformation"}
    )
    report = preflight(
        fortnox, moment, tmp_path, tenant_id=None, refresh_token=minted["refresh_token"]
    ).run()
    assert result(report, "fortnox-scopes").items == ["project"]
    assert "tap-fortnox-expenses:authorize" in result(report, "fortnox-scopes").fix

    fortnox.admin("PATCH", "settings", {"project_module": False})
    report = preflight(fortnox, moment, tmp_path / "cc").run()
    assert result(report, "project-module").status == "fail"
    # Without the module no project cost can be read: the expense checks are not run.
    assert "expense-accounts" not in {r.name for r in report.results}


def test_command_line_reads_the_environment(
    fortnox: SandboxProcess,
    moment: SandboxProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in tap_config(fortnox, tmp_path).items():
        monkeypatch.setenv(f"TAP_FORTNOX_EXPENSES_{key.upper()}", str(value))
    for key, value in moment_config(moment, api_key="wrong-key-456").items():
        monkeypatch.setenv(f"TARGET_MOMENT_{key.upper()}", str(value))
    assert main(["--config", "ENV", "--json"]) == 1
    out = capsys.readouterr().out
    data = json.loads(out)
    moment_check = next(c for c in data["checks"] if c["name"] == "moment-api")
    assert moment_check["status"] == "fail"
    assert "TARGET_MOMENT_API_KEY" in moment_check["fix"]
    assert "wrong-key-456" not in out
    monkeypatch.setenv("TARGET_MOMENT_API_KEY", "sandbox-key")
    assert main([]) == 0
    assert "READY" in capsys.readouterr().out
