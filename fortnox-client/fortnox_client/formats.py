"""Fortnox's date and time formats (the "Formats & Encoding" page, DESIGN §9).

Owns the conversion between aware Python datetimes and Fortnox's zone-less strings. Fortnox writes
``2014-12-01 09:30:00`` with no zone; we treat it as Swedish local time (Europe/Stockholm,
inferred), so incremental filters should overlap a little to be safe.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
LASTMODIFIED_FORMAT = "%Y-%m-%d %H:%M"


def lastmodified_param(moment: datetime) -> str:
    """The ``lastmodified`` filter value (``YYYY-MM-DD HH:MM``, Stockholm) for an aware datetime.

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
