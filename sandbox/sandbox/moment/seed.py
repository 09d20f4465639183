"""Deterministic Swedish demo data for a Moment company (``seed_company``).

Same seed N, same data: ``random.Random(N)`` and ``Faker("sv_SE")`` seeded with N, timestamps of
customers and projects derived from a fixed reference instant. Invoice and expense dates are
relative to the day the seed runs (so they fall inside a 30-day window); their timestamps are the
evening before their date, so nothing is modified "in the future".

Numbering shared with the Fortnox seed: customers ``1000 + i``, projects ``5000 + i`` (project i
belongs to customer ``(i - 1) % customers + 1``), invoice numbers from 7001.

Hard cases on purpose, at fixed positions so a default seed always has them: customers without
organisation number or e-mail, foreign customers (NO/DK/DE/FI), project names over 50 characters,
projects without start date, price models with expensesBillable false/true/null, finalised
invoices with 25/12/6 % in one invoice, drafts, one credit invoice, invoices without project,
invoiced expenses.

Faker is slow per call (~25 µs), so it fills small pools once and records are composed from them
with the seeded ``Random``: 100,000 records seed in seconds, in one transaction.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from faker import Faker

from sandbox.moment import clock
from sandbox.moment.model import CUSTOMERS, INVOICES, PROJECT_EXPENSES, PROJECTS, luhn_digit
from sandbox.moment.repository import Company

DEFAULT_SIZES = {"customers": 30, "projects": 20, "invoices": 40, "expenses": 25}
REFERENCE = datetime(2025, 1, 7, 8, 0, tzinfo=clock.STOCKHOLM)

_SUFFIXES = (
    "AB", "AB", "AB", "HB", "Konsult AB", "Bygg AB", "& Partners AB", "Fastigheter AB",
    "Teknik AB", "Redovisning AB", "Arkitekter AB", "Elservice AB",
)  # fmt: skip
# country -> (two (city, postal code, street) choices, legal form, top-level domain)
_FOREIGN = {
    "NO": (("Oslo", "0150", "Karl Johans gate"), ("Bergen", "5003", "Bryggen"), "AS", "no"),
    "DK": (("København K", "1050", "Strøget"), ("Aarhus C", "8000", "Søndergade"), "ApS", "dk"),
    "DE": (("Berlin", "10115", "Friedrichstraße"), ("Hamburg", "20095", "Spitalerstraße"),
           "GmbH", "de"),
    "FI": (("Helsinki", "00100", "Mannerheimintie"), ("Tampere", "33100", "Hämeenkatu"),
           "Oy", "fi"),
}  # fmt: skip
_PROJECT_NAMES = (
    "Implementering av {system}",
    "Ombyggnad kontor {city}",
    "Förstudie {topic}",
    "Drift och förvaltning {year}",
    "Konsultstöd {topic}",
    "Ny webbplats och e-handel",
    "Energikartläggning {city}",
    "Utbildning i {topic}",
    "Tillbyggnad lager {city}",
)
_LONG_PROJECT_NAMES = (
    "Ramavtal för konsulttjänster inom systemutveckling, integration och förvaltning {year}–{next}",
    "Ombyggnad och energieffektivisering av kontorsfastigheten på {street} i {city}",
    "Förstudie och upphandlingsstöd för nytt affärssystem med integration mot ekonomi och lön",
)
_SYSTEMS = ("affärssystem", "CRM", "tidrapportering", "dokumenthantering", "BI-plattform")
_TOPICS = ("informationssäkerhet", "GDPR", "hållbarhetsrapportering", "digitalisering", "ledarskap")
# (supplier, cost account, VAT rate %): realistic Swedish suppliers for project expenses.
_SUPPLIERS = (
    ("Biltema Sverige AB", "5460", 25),
    ("Clas Ohlson AB", "5410", 25),
    ("SJ AB", "5800", 6),
    ("Scandic Hotels AB", "5800", 12),
    ("Telia Sverige AB", "6212", 25),
    ("Dustin Sverige AB", "6540", 25),
    ("Circle K Sverige AB", "5611", 25),
    ("Ahlsell Sverige AB", "4010", 25),
    ("Beijer Byggmaterial AB", "4010", 25),
    ("Staples Sweden AB", "6110", 25),
    ("Bahnhof AB", "6230", 25),
    ("Vasakronan AB", "5010", 25),
    ("Byggmax AB", "6991", 25),
)
# (description, sales account, VAT rate %) for invoice lines; one invoice in four carries all three.
_LINE_KINDS = (
    ("Konsulttjänster", "3001", 25),
    ("Kurslitteratur", "3003", 6),
    ("Logi under konferens", "3002", 12),
)
_HOURLY_RATES = (950, 1100, 1250, 1450)


@dataclass
class _Pools:
    """Faker output drawn once per seed; records pick from these with the seeded Random."""

    last_names: list[str]
    first_names: list[str]
    streets: list[str]
    cities: list[str]


def _pools(faker: Faker, size: int) -> _Pools:
    size = max(20, min(size, 400))
    return _Pools(
        last_names=[faker.last_name() for _ in range(size)],
        first_names=[faker.first_name() for _ in range(size // 2)],
        streets=[faker.street_name() for _ in range(size // 2)],
        cities=[faker.city() for _ in range(max(10, size // 4))],
    )


def seed_company(company: Company, seed: int, sizes: dict[str, int]) -> dict[str, int]:
    """Fill ``company`` (assumed empty of customers and the rest) and return counts per entity."""
    counts = {**DEFAULT_SIZES, **{k: v for k, v in sizes.items() if k in DEFAULT_SIZES}}
    for name, value in counts.items():
        if value < 0:
            raise ValueError(f"seed size '{name}' must be 0 or more, got {value}")
    if counts["projects"] and not counts["customers"]:
        raise ValueError("projects need customers: give 'customers' at least 1")
    if counts["expenses"] and not counts["projects"]:
        raise ValueError("expenses need projects: give 'projects' at least 1")
    if counts["invoices"] and not counts["customers"]:
        raise ValueError("invoices need customers: give 'customers' at least 1")
    rng = random.Random(seed)
    faker = Faker("sv_SE")
    faker.seed_instance(seed)
    pools = _pools(faker, max(counts["customers"], 1))
    today = clock.today()
    with company.store.transaction():
        customers = company.bulk_create(CUSTOMERS, _customers(counts["customers"], rng, pools))
        customer_countries = [c["countryCode"] for c in customers]
        projects = company.bulk_create(
            PROJECTS, _projects(counts["projects"], counts["customers"], rng, pools)
        )
        company.set_series("customerNumber", 1000 + counts["customers"])
        company.set_series("projectNumber", 5000 + counts["projects"])
        _invoices(company, counts["invoices"], projects, customer_countries, rng, today)
        _expenses(company, counts["expenses"], len(projects), rng, today)
    return {
        "customers": company.count(CUSTOMERS),
        "projects": company.count(PROJECTS),
        "invoices": company.count(INVOICES),
        "expenses": company.count(PROJECT_EXPENSES),
    }


def organisation_number(rng: random.Random, legal_form: str) -> str:
    """A valid Swedish organisation number NNNNNN-NNNN: group digit, third digit ≥ 2, Luhn."""
    group = {"HB": "9", "AB": "5"}.get(legal_form, rng.choice("5579"))
    digits = group + str(rng.randint(0, 9)) + str(rng.randint(2, 9))
    digits += "".join(str(rng.randint(0, 9)) for _ in range(6))
    digits += str(luhn_digit(digits))
    return f"{digits[:6]}-{digits[6:]}"


def _slug(name: str) -> str:
    text = name.lower()
    for src, dst in (("å", "a"), ("ä", "a"), ("ö", "o"), ("ø", "o"), ("æ", "ae"), ("ü", "u"),
                     ("ß", "ss"), ("é", "e")):  # fmt: skip
        text = text.replace(src, dst)
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w and w not in {"ab", "hb", "as", "aps"}]
    return "-".join(words[:2]) or "foretaget"


def _customers(
    count: int, rng: random.Random, pools: _Pools
) -> list[tuple[dict[str, Any], datetime, datetime]]:
    rows = []
    foreign_codes = list(_FOREIGN)
    for i in range(1, count + 1):
        country = foreign_codes[(i // 7) % 4] if i % 7 == 5 else "SE"
        last = rng.choice(pools.last_names)
        if country == "SE":
            suffix = rng.choice(_SUFFIXES)
            if i == 1:
                name = "Åkerström & Öberg Byggkonsult AB"  # åäö on purpose in the first record
            elif rng.random() < 0.3:
                name = (
                    f"{last} & {rng.choice(pools.last_names)} {suffix.removeprefix('& Partners ')}"
                )
            else:
                name = f"{last} {suffix}"
            city = rng.choice(pools.cities)
            postal = f"{rng.randint(100, 984)} {rng.randint(10, 99):02d}"
            street = f"{rng.choice(pools.streets)} {rng.randint(1, 120)}"
            legal_form = "HB" if name.endswith("HB") else "AB"
            org = None if i % 10 == 4 else organisation_number(rng, legal_form)
        else:
            first, second, legal_form, _tld = _FOREIGN[country]
            city, postal, street_name = rng.choice((first, second))
            name = f"{last} {legal_form}"
            street = f"{street_name} {rng.randint(1, 80)}"
            org = None  # a foreign company has no Swedish organisation number
        tld = "se" if country == "SE" else _FOREIGN[country][3]
        email = (
            None
            if i % 10 == 6
            else f"{rng.choice(('info', 'faktura', 'ekonomi'))}@{_slug(name)}.{tld}"
        )
        address2 = None
        if i % 4 == 0:
            address2 = rng.choice(
                (
                    f"Box {rng.randint(100, 9999)}",
                    f"c/o {rng.choice(pools.first_names)} {rng.choice(pools.last_names)}",
                    f"Våning {rng.randint(2, 9)}",
                )
            )
        body = {
            "customerNumber": str(1000 + i),
            "name": name,
            "organizationNumber": org,
            "email": email,
            "address1": street,
            "address2": address2,
            "postalCode": postal,
            "city": city,
            "countryCode": country,
        }
        created = REFERENCE + timedelta(seconds=20 * i)
        modified = created + timedelta(days=rng.randint(1, 60)) if i % 3 == 0 else created
        rows.append((body, created, modified))
    return rows


def _projects(
    count: int, customers: int, rng: random.Random, pools: _Pools
) -> list[tuple[dict[str, Any], datetime, datetime]]:
    rows = []
    for i in range(1, count + 1):
        year = REFERENCE.year
        fill = {
            "system": rng.choice(_SYSTEMS),
            "topic": rng.choice(_TOPICS),
            "city": rng.choice(pools.cities),
            "street": f"{rng.choice(pools.streets)} {rng.randint(1, 60)}",
            "year": year,
            "next": year + 1,
        }
        template = _LONG_PROJECT_NAMES[i % 3] if i % 9 == 3 else rng.choice(_PROJECT_NAMES)
        name = template.format(**fill)
        start: date | None = REFERENCE.date() + timedelta(days=rng.randint(-200, 250))
        if i % 6 == 2:
            start = None  # no start date: the Fortnox side must fall back to createdDate
        end = None
        if start is not None and i % 7 == 0:
            state, end = "FINISHED", start + timedelta(days=rng.randint(30, 180))
        elif start is None or start > REFERENCE.date():
            state = "PLANNED"
        else:
            state = "ONGOING"
            end = start + timedelta(days=365) if rng.random() < 0.3 else None
        billable = {1: False, 3: True}.get(i % 5)  # false, true and null (no setting) price models
        body = {
            "projectNumber": str(5000 + i),
            "name": name,
            "customer": {"customerNumber": str(1000 + (i - 1) % customers + 1)},
            "startDate": None if start is None else start.isoformat(),
            "endDate": None if end is None else end.isoformat(),
            "projectState": state,
            "priceModel": {"expensesBillable": billable},
        }
        created = REFERENCE + timedelta(days=1, seconds=30 * i)
        modified = created + timedelta(days=rng.randint(1, 90)) if i % 4 == 1 else created
        rows.append((body, created, modified))
    return rows


def _evening_before(day: date, offset_seconds: int) -> datetime:
    """A timestamp on the evening before ``day``: always in the past for dates up to today."""
    start = datetime.combine(day - timedelta(days=1), time(17, 0), tzinfo=clock.STOCKHOLM)
    return start + timedelta(seconds=offset_seconds % 14_400)


def _invoice_lines(rng: random.Random, foreign: bool, all_rates: bool) -> list[dict[str, Any]]:
    rate = rng.choice(_HOURLY_RATES)
    if foreign:  # export of services: 0 % VAT on the export account
        return [
            {"description": "Konsulttjänster (export)", "quantity": rng.randint(8, 120),
             "unitPrice": rate, "vatRate": 0, "accountNumber": "3004"},
        ]  # fmt: skip
    if all_rates:
        return [
            {"description": desc,
             "quantity": rng.randint(1, 40) if vat != 25 else rng.randint(8, 160),
             "unitPrice": rate if vat == 25 else rng.choice((450, 890, 1290)), "vatRate": vat,
             "accountNumber": account}
            for desc, account, vat in _LINE_KINDS
        ]  # fmt: skip
    lines = [
        {"description": "Konsulttimmar", "quantity": rng.randint(4, 160) / 2, "unitPrice": rate,
         "vatRate": 25, "accountNumber": "3001"},
    ]  # fmt: skip
    if rng.random() < 0.5:
        lines.append(
            {"description": "Projektledning", "quantity": rng.randint(2, 40), "unitPrice": 1350,
             "vatRate": 25, "accountNumber": "3001"},
        )  # fmt: skip
    return lines


def _invoices(
    company: Company,
    count: int,
    projects: list[dict[str, Any]],
    countries: list[str],
    rng: random.Random,
    today: date,
) -> None:
    drafts = max(1, count // 10) if count >= 5 else 0
    last_final = count - drafts
    credit_at = last_final if last_final >= 3 else None  # the last finalised one is a credit
    span = 120  # days the invoice dates spread over, newest today

    def invoice_date(k: int) -> date:
        return today - timedelta(days=round((count - k) * span / max(count, 1)))

    rows = []
    for k in range(1, count + 1):
        if k == credit_at:
            continue
        project = projects[(k - 1) % len(projects)] if projects and k % 6 != 0 else None
        customer_index = (
            int(project["customer"]["customerNumber"]) - 1001
            if project is not None
            else (k * 7) % len(countries)
        )
        day = invoice_date(k)
        body = {
            "customer": {"customerNumber": str(1001 + customer_index)},
            "project": None if project is None else {"id": project["id"]},
            "invoiceDate": day.isoformat(),
            "dueDate": (day + timedelta(days=30)).isoformat(),
            "invoiceLines": _invoice_lines(
                rng, countries[customer_index] != "SE", all_rates=k % 4 == 1
            ),
        }
        created = _evening_before(day, 60 * k)
        rows.append((k, body, created))
    invoices = company.bulk_create(INVOICES, ((b, c, c) for _, b, c in rows))
    finalized = company.finalize_many(
        (invoice, created + timedelta(minutes=30))
        for invoice, (k, _, created) in zip(invoices, rows, strict=True)
        if k <= last_final
    )
    if credit_at is not None:
        # A credit note: a negative copy of the first invoice that refers to it (documented rule).
        original = finalized[0]
        day = invoice_date(credit_at)
        created = _evening_before(day, 60 * credit_at)
        credit = company.create(
            INVOICES,
            {
                "customer": {"id": original["customer"]["id"]},
                "project": original["project"],
                "invoiceDate": day.isoformat(),
                "dueDate": (day + timedelta(days=30)).isoformat(),
                "creditedInvoiceNumber": original["invoiceNumber"],
                "invoiceLines": [
                    {**line, "quantity": -line["quantity"]} for line in original["invoiceLines"]
                ],
            },
            at=created,
        )
        company.finalize_invoice(credit["id"], at=created + timedelta(minutes=30))


def _expenses(company: Company, count: int, projects: int, rng: random.Random, today: date) -> None:
    rows = []
    for j in range(1, count + 1):
        supplier, account, vat = _SUPPLIERS[rng.randrange(len(_SUPPLIERS))]
        amount = round(rng.uniform(150, 25_000), 2)
        expense_date = today - timedelta(days=rng.randint(0, 45))
        project_number = str(5000 + (j - 1) % projects + 1)
        body = {
            "project": {"projectNumber": project_number},
            "expenseDate": expense_date.isoformat(),
            "description": f"{supplier.removesuffix(' AB')}: inköp till projekt {project_number}",
            "supplierName": supplier,
            "amount": amount,
            "vatAmount": round(amount * vat / 100, 2),
            "currency": "SEK",
            "accountNumber": account,
        }
        created = _evening_before(expense_date, 37 * j)
        rows.append((body, created, created))
    for j, expense in enumerate(company.bulk_create(PROJECT_EXPENSES, rows), start=1):
        if j % 8 == 0:  # already invoiced in Moment: read-only for the importer
            created = clock.parse_instant(expense["createdDate"])
            company.set_invoiced(expense["id"], True, at=created + timedelta(hours=1))
