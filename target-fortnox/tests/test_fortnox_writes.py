"""How target-fortnox writes what Fortnox publishes (docs/FORTNOX-WRITES.md): text as written,
fields emptied with API_BLANK, credit notes with their link to the credited invoice.

Each test replays Singer messages built from the data files' schemas against the Fortnox sandbox
and reads back what Fortnox holds.
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

DATA_FILES = Path(__file__).parent / "data_files"
Replay = Callable[..., Any]


def _schema_line(data_file: str, stream: str) -> str:
    for line in (DATA_FILES / data_file).read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message["type"] == "SCHEMA" and message["stream"] == stream:
            return line
    raise AssertionError(f"{data_file} has no {stream} schema")


def _customer(number: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": int(number),
        "customerNumber": number,
        "name": f"Kund {number} AB",
        "organizationNumber": "556036-0793",
        "email": f"ekonomi@kund{number}.se",
        "address1": "Storgatan 1",
        "address2": "Box 12",
        "postalCode": "211 22",
        "city": "Malmö",
        "countryCode": "SE",
        "createdDate": "2026-01-10T08:00:00+01:00",
        "lastModifiedDate": "2026-03-01T09:00:00+01:00",
        **fields,
    }


def _messages(stream: str, data_file: str, records: list[dict[str, Any]]) -> str:
    lines = [_schema_line(data_file, stream)]
    lines += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    return "\n".join(lines) + "\n"


def customers(*records: dict[str, Any]) -> str:
    return _messages("customers", "customers_update.singer", list(records))


# -- item 4: valid characters ------------------------------------------------------------------


def test_names_in_any_alphabet_arrive_as_written_and_emoji_are_stripped(
    replay: Replay, fortnox_api: FortnoxClient, caplog: pytest.LogCaptureFixture
) -> None:
    written = "Muñoz Łódź Straße"
    caplog.set_level(logging.WARNING)
    run = replay(text=customers(_customer("76401", name=written, city="Glada 🎉 Gänget")))

    assert run.count("POST") == 1
    held = fortnox_api.get("customers", "76401")
    assert held is not None
    assert held["Name"] == written
    assert held["City"] == "Glada Gänget"  # the emoji stripped, as before
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("customers 76401" in w and "'city'" in w for w in warnings), warnings
    assert not any("'name'" in w for w in warnings), warnings

    again = replay(text=customers(_customer("76401", name=written, city="Glada 🎉 Gänget")))
    assert again.writes == 0


# -- item 3: clearing a field --------------------------------------------------------------------


def test_a_value_removed_in_moment_is_emptied_in_fortnox_and_the_next_run_writes_nothing(
    replay: Replay, fortnox_api: FortnoxClient
) -> None:
    first = replay(text=customers(_customer("76501", countryCode="NO")))
    assert first.count("POST") == 1
    removed = _customer(
        "76501",
        email=None,
        address2=None,
        countryCode=None,
        lastModifiedDate="2026-03-02T09:00:00+01:00",
    )

    cleared = replay(text=customers(removed))

    assert cleared.count("PUT") == 1
    held = fortnox_api.get("customers", "76501")
    assert held is not None
    assert (held["Email"], held["Address2"], held["CountryCode"]) == ("", "", "")
    assert held["Address1"] == "Storgatan 1"  # still in Moment, left alone
    put = next(r for r in cleared.requests if r["method"] == "PUT")
    assert put["path"] == "/3/customers/76501"

    again = replay(text=customers(removed))
    assert again.writes == 0  # converged: Fortnox's "" equals Moment's null


# -- item 5: credit notes -------------------------------------------------------------------------


def _invoice(number: int, customer: str, credited: int | None, quantity: float) -> dict[str, Any]:
    return {
        "id": number,
        "invoiceNumber": number,
        "invoiceState": "FINALIZED",
        "customer": {"id": 1, "customerNumber": customer},
        "project": None,
        "invoiceDate": "2026-03-01",
        "dueDate": "2026-03-31",
        "ocr": None,
        "currency": "SEK",
        "creditedInvoiceNumber": credited,
        "invoiceLines": [
            {
                "description": "Konsulttimmar mars",
                "quantity": quantity,
                "unitPrice": 1150.0,
                "vatRate": 25,
                "accountNumber": "3001",
            }
        ],
        "createdDate": "2026-03-01T08:00:00+01:00",
        "lastModifiedDate": "2026-03-01T09:00:00+01:00",
    }


@pytest.mark.parametrize("credit_flag", [True, False], ids=["credit-true", "credit-false"])
def test_credit_note_keeps_moments_number_and_its_link_and_a_rerun_is_unchanged(
    replay: Replay,
    fortnox_api: FortnoxClient,
    fortnox_sandbox: SandboxProcess,
    fortnox_config: dict[str, Any],
    credit_flag: bool,
) -> None:
    """Created by POST with Moment's number and negative rows, the link in
    ExternalInvoiceReference1; re-read whether Fortnox flags a negative invoice as a credit
    invoice or not (inferred either way: the sandbox plays both), it is unchanged."""
    customer = "76601" if credit_flag else "76602"
    original, note = (7660001, 7660002) if credit_flag else (7660011, 7660012)
    text = customers(_customer(customer)) + _messages(
        "invoices",
        "invoice_identical.singer",
        [_invoice(original, customer, None, 10), _invoice(note, customer, original, -10)],
    )
    fortnox_sandbox.admin("PATCH", "settings", {"negative_invoice_is_credit": credit_flag})
    try:
        first = replay(text=text)
        again = replay(text=text)
    finally:
        fortnox_sandbox.admin("PATCH", "settings", {"negative_invoice_is_credit": True})

    assert first.count("POST") == 3  # customer, invoice, credit note
    held = fortnox_api.get("invoices", str(note))
    assert held is not None
    assert held["DocumentNumber"] == str(note)
    assert held["ExternalInvoiceReference1"] == str(original)
    assert held["Credit"] == ("true" if credit_flag else "false")  # a string, as Fortnox answers
    assert float(held["InvoiceRows"][0]["DeliveredQuantity"]) == -10.0
    assert held["Total"] < 0
    assert again.writes == 0
    summary = sorted((Path(fortnox_config["results_dir"]) / "runs").glob("*.json"))[-1]
    counts = json.loads(summary.read_text())["streams"]["invoices"]
    assert counts.get("unchanged") == 2, counts
    assert not counts.get("conflict"), counts
