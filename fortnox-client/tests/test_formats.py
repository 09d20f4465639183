"""Fortnox formats: date/time parameters (Stockholm time, both DST seasons), valid characters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from fortnox_client import (
    date_param,
    is_valid_character,
    lastmodified_param,
    parse_fortnox_datetime,
)


def test_lastmodified_converts_to_stockholm_winter_and_summer() -> None:
    assert lastmodified_param(datetime(2026, 1, 15, 8, 30, 59, tzinfo=UTC)) == "2026-01-15 09:30"
    assert lastmodified_param(datetime(2026, 7, 1, 22, 5, tzinfo=UTC)) == "2026-07-02 00:05"
    plus_nine = timezone(timedelta(hours=9))
    assert lastmodified_param(datetime(2026, 3, 2, 18, 0, tzinfo=plus_nine)) == "2026-03-02 10:00"


def test_lastmodified_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        lastmodified_param(datetime(2026, 1, 1, 12, 0))


def test_dates_and_round_trip() -> None:
    assert date_param(date(2026, 2, 3)) == "2026-02-03"
    assert date_param(datetime(2026, 2, 3, 23, 59, tzinfo=UTC)) == "2026-02-03"
    parsed = parse_fortnox_datetime("2026-07-01 09:30:00")
    assert parsed.astimezone(UTC) == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert lastmodified_param(parse_fortnox_datetime("2026-12-01 09:30")) == "2026-12-01 09:30"
    with pytest.raises(ValueError, match="not a Fortnox date-time"):
        parse_fortnox_datetime("yesterday")


def test_valid_characters_are_fortnoxs_published_class() -> None:
    """Any letter of any language (\\p{L}), the combining ¨ and ˚, digits and the listed
    punctuation are valid; emoji, tabs, straight quotes and other symbols are not."""
    for char in "aZåÖñłßẞЖλ中\u0308\u030a09 –:.`´’,;^¤#%§£$€¢¥©™°&/()=+-*_!?²³®½@\\\u00a0\n\r":
        assert is_valid_character(char), repr(char)
    for char in "😀🎉\t'\"{}<>|~\u2009—":
        assert not is_valid_character(char), repr(char)
