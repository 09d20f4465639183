"""The Moment sandbox API over real HTTP: auth, CRUD, validation, lists, invoices, expenses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox.launcher import SandboxProcess

KEY = "sandbox-key"


@pytest.fixture(scope="module")
def moment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("moment-api")) / "moment.db"
    with SandboxProcess("moment", db, seed=1) as proc:
        yield proc


@pytest.fixture(scope="module")
def api(moment: SandboxProcess) -> Iterator[Api]:
    with requests.Session() as session:
        session.auth = ("apikey", KEY)
        yield Api(session, f"{moment.url}/api/1.0/companies/demo")


class Api:
    """A thin caller of one company's API that returns the raw response."""

    def __init__(self, session: requests.Session, base: str) -> None:
        self.session, self.base = session, base

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}/{path}", timeout=30, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self(method, path, **kwargs)
        assert response.ok, response.text
        return response.json()


def assert_error(response: requests.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}
    assert body["status"] == status
    datetime.fromisoformat(body["timestamp"])
    for word in words:
        assert word in body["message"], body["message"]
    return body


def new_customer(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": "Testbolaget i Örebro AB", "countryCode": "SE", **fields}
    response = api("POST", "customers", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"{api.base}/customers/{created['id']}"
    return created


# auth ------------------------------------------------------------------------------------------
def test_missing_or_wrong_key_is_401_with_spring_error_body(moment: SandboxProcess) -> None:
    url = f"{moment.url}/api/1.0/companies/demo/customers"
    body = assert_error(requests.get(url, timeout=10), 401, "apikey")
    assert body["path"] == "/api/1.0/companies/demo/customers"
    assert_error(requests.get(url, auth=("apikey", "wrong"), timeout=10), 401, "API key")
    assert_error(requests.get(url, auth=("admin", KEY), timeout=10), 401)


def test_unknown_company_is_404_and_other_companys_key_is_403(moment: SandboxProcess) -> None:
    base = f"{moment.url}/api/1.0/companies"
    assert_error(requests.get(f"{base}/nosuch/customers", auth=("apikey", KEY), timeout=10), 404)
    moment.admin("POST", "companies", {"code": "acme", "apiKey": "acme-key"})
    other = requests.get(f"{base}/demo/customers", auth=("apikey", "acme-key"), timeout=10)
    assert_error(other, 403, "demo")
    own = requests.get(f"{base}/acme/financialAccounts", auth=("apikey", "acme-key"), timeout=10)
    assert own.status_code == 200
    assert own.json()["page"]["totalElements"] == 17  # every company has the BAS accounts


def test_unknown_entity_and_id_are_404(api: Api) -> None:
    assert_error(api("GET", "widgets"), 404, "widgets")
    assert_error(api("GET", "customers/999999999"), 404, "999999999")


# lists -----------------------------------------------------------------------------------------
def test_list_envelope_pages_from_zero_in_id_order(api: Api) -> None:
    first = api.ok("GET", "customers", params={"size": 7})
    assert first["page"] == {"size": 7, "number": 0, "totalElements": 30, "totalPages": 5}
    seen: list[int] = []
    for page in range(first["page"]["totalPages"]):
        body = api.ok("GET", "customers", params={"size": 7, "page": page})
        seen += [c["id"] for c in body["content"]]
    assert len(seen) == 30
    assert seen == sorted(seen)
    beyond = api.ok("GET", "customers", params={"size": 7, "page": 5})
    assert beyond["content"] == []


def test_page_size_is_capped_at_500(api: Api) -> None:
    body = api.ok("GET", "customers", params={"size": 1000})
    assert body["page"]["size"] == 500
    assert len(body["content"]) == 30


def test_bad_list_parameters_are_400_naming_the_parameter(api: Api) -> None:
    assert_error(api("GET", "customers", params={"page": -1}), 400, "'page'")
    assert_error(api("GET", "customers", params={"size": "many"}), 400, "'size'")
    assert_error(api("GET", "customers", params={"sort": "shoeSize,asc"}), 400, "'sort'")
    # An unencoded '+' in the offset arrives as a space: the error says what to do.
    bad = api("GET", "customers?lastModifiedDateFrom=2025-01-01T00:00:00+01:00")
    assert_error(bad, 400, "lastModifiedDateFrom", "%2B")


def test_sort_by_field_descending(api: Api) -> None:
    names = [
        c["name"]
        for c in api.ok("GET", "customers", params={"size": 50, "sort": "name,desc"})["content"]
    ]
    assert names == sorted(names, reverse=True)


def test_repeated_sort_parameters_break_ties_in_order(api: Api) -> None:
    # Projects without a start date (several in the seed) tie on startDate.
    params: dict[str, Any] = {"size": 50, "sort": ["startDate,asc", "id,desc"]}
    projects = api.ok("GET", "projects", params=params)["content"]
    undated = [p["id"] for p in projects if p["startDate"] is None]
    assert len(undated) >= 2
    assert [p["id"] for p in projects[: len(undated)]] == sorted(undated, reverse=True)
    keys = [(p["startDate"] or "", -p["id"]) for p in projects]
    assert keys == sorted(keys)
    single = api.ok("GET", "projects", params={"size": 50, "sort": "startDate,asc"})["content"]
    assert [p["id"] for p in single[: len(undated)]] == sorted(undated)
    bad = api("GET", "projects", params={"sort": ["startDate,asc", "shoeSize,asc"]})
    assert_error(bad, 400, "'sort'", "shoeSize")


def test_switches_make_lists_ignore_the_filter_and_the_tie_breaks(
    api: Api, moment: SandboxProcess
) -> None:
    customers = api.ok("GET", "customers", params={"size": 50})["content"]
    newest = max(customers, key=lambda c: datetime.fromisoformat(c["lastModifiedDate"]))
    since = {"lastModifiedDateFrom": newest["lastModifiedDate"], "size": 50}
    assert [c["id"] for c in api.ok("GET", "customers", params=since)["content"]] == [newest["id"]]
    ties = {"size": 50, "sort": ["startDate,asc", "id,asc"]}
    projects = api.ok("GET", "projects", params=ties)["content"]
    undated = [p["id"] for p in projects if p["startDate"] is None]
    assert [p["id"] for p in projects[: len(undated)]] == sorted(undated)
    as_inferred = {"modified_from_filter": True, "sort_tie_breaks": True}
    assert moment.admin("GET", "settings").items() >= as_inferred.items()
    try:
        moment.admin("PATCH", "settings", dict.fromkeys(as_inferred, False))
        assert len(api.ok("GET", "customers", params=since)["content"]) == len(customers)
        ignored = api.ok("GET", "projects", params=ties)["content"][: len(undated)]
        # The store's own order among ties: newest id first.
        assert [p["id"] for p in ignored] == sorted(undated, reverse=True)
        moment.admin("POST", "seed", {"seed": 1})  # a reseed keeps the switches
        assert moment.admin("GET", "settings")["modified_from_filter"] is False
    finally:
        moment.admin("PATCH", "settings", as_inferred)
    assert [c["id"] for c in api.ok("GET", "customers", params=since)["content"]] == [newest["id"]]


def test_exact_filters(api: Api) -> None:
    one = api.ok("GET", "customers", params={"customerNumber": "1003"})["content"]
    assert [c["customerNumber"] for c in one] == ["1003"]
    projects = api.ok("GET", "projects", params={"customerNumber": "1002", "size": 100})["content"]
    assert projects
    assert {p["customer"]["customerNumber"] for p in projects} == {"1002"}
    drafts = api.ok("GET", "invoices", params={"invoiceState": "DRAFT", "size": 100})["content"]
    assert drafts
    assert all(i["invoiceNumber"] is None for i in drafts)
    by_project = api.ok("GET", "invoices", params={"projectNumber": "5001"})["content"]
    assert by_project
    assert {i["project"]["projectNumber"] for i in by_project} == {"5001"}


def test_last_modified_from_is_inclusive_and_works_across_offsets(api: Api) -> None:
    customers = api.ok("GET", "customers", params={"size": 500})["content"]
    stamps = sorted(c["lastModifiedDate"] for c in customers)
    pivot = stamps[len(stamps) // 2]
    expected = {
        c["id"]
        for c in customers
        if datetime.fromisoformat(c["lastModifiedDate"]) >= datetime.fromisoformat(pivot)
    }
    got = api.ok("GET", "customers", params={"size": 500, "lastModifiedDateFrom": pivot})
    assert {c["id"] for c in got["content"]} == expected
    assert pivot in {c["lastModifiedDate"] for c in got["content"]}  # inclusive
    # The same instant written in UTC selects the same records.
    as_utc = datetime.fromisoformat(pivot).astimezone().isoformat()
    again = api.ok("GET", "customers", params={"size": 500, "lastModifiedDateFrom": as_utc})
    assert {c["id"] for c in again["content"]} == expected


def test_include_suffix_is_accepted(api: Api) -> None:
    body = api.ok("GET", "projects/include/base+name", params={"size": 2})
    assert len(body["content"]) == 2
    assert "id" in body["content"][0]


# customers -------------------------------------------------------------------------------------
def test_customer_create_read_patch_put_delete(api: Api) -> None:
    created = new_customer(api, email="faktura@test.se", address1="Storgatan 1")
    assert created["customerNumber"].isdigit()  # Moment numbers customers when none is given
    assert created["createdDate"] == created["lastModifiedDate"]
    assert datetime.fromisoformat(created["createdDate"]).utcoffset() is not None
    path = f"customers/{created['id']}"
    assert api.ok("GET", path) == created

    patched = api.ok("PATCH", path, json={"city": "Malmö"})
    assert patched["city"] == "Malmö"
    assert patched["address1"] == "Storgatan 1"  # merge keeps the rest
    assert patched["createdDate"] == created["createdDate"]
    assert datetime.fromisoformat(patched["lastModifiedDate"]) > datetime.fromisoformat(
        created["lastModifiedDate"]
    )

    replaced = api.ok("PUT", path, json={"name": "Ersatt AB"})
    assert replaced["name"] == "Ersatt AB"
    assert replaced["address1"] is None  # replace drops what is not sent
    assert replaced["customerNumber"] == created["customerNumber"]  # the number stays

    deleted = api("DELETE", path)
    assert deleted.status_code == 204
    assert_error(api("GET", path), 404)


def test_customer_validation_names_the_field(api: Api) -> None:
    assert_error(api("POST", "customers", json={"email": "a@b.se"}), 400, "'name'", "required")
    assert_error(
        api("POST", "customers", json={"name": "X", "countryCode": "Sverige"}), 400, "'countryCode'"
    )
    assert_error(
        api("POST", "customers", json={"name": "X", "email": "not-an-address"}), 400, "'email'"
    )
    assert_error(api("POST", "customers", data="name=X"), 400, "JSON")
    assert_error(api("POST", "customers", json=["X"]), 400, "JSON object")


def test_duplicate_customer_number_is_409(api: Api) -> None:
    assert_error(
        api("POST", "customers", json={"name": "Kopia AB", "customerNumber": "1001"}), 409, "1001"
    )
    other = new_customer(api)
    assert_error(
        api("PATCH", f"customers/{other['id']}", json={"customerNumber": "1001"}),
        409,
        "customerNumber",
    )


def test_customer_in_use_cannot_be_deleted(api: Api) -> None:
    customer = api.ok("GET", "customers", params={"customerNumber": "1001"})["content"][0]
    assert_error(api("DELETE", f"customers/{customer['id']}"), 409, "projects")


def test_changed_customer_number_shows_in_its_projects(api: Api) -> None:
    customer = new_customer(api, customerNumber="88001")
    project = api.ok("POST", "projects", json={"name": "Flytt", "customerId": customer["id"]})
    assert project["customer"] == {"id": customer["id"], "customerNumber": "88001"}
    api.ok("PATCH", f"customers/{customer['id']}", json={"customerNumber": "88002"})
    assert api.ok("GET", f"projects/{project['id']}")["customer"]["customerNumber"] == "88002"


# projects --------------------------------------------------------------------------------------
def test_project_fields_and_references(api: Api) -> None:
    project = api.ok(
        "POST",
        "projects",
        json={
            "name": "Nytt kontor",
            "customer": {"customerNumber": "1004"},
            "projectNumber": "77001",
        },
    )
    assert project["customer"]["customerNumber"] == "1004"
    assert project["startDate"] is None
    assert project["projectState"] == "PLANNED"
    assert project["priceModel"] == {"expensesBillable": None}
    assert set(project) >= {
        "id",
        "projectNumber",
        "name",
        "customer",
        "startDate",
        "endDate",
        "createdDate",
        "lastModifiedDate",
        "projectState",
        "priceModel",
    }
    patched = api.ok(
        "PATCH",
        f"projects/{project['id']}",
        json={
            "priceModel": {"expensesBillable": False},
            "startDate": "2026-02-01",
            "projectState": "ONGOING",
        },
    )
    assert patched["priceModel"] == {"expensesBillable": False}
    assert patched["customer"]["customerNumber"] == "1004"
    assert_error(
        api("POST", "projects", json={"name": "X", "customer": {"customerNumber": "nosuch"}}),
        400,
        "customer.customerNumber",
    )
    assert_error(
        api(
            "POST",
            "projects",
            json={"name": "X", "customerId": project["customer"]["id"], "projectState": "DONE"},
        ),
        400,
        "'projectState'",
    )
    assert_error(
        api(
            "POST",
            "projects",
            json={"name": "X", "customerId": project["customer"]["id"], "startDate": "1/2/2026"},
        ),
        400,
        "'startDate'",
    )
    assert_error(
        api(
            "POST",
            "projects",
            json={
                "name": "Dubbel",
                "customerId": project["customer"]["id"],
                "projectNumber": "77001",
            },
        ),
        409,
        "77001",
    )


# invoices --------------------------------------------------------------------------------------
def invoice_body(**fields: Any) -> dict[str, Any]:
    return {
        "customer": {"customerNumber": "1002"},
        "project": {"projectNumber": "5002"},
        "invoiceLines": [
            {
                "description": "Konsulttimmar",
                "quantity": 10,
                "unitPrice": 1100,
                "vatRate": 25,
                "accountNumber": "3001",
            },
            {
                "description": "Logi",
                "quantity": 2,
                "unitPrice": 1290,
                "vatRate": 12,
                "accountNumber": "3002",
            },
        ],
        **fields,
    }


def test_invoice_is_numbered_on_finalize_and_read_only_after(api: Api) -> None:
    numbers = [
        i["invoiceNumber"]
        for i in api.ok("GET", "invoices", params={"size": 500})["content"]
        if i["invoiceNumber"]
    ]
    draft = api.ok("POST", "invoices", json=invoice_body())
    assert draft["invoiceNumber"] is None
    assert draft["invoiceState"] == "DRAFT"
    assert draft["currency"] == "SEK"
    edited = api.ok("PATCH", f"invoices/{draft['id']}", json={"invoiceDate": "2026-03-01"})
    assert edited["invoiceDate"] == "2026-03-01"

    final = api.ok("POST", f"invoices/{draft['id']}/finalize")
    assert final["invoiceState"] == "FINALIZED"
    assert final["invoiceNumber"] == max(numbers) + 1
    assert final["dueDate"] == "2026-03-31"  # 30 days when none was set
    assert final["ocr"].startswith(str(final["invoiceNumber"]))
    assert final["lastModifiedDate"] >= edited["lastModifiedDate"]

    assert_error(
        api("PATCH", f"invoices/{draft['id']}", json={"ocr": "1"}), 409, "finalized", "credit"
    )
    assert_error(api("DELETE", f"invoices/{draft['id']}"), 409, "finalized")
    assert_error(api("POST", f"invoices/{draft['id']}/finalize"), 409, "already finalized")
    assert api.ok("GET", "invoices", params={"invoiceNumber": final["invoiceNumber"]})[
        "content"
    ] == [final]


def test_invoice_lines_are_checked_against_vat_codes_and_accounts(api: Api) -> None:
    bad_rate = invoice_body(
        invoiceLines=[{"quantity": 1, "unitPrice": 1, "vatRate": 19, "accountNumber": "3001"}]
    )
    assert_error(api("POST", "invoices", json=bad_rate), 400, "invoiceLines[0].vatRate")
    bad_account = invoice_body(
        invoiceLines=[{"quantity": 1, "unitPrice": 1, "vatRate": 25, "accountNumber": "9999"}]
    )
    assert_error(
        api("POST", "invoices", json=bad_account), 400, "invoiceLines[0].accountNumber", "9999"
    )
    missing = invoice_body(invoiceLines=[{"quantity": 1, "vatRate": 25, "accountNumber": "3001"}])
    assert_error(api("POST", "invoices", json=missing), 400, "invoiceLines[0].unitPrice")
    wrong_customer = invoice_body(customer={"customerNumber": "1003"})
    assert_error(api("POST", "invoices", json=wrong_customer), 400, "'project'", "5002")
    credit = invoice_body(creditedInvoiceNumber=1)
    assert_error(api("POST", "invoices", json=credit), 400, "creditedInvoiceNumber")
    empty = api.ok("POST", "invoices", json=invoice_body(invoiceLines=[]))
    assert_error(api("POST", f"invoices/{empty['id']}/finalize"), 400, "invoiceLines")


# expenses --------------------------------------------------------------------------------------
def test_expense_written_with_project_id_read_with_project_ref(api: Api) -> None:
    project = api.ok("GET", "projects", params={"projectNumber": "5001"})["content"][0]
    assert project["priceModel"]["expensesBillable"] is False
    body = {
        "projectId": project["id"],
        "expenseDate": "2026-01-15",
        "description": "Tåg Stockholm–Göteborg",
        "supplierName": "SJ AB",
        "amount": 1200.0,
        "vatAmount": 72.0,
        "accountNumber": "5800",
        "externalReference": "fortnox:si:42:1",
        "invoiced": True,  # read-only: ignored
    }
    expense = api.ok("POST", "projectExpenses", json=body)
    assert expense["project"] == {"id": project["id"], "projectNumber": "5001"}
    assert expense["invoiced"] is False
    assert expense["billable"] is False  # from the project's price model
    assert expense["currency"] == "SEK"
    found = api.ok("GET", "projectExpenses", params={"externalReference": "fortnox:si:42:1"})
    assert found["content"] == [expense]
    assert found["page"]["totalElements"] == 1
    assert_error(
        api("POST", "projectExpenses", json=body), 409, "externalReference", "fortnox:si:42:1"
    )
    assert_error(
        api("POST", "projectExpenses", json={**body, "externalReference": "x", "projectId": 1}),
        400,
        "project.id",
    )
    assert_error(
        api("POST", "projectExpenses", json={**body, "externalReference": "y", "amount": "12"}),
        400,
        "'amount'",
    )
    explicit = api.ok(
        "POST", "projectExpenses", json={**body, "externalReference": "z", "billable": True}
    )
    assert explicit["billable"] is True


def test_reference_data_matches_fortnox_accounts_and_vat_codes(api: Api) -> None:
    accounts = {
        a["accountNumber"]: a["name"]
        for a in api.ok("GET", "financialAccounts", params={"size": 100})["content"]
    }
    assert {"3001", "3002", "3003", "3004", "2440", "2641", "4010", "5800", "6991"} <= set(accounts)
    codes = {v["code"]: v["rate"] for v in api.ok("GET", "vatCodes")["content"]}
    assert codes == {"MP1": 25, "MP2": 12, "MP3": 6, "MF": 0}


def test_every_update_moves_last_modified_forward(api: Api) -> None:
    customer = new_customer(api)
    stamps = [customer["lastModifiedDate"]]
    for n in range(5):
        patched = api.ok("PATCH", f"customers/{customer['id']}", json={"address2": f"Port {n}"})
        stamps.append(patched["lastModifiedDate"])
    instants = [datetime.fromisoformat(s) for s in stamps]
    assert instants == sorted(set(instants))  # strictly increasing


def test_patch_can_move_project_to_another_customer_by_id(api: Api) -> None:
    target = api.ok("GET", "customers", params={"customerNumber": "1007"})["content"][0]
    project = api.ok("POST", "projects", json={"name": "Byte", "customerId": target["id"] - 1})
    moved = api.ok("PATCH", f"projects/{project['id']}", json={"customerId": target["id"]})
    assert moved["customer"] == {"id": target["id"], "customerNumber": "1007"}
    assert moved["name"] == "Byte"
