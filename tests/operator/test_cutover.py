"""Switching over from Moment's own Fortnox integration (docs/SWITCH-OVER.md), end to end.

Fortnox is filled as Moment's own integration would have left it: Moment's customers, projects
and finalised invoices under Moment's numbers, invoice lines grouped by account, with some
fields differing (edited in Fortnox) and some records missing (never transferred). Then the
switch-over command runs as README "Going live" shows it, through ``meltano invoke``, and the
first real run must push only what changed in Moment since the start: no old invoice created,
nothing doubled, the records already there left alone.

The expenses side: Moment holds expenses its integration imported from Fortnox's supplier
invoices (no externalReference); the expenses command reports them and the first run adopts
them instead of importing them again.

One pair of fresh sandboxes for the module (the ``pipelines`` fixture); the tests run in order.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient, FortnoxSettings
from tap_fortnox_expenses.expenses import project_expense_rows
from target_fortnox.cutover import main as cutover_main
from target_fortnox.mapping import map_customer, map_invoice, map_project, to_json_body

pytestmark = pytest.mark.e2e

TENANT_ID = "1234567"  # the Fortnox sandbox company's DatabaseNumber
MOMENT_FOR_TARGET_FORTNOX = {"TAP_MOMENT_COMPANY_CODE": "demo", "TAP_MOMENT_API_KEY": "sandbox-key"}
MOMENT_FOR_EXPENSES = {"TARGET_MOMENT_COMPANY_CODE": "demo", "TARGET_MOMENT_API_KEY": "sandbox-key"}
FAST = {"TARGET_FORTNOX_MAX_REQUESTS_PER_5S": "0", "TAP_FORTNOX_EXPENSES_MAX_REQUESTS_PER_5S": "0"}


def fortnox_client(pipelines: Any) -> FortnoxClient:
    """A client of its own (service account, own token store), as another integration is."""
    return FortnoxClient(
        FortnoxSettings.from_config(
            {
                "api_url": f"{pipelines.fortnox.url}/3",
                "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "tenant_id": TENANT_ID,
                "token_store_path": str(pipelines.workdir / "other-integration-token.json"),
                "max_requests_per_5s": 0,
            }
        )
    )


def moment_list(pipelines: Any, entity: str, **params: Any) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in {"size": 500, **params}.items())
    return list(pipelines.moment.admin("GET", f"{entity}?{query}")["content"])


def grouped_by_account(payload: dict[str, Any]) -> dict[str, Any]:
    """The invoice as Moment's integration writes it: one row per account (and VAT rate)."""
    rows: dict[tuple[int, int | None], Decimal] = {}
    for row in payload["InvoiceRows"]:
        key = (row["AccountNumber"], row["VAT"])
        rows[key] = rows.get(key, Decimal(0)) + row["DeliveredQuantity"] * row["Price"]
    payload = dict(payload)
    payload["InvoiceRows"] = [
        {"AccountNumber": account, "VAT": vat, "DeliveredQuantity": 1, "Price": amount}
        for (account, vat), amount in rows.items()
    ]
    return payload


@pytest.fixture(scope="module")
def left_by_moment(pipelines: Any) -> dict[str, Any]:
    """Fortnox as Moment's own integration left it; what was left out or changed, by number."""
    client = fortnox_client(pipelines)
    invoices = sorted(
        (i for i in moment_list(pipelines, "invoices") if i["invoiceState"] == "FINALIZED"),
        key=lambda i: (i["lastModifiedDate"], i["id"]),
    )
    invoiced = {i["customer"]["customerNumber"] for i in invoices}
    customers = moment_list(pipelines, "customers")
    never_sent_customer = [c for c in customers if c["customerNumber"] not in invoiced][-1]
    for customer in customers:
        if customer is never_sent_customer:
            continue
        payload = map_customer(customer).payload
        if customer["customerNumber"] == "1003":
            payload["Email"] = "bokforing@edited-in-fortnox.se"
        client.create("customers", to_json_body(payload))
    for project in moment_list(pipelines, "projects"):
        payload = map_project(project).payload
        if project["projectNumber"] == "5004":
            payload["Description"] = "Omdöpt i Fortnox"
        client.create("projects", to_json_body(payload))
    # The start: the last four invoices changed since; everything before it is old.
    start = invoices[-4]["lastModifiedDate"]
    old_missing = [str(i["invoiceNumber"]) for i in invoices[:3]]
    old_differs = str(invoices[3]["invoiceNumber"])
    new_missing = str(invoices[-3]["invoiceNumber"])
    for invoice in invoices:
        number = str(invoice["invoiceNumber"])
        if number in (*old_missing, new_missing):
            continue  # never transferred (finalised before the integration, or it failed)
        payload = grouped_by_account(map_invoice(invoice).payload)
        if number == old_differs:
            payload["DueDate"] = (date.fromisoformat(payload["DueDate"]) + timedelta(5)).isoformat()
        client.create("invoices", to_json_body(payload))
    return {
        "start": start,
        "never_sent_customer": never_sent_customer["customerNumber"],
        "old_missing": old_missing,
        "old_differs": old_differs,
        "new_missing": new_missing,
        "new_same": [str(i["invoiceNumber"]) for i in invoices[-4:] if i is not invoices[-3]],
        "invoices_in_fortnox": len(invoices) - 4,
    }


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_switch_over_then_the_first_run_pushes_only_what_changed_since(
    pipelines: Any, left_by_moment: dict[str, Any]
) -> None:
    left = left_by_moment
    env_file = pipelines.workdir / "project.env"
    env_file.write_text("# the project's .env\nSOMETHING_ELSE=kept\n")

    result = pipelines.meltano(
        "--env-file",
        str(env_file),
        "invoke",
        "target-fortnox:cutover",
        "--start",
        left["start"],
        "--apply",
        "--env-file",
        str(env_file),
        "--json",
        **MOMENT_FOR_TARGET_FORTNOX,
        **FAST,
    )

    report = json.loads(result.stdout)
    found = checks(report)
    assert report["ready"] is True
    assert report["applied"] is True
    assert report["registers"]["customers"] == {
        "match": 28,
        "differs": 1,
        "other": 0,
        "moment-only": 1,
        "fortnox-only": 0,
        "invalid": 0,
    }
    assert found["customers-differ"]["items"][0].startswith("1003 ")
    assert "bokforing@edited-in-fortnox.se" in found["customers-differ"]["items"][0]
    assert [i.split()[0] for i in found["customers-moment-only"]["items"]] == [
        left["never_sent_customer"]
    ]
    assert report["registers"]["projects"]["differs"] == 1
    assert "Omdöpt i Fortnox" in found["projects-differ"]["items"][0]
    invoices = report["registers"]["invoices"]
    # Grouped lines are the same invoice: header and total agree.
    assert (invoices["match"], invoices["differs"], invoices["moment-only"]) == (
        left["invoices_in_fortnox"] - 1,
        1,
        4,
    )
    assert found["invoices-differ"]["items"][0].startswith(f"{left['old_differs']} ")
    assert "DueDate" in found["invoices-differ"]["items"][0]
    missing = {i.split()[0] for i in found["invoices-moment-only"]["items"]}
    assert missing == {*left["old_missing"], left["new_missing"]}
    assert report["first_run"]["invoices"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 3,
        "conflict": 0,
        "failed": 0,
    }
    assert found["moment-integration-off"]["status"] == "manual"
    # The start went into the project's .env, the rest of it kept; the switch-over is logged.
    start_line = f"TAP_MOMENT_START_DATE={report['start']}"
    assert env_file.read_text().splitlines()[-2:] == [
        "SOMETHING_ELSE=kept",
        start_line,
    ]
    (logged,) = (pipelines.run_store / "cutover" / "target-fortnox.jsonl").read_text().splitlines()
    assert json.loads(logged)["start"] == report["start"]
    assert len(json.loads(logged)["adopted"]["invoices"]) == invoices["match"]

    # After the switch-over, Moment changes: a customer's e-mail, and a new invoice.
    pipelines.moment.admin("PATCH", "customers/1005", {"email": "ny.adress@example.se"})
    new_invoice = pipelines.moment.admin(
        "POST",
        "invoices",
        {
            "customer": {"customerNumber": "1001"},
            "invoiceDate": datetime.now(UTC).date().isoformat(),
            "invoiceLines": [
                {
                    "description": "Konsulttjänster",
                    "quantity": 2,
                    "unitPrice": 1000,
                    "vatRate": 25,
                    "accountNumber": "3001",
                }
            ],
            "finalize": True,
        },
    )
    since = int(pipelines.fortnox.admin("GET", "requests?since=0")["last"])

    pipelines.meltano("--env-file", str(env_file), "run", "moment-to-fortnox", **FAST)

    summary = pipelines.last_summary("target-fortnox")["streams"]
    assert {k: summary["invoices"][k] for k in ("created", "unchanged", "conflict", "failed")} == {
        "created": 2,  # the new one, and the one Moment's integration failed since the start
        "unchanged": 3,
        "conflict": 0,
        "failed": 0,
    }
    assert (summary["customers"]["updated"], summary["customers"]["created"]) == (1, 0)
    client = fortnox_client(pipelines)
    for number in left["old_missing"]:
        assert client.get("invoices", number) is None, f"old invoice {number} was created"
    assert client.get("invoices", str(new_invoice["invoiceNumber"])) is not None
    assert client.get("invoices", left["new_missing"]) is not None
    numbers = [str(i["DocumentNumber"]) for i in client.list("invoices")]
    assert len(numbers) == len(set(numbers)) == left["invoices_in_fortnox"] + 2
    # The invoices already there (lines grouped) were adopted: unchanged without being read.
    requests = pipelines.fortnox.admin("GET", f"requests?since={since}")["requests"]
    read = {r["path"].rsplit("/", 1)[-1] for r in requests if r["path"].startswith("/3/invoices/")}
    assert not read & set(left["new_same"])
    writes = sorted(
        (r["method"], r["path"]) for r in pipelines.fortnox_writes(since) if "/3/" in r["path"]
    )
    assert writes == sorted(
        [("PUT", "/3/customers/1005"), ("POST", "/3/invoices"), ("POST", "/3/invoices")]
    )


def window_records(pipelines: Any) -> list[dict[str, Any]]:
    """The expense rows the tap emits for the last 30 days (its default window)."""
    client = fortnox_client(pipelines)
    first_day = (datetime.now(UTC).date() - timedelta(days=28)).isoformat()
    records = []
    for item in client.list("supplierinvoices"):
        if str(item.get("InvoiceDate")) < first_day:
            continue
        invoice = client.get("supplierinvoices", item["GivenNumber"])
        assert invoice is not None
        records += [o.record for o in project_expense_rows(invoice) if o.record is not None]
    return records


def native_expense(pipelines: Any, record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The expense Moment's own integration imported for a Fortnox row: no externalReference."""
    project = pipelines.moment.admin("GET", f"projects/{record['project_number']}")
    body = {
        "projectId": project["id"],
        "expenseDate": record["expense_date"],
        "description": record["description"],
        "supplierName": record["supplier_name"],
        "amount": record["amount"],
        "vatAmount": record["vat_amount"],
        "accountNumber": str(record["account_number"]),
        **fields,
    }
    created: dict[str, Any] = pipelines.moment.admin("POST", "projectExpenses", body)
    return created


def test_expenses_moments_integration_imported_are_adopted_never_imported_twice(
    pipelines: Any,
) -> None:
    moment_projects = {p["projectNumber"] for p in moment_list(pipelines, "projects")}
    records = [
        r
        for r in window_records(pipelines)
        if r["project_number"] in moment_projects and r["description"] and r["vat_amount"]
    ]
    same, gross, invoiced = records[0], records[1], records[2]
    natives = {
        "same": native_expense(pipelines, same),
        # Moment's integration may store the amount with VAT and the supplier as the text.
        "gross": native_expense(
            pipelines,
            gross,
            amount=round(gross["amount"] + gross["vat_amount"], 2),
            description=gross["supplier_name"],
        ),
        "invoiced": native_expense(pipelines, invoiced),
        # Entered by hand in Moment: no Fortnox row is this cost.
        "by_hand": native_expense(pipelines, same, amount=same["amount"] + 100),
    }
    pipelines.moment.admin("POST", f"projectExpenses/{natives['invoiced']['id']}/invoiced", {})

    result = pipelines.meltano(
        "invoke", "tap-fortnox-expenses:cutover", "--json", **MOMENT_FOR_EXPENSES, **FAST
    )

    report = json.loads(result.stdout)
    found = checks(report)
    adopted = {item.split(":")[0] for item in found["expenses-adopted"]["items"]}
    assert adopted == {same["source_key"], gross["source_key"], invoiced["source_key"]}
    assert any(
        item.startswith(f"Moment expense {natives['by_hand']['id']}:")
        for item in found["expenses-moment-only"]["items"]
    )
    new = report["expenses"]["new"]
    assert new > 0

    pipelines.run("fortnox-expenses-to-moment", **FAST)

    counts = pipelines.last_summary("target-moment")["streams"]["project_expenses"]
    # Re-keyed (2) and kept as it is, being invoiced (1); only the Fortnox-only rows created.
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (new, 2, 1)
    expenses = {e["id"]: e for e in moment_list(pipelines, "projectExpenses")}
    assert expenses[natives["same"]["id"]]["externalReference"] == same["source_key"]
    assert expenses[natives["gross"]["id"]]["externalReference"] == gross["source_key"]
    assert expenses[natives["invoiced"]["id"]]["externalReference"] is None
    assert expenses[natives["by_hand"]["id"]]["externalReference"] is None
    references = [e["externalReference"] for e in expenses.values() if e["externalReference"]]
    assert len(references) == len(set(references))
    assert invoiced["source_key"] not in references  # not imported beside the invoiced one
    adopted_record = Path(pipelines.results_dir) / "adopted" / "target-moment.json"
    assert json.loads(adopted_record.read_text())["project_expenses"][
        invoiced["source_key"]
    ] == str(natives["invoiced"]["id"])


def test_apply_is_refused_while_a_number_holds_another_record(
    pipelines: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Fortnox customer under a Moment number that is another company: nothing is applied."""
    customers = {c["customerNumber"]: c for c in moment_list(pipelines, "customers")}
    other_company = customers["1002"]["organizationNumber"]
    pipelines.moment.admin("PATCH", "customers/1007", {"organizationNumber": other_company})
    config = tmp_path / "target-fortnox.json"
    config.write_text(
        json.dumps(
            {
                "api_url": f"{pipelines.fortnox.url}/3",
                "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "tenant_id": TENANT_ID,
                "token_store_path": str(tmp_path / "token.json"),
                "max_requests_per_5s": 0,
            }
        )
    )
    moment = tmp_path / "moment.json"
    moment.write_text(
        json.dumps(
            {
                "api_url": f"{pipelines.moment.url}/api/1.0",
                "company_code": "demo",
                "api_key": "sandbox-key",
            }
        )
    )
    env_file = tmp_path / ".env"
    args = ["--config", str(config), "--moment-config", str(moment), "--env-file", str(env_file)]

    assert cutover_main([*args, "--json"]) == 1
    (other,) = checks(json.loads(capsys.readouterr().out))["customers-other-record"]["items"]
    assert other.startswith("1007 ")
    assert cutover_main([*args, "--apply", "--json"]) == 1
    found = checks(json.loads(capsys.readouterr().out))
    assert found["apply"]["status"] == "fail"

    assert not env_file.exists()
    assert not (tmp_path / "run-store").exists()  # no ledger, no log beside the token store
