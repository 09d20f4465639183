"""The switch-over command's start (docs/SWITCH-OVER.md): what it means and where it is written.

The comparison itself runs end to end in tests/operator/test_cutover.py.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

import pytest
from target_fortnox.cutover import default_start, parse_start, start_value, write_start


def test_the_default_start_is_midnight_today_in_stockholm() -> None:
    assert start_value(default_start(date(2026, 12, 3))) == "2026-12-03T00:00:00+01:00"
    assert start_value(default_start(date(2026, 7, 1))) == "2026-07-01T00:00:00+02:00"


def test_start_takes_a_date_or_a_date_time_and_says_what_it_wants() -> None:
    assert start_value(parse_start("2026-11-30")) == "2026-11-30T00:00:00+01:00"
    assert parse_start("2026-11-30T06:15:00Z") == datetime.fromisoformat("2026-11-30T06:15+00:00")
    assert start_value(parse_start("2026-11-30T06:15:00")) == "2026-11-30T06:15:00+01:00"
    with pytest.raises(argparse.ArgumentTypeError, match="not a date"):
        parse_start("yesterday")


def test_the_start_is_set_in_the_env_file_and_its_other_lines_kept(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# secrets\nTAP_MOMENT_API_KEY=abc\nTAP_MOMENT_START_DATE=2000-01-01\n")

    previous = write_start(env_file, "2026-12-03T00:00:00+01:00")

    assert previous == "2000-01-01"
    assert env_file.read_text().splitlines() == [
        "# secrets",
        "TAP_MOMENT_API_KEY=abc",
        "TAP_MOMENT_START_DATE=2026-12-03T00:00:00+01:00",
    ]
    fresh = tmp_path / "new" / ".env"
    assert write_start(fresh, "2026-12-03T00:00:00+01:00") is None
    assert fresh.stat().st_mode & 0o077 == 0  # a .env holds secrets: the owner's only
