"""The Moment sandbox's admin API, faults, request log, reseed and persistence over real HTTP."""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox.launcher import SandboxProcess


@pytest.fixture
def moment(tmp_path: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess("moment", tmp_path / "moment.db", seed=1) as proc:
        yield proc


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.auth = ("apikey", "sandbox-key")
        yield client


def api_url(moment: SandboxProcess, path: str) -> str:
    return f"{moment.url}/api/1.0/companies/demo/{path}"


def get(session: requests.Session, moment: SandboxProcess, path: str, **params: Any) -> Any:
    response = session.get(api_url(moment, path), params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_user_edit_by_number_moves_last_modified_and_is_seen_incrementally(
    moment: SandboxProcess, session: requests.Session
) -> None:
    before = get(session, moment, "customers", customerNumber="1005")["content"][0]
    cursor = max(
        c["lastModifiedDate"] for c in get(session, moment, "customers", size=500)["content"]
    )
    edited = moment.admin("PATCH", "customers/1005", {"email": "ny@adress.se"})
    assert edited["email"] == "ny@adress.se"
    assert edited["id"] == before["id"]
    assert datetime.fromisoformat(edited["lastModifiedDate"]) > datetime.fromisoformat(cursor)
    changed = get(session, moment, "customers", lastModifiedDateFrom=edited["lastModifiedDate"])
    assert [c["customerNumber"] for c in changed["content"]] == ["1005"]


def test_admin_sets_price_model_and_project_fields(moment: SandboxProcess) -> None:
    project = moment.admin("PUT", "projects/5004/priceModel", {"expensesBillable": False})
    assert project["priceModel"] == {"expensesBillable": False}
    renamed = moment.admin("PATCH", "projects/5004", {"name": "Nytt namn", "startDate": None})
    assert renamed["name"] == "Nytt namn"
    assert renamed["startDate"] is None
    assert renamed["priceModel"] == {"expensesBillable": False}
    assert moment.admin("GET", "projects/5004") == renamed


def test_admin_creates_and_finalises_invoices_and_marks_expenses_invoiced(
    moment: SandboxProcess, session: requests.Session
) -> None:
    invoice = moment.admin(
        "POST",
        "invoices",
        {
            "customer": {"customerNumber": "1010"},
            "invoiceLines": [
                {"quantity": 3, "unitPrice": 500, "vatRate": 6, "accountNumber": "3003"}
            ],
            "finalize": True,
        },
    )
    assert invoice["invoiceState"] == "FINALIZED"
    assert invoice["project"] is None
    draft = moment.admin(
        "POST",
        "invoices",
        {
            "customer": {"customerNumber": "1010"},
            "invoiceLines": [
                {"quantity": 1, "unitPrice": 10, "vatRate": 25, "accountNumber": "3001"}
            ],
        },
    )
    final = moment.admin("POST", f"invoices/{draft['id']}/finalize")
    assert final["invoiceNumber"] == invoice["invoiceNumber"] + 1

    expense = get(session, moment, "projectExpenses", size=1)["content"][0]
    assert expense["invoiced"] is False
    marked = moment.admin("POST", f"projectExpenses/{expense['id']}/invoiced", {"invoiced": True})
    assert marked["invoiced"] is True
    assert marked["lastModifiedDate"] > expense["lastModifiedDate"]
    refused = session.patch(
        api_url(moment, f"projectExpenses/{expense['id']}"), json={"amount": 1}, timeout=30
    )
    assert refused.status_code == 409
    assert "invoiced" in refused.json()["message"]


def test_counts_and_admin_errors(moment: SandboxProcess) -> None:
    counts = moment.admin("GET", "counts")
    assert counts == {
        "customers": 30,
        "projects": 20,
        "invoices": 40,
        "projectExpenses": 25,
        "financialAccounts": 17,
        "vatCodes": 4,
    }
    with pytest.raises(urllib.error.HTTPError) as missing:
        moment.admin("PATCH", "customers/424242", {"name": "X"})
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as invalid:
        moment.admin("PATCH", "customers/1001", {"countryCode": "Sweden"})
    assert invalid.value.code == 400


def test_injected_fault_has_moment_error_body_and_is_logged_with_company(
    moment: SandboxProcess, session: requests.Session
) -> None:
    moment.admin("DELETE", "requests")
    moment.admin(
        "POST", "faults", {"kind": "status", "status": 503, "count": 1, "path": "projects"}
    )
    failed = session.get(api_url(moment, "projects"), timeout=30)
    assert failed.status_code == 503
    body = failed.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}
    assert body["error"] == "Service Unavailable"
    assert session.get(api_url(moment, "projects"), timeout=30).status_code == 200
    log = moment.admin("GET", "requests")["requests"]
    assert [(r["status"], r["note"], r["client"]) for r in log] == [
        (503, "injected", "demo"),
        (200, "", "demo"),
    ]


def test_reseed_wipes_resizes_and_keeps_demo_key(
    moment: SandboxProcess, session: requests.Session
) -> None:
    moment.admin("PATCH", "customers/1001", {"name": "Ändrad AB"})
    answer = moment.admin(
        "POST", "seed", {"seed": 7, "customers": 5, "projects": 4, "invoices": 6, "expenses": 3}
    )
    assert answer["counts"] == {"customers": 5, "projects": 4, "invoices": 6, "expenses": 3}
    customers = get(session, moment, "customers")  # the demo key still works
    assert [c["customerNumber"] for c in customers["content"]] == [
        "1001",
        "1002",
        "1003",
        "1004",
        "1005",
    ]
    assert customers["content"][0]["name"] != "Ändrad AB"
    assert get(session, moment, "vatCodes")["page"]["totalElements"] == 4
    created = session.post(api_url(moment, "customers"), json={"name": "Nästa AB"}, timeout=30)
    assert created.json()["customerNumber"] == "1006"  # the series continues after the seed


def test_data_survives_restart(moment: SandboxProcess, session: requests.Session) -> None:
    edited = moment.admin("PATCH", "customers/1002", {"city": "Kiruna"})
    draft = session.post(
        api_url(moment, "invoices"),
        json={
            "customer": {"customerNumber": "1002"},
            "invoiceLines": [
                {"quantity": 1, "unitPrice": 100, "vatRate": 25, "accountNumber": "3001"}
            ],
        },
        timeout=30,
    ).json()
    moment.restart()
    assert moment.admin("GET", "customers/1002") == edited
    final = session.post(api_url(moment, f"invoices/{draft['id']}/finalize"), timeout=30).json()
    numbers = [
        i["invoiceNumber"]
        for i in get(session, moment, "invoices", size=500)["content"]
        if i["invoiceNumber"] and i["id"] != draft["id"]
    ]
    assert final["invoiceNumber"] == max(numbers) + 1  # the series survived too
    assert moment.admin("GET", "counts")["customers"] == 30  # not reseeded on restart


def test_refused_seed_leaves_data_untouched(moment: SandboxProcess) -> None:
    response = requests.post(f"{moment.url}/_sandbox/seed", json={"customers": -1}, timeout=30)
    assert response.status_code == 400
    assert "'customers'" in response.json()["message"]
    assert moment.admin("GET", "counts")["customers"] == 30


def test_a_new_company_is_seeded_as_its_own_database(moment: SandboxProcess) -> None:
    """Several tenants in one sandbox: each company its own key, numbers and demo data."""
    sizes = {"customers": 4, "projects": 2, "invoices": 3, "expenses": 0}
    made = moment.admin(
        "POST", "companies", {"code": "bravo", "apiKey": "bravo-key", "seed": 2, **sizes}
    )
    assert made["counts"]["customers"] == 4
    with requests.Session() as bravo:
        bravo.auth = ("apikey", "bravo-key")
        url = f"{moment.url}/api/1.0/companies/bravo/customers"
        names = {
            c["customerNumber"]: c["name"] for c in bravo.get(url, timeout=30).json()["content"]
        }
        # Another company's key gets no further than its own company.
        assert bravo.get(api_url(moment, "customers"), timeout=30).status_code == 403
    demo = {
        c["customerNumber"]: c["name"] for c in moment.admin("GET", "customers?size=500")["content"]
    }
    assert sorted(names) == ["1001", "1002", "1003", "1004"]  # its own number series
    assert names != {n: demo[n] for n in names}  # seed 2, not demo's seed 1
    # Seeding is for a new company only: data already there is never mixed with a seed.
    with pytest.raises(urllib.error.HTTPError) as refused:
        moment.admin("POST", "companies", {"code": "bravo", "apiKey": "bravo-key", "seed": 3})
    assert refused.value.code == 400
