"""Replay tests: one ``.singer`` file per scenario fed to the target against the Fortnox sandbox.

Each test checks the data Fortnox holds afterwards and the requests the target made (from the
sandbox's request log), plus the STATE the target emitted and the run's files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient
from sandbox.launcher import SandboxProcess
from sync_common import DeadLetters

Replay = Callable[..., Any]


def _summary(results_dir: str) -> dict[str, Any]:
    runs = sorted((Path(results_dir) / "runs").glob("*-target-fortnox.json"))
    assert runs, "the run wrote no summary"
    data: dict[str, Any] = json.loads(runs[-1].read_text())
    return data


def _counts(summary: dict[str, Any], stream: str) -> dict[str, Any]:
    counts: dict[str, Any] = summary["streams"][stream]
    return counts


def test_create_customers(replay: Replay, fortnox_api: FortnoxClient) -> None:
    run = replay("customers_create.singer")

    assert run.count("POST") == 2
    assert run.count("PUT") == 0
    first, second = fortnox_api.get("customers", "71001"), fortnox_api.get("customers", "71002")
    assert first is not None
    assert second is not None
    assert first["Name"] == "Kund 71001 AB"
    assert first["ZipCode"] == "211 22"
    assert first["City"] == "Malmö"
    assert first["CountryCode"] == "SE"
    assert second["Name"] == "Ödegaard & Dahl HB"
    assert second["Address2"] == "Box 12"
    assert run.states[-1]["bookmarks"]["customers"]["replication_key_value"].startswith("2026-03")
    summary = _summary(run.target.config["results_dir"])
    assert _counts(summary, "customers")["created"] == 2


def test_update_sends_only_changed_fields(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_sandbox: SandboxProcess
) -> None:
    fortnox_api.create(
        "customers",
        {
            "CustomerNumber": "71101",
            "Name": "Kund 71101 AB",
            "OrganisationNumber": "556036-0793",
            "Email": "ekonomi@kund71101.se",
            "Address1": "Storgatan 1",
            "ZipCode": "211 22",
            "City": "Malmö",
            "CountryCode": "SE",
            "Phone1": "040-123456",
        },
    )
    run = replay("customers_update.singer")

    assert run.count("POST") == 0
    assert run.count("PUT") == 1
    after = fortnox_api.get("customers", "71101")
    assert after is not None
    assert after["Email"] == "faktura@kund71101.se"
    assert after["City"] == "Lund"
    assert after["ZipCode"] == "222 20"
    assert after["Phone1"] == "040-123456"  # a field Moment does not own is left alone
    assert _counts(_summary(run.target.config["results_dir"]), "customers")["updated"] == 1


def test_unchanged_run_writes_nothing(replay: Replay) -> None:
    first = replay("customers_unchanged.singer")
    assert first.count("POST") == 2

    again = replay("customers_unchanged.singer")

    assert again.writes == 0
    # Known from the first run's fingerprints: no single GET for the CountryCode the list lacks.
    assert again.count("GET", "/3/customers/") == 0
    assert _counts(_summary(again.target.config["results_dir"]), "customers")["unchanged"] == 2
    assert again.states, "STATE must still be emitted on a no-change run"


def test_invalid_records_fail_alone_and_become_dead_letters(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    run = replay("invalid_record.singer")

    assert fortnox_api.get("customers", "71301") is None
    assert fortnox_api.get("customers", "71303") is None
    cleaned = fortnox_api.get("customers", "71302")
    assert cleaned is not None
    assert cleaned["Name"] == "Glada Gänget AB"  # the emoji was stripped, with a warning
    assert run.count("POST") == 1
    assert run.states, "a per-record failure must not stop the run or its STATE"
    counts = _counts(_summary(fortnox_config["results_dir"]), "customers")
    assert counts["failed"] == 2
    assert counts["created"] == 1
    letters = {
        letter.key: letter
        for letter in DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    }
    assert set(letters) == {"71301", "71303"}
    assert "countryCode" in letters["71301"].error
    assert "ISO 3166-1 alpha-2" in letters["71301"].error
    assert "name" in letters["71303"].error

    # The next run retries dead letters first: fixed in Moment, the record now goes through.
    fixed = json.dumps(
        {"type": "RECORD", "stream": "customers", "record": {**letters["71301"].record}}
    ).replace('"Sweden"', '"SE"')
    schema = json.dumps(
        {
            "type": "SCHEMA",
            "stream": "customers",
            "schema": letters["71301"].schema,
            "key_properties": ["customerNumber"],
        }
    )
    retry = replay(text=f"{schema}\n{fixed}\n")
    assert fortnox_api.get("customers", "71301") is not None
    remaining = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert [letter.key for letter in remaining] == ["71303"]
    assert remaining[0].attempts == 2  # retried from the dead letters, failed again
    assert retry.count("POST") == 1

    # A run whose input has no customers at all still retries the customers' dead letters.
    replay(text='{"type": "STATE", "value": {"bookmarks": {}}}\n')
    [letter] = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert letter.attempts == 3


def test_invoice_with_missing_customer_fails_naming_the_customer(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    run = replay("missing_reference.singer")

    assert fortnox_api.get("invoices", "7140001") is None
    summary = _summary(fortnox_config["results_dir"])
    assert _counts(summary, "invoices")["failed"] == 1
    [letter] = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert "customer 71499" in letter.error
    assert run.states


def test_reserved_customer_number_fails_with_the_fix(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    fortnox_api.create("customers", {"CustomerNumber": "71501", "Name": "Borttagen AB"})
    assert fortnox_api.delete("customers", "71501")

    run = replay("reserved_number.singer")

    assert fortnox_api.get("customers", "71501") is None
    assert fortnox_api.get("customers", "71502") is not None
    [letter] = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert letter.key == "71501"
    assert "2000637" in letter.error
    assert "another number in Moment" in letter.error
    assert "Fortnox support" in letter.error
    assert run.states


def test_invoice_refused_by_an_account_rule_fails_alone_with_the_fix(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    # The sandbox seed's account 3011 has ProjectSettings MANDATORY (docs/FORTNOX_PROJECTS.md).
    fortnox_api.create("customers", {"CustomerNumber": "71601", "Name": "Regel AB"})
    data = Path(__file__).parent / "data_files" / "missing_reference.singer"
    schema, record, state = data.read_text(encoding="utf-8").splitlines()
    lines = [schema]
    for number, account in ((7160001, "3011"), (7160002, "3001")):
        message = json.loads(record)
        message["record"].update(invoiceNumber=number, ocr=None)
        message["record"]["customer"]["customerNumber"] = "71601"
        for line in message["record"]["invoiceLines"]:
            line["accountNumber"] = account
        lines.append(json.dumps(message))

    run = replay(text="\n".join([*lines, state]) + "\n")

    assert fortnox_api.get("invoices", "7160001") is None
    assert fortnox_api.get("invoices", "7160002") is not None
    assert _counts(_summary(fortnox_config["results_dir"]), "invoices")["failed"] == 1
    [letter] = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert letter.key == "7160001"
    assert letter.error.startswith(
        "invoices 7160001: Fortnox refused the invoice: account 3011 requires a project "
        "(ProjectSettings MANDATORY) and the invoice has none. Set the project on the invoice in "
        "Moment, or in Fortnox (Register > Kontoplan, account 3011) change Projekt from "
        "Obligatoriskt to Tillåtet."
    )
    assert "Projekt är obligatoriskt på konto: 3011" in letter.error
    assert run.states


def test_long_project_name_is_cut_with_a_warning(
    replay: Replay, fortnox_api: FortnoxClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        replay("long_description.singer")

    project = fortnox_api.get("projects", "P7160")
    assert project is not None
    assert project["Description"] == "Ombyggnad av kontorslokaler i Västra Hamnen, etapp"
    assert project["Status"] == "ONGOING"
    assert project["StartDate"] == "2026-02-01"
    assert project["EndDate"] == "2026-12-31"
    assert any(
        "projects P7160" in r.getMessage() and "50" in r.getMessage() for r in caplog.records
    )


def test_project_without_start_date_starts_on_its_created_date(
    replay: Replay, fortnox_api: FortnoxClient
) -> None:
    replay("no_start_date.singer")

    project = fortnox_api.get("projects", "P7170")
    assert project is not None
    assert project["StartDate"] == "2026-01-16"  # 23:30 UTC on the 15th is the 16th in Stockholm
    assert project["Status"] == "NOTSTARTED"


def test_identical_invoice_is_unchanged_and_a_different_one_is_a_conflict(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    first = replay("invoice_identical.singer")
    invoice = fortnox_api.get("invoices", "7180001")
    assert invoice is not None
    assert invoice["CustomerNumber"] == "71801"
    assert invoice["Project"] == "P7180"
    assert invoice["OCR"] == "718000117"
    assert [
        (r["AccountNumber"], float(r["DeliveredQuantity"])) for r in invoice["InvoiceRows"]
    ] == [
        (3001, 10.0),
        (3001, 1.0),
    ]
    credit = fortnox_api.get("invoices", "7180002")
    assert credit is not None
    assert float(credit["InvoiceRows"][0]["DeliveredQuantity"]) == -10.0
    assert first.count("POST") == 4  # customer, project, invoice, credit note

    again = replay("invoice_identical.singer")
    assert again.writes == 0
    summary = _summary(fortnox_config["results_dir"])
    assert _counts(summary, "invoices")["unchanged"] == 2

    different = replay("invoice_different.singer")
    assert different.writes == 0
    after = fortnox_api.get("invoices", "7180001")
    assert after is not None
    assert float(after["InvoiceRows"][0]["DeliveredQuantity"]) == 10.0  # never overwritten
    summary = _summary(fortnox_config["results_dir"])
    assert _counts(summary, "invoices")["conflict"] == 1
    assert "DeliveredQuantity" in json.dumps(summary)


def test_dry_run_plans_with_reads_only(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    fortnox_api.create(
        "customers",
        {"CustomerNumber": "71902", "Name": "Kund 71902 AB", "Email": "gammal@kund71902.se"},
    )
    run = replay("dry_run.singer", dry_run=True)

    assert run.writes == 0
    assert fortnox_api.get("customers", "71901") is None
    assert run.states == [], "a dry run must not move the bookmark"
    [plan_file] = (Path(fortnox_config["results_dir"]) / "plans").glob("*-target-fortnox.json")
    plan = json.loads(plan_file.read_text())
    actions = {(a["key"], a["action"]) for a in plan["plan"]}
    assert ("71901", "create") in actions
    assert ("71902", "update") in actions
    update = next(a for a in plan["plan"] if a["key"] == "71902")
    assert update["changes"]["Email"] == "ny@kund71902.se"
    assert plan["counts_by_stream"]["customers"]["create"] == 1
    # The invoice's customer is planned in the same run, so the invoice is planned too.
    assert ("7190001", "create") in actions
    assert fortnox_api.get("invoices", "7190001") is None


def test_invoices_are_skipped_when_push_invoices_is_off(
    replay: Replay, fortnox_config: dict[str, Any]
) -> None:
    run = replay("missing_reference.singer", push_invoices=False)

    assert run.requests == []
    counts = _counts(_summary(fortnox_config["results_dir"]), "invoices")
    assert counts["skipped"] == 1
    assert counts["failed"] == 0
    assert run.states


def test_a_skipped_stream_never_stops_the_run_on_its_values(
    replay: Replay, fortnox_config: dict[str, Any]
) -> None:
    """push_invoices off: invoices are skipped whatever they hold, even a date that breaks the
    tap's typed schema (``format: date``), which singer-sdk's date parsing stopped the run on."""
    data = Path(__file__).parent / "data_files" / "missing_reference.singer"
    text = data.read_text(encoding="utf-8").replace(
        '"invoiceDate": "2026-03-01"', '"invoiceDate": "01/03/2026"'
    )
    assert "01/03/2026" in text
    run = replay(text=text, push_invoices=False)

    assert run.requests == []
    counts = _counts(_summary(fortnox_config["results_dir"]), "invoices")
    assert counts["skipped"] == 1
    assert counts["failed"] == 0
    assert run.states


def test_project_states_in_moments_spelling_and_unknown_ones_never_fail(
    replay: Replay, fortnox_api: FortnoxClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Moment's spelling is not published (docs/MOMENT-API.md): inProgress is seen in a public
    client, anything else unknown is ONGOING with one warning per state, not a failed project."""
    data_file = Path(__file__).parent / "data_files" / "long_description.singer"
    lines = data_file.read_text(encoding="utf-8").splitlines()
    schema = lines[0]
    template = json.loads(lines[1])
    records = []
    for number, state in (
        ("P7181", "inProgress"),
        ("P7182", "finished"),
        ("P7183", "PAUSED"),
        ("P7184", "PAUSED"),
    ):
        message = json.loads(json.dumps(template))
        message["record"].update(projectNumber=number, name=f"Projekt {number}", projectState=state)
        records.append(json.dumps(message))
    with caplog.at_level(logging.WARNING):
        replay(text="\n".join([schema, *records]) + "\n")

    statuses = {n: fortnox_api.get("projects", n)["Status"] for n in ("P7181", "P7182", "P7183")}
    assert statuses == {"P7181": "ONGOING", "P7182": "COMPLETED", "P7183": "ONGOING"}
    assert fortnox_api.get("projects", "P7184") is not None
    said = [r.getMessage() for r in caplog.records if "'PAUSED'" in r.getMessage()]
    assert len(said) == 1, said
    assert "ONGOING" in said[0]
    assert "docs/MOMENT-API.md" in said[0]
    assert not [r for r in caplog.records if "'inProgress'" in r.getMessage()]
    assert _counts(_summary(replay.last.target.config["results_dir"]), "projects")["failed"] == 0
