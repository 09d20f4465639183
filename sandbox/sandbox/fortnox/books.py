"""The company's books in the sandbox, with Fortnox's rules.

They are the registers (customers, projects, suppliers), customer and supplier invoices, accounts,
financial years and company information.

Every write stamps the store's ``modified`` column with Stockholm local time: that is the internal
LastModified the ``lastmodified`` list filter uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sandbox.fortnox import fields as F
from sandbox.fortnox.errors import (
    ACCOUNT_NOT_FOUND,
    COST_CENTER_MANDATORY,
    CUSTOMER_NUMBER_USED,
    MISSING_FIELDS,
    NOT_ALPHANUMERIC,
    NOT_BALANCED,
    NOT_FOUND,
    NOT_NUMERIC,
    WRONG_DATA,
    FortnoxError,
)
from sandbox.fortnox.formats import (
    check_organisation_number,
    check_text,
    money,
    now_local,
    ocr_for,
    today_local,
)
from sandbox.fortnox.listing import ListSpec, list_response, present, sort_key
from sandbox.fortnox.oauth import TENANT_ID, tenant_id_of
from sandbox.fortnox.settings import SandboxSettings
from sandbox.store import Filter, Store

CUSTOMERS, PROJECTS, SUPPLIERS = "customer", "project", "supplier"
INVOICES, SUPPLIER_INVOICES = "invoice", "supplierinvoice"
ACCOUNTS, FINANCIAL_YEARS, COMPANY = "account", "financialyear", "company"
RESERVED_CUSTOMER_NUMBERS = "customer_number_reserved"
VAT_RATES = (25.0, 12.0, 6.0, 0.0)
PAYABLES_ACCOUNT, INPUT_VAT_ACCOUNT, DEFAULT_SALES_ACCOUNT = 2440, 2641, 3001
# Fortnox-only number series start above the numbers Moment owns (see the seed conventions).
CUSTOMER_SERIES_START, PROJECT_SERIES_START, INVOICE_SERIES_START = 90000, 9001, 90000
_CUSTOMER_NUMBER = re.compile(r"[A-Za-z0-9–+/_-]+")
# An invoice without a credit invoice answers CreditInvoiceReference "0" (docs/FORTNOX-WRITES.md).
NO_REFERENCE = "0"


def not_found(what: str, key: str) -> FortnoxError:
    """Fortnox's 404 error for a ``what`` (e.g. a customer) with the number ``key``."""
    return FortnoxError(NOT_FOUND, f"Kan inte hitta {what} {key!r} (not found)", 404)


class Register:
    """Common handling of one keyed resource: get, list, save with a new LastModified."""

    def __init__(self, store: Store, spec: ListSpec, label: str) -> None:
        self.store, self.spec, self.label = store, spec, label

    def load(self, key: str) -> dict[str, Any]:
        doc = self.store.get(self.spec.entity, key)
        if doc is None:
            raise not_found(self.label, key)
        return doc

    def get(self, key: str) -> dict[str, Any]:
        return present(self.load(key), self.spec.path, key)

    def list(self) -> dict[str, Any]:
        return list_response(self.store, self.spec)

    def save(self, key: str, doc: dict[str, Any], modified: str | None = None) -> dict[str, Any]:
        doc["_sort"] = sort_key(key)
        self.store.put(self.spec.entity, key, doc, modified=modified or now_local())
        return present(doc, self.spec.path, key)

    def next_free(self, series: str, start: int) -> str:
        while True:
            number = str(self.store.next_number(series, start))
            if not self.store.exists(self.spec.entity, number):
                return number


def _required_text(doc: dict[str, Any], field: str, resource: str) -> None:
    if not str(doc.get(field) or "").strip():
        raise FortnoxError(MISSING_FIELDS, f"{resource}: fältet {field} måste anges (required)")


class MasterDataRegister(Register):
    """Customers, projects and suppliers: the registers that number their records.

    A record is created with the number the body gives (checked, never taken twice) or the next
    free one in the register's series, and written only through the fields Fortnox lets a client
    set. Subclasses say which resource and series they are.
    """

    resource: str  # the envelope name ("Customer"), also in error messages
    schema: dict[str, F.Check | str]
    read_only: frozenset[str]
    defaults: dict[str, Any]
    number_field: str  # "CustomerNumber"
    number_label: str  # Swedish, as Fortnox words its errors: "Kundnummer"
    number_max_length: int
    series: str
    series_start: int

    def check(self, doc: dict[str, Any]) -> None:
        """Fortnox's rules for a complete document; most registers require a name."""
        _required_text(doc, "Name", self.resource)

    def check_new_number(self, number: str) -> None:
        """Refuse a number the body gives that may not be used."""
        if self.store.exists(self.spec.entity, number):
            raise FortnoxError(WRONG_DATA, f"{self.number_label} {number} används redan")

    def check_number_kept(self, number: str, body: dict[str, Any]) -> None:
        """Refuse an update that would change the number (where Fortnox says so)."""

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        doc = F.apply_fields(self.resource, self.schema, self.read_only, body, dict(self.defaults))
        self.check(doc)
        with self.store.transaction():
            number = body.get(self.number_field)
            if number in (None, ""):
                number = self.next_free(self.series, self.series_start)
            else:
                number = check_text(self.number_field, number, self.number_max_length)
                self.check_new_number(number)
            doc[self.number_field] = number
            return self.save(number, doc)

    def update(self, number: str, body: dict[str, Any]) -> dict[str, Any]:
        self.check_number_kept(number, body)
        with self.store.transaction():
            doc = F.apply_fields(
                self.resource, self.schema, self.read_only, body, self.load(number)
            )
            self.check(doc)
            return self.save(number, doc)


class Customers(MasterDataRegister):
    """The customer register (``/3/customers``)."""

    resource, number_field, number_label = "Customer", "CustomerNumber", "Kundnummer"
    schema, read_only, defaults = F.CUSTOMER_SCHEMA, F.CUSTOMER_READ_ONLY, F.CUSTOMER_DEFAULTS
    number_max_length, series, series_start = 1024, "customer", CUSTOMER_SERIES_START

    def __init__(self, store: Store) -> None:
        spec = ListSpec(
            entity=CUSTOMERS,
            path="customers",
            plural="Customers",
            key_field="CustomerNumber",
            fields=F.CUSTOMER_LIST,
            sort_fields={"customernumber": "_sort", "name": "Name"},
            search_fields={
                p.lower(): p
                for p in (
                    "CustomerNumber",
                    "Name",
                    "ZipCode",
                    "City",
                    "Email",
                    "OrganisationNumber",
                )
            }
            | {"phone": "Phone1"},
            named_filters={
                "active": lambda: [Filter("Active", "=", True)],
                "inactive": lambda: [Filter("Active", "=", False)],
            },
            derived=lambda doc: {"Phone": doc.get("Phone1", "")},
        )
        super().__init__(store, spec, "kund")

    def check(self, doc: dict[str, Any]) -> None:
        super().check(doc)
        check_organisation_number(
            "OrganisationNumber", doc.get("OrganisationNumber") or "", doc.get("CountryCode") or ""
        )

    def check_new_number(self, number: str) -> None:
        if not _CUSTOMER_NUMBER.fullmatch(number):
            raise FortnoxError(
                NOT_ALPHANUMERIC,
                f"Kundnummer {number!r} får bara innehålla bokstäver, siffror och – + / _",
            )
        if self.store.exists(CUSTOMERS, number) or self.store.exists(
            RESERVED_CUSTOMER_NUMBERS, number
        ):
            raise FortnoxError(
                CUSTOMER_NUMBER_USED,
                f"Kundnummer {number} används redan. Numret kan vara reserverat av en "
                "borttagen kund (customer number already used, also after deletion)",
            )

    def check_number_kept(self, number: str, body: dict[str, Any]) -> None:
        if body.get("CustomerNumber") not in (None, "", number):
            raise FortnoxError(WRONG_DATA, "Kundnumret kan inte ändras (CustomerNumber is fixed)")

    def delete(self, number: str) -> None:
        with self.store.transaction():
            self.load(number)
            self.store.delete(CUSTOMERS, number)
            # Fortnox keeps a deleted customer's number reserved (2000637 on reuse).
            self.store.put(
                RESERVED_CUSTOMER_NUMBERS, number, {"CustomerNumber": number}, modified=now_local()
            )


class Projects(MasterDataRegister):
    """The project register (``/3/projects``)."""

    resource, number_field, number_label = "Project", "ProjectNumber", "Projektnummer"
    schema, read_only, defaults = F.PROJECT_SCHEMA, F.PROJECT_READ_ONLY, F.PROJECT_DEFAULTS
    number_max_length, series, series_start = 20, "project", PROJECT_SERIES_START

    def __init__(self, store: Store) -> None:
        spec = ListSpec(
            entity=PROJECTS,
            path="projects",
            plural="Projects",
            key_field="ProjectNumber",
            fields=F.PROJECT_LIST,
            sort_fields={"projectnumber": "_sort", "description": "Description"},
            search_fields={"description": "Description"},
            named_filters={
                "notstarted": lambda: [Filter("Status", "=", "NOTSTARTED")],
                "ongoing": lambda: [Filter("Status", "=", "ONGOING")],
                "completed": lambda: [Filter("Status", "=", "COMPLETED")],
            },
        )
        super().__init__(store, spec, "projekt")

    def check(self, doc: dict[str, Any]) -> None:
        _required_text(doc, "Description", "Project")
        if doc["StartDate"] and doc["EndDate"] and doc["EndDate"] < doc["StartDate"]:
            raise FortnoxError(
                WRONG_DATA, "Project: EndDate är före StartDate (EndDate < StartDate)"
            )

    def check_number_kept(self, number: str, body: dict[str, Any]) -> None:
        if str(body.get("ProjectNumber") or number) != number:
            raise FortnoxError(WRONG_DATA, "Projektnumret kan inte ändras (ProjectNumber is fixed)")

    def delete(self, number: str) -> None:
        with self.store.transaction():
            self.load(number)
            self.store.delete(PROJECTS, number)


class Suppliers(MasterDataRegister):
    """The supplier register (``/3/suppliers``)."""

    resource, number_field, number_label = "Supplier", "SupplierNumber", "Leverantörsnummer"
    schema, read_only, defaults = F.SUPPLIER_SCHEMA, F.SUPPLIER_READ_ONLY, F.SUPPLIER_DEFAULTS
    number_max_length, series, series_start = 1024, "supplier", 1

    def __init__(self, store: Store) -> None:
        spec = ListSpec(
            entity=SUPPLIERS,
            path="suppliers",
            plural="Suppliers",
            key_field="SupplierNumber",
            fields=F.SUPPLIER_LIST,
            sort_fields={"suppliernumber": "_sort", "name": "Name"},
            search_fields={
                "name": "Name",
                "suppliernumber": "SupplierNumber",
                "organisationnumber": "OrganisationNumber",
            },
            named_filters={
                "active": lambda: [Filter("Active", "=", True)],
                "inactive": lambda: [Filter("Active", "=", False)],
            },
            derived=lambda doc: {"Phone": doc.get("Phone1", "")},
        )
        super().__init__(store, spec, "leverantör")


def _require_account(store: Store, number: int, where: str) -> dict[str, Any]:
    account = store.get(ACCOUNTS, number)
    if account is None:
        raise FortnoxError(
            ACCOUNT_NOT_FOUND,
            f"Kunde inte hitta konto {number} ({where}: account {number} does not exist in the "
            "chart of accounts)",
        )
    return account


def _require_project(store: Store, number: str, where: str) -> None:
    if number and not store.exists(PROJECTS, number):
        raise FortnoxError(
            NOT_FOUND, f"Kan inte hitta projekt {number!r} ({where}: create the project first)"
        )


def check_account_rules(
    account: dict[str, Any], project: str, cost_center: str, where: str
) -> None:
    """An account's ProjectSettings / CostCenterSettings (``ALLOWED|MANDATORY|NOTALLOWED``).

    The cost-centre wording and code 2000946 are seen in real answers; the project wordings come
    from integrators' help pages and their code is not published, so 2001392 stands in (inferred;
    docs/FORTNOX_PROJECTS.md).
    """
    number = account["Number"]
    rules = (
        ("ProjectSettings", project, "Projekt", WRONG_DATA),
        ("CostCenterSettings", cost_center, "Kostnadsställe", COST_CENTER_MANDATORY),
    )
    for setting, value, label, mandatory_code in rules:
        rule = account.get(setting) or "ALLOWED"
        if rule == "MANDATORY" and not value:
            raise FortnoxError(
                mandatory_code,
                f"{label} är obligatoriskt på konto: {number} ({where}: account {number} has "
                f"{setting} MANDATORY)",
            )
        if rule == "NOTALLOWED" and value:
            raise FortnoxError(
                WRONG_DATA,
                f"{label} är inte tillåtet på konto: {number} ({where}: account {number} has "
                f"{setting} NOTALLOWED, {value!r} sent)",
            )


def check_project_period(store: Store, number: str, day: str, where: str) -> None:
    """A project takes postings dated within its StartDate–EndDate (either may be empty)."""
    project = store.get(PROJECTS, number)
    if project is None:
        return
    start, end = project.get("StartDate") or "", project.get("EndDate") or ""
    if (start and day < start) or (end and day > end):
        raise FortnoxError(
            WRONG_DATA,
            f"Projektredovisningsperioden är inte aktiv för projekt {number} ({where}: {day} is "
            f"outside the project's period {start or '…'} – {end or '…'})",
        )


# The ``filter`` values customer and supplier invoices answer alike (their "unpaid" ones differ).
_INVOICE_STATE_FILTERS: dict[str, Callable[[], list[Filter]]] = {
    "cancelled": lambda: [Filter("Cancelled", "=", True)],
    "unbooked": lambda: [Filter("Booked", "=", False), Filter("Cancelled", "=", False)],
    "fullypaid": lambda: [Filter("Booked", "=", True), Filter("Balance", "=", 0)],
}


def _payment_dates(doc: dict[str, Any]) -> None:
    """Fortnox's defaults for an invoice of either kind: dated today, due 30 days later."""
    if not doc["InvoiceDate"]:
        doc["InvoiceDate"] = today_local().isoformat()
    if not doc["DueDate"]:
        doc["DueDate"] = (date.fromisoformat(doc["InvoiceDate"]) + timedelta(days=30)).isoformat()
    doc["FinalPayDate"] = doc["DueDate"]


class Invoices(Register):
    """Customer invoices (``/3/invoices``): rows, booking, cancelling and Fortnox's checks."""

    ROW_FIELDS = (
        "RowId",
        "AccountNumber",
        "Description",
        "DeliveredQuantity",
        "Price",
        "VAT",
        "Unit",
        "Discount",
        "DiscountType",
        "Project",
        "CostCenter",
        "Total",
        "TotalExcludingVAT",
        "PriceExcludingVAT",
    )

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        spec = ListSpec(
            entity=INVOICES,
            path="invoices",
            plural="Invoices",
            key_field="DocumentNumber",
            fields=F.INVOICE_LIST,
            sort_fields={
                "documentnumber": "_sort",
                "customernumber": "CustomerNumber",
                "customername": "CustomerName",
                "invoicedate": "InvoiceDate",
                "ocr": "OCR",
                "total": "Total",
            },
            search_fields={
                "customernumber": "CustomerNumber",
                "project": "Project",
                "ocr": "OCR",
                "documentnumber": "DocumentNumber",
                "costcenter": "CostCenter",
                "customername": "CustomerName",
            },
            named_filters=_INVOICE_STATE_FILTERS
            | {
                "unpaid": lambda: [Filter("Booked", "=", True), Filter("Balance", "!=", 0)],
                "unpaidoverdue": lambda: [
                    Filter("Booked", "=", True),
                    Filter("Balance", "!=", 0),
                    Filter("DueDate", "<", today_local().isoformat()),
                ],
            },
            date_field="InvoiceDate",
        )
        super().__init__(store, spec, "faktura")
        self.settings = settings

    def _rows(self, rows: Any) -> list[dict[str, Any]]:
        if not isinstance(rows, list):
            raise FortnoxError(WRONG_DATA, "InvoiceRows must be a list of rows")
        checked = []
        for index, row in enumerate(rows, start=1):
            where = f"InvoiceRows[{index}]"
            if not isinstance(row, dict):
                raise FortnoxError(WRONG_DATA, f"{where} must be an object")
            clean = F.apply_fields(
                where,
                F.INVOICE_ROW_SCHEMA,
                F.INVOICE_ROW_READ_ONLY,
                row,
                {
                    "AccountNumber": DEFAULT_SALES_ACCOUNT,
                    "Description": "",
                    "DeliveredQuantity": 0.0,
                    "Price": 0.0,
                    "VAT": 25.0,
                    "Unit": "",
                    "Discount": 0.0,
                    "DiscountType": "AMOUNT",
                    "Project": "",
                    "CostCenter": "",
                },
            )
            _require_account(self.store, clean["AccountNumber"], f"{where}.AccountNumber")
            if float(clean["VAT"]).is_integer():
                clean["VAT"] = int(clean["VAT"])  # Fortnox answers VAT as a whole percent
            if clean["VAT"] not in VAT_RATES:
                raise FortnoxError(
                    WRONG_DATA,
                    f"Ogiltig momssats {clean['VAT']} i {where}.VAT (valid: 25, 12, 6, 0)",
                )
            _require_project(self.store, clean["Project"], f"{where}.Project")
            checked.append(clean)
        return checked

    @staticmethod
    def _compute(doc: dict[str, Any]) -> None:
        """Row and invoice totals, read-only in Fortnox (VATIncluded=false: prices exclude VAT)."""
        net = vat = 0.0
        for row_id, row in enumerate(doc["InvoiceRows"], start=1):
            gross = row["DeliveredQuantity"] * row["Price"]
            discount = (
                gross * row["Discount"] / 100
                if row["DiscountType"] == "PERCENT"
                else row["Discount"]
            )
            row["RowId"] = row_id  # Fortnox regenerates every RowId on each update
            row["Total"] = row["TotalExcludingVAT"] = money(gross - discount)
            row["PriceExcludingVAT"] = row["Price"]
            net += row["Total"]
            vat += row["Total"] * row["VAT"] / 100
        doc["Net"] = doc["Gross"] = money(net)
        doc["TotalVAT"] = money(vat)
        doc["Total"] = doc["TotalToPay"] = money(net + vat)
        doc["RoundOff"] = 0.0
        if not doc["Booked"]:
            doc["Balance"] = doc["Total"]

    def _posting_rules(self, doc: dict[str, Any], *, booking: bool) -> None:
        """Check each row's account rules and its project's period.

        The project is the row's, or else the invoice's (inferred: a row without a project is
        posted on the invoice's project).

        Booking applies both; a save applies what the settings say (docs/FORTNOX_PROJECTS.md).
        """
        accounts = booking or self.settings["account_rules_on_save"]
        periods = booking or self.settings["project_period_on_save"]
        for index, row in enumerate(doc["InvoiceRows"], start=1):
            where = f"InvoiceRows[{index}]"
            project = row.get("Project") or doc.get("Project") or ""
            if accounts:
                account = _require_account(self.store, row["AccountNumber"], where)
                cost_center = row.get("CostCenter") or doc.get("CostCenter") or ""
                check_account_rules(account, project, cost_center, where)
            if periods and project:
                check_project_period(self.store, project, doc["InvoiceDate"], where)

    def _header(self, doc: dict[str, Any]) -> None:
        customer = self.store.get(CUSTOMERS, doc["CustomerNumber"])
        if customer is None:
            raise FortnoxError(
                NOT_FOUND,
                f"Kan inte hitta kund {doc['CustomerNumber']!r} (Invoice.CustomerNumber: create "
                "the customer first)",
            )
        _require_project(self.store, doc["Project"], "Invoice.Project")
        if not doc.get("CustomerName"):
            doc["CustomerName"] = customer["Name"]
        for name in ("Address1", "Address2", "ZipCode", "City", "OrganisationNumber"):
            if not doc.get(name):
                doc[name] = customer.get(name, "")
        _payment_dates(doc)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("CustomerNumber"):
            raise FortnoxError(
                MISSING_FIELDS, "Invoice: fältet CustomerNumber måste anges (required)"
            )
        doc = F.apply_fields(
            "Invoice",
            F.INVOICE_SCHEMA,
            F.INVOICE_READ_ONLY,
            body,
            {"DocumentNumber": ""}  # identity first, as Fortnox shows it
            | dict.fromkeys(F.INVOICE_SCHEMA, "")
            | {
                "Currency": "SEK",
                "InvoiceType": "INVOICE",
                "Language": "SV",
                "VATIncluded": False,
                "NotCompleted": False,
                "Booked": False,
                "Cancelled": False,
                # Real answers carry these as strings (docs/FORTNOX-WRITES.md).
                "Credit": "false",
                "Sent": False,
                "CreditInvoiceReference": NO_REFERENCE,
                "VoucherNumber": None,
                "VoucherSeries": None,
                "VoucherYear": None,
                "AccountingMethod": "ACCRUAL",
                "OrganisationNumber": "",
                "NoxFinans": False,
            },
        )
        doc["InvoiceRows"] = self._rows(body.get("InvoiceRows", []))
        with self.store.transaction():
            self._header(doc)
            number = body.get("DocumentNumber")
            if number in (None, ""):
                number = self.next_free("invoice", INVOICE_SERIES_START)
            else:
                number = str(number)
                if not number.isdigit():
                    raise FortnoxError(
                        NOT_NUMERIC, f"DocumentNumber måste vara numeriskt ({number!r})"
                    )
                if self.store.exists(INVOICES, number):
                    raise FortnoxError(
                        WRONG_DATA,
                        f"Fakturanummer {number} används redan (DocumentNumber already used; "
                        "an invoice cannot be created twice)",
                    )
            doc["DocumentNumber"] = number
            self._posting_rules(doc, booking=False)
            if not doc["OCR"] and self.settings["ocr_on_invoices"]:
                doc["OCR"] = ocr_for(number)  # inferred: generated from the document number
            self._compute(doc)
            if self.settings["negative_invoice_is_credit"] and doc["Total"] < 0:
                doc["Credit"] = "true"  # inferred: a negative invoice shows as a credit invoice
            return self.save(number, doc)

    def update(self, number: str, body: dict[str, Any]) -> dict[str, Any]:
        if str(body.get("DocumentNumber") or number) != number:
            raise FortnoxError(WRONG_DATA, "DocumentNumber kan inte ändras")
        with self.store.transaction():
            doc = self.load(number)
            if doc["Booked"] or doc["Cancelled"]:
                state = "bokförd (booked)" if doc["Booked"] else "makulerad (cancelled)"
                raise FortnoxError(
                    WRONG_DATA,
                    f"Faktura {number} är {state} och kan inte ändras; credit it instead",
                )
            doc = F.apply_fields("Invoice", F.INVOICE_SCHEMA, F.INVOICE_READ_ONLY, body, doc)
            if "InvoiceRows" in body:
                doc["InvoiceRows"] = self._rows(body["InvoiceRows"])
            self._header(doc)
            self._posting_rules(doc, booking=False)
            self._compute(doc)
            return self.save(number, doc)

    def act(self, number: str, action: str) -> dict[str, Any]:
        with self.store.transaction():
            doc = self.load(number)
            if action == "bookkeep":
                if doc["Cancelled"]:
                    raise FortnoxError(WRONG_DATA, f"Faktura {number} är makulerad (cancelled)")
                if not doc["Booked"]:
                    self._posting_rules(doc, booking=True)
                    doc["Booked"] = True
                    doc["VoucherSeries"], doc["VoucherYear"] = "B", int(doc["InvoiceDate"][:4])
                    doc["VoucherNumber"] = self.store.next_number(f"voucher:B:{doc['VoucherYear']}")
            elif action == "cancel":
                if doc["Booked"]:
                    raise FortnoxError(
                        WRONG_DATA,
                        f"Faktura {number} är bokförd och kan inte makuleras; credit it instead",
                    )
                doc["Cancelled"] = True
            elif action == "credit":
                if not doc["Booked"] or doc["CreditInvoiceReference"] != NO_REFERENCE:
                    raise FortnoxError(
                        WRONG_DATA, f"Faktura {number} kan inte krediteras (not booked or credited)"
                    )
                doc["CreditInvoiceReference"] = self._credit_note(doc)
            else:
                raise FortnoxError(NOT_FOUND, f"Okänd åtgärd {action!r} för faktura", 404)
            return self.save(number, doc)

    def _credit_note(self, original: dict[str, Any]) -> str:
        """``PUT /invoices/{n}/credit``: a credit note with the next number of Fortnox's series.

        The original refers to it in ``CreditInvoiceReference`` (OpenAPI, the action's text); the
        note refers to the original in ``InvoiceReference`` (seen in a public client, the C# SDK).
        """
        number = self.next_free("invoice", INVOICE_SERIES_START)
        note = {k: v for k, v in original.items() if not k.startswith("_")}
        note.update(
            DocumentNumber=number,
            Credit="true",
            Booked=False,
            Cancelled=False,
            CreditInvoiceReference=NO_REFERENCE,
            InvoiceReference=original["DocumentNumber"],
            OCR="",
            VoucherNumber=None,
            VoucherSeries=None,
            VoucherYear=None,
            InvoiceRows=[
                dict(r, DeliveredQuantity=-r["DeliveredQuantity"]) for r in original["InvoiceRows"]
            ],
        )
        self._compute(note)
        self.save(number, note)
        return number


class SupplierInvoices(Register):
    """Supplier invoices (``/3/supplierinvoices``), the source of the project expenses."""

    def __init__(self, store: Store, settings: SandboxSettings | None = None) -> None:
        date_filter_on = (
            None if settings is None else lambda: bool(settings["supplier_invoice_date_filter"])
        )
        spec = ListSpec(
            entity=SUPPLIER_INVOICES,
            path="supplierinvoices",
            plural="SupplierInvoices",
            key_field="GivenNumber",
            fields=F.SUPPLIER_INVOICE_LIST,
            sort_fields={
                "givennumber": "_sort",
                "invoicedate": "InvoiceDate",
                "suppliernumber": "SupplierNumber",
                "total": "Total",
            },
            search_fields={
                "project": "Project",
                "suppliernumber": "SupplierNumber",
                "ocr": "OCR",
                "costcenter": "CostCenter",
                "invoicenumber": "InvoiceNumber",
            },
            named_filters=_INVOICE_STATE_FILTERS
            | {
                "unpaid": lambda: [Filter("Cancelled", "=", False), Filter("Balance", "!=", 0)],
                "unpaidoverdue": lambda: [
                    Filter("Cancelled", "=", False),
                    Filter("Balance", "!=", 0),
                    Filter("DueDate", "<", today_local().isoformat()),
                ],
                "pendingpayment": lambda: [Filter("PaymentPending", "=", True)],
                "authorizepending": lambda: [
                    Filter(F.AUTHORIZE_PENDING, "=", True),
                    Filter("Cancelled", "=", False),
                ],
            },
            date_field="InvoiceDate",
            derived=self._list_item,
            date_filter_on=date_filter_on,
        )
        super().__init__(store, spec, "leverantörsfaktura")

    @staticmethod
    def _amounts_as_strings(doc: dict[str, Any]) -> dict[str, Any]:
        rate = float(doc.get(F.SUPPLIER_INVOICE_STRING_RATE) or 1)
        return {
            name: f"{float(doc.get(name) or 0):.2f}" for name in F.SUPPLIER_INVOICE_STRING_AMOUNTS
        } | {F.SUPPLIER_INVOICE_STRING_RATE: f"{rate:.4f}".rstrip("0").rstrip(".")}

    @classmethod
    def _list_item(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """A list item's derived fields (SupplierInvoiceListItem).

        They are the string amounts, the cancelled flag named ``Cancel`` and the list-only
        ``AuthorizerName``.
        """
        return cls._amounts_as_strings(doc) | {
            "Cancel": bool(doc.get("Cancelled")),
            "AuthorizerName": doc.get(F.AUTHORIZER, ""),
        }

    def get(self, key: str) -> dict[str, Any]:
        return present(self.load(key), self.spec.path, key, derived=self._amounts_as_strings)

    def _rows(self, rows: Any, check_projects: bool) -> list[dict[str, Any]]:
        if not isinstance(rows, list):
            raise FortnoxError(WRONG_DATA, "SupplierInvoiceRows must be a list of rows")
        checked = []
        for index, row in enumerate(rows, start=1):
            where = f"SupplierInvoiceRows[{index}]"
            if not isinstance(row, dict) or "Account" not in row:
                raise FortnoxError(MISSING_FIELDS, f"{where}: fältet Account måste anges")
            clean = F.apply_fields(
                where,
                F.SUPPLIER_INVOICE_ROW_SCHEMA,
                F.SUPPLIER_INVOICE_ROW_READ_ONLY,
                row,
                {
                    "Account": 0,
                    "Code": "",
                    "Debit": 0.0,
                    "Credit": 0.0,
                    "Project": "",
                    "CostCenter": "",
                    "TransactionInformation": "",
                    "ItemDescription": "",
                    "Price": 0.0,
                    "Quantity": 0,
                    "Unit": "",
                },
            )
            checked.append(clean)
        return self.finish_rows(checked, check_projects)

    def finish_rows(self, rows: list[dict[str, Any]], check_projects: bool) -> list[dict[str, Any]]:
        for index, row in enumerate(rows, start=1):
            where = f"SupplierInvoiceRows[{index}]"
            account = _require_account(self.store, row["Account"], f"{where}.Account")
            if check_projects:
                _require_project(self.store, row["Project"], f"{where}.Project")
            row["AccountDescription"] = account["Description"]
            row.setdefault("DebitCurrency", row["Debit"])
            row.setdefault("CreditCurrency", row["Credit"])
            row["Total"] = money(row["Debit"] - row["Credit"])
        return rows

    def _complete(self, doc: dict[str, Any]) -> None:
        """TOT and VAT rows from the header when absent; header amounts from rows; balance check."""
        rows = doc["SupplierInvoiceRows"]
        if rows and not any(r["Code"] == "TOT" for r in rows) and doc.get("Total"):
            if doc.get("VAT"):
                rows.append(self._row(INPUT_VAT_ACCOUNT, "VAT", debit=float(doc["VAT"])))
            rows.insert(0, self._row(PAYABLES_ACCOUNT, "TOT", credit=float(doc["Total"])))
            self.finish_rows(rows, False)
        if rows:
            debit = money(sum(r["Debit"] for r in rows))
            credit = money(sum(r["Credit"] for r in rows))
            if debit != credit:
                raise FortnoxError(
                    NOT_BALANCED,
                    f"Fakturan är inte balanserad (debit {debit} ≠ credit {credit}: add the TOT "
                    "row on 2440 or fix the amounts)",
                )
            doc["Total"] = money(sum(r["Credit"] - r["Debit"] for r in rows if r["Code"] == "TOT"))
            doc["VAT"] = money(sum(r["Debit"] - r["Credit"] for r in rows if r["Code"] == "VAT"))
        doc["Total"], doc["VAT"] = (
            money(float(doc.get("Total") or 0)),
            money(float(doc.get("VAT") or 0)),
        )
        if not doc["Booked"] or doc.get("Balance") is None:
            doc["Balance"] = doc["Total"]

    @staticmethod
    def _row(account: int, code: str, debit: float = 0.0, credit: float = 0.0) -> dict[str, Any]:
        return {
            "Account": account,
            "Code": code,
            "Debit": debit,
            "Credit": credit,
            "Project": "",
            "CostCenter": "",
            "TransactionInformation": "",
            "ItemDescription": "",
            "Price": 0.0,
            "Quantity": 0,
            "Unit": "",
        }

    def blank(self) -> dict[str, Any]:
        # GivenNumber first so that a single GET shows the identity first, as Fortnox does.
        return (
            {"GivenNumber": ""}
            | dict.fromkeys(F.SUPPLIER_INVOICE_SCHEMA, "")
            | {
                "Total": 0.0,
                "VAT": 0.0,
                "Freight": 0.0,
                "AdministrationFee": 0.0,
                "RoundOffValue": 0.0,
                "Currency": "SEK",
                "CurrencyRate": 1.0,
                "CurrencyUnit": 1.0,
                "VATType": "NORMAL",
                "SalesType": "SERVICE",
                "PaymentPending": False,
                "DisablePaymentFile": False,
                "Booked": False,
                "Cancelled": False,
                "Credit": False,
                "CreditReference": 0,
                "Balance": None,
                "SupplierName": "",
                "AccountingMethod": "ACCRUAL",
                "Vouchers": [],
                "VoucherNumber": None,
                "VoucherSeries": None,
                "VoucherYear": None,
                "FinalPayDate": "",
                "SupplierInvoiceRows": [],
                F.AUTHORIZE_PENDING: True,
                F.AUTHORIZER: "",
            }
        )

    def create(
        self, body: dict[str, Any], *, check_projects: bool, modified: str | None = None
    ) -> dict[str, Any]:
        """Register a supplier invoice (``check_projects=False`` for the admin's user postings)."""
        if not body.get("SupplierNumber"):
            raise FortnoxError(MISSING_FIELDS, "SupplierInvoice: fältet SupplierNumber måste anges")
        doc = F.apply_fields(
            "SupplierInvoice",
            F.SUPPLIER_INVOICE_SCHEMA,
            F.SUPPLIER_INVOICE_READ_ONLY,
            body,
            self.blank(),
        )
        doc["SupplierInvoiceRows"] = self._rows(body.get("SupplierInvoiceRows", []), check_projects)
        with self.store.transaction():
            supplier = self.store.get(SUPPLIERS, doc["SupplierNumber"])
            if supplier is None:
                raise FortnoxError(
                    NOT_FOUND,
                    f"Kan inte hitta leverantör {doc['SupplierNumber']!r} (SupplierNumber)",
                )
            if check_projects:
                _require_project(self.store, doc["Project"], "SupplierInvoice.Project")
            doc["SupplierName"] = supplier["Name"]
            _payment_dates(doc)
            self._complete(doc)
            number = self.next_free("supplierinvoice", 1)
            doc["GivenNumber"] = number
            return self.save(number, doc, modified)

    def update(self, number: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.store.transaction():
            doc = self.load(number)
            if doc["Booked"] or doc["Cancelled"]:
                raise FortnoxError(
                    WRONG_DATA,
                    f"Leverantörsfaktura {number} är bokförd eller makulerad och kan inte ändras",
                )
            return self._change(number, doc, body, check_projects=True)

    def correct(self, number: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change an invoice as a user does in Fortnox's UI, booked or not.

        A booked one is corrected with a correction voucher there. The change is to header fields
        and, when given, all rows.
        Booking and approval stay; the balance check holds; LastModified moves to now.
        """
        with self.store.transaction():
            return self._change(number, self.load(number), body, check_projects=False)

    def _change(
        self, number: str, doc: dict[str, Any], body: dict[str, Any], *, check_projects: bool
    ) -> dict[str, Any]:
        doc = F.apply_fields(
            "SupplierInvoice",
            F.SUPPLIER_INVOICE_SCHEMA,
            F.SUPPLIER_INVOICE_READ_ONLY,
            body,
            doc,
        )
        if check_projects:
            _require_project(self.store, doc["Project"], "SupplierInvoice.Project")
        if "SupplierInvoiceRows" in body:
            doc["SupplierInvoiceRows"] = self._rows(body["SupplierInvoiceRows"], check_projects)
        self._complete(doc)
        return self.save(number, doc)

    def act(self, number: str, action: str, authorizer: str = "API") -> dict[str, Any]:
        with self.store.transaction():
            doc = self.load(number)
            if action in ("bookkeep", "approvalbookkeep", "approvalpayment") and doc["Cancelled"]:
                raise FortnoxError(
                    WRONG_DATA, f"Leverantörsfaktura {number} är makulerad (cancelled)"
                )
            if action in ("bookkeep", "approvalbookkeep"):
                self.book(doc)
            if action in ("approvalbookkeep", "approvalpayment"):
                doc[F.AUTHORIZE_PENDING], doc[F.AUTHORIZER] = False, authorizer
            if action == "cancel":
                if doc["Booked"]:
                    raise FortnoxError(
                        WRONG_DATA, f"Leverantörsfaktura {number} är bokförd och kan inte makuleras"
                    )
                doc["Cancelled"] = True
            elif action not in ("bookkeep", "approvalbookkeep", "approvalpayment"):
                raise FortnoxError(
                    NOT_FOUND, f"Okänd åtgärd {action!r} för leverantörsfaktura", 404
                )
            return self.get_saved(number, doc)

    def get_saved(
        self, number: str, doc: dict[str, Any], modified: str | None = None
    ) -> dict[str, Any]:
        self.save(number, doc, modified)
        return present(doc, self.spec.path, number, derived=self._amounts_as_strings)

    def book(self, doc: dict[str, Any]) -> None:
        if doc["Booked"]:
            return
        year = int(doc["InvoiceDate"][:4])
        voucher = self.store.next_number(f"voucher:C:{year}")
        doc["Booked"] = True
        doc["VoucherNumber"], doc["VoucherSeries"], doc["VoucherYear"] = voucher, "C", year
        doc["Vouchers"] = [
            {"Number": voucher, "Series": "C", "Year": year, "ReferenceType": "SUPPLIERINVOICE"}
        ]


class Books:
    """Every register of the one company the sandbox holds."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store = store
        self.customers = Customers(store)
        self.projects = Projects(store)
        self.suppliers = Suppliers(store)
        self.invoices = Invoices(store, settings)
        self.supplier_invoices = SupplierInvoices(store, settings)
        self.accounts = ListSpec(
            entity=ACCOUNTS,
            path="accounts",
            plural="Accounts",
            key_field="Number",
            fields=F.ACCOUNT_LIST,
            sort_fields={"number": "_sort"},
            search_fields={"description": "Description"},
        )
        self.financial_years = ListSpec(
            entity=FINANCIAL_YEARS,
            path="financialyears",
            plural="FinancialYears",
            key_field="Id",
            fields=("Id", "FromDate", "ToDate", "AccountChartType", "AccountingMethod"),
            sort_fields={"id": "_sort"},
        )

    def accounts_list(self) -> dict[str, Any]:
        return list_response(self.store, self.accounts)

    def account(self, number: int) -> dict[str, Any]:
        doc = self.store.get(ACCOUNTS, number)
        if doc is None:
            raise FortnoxError(ACCOUNT_NOT_FOUND, f"Kunde inte hitta konto {number}", 404)
        return present(doc, "accounts", str(number))

    def financial_years_list(self) -> dict[str, Any]:
        from flask import request

        extra = []
        if request.args.get("date"):
            day = request.args["date"]
            extra = [Filter("FromDate", "<=", day), Filter("ToDate", ">=", day)]
        return list_response(self.store, self.financial_years, extra)

    def financial_year(self, year_id: int) -> dict[str, Any]:
        doc = self.store.get(FINANCIAL_YEARS, year_id)
        if doc is None:
            raise not_found("räkenskapsår", str(year_id))
        return present(doc, "financialyears", str(year_id))

    def company(self) -> dict[str, Any]:
        return self.store.get(COMPANY, "information") or default_company(tenant_id_of(self.store))

    def company_information(self) -> dict[str, Any]:
        company = self.company()
        return {
            name: company[name]
            for name in (
                "Address",
                "City",
                "CompanyName",
                "CountryCode",
                "DatabaseNumber",
                "OrganizationNumber",
                "VisitAddress",
                "VisitCity",
                "VisitCountryCode",
                "VisitZipCode",
                "ZipCode",
            )
        }

    def company_settings(self) -> dict[str, Any]:
        company = self.company()
        return {
            "Address": company["Address"],
            "BG": company["BG"],
            "BIC": "",
            "BranchCode": "",
            "City": company["City"],
            "ContactFirstName": company["ContactFirstName"],
            "ContactLastName": company["ContactLastName"],
            "Country": "Sverige",
            "CountryCode": "SE",
            # a string here, an integer in companyinformation
            "DatabaseNumber": str(company["DatabaseNumber"]),
            "Domicile": company["City"],
            "Email": company["Email"],
            "Fax": "",
            "IBAN": "",
            "Name": company["CompanyName"],
            "OrganizationNumber": company["OrganizationNumber"],
            "PG": company["PG"],
            "Phone1": company["Phone"],
            "Phone2": "",
            "TaxEnabled": True,
            "VATNumber": company["VATNumber"],
            "VisitAddress": company["VisitAddress"],
            "VisitCity": company["VisitCity"],
            "VisitCountry": "Sverige",
            "VisitCountryCode": "SE",
            "VisitName": company["CompanyName"],
            "VisitZipCode": company["VisitZipCode"],
            "WWW": company["WWW"],
            "ZipCode": company["ZipCode"],
        }


def default_company(tenant_id: int = TENANT_ID) -> dict[str, Any]:
    """The company of an unseeded database (the tenant always exists)."""
    return {
        "CompanyName": "Sandlådan Konsult AB",
        "OrganizationNumber": "556677-8897",
        "Address": "Storgatan 1",
        "ZipCode": "111 22",
        "City": "Stockholm",
        "CountryCode": "SE",
        "VisitAddress": "Storgatan 1",
        "VisitZipCode": "111 22",
        "VisitCity": "Stockholm",
        "VisitCountryCode": "SE",
        "DatabaseNumber": tenant_id,
        "Email": "info@sandladan.se",
        "Phone": "08-123 456 78",
        "BG": "123-4567",
        "PG": "",
        "VATNumber": "SE556677889701",
        "WWW": "https://sandladan.se",
        "ContactFirstName": "Anna",
        "ContactLastName": "Andersson",
    }
