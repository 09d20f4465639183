"""Fortnox sandbox supplier invoices: the seed the expenses tap reads, list vs single GET, filters,
actions and the admin's "post as a user would" — over real HTTP against a real sandbox process.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sandbox.launcher import SandboxProcess

COST_ACCOUNTS = {4010, 5010, 5410, 5460, 5611, 5800, 6110, 6212, 6230, 6540, 6991}
# Fortnox's OpenAPI enum of SupplierInvoiceRow.Code (docs/SUPPLIER-INVOICES.md).
ROW_CODES = {"TOT", "VAT", "FRT", "AFE", "ROV", "CND", "CNC", "PRD", "PRC", "SRD", "SRC"}
ROW_CODES |= {"PRE", "GWB", "ACC"}


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("fortnox-si")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=7, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


@pytest.fixture(scope="module")
def http(fx: SandboxProcess) -> requests.Session:
    minted = fx.admin("POST", "refresh-tokens", {"scope": "supplierinvoice supplier project"})
    reply = requests.post(
        f"{fx.url}/oauth-v1/token",
        data={"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=10,
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
    return session


def listing(fx: SandboxProcess, http: requests.Session, **params: Any) -> list[dict[str, Any]]:
    reply = http.get(f"{fx.url}/3/supplierinvoices", params={"limit": 500, **params}, timeout=10)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["SupplierInvoices"])


def detail(fx: SandboxProcess, http: requests.Session, number: str) -> dict[str, Any]:
    reply = http.get(f"{fx.url}/3/supplierinvoices/{number}", timeout=10)
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["SupplierInvoice"])


@pytest.fixture(scope="module")
def seeded(fx: SandboxProcess, http: requests.Session) -> list[dict[str, Any]]:
    return [detail(fx, http, item["GivenNumber"]) for item in listing(fx, http)]


def test_list_has_no_rows_and_amounts_as_strings(
    fx: SandboxProcess, http: requests.Session
) -> None:
    items = listing(fx, http)
    assert len(items) == 60
    for item in items:
        assert "SupplierInvoiceRows" not in item
        assert {
            "GivenNumber",
            "InvoiceDate",
            "Booked",
            "Cancel",
            "Project",
            "Total",
            "SupplierName",
            "AuthorizerName",
        } <= set(item)
        float(item["Total"])
        assert isinstance(item["Total"], str)


def test_no_invented_approval_field_authorizer_name_in_lists_only(
    fx: SandboxProcess, http: requests.Session, seeded: list[dict[str, Any]]
) -> None:
    """Fortnox's OpenAPI has no approval state on supplier invoices (ApprovalState is a voucher
    field) and AuthorizerName only on list items; the sandbox answers the same."""
    for item in listing(fx, http):
        assert "ApprovalState" not in item
        assert isinstance(item["AuthorizerName"], str)
    for invoice in seeded:
        assert "ApprovalState" not in invoice
        assert "AuthorizerName" not in invoice
        assert not any(k.startswith("_") for k in invoice)


def test_every_seeded_invoice_balances_with_tot_vat_and_cost_rows(
    seeded: list[dict[str, Any]],
) -> None:
    for invoice in seeded:
        rows = invoice["SupplierInvoiceRows"]
        tot = [r for r in rows if r["Code"] == "TOT"]
        vat = [r for r in rows if r["Code"] == "VAT"]
        costs = [r for r in rows if r["Code"] == ""]
        assert rows[0] is tot[0]
        assert len(tot) == 1
        assert tot[0]["Account"] == 2440
        assert tot[0]["Credit"] == float(invoice["Total"])
        assert len(vat) == (1 if float(invoice["VAT"]) else 0)
        assert all(r["Account"] == 2641 and r["Debit"] == float(invoice["VAT"]) for r in vat)
        assert costs
        assert all(r["Account"] in COST_ACCOUNTS for r in costs)
        assert {r["Code"] for r in rows} <= ROW_CODES | {""}
        assert round(sum(r["Debit"] - r["Credit"] for r in rows), 2) == 0
        for row in rows:
            assert row["Total"] == round(row["Debit"] - row["Credit"], 2)


def test_seed_meets_every_row_code_of_fortnox(seeded: list[dict[str, Any]]) -> None:
    """Every Code of Fortnox's supplier-invoice rows, on the accounts Fortnox books them to, so the
    expenses tap's tests meet each one; reverse-charge rows come in pairs with their VAT type."""
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    recent = [i for i in seeded if (today - date.fromisoformat(i["InvoiceDate"])).days <= 30]
    codes = {r["Code"] for i in recent for r in i["SupplierInvoiceRows"]}
    assert codes == ROW_CODES | {""}  # all of them inside the tap's default window
    pairs = {"CND": ("CNC", "REVERSE"), "PRD": ("PRC", "EUINTERNAL"), "SRD": ("SRC", "EUINTERNAL")}
    for invoice in seeded:
        by_code = {r["Code"]: r for r in invoice["SupplierInvoiceRows"]}
        for debit, (credit, vat_type) in pairs.items():
            if debit in by_code:
                assert by_code[debit]["Debit"] == by_code[credit]["Credit"] > 0
                assert invoice["VATType"] == vat_type
                assert "VAT" not in by_code
        if "ROV" in by_code:
            assert by_code["ROV"]["Account"] == 3740
            assert float(invoice["Total"]).is_integer()
            assert float(invoice["RoundOffValue"]) == by_code["ROV"]["Total"]
        if "FRT" in by_code:
            assert float(invoice["Freight"]) == by_code["FRT"]["Debit"]
            assert float(invoice["AdministrationFee"]) == by_code["AFE"]["Debit"]
        for code in ("PRE", "ACC"):
            assert by_code.get(code, {"Account": 1790})["Account"] == 1790
        assert by_code.get("GWB", {"Account": 6991})["Account"] in COST_ACCOUNTS


def test_seed_covers_every_kind_the_expenses_tap_must_handle(
    fx: SandboxProcess, http: requests.Session, seeded: list[dict[str, Any]]
) -> None:
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    pending = {i["GivenNumber"] for i in listing(fx, http, filter="authorizepending")}

    def moment(project: str) -> bool:
        return project.isdigit() and 5001 <= int(project) <= 5020

    ready = [
        i for i in seeded if i["Booked"] and not i["Cancelled"] and i["GivenNumber"] not in pending
    ]
    assert any(moment(i["Project"]) for i in ready)
    assert any(
        not i["Project"] and any(moment(r["Project"]) for r in i["SupplierInvoiceRows"])
        for i in ready
    )  # row projects only
    assert any(
        moment(i["Project"])
        and any(r["Project"] and r["Project"] != i["Project"] for r in i["SupplierInvoiceRows"])
        for i in ready
    )
    assert any(
        moment(i["Project"])
        and any(r["Code"] == "" and not r["Project"] for r in i["SupplierInvoiceRows"])
        for i in ready
    )  # rows without project under a header project
    assert any(
        len({r["Account"] for r in i["SupplierInvoiceRows"] if not r["Code"]}) > 1 for i in ready
    )
    assert any(not i["Booked"] and not i["Cancelled"] for i in seeded)
    assert any(i["Cancelled"] for i in seeded)
    assert any(i["Booked"] and i["GivenNumber"] in pending for i in seeded)
    assert any(
        not i["Project"] and not any(r["Project"] for r in i["SupplierInvoiceRows"]) for i in seeded
    )
    assert any(i["Project"] == "9001" for i in ready)
    dates = [date.fromisoformat(i["InvoiceDate"]) for i in seeded]
    assert min(dates) >= today - timedelta(days=60)
    assert max(dates) <= today
    assert any((today - d).days > 30 for d in dates)


def test_late_postings_are_modified_recently(fx: SandboxProcess, http: requests.Session) -> None:
    since = (datetime.now(ZoneInfo("Europe/Stockholm")) - timedelta(days=3)).strftime(
        "%Y-%m-%d %H:%M"
    )
    recent = listing(fx, http, lastmodified=since)
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    assert any((today - date.fromisoformat(i["InvoiceDate"])).days > 30 for i in recent)
    assert len(recent) < 60


def test_filters_and_date_range(
    fx: SandboxProcess, http: requests.Session, seeded: list[dict[str, Any]]
) -> None:
    cancelled = listing(fx, http, filter="cancelled")
    assert cancelled
    assert all(i["Cancel"] for i in cancelled)
    unbooked = listing(fx, http, filter="unbooked")
    assert unbooked
    assert all(not i["Booked"] and not i["Cancel"] for i in unbooked)
    pending = listing(fx, http, filter="authorizepending")
    assert pending
    assert {i["GivenNumber"] for i in pending} == {
        i["GivenNumber"]
        for i in listing(fx, http)
        # Fortnox's list item says ``Cancel``; either spelling until the sandbox follows it.
        if not i["AuthorizerName"] and not i.get("Cancel", i.get("Cancelled"))
    }
    on_9001 = listing(fx, http, project="9001")
    assert on_9001
    assert all(i["Project"] == "9001" for i in on_9001)
    bad = http.get(f"{fx.url}/3/supplierinvoices", params={"filter": "nope"}, timeout=10)
    assert bad.status_code == 400


def test_fromdate_todate_ignored_by_default_applied_when_switched_on(
    fx: SandboxProcess, http: requests.Session, seeded: list[dict[str, Any]]
) -> None:
    """Fortnox documents fromdate/todate only for invoices, orders, offers and vouchers: by default
    the sandbox ignores them on supplier invoices; the setting plays the other case."""
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    start = (today - timedelta(days=30)).isoformat()
    everything = {i["GivenNumber"] for i in seeded}
    in_window = {i["GivenNumber"] for i in seeded if i["InvoiceDate"] >= start}
    assert in_window < everything

    assert fx.admin("GET", "settings")["supplier_invoice_date_filter"] is False
    ignored = listing(fx, http, fromdate=start, todate=today.isoformat())
    assert {i["GivenNumber"] for i in ignored} == everything

    fx.admin("PATCH", "settings", {"supplier_invoice_date_filter": True})
    try:
        applied = listing(fx, http, fromdate=start, todate=today.isoformat())
        assert {i["GivenNumber"] for i in applied} == in_window
    finally:
        fx.admin("PATCH", "settings", {"supplier_invoice_date_filter": False})


def test_date_filter_switch_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "fortnox.db"
    args = ["--supplier-invoice-date-filter", "on", "--max-requests-per-5s", "0"]
    with SandboxProcess("fortnox", db, seed=7, extra_args=args) as proc:
        assert proc.admin("GET", "settings")["supplier_invoice_date_filter"] is True


def test_admin_posts_a_supplier_invoice_as_a_user_would(
    fx: SandboxProcess, http: requests.Session
) -> None:
    day = (date.today() - timedelta(days=45)).isoformat()
    posted = fx.admin(
        "POST",
        "supplierinvoices",
        {
            "SupplierInvoice": {
                "SupplierNumber": "2",
                "InvoiceNumber": "F-1001",
                "InvoiceDate": day,
                "Project": "5003",
                "Total": 1250,
                "VAT": 250,
                "SupplierInvoiceRows": [
                    {"Account": 5460, "Debit": 600, "TransactionInformation": "Skruv"},
                    {"Account": 6540, "Debit": 400, "Project": "5004"},
                ],
            },
            "booked": True,
            "approved": True,
        },
    )["SupplierInvoice"]
    number = posted["GivenNumber"]
    got = detail(fx, http, number)
    assert got["Booked"] is True
    (item,) = [i for i in listing(fx, http) if i["GivenNumber"] == number]
    assert item["AuthorizerName"] == "Anna Andersson"
    assert number not in [i["GivenNumber"] for i in listing(fx, http, filter="authorizepending")]
    assert got["InvoiceDate"] == day
    codes = [r["Code"] for r in got["SupplierInvoiceRows"]]
    assert codes.count("TOT") == 1
    assert codes.count("VAT") == 1
    five_minutes_ago = (datetime.now(ZoneInfo("Europe/Stockholm")) - timedelta(minutes=5)).strftime(
        "%Y-%m-%d %H:%M"
    )
    assert number in [i["GivenNumber"] for i in listing(fx, http, lastmodified=five_minutes_ago)]


def test_admin_corrects_a_booked_supplier_invoice_as_a_user_would(
    fx: SandboxProcess, http: requests.Session
) -> None:
    posted = fx.admin(
        "POST",
        "supplierinvoices",
        {
            "SupplierInvoice": {
                "SupplierNumber": "2",
                "InvoiceNumber": "F-1002",
                "InvoiceDate": date.today().isoformat(),
                "Project": "5003",
                "Total": 1250,
                "VAT": 250,
                "SupplierInvoiceRows": [
                    {"Account": 5460, "Debit": 600, "TransactionInformation": "Skruv"},
                    {"Account": 6540, "Debit": 400},
                ],
            },
            "booked": True,
            "approved": True,
        },
    )["SupplierInvoice"]
    number = posted["GivenNumber"]
    # The API refuses to change a booked invoice; a user corrects it in Fortnox's UI.
    refused = http.put(
        f"{fx.url}/3/supplierinvoices/{number}",
        json={"SupplierInvoice": {"Comments": "x"}},
        timeout=10,
    )
    assert refused.status_code == 400

    fx.admin(
        "PUT",
        f"supplierinvoices/{number}",
        {
            "SupplierInvoice": {
                "Total": 812.5,
                "VAT": 162.5,
                "SupplierInvoiceRows": [{"Account": 6540, "Debit": 650}],
            }
        },
    )

    got = detail(fx, http, number)
    assert got["Booked"] is True
    cost = [(r["Account"], r["Debit"]) for r in got["SupplierInvoiceRows"] if not r["Code"]]
    assert cost == [(6540, 650.0)]
    assert sum(r["Debit"] - r["Credit"] for r in got["SupplierInvoiceRows"]) == 0
    unbalanced = {"SupplierInvoice": {"SupplierInvoiceRows": [{"Account": 6540, "Debit": 1}]}}
    with pytest.raises(urllib.error.HTTPError):
        fx.admin("PUT", f"supplierinvoices/{number}", unbalanced)


def test_api_posting_checks_and_actions(fx: SandboxProcess, http: requests.Session) -> None:
    url = f"{fx.url}/3/supplierinvoices"
    unbalanced = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "SupplierInvoiceRows": [
                {"Account": 2440, "Code": "TOT", "Credit": 100},
                {"Account": 6110, "Debit": 90},
            ],
        }
    }
    reply = http.post(url, json=unbalanced, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["ErrorInformation"]["code"] == 2000755
    bad_account = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "Total": 100,
            "SupplierInvoiceRows": [{"Account": 6999, "Debit": 100}],
        }
    }
    reply = http.post(url, json=bad_account, timeout=10)
    assert reply.json()["ErrorInformation"]["code"] == 2001304
    unknown_project = {"SupplierInvoice": {"SupplierNumber": "1", "Project": "5999"}}
    assert (
        http.post(url, json=unknown_project, timeout=10).json()["ErrorInformation"]["code"]
        == 2000423
    )
    good = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "Project": "9001",
            "Total": 125,
            "VAT": 25,
            "SupplierInvoiceRows": [{"Account": 6110, "Debit": 100}],
        }
    }
    created = http.post(url, json=good, timeout=10)
    assert created.status_code == 201
    number = created.json()["SupplierInvoice"]["GivenNumber"]
    assert number in [i["GivenNumber"] for i in listing(fx, http, filter="authorizepending")]
    json_header = {"Content-Type": "application/json"}
    approved = http.put(f"{url}/{number}/approvalbookkeep", headers=json_header, timeout=10)
    assert approved.json()["SupplierInvoice"]["Booked"] is True
    assert number not in [i["GivenNumber"] for i in listing(fx, http, filter="authorizepending")]
    assert http.put(f"{url}/{number}/cancel", headers=json_header, timeout=10).status_code == 400
    locked = http.put(f"{url}/{number}", json={"SupplierInvoice": {"Comments": "x"}}, timeout=10)
    assert locked.status_code == 400
    other = http.post(url, json=good, timeout=10).json()["SupplierInvoice"]["GivenNumber"]
    cancelled = http.put(f"{url}/{other}/cancel", headers=json_header, timeout=10)
    assert cancelled.json()["SupplierInvoice"]["Cancelled"] is True
