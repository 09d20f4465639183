"""Moment's timestamps: ISO 8601 with the Europe/Stockholm offset, and their sortable UTC form.

Documents carry local time with an offset (``2026-11-28T02:13:16.123+01:00``). The store's indexed
``modified`` column holds the same instant in UTC (``2026-11-28T01:13:16.123Z``) because offset
strings do not sort across daylight-saving changes; ``lastModifiedDateFrom`` compares in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def now() -> datetime:
    """The current instant, in Stockholm time, truncated to milliseconds as documents show it."""
    current = datetime.now(STOCKHOLM)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def timestamp(moment: datetime) -> str:
    """``moment`` as a Moment timestamp (Stockholm offset, milliseconds)."""
    return moment.astimezone(STOCKHOLM).isoformat(timespec="milliseconds")


def now_timestamp() -> str:
    """The current instant as a Moment timestamp."""
    return timestamp(now())


def sortable(moment: datetime) -> str:
    """``moment`` as the store's UTC sort key; equal instants give equal keys."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sortable_from_timestamp(text: str) -> str:
    """A Moment timestamp (or ISO date-time) as the store's UTC sort key."""
    return sortable(parse_instant(text))


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time or date; without an offset it is Swedish local time (inferred).

    Raises ``ValueError`` when the text is not ISO 8601.
    """
    if " " in text:
        # A '+' of an offset that was not URL-encoded arrives as a space: say so, do not guess.
        raise ValueError("contains a space (URL-encode the '+' of an offset as %2B)")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=STOCKHOLM)
    return value


def today() -> date:
    """Today's date in Sweden (dates relative to 'today' in the seed use this)."""
    return now().date()
