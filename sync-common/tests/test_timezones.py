"""Stockholm time in one place: now, and naive times read as Stockholm's wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync_common.timezones import STOCKHOLM, assume_stockholm, stockholm_now


def test_naive_times_are_stockholm_wall_time_in_winter_and_summer() -> None:
    assert assume_stockholm(datetime(2026, 1, 15, 9, 30)).astimezone(UTC) == datetime(
        2026, 1, 15, 8, 30, tzinfo=UTC
    )
    assert assume_stockholm(datetime(2026, 7, 1, 9, 30)).astimezone(UTC) == datetime(
        2026, 7, 1, 7, 30, tzinfo=UTC
    )


def test_aware_times_are_kept_as_they_are() -> None:
    moment = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    assert assume_stockholm(moment) is moment


def test_now_is_aware_and_in_stockholm() -> None:
    now = stockholm_now()
    assert now.tzinfo is STOCKHOLM
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)
