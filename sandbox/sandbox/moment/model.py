"""Moment's entities as the sandbox serves them: field names, types and write rules.

Field names are those of docs/MOMENT-API.md (the plugins use exactly these). What a client may
write is declared per entity; read-only fields (``id``, ``createdDate``, ``lastModifiedDate``,
``invoiceNumber``, ``invoiceState``, ``invoiced``) and unknown fields in a request body are
ignored, as Jackson does by default in a Spring application (inferred).

``clean`` checks a request body against an entity's fields and returns the writable part,
normalised; references to other records (``customer``, ``project``) come back as a
``Reference`` for the repository to resolve.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sandbox.moment.errors import MomentError

PROJECT_STATES = ("PLANNED", "ONGOING", "FINISHED")
INVOICE_STATES = ("DRAFT", "FINALIZED")
FIRST_INVOICE_NUMBER = 7001  # the company's invoice series (shared seed convention)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Reference:
    """A pointer to another record as a client wrote it: by id and/or by number."""

    entity: str  # "customers" or "projects"
    id: int | None
    number: str | None


@dataclass(frozen=True)
class Field:
    """One writable field: its kind decides the check, ``required`` forbids null/absence."""

    name: str
    kind: str
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other request keys accepted for this field (e.g. projectId)


@dataclass(frozen=True)
class EntityType:
    """An entity path under ``/companies/{code}/`` and its rules."""

    path: str
    label: str  # singular, for messages
    fields: tuple[Field, ...]
    unique: tuple[str, ...] = ()  # unique per company: a duplicate is 409 (inferred)
    number_field: str | None = None  # the user-facing number the admin API edits by
    sortable: tuple[str, ...] = ()

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _money_field(name: str, required: bool = False) -> Field:
    return Field(name, "number", required=required)


CUSTOMERS = EntityType(
    path="customers",
    label="customer",
    fields=(
        Field("customerNumber", "string", max_length=20),
        Field("name", "string", required=True, max_length=200),
        Field("organizationNumber", "string", max_length=30),
        Field("email", "email", max_length=200),
        Field("address1", "string", max_length=200),
        Field("address2", "string", max_length=200),
        Field("postalCode", "string", max_length=20),
        Field("city", "string", max_length=100),
        Field("countryCode", "country"),
    ),
    unique=("customerNumber",),
    number_field="customerNumber",
    sortable=("customerNumber", "name"),
)

PROJECTS = EntityType(
    path="projects",
    label="project",
    fields=(
        Field("projectNumber", "string", max_length=20),
        Field("name", "string", required=True, max_length=250),
        Field("customer", "customerRef", required=True, aliases=("customerId",)),
        Field("startDate", "date"),
        Field("endDate", "date"),
        Field("projectState", "enum", choices=PROJECT_STATES),
        Field("priceModel", "priceModel"),
    ),
    unique=("projectNumber",),
    number_field="projectNumber",
    sortable=("projectNumber", "name", "startDate"),
)

INVOICES = EntityType(
    path="invoices",
    label="invoice",
    fields=(
        Field("customer", "customerRef", required=True, aliases=("customerId",)),
        Field("project", "projectRef", aliases=("projectId",)),
        Field("invoiceDate", "date"),
        Field("dueDate", "date"),
        Field("ocr", "string", max_length=30),
        Field("currency", "currency"),
        Field("creditedInvoiceNumber", "integer"),
        Field("invoiceLines", "invoiceLines"),
    ),
    sortable=("invoiceNumber", "invoiceDate"),
)

PROJECT_EXPENSES = EntityType(
    path="projectExpenses",
    label="project expense",
    fields=(
        # Written with projectId, read as project {"id", "projectNumber"} (inferred entity).
        Field("project", "projectRef", required=True, aliases=("projectId",)),
        Field("expenseDate", "date", required=True),
        Field("description", "string", max_length=500),
        Field("supplierName", "string", max_length=200),
        _money_field("amount", required=True),
        _money_field("vatAmount"),
        Field("currency", "currency"),
        Field("accountNumber", "string", max_length=10),
        Field("billable", "boolean"),
        Field("externalReference", "string", max_length=200),
    ),
    unique=("externalReference",),
    sortable=("expenseDate",),
)

FINANCIAL_ACCOUNTS = EntityType(
    path="financialAccounts",
    label="financial account",
    fields=(
        Field("accountNumber", "string", required=True, max_length=10),
        Field("name", "string", required=True, max_length=200),
    ),
    unique=("accountNumber",),
    number_field="accountNumber",
    sortable=("accountNumber",),
)

VAT_CODES = EntityType(
    path="vatCodes",
    label="VAT code",
    fields=(
        Field("code", "string", required=True, max_length=10),
        _money_field("rate", required=True),
    ),
    unique=("code",),
    number_field="code",
    sortable=("code", "rate"),
)

ENTITY_TYPES: dict[str, EntityType] = {
    t.path: t
    for t in (CUSTOMERS, PROJECTS, INVOICES, PROJECT_EXPENSES, FINANCIAL_ACCOUNTS, VAT_CODES)
}


def invalid(entity: EntityType, field: str, problem: str) -> MomentError:
    """A 400 naming the entity and field, with what is wrong."""
    return MomentError(400, f"Validation failed for {entity.label}: field '{field}' {problem}")


def clean(entity: EntityType, body: Any) -> dict[str, Any]:
    """The writable fields of ``body`` checked and normalised (absent fields become null)."""
    if not isinstance(body, Mapping):
        raise MomentError(400, f"Request body for a {entity.label} must be a JSON object")
    cleaned: dict[str, Any] = {}
    for field in entity.fields:
        key = next((k for k in (field.name, *field.aliases) if body.get(k) is not None), None)
        value = None if key is None else body[key]
        if value is None:
            if field.required:
                raise invalid(entity, field.name, "is required")
            cleaned[field.name] = None
            continue
        cleaned[field.name] = _CHECKS[field.kind](entity, field, key or field.name, value)
    return cleaned


def _string(entity: EntityType, field: Field, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(entity, key, f"must be a string, got {type(value).__name__}")
    text: str = value.strip()
    if field.required and not text:
        raise invalid(entity, key, "must not be blank")
    if field.max_length is not None and len(text) > field.max_length:
        raise invalid(entity, key, f"must be at most {field.max_length} characters")
    return text


def _email(entity: EntityType, field: Field, key: str, value: Any) -> str:
    text = _string(entity, field, key, value)
    if text and not _EMAIL.match(text):
        raise invalid(entity, key, f"must be an e-mail address, got {text!r}")
    return text


def _country(entity: EntityType, field: Field, key: str, value: Any) -> str:
    text = _string(entity, field, key, value)
    if not _COUNTRY.match(text):
        raise invalid(entity, key, f"must be an ISO 3166 alpha-2 code such as SE, got {text!r}")
    return text


def _currency(entity: EntityType, field: Field, key: str, value: Any) -> str:
    text = _string(entity, field, key, value)
    if not re.match(r"^[A-Z]{3}$", text):
        raise invalid(entity, key, f"must be an ISO 4217 code such as SEK, got {text!r}")
    return text


def _date(entity: EntityType, field: Field, key: str, value: Any) -> str:
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise invalid(entity, key, f"must be a date YYYY-MM-DD, got {value!r}")


def _integer(entity: EntityType, field: Field, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(entity, key, f"must be an integer, got {value!r}")
    return value


def _number(entity: EntityType, field: Field, key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(entity, key, f"must be a number, got {value!r}")
    return value


def _boolean(entity: EntityType, field: Field, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(entity, key, f"must be true or false, got {value!r}")
    return value


def _enum(entity: EntityType, field: Field, key: str, value: Any) -> str:
    if value not in field.choices:
        raise invalid(entity, key, f"must be one of {', '.join(field.choices)}, got {value!r}")
    return str(value)


def _price_model(entity: EntityType, field: Field, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(entity, key, 'must be an object {"expensesBillable": true|false|null}')
    billable = value.get("expensesBillable")
    if billable is not None and not isinstance(billable, bool):
        raise invalid(
            entity,
            f"{key}.expensesBillable",
            f"must be true, false or null, got {billable!r}",
        )
    return {"expensesBillable": billable}


def _reference(target: str, number_key: str) -> Callable[[EntityType, Field, str, Any], Reference]:
    def check(entity: EntityType, field: Field, key: str, value: Any) -> Reference:
        if key != field.name:  # written as customerId / projectId
            return Reference(target, _integer(entity, field, key, value), None)
        if not isinstance(value, Mapping) or (
            value.get("id") is None and value.get(number_key) is None
        ):
            raise invalid(entity, key, f'must be an object with "id" or "{number_key}"')
        ref_id = value.get("id")
        number = value.get(number_key)
        if ref_id is not None:
            _integer(entity, field, f"{key}.id", ref_id)
        if number is not None and not isinstance(number, str):
            raise invalid(entity, f"{key}.{number_key}", f"must be a string, got {number!r}")
        return Reference(target, ref_id, number)

    return check


_LINE_FIELDS = (
    Field("description", "string", max_length=500),
    Field("quantity", "number", required=True),
    Field("unitPrice", "number", required=True),
    Field("vatRate", "number", required=True),
    Field("accountNumber", "string", required=True, max_length=10),
)


def _invoice_lines(entity: EntityType, field: Field, key: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid(entity, key, "must be a list of lines")
    lines = []
    for index, line in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(line, Mapping):
            raise invalid(entity, where, "must be an object")
        cleaned: dict[str, Any] = {}
        for line_field in _LINE_FIELDS:
            item = line.get(line_field.name)
            name = f"{where}.{line_field.name}"
            if item is None:
                if line_field.required:
                    raise invalid(entity, name, "is required")
                cleaned[line_field.name] = None
            else:
                cleaned[line_field.name] = _CHECKS[line_field.kind](entity, line_field, name, item)
        lines.append(cleaned)
    return lines


_CHECKS: dict[str, Callable[[EntityType, Field, str, Any], Any]] = {
    "string": _string,
    "email": _email,
    "country": _country,
    "currency": _currency,
    "date": _date,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "enum": _enum,
    "priceModel": _price_model,
    "customerRef": _reference("customers", "customerNumber"),
    "projectRef": _reference("projects", "projectNumber"),
    "invoiceLines": _invoice_lines,
}


def luhn_digit(digits: str) -> int:
    """The mod-10 (Luhn) check digit for ``digits``: Swedish OCR and organisation numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def ocr_for(invoice_number: int) -> str:
    """The payment id Moment generates on finalise: number + Luhn digit (inferred format)."""
    return f"{invoice_number}{luhn_digit(str(invoice_number))}"
