"""Fortnox sandbox /3/ API: envelopes, paging and filters, registers and customer invoices,
validation and error codes — over real HTTP against a real sandbox process.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sandbox.launcher import SandboxProcess

_numbers = itertools.count(1)


class Api:
    """A logged-in HTTP client for one sandbox (the token comes from a minted refresh token)."""

    def __init__(self, fx: SandboxProcess, scope: str = "") -> None:
        minted = fx.admin("POST", "refresh-tokens", {"scope": scope} if scope else {})
        reply = requests.post(
            f"{fx.url}/oauth-v1/token",
            data={"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]},
            auth=("sandbox-client", "sandbox-secret"),
            timeout=10,
        )
        self.base = f"{fx.url}/3"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(f"{self.base}/{path}", params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(f"{self.base}/{path}", json=body, timeout=10)

    def put(self, path: str, body: Any = None) -> requests.Response:
        if body is None:  # action endpoints: no body, but the JSON content type
            return self.session.put(
                f"{self.base}/{path}", headers={"Content-Type": "application/json"}, timeout=10
            )
        return self.session.put(f"{self.base}/{path}", json=body, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(f"{self.base}/{path}", timeout=10)


def error_code(reply: requests.Response) -> int:
    return int(reply.json()["ErrorInformation"]["code"])


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("fortnox-api")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=5, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


@pytest.fixture(scope="module")
def api(fx: SandboxProcess) -> Api:
    return Api(fx)


def new_number() -> str:
    return str(1000 + next(_numbers))


def make_customer(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"CustomerNumber": new_number(), "Name": "Åkesson Konsult AB", **fields}
    reply = api.post("customers", {"Customer": body})
    assert reply.status_code == 201, reply.text
    return dict(reply.json()["Customer"])


# envelopes and lists ---------------------------------------------------------------------------
def test_list_envelope_has_metainformation_first_and_list_fields(api: Api) -> None:
    make_customer(api, Email="a@b.se", Phone1="08-1", CountryCode="SE", Comments="x")
    reply = api.get("customers")
    body = reply.json()
    assert list(body) == ["MetaInformation", "Customers"]
    assert set(body["MetaInformation"]) == {"@TotalResources", "@TotalPages", "@CurrentPage"}
    item = body["Customers"][0]
    assert next(iter(item)) == "@url"
    assert set(item) == {
        "@url",
        "CustomerNumber",
        "Name",
        "OrganisationNumber",
        "Email",
        "Address1",
        "Address2",
        "ZipCode",
        "City",
        "Phone",
    }
    assert item["@url"].endswith(f"/3/customers/{item['CustomerNumber']}")


def test_paging_limit_offset_and_limit_over_500(api: Api) -> None:
    for _ in range(5):
        make_customer(api)
    total = api.get("customers").json()["MetaInformation"]["@TotalResources"]
    page2 = api.get("customers", limit=2, page=2).json()
    assert page2["MetaInformation"] == {
        "@TotalResources": total,
        "@TotalPages": -(-total // 2),
        "@CurrentPage": 2,
    }
    everything = [c["CustomerNumber"] for c in api.get("customers", limit=500).json()["Customers"]]
    assert [c["CustomerNumber"] for c in page2["Customers"]] == everything[2:4]
    shifted = api.get("customers", limit=2, page=1, offset=1).json()["Customers"]
    assert [c["CustomerNumber"] for c in shifted] == everything[1:3]
    too_big = api.get("customers", limit=501)
    assert too_big.status_code == 400
    assert error_code(too_big) == 2000588


def test_lastmodified_filter_uses_stockholm_local_time(api: Api) -> None:
    before = api.get("customers", lastmodified="2100-01-01 00:00").json()
    assert before["Customers"] == []
    created = make_customer(api)
    two_minutes_ago = (datetime.now(ZoneInfo("Europe/Stockholm")) - timedelta(minutes=2)).strftime(
        "%Y-%m-%d %H:%M"
    )
    recent = api.get("customers", lastmodified=two_minutes_ago, limit=500).json()["Customers"]
    assert created["CustomerNumber"] in [c["CustomerNumber"] for c in recent]
    in_an_hour = (datetime.now(ZoneInfo("Europe/Stockholm")) + timedelta(hours=1)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    assert api.get("customers", lastmodified=in_an_hour).json()["Customers"] == []
    bad = api.get("customers", lastmodified="yesterday")
    assert bad.status_code == 400


def test_sorting_and_search(api: Api) -> None:
    make_customer(api, Name="Östlund Bygg AB")
    make_customer(api, Name="Ahlgren Data AB")
    names = [c["Name"] for c in api.get("customers", sortby="name", limit=500).json()["Customers"]]
    assert names == sorted(names)
    down = api.get("customers", sortby="customernumber", sortorder="descending", limit=500)
    numbers = [c["CustomerNumber"] for c in down.json()["Customers"]]
    assert numbers == sorted(numbers, key=int, reverse=True)
    found = api.get("customers", name="östlund").json()["Customers"]
    assert [c["Name"] for c in found] == ["Östlund Bygg AB"]
    assert api.get("customers", sortby="colour").status_code == 400


# customers ---------------------------------------------------------------------------------------
def test_customer_create_get_update_delete(api: Api) -> None:
    created = make_customer(
        api,
        OrganisationNumber="556677-8899",
        Email="faktura@akesson.se",
        Address1="Storgatan 1",
        ZipCode="111 22",
        City="Göteborg",
        CountryCode="NO",
    )
    number = created["CustomerNumber"]
    assert created["Country"] == "Norge"
    got = api.get(f"customers/{number}").json()["Customer"]
    assert got["City"] == "Göteborg"
    assert got["Phone1"] == ""  # single GET carries more than the list
    updated = api.put(f"customers/{number}", {"Customer": {"City": "Malmö"}}).json()["Customer"]
    assert updated["City"] == "Malmö"
    assert updated["Email"] == "faktura@akesson.se"  # PUT changes only what it sends
    assert api.delete(f"customers/{number}").status_code == 204
    gone = api.get(f"customers/{number}")
    assert gone.status_code == 404
    assert error_code(gone) == 2000423


def test_deleted_customer_number_stays_reserved(api: Api) -> None:
    number = make_customer(api)["CustomerNumber"]
    again = api.post("customers", {"Customer": {"CustomerNumber": number, "Name": "X"}})
    assert again.status_code == 400
    assert error_code(again) == 2000637
    api.delete(f"customers/{number}")
    reused = api.post("customers", {"Customer": {"CustomerNumber": number, "Name": "X"}})
    assert reused.status_code == 400
    assert error_code(reused) == 2000637
    assert number in reused.json()["ErrorInformation"]["message"]


def test_put_with_empty_or_null_leaves_a_field_and_api_blank_empties_it(api: Api) -> None:
    """Fortnox's rule for writes: "" and null mean "unchanged"; API_BLANK empties the field."""
    number = make_customer(api, Email="a@b.se", Address2="Box 1", CountryCode="NO", Phone1="08-1")[
        "CustomerNumber"
    ]
    kept = api.put(
        f"customers/{number}",
        {"Customer": {"Email": "", "Address2": None, "CountryCode": "", "City": "Oslo"}},
    ).json()["Customer"]
    assert (kept["Email"], kept["Address2"], kept["CountryCode"]) == ("a@b.se", "Box 1", "NO")
    assert kept["City"] == "Oslo"
    blank = {"Email": "API_BLANK", "Address2": "API_BLANK", "CountryCode": "API_BLANK"}
    emptied = api.put(f"customers/{number}", {"Customer": blank}).json()["Customer"]
    assert (emptied["Email"], emptied["Address2"], emptied["CountryCode"]) == ("", "", "")
    assert emptied["Country"] == ""
    assert emptied["Phone1"] == "08-1"  # not named, not touched
    assert api.get(f"customers/{number}").json()["Customer"]["Email"] == ""
    # A required field cannot be emptied, nor can a boolean.
    no_name = api.put(f"customers/{number}", {"Customer": {"Name": "API_BLANK"}})
    assert error_code(no_name) == 2001795
    assert error_code(api.put(f"customers/{number}", {"Customer": {"Active": "API_BLANK"}})) == (
        2000134
    )
    project = api.post(
        "projects",
        {
            "Project": {
                "Description": "Blankning",
                "StartDate": "2026-01-01",
                "EndDate": "2026-12-31",
            }
        },
    ).json()["Project"]
    cleared = api.put(
        f"projects/{project['ProjectNumber']}", {"Project": {"EndDate": "API_BLANK"}}
    ).json()["Project"]
    assert cleared["EndDate"] == ""


def test_customer_without_number_gets_fortnox_only_series(api: Api) -> None:
    created = api.post("customers", {"Customer": {"Name": "Fortnox-kund AB"}}).json()["Customer"]
    assert int(created["CustomerNumber"]) >= 90000


@pytest.mark.parametrize(
    ("fields", "code", "word"),
    [
        ({"Name": ""}, 2001795, "Name"),
        ({"ZipCode": "12345678901"}, 2001392, "ZipCode"),
        ({"CountryCode": "XX"}, 2001392, "CountryCode"),
        ({"CountryCode": "SWE"}, 2001392, "CountryCode"),
        ({"Email": "not-an-email"}, 2001392, "Email"),
        ({"Name": "Bad 😀 AB"}, 2000359, "Name"),
        ({"City": "Tab\tCity"}, 2000359, "City"),
        ({"Active": "maybe"}, 2000134, "Active"),
        ({"Colour": "blue"}, 2001399, "Colour"),
    ],
)
def test_customer_validation(api: Api, fields: dict[str, Any], code: int, word: str) -> None:
    body = {"CustomerNumber": new_number(), "Name": "Namn AB", **fields}
    reply = api.post("customers", {"Customer": body})
    assert reply.status_code == 400
    assert error_code(reply) == code
    assert word in reply.json()["ErrorInformation"]["message"]


def test_valid_characters_are_accepted(api: Api) -> None:
    name = "Åsa & Øberg–Ælv (Café) ½ 100 % #1 @ 2³ ©™ – ok!"
    assert make_customer(api, Name=name)["Name"] == name


def test_any_letter_of_any_language_is_a_valid_character(api: Api) -> None:
    """Fortnox's published class starts with \\p{L}: ñ, ł, ß, Cyrillic, Greek, CJK; and the
    combining ¨ and ˚ (U+0308, U+030A) of decomposed å, ä, ö."""
    name = "Muñoz Łódź Straße Жуков Λάμδα 中文 A\u030angstro\u0308m \\ ’"
    created = make_customer(api, Name=name)
    assert created["Name"] == name
    assert api.get(f"customers/{created['CustomerNumber']}").json()["Customer"]["Name"] == name


def test_write_without_json_content_type_is_1000031(api: Api) -> None:
    reply = api.session.post(
        f"{api.base}/customers",
        data='{"Customer": {"Name": "X"}}',
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert error_code(reply) == 1000031
    action = api.session.put(f"{api.base}/invoices/1/bookkeep", timeout=10)
    assert error_code(action) == 1000031


def test_unknown_path_and_bad_json(api: Api) -> None:
    assert error_code(api.get("nonsense")) == 2000423
    broken = api.session.post(
        f"{api.base}/customers",
        data="{broken",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 400
    assert error_code(broken) == 2002115


# projects ----------------------------------------------------------------------------------------
def test_project_rules(api: Api) -> None:
    ok = api.post(
        "projects",
        {
            "Project": {
                "ProjectNumber": "5001",
                "Description": "Nybygge",
                "Status": "ONGOING",
                "StartDate": "2026-01-15",
            }
        },
    )
    assert ok.status_code == 201
    assert ok.json()["Project"]["ProjectNumber"] == "5001"
    listed = api.get("projects").json()["Projects"]
    assert "Comments" not in listed[0]
    assert "5001" in [p["ProjectNumber"] for p in listed]
    for body, code in [
        ({"ProjectNumber": "5002", "Description": ""}, 2001795),
        ({"ProjectNumber": "5003", "Description": "x" * 51}, 2001392),
        ({"ProjectNumber": "x" * 21, "Description": "ok"}, 2001392),
        ({"ProjectNumber": "5004", "Description": "ok", "Status": "DONE"}, 2001392),
        ({"ProjectNumber": "5005", "Description": "ok", "StartDate": "2026-13-01"}, 2001392),
    ]:
        reply = api.post("projects", {"Project": body})
        assert reply.status_code == 400, body
        assert error_code(reply) == code, body
    put = api.put("projects/5001", {"Project": {"EndDate": "2026-12-31", "Status": "COMPLETED"}})
    assert put.json()["Project"]["Status"] == "COMPLETED"
    assert api.delete("projects/5001").status_code == 204
    auto = api.post("projects", {"Project": {"Description": "Auto"}}).json()["Project"]
    assert int(auto["ProjectNumber"]) > 9002


def test_project_module_off_answers_2001101(fx: SandboxProcess, api: Api) -> None:
    fx.admin("PATCH", "settings", {"project_module": False})
    try:
        for reply in (api.get("projects"), api.post("projects", {"Project": {"Description": "x"}})):
            assert reply.status_code == 403
            assert error_code(reply) == 2001101
        assert api.get("customers").status_code == 200
    finally:
        fx.admin("PATCH", "settings", {"project_module": True})
    assert api.get("projects").status_code == 200


# customer invoices -------------------------------------------------------------------------------
def invoice_body(customer: str, number: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerNumber": customer,
        "InvoiceDate": "2026-03-01",
        "DueDate": "2026-03-31",
        "InvoiceRows": [
            {
                "AccountNumber": 3001,
                "Description": "Konsulttimmar",
                "DeliveredQuantity": 10,
                "Price": 1000,
                "VAT": 25,
            },
            {
                "AccountNumber": 3002,
                "Description": "Kurslitteratur",
                "DeliveredQuantity": "2",
                "Price": 50.5,
                "VAT": 12,
            },
        ],
        **fields,
    }
    if number:
        body["DocumentNumber"] = number
    return {"Invoice": body}


def test_invoice_totals_are_computed_and_read_only(api: Api) -> None:
    customer = make_customer(api)["CustomerNumber"]
    reply = api.post("invoices", invoice_body(customer, "7101", Total=1, Booked=True, OCR="123"))
    assert reply.status_code == 201, reply.text
    invoice = reply.json()["Invoice"]
    assert invoice["DocumentNumber"] == "7101"
    assert invoice["Net"] == 10101.0
    assert invoice["TotalVAT"] == 2512.12
    assert invoice["Total"] == 12613.12
    assert invoice["Booked"] is False
    assert invoice["Cancelled"] is False
    assert invoice["OCR"] == "123"
    assert [r["RowId"] for r in invoice["InvoiceRows"]] == [1, 2]
    listed = api.get("invoices", documentnumber="7101").json()["Invoices"][0]
    assert "InvoiceRows" not in listed
    assert listed["Total"] == 12613.12
    duplicate = api.post("invoices", invoice_body(customer, "7101"))
    assert duplicate.status_code == 400
    assert "7101" in duplicate.json()["ErrorInformation"]["message"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"CustomerNumber": "nobody"}, 2000423),
        ({"Project": "4711"}, 2000423),
        ({"InvoiceRows": [{"AccountNumber": 3999, "DeliveredQuantity": 1, "Price": 1}]}, 2001304),
        ({"InvoiceRows": [{"AccountNumber": 3001, "DeliveredQuantity": 1, "VAT": 7}]}, 2001392),
        ({"InvoiceRows": [{"AccountNumber": 3001, "DeliveredQuantity": "many"}]}, 2000108),
    ],
)
def test_invoice_references_and_rows_are_checked(
    api: Api, change: dict[str, Any], code: int
) -> None:
    customer = make_customer(api)["CustomerNumber"]
    body = invoice_body(customer)
    body["Invoice"].update(change)
    reply = api.post("invoices", body)
    assert reply.status_code == 400
    assert error_code(reply) == code


def test_credit_note_by_post_keeps_its_number_and_the_read_only_reference_is_ignored(
    api: Api, fx: SandboxProcess
) -> None:
    """A credit note POSTed with negative rows keeps the number it was given; the link the client
    writes (ExternalInvoiceReference1) is kept; CreditInvoiceReference is read-only (C# SDK: the
    original's reference *to* its credit invoice) and ignored. Credit is a string, "true" for a
    negative invoice only with the (inferred) switch on."""
    customer = make_customer(api)["CustomerNumber"]
    original = api.post("invoices", invoice_body(customer, "7351")).json()["Invoice"]
    assert (original["Credit"], original["CreditInvoiceReference"]) == ("false", "0")
    body = invoice_body(
        customer, "7352", CreditInvoiceReference="7351", ExternalInvoiceReference1="7351"
    )
    for row in body["Invoice"]["InvoiceRows"]:
        row["DeliveredQuantity"] = -float(row["DeliveredQuantity"])
    note = api.post("invoices", body).json()["Invoice"]
    assert note["DocumentNumber"] == "7352"
    assert note["Total"] == -original["Total"]
    assert note["ExternalInvoiceReference1"] == "7351"
    assert note["CreditInvoiceReference"] == "0"
    assert note["Credit"] == "true"
    assert api.get("invoices/7351").json()["Invoice"]["CreditInvoiceReference"] == "0"
    fx.admin("PATCH", "settings", {"negative_invoice_is_credit": False})
    try:
        body["Invoice"]["DocumentNumber"] = "7353"
        assert api.post("invoices", body).json()["Invoice"]["Credit"] == "false"
    finally:
        fx.admin("PATCH", "settings", {"negative_invoice_is_credit": True})


def test_invoice_actions_and_booked_invoices_are_law(api: Api) -> None:
    customer = make_customer(api)["CustomerNumber"]
    api.post("projects", {"Project": {"ProjectNumber": "5010", "Description": "Projekt"}})
    number = api.post("invoices", invoice_body(customer, "7201", Project="5010")).json()["Invoice"][
        "DocumentNumber"
    ]
    changed = api.put(f"invoices/{number}", {"Invoice": {"Remarks": "Tack!"}})
    assert changed.json()["Invoice"]["Remarks"] == "Tack!"
    booked = api.put(f"invoices/{number}/bookkeep").json()["Invoice"]
    assert booked["Booked"] is True
    assert booked["VoucherNumber"]
    refused = api.put(f"invoices/{number}", {"Invoice": {"Remarks": "Ändrad"}})
    assert refused.status_code == 400
    assert "bokförd" in refused.json()["ErrorInformation"]["message"]
    assert api.put(f"invoices/{number}/cancel").status_code == 400
    credited = api.put(f"invoices/{number}/credit").json()["Invoice"]
    note = api.get(f"invoices/{credited['CreditInvoiceReference']}").json()["Invoice"]
    assert note["Credit"] == "true"
    assert note["InvoiceReference"] == number  # the credit note's link to its original
    assert note["CreditInvoiceReference"] == "0"
    assert note["Total"] == -booked["Total"]
    assert api.put(f"invoices/{number}/credit").status_code == 400  # credited once
    assert api.delete(f"invoices/{number}").status_code == 405
    draft = api.post("invoices", invoice_body(customer, "7202")).json()["Invoice"]
    cancelled = api.put(f"invoices/{draft['DocumentNumber']}/cancel").json()["Invoice"]
    assert cancelled["Cancelled"] is True
    only_cancelled = api.get("invoices", filter="cancelled").json()["Invoices"]
    assert [i["DocumentNumber"] for i in only_cancelled] == ["7202"]
    unbooked = [
        i["DocumentNumber"] for i in api.get("invoices", filter="unbooked").json()["Invoices"]
    ]
    assert "7201" not in unbooked
    assert "7202" not in unbooked
    assert api.get("invoices", filter="bogus").status_code == 400


def test_invoice_date_range_filter(api: Api) -> None:
    customer = make_customer(api)["CustomerNumber"]
    api.post("invoices", invoice_body(customer, "7301", InvoiceDate="2026-05-10"))
    api.post(
        "invoices", invoice_body(customer, "7302", InvoiceDate="2026-06-10", DueDate="2026-07-10")
    )
    found = api.get("invoices", fromdate="2026-06-01", todate="2026-06-30").json()["Invoices"]
    assert [i["DocumentNumber"] for i in found] == ["7302"]


def test_ocr_toggle(fx: SandboxProcess, api: Api) -> None:
    customer = make_customer(api)["CustomerNumber"]
    fx.admin("PATCH", "settings", {"ocr_on_invoices": True})
    generated = api.post("invoices", invoice_body(customer, "7401")).json()["Invoice"]["OCR"]
    assert generated.startswith("7401")
    assert _luhn_ok(generated)
    fx.admin("PATCH", "settings", {"ocr_on_invoices": False})
    try:
        plain = api.post("invoices", invoice_body(customer, "7402")).json()["Invoice"]
        assert plain["OCR"] == ""
        sent = api.post("invoices", invoice_body(customer, "7403", OCR="740356")).json()["Invoice"]
        assert sent["OCR"] == "740356"
    finally:
        fx.admin("PATCH", "settings", {"ocr_on_invoices": True})


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


# bookkeeping and company -------------------------------------------------------------------------
def test_accounts_financial_years_and_company(api: Api) -> None:
    numbers = {a["Number"] for a in api.get("accounts", limit=500).json()["Accounts"]}
    assert {
        3001,
        3002,
        3003,
        3004,
        2440,
        2641,
        4010,
        5010,
        5410,
        5460,
        5611,
        5800,
        6110,
        6212,
        6230,
        6540,
        6991,
    } <= numbers
    assert api.get("accounts/2440").json()["Account"]["Description"] == "Leverantörsskulder"
    assert error_code(api.get("accounts/1234")) == 2001304
    years = api.get("financialyears").json()["FinancialYears"]
    this_year = date.today().year
    assert [y["FromDate"] for y in years] == [f"{this_year - 1}-01-01", f"{this_year}-01-01"]
    current = api.get("financialyears", date=f"{this_year}-06-01").json()["FinancialYears"]
    assert [y["Id"] for y in current] == [2]
    info = api.get("companyinformation").json()["CompanyInformation"]
    settings = api.get("settings/company").json()["CompanySettings"]
    # An integer in companyinformation, a string in settings/company (Fortnox's OpenAPI).
    assert info["DatabaseNumber"] == 1234567
    assert settings["DatabaseNumber"] == "1234567"
    digits = info["OrganizationNumber"].replace("-", "")
    assert len(digits) == 10
    assert _luhn_ok(digits)
    assert info["CompanyName"].endswith("AB")


# project module and posting rules (docs/FORTNOX_PROJECTS.md) ------------------------------------
@pytest.fixture
def settings(fx: SandboxProcess) -> Iterator[Any]:
    """PATCH sandbox settings for one test; the defaults come back afterwards."""
    before = fx.admin("GET", "settings")
    yield lambda **changes: fx.admin("PATCH", "settings", changes)
    fx.admin("PATCH", "settings", before)


@pytest.fixture(scope="module")
def customer(api: Api) -> str:
    reply = api.post("customers", {"Customer": {"CustomerNumber": "4711", "Name": "Regel AB"}})
    assert reply.status_code == 201, reply.text
    return "4711"


def invoice(customer: str, account: int, project: str = "", day: str = "2026-03-02") -> Any:
    return {
        "Invoice": {
            "CustomerNumber": customer,
            "DocumentNumber": str(7000 + int(new_number())),
            "InvoiceDate": day,
            "Project": project,
            "InvoiceRows": [
                {
                    "AccountNumber": account,
                    "Description": "Arbete",
                    "DeliveredQuantity": 1,
                    "Price": 100,
                    "VAT": 25,
                }
            ],
        }
    }


def message(reply: Any) -> str:
    return str(reply.json()["ErrorInformation"]["message"])


def test_accounts_list_their_project_and_cost_centre_rules(api: Api) -> None:
    accounts = {a["Number"]: a for a in api.get("accounts", limit=500).json()["Accounts"]}
    assert accounts[3001]["ProjectSettings"] == "ALLOWED"
    assert accounts[3001]["CostCenterSettings"] == "ALLOWED"
    assert accounts[3011]["ProjectSettings"] == "MANDATORY"
    assert accounts[3012]["CostCenterSettings"] == "MANDATORY"
    assert accounts[3740]["ProjectSettings"] == "NOTALLOWED"
    single = api.get("accounts/3011").json()["Account"]
    assert single["ProjectSettings"] == "MANDATORY"


def test_project_mandatory_account_refuses_a_row_without_project(api: Api, customer: str) -> None:
    refused = api.post("invoices", invoice(customer, 3011))
    assert refused.status_code == 400
    assert error_code(refused) == 2001392  # Fortnox's own code is not published (inferred)
    assert message(refused).startswith("Projekt är obligatoriskt på konto: 3011")
    # The invoice's project counts for its rows (inferred).
    assert api.post("invoices", invoice(customer, 3011, project="9001")).status_code == 201


def test_project_notallowed_account_refuses_a_row_with_project(api: Api, customer: str) -> None:
    refused = api.post("invoices", invoice(customer, 3740, project="9001"))
    assert refused.status_code == 400
    assert message(refused).startswith("Projekt är inte tillåtet på konto: 3740")
    assert api.post("invoices", invoice(customer, 3740)).status_code == 201


def test_cost_centre_mandatory_account_answers_2000946(api: Api, customer: str) -> None:
    refused = api.post("invoices", invoice(customer, 3012))
    assert error_code(refused) == 2000946
    assert message(refused).startswith("Kostnadsställe är obligatoriskt på konto: 3012")


def test_rules_apply_on_update_too(api: Api, customer: str) -> None:
    created = api.post("invoices", invoice(customer, 3001)).json()["Invoice"]
    rows = [{"AccountNumber": 3011, "Description": "x", "DeliveredQuantity": 1, "Price": 1}]
    reply = api.put(f"invoices/{created['DocumentNumber']}", {"Invoice": {"InvoiceRows": rows}})
    assert reply.status_code == 400
    assert "obligatoriskt på konto: 3011" in message(reply)


def test_account_rules_only_when_booked_when_switched(
    api: Api, customer: str, settings: Any
) -> None:
    settings(account_rules_on_save=False)
    created = api.post("invoices", invoice(customer, 3011))
    assert created.status_code == 201, created.text
    booked = api.put(f"invoices/{created.json()['Invoice']['DocumentNumber']}/bookkeep")
    assert booked.status_code == 400
    assert "Projekt är obligatoriskt på konto: 3011" in message(booked)


def test_project_period_on_booking_and_on_save_when_switched(
    api: Api, customer: str, settings: Any
) -> None:
    ended = {
        "ProjectNumber": "7700",
        "Description": "Avslutat",
        "StartDate": "2026-01-01",
        "EndDate": "2026-02-28",
    }
    assert api.post("projects", {"Project": ended}).status_code == 201
    inside = api.post("invoices", invoice(customer, 3001, "7700", day="2026-02-10"))
    assert api.put(f"invoices/{inside.json()['Invoice']['DocumentNumber']}/bookkeep").ok
    late = api.post("invoices", invoice(customer, 3001, "7700", day="2026-03-02"))
    assert late.status_code == 201  # by default the period is checked when booking
    booked = api.put(f"invoices/{late.json()['Invoice']['DocumentNumber']}/bookkeep")
    assert booked.status_code == 400
    assert message(booked).startswith("Projektredovisningsperioden är inte aktiv för projekt 7700")
    settings(project_period_on_save=True)
    refused = api.post("invoices", invoice(customer, 3001, "7700", day="2026-03-02"))
    assert refused.status_code == 400
    assert "Projektredovisningsperioden" in message(refused)


@pytest.mark.parametrize("refuses", [True, False])
def test_project_module_off_answers_both_ways(api: Api, settings: Any, refuses: bool) -> None:
    settings(project_module=False, project_module_off_refuses=refuses)
    reply = api.get("projects")
    if refuses:
        assert reply.status_code == 403
        assert error_code(reply) == 2001101
        assert message(reply).startswith("Det finns ingen aktiv licens för önskat scope")
    else:
        assert reply.status_code == 200
        assert reply.json()["MetaInformation"]["@TotalResources"] >= 2
