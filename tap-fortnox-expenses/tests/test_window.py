"""Window and state arithmetic: dates, the high-water mark and fingerprints (no server)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sync_common.timezones import STOCKHOLM
from tap_fortnox_expenses.window import (
    LASTMODIFIED_OVERLAP,
    InvoiceFingerprints,
    SyncWindow,
    format_mark,
    invoice_fingerprint,
    parse_mark,
)

# 00:30 UTC on 1 December is already 01:30 in Stockholm: the Stockholm date decides "today".
STARTED = datetime(2026, 12, 1, 0, 30, 15, 999, tzinfo=STOCKHOLM).astimezone(
    datetime.now().astimezone().tzinfo
)


def test_window_is_lookback_days_back_to_today_in_stockholm() -> None:
    window = SyncWindow.plan(started_at=STARTED, lookback_days=30)
    assert window.window_params() == {"fromdate": "2026-11-01", "todate": "2026-12-01"}
    assert window.modified_params() is None  # no previous run: the window only
    assert window.high_water_mark == datetime(2026, 12, 1, 0, 15, 15, tzinfo=STOCKHOLM)
    assert window.covers(date(2026, 11, 1))
    assert not window.covers(date(2026, 10, 31))


def test_list_items_are_kept_by_their_invoice_date() -> None:
    """A supplier-invoice list may ignore fromdate/todate: the window checks each item's date."""
    window = SyncWindow.plan(started_at=STARTED, lookback_days=30)
    assert window.dates({"GivenNumber": "1", "InvoiceDate": "2026-11-01"})
    assert window.dates({"GivenNumber": "2", "InvoiceDate": "2026-12-01"})
    assert not window.dates({"GivenNumber": "3", "InvoiceDate": "2026-10-31"})
    assert not window.dates({"GivenNumber": "4", "InvoiceDate": "2026-12-02"})
    assert not window.dates({"GivenNumber": "5", "InvoiceDate": ""})
    assert not window.dates({"GivenNumber": "6"})


def test_start_date_replaces_lookback() -> None:
    window = SyncWindow.plan(started_at=STARTED, lookback_days=30, start_date=date(2025, 1, 1))
    assert window.from_date == date(2025, 1, 1)
    assert window.to_date == date(2026, 12, 1)


def test_previous_mark_becomes_lastmodified_filter() -> None:
    previous = datetime(2026, 11, 30, 21, 45, 59, tzinfo=STOCKHOLM)
    window = SyncWindow.plan(started_at=STARTED, previous_mark=previous)
    # Minute resolution, truncated: re-lists a few invoices rather than missing one.
    assert window.modified_params() == {"lastmodified": "2026-11-30 21:45"}


def test_future_mark_is_capped_at_run_start() -> None:
    future = STARTED + timedelta(days=3)
    window = SyncWindow.plan(started_at=STARTED, previous_mark=future)
    assert window.modified_since == STARTED
    assert window.high_water_mark == STARTED.replace(microsecond=0) - LASTMODIFIED_OVERLAP


def test_mark_round_trips_through_state_in_stockholm_offset() -> None:
    utc_moment = datetime(2026, 7, 1, 10, 0, tzinfo=STOCKHOLM).astimezone(
        datetime.now().astimezone().tzinfo
    )
    stored = format_mark(utc_moment)
    assert stored == "2026-07-01T10:00:00+02:00"
    assert parse_mark(stored) == utc_moment
    assert parse_mark("2026-07-01 10:00:00") == datetime(2026, 7, 1, 10, tzinfo=STOCKHOLM)
    assert parse_mark("garbage") is None
    assert parse_mark(None) is None


def test_fingerprint_changes_with_list_fields_not_with_url() -> None:
    item = {"GivenNumber": 5, "Booked": False, "Total": "1250", "@url": "http://a/5"}
    same = {**item, "@url": "http://b/5"}
    booked = {**item, "Booked": True}
    assert invoice_fingerprint(item) == invoice_fingerprint(same)
    assert invoice_fingerprint(item) != invoice_fingerprint(booked)
    assert len(invoice_fingerprint(item)) == 16


def test_fingerprints_keep_only_invoices_listed_this_run() -> None:
    prints = InvoiceFingerprints.from_state({"invoice_fingerprints": {"1": "a", "2": "b"}})
    assert prints.is_unchanged("1", "a")
    assert not prints.is_unchanged("2", "changed")
    assert not prints.is_unchanged("3", "a")
    prints.remember("2", "changed")
    prints.remember("10", "c")
    # "1" was not listed this run (left the window): forgotten; order is numeric.
    assert prints.to_state() == {"2": "changed", "10": "c"}
    assert InvoiceFingerprints.from_state({}).previous == {}
