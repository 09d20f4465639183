"""The error of a record Fortnox refuses says what to do, not only what Fortnox said."""

from __future__ import annotations

from types import SimpleNamespace

from fortnox_client.errors import FortnoxDataError
from target_fortnox.mapping import MappedRecord
from target_fortnox.sinks import FortnoxSink, InvoiceSink


def test_refusal_names_stream_key_field_and_the_fix() -> None:
    item = MappedRecord(stream="customers", key="1003", payload={"Email": "a@@b"})
    error = FortnoxDataError(
        "Fortnox error 2001392: Ogiltig e-postadress", code=2001392, field="Email"
    )
    message = FortnoxSink.describe_refusal(SimpleNamespace(stream_name="customers"), item, error)  # type: ignore[arg-type]
    assert message.startswith("customers 1003: Fortnox refused the record (field Email): ")
    assert "Ogiltig e-postadress" in message
    assert "Correct the record in Moment" in message


def _invoice_refusal(text: str, code: int = 2001392) -> str:
    item = MappedRecord(
        stream="invoices",
        key="7005",
        payload={"Project": None, "InvoiceRows": [{"AccountNumber": 3011}]},
    )
    error = FortnoxDataError(f"Fortnox error {code} on POST /invoices: {text}", code=code)
    sink = InvoiceSink.__new__(InvoiceSink)  # describe_refusal needs no sink state
    sink.stream_name = "invoices"
    return sink.describe_refusal(item, error)


def test_account_rule_refusals_name_account_setting_and_where_to_change_it() -> None:
    # Wordings integrators quote (docs/FORTNOX_PROJECTS.md); the account number may be absent.
    project = _invoice_refusal("Projekt är obligatoriskt på konto")
    assert "account 3011 requires a project (ProjectSettings MANDATORY)" in project
    assert "Set the project on the invoice in Moment" in project
    assert "Register > Kontoplan, account 3011" in project
    cost = _invoice_refusal("Kostnadsställe är obligatoriskt på konto: 1930", code=2000946)
    assert "account 1930 requires a cost centre (CostCenterSettings MANDATORY)" in cost
    period = _invoice_refusal("Projektredovisningsperioden är inte aktiv för projekt 5001.")
    assert "outside project 5001's period" in period
    assert "start or end date of project 5001 in Moment" in period
    # Anything else keeps the general wording.
    other = _invoice_refusal("Ogiltigt datum")
    assert other.startswith("invoices 7005: Fortnox refused the record")
