r"""Fortnox's field formats: valid characters, dates, time stamps, numbers, countries, OCR.

Fortnox's "Formats & Encoding" page publishes the characters a text field may hold (any letter
of any language, ``\p{L}``, plus the listed marks, digits and punctuation); dates are
``YYYY-MM-DD`` and time stamps ``YYYY-MM-DD HH:MM[:SS]`` with no zone, which the sandbox treats as
Swedish local time (Europe/Stockholm; inferred).
"""

from __future__ import annotations

import gettext
import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import pycountry
import regex

from sandbox.fortnox.errors import (
    INVALID_CHARACTERS,
    INVALID_PARAMETER,
    NOT_BOOLEAN,
    NOT_NUMERIC,
    WRONG_DATA,
    FortnoxError,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")

# The published class, as Fortnox writes it (\x{0308} and \x{030a} spelled \u here).
_VALID_TEXT = regex.compile(
    r"[\p{L}’\\\u0308\u030aa-zåäöéáœæøüA-ZÅÄÖÉÁÜŒÆØ0-9 –:.`´’,;\^¤#%§£$€¢¥©™°&/()=+\-*_!?²³®½@"
    r"\u00a0\n\r]*"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


def now_local() -> str:
    """Now as Fortnox writes a time stamp: Stockholm local time, no zone."""
    return datetime.now(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S")


def today_local() -> date:
    """Today's date in Swedish local time (Europe/Stockholm)."""
    return datetime.now(STOCKHOLM).date()


def check_text(field: str, value: Any, max_length: int | None = None) -> str:
    """A text value as Fortnox stores it, or a 2000359 error naming the field and the character."""
    if isinstance(value, bool | dict | list):
        raise FortnoxError(WRONG_DATA, f"Fältet {field} måste vara text (field {field}: text)")
    text = "" if value is None else str(value)
    if not _VALID_TEXT.fullmatch(text):
        bad = next(ch for ch in text if not _VALID_TEXT.fullmatch(ch))
        raise FortnoxError(
            INVALID_CHARACTERS,
            f"Ogiltiga tecken i fältet {field}: {bad!r} (U+{ord(bad):04X}) is not a character "
            "Fortnox accepts; remove it",
        )
    if max_length is not None and len(text) > max_length:
        raise FortnoxError(
            WRONG_DATA,
            f"Fältet {field} får vara högst {max_length} tecken ({field}: {len(text)} characters, "
            f"max {max_length})",
        )
    return text


def check_email(field: str, value: Any) -> str:
    """An e-mail address ("" when empty), or an error naming the field."""
    text = check_text(field, value, 1024)
    if text and not _EMAIL.fullmatch(text):
        raise FortnoxError(WRONG_DATA, f"Ogiltig e-postadress i fältet {field}: {text!r}")
    return text


def check_date(field: str, value: Any, *, required: bool = False) -> str:
    """A ``YYYY-MM-DD`` date ("" when empty and optional)."""
    if value in (None, ""):
        if required:
            raise FortnoxError(WRONG_DATA, f"Fältet {field} måste anges (date YYYY-MM-DD)")
        return ""
    text = str(value)
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        date.fromisoformat(text)
    except ValueError:
        raise FortnoxError(
            WRONG_DATA, f"Ogiltigt datum i fältet {field}: {text!r} (expected YYYY-MM-DD)"
        ) from None
    return text


def check_number(field: str, value: Any) -> float:
    """A decimal; Fortnox accepts numbers and numeric strings (2000108 otherwise)."""
    if isinstance(value, bool):
        raise FortnoxError(NOT_NUMERIC, f"Fältet {field} måste vara numeriskt ({value!r})")
    try:
        return float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise FortnoxError(
            NOT_NUMERIC, f"Fältet {field} måste vara numeriskt ({value!r})"
        ) from None


def check_integer(field: str, value: Any) -> int:
    """A whole number, or an error naming the field."""
    number = check_number(field, value)
    if number != int(number):
        raise FortnoxError(NOT_NUMERIC, f"Fältet {field} måste vara ett heltal ({value!r})")
    return int(number)


def check_boolean(field: str, value: Any) -> bool:
    """A JSON boolean or the text true/false, or an error naming the field."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise FortnoxError(NOT_BOOLEAN, f"Fältet {field} måste vara true eller false ({value!r})")


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (upper-cased), or an error naming the field."""
    text = str(value).upper()
    if text not in choices:
        raise FortnoxError(
            WRONG_DATA, f"Ogiltigt värde i fältet {field}: {value!r} (one of {', '.join(choices)})"
        )
    return text


@lru_cache(maxsize=1)
def _swedish_names() -> gettext.NullTranslations:
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["sv"], fallback=True)


def country_name(field: str, code: Any) -> tuple[str, str]:
    """(CountryCode, Country): an ISO 3166 alpha-2 code and its Swedish name, as Fortnox derives."""
    text = str(code or "").upper()
    country = pycountry.countries.get(alpha_2=text) if len(text) == 2 else None
    if country is None:
        raise FortnoxError(
            WRONG_DATA,
            f"Ogiltig landskod i fältet {field}: {code!r} (ISO 3166-1 alpha-2, e.g. SE)",
        )
    return text, _swedish_names().gettext(country.name)


def parse_lastmodified(value: str) -> str:
    """The ``lastmodified`` parameter as a comparable local time stamp ``YYYY-MM-DD HH:MM:SS``."""
    match = _TIMESTAMP.fullmatch(value.strip())
    if not match:
        raise FortnoxError(
            INVALID_PARAMETER,
            f"Ogiltig parameter lastmodified={value!r} (expected YYYY-MM-DD HH:MM[:SS])",
        )
    day, hour, minute, second = match.groups()
    return f"{day} {hour or '00'}:{minute or '00'}:{second or '00'}"


def parse_date_parameter(name: str, value: str) -> str:
    """A ``YYYY-MM-DD`` query parameter, or an invalid-parameter error naming it."""
    try:
        return check_date(name, value, required=True)
    except FortnoxError:
        raise FortnoxError(
            INVALID_PARAMETER, f"Ogiltig parameter {name}={value!r} (expected YYYY-MM-DD)"
        ) from None


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit that follows ``digits``."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 0:  # doubled: the check digit will sit to the right of these
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` end in their Luhn check digit."""
    return digits.isdigit() and luhn_check_digit(digits[:-1]) == digits[-1]


_SWEDISH_ID = re.compile(r"(?:16|18|19|20)?(\d{6})[-+]?(\d{4})")


def check_organisation_number(field: str, value: str, country_code: str) -> str:
    """Check an organisation or personal number: a Swedish one must end in its check digit.

    A Swedish number (``NNNNNN-NNNN``, also with the century or without the dash) must end in its
    Luhn check digit; the C# SDK's Customer says "it needs to be a valid organisation number". A
    foreign customer's number (CountryCode not SE) is taken
    as written up to the list item's 30 characters (**inferred**: Fortnox publishes no rule).
    """
    text = value.strip()
    if not text or country_code not in ("", "SE"):
        return value
    match = _SWEDISH_ID.fullmatch(text)
    if match is None or not luhn_valid(match.group(1) + match.group(2)):
        raise FortnoxError(
            WRONG_DATA,
            f"Ogiltigt organisationsnummer {value!r} ({field}: a Swedish organisation or "
            "personal number is NNNNNN-NNNN with a valid check digit)",
        )
    return value


def ocr_for(document_number: str) -> str:
    """A "hard" Swedish OCR from a document number: number + length digit + Luhn check digit."""
    base = f"{document_number}{(len(document_number) + 2) % 10}"
    return base + luhn_check_digit(base)


def money(value: float) -> float:
    """An amount rounded to two decimals (öre)."""
    return round(value + 0.0, 2)
