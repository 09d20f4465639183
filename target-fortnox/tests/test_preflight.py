"""Pre-flight of moment-to-fortnox against real sandbox processes: each check passing and failing.

The sandboxes are this module's own (it toggles Fortnox settings, mints narrow tokens and adds
colliding records, which other modules' session sandboxes must not see); each test that changes
data puts the seed back.
"""

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
from target_fortnox.preflight import (
    MomentData,
    MomentToFortnoxPreflight,
    _different_customer,
    company_name_key,
    main,
)

TENANT_ID = "1234567"


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxProcess, ...]]:
    folder = tmp_path_factory.mktemp("preflight")
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
    sandboxes[0].admin(
        "PATCH",
        "settings",
        {"project_module": True, "project_module_off_refuses": True, "ocr_on_invoices": True},
    )
    sandboxes[0].admin("POST", "seed", {"seed": 1})


@pytest.fixture
def moment(sandboxes: tuple[SandboxProcess, ...]) -> Iterator[SandboxProcess]:
    yield sandboxes[1]
    sandboxes[1].admin("POST", "seed", {"seed": 1})


def fortnox_config(fortnox: SandboxProcess, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    config = {
        "api_url": f"{fortnox.url}/3",
        "token_url": f"{fortnox.url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT_ID,
        "token_store_path": str(tmp_path / "fortnox-token.json"),
        "max_requests_per_5s": 0,
        "max_tries": 1,
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
    fortnox: SandboxProcess,
    moment: SandboxProcess,
    tmp_path: Path,
    *,
    fortnox_extra: dict[str, Any] | None = None,
    moment_extra: dict[str, Any] | None = None,
) -> MomentToFortnoxPreflight:
    mcfg = moment_config(moment, **(moment_extra or {}))
    return MomentToFortnoxPreflight(
        FortnoxClient(
            FortnoxSettings.from_config(fortnox_config(fortnox, tmp_path, **(fortnox_extra or {})))
        ),
        MomentClient(MomentSettings.from_config(mcfg)),
        mcfg["company_code"],
    )


def statuses(report: Any) -> dict[str, str]:
    return {result.name: result.status for result in report.results}


def result(report: Any, name: str) -> Any:
    return next(r for r in report.results if r.name == name)


def test_fresh_sandboxes_are_ready(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    report = preflight(fortnox, moment, tmp_path).run()
    assert report.ready
    assert statuses(report) == {
        "fortnox-token": "pass",
        "fortnox-scopes": "pass",
        "moment-api": "pass",
        "project-module": "pass",
        # No API shows the project-accounting setting itself.
        "project-accounting": "manual",
        "financial-year": "pass",
        "moment-filter-modified": "pass",
        "moment-filter-invoice-state": "pass",
        "moment-project-states": "pass",
        "project-numbers": "pass",
        "accounts": "pass",
        "account-rules": "pass",
        # The seed's finished projects have invoices dated after their end.
        "project-periods": "warn",
        "vat-rates": "pass",
        "number-series-customers": "pass",
        # The seed's Fortnox-only projects 9001/9002 lie above Moment's 5001…: a warning.
        "number-series-projects": "warn",
        "number-series-invoices": "pass",
        # Nothing pushed yet, and the switch is UI-only: say where to look.
        "ocr": "manual",
    }
    assert result(report, "number-series-projects").items == ["9001", "9002"]
    assert "Nummerserier och OCR" in result(report, "ocr").fix
    assert "Inställningar > Fakturering > Projekt" in result(report, "project-accounting").fix
    assert all(" runs " in item for item in result(report, "project-periods").items)


def test_project_module_off_blocks(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    fortnox.admin("PATCH", "settings", {"project_module": False})
    report = preflight(fortnox, moment, tmp_path).run()
    check = result(report, "project-module")
    assert check.status == "fail"
    assert "2001101" in check.detail
    assert "Inställningar > Fakturering > Projekt" in check.fix
    assert report.exit_code == 1
    # Said once: the other checks do not fail again on /3/projects.
    assert [r.name for r in report.results if r.status == "fail"] == ["project-module"]
    assert "number-series-projects" not in statuses(report)
    assert "project-accounting" not in statuses(report)


def test_project_module_off_but_api_answering_is_a_manual_check(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    # The other way the real API may behave (not published): the switch is UI-only.
    fortnox.admin(
        "PATCH", "settings", {"project_module": False, "project_module_off_refuses": False}
    )
    report = preflight(fortnox, moment, tmp_path).run()
    assert result(report, "project-module").status == "pass"
    check = result(report, "project-accounting")
    assert check.status == "manual"
    assert "2 project(s) are registered" in check.detail
    assert "Inställningar > Fakturering > Projekt" in check.fix
    assert report.ready


def test_account_rules_of_invoice_line_accounts(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    # The Fortnox seed's 3011 needs a project, 3012 a cost centre, 3740 refuses a project.
    for number in ("3011", "3012", "3740"):
        moment.admin("POST", "financialAccounts", {"accountNumber": number, "name": number})
    customer = moment.admin("GET", "customers/1001")
    project = moment.admin("GET", "projects/5001")

    def finalised(account: str, with_project: bool) -> str:
        line = {
            "description": "Konsult",
            "quantity": 1,
            "unitPrice": 100,
            "vatRate": 25,
            "accountNumber": account,
        }
        body: dict[str, Any] = {
            "customer": {"id": customer["id"]},
            "invoiceLines": [line],
            "finalize": True,
        }
        if with_project:
            body["project"] = {"id": project["id"]}
        return str(moment.admin("POST", "invoices", body)["invoiceNumber"])

    no_project = finalised("3011", False)
    finalised("3011", True)  # a project on a MANDATORY account: fine
    on_project = finalised("3740", True)
    cost_centre = finalised("3012", False)
    check = preflight(fortnox, moment, tmp_path).check_account_rules()
    assert check.status == "fail"
    assert check.detail.startswith("3 Moment invoice(s) not yet in Fortnox")
    assert "Register > Kontoplan" in check.fix
    assert sorted(check.items) == sorted(
        [
            f"invoices {no_project}: account 3011 requires a project (ProjectSettings MANDATORY) "
            "and the invoice has none. Set the project on the invoice in Moment, or in Fortnox "
            "(Register > Kontoplan, account 3011) change Projekt from Obligatoriskt to Tillåtet",
            f"invoices {on_project}: account 3740 takes no project (ProjectSettings NOTALLOWED) "
            "and the invoice has project 5001. Book these lines on another account in Moment, or "
            "in Fortnox (Register > Kontoplan, account 3740) change Projekt from Inte tillåtet to "
            "Tillåtet",
            f"invoices {cost_centre}: account 3012 requires a cost centre (CostCenterSettings "
            "MANDATORY) and Moment sends none. In Fortnox (Register > Kontoplan, account 3012) "
            "change Kostnadsställe from Obligatoriskt to Tillåtet, or book these lines on another "
            "account in Moment",
        ]
    )


def test_missing_scopes_are_named_with_the_fix(
    fortnox: SandboxProcess,
    moment: SandboxProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Meltano runs the check with the environment it activated: the fix names that one.
    monkeypatch.setenv("MELTANO_ENVIRONMENT", "prod")
    minted = fortnox.admin("POST", "refresh-tokens", {"scope": "customer companyinformation"})
    report = preflight(
        fortnox,
        moment,
        tmp_path,
        fortnox_extra={"tenant_id": None, "refresh_token": minted["refresh_token"]},
    ).run()
    scopes = result(report, "fortnox-scopes")
    assert scopes.status == "fail"
    assert scopes.items == ["project", "invoice", "bookkeeping"]
    assert "`meltano --environment prod invoke target-fortnox:authorize`" in scopes.fix
    assert not report.ready


def test_bad_fortnox_secret_stops_fortnox_checks_once(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    report = preflight(
        fortnox, moment, tmp_path, fortnox_extra={"client_secret": "wrong-secret-123"}
    ).run()
    assert statuses(report) == {
        "fortnox-token": "fail",
        "moment-api": "pass",
        "moment-filter-modified": "pass",
        "moment-filter-invoice-state": "pass",
        "moment-project-states": "pass",
        "project-numbers": "pass",
    }
    assert "wrong-secret-123" not in json.dumps(report.to_dict())
    assert "client_id/client_secret" in result(report, "fortnox-token").fix


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"api_key": "not-the-key"}, "refuses the API key"),
        ({"company_code": "nosuchco"}, "knows no company 'nosuchco'"),
    ],
)
def test_moment_key_and_company(
    fortnox: SandboxProcess,
    moment: SandboxProcess,
    tmp_path: Path,
    extra: dict[str, str],
    expected: str,
) -> None:
    report = preflight(fortnox, moment, tmp_path, moment_extra=extra).run()
    check = result(report, "moment-api")
    assert check.status == "fail"
    assert expected in check.detail
    assert "TAP_MOMENT_" in check.fix
    assert "accounts" not in statuses(report)


def test_financial_year_missing_for_the_day(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    check = preflight(fortnox, moment, tmp_path).check_financial_year(date(2040, 6, 1))
    assert check.status == "fail"
    assert "2040-06-01" in check.detail
    assert "Räkenskapsår" in check.fix


def test_accounts_and_vat_rates_on_moment_invoice_lines(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    moment.admin(
        "POST", "financialAccounts", {"accountNumber": "3999", "name": "Övrig försäljning"}
    )
    moment.admin("POST", "vatCodes", {"code": "MP9", "rate": 19})
    customer = moment.admin("GET", "customers/1001")
    invoice = moment.admin(
        "POST",
        "invoices",
        {
            "customer": {"id": customer["id"]},
            "currency": "SEK",
            "invoiceLines": [
                {
                    "description": "Konsult",
                    "quantity": 1,
                    "unitPrice": 100,
                    "vatRate": 19,
                    "accountNumber": "3999",
                },
            ],
            "finalize": True,
        },
    )
    report = preflight(fortnox, moment, tmp_path).run()
    number = str(invoice["invoiceNumber"])
    accounts = result(report, "accounts")
    assert accounts.status == "fail"
    assert accounts.items == [f"3999 (invoices {number})"]
    vat = result(report, "vat-rates")
    assert vat.status == "fail"
    assert vat.items == [f"19 % (invoices {number})"]


def test_project_numbers_longer_than_fortnox_allows(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    # The Moment sandbox refuses numbers over 20 characters itself; real Moment documents no
    # limit, so the check is fed Moment data directly.
    check = preflight(fortnox, moment, tmp_path)
    check._moment_data = MomentData(projects={"P-2026-ÖVERLÅNGT-123456": {}, "5001": {}})
    outcome = check.check_project_numbers()
    assert outcome.status == "fail"
    assert outcome.items == ["P-2026-ÖVERLÅNGT-123456"]


def test_colliding_numbers_and_fortnox_ocr(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    client = FortnoxClient(FortnoxSettings.from_config(fortnox_config(fortnox, tmp_path)))
    mine = moment.admin("GET", "customers/1001")
    # A Fortnox-only customer on a number Moment uses for someone else.
    client.create(
        "customers",
        {"CustomerNumber": "1002", "Name": "Annan AB", "OrganisationNumber": "556036-0793"},
    )
    # Moment's customer 1001 as the integration would push it, then two invoices on Moment's
    # numbers: one with an OCR Fortnox made itself, one to another customer.
    client.create(
        "customers",
        {
            "CustomerNumber": "1001",
            "Name": mine["name"],
            "OrganisationNumber": mine["organizationNumber"],
        },
    )
    invoices = {
        i["invoiceNumber"]: i
        for i in moment.admin("GET", "invoices?invoiceState=FINALIZED&size=500")["content"]
    }
    on_1001 = sorted(n for n, i in invoices.items() if i["customer"]["customerNumber"] == "1001")
    other = sorted(n for n, i in invoices.items() if i["customer"]["customerNumber"] != "1001")
    row = {"AccountNumber": 3001, "DeliveredQuantity": 1, "Price": 100, "VAT": 25}
    client.create(
        "invoices",
        {
            "DocumentNumber": on_1001[0],
            "CustomerNumber": "1001",
            "OCR": "133",
            "InvoiceRows": [row],
        },
    )
    client.create(
        "invoices", {"DocumentNumber": other[0], "CustomerNumber": "1001", "InvoiceRows": [row]}
    )
    report = preflight(fortnox, moment, tmp_path).run()
    customers = result(report, "number-series-customers")
    assert customers.status == "fail"
    assert len(customers.items) == 1
    assert customers.items[0].startswith("1002: Fortnox 'Annan AB' (556036-0793)")
    series = result(report, "number-series-invoices")
    assert series.status == "fail"
    assert [item.split(":")[0] for item in series.items] == [str(other[0])]
    ocr = result(report, "ocr")
    assert ocr.status == "fail"
    assert (
        ocr.items[0] == f"{on_1001[0]}: Moment OCR {invoices[on_1001[0]]['ocr']}, Fortnox OCR 133"
    )
    assert report.exit_code == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Acme AB", "ACME Aktiebolag"),
        ("Acme  AB (publ)", "acme"),
        ("AB Volvo", "Volvo AB"),
        ("Kalles Bygg & Måleri HB", "kalles bygg måleri handelsbolag"),
        ("Nordvik AS", "Nordvik A/S"),
        ("Öst-Konsult Oy", "ÖST KONSULT"),
    ],
)
def test_company_names_compare_without_case_spacing_and_company_form(
    first: str, second: str
) -> None:
    assert company_name_key(first) == company_name_key(second)


def test_different_company_names_stay_different() -> None:
    assert company_name_key("Acme AB") != company_name_key("Acme Bygg AB")
    assert company_name_key("AB") == "ab"  # a name of forms only is kept as it is


def test_same_number_different_company_is_told_by_name_when_an_org_number_is_missing() -> None:
    fortnox = {"Name": "Annan Kund AB", "OrganisationNumber": "556036-0793"}
    # Moment has no organisation number: only the names can tell, and they differ.
    reason = _different_customer({"name": "Moment Kund AB", "organizationNumber": None}, fortnox)
    assert reason is not None
    assert "'Annan Kund AB' (556036-0793) is not Moment 'Moment Kund AB' (no org. no.)" in reason
    assert "names differ and Moment has no organisation number" in reason
    assert "set its organisation number in Moment" in reason
    both_missing = {"Name": "Annan Kund AB", "OrganisationNumber": ""}
    reason = _different_customer({"name": "Moment Kund AB"}, both_missing)
    assert reason is not None
    assert "either side has no organisation number" in reason
    # The same company written differently is not a collision.
    same = {"name": "ANNAN KUND aktiebolag", "organizationNumber": None}
    assert _different_customer(same, fortnox) is None
    # Organisation numbers decide when both are there (a renamed company is still the same).
    renamed = {"name": "Nytt Namn AB", "organizationNumber": "5560360793"}
    assert _different_customer(renamed, fortnox) is None
    other = {"name": "Annan Kund AB", "organizationNumber": "556677-8899"}
    reason = _different_customer(other, fortnox)
    assert reason is not None
    assert "organisation numbers differ" in reason


def test_preflight_fails_a_fortnox_company_on_the_number_of_a_moment_customer_without_org_number(
    fortnox: SandboxProcess, moment: SandboxProcess, tmp_path: Path
) -> None:
    without = [
        c
        for c in moment.admin("GET", "customers?size=500")["content"]
        if not c["organizationNumber"] and c["countryCode"] == "SE"
    ]
    assert len(without) >= 2, "the seed has Swedish customers without organisation number"
    taken, pushed = without[0], without[1]
    client = FortnoxClient(FortnoxSettings.from_config(fortnox_config(fortnox, tmp_path)))
    client.create(
        "customers",
        {
            "CustomerNumber": taken["customerNumber"],
            "Name": "Helt Annat Företag AB",
            "OrganisationNumber": "556036-0793",
        },
    )
    # The integration's own push of the other one, its name written differently: no collision.
    client.create(
        "customers",
        {"CustomerNumber": pushed["customerNumber"], "Name": f"  {pushed['name'].upper()} "},
    )
    customers = result(preflight(fortnox, moment, tmp_path).run(), "number-series-customers")
    assert customers.status == "fail"
    assert len(customers.items) == 1, customers.items
    item = customers.items[0]
    assert item.startswith(f"{taken['customerNumber']}: Fortnox 'Helt Annat Företag AB'")
    assert "names differ and Moment has no organisation number" in item


def test_command_line_json_and_exit_codes(
    fortnox: SandboxProcess,
    moment: SandboxProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fortnox_file = tmp_path / "fortnox.json"
    fortnox_file.write_text(json.dumps(fortnox_config(fortnox, tmp_path)))
    moment_file = tmp_path / "moment.json"
    moment_file.write_text(json.dumps(moment_config(moment)))
    argv = ["--config", str(fortnox_file), "--moment-config", str(moment_file)]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"] is True
    assert "sandbox-key" not in json.dumps(data)

    fortnox.admin("PATCH", "settings", {"project_module": False})
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "[FAIL  ] project-module" in out
    assert "NOT READY" in out


def test_command_line_without_moment_settings_says_which(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env above a tmp dir
    monkeypatch.setenv("TARGET_FORTNOX_CLIENT_ID", "x")
    monkeypatch.setenv("TARGET_FORTNOX_CLIENT_SECRET", "y")
    for name in ("TAP_MOMENT_API_URL", "TAP_MOMENT_COMPANY_CODE", "TAP_MOMENT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--config", "ENV"]) == 2
    assert "TAP_MOMENT_COMPANY_CODE" in capsys.readouterr().err
