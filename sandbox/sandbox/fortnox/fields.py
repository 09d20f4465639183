"""Write schemas of the Fortnox resources: the fields a POST/PUT may carry and how each is checked.

A field Fortnox documents as read-only is ignored when sent (as Fortnox does for ``@url``);
a field it does not know is refused with 2001399 "invalid field name". A field sent as ``""`` or
null is left as it is; ``API_BLANK`` empties it (Fortnox's rule for writes, docs/FORTNOX-WRITES.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.fortnox.errors import INVALID_FIELD_NAME, FortnoxError
from sandbox.fortnox.formats import (
    check_boolean,
    check_choice,
    check_date,
    check_email,
    check_integer,
    check_number,
    check_text,
    country_name,
)

Check = Callable[[str, Any], Any]
API_BLANK = "API_BLANK"


def text(max_length: int) -> Check:
    """The check of a text field of at most ``max_length`` characters."""
    return lambda field, value: check_text(field, value, max_length)


def choice(*choices: str) -> Check:
    """The check of a field that takes one of ``choices``."""
    return lambda field, value: check_choice(field, value, choices)


def date_field(field: str, value: Any) -> str:
    """The check of an optional ``YYYY-MM-DD`` date field."""
    return check_date(field, value)


NUMBER: Check = check_number
INTEGER: Check = check_integer
BOOLEAN: Check = check_boolean
EMAIL: Check = check_email
DATE: Check = date_field
COUNTRY = "country"  # CountryCode: checked and sets the derived, read-only Country


def apply_fields(
    resource: str,
    schema: dict[str, Check | str],
    read_only: frozenset[str],
    body: dict[str, Any],
    doc: dict[str, Any],
) -> dict[str, Any]:
    """``doc`` updated with the checked values of ``body`` (fields outside ``schema`` refused)."""
    for field, value in body.items():
        if field in read_only:
            continue
        check = schema.get(field)
        if check is None:
            raise FortnoxError(
                INVALID_FIELD_NAME, f"Ogiltigt fältnamn {field!r} för {resource} (unknown field)"
            )
        if value is None or value == "":
            continue  # "" and null mean "unchanged", on create the default stays
        if check == COUNTRY:
            if value == API_BLANK:
                doc["CountryCode"], doc["Country"] = "", ""
            else:
                doc["CountryCode"], doc["Country"] = country_name(field, value)
        else:
            assert callable(check)
            # API_BLANK empties a field that may be empty (text, e-mail, date); for a number,
            # boolean or choice the check refuses the empty value with its own error.
            doc[field] = check(field, "" if value == API_BLANK else value)
    return doc


CUSTOMER_SCHEMA: dict[str, Check | str] = {
    "Name": text(1024),
    "OrganisationNumber": text(30),
    "Email": EMAIL,
    "EmailInvoice": EMAIL,
    "Address1": text(1024),
    "Address2": text(1024),
    "ZipCode": text(10),
    "City": text(1024),
    "CountryCode": COUNTRY,
    "Phone1": text(1024),
    "Phone2": text(1024),
    "Fax": text(1024),
    "WWW": text(128),
    "Active": BOOLEAN,
    "Type": choice("PRIVATE", "COMPANY"),
    "VATType": choice("SEVAT", "SEREVERSEDVAT", "EUREVERSEDVAT", "EUVAT", "EXPORT"),
    "VATNumber": text(1024),
    "Currency": text(3),
    "Comments": text(1024),
    "OurReference": text(50),
    "YourReference": text(50),
    "ExternalReference": text(1024),
}
CUSTOMER_READ_ONLY = frozenset({"@url", "Country", "CustomerNumber"})
CUSTOMER_DEFAULTS: dict[str, Any] = {
    "CustomerNumber": "",
    "Name": "",
    "OrganisationNumber": "",
    "Email": "",
    "EmailInvoice": "",
    "Address1": "",
    "Address2": "",
    "ZipCode": "",
    "City": "",
    "CountryCode": "",
    "Country": "",
    "Phone1": "",
    "Phone2": "",
    "Fax": "",
    "WWW": "",
    "Active": True,
    "Type": "COMPANY",
    "VATType": "SEVAT",
    "VATNumber": "",
    "Currency": "SEK",
    "Comments": "",
    "OurReference": "",
    "YourReference": "",
    "ExternalReference": "",
}
CUSTOMER_LIST = (
    "CustomerNumber",
    "Name",
    "OrganisationNumber",
    "Email",
    "Address1",
    "Address2",
    "ZipCode",
    "City",
    "Phone",
)

PROJECT_SCHEMA: dict[str, Check | str] = {
    "Description": text(50),
    "Status": choice("NOTSTARTED", "ONGOING", "COMPLETED"),
    "StartDate": DATE,
    "EndDate": DATE,
    "ProjectLeader": text(50),
    "ContactPerson": text(50),
    "Comments": text(512),
}
PROJECT_READ_ONLY = frozenset({"@url", "ProjectNumber"})
PROJECT_DEFAULTS: dict[str, Any] = {
    "ProjectNumber": "",
    "Description": "",
    "Status": "NOTSTARTED",
    "StartDate": "",
    "EndDate": "",
    "ProjectLeader": "",
    "ContactPerson": "",
    "Comments": "",
}
PROJECT_LIST = ("ProjectNumber", "Description", "Status", "StartDate", "EndDate", "ProjectLeader")

SUPPLIER_SCHEMA: dict[str, Check | str] = {
    "Name": text(1024),
    "OrganisationNumber": text(30),
    "Email": EMAIL,
    "Address1": text(1024),
    "Address2": text(1024),
    "ZipCode": text(10),
    "City": text(1024),
    "CountryCode": COUNTRY,
    "Phone1": text(1024),
    "BankAccountNumber": text(64),
    "BG": text(16),
    "PG": text(16),
    "Currency": text(3),
    "Active": BOOLEAN,
    "Comments": text(1024),
    "VATNumber": text(64),
    "OurReference": text(50),
    "YourReference": text(50),
}
SUPPLIER_READ_ONLY = frozenset({"@url", "Country", "SupplierNumber"})
SUPPLIER_DEFAULTS: dict[str, Any] = {
    "SupplierNumber": "",
    **dict.fromkeys(SUPPLIER_SCHEMA, ""),
    "Country": "",
    "Currency": "SEK",
    "Active": True,
}
SUPPLIER_LIST = (
    "SupplierNumber",
    "Name",
    "OrganisationNumber",
    "Email",
    "Address1",
    "Address2",
    "ZipCode",
    "City",
    "CountryCode",
    "Phone",
    "BankAccountNumber",
    "BG",
    "PG",
    "Active",
)

INVOICE_SCHEMA: dict[str, Check | str] = {
    "CustomerNumber": text(1024),
    "CustomerName": text(1024),
    "InvoiceDate": DATE,
    "DueDate": DATE,
    "DeliveryDate": DATE,
    "Project": text(20),
    "CostCenter": text(6),
    "OCR": text(32),
    "YourReference": text(50),
    "OurReference": text(50),
    "YourOrderNumber": text(75),
    "ExternalInvoiceReference1": text(80),
    "ExternalInvoiceReference2": text(80),
    "Remarks": text(1024),
    "Comments": text(1024),
    "Currency": text(3),
    "InvoiceType": choice(
        "INVOICE", "AGREEMENTINVOICE", "INTRESTINVOICE", "SUMMARYINVOICE", "CASHINVOICE"
    ),
    "Language": choice("SV", "EN"),
    "VATIncluded": BOOLEAN,
    "TermsOfPayment": text(30),
    "Address1": text(1024),
    "Address2": text(1024),
    "ZipCode": text(10),
    "City": text(1024),
    "NotCompleted": BOOLEAN,
}
INVOICE_READ_ONLY = frozenset(
    {
        "@url",
        "DocumentNumber",
        "InvoiceRows",
        "Balance",
        "Booked",
        "Cancelled",
        "Credit",
        "CreditInvoiceReference",
        "FinalPayDate",
        "Gross",
        "Net",
        "Total",
        "TotalVAT",
        "TotalToPay",
        "RoundOff",
        "Sent",
        "VoucherNumber",
        "VoucherSeries",
        "VoucherYear",
        "OrganisationNumber",
        "AccountingMethod",
        "Country",
        "NoxFinans",
    }
)
INVOICE_ROW_SCHEMA: dict[str, Check | str] = {
    "AccountNumber": INTEGER,
    "Description": text(255),
    "DeliveredQuantity": NUMBER,
    "Price": NUMBER,
    "VAT": NUMBER,
    "Unit": text(10),
    "Discount": NUMBER,
    "DiscountType": choice("AMOUNT", "PERCENT"),
    "Project": text(20),
    "CostCenter": text(6),
}
INVOICE_ROW_READ_ONLY = frozenset(
    {
        "RowId",
        "Total",
        "TotalExcludingVAT",
        "PriceExcludingVAT",
        "ContributionPercent",
        "ContributionValue",
    }
)
INVOICE_LIST = (
    "DocumentNumber",
    "CustomerNumber",
    "CustomerName",
    "InvoiceDate",
    "DueDate",
    "Project",
    "OCR",
    "Currency",
    "Total",
    "Balance",
    "Booked",
    "Cancelled",
    "Sent",
    "CostCenter",
    "ExternalInvoiceReference1",
    "ExternalInvoiceReference2",
    "InvoiceType",
    "TermsOfPayment",
    "VoucherNumber",
    "VoucherSeries",
    "VoucherYear",
    "FinalPayDate",
)

SUPPLIER_INVOICE_SCHEMA: dict[str, Check | str] = {
    "SupplierNumber": text(1024),
    "InvoiceNumber": text(64),
    "InvoiceDate": DATE,
    "DueDate": DATE,
    "Project": text(20),
    "CostCenter": text(6),
    "Total": NUMBER,
    "VAT": NUMBER,
    "Freight": NUMBER,
    "AdministrationFee": NUMBER,
    "RoundOffValue": NUMBER,
    "Currency": text(3),
    "CurrencyRate": NUMBER,
    "CurrencyUnit": NUMBER,
    "OCR": text(32),
    "VATType": choice("NORMAL", "EUINTERNAL", "REVERSE"),
    "SalesType": choice("STOCK", "SERVICE"),
    "PaymentPending": BOOLEAN,
    "DisablePaymentFile": BOOLEAN,
    "Comments": text(1000),
    "OurReference": text(50),
    "YourReference": text(50),
}
SUPPLIER_INVOICE_READ_ONLY = frozenset(
    {
        "@url",
        "GivenNumber",
        "SupplierInvoiceRows",
        "Booked",
        "Cancelled",
        "Credit",
        "CreditReference",
        "Balance",
        "SupplierName",
        "AccountingMethod",
        "Vouchers",
        "VoucherNumber",
        "VoucherSeries",
        "VoucherYear",
        "FinalPayDate",
        "AuthorizerName",
    }
)
SUPPLIER_INVOICE_ROW_SCHEMA: dict[str, Check | str] = {
    "Account": INTEGER,
    "Code": choice(
        "TOT",
        "VAT",
        "FRT",
        "AFE",
        "ROV",
        "CND",
        "CNC",
        "PRD",
        "PRC",
        "SRD",
        "SRC",
        "PRE",
        "GWB",
        "ACC",
    ),
    "Debit": NUMBER,
    "Credit": NUMBER,
    "DebitCurrency": NUMBER,
    "CreditCurrency": NUMBER,
    "Project": text(20),
    "CostCenter": text(6),
    "TransactionInformation": text(100),
    "ItemDescription": text(255),
    "Price": NUMBER,
    "Quantity": INTEGER,  # int32 in docs/fortnox-contract/supplier_invoice_row.json
    "Unit": text(10),
}
SUPPLIER_INVOICE_ROW_READ_ONLY = frozenset({"Total", "AccountDescription", "RowId"})
# Fortnox publishes no approval state of a supplier invoice (ApprovalState is a voucher field): only
# the list filter "authorizepending" and the list-only AuthorizerName. The sandbox keeps approval in
# the internal fields below (never shown) and shows AuthorizerName in lists only.
AUTHORIZE_PENDING, AUTHORIZER = "_authorize_pending", "_authorizer"
SUPPLIER_INVOICE_LIST = (
    "GivenNumber",
    "SupplierNumber",
    "SupplierName",
    "InvoiceNumber",
    "InvoiceDate",
    "DueDate",
    "Project",
    "CostCenter",
    "Currency",
    "Total",
    "Balance",
    "Booked",
    "Cancel",
    "Credit",
    "AuthorizerName",
)
# Fortnox's OpenAPI types these supplier-invoice amounts as JSON strings.
SUPPLIER_INVOICE_STRING_AMOUNTS = (
    "Total",
    "VAT",
    "Balance",
    "Freight",
    "AdministrationFee",
    "RoundOffValue",
)
SUPPLIER_INVOICE_STRING_RATE = "CurrencyRate"  # also a string there, with more decimals

ACCOUNT_LIST = (
    "Number",
    "Description",
    "Active",
    "VATCode",
    "Year",
    "SRU",
    "ProjectSettings",
    "CostCenterSettings",
)
