"""Swedish local time, the zone both systems' zone-less times are read in.

Owns :data:`STOCKHOLM`, "now in Stockholm" and the reading of a naive time as Stockholm time for
every package: Fortnox writes date-times with no zone, which the plugins read as Europe/Stockholm
(inferred, docs/FORTNOX-API.md "Dates and times"). ``tzdata`` (a dependency) supplies the zone on
hosts without a zoneinfo database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

STOCKHOLM: Final = ZoneInfo("Europe/Stockholm")


def stockholm_now() -> datetime:
    """Return the current time as an aware datetime in Europe/Stockholm."""
    return datetime.now(STOCKHOLM)


def assume_stockholm(moment: datetime) -> datetime:
    """Return ``moment`` unchanged when it is aware, else the same wall time in Stockholm."""
    return moment if moment.tzinfo else moment.replace(tzinfo=STOCKHOLM)
