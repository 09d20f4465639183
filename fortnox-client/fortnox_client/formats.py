"""Fortnox's formats: date and time, valid characters of a text field, the value that empties one.

The "Formats & Encoding" page, in docs/FORTNOX-WRITES.md.

Owns the conversion between aware Python datetimes and Fortnox's zone-less strings. Fortnox writes
``2014-12-01 09:30:00`` with no zone; we treat it as Swedish local time (Europe/Stockholm,
inferred), so incremental filters should overlap a little to be safe.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import regex
from sync_common.timezones import STOCKHOLM, assume_stockholm

LASTMODIFIED_FORMAT = "%Y-%m-%d %H:%M"

# In a PUT, Fortnox leaves a field sent as "" or null unchanged; this value empties it (the
# official SDKs' constant; docs/FORTNOX-WRITES.md).
API_BLANK = "API_BLANK"

# The character class Fortnox publishes for text fields, as published: any letter of any language
# (\p{L}), ’, backslash, combining diaeresis and ring above (U+0308, U+030A), digits, space, this
# punctuation, no-break space, CR and LF. Anything else (emoji, tabs, straight quotes, most
# symbols) is refused with error 2000359.
_VALID_CHARACTER = regex.compile(
    r"[\p{L}’\\\u0308\u030aa-zåäöéáœæøüA-ZÅÄÖÉÁÜŒÆØ0-9 –:.`´’,;\^¤#%§£$€¢¥©™°&/()=+\-*_!?²³®½@"
    r"\u00a0\n\r]"
)


def is_valid_character(char: str) -> bool:
    """Whether Fortnox accepts ``char`` (one character) in a text field."""
    return _VALID_CHARACTER.fullmatch(char) is not None


def lastmodified_param(moment: datetime) -> str:
    """Return the ``lastmodified`` filter value (``YYYY-MM-DD HH:MM``, Stockholm) of ``moment``.

    Seconds are dropped (floored), which widens the filter: never misses a change.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            "lastmodified needs a timezone-aware datetime (Fortnox times are Stockholm local "
            "time; a naive value is ambiguous)"
        )
    return moment.astimezone(STOCKHOLM).strftime(LASTMODIFIED_FORMAT)


def date_param(day: date) -> str:
    """``fromdate``/``todate`` value: ``YYYY-MM-DD``."""
    if isinstance(day, datetime):
        day = day.date()
    return day.isoformat()


def parse_fortnox_datetime(text: str) -> datetime:
    """``2014-12-01 09:30[:00]`` (Stockholm local time) → aware datetime."""
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=STOCKHOLM)
        except ValueError:
            continue
    raise ValueError(f"not a Fortnox date-time (YYYY-MM-DD HH:MM[:SS]): {text!r}")


def parse_fortnox_timestamp(value: Any) -> datetime | None:
    """Read a Fortnox time stamp (``2024-05-01 13:45[:00]``, zone-less: Stockholm time), leniently.

    Any ISO 8601 date-time is accepted (an offset is kept); ``None`` when ``value`` is empty, not a
    string or unreadable. Fortnox gives no zone; Stockholm is inferred (docs/FORTNOX-API.md,
    "Dates and times").
    """
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return assume_stockholm(parsed)


def parse_fortnox_date(value: Any) -> date | None:
    """Read a Fortnox date (``YYYY-MM-DD``, or the date part of a date-time), leniently.

    ``None`` when ``value`` is empty, not a string or unreadable.
    """
    if not value or not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
