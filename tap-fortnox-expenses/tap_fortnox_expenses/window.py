"""Which supplier invoices a run reads, and what the run remembers for the next one.

Owns the window arithmetic (invoice dates from ``today − lookback_days``, or from ``start_date``,
to today, all in Europe/Stockholm as Fortnox's zone-less dates are), the ``lastmodified``
high-water mark that catches late postings dated before the window, and the per-invoice
fingerprints that let a run skip the single GET of an invoice it has already read unchanged.

State of the ``project_expenses`` stream (singer-sdk keeps unknown keys of a stream's bookmark)::

    {"replication_key": "invoice_modified",
     "replication_key_value": "2026-11-27T21:45:00+01:00",   # high-water mark (run start − overlap)
     "invoice_fingerprints": {"1042": "9f2c51d0a4b8e7c3", ...},  # GivenNumber → list-item hash
     "invoice_row_keys": {"1042": ["r3f9a0c21b4d7", ...], ...}}  # GivenNumber → emitted row keys

The high-water mark is the START of the run minus :data:`LASTMODIFIED_OVERLAP`, never a value read
from the data, and the stream only writes it after the last invoice was read, so a failed run
leaves the previous mark in place and the next run re-reads what this one did not finish.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from fortnox_client import lastmodified_param, parse_fortnox_date, parse_fortnox_timestamp
from sync_common.timezones import STOCKHOLM

# Covers clock skew between this machine and Fortnox, and invoices saved while the previous run
# was listing (Fortnox's ``lastmodified`` filter is minute-granular and zone-less).
LASTMODIFIED_OVERLAP: Final = timedelta(minutes=15)
DEFAULT_LOOKBACK_DAYS: Final = 30
FINGERPRINTS_KEY: Final = "invoice_fingerprints"
ROW_KEYS_KEY: Final = "invoice_row_keys"
# List fields that only say where the record lives, not what it holds.
_UNHASHED_FIELDS: Final = frozenset({"@url"})


def parse_mark(value: Any) -> datetime | None:
    """A high-water mark from state (ISO 8601); naive values are Stockholm time.

    ``None`` if absent or unreadable (the run then reads the window only, which is what a fresh
    state does).
    """
    return parse_fortnox_timestamp(value)


def format_mark(moment: datetime) -> str:
    """The mark as state stores it: ISO 8601 with the Stockholm offset, whole seconds."""
    return moment.astimezone(STOCKHOLM).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class SyncWindow:
    """What one run lists: invoices dated ``from_date``..``to_date``, plus late changes.

    When the previous run left a mark, every invoice modified since ``modified_since`` is listed
    too; ``high_water_mark`` is what this run will leave for the next one if it finishes.
    """

    from_date: date
    to_date: date
    modified_since: datetime | None
    high_water_mark: datetime

    @classmethod
    def plan(
        cls,
        *,
        started_at: datetime,
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
        start_date: date | None = None,
        previous_mark: datetime | None = None,
    ) -> SyncWindow:
        if lookback_days < 0:
            raise ValueError(f"lookback_days must be 0 or more, got {lookback_days}")
        local_start = started_at.astimezone(STOCKHOLM)
        today = local_start.date()
        from_date = start_date if start_date is not None else today - timedelta(days=lookback_days)
        # A mark in the future (clock trouble, hand-edited state) would hide changes: cap it at now.
        modified_since = None if previous_mark is None else min(previous_mark, local_start)
        return cls(
            from_date=from_date,
            to_date=today,
            modified_since=modified_since,
            high_water_mark=(local_start - LASTMODIFIED_OVERLAP).replace(microsecond=0),
        )

    def window_params(self) -> dict[str, str]:
        """Query of the dated window (Fortnox ``fromdate``/``todate`` on the invoice date).

        Fortnox documents these parameters only for invoices, orders, offers and vouchers, so a
        supplier-invoice list may ignore them: keep only the items :meth:`dates` accepts.
        """
        return {"fromdate": self.from_date.isoformat(), "todate": self.to_date.isoformat()}

    def dates(self, list_item: Mapping[str, Any]) -> bool:
        """True when a listed supplier invoice's ``InvoiceDate`` lies in the window."""
        return self.covers(parse_fortnox_date(list_item.get("InvoiceDate")))

    def modified_params(self) -> dict[str, str] | None:
        """Query of the late postings: everything modified since the previous mark, any date."""
        if self.modified_since is None:
            return None
        # Minute resolution, floored: can only re-list an invoice, never miss one.
        return {"lastmodified": lastmodified_param(self.modified_since)}

    def covers(self, invoice_date: date | None) -> bool:
        return invoice_date is not None and self.from_date <= invoice_date <= self.to_date


def invoice_fingerprint(list_item: Mapping[str, Any]) -> str:
    """A compact hash of a supplier invoice's list item.

    Booking, cancelling, approving, editing totals, dates or project all change a list field, so a
    changed hash means "read the rows again"; an equal hash means the rows we emitted still hold.
    """
    payload = {k: v for k, v in list_item.items() if k not in _UNHASHED_FIELDS}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class InvoiceFingerprints:
    """GivenNumber → fingerprint of the list item last read with its rows.

    ``previous`` comes from state; ``current`` holds only the invoices this run listed (the window
    and the late postings), which bounds state to the window: an invoice that leaves the window is
    forgotten, and if it changes later the ``lastmodified`` query lists it and it is read afresh.
    """

    previous: Mapping[str, str] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_state(cls, stream_state: Mapping[str, Any]) -> InvoiceFingerprints:
        stored = stream_state.get(FINGERPRINTS_KEY)
        if not isinstance(stored, Mapping):
            return cls()
        return cls(previous={str(k): str(v) for k, v in stored.items()})

    def is_unchanged(self, given_number: str, fingerprint: str) -> bool:
        return self.previous.get(given_number) == fingerprint

    def remember(self, given_number: str, fingerprint: str) -> None:
        self.current[given_number] = fingerprint

    def to_state(self) -> dict[str, str]:
        # Sorted by number so that state diffs between runs stay readable.
        return dict(sorted(self.current.items(), key=lambda kv: (len(kv[0]), kv[0])))


@dataclass
class EmittedRowKeys:
    """GivenNumber → the row keys of the expense records last emitted for that invoice.

    When a changed invoice is read again, a key emitted before and not now is a row that left the
    invoice (or stopped being an expense): the stream sends a removal record for it. Bounded like
    :class:`InvoiceFingerprints`: only the invoices this run listed are kept, and invoices without
    emitted rows are not stored at all.
    """

    previous: Mapping[str, list[str]] = field(default_factory=dict)
    current: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_state(cls, stream_state: Mapping[str, Any]) -> EmittedRowKeys:
        stored = stream_state.get(ROW_KEYS_KEY)
        if not isinstance(stored, Mapping):
            return cls()
        return cls(
            previous={
                str(k): [str(key) for key in v] for k, v in stored.items() if isinstance(v, list)
            }
        )

    def removed(self, given_number: str, emitted: list[str]) -> list[str]:
        """Keys emitted for the invoice last time that are not among ``emitted`` now."""
        now = set(emitted)
        return [key for key in self.previous.get(given_number, []) if key not in now]

    def remember(self, given_number: str, emitted: list[str]) -> None:
        if emitted:
            self.current[given_number] = list(emitted)
        else:
            self.current.pop(given_number, None)

    def carry(self, given_number: str) -> None:
        """The invoice is unchanged: its keys stay as they were."""
        if given_number in self.previous:
            self.current[given_number] = list(self.previous[given_number])

    def to_state(self) -> dict[str, list[str]]:
        return dict(sorted(self.current.items(), key=lambda kv: (len(kv[0]), kv[0])))
