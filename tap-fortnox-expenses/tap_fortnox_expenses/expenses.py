"""Which rows of a Fortnox supplier invoice are project expenses, and the record each one becomes.

Owns the qualification rules (booked, not cancelled, carries a project, is a cost row, passes the
``account_numbers``/``include_projects`` filters; see docs/SUPPLIER-INVOICES.md), the reason a
row is left out (counted per reason in the run summary) and the ``project_expenses`` record of the
Singer contract with target-moment. Pure functions over the JSON Fortnox returns: no HTTP, no state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

STOCKHOLM: Final = ZoneInfo("Europe/Stockholm")
BOOK_CURRENCY: Final = "SEK"
CENT: Final = Decimal("0.01")

# Why a row is not emitted; these strings are the keys of the run summary's skipped_reasons.
UNBOOKED: Final = "unbooked"
CANCELLED: Final = "cancelled"
NO_PROJECT: Final = "no project"
FILTERED_ACCOUNT: Final = "filtered account"
FILTERED_PROJECT: Final = "filtered project"
SKIP_REASONS: Final = (
    UNBOOKED,
    CANCELLED,
    NO_PROJECT,
    FILTERED_ACCOUNT,
    FILTERED_PROJECT,
)

# Supplier-invoice row ``Code`` values (Fortnox's OpenAPI enum), and which rows are costs; the table
# with sources and reasons is docs/SUPPLIER-INVOICES.md. Cost rows: no code (the purchase itself),
# freight (FRT) and the supplier's administration fee (AFE).
COST_CODES: Final = frozenset({"", "FRT", "AFE"})
# Not costs: payables (TOT), input VAT (VAT), round-off (ROV), and the paired VAT rows of reverse
# charge — construction (CND/CNC), EU goods (PRD/PRC), EU services (SRD/SRC).
NON_COST_CODES: Final = frozenset({"TOT", "VAT", "ROV", "CND", "CNC", "PRD", "PRC", "SRD", "SRC"})
# Codes Fortnox lists without a published meaning (PRE, GWB, ACC), and any other code: a cost only
# on a BAS cost account (classes 4–7: goods, other external costs, personnel, depreciation).
COST_ACCOUNTS: Final = range(4000, 8000)

_log = logging.getLogger(__name__)
_warned_codes: set[str] = set()


@dataclass(frozen=True)
class ExpenseFilters:
    """The ``account_numbers`` and ``include_projects`` settings; ``None`` lets all through."""

    account_numbers: frozenset[int] | None = None
    project_numbers: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExpenseFilters:
        accounts = config.get("account_numbers")
        projects = config.get("include_projects")
        return cls(
            account_numbers=frozenset(int(a) for a in accounts) if accounts else None,
            project_numbers=frozenset(str(p).strip() for p in projects) if projects else None,
        )


@dataclass(frozen=True)
class RowOutcome:
    """One cost row of a supplier invoice: its record, or the reason it is not an expense.

    ``row_key`` is the row's position-independent identity within its invoice (see
    :func:`row_keys`); ``row_index`` its position, for people and for the legacy key.
    """

    given_number: int
    row_index: int
    record: dict[str, Any] | None
    skip_reason: str | None
    row_key: str

    @property
    def source_key(self) -> str:
        return source_key(self.given_number, self.row_key)


SOURCE_KEY_PREFIX: Final = "fortnox-si-"
# Row keys start with a letter, so no key can be mistaken for a legacy ``...-{row_index}`` one.
ROW_KEY_PREFIX: Final = "r"
ROW_KEY_HEX_DIGITS: Final = 12


def source_key(given_number: int, row_key: str) -> str:
    """The Fortnox source key target-moment writes to Moment's ``externalReference``:
    ``fortnox-si-{GivenNumber}-{row_key}`` (see :func:`row_keys`)."""
    return f"{SOURCE_KEY_PREFIX}{given_number}-{row_key}"


def legacy_source_key(given_number: int, row_index: int) -> str:
    """The key of versions before content keys: ``fortnox-si-{GivenNumber}-{row_index}``.

    Sent beside the new key so that target-moment can adopt an expense imported under it."""
    return f"{SOURCE_KEY_PREFIX}{given_number}-{row_index}"


def row_identity(row: Mapping[str, Any], header_project: str | None) -> tuple[str, ...]:
    """What identifies a cost row within its invoice, whatever its position: its project (row,
    else header), account, cost center, article and texts. Amounts, quantities and prices are
    left out, so a corrected amount updates the same expense."""
    return (
        _text_or_none(row.get("Project")) or header_project or "",
        str(row.get("Account") or "").strip(),
        _text_or_none(row.get("CostCenter")) or "",
        _text_or_none(row.get("ArticleNumber")) or "",
        _text_or_none(row.get("TransactionInformation")) or "",
        _text_or_none(row.get("ItemDescription")) or "",
    )


def row_keys(
    rows: Sequence[tuple[int, Mapping[str, Any]]], header_project: str | None
) -> dict[int, str]:
    """Row index → row key (``r`` + 12 hex digits) for the cost rows of one invoice.

    The key hashes :func:`row_identity` and an occurrence counter among rows of equal identity
    (the first is 0, the next 1, in row order), so re-ordering rows keeps every key, and only
    rows that are identical but for their amounts trade keys when they swap places.
    """
    seen: Counter[tuple[str, ...]] = Counter()
    keys: dict[int, str] = {}
    for index, row in rows:
        identity = row_identity(row, header_project)
        occurrence = seen[identity]
        seen[identity] += 1
        material = json.dumps([*identity, occurrence], ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha256(material.encode()).hexdigest()[:ROW_KEY_HEX_DIGITS]
        keys[index] = f"{ROW_KEY_PREFIX}{digest}"
    return keys


def removal_record(given_number: int, row_key: str) -> dict[str, Any]:
    """The record of a row the tap emitted before and the changed invoice no longer has as an
    expense (removed, moved, or its invoice cancelled): target-moment zeroes its expense."""
    return {
        "source_key": source_key(given_number, row_key),
        "given_number": given_number,
        "removed": True,
    }


def flag(value: Any) -> bool:
    """Fortnox booleans arrive as JSON booleans, and in some payloads as ``"true"``/``"false"``."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


class UnreadableAmount(ValueError):
    """An amount Fortnox sent that is not a number: never read as 0 (the expense would be lost)."""


_AMOUNT = re.compile(r"-?\d+(?:[.,]\d+)?")


def decimal_or_none(value: Any, field: str = "amount") -> Decimal | None:
    """Amounts come as numbers, or as strings (SupplierInvoice ``Total``, ``VAT``, ``Balance`` are
    strings in Fortnox's OpenAPI, docs/fortnox-contract/supplier_invoice.json); ``""`` and null are
    none. A string is digits with an optional ``.`` or ``,`` decimal part (spaces, also no-break
    spaces, between groups of digits are dropped); anything else raises :class:`UnreadableAmount`.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    text = re.sub(r"[ \u00a0\u202f]", "", str(value))
    if not _AMOUNT.fullmatch(text):
        raise UnreadableAmount(f"{field} is {value!r}, not an amount")
    return Decimal(text.replace(",", "."))


def parse_fortnox_timestamp(value: Any) -> datetime | None:
    """A zone-less Fortnox time stamp (``2024-05-01 13:45[:00]``) as Stockholm time.

    Fortnox gives no zone; Stockholm is inferred (docs/FORTNOX-API.md, "Dates and times").
    """
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=STOCKHOLM)
    return parsed


def parse_fortnox_date(value: Any) -> date | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def invoice_skip_reason(invoice: Mapping[str, Any]) -> str | None:
    """Why no row of this supplier invoice is an expense, or ``None`` when it qualifies.

    Booked and not cancelled is the whole rule; cancelled wins over unbooked (a cancelled invoice
    is never booked later). There is no approval rule: Fortnox publishes no approval state of a
    supplier invoice (``ApprovalState`` is a voucher field), and where a company uses approval of
    bookkeeping the invoice is booked through that approval (docs/SUPPLIER-INVOICES.md).
    """
    # Single GETs carry ``Cancelled``; list items call it ``Cancel``.
    if flag(invoice.get("Cancelled")) or flag(invoice.get("Cancel")):
        return CANCELLED
    if not flag(invoice.get("Booked")):
        return UNBOOKED
    return None


def is_cost_row(row: Mapping[str, Any]) -> bool:
    """Whether a supplier-invoice row is a cost (a candidate expense), by its ``Code``.

    A code without a published meaning is a cost only on a cost account (BAS classes 4–7), so a
    new Fortnox code never turns balance-sheet or VAT postings into expenses, and a cost posted
    with it is not lost; it is logged once per code (per run).
    """
    code = _code(row)
    if code in COST_CODES:
        return True
    if code in NON_COST_CODES:
        return False
    try:
        cost = int(row.get("Account") or 0) in COST_ACCOUNTS
    except (TypeError, ValueError):
        cost = False
    if code not in _warned_codes:
        _warned_codes.add(code)
        _log.warning(
            "Supplier invoice row code %r has no published meaning: its rows count as expenses "
            "only on cost accounts 4000-7999 (this one, account %s, %s); see "
            "docs/SUPPLIER-INVOICES.md",
            code,
            row.get("Account"),
            "is" if cost else "is not",
        )
    return cost


def _uses_invoice_currency(invoice: Mapping[str, Any]) -> bool:
    """Foreign-currency invoices carry row amounts in their own currency in ``DebitCurrency``."""
    currency = str(invoice.get("Currency") or BOOK_CURRENCY).upper()
    return currency != BOOK_CURRENCY


def row_amount(row: Mapping[str, Any], *, invoice_currency: bool) -> Decimal:
    """Debit − Credit of a row, in the invoice currency when it is not SEK and Fortnox gives it."""
    if invoice_currency and (
        row.get("DebitCurrency") not in (None, "") or row.get("CreditCurrency") not in (None, "")
    ):
        names = ("DebitCurrency", "CreditCurrency")
    else:
        names = ("Debit", "Credit")
    debit, credit = (decimal_or_none(row.get(name), name) or Decimal(0) for name in names)
    return debit - credit


def invoice_vat(invoice: Mapping[str, Any], *, invoice_currency: bool) -> Decimal | None:
    """The invoice's input VAT: its VAT rows when it has them (same basis as the cost rows), else
    the header ``VAT``; ``None`` when Fortnox gives neither."""
    rows = [r for r in invoice.get("SupplierInvoiceRows") or [] if _code(r) == "VAT"]
    if rows:
        return sum((row_amount(r, invoice_currency=invoice_currency) for r in rows), Decimal(0))
    return decimal_or_none(invoice.get("VAT"), "VAT")


def _code(row: Mapping[str, Any]) -> str:
    return str(row.get("Code") or "").strip().upper()


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: Decimal) -> float:
    """JSON number for a money amount, rounded to öre."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def project_expense_rows(
    invoice: Mapping[str, Any],
    filters: ExpenseFilters | None = None,
    *,
    modified: datetime | None = None,
) -> Iterator[RowOutcome]:
    """One :class:`RowOutcome` per cost row of a supplier invoice read with its rows (single GET).

    ``row_index`` is the row's 0-based position in ``SupplierInvoiceRows`` (payables and VAT rows
    keep their positions); the key does not depend on it (:func:`row_keys`). ``modified`` is
    when Fortnox last changed the invoice, if known (emitted as ``invoice_modified``).
    """
    filters = filters or ExpenseFilters()
    given_number = int(invoice["GivenNumber"])
    rows: list[Mapping[str, Any]] = list(invoice.get("SupplierInvoiceRows") or [])
    invoice_reason = invoice_skip_reason(invoice)
    foreign = _uses_invoice_currency(invoice)
    cost_rows = [(i, r) for i, r in enumerate(rows) if is_cost_row(r)]
    try:
        total_cost = sum(
            (row_amount(r, invoice_currency=foreign) for _, r in cost_rows), Decimal(0)
        )
        total_vat = invoice_vat(invoice, invoice_currency=foreign)
    except UnreadableAmount as exc:
        raise UnreadableAmount(
            f"supplier invoice {given_number}: {exc}; the run stops without writing state, "
            "so the next run reads the invoice again"
        ) from None
    header_project = _text_or_none(invoice.get("Project"))
    keys = row_keys(cost_rows, header_project)
    for index, row in cost_rows:
        reason = invoice_reason or _row_skip_reason(row, header_project, filters)
        if reason is not None:
            yield RowOutcome(given_number, index, None, reason, keys[index])
            continue
        amount = row_amount(row, invoice_currency=foreign)
        vat: Decimal | None = None
        if total_vat is not None and total_cost != 0:
            vat = total_vat * amount / total_cost
        record = _expense_record(
            invoice,
            row,
            given_number=given_number,
            row_index=index,
            row_key=keys[index],
            project_number=_text_or_none(row.get("Project")) or header_project or "",
            amount=amount,
            vat=vat,
            modified=modified,
        )
        yield RowOutcome(given_number, index, record, None, keys[index])


def _row_skip_reason(
    row: Mapping[str, Any], header_project: str | None, filters: ExpenseFilters
) -> str | None:
    project = _text_or_none(row.get("Project")) or header_project
    if project is None:
        return NO_PROJECT
    if filters.project_numbers is not None and project not in filters.project_numbers:
        return FILTERED_PROJECT
    if filters.account_numbers is not None:
        try:
            if int(row["Account"]) not in filters.account_numbers:
                return FILTERED_ACCOUNT
        except (KeyError, TypeError, ValueError):
            return FILTERED_ACCOUNT
    return None


def _expense_record(
    invoice: Mapping[str, Any],
    row: Mapping[str, Any],
    *,
    given_number: int,
    row_index: int,
    row_key: str,
    project_number: str,
    amount: Decimal,
    vat: Decimal | None,
    modified: datetime | None,
) -> dict[str, Any]:
    expense_date = parse_fortnox_date(invoice.get("InvoiceDate"))
    description = (
        _text_or_none(row.get("TransactionInformation"))
        or _text_or_none(row.get("ItemDescription"))
        or _text_or_none(row.get("AccountDescription"))
        or _text_or_none(invoice.get("Comments"))
    )
    return {
        "source_key": source_key(given_number, row_key),
        "legacy_source_key": legacy_source_key(given_number, row_index),
        "given_number": given_number,
        "row_index": row_index,
        "project_number": project_number,
        "expense_date": expense_date.isoformat() if expense_date else None,
        "account_number": int(row["Account"]),
        "description": description,
        "amount": _number(amount),
        "vat_amount": None if vat is None else _number(vat),
        "currency": str(invoice.get("Currency") or BOOK_CURRENCY).upper(),
        "supplier_number": str(invoice.get("SupplierNumber") or ""),
        "supplier_name": _text_or_none(invoice.get("SupplierName")),
        "supplier_invoice_number": _text_or_none(invoice.get("InvoiceNumber")),
        "invoice_modified": modified.isoformat() if modified else None,
        "booked": flag(invoice.get("Booked")),
        "removed": False,
    }


def count_reasons(outcomes: Iterable[RowOutcome]) -> dict[str, int]:
    """Skipped rows per reason, in the order of :data:`SKIP_REASONS` (for logs and tests)."""
    counts = dict.fromkeys(SKIP_REASONS, 0)
    for outcome in outcomes:
        if outcome.skip_reason is not None:
            counts[outcome.skip_reason] = counts.get(outcome.skip_reason, 0) + 1
    return {reason: n for reason, n in counts.items() if n}
