"""MomentClient.list_changes against a simulated Moment list: keyset boundaries, ties, edits.

``FakeMoment`` answers list requests the way the Moment sandbox does (sorted, filtered, paged by
offset) and can play the inferred behaviours the real Moment may have instead: a
``lastModifiedDateFrom`` it ignores, a secondary sort it ignores, an unstable order of ties, no
order at all. Users edit records between requests (an edit gives a record the next millisecond:
it moves to the end of the order).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from moment_client import MomentClient, MomentError, MomentSettings
from moment_client.changes import ChangeReader

API = "https://moment.test/api/1.0"
URL = f"{API}/companies/acme/customers"
START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def stamp(ms: int) -> str:
    """The instant ``ms`` milliseconds after START, as Moment writes it (Stockholm offset)."""
    moment = (START + timedelta(milliseconds=ms)).astimezone(timezone(timedelta(hours=1)))
    return moment.isoformat(timespec="milliseconds")


def ms_of(text: str) -> int:
    return round((datetime.fromisoformat(text) - START).total_seconds() * 1000)


class FakeMoment:
    """Customers ``{id, lastModifiedDate, version}`` behind a Spring-style list endpoint."""

    def __init__(
        self,
        times: list[int],
        *,
        honour_filter: bool = True,
        honour_id_sort: bool = True,
        unstable_ties: bool = False,
        sorted_at_all: bool = True,
    ) -> None:
        self.records = {
            100 + i: {"id": 100 + i, "ms": t, "version": 0} for i, t in enumerate(times)
        }
        self.clock = max(times, default=0)
        self.honour_filter, self.honour_id_sort = honour_filter, honour_id_sort
        self.unstable_ties, self.sorted_at_all = unstable_ties, sorted_at_all
        self.requests: list[dict[str, list[str]]] = []
        self.between: Callable[[FakeMoment, int], None] = lambda fake, n: None
        self.shuffle = random.Random(7)
        self.at_last_page: dict[int, int] = {}

    def edit(self, record_id: int) -> None:
        self.clock += 1
        record = self.records[record_id]
        record["ms"], record["version"] = self.clock, record["version"] + 1

    def add(self) -> int:
        self.clock += 1
        new_id = max(self.records, default=99) + 1
        self.records[new_id] = {"id": new_id, "ms": self.clock, "version": 0}
        return new_id

    def current(self) -> dict[int, int]:
        """Every record now: id -> version."""
        return {i: r["version"] for i, r in self.records.items()}

    def ordered(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        rows = list(self.records.values())
        since = query.get("lastModifiedDateFrom")
        if since and self.honour_filter:
            rows = [r for r in rows if r["ms"] >= ms_of(since[0])]
        if not self.sorted_at_all:
            return sorted(rows, key=lambda r: -r["id"])
        if self.unstable_ties:
            self.shuffle.shuffle(rows)
            return sorted(rows, key=lambda r: r["ms"])  # stable sort keeps the shuffle in ties
        sorts = query.get("sort", [])
        by_id = self.honour_id_sort and "id,asc" in sorts[1:]
        # Without the id sort, ties come in a fixed order of the store's own (here: id desc).
        return sorted(rows, key=lambda r: (r["ms"], r["id"] if by_id else -r["id"]))

    def callback(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        # Users act between two requests (never after the last one: that is the next read's).
        self.between(self, len(self.requests))
        query = parse_qs(urlparse(request.url).query)
        self.requests.append(query)
        page, size = int(query["page"][0]), int(query["size"][0])
        if size > 1:  # a page, not a read-back check: what the reader may be expected to see
            self.at_last_page = self.current()
        rows = self.ordered(query)
        content = [
            {"id": r["id"], "lastModifiedDate": stamp(r["ms"]), "version": r["version"]}
            for r in rows[page * size : (page + 1) * size]
        ]
        meta = {
            "number": page,
            "size": size,
            "totalElements": len(rows),
            "totalPages": -(-len(rows) // size),
        }
        return 200, {}, json.dumps({"content": content, "page": meta})


def read(
    fake: FakeMoment, page_size: int = 5, since: datetime | None = None
) -> list[dict[str, Any]]:
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, URL, callback=fake.callback)
        return list(make_client(page_size).list_changes("customers", since))


def make_client(page_size: int) -> MomentClient:
    return MomentClient(
        MomentSettings(company_code="acme", api_key="k", api_url=API, page_size=page_size)
    )


def assert_complete(fake: FakeMoment, emitted: list[dict[str, Any]]) -> None:
    """Every record came out, in the version it had when the last page was read (or newer).

    Edits after the last page was read (while its read-back check ran) are the next read's.
    """
    latest = {r["id"]: r["version"] for r in emitted}
    expected = fake.at_last_page
    missing = {i for i in expected if i not in latest}
    assert not missing, f"skipped ids {sorted(missing)}"
    stale = {i: (latest[i], v) for i, v in expected.items() if latest[i] < v}
    assert not stale, f"newest versions never came out (read, expected): {stale}"
    stamps = [ms_of(r["lastModifiedDate"]) for r in emitted]
    assert stamps == sorted(stamps)


def test_plain_read_is_one_request_per_page_and_each_record_once() -> None:
    fake = FakeMoment(list(range(0, 230, 10)))  # 23 records, distinct instants
    emitted = read(fake)
    assert [r["id"] for r in emitted] == list(range(100, 123))
    assert len(fake.requests) == 6  # 5 full pages + the empty-or-short last query
    assert all(q["page"] == ["0"] for q in fake.requests)  # keyset: never an offset
    assert fake.requests[0]["sort"] == ["lastModifiedDate,asc", "id,asc"]
    assert "lastModifiedDateFrom" not in fake.requests[0]
    assert fake.requests[1]["lastModifiedDateFrom"] == ["2026-01-10T09:00:00.040+00:00"]


def test_boundary_ids_at_the_cursor_are_not_emitted_twice() -> None:
    # Pages of 5 end inside groups of equal instants: the inclusive filter sends them again.
    fake = FakeMoment([0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4])
    emitted = read(fake, page_size=5)
    assert [r["id"] for r in emitted] == list(range(100, 113))


def test_more_ties_than_a_page_neither_loop_nor_skip() -> None:
    fake = FakeMoment([0, 1] + [5] * 23 + [6, 7])
    emitted = read(fake, page_size=5)
    assert sorted(r["id"] for r in emitted) == sorted(fake.records)
    assert len(emitted) == len(fake.records)
    assert len(fake.requests) < 30


def test_edits_inside_a_tie_larger_than_a_page_skip_nothing() -> None:
    fake = FakeMoment([5] * 18 + [9] * 3)

    def users(fake: FakeMoment, requests_so_far: int) -> None:
        if requests_so_far == 2:  # pages 0 and 1 of the tie read: edit records already read
            fake.edit(100)
            fake.edit(104)
            fake.edit(109)

    fake.between = users
    emitted = read(fake, page_size=5)
    assert_complete(fake, emitted)


def test_start_is_inclusive_and_older_rows_never_come_out() -> None:
    fake = FakeMoment(list(range(0, 100, 10)))
    emitted = read(fake, since=datetime.fromisoformat(stamp(40)))
    assert [ms_of(r["lastModifiedDate"]) for r in emitted] == [40, 50, 60, 70, 80, 90]


def test_a_server_ignoring_the_filter_is_filtered_here_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMoment(list(range(0, 300, 10)), honour_filter=False)
    fake.between = lambda fake, n: fake.edit(103) if n == 4 else None
    with caplog.at_level(logging.WARNING, logger="moment_client"):
        emitted = read(fake, since=datetime.fromisoformat(stamp(55)))
    assert all(ms_of(r["lastModifiedDate"]) >= 55 for r in emitted)
    expected = {i for i, r in fake.records.items() if r["ms"] >= 55}
    assert {r["id"] for r in emitted} == expected
    warnings = [r for r in caplog.records if "does not honour the filter" in r.message]
    assert len(warnings) == 1


def test_ignored_id_sort_is_warned_once_and_ties_still_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMoment([1] * 12 + [2] * 7, honour_id_sort=False)
    fake.between = lambda fake, n: fake.edit(111) if n == 3 else None
    with caplog.at_level(logging.WARNING, logger="moment_client"):
        emitted = read(fake, page_size=4)
    assert_complete(fake, emitted)
    assert len([r for r in caplog.records if "by id" in r.message]) == 1


def test_an_unstable_order_of_ties_stops_the_read_with_an_error() -> None:
    fake = FakeMoment([1] * 40, unstable_ties=True)
    with pytest.raises(MomentError, match="kept changing between pages"):
        read(fake, page_size=5)
    assert len(fake.requests) < 200  # bounded


def test_a_list_not_sorted_by_last_modified_stops_the_read() -> None:
    fake = FakeMoment([1, 2, 3, 4], sorted_at_all=False)
    with pytest.raises(MomentError, match="did not sort customers by lastModifiedDate"):
        read(fake, page_size=5)


def test_memory_holds_only_the_ids_at_the_cursor_instant() -> None:
    fake = FakeMoment(list(range(200)) + [500] * 3)
    reader = ChangeReader(make_client(7), "customers", None)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, URL, callback=fake.callback)
        sizes = [len(reader.at_cursor) for _ in reader.records()]
    assert len(sizes) == 203
    assert max(sizes) == 3  # the three records at 500, never the 200 before


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize(
    "behaviour",
    [{}, {"honour_filter": False}, {"honour_id_sort": False}],
    ids=["as-inferred", "filter-ignored", "id-sort-ignored"],
)
def test_random_edits_and_ties_never_skip(seed: int, behaviour: dict[str, bool]) -> None:
    rng = random.Random(seed)
    times = sorted(rng.choice(range(12)) for _ in range(rng.randint(15, 45)))
    fake = FakeMoment(times, **behaviour)

    def users(fake: FakeMoment, requests_so_far: int) -> None:
        if requests_so_far > 60:
            return  # users stop at some point; a read that never ends would fail the test
        for _ in range(rng.choice([0, 0, 1, 2])):
            if rng.random() < 0.2:
                fake.add()
            else:
                fake.edit(rng.choice(list(fake.records)))

    fake.between = users
    emitted = read(fake, page_size=rng.choice([2, 3, 5]))
    assert_complete(fake, emitted)


def test_the_callers_params_are_sent_but_never_its_own_order_or_start() -> None:
    fake = FakeMoment([0, 1, 2])
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, URL, callback=fake.callback)
        params = {"invoiceState": "FINALIZED", "sort": "id,desc", "lastModifiedDateFrom": "x"}
        emitted = list(make_client(5).list_changes("customers", None, params))
    assert [r["id"] for r in emitted] == [100, 101, 102]
    assert fake.requests[0]["invoiceState"] == ["FINALIZED"]
    assert fake.requests[0]["sort"] == ["lastModifiedDate,asc", "id,asc"]
    assert "lastModifiedDateFrom" not in fake.requests[0]
