"""Moment record → Fortnox payload mapping, and the field comparison that decides what to write.

Owns: the field mapping of the README (customers, projects, invoices), Fortnox's text rules (valid
characters, lengths), normalisation so that a value read back from Fortnox compares equal to the
value we would send, and the fingerprint of a payload. Pure functions: no I/O, no client.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fortnox_client import API_BLANK, is_valid_character
from stdnum.se import orgnr, personnummer
from sync_common.timezones import STOCKHOLM, assume_stockholm

from target_fortnox.project_states import project_state

PROJECT_DESCRIPTION_MAX = 50
PROJECT_STATUS = {"PLANNED": "NOTSTARTED", "ONGOING": "ONGOING", "FINISHED": "COMPLETED"}

# Fortnox "Formats & Encoding" accepts any letter of any language (ñ, ł, ß arrive as written), the
# combining ¨ and ˚, digits and listed punctuation (fortnox_client.is_valid_character). What else
# has an accepted look-alike is replaced; the rest (emoji, symbols) is removed with a warning.
_SUBSTITUTES = {"'": "’", "\t": " ", "—": "–", "‘": "’", "\u2009": " "}

# Customer fields the Fortnox customer list carries: comparing on these needs no single GET.
CUSTOMER_FIELDS = (
    "Name",
    "OrganisationNumber",
    "Email",
    "Address1",
    "Address2",
    "ZipCode",
    "City",
    "CountryCode",
)
PROJECT_FIELDS = ("Description", "Status", "StartDate", "EndDate")
INVOICE_HEADER_FIELDS = (
    "CustomerNumber",
    "Project",
    "InvoiceDate",
    "DueDate",
    "OCR",
    "Currency",
)
# A credit note's link to the invoice it credits, written where Fortnox lets a client write it on
# create (docs/FORTNOX-WRITES.md). A re-read may show the link in any of these fields: the one
# the target writes; InvoiceReference, where Fortnox made the note (PUT /invoices/{n}/credit);
# CreditInvoiceReference, where a Fortnox kept it from a create (an earlier target version).
CREDIT_LINK = "ExternalInvoiceReference1"
CREDIT_LINK_READ_FROM = (CREDIT_LINK, "InvoiceReference", "CreditInvoiceReference")
INVOICE_ROW_FIELDS = ("AccountNumber", "Description", "DeliveredQuantity", "Price", "VAT")


class MappingError(ValueError):
    """A record that cannot become a valid Fortnox payload; names the record and the field."""

    def __init__(self, stream: str, key: str, field_name: str, problem: str) -> None:
        self.stream, self.key, self.field = stream, key, field_name
        super().__init__(f"{stream} {key}: field {field_name!r} {problem}")


@dataclass
class MappedRecord:
    """The Fortnox payload for one Moment record, plus warnings produced while mapping it."""

    stream: str
    key: str
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    # Number of the Fortnox customer an invoice needs (checked before the invoice is created).
    customer_number: str | None = None


def fortnox_text(
    value: Any, *, stream: str, key: str, field_name: str, warnings: list[str]
) -> str | None:
    """Return ``value`` as text Fortnox accepts; refused characters are replaced or removed.

    Every letter of every language is kept as written; a straight apostrophe becomes ’, and what
    has no accepted form (emoji, symbols) is removed; each change adds a warning naming the record
    and the field.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value))
    cleaned = "".join(_fortnox_form(ch) for ch in text)
    if cleaned != text:
        changed = "".join(sorted({ch for ch in text if _fortnox_form(ch) != ch}))
        warnings.append(
            f"{stream} {key}: replaced or removed characters Fortnox refuses in {field_name!r}: "
            f"{changed!r} (edit the text in Moment to avoid this)"
        )
        cleaned = re.sub(r" {2,}", " ", cleaned).strip()
    return cleaned


def _fortnox_form(ch: str) -> str:
    """``ch`` itself when Fortnox accepts it, else its accepted look-alike, else ""."""
    if is_valid_character(ch):
        return ch
    return _SUBSTITUTES.get(ch, "")


def as_date(value: Any) -> str | None:
    """``YYYY-MM-DD`` from a date, a datetime (its date in Stockholm) or an ISO string."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return assume_stockholm(value).astimezone(STOCKHOLM).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text).isoformat()
    return as_date(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _required_text(
    record: Mapping[str, Any], src: str, *, stream: str, key: str, dst: str, warnings: list[str]
) -> str:
    text = fortnox_text(record.get(src), stream=stream, key=key, field_name=src, warnings=warnings)
    if not text:
        raise MappingError(stream, key, src, f"is required by Fortnox ({dst}); set it in Moment")
    return text


def map_customer(record: Mapping[str, Any]) -> MappedRecord:
    """Moment customer → Fortnox Customer body keyed by CustomerNumber."""
    key = str(record["customerNumber"])
    warnings: list[str] = []

    def text(src: str) -> str | None:
        return fortnox_text(
            record.get(src), stream="customers", key=key, field_name=src, warnings=warnings
        )

    country = record.get("countryCode")
    if country not in (None, ""):
        country = str(country).strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise MappingError(
                "customers",
                key,
                "countryCode",
                f"is {record.get('countryCode')!r}, not an ISO 3166-1 alpha-2 code "
                "(e.g. SE, NO); correct the customer's country in Moment",
            )
    zip_code = text("postalCode")
    if zip_code and len(zip_code) > 10:
        raise MappingError(
            "customers", key, "postalCode", f"is {zip_code!r}: Fortnox ZipCode allows 10 characters"
        )
    payload = {
        "CustomerNumber": key,
        "Name": _required_text(
            record, "name", stream="customers", key=key, dst="Name", warnings=warnings
        ),
        "OrganisationNumber": text("organizationNumber"),
        "Email": text("email"),
        "Address1": text("address1"),
        "Address2": text("address2"),
        "ZipCode": zip_code,
        "City": text("city"),
        "CountryCode": country or None,
    }
    _check_organisation_number(key, payload["OrganisationNumber"], country)
    return MappedRecord("customers", key, payload, warnings)


def _check_organisation_number(key: str, number: str | None, country: str | None) -> None:
    """Check a Swedish customer's organisation or personal number, check digit included.

    A Swedish customer (country SE or none) needs a valid number: Fortnox refuses it otherwise
    (docs/FORTNOX-CONTRACT.md, customer). A foreign customer's number is sent as written (Fortnox
    publishes no rule for those).
    """
    if not number or country not in (None, "", "SE"):
        return
    if orgnr.is_valid(number) or personnummer.is_valid(number):
        return
    raise MappingError(
        "customers",
        key,
        "organizationNumber",
        f"is {number!r}, not a valid Swedish organisation or personal number (NNNNNN-NNNN with "
        "its check digit); correct it in Moment, or set the customer's country if it is foreign",
    )


def map_project(record: Mapping[str, Any]) -> MappedRecord:
    """Moment project → Fortnox Project body keyed by ProjectNumber.

    Fortnox projects have no customer field (docs/FORTNOX-API.md, "Resources"), so the Moment
    project's customer is not sent.
    """
    key = str(record["projectNumber"])
    warnings: list[str] = []
    if len(key) > 20:
        raise MappingError(
            "projects", key, "projectNumber", "is longer than Fortnox's 20 characters"
        )
    description = _required_text(
        record, "name", stream="projects", key=key, dst="Description", warnings=warnings
    )
    if len(description) > PROJECT_DESCRIPTION_MAX:
        warnings.append(
            f"projects {key}: name is {len(description)} characters; Fortnox Description allows "
            f"{PROJECT_DESCRIPTION_MAX}, so it was cut to {description[:PROJECT_DESCRIPTION_MAX]!r}"
        )
        description = description[:PROJECT_DESCRIPTION_MAX].rstrip()
    # Moment's spelling of the state is not published: known spellings map, any other is
    # ongoing (the sink says so once per run), never a failed project (docs/MOMENT-API.md).
    state = project_state(record.get("projectState"))
    start = as_date(record.get("startDate")) or as_date(record.get("createdDate"))
    if start is None:
        raise MappingError(
            "projects",
            key,
            "startDate",
            "and createdDate are both empty; Fortnox needs a start date",
        )
    payload = {
        "ProjectNumber": key,
        "Description": description,
        "Status": PROJECT_STATUS[state],
        "StartDate": start,
        "EndDate": as_date(record.get("endDate")),
    }
    return MappedRecord("projects", key, payload, warnings)


def map_invoice(record: Mapping[str, Any]) -> MappedRecord:
    """Moment invoice or credit note → Fortnox Invoice body keyed by DocumentNumber.

    A credit note (``creditedInvoiceNumber`` set) keeps Moment's number and is created like any
    invoice, with negative quantities, naming the credited invoice in ``CREDIT_LINK``
    (``CreditInvoiceReference`` is read-only: on an original it names *its* credit invoice).
    Moment's credit notes are already negative copies; one sent with positive amounts is negated.
    """
    key = str(record["invoiceNumber"])
    warnings: list[str] = []
    customer = record.get("customer") or {}
    customer_number = customer.get("customerNumber")
    if not customer_number:
        raise MappingError("invoices", key, "customer.customerNumber", "is empty")
    project = (record.get("project") or {}).get("projectNumber")
    credited = record.get("creditedInvoiceNumber")
    rows = [
        _invoice_row(line, index, key=key, warnings=warnings)
        for index, line in enumerate(record.get("invoiceLines") or [])
    ]
    if credited not in (None, ""):
        total = sum((row["DeliveredQuantity"] * row["Price"] for row in rows), Decimal(0))
        if total > 0:
            for row in rows:
                row["DeliveredQuantity"] = -row["DeliveredQuantity"]
    payload: dict[str, Any] = {
        "DocumentNumber": key,
        "CustomerNumber": str(customer_number),
        "Project": str(project) if project else None,
        "InvoiceDate": as_date(record.get("invoiceDate")),
        "DueDate": as_date(record.get("dueDate")),
        "OCR": record.get("ocr") or None,
        "Currency": record.get("currency") or None,
        CREDIT_LINK: str(credited) if credited not in (None, "") else None,
        "InvoiceRows": rows,
    }
    return MappedRecord("invoices", key, payload, warnings, customer_number=str(customer_number))


def _invoice_row(
    line: Mapping[str, Any], index: int, *, key: str, warnings: list[str]
) -> dict[str, Any]:
    field_name = f"invoiceLines[{index}]"
    try:
        account = int(str(line["accountNumber"]))
        quantity = Decimal(str(line["quantity"]))
        price = Decimal(str(line["unitPrice"]))
        vat = line.get("vatRate")
        vat_percent = None if vat is None else Decimal(str(vat))
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise MappingError(
            "invoices", key, field_name, f"is not a valid invoice line ({exc})"
        ) from exc
    if vat_percent is not None and 0 < vat_percent < 1:
        # A fraction (0.25) rather than a percentage (25): Fortnox wants whole percent.
        vat_percent *= 100
    description = fortnox_text(
        line.get("description"),
        stream="invoices",
        key=key,
        field_name=f"{field_name}.description",
        warnings=warnings,
    )
    return {
        "AccountNumber": account,
        "Description": description,
        "DeliveredQuantity": quantity,
        "Price": price,
        "VAT": None if vat_percent is None else int(vat_percent),
    }


# --- comparison -------------------------------------------------------------------------------


def normalise(value: Any) -> Any:
    """A comparable form: empty text is None; numbers are Decimals without trailing zeros."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, datetime | date):
        return as_date(value)
    text = str(value).strip()
    if text == "":
        return None
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return Decimal(text).normalize()
    except InvalidOperation:
        return text
    return text


def changed_fields(
    desired: Mapping[str, Any], existing: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, Any]:
    """The fields of ``desired`` whose value differs from ``existing`` (only those in ``fields``).

    Empty compares equal to empty, whether Fortnox answers "" or null. A field Moment leaves
    empty that Fortnox has filled is sent as ``API_BLANK``: Fortnox leaves a field sent as "" or
    null unchanged (docs/FORTNOX-WRITES.md).
    """
    changes: dict[str, Any] = {}
    for name in fields:
        want, have = normalise(desired.get(name)), normalise(existing.get(name))
        if want != have:
            changes[name] = write_value(desired.get(name))
    return changes


def write_value(value: Any) -> Any:
    """``value`` as an update sends it: an empty value becomes ``API_BLANK``.

    ``API_BLANK`` empties the field (an empty string or null would leave Fortnox's value as it is).
    """
    return API_BLANK if normalise(value) is None else value


def invoice_differences(desired: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between the invoice we would send and the one in Fortnox.

    Only header fields present in ``existing`` are compared (a list row lacks some); rows only
    when ``existing`` has them (a single GET).
    """
    header = [f for f in INVOICE_HEADER_FIELDS if f in existing and _compared(f, desired)]
    diffs = [
        f"{name}: Moment {desired.get(name)!r}, Fortnox {existing.get(name)!r}"
        for name in changed_fields(desired, existing, header)
    ]
    diffs += _credit_link_differences(desired, existing)
    if "InvoiceRows" not in existing:
        return diffs
    want_rows, have_rows = desired.get("InvoiceRows") or [], existing.get("InvoiceRows") or []
    if len(want_rows) != len(have_rows):
        diffs.append(f"InvoiceRows: Moment has {len(want_rows)} rows, Fortnox {len(have_rows)}")
        return diffs
    for index, (want, have) in enumerate(zip(want_rows, have_rows, strict=True)):
        filled = [name for name in INVOICE_ROW_FIELDS if want.get(name) not in (None, "")]
        for name in changed_fields(want, have, filled):
            diffs.append(
                f"InvoiceRows[{index}].{name}: "
                f"Moment {want.get(name)!r}, Fortnox {have.get(name)!r}"
            )
    return diffs


def _credit_link_differences(desired: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """A credit note whose Fortnox copy names another credited invoice differs.

    References compare as numbers whatever their type ("123", 123); "0" and "" name nothing. A
    copy that names no credited invoice at all is not a difference: Fortnox may not keep a link
    it was sent (a credit note written by an earlier version), and its rows already show the
    credit, so a re-read never turns a credit note into a permanent conflict.
    """
    want = normalise(desired.get(CREDIT_LINK))
    if want is None:
        return []
    named = {normalise(existing.get(name)) for name in CREDIT_LINK_READ_FROM} - {None, Decimal(0)}
    if not named or want in named:
        return []
    shown = ", ".join(sorted(str(value) for value in named))
    return [f"credited invoice: Moment {desired.get(CREDIT_LINK)!r}, Fortnox {shown}"]


def _compared(name: str, desired: Mapping[str, Any]) -> bool:
    """Whether a header field takes part in the invoice comparison.

    Only fields Moment fills: an empty one is Fortnox's to default (with Fortnox's OCR setting
    on, Fortnox makes its own OCR).
    """
    return desired.get(name) not in (None, "")  # else Fortnox's default (SEK, due date, OCR)


def to_json_body(payload: Mapping[str, Any], *, drop_empty: bool = True) -> dict[str, Any]:
    """The payload as JSON-ready data (Decimals as numbers); empty values left out on create."""
    return {
        key: _jsonable(value)
        for key, value in payload.items()
        if not (drop_empty and value is None)
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def fingerprint(payload: Mapping[str, Any]) -> str:
    """A stable hash of a payload's comparable values (for fields a Fortnox list does not carry)."""

    def canonical(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: canonical(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        normal = normalise(value)
        return str(normal) if isinstance(normal, Decimal) else normal

    blob = json.dumps(canonical(payload), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
