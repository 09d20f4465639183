"""Fortnox's published API is the contract (docs/FORTNOX-CONTRACT.md): the extract is reproducible
from the document in the repo, and every answer of the Fortnox sandbox — list and single, for
every resource the project touches — has the document's field names and types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient, FortnoxSettings
from fortnox_client.errors import FortnoxDataError, FortnoxNotFound
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import fortnox_contract  # noqa: E402


def test_extract_is_reproduced_by_the_script_from_the_document_in_the_repo() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fortnox_contract.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_extract_names_its_source_and_marks_sdk_read_only_fields() -> None:
    invoice = fortnox_contract.load("invoice")
    assert invoice["source"]["sha256"] == fortnox_contract.read_document()[1]
    assert "unified-se-v2" in invoice["source"]["copy_from"]
    fields = invoice["fields"]
    # The document's request body has it; the SDK marks it read-only ("reference to the credit
    # invoice"): the SDK wins.
    assert fields["CreditInvoiceReference"]["read_only"] is True
    assert "SDK" in fields["CreditInvoiceReference"]["read_only_source"]
    assert fields["CustomerNumber"] == {**fields["CustomerNumber"], "required": True}
    listed = fortnox_contract.load("supplier_invoice")["fields"]
    assert listed["Cancel"]["in"] == "list"
    assert listed["Cancelled"]["in"] == "single"
    assert listed["Total"]["type"] == "string"
    assert "ApprovalState" not in listed
    assert fortnox_contract.load("project")["fields"]["Description"]["max_length"] == 50


def test_the_checks_find_unknown_read_only_and_badly_typed_fields() -> None:
    problems = fortnox_contract.body_problems(
        "customer",
        {"Name": "x" * 1025, "Country": "Sverige", "Colour": "red", "Email": "", "Active": "yes"},
        update=False,
    )
    assert len(problems) == 5, problems
    assert fortnox_contract.body_problems("customer", {"Email": "API_BLANK"}, update=True) == []
    assert fortnox_contract.answer_problems("financial_year", "single", {"AccountCharts": "BAS"})
    assert fortnox_contract.answer_problems("company_settings", "single", {"DatabaseNumber": 1})


# -- sandbox answers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(
    fortnox_sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> FortnoxClient:
    """A client of the session's seeded Fortnox sandbox."""
    store = Path(tmp_path_factory.mktemp("fortnox-contract-token")) / "token.json"
    settings = FortnoxSettings.from_config(
        {
            "api_url": f"{fortnox_sandbox.url}/3",
            "token_url": f"{fortnox_sandbox.url}/oauth-v1/token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "tenant_id": "1234567",
            "token_store_path": str(store),
            "max_requests_per_5s": 0,
        }
    )
    return FortnoxClient(settings)


@pytest.fixture(scope="module")
def books(client: FortnoxClient) -> dict[str, str]:
    """A customer, an invoice and its credit note made through the API (the seed has none)."""
    customer = client.create(
        "customers",
        {
            "Name": "Kontraktet AB",
            "OrganisationNumber": "556036-0793",
            "Email": "info@kontraktet.se",
            "Address1": "Storgatan 1",
            "ZipCode": "111 22",
            "City": "Stockholm",
            "CountryCode": "SE",
        },
    )
    invoice = client.create(
        "invoices",
        {
            "CustomerNumber": customer["CustomerNumber"],
            "Project": "9001",
            "InvoiceRows": [
                {
                    "AccountNumber": 3001,
                    "Description": "Arbete",
                    "DeliveredQuantity": 2,
                    "Price": 950,
                }
            ],
        },
    )
    number = str(invoice["DocumentNumber"])
    client.action("invoices", number, "bookkeep")
    credited = client.action("invoices", number, "credit")
    return {
        "customer": str(customer["CustomerNumber"]),
        "invoice": number,
        "credit": str(credited.get("CreditInvoiceReference") or ""),
    }


def _check(
    resource: str, view: str, records: list[dict[str, Any]], needed: tuple[str, ...]
) -> None:
    """No unknown field, no wrong type, and the fields the plugins read are there."""
    assert records, f"no {resource} to check"
    problems = sorted(
        {p for record in records for p in fortnox_contract.answer_problems(resource, view, record)}
    )
    missing = sorted({f for record in records for f in needed if f not in record})
    assert problems == [], "\n".join(problems)
    assert missing == [], f"{resource} {view} lacks {missing}"


PLURAL = {
    "customer": "customers",
    "project": "projects",
    "invoice": "invoices",
    "supplier_invoice": "supplierinvoices",
    "account": "accounts",
    "financial_year": "financialyears",
}
# Fields a plugin or the pre-flight reads, per resource and view: they must be in the answers.
NEEDED = {
    ("customer", "list"): ("CustomerNumber", "Name", "OrganisationNumber", "Email", "ZipCode"),
    ("customer", "single"): ("CustomerNumber", "Name", "OrganisationNumber", "CountryCode"),
    ("project", "list"): ("ProjectNumber", "Description", "Status", "StartDate", "EndDate"),
    ("project", "single"): ("ProjectNumber", "Description", "Status", "StartDate", "EndDate"),
    ("invoice", "list"): ("DocumentNumber", "CustomerNumber", "Project", "Booked", "Cancelled"),
    ("invoice", "single"): ("DocumentNumber", "InvoiceRows", "Credit", "CreditInvoiceReference"),
    ("supplier_invoice", "list"): ("GivenNumber", "Booked", "Cancel", "InvoiceDate", "Total"),
    ("supplier_invoice", "single"): ("GivenNumber", "SupplierInvoiceRows", "Cancelled", "VAT"),
    ("account", "list"): ("Number", "Description", "Active"),
    ("account", "single"): ("Number", "Description", "Active"),
    ("financial_year", "list"): ("Id", "FromDate", "ToDate", "AccountChartType"),
    ("financial_year", "single"): ("Id", "FromDate", "ToDate", "AccountChartType"),
}


@pytest.mark.parametrize("resource", list(PLURAL))
def test_list_answers_follow_the_document(
    client: FortnoxClient, books: dict[str, str], resource: str
) -> None:
    answer = client.get_path(PLURAL[resource], {"limit": 500})
    meta = answer["MetaInformation"]
    assert fortnox_contract.answer_problems("meta_information", "single", meta) == []
    assert set(meta) == set(fortnox_contract.load("meta_information")["fields"])
    items = next(v for k, v in answer.items() if k != "MetaInformation")
    _check(resource, "list", items, NEEDED[(resource, "list")])


@pytest.mark.parametrize("resource", list(PLURAL))
def test_single_answers_follow_the_document(
    client: FortnoxClient, books: dict[str, str], resource: str
) -> None:
    key_field = fortnox_contract.load(resource)["fields"]
    keys = {
        "customer": "CustomerNumber",
        "project": "ProjectNumber",
        "invoice": "DocumentNumber",
        "supplier_invoice": "GivenNumber",
        "account": "Number",
        "financial_year": "Id",
    }
    assert keys[resource] in key_field
    listed = client.get_path(PLURAL[resource], {"limit": 500})
    items = next(v for k, v in listed.items() if k != "MetaInformation")
    records = [client.get(PLURAL[resource], item[keys[resource]]) for item in items[:40]]
    _check(resource, "single", [r for r in records if r], NEEDED[(resource, "single")])


def test_credit_note_answers_follow_the_document(
    client: FortnoxClient, books: dict[str, str]
) -> None:
    assert books["credit"], "PUT /invoices/{n}/credit named no credit invoice"
    original = client.get("invoices", books["invoice"])
    credit = client.get("invoices", books["credit"])
    assert original
    assert credit
    _check("invoice", "single", [original, credit], NEEDED[("invoice", "single")])


@pytest.mark.parametrize(
    ("path", "resource"),
    [("companyinformation", "company_information"), ("settings/company", "company_settings")],
)
def test_company_answers_follow_the_document(
    client: FortnoxClient, path: str, resource: str
) -> None:
    answer = client.get_path(path)
    (record,) = answer.values()
    _check(resource, "single", [record], ("DatabaseNumber", "OrganizationNumber"))
    # Nothing left out: the company answers carry every documented field.
    assert set(record) >= set(fortnox_contract.load(resource)["fields"]) - {"@url"}


def test_error_answers_follow_the_document(client: FortnoxClient) -> None:
    with pytest.raises(FortnoxNotFound):
        client.get_path("customers/does-not-exist")
    answer = client._session.get(  # the raw body, which the client turns into an exception
        f"{client.settings.api_url}/customers/does-not-exist",
        headers={"Authorization": f"Bearer {client.tokens.access_token()}"},
        timeout=10,
    ).json()
    _check("error", "single", [answer["ErrorInformation"]], ("message", "code"))


@pytest.mark.parametrize(
    ("number", "country", "accepted"),
    [
        ("556036-0793", "SE", True),  # organisation number, check digit right
        ("5560360793", "SE", True),
        ("19121212-1212", "SE", True),  # personal number with the century
        ("556036-0794", "SE", False),  # check digit wrong
        ("556036-079", "SE", False),  # a digit short
        ("556036-0794", "", False),  # no country: Swedish
        ("987 654 321 MVA", "NO", True),  # foreign: as written (inferred)
    ],
)
def test_customer_organisation_number_must_be_valid(
    client: FortnoxClient, number: str, country: str, accepted: bool
) -> None:
    body = {"Name": "Orgnummer AB", "OrganisationNumber": number}
    if country:
        body["CountryCode"] = country
    if accepted:
        assert client.create("customers", body)["OrganisationNumber"] == number
        return
    with pytest.raises(FortnoxDataError, match="OrganisationNumber"):
        client.create("customers", body)
