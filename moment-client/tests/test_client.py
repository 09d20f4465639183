"""MomentClient against mocked HTTP (responses): auth, paging, retries, errors, secrecy."""

from __future__ import annotations

import base64
import gc
import json
import logging
import socket
import tracemalloc
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from moment_client import (
    MomentAmbiguousWriteError,
    MomentAuthError,
    MomentClient,
    MomentConflict,
    MomentDataError,
    MomentError,
    MomentNotFound,
    MomentSettings,
    MomentTransientError,
)

API = "https://moment.test/api/1.0"
BASE = f"{API}/companies/acme"
KEY = "s3cr3t-api-key-value"


def make_client(**overrides: Any) -> MomentClient:
    config: dict[str, Any] = {
        "api_url": API,
        "company_code": "acme",
        "api_key": KEY,
        "page_size": 2,
        "backoff_factor": 0.001,
        "max_tries": 3,
        **overrides,
    }
    return MomentClient(MomentSettings.from_config(config))


def spring_error(status: int, message: str, path: str = "/x") -> dict[str, Any]:
    return {
        "timestamp": "2026-11-28T10:00:00.000+01:00",
        "status": status,
        "error": "Error",
        "message": message,
        "path": path,
    }


def paged_callback(total: int, pages_seen: list[int] | None = None):  # type: ignore[no-untyped-def]
    """A Spring-style list endpoint over ``total`` generated customers."""

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlparse(request.url).query)
        page, size = int(query["page"][0]), int(query["size"][0])
        if pages_seen is not None:
            pages_seen.append(page)
        start = page * size
        content = [
            {"id": i, "customerNumber": str(1000 + i), "name": f"Kund {i}"}
            for i in range(start, min(start + size, total))
        ]
        meta = {
            "number": page,
            "size": size,
            "totalElements": total,
            "totalPages": (total + size - 1) // size,
        }
        return 200, {}, json.dumps({"content": content, "page": meta})

    return callback


@responses.activate
def test_basic_auth_uses_apikey_user_and_company_path() -> None:
    responses.get(f"{BASE}/customers/7", json={"id": 7})
    assert make_client().get("customers", 7) == {"id": 7}
    header = responses.calls[0].request.headers["Authorization"]
    assert header == "Basic " + base64.b64encode(f"apikey:{KEY}".encode()).decode()


@responses.activate
def test_list_pages_from_zero_until_total_pages() -> None:
    seen: list[int] = []
    responses.add_callback(responses.GET, f"{BASE}/customers", callback=paged_callback(5, seen))
    records = list(make_client().list("customers", params={"sort": "lastModifiedDate,asc"}))
    assert [r["id"] for r in records] == [0, 1, 2, 3, 4]
    assert seen == [0, 1, 2]  # 3 pages of 2, no extra request for an empty page
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert query == {"sort": ["lastModifiedDate,asc"], "page": ["0"], "size": ["2"]}


@responses.activate
def test_list_reports_the_total_once_before_the_first_record() -> None:
    responses.add_callback(responses.GET, f"{BASE}/customers", callback=paged_callback(5))
    events: list[str] = []
    for record in make_client().list("customers", on_total=lambda n: events.append(f"total {n}")):
        events.append(f"record {record['id']}")
    assert events == ["total 5", *(f"record {i}" for i in range(5))]


@responses.activate
def test_list_without_page_metadata_stops_on_short_page() -> None:
    responses.get(f"{BASE}/customers", json={"content": [{"id": 1}, {"id": 2}]})
    responses.get(f"{BASE}/customers", json={"content": [{"id": 3}]})
    assert [r["id"] for r in make_client().list("customers")] == [1, 2, 3]
    assert len(responses.calls) == 2


@responses.activate
def test_list_is_lazy_stopping_early_stops_requests() -> None:
    seen: list[int] = []
    responses.add_callback(responses.GET, f"{BASE}/customers", callback=paged_callback(100, seen))
    iterator = make_client().list("customers")
    assert next(iterator)["id"] == 0
    assert seen == [0]


@responses.activate
def test_list_rejects_a_body_without_content() -> None:
    responses.get(f"{BASE}/customers", json=[{"id": 1}])
    with pytest.raises(MomentError, match="no 'content' list"):
        list(make_client().list("customers"))


@responses.activate
def test_get_retries_5xx_then_succeeds_and_counts() -> None:
    responses.get(f"{BASE}/customers/1", json=spring_error(503, "busy"), status=503)
    responses.get(f"{BASE}/customers/1", status=429)
    responses.get(f"{BASE}/customers/1", json={"id": 1})
    client = make_client()
    assert client.get("customers", 1) == {"id": 1}
    assert client.stats.requests == 3
    assert client.stats.retries == 2
    assert client.stats.by_method == {"GET": 3}


@responses.activate
def test_get_gives_up_after_max_tries_with_transient_error() -> None:
    responses.get(f"{BASE}/customers/1", json=spring_error(500, "boom"), status=500)
    client = make_client(max_tries=4)
    with pytest.raises(MomentTransientError, match="gave up after 4 attempts") as caught:
        client.get("customers", 1)
    assert caught.value.status == 500
    assert len(responses.calls) == 4


@responses.activate
def test_put_retries_timeouts_and_connection_errors() -> None:
    url = f"{BASE}/projectExpenses/9"
    responses.put(url, body=requests.ReadTimeout("slow"))
    responses.put(url, body=requests.ConnectionError("reset"))
    responses.put(url, json={"id": 9, "amount": 10})
    client = make_client()
    assert client.update("projectExpenses", 9, {"amount": 10})["amount"] == 10
    assert client.stats.retries == 2


@responses.activate
def test_patch_sends_only_given_fields() -> None:
    responses.patch(f"{BASE}/projectExpenses/9", json={"id": 9, "billable": False})
    make_client().patch("projectExpenses", 9, {"billable": False})
    assert json.loads(responses.calls[0].request.body or b"{}") == {"billable": False}


@pytest.mark.parametrize(
    "failure",
    [requests.ReadTimeout("slow"), requests.ConnectionError("reset by peer")],
)
@responses.activate
def test_post_is_not_retried_on_timeout_or_reset(failure: Exception) -> None:
    responses.post(f"{BASE}/projectExpenses", body=failure)
    client = make_client()
    with pytest.raises(MomentAmbiguousWriteError, match="externalReference"):
        client.create("projectExpenses", {"externalReference": "fx-1"})
    assert len(responses.calls) == 1


def test_post_that_could_not_connect_is_retried_because_nothing_was_sent() -> None:
    # A real closed port: the connection is refused before anything is sent, so the create is
    # safe to resend (the rule both clients share, sync_common.http.never_sent).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(api_url=f"http://127.0.0.1:{port}/api/1.0")
    with pytest.raises(MomentTransientError, match="gave up after 3 attempts"):
        client.create("projectExpenses", {"externalReference": "fx-1"})
    assert client.stats.requests == 3
    assert client.stats.retries == 2


def test_moment_errors_are_the_kinds_of_the_shared_http_core() -> None:
    from sync_common import http as http_core

    kinds = {
        MomentTransientError: http_core.ApiTransientError,
        MomentAuthError: http_core.ApiAuthError,
        MomentDataError: http_core.ApiDataError,
        MomentConflict: http_core.ApiDataError,
        MomentNotFound: http_core.ApiNotFound,
        MomentAmbiguousWriteError: http_core.ApiAmbiguousWriteError,
    }
    for moment_class, kind in kinds.items():
        assert issubclass(moment_class, kind), moment_class
    error = MomentDataError("bad", status=400, field="amount", path="/companies/acme/x")
    assert isinstance(error, http_core.ApiError)
    assert (error.message, error.status, error.field, error.path) == (
        "bad",
        400,
        "amount",
        "/companies/acme/x",
    )


@responses.activate
def test_post_on_5xx_is_ambiguous_not_retried() -> None:
    responses.post(f"{BASE}/projectExpenses", json=spring_error(502, "bad gateway"), status=502)
    with pytest.raises(MomentAmbiguousWriteError) as caught:
        make_client().create("projectExpenses", {"externalReference": "fx-1"})
    assert caught.value.status == 502
    assert len(responses.calls) == 1


@responses.activate
def test_post_is_retried_on_429_because_nothing_was_done() -> None:
    responses.post(f"{BASE}/projectExpenses", status=429)
    responses.post(f"{BASE}/projectExpenses", json={"id": 5}, status=201)
    assert make_client().create("projectExpenses", {"externalReference": "fx-1"}) == {"id": 5}
    assert len(responses.calls) == 2


@responses.activate
def test_401_is_an_auth_error_that_says_what_to_check() -> None:
    responses.get(f"{BASE}/customers", json=spring_error(401, "Bad credentials"), status=401)
    with pytest.raises(MomentAuthError) as caught:
        list(make_client().list("customers"))
    message = str(caught.value)
    assert "api_key" in message
    assert "company_code" in message
    assert len(responses.calls) == 1  # auth errors are not retried


@responses.activate
def test_404_and_409_map_to_their_classes() -> None:
    responses.get(f"{BASE}/projects/99", json=spring_error(404, "Project 99 not found"), status=404)
    responses.post(
        f"{BASE}/projectExpenses",
        json=spring_error(409, "externalReference 'fx-1' already exists"),
        status=409,
    )
    client = make_client()
    with pytest.raises(MomentNotFound, match="Project 99 not found"):
        client.get("projects", 99)
    with pytest.raises(MomentConflict) as conflict:
        client.create("projectExpenses", {"externalReference": "fx-1"})
    assert isinstance(conflict.value, MomentDataError)
    assert conflict.value.status == 409


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Field 'amount' must be a number", "amount"),
        ("projectId: must not be null", "projectId"),
        ("Field error in object 'expense' on field 'expenseDate': bad date", "expenseDate"),
    ],
)
@responses.activate
def test_400_is_a_data_error_naming_the_field(message: str, field: str) -> None:
    responses.post(f"{BASE}/projectExpenses", json=spring_error(400, message), status=400)
    with pytest.raises(MomentDataError) as caught:
        make_client().create("projectExpenses", {"amount": "x"})
    assert caught.value.field == field
    assert field in str(caught.value)
    assert not isinstance(caught.value, MomentNotFound | MomentConflict)


@responses.activate
def test_non_json_error_body_still_gives_a_message() -> None:
    responses.get(f"{BASE}/customers/1", body="<html>Forbidden</html>", status=403)
    with pytest.raises(MomentAuthError, match="Forbidden"):
        make_client().get("customers", 1)


@responses.activate
def test_find_one_rechecks_filters_client_side() -> None:
    responses.get(
        f"{BASE}/projectExpenses",
        json={
            "content": [
                {"id": 1, "externalReference": "fx-other"},  # leaky filter (seen in real clients)
                {"id": 2, "externalReference": "fx-1"},
            ],
            "page": {"number": 0, "size": 2, "totalElements": 2, "totalPages": 1},
        },
    )
    client = make_client()
    assert client.find_one("projectExpenses", externalReference="fx-1") == {
        "id": 2,
        "externalReference": "fx-1",
    }
    assert "externalReference=fx-1" in (responses.calls[0].request.url or "")


@responses.activate
def test_find_one_returns_none_when_absent() -> None:
    responses.get(f"{BASE}/projectExpenses", json={"content": [], "page": {"totalPages": 0}})
    assert make_client().find_one("projectExpenses", externalReference="nope") is None


@responses.activate
def test_api_key_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses.get(f"{BASE}/customers/1", status=500)
    client = make_client()
    with pytest.raises(MomentTransientError) as caught:
        client.get("customers", 1)
    assert KEY not in repr(client)
    assert KEY not in repr(client.settings)
    assert KEY not in str(caught.value)
    assert KEY not in caplog.text
    assert "retry 1/2" in caplog.text


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"company_code": "", "api_key": KEY}, "company_code"),
        ({"company_code": "acme", "api_key": ""}, "api_key"),
        ({"company_code": "acme", "api_key": KEY, "page_size": 501}, "page_size"),
    ],
)
def test_settings_are_validated(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MomentSettings.from_config(config)


def test_settings_defaults() -> None:
    settings = MomentSettings.from_config({"company_code": "acme", "api_key": KEY})
    assert settings.api_url == "https://app.moment.team/api/1.0"
    assert settings.page_size == 500


def _peak_bytes_streaming(total: int) -> int:
    """Peak traced memory while streaming ``total`` records and keeping none of them."""
    with responses.RequestsMock() as mock:
        page = paged_callback(total)

        def forgetful(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            # The mock's own call logs (global and per route) would otherwise hold every page.
            mock.calls.reset()
            route.calls.reset()
            return page(request)  # type: ignore[no-any-return]

        route = mock.add_callback(responses.GET, f"{BASE}/customers", callback=forgetful)
        client = make_client(page_size=500)
        gc.collect()
        tracemalloc.start()
        try:
            count = sum(1 for _ in client.list("customers"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == total
    return peak


def test_memory_is_flat_in_the_number_of_records() -> None:
    small = _peak_bytes_streaming(1_000)
    large = _peak_bytes_streaming(20_000)
    # Twenty times the records: a list-accumulating client would need ~20x; paging keeps one page.
    assert large < small * 2, (small, large)


@responses.activate
def test_find_one_never_matches_a_record_without_the_filtered_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Moment ignored the filter and its expenses carry no externalReference at all (e.g. the
    # field has another name): a look-up must find nothing, or it would overwrite that expense.
    responses.get(
        f"{BASE}/projectExpenses",
        json={
            "content": [{"id": 1, "description": "entered in Moment"}, {"id": 2}],
            "page": {"number": 0, "size": 2, "totalElements": 2, "totalPages": 1},
        },
    )
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="moment_client"):
        assert client.find_one("projectExpenses", externalReference="fx-1") is None
        assert client.find_one("projectExpenses", externalReference="fx-2") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # said once per entity and filter, not per record
    assert "ignored the filter externalReference on projectExpenses" in warnings[0]
    assert "docs/MOMENT-API.md" in warnings[0]
    assert client.filters.ignored == {("projectExpenses", "externalReference"): 4}


@responses.activate
def test_find_one_warns_when_a_record_outside_the_filter_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses.get(
        f"{BASE}/projects",
        json={
            "content": [{"id": 1, "projectNumber": "5001"}, {"id": 2, "projectNumber": "5002"}],
            "page": {"number": 0, "size": 2, "totalElements": 2, "totalPages": 1},
        },
    )
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="moment_client"):
        assert client.find_one("projects", projectNumber="5002") == {
            "id": 2,
            "projectNumber": "5002",
        }
    assert "ignored the filter projectNumber on projects" in caplog.text
