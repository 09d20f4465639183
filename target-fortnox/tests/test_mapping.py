"""Unit tests (no server): the Moment → Fortnox mapping, the field comparison, and how the
existing-record index chooses between listing and single GETs."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sync_common import FileRunStore
from target_fortnox.existing import ExistingRecords, FingerprintLedger
from target_fortnox.mapping import (
    MappingError,
    changed_fields,
    fingerprint,
    fortnox_text,
    invoice_differences,
    map_customer,
    map_invoice,
    map_project,
    to_json_body,
)

CUSTOMER = {
    "id": 7,
    "customerNumber": "1001",
    "name": "Åkesson & Söner AB",
    "organizationNumber": "556677-8899",
    "email": "info@akesson.se",
    "address1": "Storgatan 1",
    "address2": None,
    "postalCode": "123 45",
    "city": "Malmö",
    "countryCode": "se",
    "lastModifiedDate": "2026-01-02T10:00:00+01:00",
}


def test_customer_fields_map_to_fortnox_names() -> None:
    mapped = map_customer(CUSTOMER)
    assert mapped.key == "1001"
    assert mapped.payload == {
        "CustomerNumber": "1001",
        "Name": "Åkesson & Söner AB",
        "OrganisationNumber": "556677-8899",
        "Email": "info@akesson.se",
        "Address1": "Storgatan 1",
        "Address2": None,
        "ZipCode": "123 45",
        "City": "Malmö",
        "CountryCode": "SE",
    }
    assert mapped.warnings == []
    assert "Address2" not in to_json_body(mapped.payload)


def test_country_code_that_is_not_iso_alpha2_fails_the_record_naming_it() -> None:
    with pytest.raises(MappingError) as caught:
        map_customer({**CUSTOMER, "countryCode": "Sweden"})
    assert caught.value.field == "countryCode"
    assert "customers 1001" in str(caught.value)
    assert "ISO 3166-1 alpha-2" in str(caught.value)


def test_emoji_are_stripped_with_a_warning_naming_record_and_field() -> None:
    mapped = map_customer({**CUSTOMER, "name": "Glada 🎉 Gänget", "city": "Muñoz's"})
    assert mapped.payload["Name"] == "Glada Gänget"
    assert mapped.payload["City"] == "Muñoz’s"  # the letter kept, the straight quote replaced
    assert len(mapped.warnings) == 2
    assert "customers 1001" in mapped.warnings[0]
    assert "'name'" in mapped.warnings[0]


def test_letters_of_any_language_arrive_as_written() -> None:
    """Fortnox accepts any letter (\\p{L}): ñ, ł, ß are neither transliterated nor warned about."""
    written = "Muñoz Łódź Straße"
    mapped = map_customer({**CUSTOMER, "name": written, "address1": "Spitalerstraße 44"})
    assert mapped.payload["Name"] == written
    assert mapped.payload["Address1"] == "Spitalerstraße 44"
    assert mapped.warnings == []


def test_target_and_sandbox_hold_text_to_the_same_published_rule() -> None:
    """The target keeps exactly what the sandbox (Fortnox's published class) accepts."""
    from sandbox.fortnox.errors import FortnoxError
    from sandbox.fortnox.formats import check_text

    for char in "aÅñłßЖλ中\u0308\u030a’\\–@½\u00a0\n😀'\"\t{}<>|~":
        warnings: list[str] = []
        kept = fortnox_text(char, stream="s", key="k", field_name="f", warnings=warnings) == char
        try:
            check_text("f", char)
            accepted = True
        except FortnoxError:
            accepted = False
        assert kept == accepted, f"{char!r}: target keeps {kept}, sandbox accepts {accepted}"


def test_text_that_is_only_refused_characters_makes_a_required_field_fail() -> None:
    with pytest.raises(MappingError, match="'name' is required"):
        map_customer({**CUSTOMER, "name": "🎉🎉"})


def test_fortnox_text_keeps_accepted_punctuation_and_newlines() -> None:
    warnings: list[str] = []
    text = "Ärende: 50% § 3 – €12,50 (brutto)\nrad två @ kl. 10?"
    assert fortnox_text(text, stream="s", key="k", field_name="f", warnings=warnings) == text
    assert warnings == []


PROJECT = {
    "projectNumber": "P-100",
    "name": "Ombyggnad",
    "customer": {"id": 7, "customerNumber": "1001"},
    "startDate": "2026-02-01",
    "endDate": None,
    "createdDate": "2026-01-15T23:30:00+00:00",
    "projectState": "PLANNED",
}


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("PLANNED", "NOTSTARTED"),
        ("ONGOING", "ONGOING"),
        ("FINISHED", "COMPLETED"),
        # Moment's own spelling, as a public client of the real API saw it (docs/MOMENT-API.md)
        ("inProgress", "ONGOING"),
        ("planned", "NOTSTARTED"),
        ("finished", "COMPLETED"),
        ("closed", "COMPLETED"),
        # a state nobody has published: ongoing, never a failed project
        ("PAUSED", "ONGOING"),
    ],
)
def test_project_state_maps_to_fortnox_status(state: str, status: str) -> None:
    assert map_project({**PROJECT, "projectState": state}).payload["Status"] == status


def test_project_without_start_date_gets_created_date_in_stockholm() -> None:
    # 23:30 UTC on 15 January is 00:30 on 16 January in Stockholm.
    mapped = map_project({**PROJECT, "startDate": None})
    assert mapped.payload["StartDate"] == "2026-01-16"
    assert "CustomerNumber" not in mapped.payload


def test_long_project_name_is_cut_to_50_with_a_warning() -> None:
    name = "Projekt " + "x" * 60
    mapped = map_project({**PROJECT, "name": name})
    assert mapped.payload["Description"] == name[:50]
    assert len(mapped.warnings) == 1
    assert "projects P-100" in mapped.warnings[0]


INVOICE = {
    "invoiceNumber": 5001,
    "invoiceState": "FINALIZED",
    "customer": {"id": 7, "customerNumber": "1001"},
    "project": {"id": 3, "projectNumber": "P-100"},
    "invoiceDate": "2026-03-01",
    "dueDate": "2026-03-31",
    "ocr": "500118",
    "currency": "SEK",
    "creditedInvoiceNumber": None,
    "invoiceLines": [
        {
            "description": "Konsult",
            "quantity": 10,
            "unitPrice": 1200.5,
            "vatRate": 25,
            "accountNumber": 3010,
        },
    ],
}


def test_invoice_maps_header_and_rows() -> None:
    mapped = map_invoice(INVOICE)
    body = to_json_body(mapped.payload)
    assert body == {
        "DocumentNumber": "5001",
        "CustomerNumber": "1001",
        "Project": "P-100",
        "InvoiceDate": "2026-03-01",
        "DueDate": "2026-03-31",
        "OCR": "500118",
        "Currency": "SEK",
        "InvoiceRows": [
            {
                "AccountNumber": 3010,
                "Description": "Konsult",
                "DeliveredQuantity": 10,
                "Price": 1200.5,
                "VAT": 25,
            }
        ],
    }
    assert mapped.customer_number == "1001"


def test_credit_note_refers_to_the_credited_invoice_with_negative_quantities() -> None:
    credit = {**INVOICE, "invoiceNumber": 5002, "creditedInvoiceNumber": 5001}
    payload = map_invoice(credit).payload
    body = to_json_body(payload)
    assert body["DocumentNumber"] == "5002"  # Moment's number
    assert body["ExternalInvoiceReference1"] == "5001"
    # Read-only (C# SDK): on an original it names *its* credit invoice; never sent.
    assert "CreditInvoiceReference" not in body
    assert "ExternalInvoiceReference1" not in to_json_body(map_invoice(INVOICE).payload)
    assert payload["InvoiceRows"][0]["DeliveredQuantity"] == Decimal(-10)
    # Already negative (Moment's own credit notes): left as they are.
    negative = {
        **credit,
        "invoiceLines": [{**INVOICE["invoiceLines"][0], "quantity": -10}],  # type: ignore[index]
    }
    assert map_invoice(negative).payload["InvoiceRows"][0]["DeliveredQuantity"] == Decimal(-10)


def test_a_credit_note_read_back_as_fortnox_answers_it_is_unchanged() -> None:
    """Real answers carry Credit and the references as strings; the link to the original may be
    in ExternalInvoiceReference1 (written), InvoiceReference (Fortnox's own credit notes) or
    CreditInvoiceReference; "0" names nothing. None of that is a conflict; another original is."""
    desired = map_invoice({**INVOICE, "invoiceNumber": 5002, "creditedInvoiceNumber": 5001}).payload
    row = {"AccountNumber": 3010, "Description": "Konsult", "DeliveredQuantity": "-10.00"}
    fortnox = {
        **to_json_body(desired),
        "Credit": "true",
        "CreditInvoiceReference": "0",
        "InvoiceRows": [{**row, "Price": "1200.50", "VAT": 25, "RowId": 1}],
    }
    assert invoice_differences(desired, fortnox) == []
    moved = {**fortnox, "ExternalInvoiceReference1": "", "InvoiceReference": "5001"}
    assert invoice_differences(desired, moved) == []
    assert invoice_differences(desired, {**fortnox, "ExternalInvoiceReference1": 5001}) == []
    kept_on_create = {**fortnox, "ExternalInvoiceReference1": "", "CreditInvoiceReference": "5001"}
    assert invoice_differences(desired, kept_on_create) == []
    assert invoice_differences(desired, {**fortnox, "Credit": "false"}) == []
    unlinked = {**fortnox, "ExternalInvoiceReference1": ""}
    assert invoice_differences(desired, unlinked) == []  # rows already show the credit
    other = {**fortnox, "ExternalInvoiceReference1": "", "InvoiceReference": "4999"}
    assert invoice_differences(desired, other) == ["credited invoice: Moment '5001', Fortnox 4999"]


def test_changed_fields_compares_normalised_values_and_clears_emptied_ones() -> None:
    desired = map_customer({**CUSTOMER, "email": None}).payload
    fortnox = {**desired, "Email": "old@x.se", "ZipCode": "123 45 ", "Address2": ""}
    # Emptied with API_BLANK ("" would leave Fortnox's value); "" and null in Fortnox are empty.
    assert changed_fields(desired, fortnox, ["Email", "ZipCode", "Address2"]) == {
        "Email": "API_BLANK"
    }
    assert changed_fields(desired, {**fortnox, "Email": None}, ["Email", "Address2"]) == {}


def test_invoice_differences_compare_rows_numerically() -> None:
    desired = map_invoice(INVOICE).payload
    same = {
        **to_json_body(desired),
        "OCR": "500118",
        "InvoiceRows": [
            {
                "AccountNumber": 3010,
                "Description": "Konsult",
                "DeliveredQuantity": "10.00",
                "Price": 1200.50,
                "VAT": 25,
                "RowId": 1,
            }
        ],
    }
    assert invoice_differences(desired, same) == []
    other = {**same, "InvoiceRows": [{**same["InvoiceRows"][0], "Price": 1000}]}
    assert invoice_differences(desired, other) == [
        "InvoiceRows[0].Price: Moment Decimal('1200.5'), Fortnox 1000"
    ]
    assert invoice_differences(desired, {**same, "DueDate": "2026-04-30"})[0].startswith("DueDate")
    # Fields Moment leaves empty are Fortnox's defaults, not differences.
    no_currency = map_invoice({**INVOICE, "currency": None, "ocr": None}).payload
    assert invoice_differences(no_currency, {**same, "Currency": "SEK", "OCR": "12345"}) == []


def test_fingerprint_ignores_number_formatting_but_not_values() -> None:
    a = map_invoice(INVOICE).payload
    b = map_invoice({**INVOICE, "invoiceLines": [{**INVOICE["invoiceLines"][0], "quantity": 10.0}]})  # type: ignore[index]
    c = map_invoice({**INVOICE, "ocr": "999"})
    assert fingerprint(a) == fingerprint(b.payload)
    assert fingerprint(a) != fingerprint(c.payload)


class FakeRegister:
    """An in-memory Fortnox register that counts the reads ExistingRecords makes."""

    def __init__(self, numbers: list[str]) -> None:
        self.rows = {n: {"CustomerNumber": n, "Name": f"Kund {n}"} for n in numbers}
        self.calls: list[str] = []

    def get(self, resource: str, key: str) -> dict[str, Any] | None:
        self.calls.append(f"get {key}")
        return self.rows.get(key)

    def list(self, resource: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        first = int((params or {}).get("page", 1))
        for page in range((first - 1) * 500, len(self.rows), 500):
            self.calls.append(f"list page {page // 500 + 1}")
            yield from list(self.rows.values())[page : page + 500]

    def get_path(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params == {"limit": 500, "page": 1}  # page 1 doubles as the probe
        self.calls.append("list page 1")
        rows = list(self.rows.values())[:500]
        return {"MetaInformation": {"@TotalResources": len(self.rows)}, "Customers": rows}


def test_existing_records_lists_when_pages_are_fewer_than_keys() -> None:
    register = FakeRegister([str(n) for n in range(1000, 2200)])  # 3 pages
    index = ExistingRecords(register, "customers", "CustomerNumber")
    index.prepare([str(n) for n in range(1000, 1010)] + [str(n) for n in range(2100, 2110)])

    # Page 1 is the probe and is not read twice.
    assert register.calls == ["list page 1", "list page 2", "list page 3"]
    assert index.find("1005") == {"CustomerNumber": "1005", "Name": "Kund 1005"}
    assert index.find("9999") is None
    index.prepare(["2100", "8888"])  # later batches of the run: no request at all
    assert len(register.calls) == 3


def test_existing_records_gets_singles_when_cheaper_and_skips_an_empty_register() -> None:
    register = FakeRegister([str(n) for n in range(1000, 2200)])
    index = ExistingRecords(register, "customers", "CustomerNumber")
    index.prepare(["1001", "1002"])
    assert register.calls == ["list page 1"]  # both on page 1, the probe: no single GET
    index.prepare(["2001", "2002"])
    assert register.calls == ["list page 1", "get 2001", "get 2002"]  # 2 GETs < 2 more pages
    index.prepare(["1001", "2001"])
    assert len(register.calls) == 3  # already known

    empty = FakeRegister([])
    fresh = ExistingRecords(empty, "customers", "CustomerNumber")
    fresh.prepare(["1", "2", "3"])
    assert empty.calls == ["list page 1"]
    assert fresh.find("2") is None


def test_full_record_is_read_once_after_a_list_row(tmp_path: Path) -> None:
    register = FakeRegister([str(n) for n in range(1000, 1600)])
    index = ExistingRecords(register, "customers", "CustomerNumber")
    index.prepare([str(n) for n in range(1000, 1003)])
    assert "list page 1" in register.calls
    index.full("1001")
    index.full("1001")
    assert register.calls.count("get 1001") == 1

    ledger = FingerprintLedger(FileRunStore(tmp_path), "target-fortnox")
    ledger.put("customers", "1001", "abc")
    ledger.save()
    assert FingerprintLedger(FileRunStore(tmp_path), "target-fortnox").matches(
        "customers", "1001", "abc"
    )
    assert not FingerprintLedger(FileRunStore(tmp_path), "target-fortnox").matches(
        "customers", "1001", "xyz"
    )
