"""tap-moment streams against mocked HTTP: request parameters, filtering, selection, memory."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from tap_moment.tap import TapMoment

API = "https://moment.test/api/1.0"
BASE = f"{API}/companies/acme"
KEY = "tap-s3cr3t-key"
CONFIG: dict[str, Any] = {"api_url": API, "company_code": "acme", "api_key": KEY}


def stamp(minutes: int) -> str:
    """A Moment timestamp (Stockholm offset) ``minutes`` after 2026-01-10T10:00+01:00."""
    base = datetime.fromisoformat("2026-01-10T10:00:00.000+01:00")
    return (base + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


def customer(i: int, minutes: int) -> dict[str, Any]:
    return {
        "id": i,
        "customerNumber": str(1000 + i),
        "name": f"Kund {i} AB",
        "organizationNumber": "556677-8899",
        "email": None,
        "address1": "Storgatan 1",
        "address2": None,
        "postalCode": "111 22",
        "city": "Malmö",
        "countryCode": "SE",
        "createdDate": stamp(0),
        "lastModifiedDate": stamp(minutes),
    }


def page(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "content": content,
        "page": {"number": 0, "size": 500, "totalElements": len(content), "totalPages": 1},
    }


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(call.request.url).query)


def sync(config: dict[str, Any], state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out = io.StringIO()
    tap = TapMoment(config=config, state=state, parse_env_config=False)
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def records(messages: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]


def only_customers() -> dict[str, Any]:
    """The discovered catalog with only the customers stream selected."""
    catalog = TapMoment(config=CONFIG, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "customers"
    return catalog


def tap_with_state(config: dict[str, Any], state: dict[str, Any] | None) -> TapMoment:
    return TapMoment(config=config, state=state, parse_env_config=False)


def test_first_run_reads_everything_sorted_by_last_modified() -> None:
    tap = tap_with_state(CONFIG, None)
    assert tap.streams["customers"].modified_from(None) is None


def test_bookmark_minus_lookback_is_the_start() -> None:
    state = {
        "bookmarks": {
            "customers": {"replication_key": "lastModifiedDate", "replication_key_value": stamp(60)}
        }
    }
    tap = tap_with_state({**CONFIG, "lookback_minutes": 7}, state)
    since = tap.streams["customers"].modified_from(None)
    assert since == datetime.fromisoformat(stamp(53))


def test_start_date_wins_when_later_than_the_bookmark_window() -> None:
    state = {
        "bookmarks": {
            "customers": {"replication_key": "lastModifiedDate", "replication_key_value": stamp(60)}
        }
    }
    config = {**CONFIG, "start_date": "2026-02-01T00:00:00Z"}
    tap = tap_with_state(config, state)
    assert tap.streams["customers"].modified_from(None) == datetime(2026, 2, 1, tzinfo=UTC)
    assert tap_with_state(config, None).streams["projects"].modified_from(None) == datetime(
        2026, 2, 1, tzinfo=UTC
    )


@responses.activate
def test_requests_carry_sort_filter_and_invoice_state() -> None:
    responses.get(f"{BASE}/customers", json=page([customer(1, 10)]))
    responses.get(f"{BASE}/projects", json=page([]))
    responses.get(f"{BASE}/invoices", json=page([]))
    state = {
        "bookmarks": {
            "customers": {"replication_key": "lastModifiedDate", "replication_key_value": stamp(60)}
        }
    }
    sync(CONFIG, state)
    by_path = {urlparse(c.request.url).path.split("/")[-1]: query_of(c) for c in responses.calls}
    assert by_path["customers"]["sort"] == ["lastModifiedDate,asc", "id,asc"]
    # 11:00+01:00 minus 5 minutes of lookback, sent in UTC; inclusive on the server.
    assert by_path["customers"]["lastModifiedDateFrom"] == ["2026-01-10T09:55:00.000+00:00"]
    assert "lastModifiedDateFrom" not in by_path["projects"]
    assert by_path["invoices"]["invoiceState"] == ["FINALIZED"]
    assert by_path["invoices"]["size"] == ["500"]


@responses.activate
def test_rows_equal_to_the_bookmark_are_kept_and_older_leaks_dropped() -> None:
    bookmark = stamp(60)
    responses.get(
        f"{BASE}/customers",
        json=page([customer(1, 10), customer(2, 55), customer(3, 60), customer(4, 61)]),
    )
    state = {
        "bookmarks": {
            "customers": {"replication_key": "lastModifiedDate", "replication_key_value": bookmark}
        }
    }
    responses.get(f"{BASE}/projects", json=page([]))
    responses.get(f"{BASE}/invoices", json=page([]))
    messages = sync({**CONFIG, "lookback_minutes": 5}, state)
    # 1 is outside the window (a leaky server filter); 2 is in the overlap, 3 equals the bookmark.
    assert [r["id"] for r in records(messages, "customers")] == [2, 3, 4]
    final = [m for m in messages if m["type"] == "STATE"][-1]["value"]
    assert final["bookmarks"]["customers"]["replication_key_value"] == stamp(61)


@responses.activate
def test_drafts_and_numberless_invoices_are_never_emitted() -> None:
    responses.get(f"{BASE}/customers", json=page([]))
    responses.get(f"{BASE}/projects", json=page([]))
    lines = [
        {
            "description": "Konsult",
            "quantity": 2,
            "unitPrice": 1250.5,
            "vatRate": 25,
            "accountNumber": "3001",
        }
    ]
    invoices = [
        {"id": 1, "invoiceNumber": 7001, "invoiceState": "FINALIZED", "invoiceLines": lines},
        {"id": 2, "invoiceNumber": None, "invoiceState": "DRAFT", "invoiceLines": []},
        {"id": 3, "invoiceNumber": 7002, "invoiceState": "DRAFT", "invoiceLines": []},
        {"id": 4, "invoiceNumber": None, "invoiceState": "FINALIZED", "invoiceLines": []},
    ]
    for invoice in invoices:
        invoice.update(lastModifiedDate=stamp(invoice["id"]), customer={"id": 1})
    responses.get(f"{BASE}/invoices", json=page(invoices))
    emitted = records(sync(CONFIG), "invoices")
    assert [r["invoiceNumber"] for r in emitted] == [7001]
    assert emitted[0]["invoiceLines"][0]["unitPrice"] == 1250.5


@responses.activate
def test_unselected_streams_make_no_requests() -> None:
    # Only customers is registered: a request for another entity would raise ConnectionError.
    responses.get(f"{BASE}/customers", json=page([customer(1, 1)]))
    tap = TapMoment(config=CONFIG, catalog=only_customers(), parse_env_config=False)
    with contextlib.redirect_stdout(io.StringIO()):
        tap.sync_all()
    assert [urlparse(c.request.url).path for c in responses.calls] == [
        "/api/1.0/companies/acme/customers"
    ]


@responses.activate
def test_auth_error_stops_the_run_and_never_shows_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from moment_client import MomentAuthError

    caplog.set_level(logging.DEBUG)
    responses.get(
        f"{BASE}/customers",
        status=401,
        json={"status": 401, "error": "Unauthorized", "message": "Bad credentials"},
    )
    out = io.StringIO()
    tap = TapMoment(config=CONFIG, parse_env_config=False)
    with contextlib.redirect_stdout(out), pytest.raises(MomentAuthError, match="api_key"):
        tap.sync_all()
    assert KEY not in out.getvalue()
    assert KEY not in caplog.text
    # No bookmark: the only STATE messages are the run's marks, carrying the state it started
    # from (sync_common.tap_run), the last one saying the tap failed.
    states = [json.loads(line) for line in out.getvalue().splitlines() if '"STATE"' in line]
    assert [(s["value"], s["tap_run"]["event"]) for s in states] == [
        ({}, "started"),
        ({}, "failed"),
    ]


def _peak_bytes_syncing(total: int) -> int:
    """Peak traced memory of a customers sync over ``total`` generated records."""
    with responses.RequestsMock() as mock:

        def serve(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            # The mock's own call logs would otherwise keep every page alive.
            mock.calls.reset()
            route.calls.reset()
            query = parse_qs(urlparse(request.url).query)
            number, size = int(query["page"][0]), int(query["size"][0])
            start = number * size
            content = [customer(i, i) for i in range(start, min(start + size, total))]
            meta = {"number": number, "size": size, "totalPages": -(-total // size)}
            return 200, {}, json.dumps({"content": content, "page": meta})

        route = mock.add_callback(responses.GET, f"{BASE}/customers", callback=serve)
        tap = TapMoment(config=CONFIG, catalog=only_customers(), parse_env_config=False)
        sink = _CountingSink()
        gc.collect()
        tracemalloc.start()
        try:
            with contextlib.redirect_stdout(sink):  # type: ignore[type-var]
                tap.sync_all()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert sink.records == total
    return peak


class _CountingSink(io.TextIOBase):
    """A stdout that counts RECORD messages and keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.records = 0

    def write(self, text: str) -> int:
        self.records += text.count('"type":"RECORD"')
        return len(text)


def test_memory_stays_flat_while_streaming() -> None:
    small = _peak_bytes_syncing(1_000)
    large = _peak_bytes_syncing(6_000)
    # Six times the records; accumulating them would need several times the memory.
    assert large < small * 1.5, (small, large)
