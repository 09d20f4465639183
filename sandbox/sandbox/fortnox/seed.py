"""Deterministic demo data for the Fortnox sandbox (``random.Random(N)`` and ``Faker("sv_SE")``).

Same N, same data — except dates that must be relative to the day the seed runs (financial years,
supplier-invoice dates "45 days ago" and their posting times). Everything else is stamped from a
fixed reference time. Numbering follows the conventions both sandboxes share: supplier invoices
carry Moment's project numbers ``str(5000 + j)``, j = 1..moment_projects, and the Fortnox-only
projects 9001 (with a start date) and 9002 (without); Fortnox-only customers are numbered from
90001. Moment's customers and projects are not seeded: the moment-to-fortnox pipeline creates them.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

from sandbox.fortnox import books as B
from sandbox.fortnox import fields as F
from sandbox.fortnox.formats import _VALID_TEXT, STOCKHOLM, luhn_check_digit, money, now_local
from sandbox.fortnox.listing import sort_key
from sandbox.fortnox.oauth import KEEP_ON_RESEED, TENANT_ID_KEY, tenant_id_of
from sandbox.store import Store

DEFAULT_SIZES = {"suppliers": 6, "supplierinvoices": 60, "moment_projects": 20, "customers": 0}
# Values of the key-value table a reseed keeps: the OAuth client's secrets and state, settings.
KEEP_VALUES = (
    "oauth:jwt_secret",
    "oauth:generation",
    "fortnox:settings",
    "fortnox:redirect_uris",
    TENANT_ID_KEY,
)
REFERENCE = datetime(2025, 1, 1, 8, 0, 0)  # the fixed origin of every non-relative time stamp

ACCOUNTS: list[tuple[int, str, str]] = [
    (1510, "Kundfordringar", ""),
    (1790, "Övriga förutbetalda kostnader och upplupna intäkter", ""),
    (1930, "Företagskonto / checkkonto / affärskonto", ""),
    (2440, "Leverantörsskulder", ""),
    (2611, "Utgående moms på försäljning inom Sverige, 25 %", "MP1"),
    (2614, "Utgående moms omvänd skattskyldighet, 25 %", ""),
    (2617, "Utgående moms omvänd skattskyldighet varor och tjänster i Sverige, 25 %", ""),
    (2621, "Utgående moms på försäljning inom Sverige, 12 %", "MP2"),
    (2631, "Utgående moms på försäljning inom Sverige, 6 %", "MP3"),
    (2641, "Debiterad ingående moms", ""),
    (2645, "Beräknad ingående moms på förvärv från utlandet", ""),
    (2647, "Ingående moms omvänd skattskyldighet varor och tjänster i Sverige", ""),
    (3001, "Försäljning inom Sverige, 25 % moms", "MP1"),
    (3002, "Försäljning inom Sverige, 12 % moms", "MP2"),
    (3003, "Försäljning inom Sverige, 6 % moms", "MP3"),
    (3004, "Försäljning tjänster, momsfri (export)", "MF"),
    (3011, "Försäljning projekt, 25 % moms (projekt obligatoriskt)", "MP1"),
    (3012, "Försäljning avdelning, 25 % moms (kostnadsställe obligatoriskt)", "MP1"),
    (3740, "Öres- och kronutjämning", ""),
    (4010, "Inköp material och varor", "I"),
    (5010, "Lokalhyra", "I"),
    (5410, "Förbrukningsinventarier", "I"),
    (5460, "Förbrukningsmaterial", "I"),
    (5611, "Drivmedel för personbilar", "I"),
    (5800, "Resekostnader", "I"),
    (6110, "Kontorsmateriel", "I"),
    (6212, "Mobiltelefon", "I"),
    (6230, "Datakommunikation", "I"),
    (6540, "IT-tjänster", "I"),
    (6991, "Övriga externa kostnader, avdragsgilla", "I"),
]
# Accounts seeded with a (ProjectSettings, CostCenterSettings) rule; all others allow both. No
# Moment line uses them by default, so the rules show only when a test or a user points one at them.
ACCOUNT_RULES: dict[int, tuple[str, str]] = {
    1930: ("NOTALLOWED", "ALLOWED"),
    3011: ("MANDATORY", "ALLOWED"),
    3012: ("ALLOWED", "MANDATORY"),
    3740: ("NOTALLOWED", "NOTALLOWED"),
}
COST_ACCOUNTS = (4010, 5010, 5410, 5460, 5611, 5800, 6110, 6212, 6230, 6540, 6991)
COST_TEXTS = {
    4010: "Byggmaterial",
    5010: "Hyra projektlokal",
    5410: "Verktyg och inventarier",
    5460: "Förbrukningsmaterial",
    5611: "Drivmedel tjänstebil",
    5800: "Resa till kund",
    6110: "Kontorsmaterial",
    6212: "Mobilabonnemang",
    6230: "Bredband projektkontor",
    6540: "Konsulttjänster IT",
    6991: "Övriga projektkostnader",
}
VAT_BY_ACCOUNT = {5800: 6.0}  # passenger transport carries 6 % VAT; the rest 25 %
ROUND_OFF_ACCOUNT, PREPAID_ACCOUNT = 3740, 1790
# Reverse-charge VAT rows (debit, credit) by row-code pair, as Fortnox books them (BAS accounts).
REVERSE_CHARGE = {
    "construction": (("CND", 2647), ("CNC", 2617), "REVERSE", "SERVICE"),
    "eu_goods": (("PRD", 2645), ("PRC", 2614), "EUINTERNAL", "STOCK"),
    "eu_services": (("SRD", 2645), ("SRC", 2614), "EUINTERNAL", "SERVICE"),
}
# What else each supplier invoice of the seed carries besides its cost, payables and VAT rows, by
# its index modulo 7 (coprime to the kinds' 10, so every extra meets every kind): every row Code
# of Fortnox's list (docs/SUPPLIER-INVOICES.md).
_EXTRAS = ("", "round_off", "freight_fee", "construction", "eu_goods", "eu_services", "unknown")


_ASCII = str.maketrans("åäöéáüæøœ", "aaoeauaoo")


def _clean(text: str) -> str:
    """Faker text reduced to the characters Fortnox accepts."""
    return "".join(ch for ch in text if _VALID_TEXT.fullmatch(ch))


def _stamp(minutes: int) -> str:
    return (REFERENCE + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")


def organisation_number(rnd: random.Random) -> str:
    """A valid Swedish organisation number of an aktiebolag (55xxxx-xxxx, Luhn check digit)."""
    body = "556" + "".join(str(rnd.randint(0, 9)) for _ in range(6))
    digits = body + luhn_check_digit(body)
    return f"{digits[:6]}-{digits[6:]}"


def reseed(store: Store, seed: int, sizes: dict[str, Any]) -> dict[str, int]:
    """Wipe the books and fill them again; the OAuth client, its tokens and settings stay."""
    unknown = set(sizes) - set(DEFAULT_SIZES)
    if unknown:
        raise ValueError(f"unknown seed sizes {sorted(unknown)}; known: {sorted(DEFAULT_SIZES)}")
    size = {**DEFAULT_SIZES, **{k: int(v) for k, v in sizes.items()}}
    rnd, fake = random.Random(seed), Faker("sv_SE")
    fake.seed_instance(seed)
    with store.transaction():
        kept_docs = [(e, k, store.get(e, k)) for e in KEEP_ON_RESEED for k in store.keys(e)]
        kept_values = {name: store.get_value(name) for name in KEEP_VALUES}
        store.clear()
        for entity, key, doc in kept_docs:
            store.put(entity, key, doc or {})
        for name, value in kept_values.items():
            if value is not None:
                store.set_value(name, value)
        _company(store, rnd, fake)
        _accounts(store)
        _financial_years(store)
        _projects(store)
        _customers(store, rnd, fake, size["customers"])
        _suppliers(store, rnd, fake, size["suppliers"])
        _supplier_invoices(store, rnd, size)
    return {
        "customers": store.count(B.CUSTOMERS),
        "projects": store.count(B.PROJECTS),
        "suppliers": store.count(B.SUPPLIERS),
        "supplierinvoices": store.count(B.SUPPLIER_INVOICES),
        "accounts": store.count(B.ACCOUNTS),
        "financialyears": store.count(B.FINANCIAL_YEARS),
    }


def _put(store: Store, entity: str, key: str | int, doc: dict[str, Any], modified: str) -> None:
    doc["_sort"] = sort_key(str(key))
    store.put(entity, key, doc, modified=modified)


def _company(store: Store, rnd: random.Random, fake: Faker) -> None:
    name = _clean(f"{fake.last_name()} {rnd.choice(['Konsult', 'Projekt', 'Bygg'])} AB")
    org = organisation_number(rnd)
    street, postcode, city = _clean(fake.street_address()), fake.postcode(), _clean(fake.city())
    tenant_id = tenant_id_of(store)
    doc = B.default_company(tenant_id) | {
        "CompanyName": name,
        "OrganizationNumber": org,
        "Address": street,
        "ZipCode": postcode,
        "City": city,
        "VisitAddress": street,
        "VisitZipCode": postcode,
        "VisitCity": city,
        "DatabaseNumber": tenant_id,
        "Email": f"ekonomi@{name.split()[0].lower().translate(_ASCII)}.se",
        "Phone": fake.phone_number(),
        "VATNumber": f"SE{org.replace('-', '')}01",
        "ContactFirstName": _clean(fake.first_name()),
        "ContactLastName": _clean(fake.last_name()),
    }
    _put(store, B.COMPANY, "information", doc, _stamp(0))


def _accounts(store: Store) -> None:
    year = datetime.now(STOCKHOLM).year
    for index, (number, description, vat_code) in enumerate(ACCOUNTS):
        doc = {
            "Number": number,
            "Description": description,
            "Active": True,
            "VATCode": vat_code,
            "Year": year,
            "SRU": 0,
            "BalanceBroughtForward": 0.0,
            "BalanceCarriedForward": 0.0,
            "CostCenterSettings": ACCOUNT_RULES.get(number, ("", "ALLOWED"))[1],
            "ProjectSettings": ACCOUNT_RULES.get(number, ("ALLOWED", ""))[0],
            "TransactionInformationSettings": "ALLOWED",
        }
        _put(store, B.ACCOUNTS, number, doc, _stamp(index))


def _financial_years(store: Store) -> None:
    year = datetime.now(STOCKHOLM).year
    for year_id, calendar_year in ((1, year - 1), (2, year)):
        doc = {
            "Id": year_id,
            "FromDate": f"{calendar_year}-01-01",
            "ToDate": f"{calendar_year}-12-31",
            "AccountChartType": f"BAS {calendar_year}",
            "AccountingMethod": "ACCRUAL",
        }
        _put(store, B.FINANCIAL_YEARS, year_id, doc, _stamp(year_id))


def _projects(store: Store) -> None:
    projects = [
        ("9001", "Intern utveckling (endast Fortnox)", "ONGOING", "2025-01-01"),
        ("9002", "Projekt utan startdatum", "NOTSTARTED", ""),
    ]
    for index, (number, description, status, start) in enumerate(projects):
        doc = dict(F.PROJECT_DEFAULTS) | {
            "ProjectNumber": number,
            "Description": description,
            "Status": status,
            "StartDate": start,
        }
        _put(store, B.PROJECTS, number, doc, _stamp(10 + index))
    store.set_value("series:project", 9002)


def _swedish_company(rnd: random.Random, fake: Faker, name: str, email: str) -> dict[str, Any]:
    """The fields customers and suppliers share.

    They are name, organisation number, e-mail, a Swedish address and phone. Draws from ``rnd`` and
    ``fake`` in a fixed order (a seed's data is stable).
    """
    return {
        "Name": _clean(name),
        "OrganisationNumber": organisation_number(rnd),
        "Email": email,
        "Address1": _clean(fake.street_address()),
        "ZipCode": fake.postcode(),
        "City": _clean(fake.city()),
        "CountryCode": "SE",
        "Country": "Sverige",
        "Phone1": fake.phone_number(),
    }


def _customers(store: Store, rnd: random.Random, fake: Faker, count: int) -> None:
    for i in range(1, count + 1):
        number = str(B.CUSTOMER_SERIES_START + i)
        doc = dict(F.CUSTOMER_DEFAULTS) | {
            "CustomerNumber": number,
            **_swedish_company(rnd, fake, fake.company(), f"faktura{i}@example.se"),
        }
        _put(store, B.CUSTOMERS, number, doc, _stamp(100 + i))
    store.set_value("series:customer", B.CUSTOMER_SERIES_START + count)


def _suppliers(store: Store, rnd: random.Random, fake: Faker, count: int) -> None:
    for i in range(1, count + 1):
        number = str(i)
        name = f"{fake.last_name()} {rnd.choice(_TRADES)} AB"
        doc = dict(F.SUPPLIER_DEFAULTS) | {
            "SupplierNumber": number,
            **_swedish_company(rnd, fake, name, f"order{i}@leverantor{i}.se"),
            "BG": f"{rnd.randint(100, 999)}-{rnd.randint(1000, 9999)}",
        }
        _put(store, B.SUPPLIERS, number, doc, _stamp(1000 + i))
    store.set_value("series:supplier", count)


_TRADES = ("Bygghandel", "Data", "Resor", "Kontorsvaror", "Fastigheter", "Åkeri")
# What each supplier invoice of the seed is, by its index modulo 10 (so that every kind exists).
_KINDS = (
    "header_project",
    "header_project",
    "header_project",
    "mixed_projects",
    "row_projects_only",
    "unbooked",
    "cancelled",
    "no_project",
    "project_9001",
    "not_approved",
)


def _supplier_invoices(store: Store, rnd: random.Random, size: dict[str, int]) -> None:
    count, moment_projects = size["supplierinvoices"], max(1, size["moment_projects"])
    suppliers = max(1, size["suppliers"])
    if size["suppliers"] == 0 and count:
        raise ValueError("supplierinvoices need at least one supplier (suppliers >= 1)")
    today = datetime.now(STOCKHOLM).replace(hour=0, minute=0, second=0, microsecond=0)
    now = datetime.now(STOCKHOLM).replace(tzinfo=None)
    ledger = B.SupplierInvoices(store)
    for i in range(count):
        kind = _KINDS[i % len(_KINDS)]
        days_back = (i * 59) // max(1, count - 1)  # spread over the last 60 days
        invoice_day = today - timedelta(days=days_back)
        project = str(5000 + rnd.randint(1, moment_projects))
        header = {
            "header_project": project,
            "mixed_projects": project,
            "unbooked": project,
            "cancelled": project,
            "not_approved": project,
            "project_9001": "9001",
        }.get(kind, "")
        cost_rows = []
        for r in range(rnd.randint(1, 3)):
            account = rnd.choice(COST_ACCOUNTS)
            amount = money(rnd.randint(200, 20000) + rnd.choice((0, 0, 0.5, 0.25)))
            row_project = ""
            if kind == "row_projects_only" or (kind == "mixed_projects" and r == 1):
                row_project = str(5000 + rnd.randint(1, moment_projects))
            cost_rows.append((account, amount, row_project))
        extra = _EXTRAS[i % len(_EXTRAS)]
        rows = [
            _row(acc, "", debit=amount, project=p, text=COST_TEXTS[acc])
            for acc, amount, p in cost_rows
        ]
        vat_type = sales_type = None
        header_amounts = {"Freight": 0.0, "AdministrationFee": 0.0, "RoundOffValue": 0.0}
        if extra == "freight_fee":
            header_amounts |= {"Freight": 149.0, "AdministrationFee": 29.0}
            cost_rows += [(4010, 149.0, ""), (6991, 29.0, "")]
            rows.append(_row(4010, "FRT", debit=149.0, text="Frakt"))
            rows.append(_row(6991, "AFE", debit=29.0, text="Fakturaavgift"))
        vat = money(sum(a * VAT_BY_ACCOUNT.get(acc, 25.0) / 100 for acc, a, _ in cost_rows))
        if extra in REVERSE_CHARGE:
            # The buyer accounts for the VAT: no input VAT row, a paired debit/credit instead.
            (debit_code, debit_account), (credit_code, credit_account), vat_type, sales_type = (
                REVERSE_CHARGE[extra]
            )
            reverse_vat, vat = vat, 0.0
            rows.append(_row(debit_account, debit_code, debit=reverse_vat))
            rows.append(_row(credit_account, credit_code, credit=reverse_vat))
        if extra == "unknown":
            # Codes Fortnox lists without a published meaning: on a balance account and a cost one.
            rows.append(_row(PREPAID_ACCOUNT, "PRE", debit=120.0, text="Förutbetald avgift"))
            rows.append(_row(PREPAID_ACCOUNT, "ACC", debit=80.0, text="Periodisering"))
            rows.append(_row(6991, "GWB", debit=60.0, text=COST_TEXTS[6991]))
        total = money(sum(r["Debit"] - r["Credit"] for r in rows) + vat)
        if extra == "round_off" and (rounded := float(round(total))) != total:
            difference = money(rounded - total)
            rows.append(
                _row(
                    ROUND_OFF_ACCOUNT,
                    "ROV",
                    debit=max(difference, 0.0),
                    credit=max(-difference, 0.0),
                )
            )
            total = rounded
            header_amounts["RoundOffValue"] = difference
        rows.insert(0, _row(B.PAYABLES_ACCOUNT, "TOT", credit=total))
        if vat:
            rows.append(_row(B.INPUT_VAT_ACCOUNT, "VAT", debit=vat))
        supplier = store.get(B.SUPPLIERS, str(i % suppliers + 1)) or {}
        given = str(i + 1)
        doc = ledger.blank() | {
            "GivenNumber": given,
            "SupplierNumber": supplier.get("SupplierNumber", "1"),
            "SupplierName": supplier.get("Name", ""),
            "InvoiceNumber": str(rnd.randint(10000, 99999)),
            "InvoiceDate": invoice_day.date().isoformat(),
            "DueDate": (invoice_day + timedelta(days=30)).date().isoformat(),
            "FinalPayDate": (invoice_day + timedelta(days=30)).date().isoformat(),
            "Project": header,
            "Total": total,
            "VAT": vat,
            "Balance": total,
            "SupplierInvoiceRows": ledger.finish_rows(rows, check_projects=False),
            **header_amounts,
        }
        if vat_type is not None:
            doc["VATType"], doc["SalesType"] = vat_type, sales_type
        if kind not in ("unbooked", "cancelled"):
            ledger.book(doc)
        if kind not in ("unbooked", "cancelled", "not_approved"):
            doc[F.AUTHORIZE_PENDING], doc[F.AUTHORIZER] = False, "Anna Andersson"
        if kind == "cancelled":
            doc["Cancelled"], doc["Balance"] = True, 0.0
        # Posted a few days after the invoice date; every third invoice older than 35 days was
        # posted late (within the last two days): the late postings a 30-day window misses.
        if days_back > 35 and i % 3 == 0:
            posted = now - timedelta(minutes=rnd.randint(10, 2 * 24 * 60))
        else:
            posted = min(
                now,
                invoice_day.replace(tzinfo=None)
                + timedelta(days=rnd.randint(0, 5), hours=9, minutes=rnd.randint(0, 480)),
            )
        _put(store, B.SUPPLIER_INVOICES, given, doc, posted.strftime("%Y-%m-%d %H:%M:%S"))
    store.set_value("series:supplierinvoice", count)


def _row(
    account: int,
    code: str,
    *,
    debit: float = 0.0,
    credit: float = 0.0,
    project: str = "",
    text: str = "",
) -> dict[str, Any]:
    return {
        "Account": account,
        "Code": code,
        "Debit": debit,
        "Credit": credit,
        "Project": project,
        "CostCenter": "",
        "TransactionInformation": text,
        "ItemDescription": text,
        "Price": 0.0,
        "Quantity": 0,
        "Unit": "",
    }


__all__ = ["DEFAULT_SIZES", "now_local", "reseed"]
