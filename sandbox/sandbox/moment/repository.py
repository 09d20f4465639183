"""Moment companies and their records in the shared SQLite document store.

Owns the business rules a client of the real API runs into: ids and numbers that Moment assigns,
unique numbers per company (409), references that must exist (400), server-kept ``createdDate`` /
``lastModifiedDate``, invoice finalisation (number from the series at 7001, then read-only),
expenses that cannot change once invoiced, and paging done in SQL.

Store layout: records of entity ``E`` of company ``C`` are documents ``C/E`` keyed by id; each
unique field ``F`` has a lookup ``C/E#F`` (value -> id) so uniqueness checks and exact filters on
unique fields are one primary-key read however many records a benchmark seeds.

Every committed change is announced to ``MomentData.listeners`` (a ``Change``): the hook that
webhooks (``sandbox.moment.webhooks``) subscribe to.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.moment import clock
from sandbox.moment.errors import MomentError
from sandbox.moment.model import (
    CUSTOMERS,
    ENTITY_TYPES,
    FINANCIAL_ACCOUNTS,
    FIRST_INVOICE_NUMBER,
    INVOICES,
    PROJECT_EXPENSES,
    PROJECTS,
    VAT_CODES,
    EntityType,
    Reference,
    clean,
    invalid,
    ocr_for,
)
from sandbox.store import Document, Filter, Store

DEMO_COMPANY = "demo"
DEMO_API_KEY = "sandbox-key"
_COMPANIES_KEY = "moment:companies"
# Settings, not records: a wipe (reseed) keeps them, as it keeps companies and their keys.
_SETTINGS_KEYS = (_COMPANIES_KEY, "moment:webhooks", "moment:settings")

# Numbers Moment assigns when a client leaves them out (inferred: the UI auto-numbers customers and
# projects, and the number "can be overridden").
_NUMBER_SERIES_START = {"customerNumber": 1001, "projectNumber": 5001}
_FIRST_ID = 100_001  # ids are one series per company, so a customer id is never a project id


@dataclass(frozen=True)
class Change:
    """A committed create, update or delete: what a webhook would announce."""

    company: str
    entity: str
    event: str  # CREATE_NEW, UPDATE or DELETE
    record: Document


Listener = Callable[[Change], None]


@dataclass
class ListQuery:
    """A list request: exact filters on JSON paths, a modified-since bound, a page and an order."""

    exact: dict[str, Any] = field(default_factory=dict)
    modified_from: str | None = None  # sortable UTC form, inclusive
    modified_to: str | None = None  # sortable UTC form, inclusive
    page: int = 0
    size: int = 20
    sort: str = "id"
    descending: bool = False


class MomentData:
    """All Moment companies of one sandbox, with the listeners told about every change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self.ensure_company(DEMO_COMPANY, DEMO_API_KEY, "Demo AB")

    # companies -------------------------------------------------------------------------------
    def companies(self) -> dict[str, dict[str, str]]:
        value: dict[str, dict[str, str]] = self.store.get_value(_COMPANIES_KEY, {})
        return value

    def ensure_company(self, code: str, api_key: str, name: str) -> None:
        """Create company ``code`` with its API key (or reset the key of an existing one)."""
        with self.store.transaction():
            companies = self.companies()
            companies[code] = {"apiKey": api_key, "name": name}
            self.store.set_value(_COMPANIES_KEY, companies)
        self.company(code).ensure_reference_data()

    def company_for_key(self, api_key: str) -> str | None:
        """The company whose API key this is, compared in constant time."""
        for code, company in self.companies().items():
            if hmac.compare_digest(company["apiKey"].encode(), api_key.encode()):
                return code
        return None

    def company(self, code: str) -> Company:
        if code not in self.companies():
            raise MomentError(404, f"Company '{code}' not found")
        return Company(self, code)

    def wipe(self) -> None:
        """Delete every record of every company; companies, keys and webhooks stay."""
        with self.store.transaction():
            companies = self.companies()
            settings = {key: self.store.get_value(key) for key in _SETTINGS_KEYS}
            self.store.clear()
            for key, value in settings.items():
                if value is not None:
                    self.store.set_value(key, value)
        for code in companies:
            self.company(code).ensure_reference_data()

    def emit(self, change: Change) -> None:
        for listener in list(self.listeners):
            listener(change)


# The chart of accounts and VAT codes shared with the Fortnox sandbox (BAS; seed conventions).
REFERENCE_ACCOUNTS: tuple[tuple[str, str], ...] = (
    ("2440", "Leverantörsskulder"),
    ("2641", "Debiterad ingående moms"),
    ("3001", "Försäljning tjänster 25 %"),
    ("3002", "Försäljning tjänster 12 %"),
    ("3003", "Försäljning tjänster 6 %"),
    ("3004", "Försäljning tjänster, export 0 %"),
    ("4010", "Inköp material och varor"),
    ("5010", "Lokalhyra"),
    ("5410", "Förbrukningsinventarier"),
    ("5460", "Förbrukningsmaterial"),
    ("5611", "Drivmedel för personbilar"),
    ("5800", "Resekostnader"),
    ("6110", "Kontorsmateriel"),
    ("6212", "Mobiltelefon"),
    ("6230", "Datakommunikation"),
    ("6540", "IT-tjänster"),
    ("6991", "Övriga externa kostnader, avdragsgilla"),
)
REFERENCE_VAT_CODES: tuple[tuple[str, int], ...] = (("MP1", 25), ("MP2", 12), ("MP3", 6), ("MF", 0))


class Company:
    """One Moment company (database): CRUD with its rules, invoice finalisation, lists."""

    def __init__(self, data: MomentData, code: str) -> None:
        self.data, self.code, self.store = data, code, data.store
        # VAT rates checked on every invoice line, read once per Company (one request or seed).
        self._vat_rates: set[float] | None = None
        # Reads memoised during a bulk insert only (the seed resolves the same customers,
        # projects and accounts over and over); None outside one.
        self._bulk_reads: dict[tuple[str, str], Document | None] | None = None

    def _read(self, kind: str, key: str) -> Document | None:
        if self._bulk_reads is None:
            return self.store.get(kind, key)
        if (kind, key) not in self._bulk_reads:
            self._bulk_reads[kind, key] = self.store.get(kind, key)
        doc = self._bulk_reads[kind, key]
        return None if doc is None else dict(doc)

    # naming in the store ---------------------------------------------------------------------
    def _kind(self, entity: EntityType) -> str:
        return f"{self.code}/{entity.path}"

    def _index(self, entity: EntityType, field_name: str) -> str:
        return f"{self.code}/{entity.path}#{field_name}"

    def _series(self, name: str) -> str:
        return f"{self.code}:{name}"

    # reads -----------------------------------------------------------------------------------
    def get(self, entity: EntityType, record_id: int | str) -> Document:
        doc = self._read(self._kind(entity), str(record_id))
        if doc is None:
            raise MomentError(404, f"No {entity.label} with id {record_id} in company {self.code}")
        return doc

    def find_unique(self, entity: EntityType, field_name: str, value: Any) -> Document | None:
        """The record whose unique ``field_name`` equals ``value``, or None."""
        pointer = self._read(self._index(entity, field_name), str(value))
        return None if pointer is None else self._read(self._kind(entity), str(pointer["id"]))

    def by_number(self, entity: EntityType, number: str) -> Document:
        assert entity.number_field is not None
        doc = self.find_unique(entity, entity.number_field, number)
        if doc is None:
            raise MomentError(404, f"No {entity.label} with {entity.number_field} '{number}'")
        return doc

    def count(self, entity: EntityType) -> int:
        return self.store.count(self._kind(entity))

    def page(self, entity: EntityType, query: ListQuery) -> tuple[list[Document], int]:
        """One page of records and the total that match, paged and filtered in SQL."""
        for path, value in query.exact.items():
            if path in entity.unique or path == "invoiceNumber":
                # A unique field names at most one record: one key read, then the rest in Python.
                doc = self.find_unique(entity, path, value)
                found = [doc] if doc is not None and _matches(doc, query) else []
                start = query.page * query.size
                return found[start : start + query.size], len(found)
        filters = [Filter(path, "=", value) for path, value in query.exact.items()]
        if query.modified_from is not None:
            filters.append(Filter("modified", ">=", query.modified_from))
        if query.modified_to is not None:
            filters.append(Filter("modified", "<=", query.modified_to))
        kind = self._kind(entity)
        # Records are inserted in id order (ids are allocated inside the insert's transaction),
        # so the insertion sequence is the id order and uses the index.
        order = {"id": "seq", "lastModifiedDate": "modified"}.get(query.sort, query.sort)
        total = self.store.count(kind, filters)
        docs = self.store.list(
            kind,
            filters,
            order_by=order,
            descending=query.descending,
            limit=query.size,
            offset=query.page * query.size,
        )
        return docs, total

    # writes ----------------------------------------------------------------------------------
    def create(
        self,
        entity: EntityType,
        body: Any,
        *,
        at: datetime | None = None,
        modified_at: datetime | None = None,
    ) -> Document:
        """Create a record from a request body.

        ``at`` and ``modified_at`` fix its timestamps, for the deterministic seed only.
        """
        fields = clean(entity, body)
        created = at or clock.now()
        when = modified_at or created
        with self.store.transaction():
            doc = self._complete(entity, fields, existing=None)
            doc_id = self.store.next_number(self._series("id"), _FIRST_ID)
            record = {
                "id": doc_id,
                **doc,
                "createdDate": clock.timestamp(created),
                "lastModifiedDate": clock.timestamp(when),
            }
            self._claim_unique(entity, record, previous=None)
            self._put(entity, record, when)
        self.data.emit(Change(self.code, entity.path, "CREATE_NEW", record))
        return record

    def bulk_create(
        self, entity: EntityType, rows: Iterable[tuple[Any, datetime, datetime]]
    ) -> list[Document]:
        """Create many ``(body, created, modified)`` at once, with the rules of ``create``.

        For the seed (100,000 records in seconds): one id block, one multi-row insert per table,
        and uniqueness checked in the batch (plus against stored records when there are any).
        No change events: seeding is not a user's change.
        """
        with self.store.transaction():
            self._bulk_reads = {}
            try:
                return self._bulk_insert(entity, rows)
            finally:
                self._bulk_reads = None

    def _bulk_insert(
        self, entity: EntityType, rows: Iterable[tuple[Any, datetime, datetime]]
    ) -> list[Document]:
        check_stored = self.count(entity) > 0
        seen: dict[str, set[Any]] = {unique: set() for unique in entity.unique}
        records: list[Document] = []
        for body, created, modified in rows:
            record = {"id": 0, **self._complete(entity, clean(entity, body), existing=None)}
            record["createdDate"] = clock.timestamp(created)
            record["lastModifiedDate"] = clock.timestamp(modified)
            for unique, values in seen.items():
                value = record.get(unique)
                if value is None:
                    continue
                if value in values or (
                    check_stored and self.find_unique(entity, unique, value) is not None
                ):
                    raise MomentError(
                        409, f"A {entity.label} with {unique} '{value}' already exists"
                    )
                values.add(value)
            records.append(record)
        first = self._reserve_ids(len(records))
        for offset, record in enumerate(records):
            record["id"] = first + offset
        self.store.put_many(
            self._kind(entity),
            ((r["id"], r, clock.sortable_from_timestamp(r["lastModifiedDate"])) for r in records),
        )
        for unique in entity.unique:
            self.store.put_many(
                self._index(entity, unique),
                ((r[unique], {"id": r["id"]}, "") for r in records if r[unique] is not None),
            )
        return records

    def finalize_many(self, invoices: Iterable[tuple[Document, datetime]]) -> list[Document]:
        """Finalise many drafts in order, at the given instants (the seed's bulk path)."""
        with self.store.transaction():
            done = []
            for invoice, when in invoices:
                if invoice["invoiceState"] != "DRAFT" or not invoice["invoiceLines"]:
                    raise MomentError(409, f"Invoice id {invoice['id']} cannot be finalized")
                number = self.store.next_number(self._series("invoiceNumber"), FIRST_INVOICE_NUMBER)
                done.append(_finalized(invoice, number, when))
            self.store.put_many(
                self._kind(INVOICES),
                ((i["id"], i, clock.sortable_from_timestamp(i["lastModifiedDate"])) for i in done),
            )
            self.store.put_many(
                self._index(INVOICES, "invoiceNumber"),
                ((i["invoiceNumber"], {"id": i["id"]}, "") for i in done),
            )
        return done

    def _reserve_ids(self, count: int) -> int:
        """The first of ``count`` consecutive new ids."""
        series = self._series("id")
        with self.store.transaction():
            last = int(self.store.get_value(f"series:{series}", _FIRST_ID - 1))
            self.store.set_value(f"series:{series}", last + count)
        return last + 1

    def replace(self, entity: EntityType, record_id: int | str, body: Any) -> Document:
        """PUT: the writable fields become exactly those in ``body``."""
        return self._update(entity, record_id, lambda _existing: body)

    def merge(self, entity: EntityType, record_id: int | str, body: Any) -> Document:
        """PATCH: the fields in ``body`` change, the rest stay."""
        if not isinstance(body, Mapping):
            raise MomentError(400, f"Request body for a {entity.label} must be a JSON object")

        def merged(existing: Document) -> dict[str, Any]:
            base = _writable_view(entity, existing)
            for entity_field in entity.fields:
                if any(key in body for key in (entity_field.name, *entity_field.aliases)):
                    base.pop(entity_field.name, None)
            return {**base, **body}

        return self._update(entity, record_id, merged)

    def delete(self, entity: EntityType, record_id: int | str) -> Document:
        with self.store.transaction():
            existing = self.get(entity, record_id)
            self._check_writable(entity, existing)
            self._check_unreferenced(entity, existing)
            for unique in entity.unique:
                if existing.get(unique) is not None:
                    self.store.delete(self._index(entity, unique), str(existing[unique]))
            self.store.delete(self._kind(entity), str(existing["id"]))
            self._vat_rates = None
        self.data.emit(Change(self.code, entity.path, "DELETE", existing))
        return existing

    def finalize_invoice(self, record_id: int | str, *, at: datetime | None = None) -> Document:
        """Give a draft invoice the next number of the series and make it read-only.

        The path ``POST invoices/{id}/finalize`` is inferred: the real finalise action is not
        documented. The OCR Moment generates is the invoice number plus a Luhn digit (inferred).
        """
        with self.store.transaction():
            invoice = self.get(INVOICES, record_id)
            if invoice["invoiceState"] == "FINALIZED":
                raise MomentError(
                    409,
                    f"Invoice {invoice['invoiceNumber']} (id {invoice['id']}) is already finalized",
                )
            if not invoice["invoiceLines"]:
                raise invalid(INVOICES, "invoiceLines", "must hold at least one line to finalize")
            number = self.store.next_number(self._series("invoiceNumber"), FIRST_INVOICE_NUMBER)
            while self.find_unique(INVOICES, "invoiceNumber", number) is not None:
                number = self.store.next_number(self._series("invoiceNumber"))
            when = at or _later_than(invoice)
            invoice = _finalized(invoice, number, when)
            self.store.put(
                self._index(INVOICES, "invoiceNumber"), str(number), {"id": invoice["id"]}
            )
            self._put(INVOICES, invoice, when)
        self.data.emit(Change(self.code, INVOICES.path, "UPDATE", invoice))
        return invoice

    def set_invoiced(
        self, record_id: int | str, invoiced: bool, *, at: datetime | None = None
    ) -> Document:
        """Mark an expense invoiced (as invoicing it in Moment would) or not."""
        with self.store.transaction():
            expense = self.get(PROJECT_EXPENSES, record_id)
            when = at or _later_than(expense)
            expense.update(invoiced=invoiced, lastModifiedDate=clock.timestamp(when))
            self._put(PROJECT_EXPENSES, expense, when)
        self.data.emit(Change(self.code, PROJECT_EXPENSES.path, "UPDATE", expense))
        return expense

    def ensure_reference_data(self) -> None:
        """The BAS accounts and VAT codes every company has (equal to Fortnox's, by convention)."""
        if self.count(FINANCIAL_ACCOUNTS) or self.count(VAT_CODES):
            return
        with self.store.transaction():
            at = clock.parse_instant("2024-01-01T08:00:00")
            for number, name in REFERENCE_ACCOUNTS:
                self.create(FINANCIAL_ACCOUNTS, {"accountNumber": number, "name": name}, at=at)
            for code, rate in REFERENCE_VAT_CODES:
                self.create(VAT_CODES, {"code": code, "rate": rate}, at=at)

    # internals -------------------------------------------------------------------------------
    def _update(
        self,
        entity: EntityType,
        record_id: int | str,
        body_for: Callable[[Document], Any],
    ) -> Document:
        with self.store.transaction():
            existing = self.get(entity, record_id)
            self._check_writable(entity, existing)
            fields = clean(entity, body_for(existing))
            doc = self._complete(entity, fields, existing=existing)
            when = _later_than(existing)
            record = {
                **existing,
                **doc,
                "createdDate": existing["createdDate"],
                "lastModifiedDate": clock.timestamp(when),
            }
            self._claim_unique(entity, record, previous=existing)
            self._put(entity, record, when)
            self._cascade_number(entity, existing, record)
        self.data.emit(Change(self.code, entity.path, "UPDATE", record))
        return record

    def _put(self, entity: EntityType, record: Document, when: datetime) -> None:
        if entity is VAT_CODES:
            self._vat_rates = None
        self.store.put(self._kind(entity), str(record["id"]), record, clock.sortable(when))

    def _check_writable(self, entity: EntityType, existing: Document) -> None:
        # Inferred: a finalised invoice changes only by a credit invoice (documented rule), and an
        # invoiced expense is locked; the API refuses both as a conflict with the record's state.
        if entity is INVOICES and existing["invoiceState"] == "FINALIZED":
            raise MomentError(
                409,
                f"Invoice {existing['invoiceNumber']} (id {existing['id']}) is finalized and "
                "read-only; create a credit invoice (creditedInvoiceNumber) instead",
            )
        if entity is PROJECT_EXPENSES and existing.get("invoiced"):
            raise MomentError(
                409,
                f"Project expense {existing['id']} is invoiced and read-only; "
                "credit the invoice in Moment before changing it",
            )

    def _check_unreferenced(self, entity: EntityType, existing: Document) -> None:
        users = {
            CUSTOMERS.path: ((PROJECTS, "customer.id"), (INVOICES, "customer.id")),
            PROJECTS.path: ((INVOICES, "project.id"), (PROJECT_EXPENSES, "project.id")),
        }.get(entity.path, ())
        for user, path in users:
            if self.store.count(self._kind(user), [Filter(path, "=", existing["id"])]):
                raise MomentError(
                    409,
                    f"{entity.label.capitalize()} {existing['id']} is used by {user.path}; "
                    f"delete or move those first",
                )

    def _claim_unique(
        self, entity: EntityType, record: Document, previous: Document | None
    ) -> None:
        for unique in entity.unique:
            value, old = record.get(unique), (previous or {}).get(unique)
            if value == old and previous is not None:
                continue
            if value is not None:
                holder = self.find_unique(entity, unique, value)
                if holder is not None and holder["id"] != record["id"]:
                    raise MomentError(
                        409,
                        f"A {entity.label} with {unique} '{value}' already exists "
                        f"(id {holder['id']}); {unique} is unique per company",
                    )
                self.store.put(self._index(entity, unique), str(value), {"id": record["id"]})
            if old is not None and old != value:
                self.store.delete(self._index(entity, unique), str(old))

    def _complete(
        self, entity: EntityType, fields: dict[str, Any], existing: Document | None
    ) -> dict[str, Any]:
        """Resolve references, fill server-side defaults and check cross-record rules."""
        doc = dict(fields)
        for key, value in fields.items():
            if isinstance(value, Reference):
                doc[key] = self._resolve(entity, key, value)
        if entity.number_field and doc.get(entity.number_field) is None:
            doc[entity.number_field] = (
                existing[entity.number_field]
                if existing is not None
                else self._next_free_number(entity, entity.number_field)
            )
        if entity is CUSTOMERS:
            doc["countryCode"] = doc["countryCode"] or "SE"  # inferred: the company's country
        elif entity is PROJECTS:
            doc["projectState"] = doc["projectState"] or "PLANNED"
            doc["priceModel"] = doc["priceModel"] or {"expensesBillable": None}
            if doc["startDate"] and doc["endDate"] and doc["endDate"] < doc["startDate"]:
                raise invalid(entity, "endDate", "must not be before startDate")
        elif entity is INVOICES:
            self._complete_invoice(doc, existing)
        elif entity is PROJECT_EXPENSES:
            self._complete_expense(doc, existing)
        return doc

    def _complete_invoice(self, doc: dict[str, Any], existing: Document | None) -> None:
        doc["currency"] = doc["currency"] or "SEK"
        doc["invoiceLines"] = doc["invoiceLines"] or []
        doc["invoiceNumber"] = None if existing is None else existing["invoiceNumber"]
        doc["invoiceState"] = "DRAFT" if existing is None else existing["invoiceState"]
        project = doc["project"]
        if project is not None:
            owner = self.get(PROJECTS, project["id"])["customer"]
            if owner["id"] != doc["customer"]["id"]:
                raise invalid(
                    INVOICES,
                    "project",
                    f"project {project['projectNumber']} belongs to customer "
                    f"{owner['customerNumber']}, not {doc['customer']['customerNumber']}",
                )
        credited = doc["creditedInvoiceNumber"]
        if credited is not None:
            original = self.find_unique(INVOICES, "invoiceNumber", credited)
            if original is None:
                raise invalid(
                    INVOICES, "creditedInvoiceNumber", f"names no finalized invoice ({credited})"
                )
        if self._vat_rates is None:
            self._vat_rates = {float(v["rate"]) for v in self._all(VAT_CODES)}
        rates = self._vat_rates
        for index, line in enumerate(doc["invoiceLines"]):
            where = f"invoiceLines[{index}]"
            if float(line["vatRate"]) not in rates:
                raise invalid(
                    INVOICES,
                    f"{where}.vatRate",
                    f"{line['vatRate']} matches no VAT code (rates: {sorted(rates)})",
                )
            self._check_account(INVOICES, f"{where}.accountNumber", line["accountNumber"])

    def _complete_expense(self, doc: dict[str, Any], existing: Document | None) -> None:
        doc["currency"] = doc["currency"] or "SEK"
        doc["vatAmount"] = doc["vatAmount"] if doc["vatAmount"] is not None else 0
        doc["invoiced"] = False if existing is None else existing.get("invoiced", False)
        if doc["accountNumber"] is not None:
            self._check_account(PROJECT_EXPENSES, "accountNumber", doc["accountNumber"])
        if doc["billable"] is None:
            # Inferred: an expense without a billable flag takes its project's price model,
            # and is billable when the price model does not say (Moment's default setting).
            project = self.get(PROJECTS, doc["project"]["id"])
            setting = (project.get("priceModel") or {}).get("expensesBillable")
            doc["billable"] = True if setting is None else setting

    def _check_account(self, entity: EntityType, where: str, account: str) -> None:
        if self.find_unique(FINANCIAL_ACCOUNTS, "accountNumber", account) is None:
            raise invalid(
                entity, where, f"account {account} is not in financialAccounts; add it first"
            )

    def _all(self, entity: EntityType) -> list[Document]:
        return self.store.list(self._kind(entity))

    def _resolve(self, entity: EntityType, key: str, ref: Reference) -> dict[str, Any]:
        target = ENTITY_TYPES[ref.entity]
        number_field = target.number_field
        assert number_field is not None
        by_id = None if ref.id is None else self._read(self._kind(target), str(ref.id))
        by_number = (
            None if ref.number is None else self.find_unique(target, number_field, ref.number)
        )
        if ref.id is not None and by_id is None:
            raise invalid(entity, f"{key}.id", f"names no {target.label} (id {ref.id})")
        if ref.number is not None and by_number is None:
            raise invalid(
                entity, f"{key}.{number_field}", f"names no {target.label} ('{ref.number}')"
            )
        if by_id is not None and by_number is not None and by_id["id"] != by_number["id"]:
            raise invalid(
                entity,
                key,
                f"id {ref.id} and {number_field} '{ref.number}' name different {target.path}",
            )
        found = by_id or by_number
        assert found is not None
        return {"id": found["id"], number_field: found[number_field]}

    def _next_free_number(self, entity: EntityType, field_name: str) -> str:
        series = self._series(field_name)
        number = self.store.next_number(series, _NUMBER_SERIES_START.get(field_name, 1))
        while self.find_unique(entity, field_name, str(number)) is not None:
            number = self.store.next_number(series)
        return str(number)

    def set_series(self, name: str, last: int) -> None:
        """Set the last used number of a series (the seed numbers records itself)."""
        self.store.set_value(self._series(name), last)

    def _cascade_number(self, entity: EntityType, before: Document, after: Document) -> None:
        # A changed customer/project number is copied into the references that embed it, so a
        # reader never sees a stale number. Inferred: the referencing records' lastModifiedDate
        # does not move (they did not change in Moment's own model, which stores the id).
        number_field = entity.number_field
        if entity not in (CUSTOMERS, PROJECTS) or number_field is None:
            return
        if before[number_field] == after[number_field]:
            return
        ref_key = "customer" if entity is CUSTOMERS else "project"
        users = (PROJECTS, INVOICES) if entity is CUSTOMERS else (INVOICES, PROJECT_EXPENSES)
        for user in users:
            kind = self._kind(user)
            for doc in self.store.list(kind, [Filter(f"{ref_key}.id", "=", after["id"])]):
                doc[ref_key][number_field] = after[number_field]
                self.store.put(
                    kind,
                    str(doc["id"]),
                    doc,
                    clock.sortable_from_timestamp(doc["lastModifiedDate"]),
                )


def _later_than(record: Document) -> datetime:
    """Now, but at least a millisecond after ``record`` last changed.

    Every change moves lastModifiedDate forward even when two land in the same millisecond, so
    an incremental reader with an inclusive bookmark always sees the newer version.
    """
    current = clock.now()
    previous = clock.parse_instant(record["lastModifiedDate"])
    return current if current > previous else previous + timedelta(milliseconds=1)


def _finalized(invoice: Document, number: int, when: datetime) -> Document:
    """``invoice`` finalised as number ``number`` at ``when``: dates and OCR filled if missing."""
    invoice_date = invoice["invoiceDate"] or when.date().isoformat()
    due_date = invoice["dueDate"] or (date.fromisoformat(invoice_date) + timedelta(days=30))
    return {
        **invoice,
        "invoiceNumber": number,
        "invoiceState": "FINALIZED",
        "invoiceDate": invoice_date,
        "dueDate": str(due_date),
        "ocr": invoice["ocr"] or ocr_for(number),
        "lastModifiedDate": clock.timestamp(when),
    }


def _writable_view(entity: EntityType, existing: Document) -> dict[str, Any]:
    """An existing record as a request body (references by id), for PATCH to merge into."""
    return {name: existing.get(name) for name in entity.field_names()}


def _matches(doc: Document, query: ListQuery) -> bool:
    for path, expected in query.exact.items():
        value: Any = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value != expected:
            return False
    modified = clock.sortable_from_timestamp(doc["lastModifiedDate"])
    if query.modified_from is not None and modified < query.modified_from:
        return False
    return query.modified_to is None or modified <= query.modified_to
