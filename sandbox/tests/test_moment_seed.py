"""The Moment demo seed over real HTTP: deterministic, realistic, with its hard cases, and fast."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox.launcher import SandboxProcess

AUTH = ("apikey", "sandbox-key")


def fetch_all(moment: SandboxProcess, entity: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    page = 0
    while True:
        response = requests.get(
            f"{moment.url}/api/1.0/companies/demo/{entity}",
            params={"size": 500, "page": page},
            auth=AUTH,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        records += body["content"]
        page += 1
        if page >= body["page"]["totalPages"]:
            return records


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("moment-seed")) / "moment.db"
    with SandboxProcess("moment", db, seed=1) as proc:
        yield proc


@pytest.fixture(scope="module")
def data(seeded: SandboxProcess) -> dict[str, list[dict[str, Any]]]:
    return {
        e: fetch_all(seeded, e) for e in ("customers", "projects", "invoices", "projectExpenses")
    }


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def test_same_seed_same_data_other_seed_other_data(
    seeded: SandboxProcess, data: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    with SandboxProcess("moment", tmp_path / "again.db", seed=1) as again:
        for entity in ("customers", "projects", "invoices", "projectExpenses"):
            assert fetch_all(again, entity) == data[entity], entity
        again.admin("POST", "seed", {"seed": 2})
        other = fetch_all(again, "customers")
    assert [c["name"] for c in other] != [c["name"] for c in data["customers"]]
    assert [c["customerNumber"] for c in other] == [c["customerNumber"] for c in data["customers"]]


def test_customers_are_realistic_and_include_hard_cases(
    data: dict[str, list[dict[str, Any]]],
) -> None:
    customers = data["customers"]
    assert [c["customerNumber"] for c in customers] == [str(1000 + i) for i in range(1, 31)]
    assert any(re.search("[åäöÅÄÖ]", c["name"]) for c in customers)
    with_org = [c for c in customers if c["organizationNumber"]]
    assert with_org
    assert len(with_org) < len(customers)  # some have none
    for customer in with_org:
        number = customer["organizationNumber"]
        assert re.fullmatch(r"\d{6}-\d{4}", number), number
        assert int(number[2]) >= 2, number  # a company, not a personal identity number
        assert luhn_valid(number.replace("-", "")), number
    assert any(c["email"] is None for c in customers)
    assert all(c["email"] is None or "@" in c["email"] for c in customers)
    assert any(c["address2"] for c in customers)
    countries = [c["countryCode"] for c in customers]
    assert countries.count("SE") >= 20
    assert {"NO", "DK", "DE", "FI"} <= set(countries)
    for customer in customers:
        assert customer["address1"]
        assert customer["city"]
        if customer["countryCode"] == "SE":
            assert re.fullmatch(r"\d{3} \d{2}", customer["postalCode"]), customer


def test_projects_follow_numbering_and_hard_cases(data: dict[str, list[dict[str, Any]]]) -> None:
    projects = data["projects"]
    assert [p["projectNumber"] for p in projects] == [str(5000 + i) for i in range(1, 21)]
    for i, project in enumerate(projects, start=1):
        assert project["customer"]["customerNumber"] == str(1000 + (i - 1) % 30 + 1)
        assert project["projectState"] in {"PLANNED", "ONGOING", "FINISHED"}
    assert sum(len(p["name"]) > 50 for p in projects) >= 2
    assert sum(p["startDate"] is None for p in projects) >= 3
    billable = [p["priceModel"]["expensesBillable"] for p in projects]
    assert billable.count(False) >= 2
    assert True in billable
    assert None in billable
    assert {p["projectState"] for p in projects} == {"PLANNED", "ONGOING", "FINISHED"}


def test_invoices_cover_vat_rates_drafts_credit_and_no_project(
    data: dict[str, list[dict[str, Any]]],
) -> None:
    invoices = data["invoices"]
    assert len(invoices) == 40
    final = [i for i in invoices if i["invoiceState"] == "FINALIZED"]
    drafts = [i for i in invoices if i["invoiceState"] == "DRAFT"]
    assert drafts
    assert all(i["invoiceNumber"] is None for i in drafts)
    numbers = sorted(i["invoiceNumber"] for i in final)
    assert numbers == list(range(7001, 7001 + len(final)))
    assert any({line["vatRate"] for line in i["invoiceLines"]} >= {25, 12, 6} for i in final)
    assert any(i["project"] is None for i in final)
    credits = [i for i in final if i["creditedInvoiceNumber"] is not None]
    assert len(credits) == 1
    credit = credits[0]
    assert credit["creditedInvoiceNumber"] in numbers
    assert all(line["quantity"] < 0 for line in credit["invoiceLines"])
    by_number = {i["invoiceNumber"]: i for i in final}
    original = by_number[credit["creditedInvoiceNumber"]]
    assert credit["customer"] == original["customer"]
    assert all(i["ocr"] for i in final)
    for invoice in final:
        if invoice["project"] is not None:
            assert invoice["project"]["projectNumber"].startswith("50")


def test_expenses_reference_projects_and_some_are_invoiced(
    data: dict[str, list[dict[str, Any]]],
) -> None:
    expenses = data["projectExpenses"]
    assert len(expenses) == 25
    project_numbers = {p["projectNumber"] for p in data["projects"]}
    assert {e["project"]["projectNumber"] for e in expenses} <= project_numbers
    assert any(e["invoiced"] for e in expenses)
    assert not all(e["invoiced"] for e in expenses)
    assert {e["accountNumber"] for e in expenses} <= {
        "4010", "5010", "5410", "5460", "5611", "5800", "6110", "6212", "6230", "6540", "6991",
    }  # fmt: skip
    billable_by_project = {
        p["projectNumber"]: p["priceModel"]["expensesBillable"] for p in data["projects"]
    }
    for expense in expenses:
        setting = billable_by_project[expense["project"]["projectNumber"]]
        assert expense["billable"] is (True if setting is None else setting)


def test_seed_sizes_reach_100k_records_with_paging_in_sql(tmp_path: Path) -> None:
    with SandboxProcess("moment", tmp_path / "big.db") as big:
        response = requests.post(
            f"{big.url}/_sandbox/seed",
            json={"seed": 5, "customers": 100_000, "projects": 10, "invoices": 10, "expenses": 10},
            timeout=300,
        )
        assert response.status_code == 200, response.text
        assert response.json()["counts"]["customers"] == 100_000
        last = requests.get(
            f"{big.url}/api/1.0/companies/demo/customers",
            params={"size": 500, "page": 199},
            auth=AUTH,
            timeout=30,
        ).json()
        assert last["page"]["totalPages"] == 200
        assert last["content"][-1]["customerNumber"] == "101000"
