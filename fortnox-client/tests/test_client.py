"""FortnoxClient with mocked HTTP: envelopes, paging, retries, write safety, 401 refresh, stats."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from fortnox_client import (
    AmbiguousWriteError,
    FortnoxAuthError,
    FortnoxClient,
    FortnoxDataError,
    FortnoxSettings,
    FortnoxTransientError,
)

API = "https://fortnox.test/3"
TOKEN_URL = "https://apps.fortnox.test/oauth-v1/token"


def _error(code: int, message: str = "Fel") -> dict[str, Any]:
    return {"ErrorInformation": {"error": 1, "message": message, "code": code}}


def _query(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@pytest.fixture
def client(api_settings: FortnoxSettings) -> FortnoxClient:
    return FortnoxClient(api_settings)


@responses.activate
def test_get_unwraps_and_sends_bearer_and_json_headers(client: FortnoxClient) -> None:
    responses.get(f"{API}/customers/1001", json={"Customer": {"CustomerNumber": "1001"}})
    assert client.get("customers", "1001") == {"CustomerNumber": "1001"}
    headers = responses.calls[0].request.headers
    assert headers["Authorization"].startswith("Bearer ey")
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"


@responses.activate
@pytest.mark.parametrize(
    ("status", "body"), [(404, _error(2000423)), (400, _error(2000423)), (404, None)]
)
def test_get_missing_record_is_none(client: FortnoxClient, status: int, body: Any) -> None:
    responses.get(f"{API}/projects/P%2F1", status=status, json=body)
    assert client.get("projects", "P/1") is None  # the key is quoted into one path segment
    assert len(responses.calls) == 1


@responses.activate
def test_list_walks_every_page_with_limit_500(client: FortnoxClient) -> None:
    for page in (1, 2, 3):
        responses.get(
            f"{API}/customers",
            json={
                "MetaInformation": {
                    "@TotalResources": 5,
                    "@TotalPages": 3,
                    "@CurrentPage": page,
                },
                "Customers": [
                    {"CustomerNumber": f"{page}-{i}"} for i in range(2 if page < 3 else 1)
                ],
            },
            match=[
                responses.matchers.query_param_matcher(
                    {"limit": "500", "page": str(page), "lastmodified": "2026-01-15 09:30"}
                )
            ],
        )
    since = datetime(2026, 1, 15, 8, 30, tzinfo=UTC)
    numbers = [c["CustomerNumber"] for c in client.list("customers", {"lastmodified": since})]
    assert numbers == ["1-0", "1-1", "2-0", "2-1", "3-0"]
    assert len(responses.calls) == 3


@responses.activate
def test_list_stops_on_an_empty_page_and_keeps_caller_params(client: FortnoxClient) -> None:
    responses.get(
        f"{API}/supplierinvoices",
        json={"MetaInformation": {"@TotalPages": 9, "@CurrentPage": 1}, "SupplierInvoices": []},
    )
    rows = list(
        client.list("supplierinvoices", {"fromdate": datetime(2026, 1, 2).date(), "limit": 50})
    )
    assert rows == []
    assert _query(responses.calls[0]) == {"fromdate": "2026-01-02", "limit": "50", "page": "1"}


@responses.activate
def test_create_wraps_the_body_and_unwraps_the_answer(client: FortnoxClient) -> None:
    responses.post(f"{API}/customers", status=201, json={"Customer": {"CustomerNumber": "7"}})
    assert client.create("customers", {"Name": "Åsa AB"}) == {"CustomerNumber": "7"}
    assert json.loads(responses.calls[0].request.body) == {"Customer": {"Name": "Åsa AB"}}
    assert client.stats.writes == 1
    assert client.stats.by_method == {"POST": 1}


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [requests.ReadTimeout("read timed out"), requests.ConnectionError("Connection reset")],
)
def test_create_is_never_resent_after_it_may_have_arrived(
    client: FortnoxClient, failure: Exception
) -> None:
    responses.post(f"{API}/customers", body=failure)
    with pytest.raises(AmbiguousWriteError, match=r"(?i)look the record up"):
        client.create("customers", {"Name": "X"})
    assert len(responses.calls) == 1


@responses.activate
def test_create_after_a_500_is_ambiguous_not_retried(client: FortnoxClient) -> None:
    responses.post(f"{API}/invoices", status=500, json=_error(1000003))
    with pytest.raises(AmbiguousWriteError) as info:
        client.create("invoices", {"CustomerNumber": "1"})
    assert info.value.status == 500
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize("status", [429, 503])
def test_create_is_retried_when_the_server_refused_before_working(
    client: FortnoxClient, status: int
) -> None:
    responses.post(f"{API}/customers", status=status)
    responses.post(f"{API}/customers", status=201, json={"Customer": {"CustomerNumber": "8"}})
    assert client.create("customers", {"Name": "Y"}) == {"CustomerNumber": "8"}
    assert len(responses.calls) == 2
    assert client.stats.retries == 1
    assert client.stats.rate_limited == (1 if status == 429 else 0)


@responses.activate
def test_update_is_retried_after_a_timeout(client: FortnoxClient) -> None:
    responses.put(f"{API}/projects/P1", body=requests.ReadTimeout("slow"))
    responses.put(f"{API}/projects/P1", json={"Project": {"ProjectNumber": "P1"}})
    assert client.update("projects", "P1", {"Description": "D"}) == {"ProjectNumber": "P1"}
    assert len(responses.calls) == 2


@responses.activate
def test_a_body_cut_off_mid_transfer_is_retried_for_reads_and_ambiguous_for_writes(
    client: FortnoxClient,
) -> None:
    # The connection broke while the answer was read: a read is retried, a create may have been
    # committed (both through the HTTP core's one list of network failures, sync_common.http).
    cut = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
    responses.get(f"{API}/customers/1", body=cut)
    responses.get(f"{API}/customers/1", json={"Customer": {"CustomerNumber": "1"}})
    assert client.get("customers", "1") == {"CustomerNumber": "1"}
    responses.post(f"{API}/customers", body=cut)
    with pytest.raises(AmbiguousWriteError, match=r"(?i)look the record up"):
        client.create("customers", {"Name": "X"})
    assert len(responses.calls) == 3


def test_fortnox_errors_are_the_kinds_of_the_shared_http_core() -> None:
    from fortnox_client import FortnoxNotFound, FortnoxTokenUnavailable
    from sync_common import http as http_core

    kinds = {
        FortnoxTransientError: http_core.ApiTransientError,
        FortnoxTokenUnavailable: http_core.ApiTransientError,
        FortnoxAuthError: http_core.ApiAuthError,
        FortnoxDataError: http_core.ApiDataError,
        FortnoxNotFound: http_core.ApiNotFound,
        AmbiguousWriteError: http_core.ApiAmbiguousWriteError,
    }
    for fortnox_class, kind in kinds.items():
        assert issubclass(fortnox_class, kind), fortnox_class
    error = FortnoxNotFound("gone", code=2000423, status=404, field="X", fortnox_message="m")
    assert isinstance(error, http_core.ApiError)
    assert (error.message, error.code, error.status, error.field) == ("gone", 2000423, 404, "X")
    assert error.fortnox_message == "m"


@responses.activate
def test_transient_errors_give_up_after_max_tries(client: FortnoxClient) -> None:
    responses.get(f"{API}/customers/1", status=503)
    with pytest.raises(FortnoxTransientError, match="Gave up after 4 tries") as info:
        client.get("customers", "1")
    assert info.value.status == 503
    assert len(responses.calls) == client.settings.max_tries == 4
    assert client.stats.retries == 3


@responses.activate
def test_data_errors_are_not_retried(client: FortnoxClient) -> None:
    responses.post(f"{API}/customers", status=400, json=_error(2000637, "Kundnummer används"))
    with pytest.raises(FortnoxDataError) as info:
        client.create("customers", {"CustomerNumber": "1001", "Name": "Z"})
    assert info.value.code == 2000637
    assert info.value.field == "CustomerNumber"
    assert len(responses.calls) == 1


@responses.activate
def test_action_is_a_put_without_body_and_not_resent(client: FortnoxClient) -> None:
    responses.put(f"{API}/invoices/5/bookkeep", json={"Invoice": {"Booked": True}})
    assert client.action("invoices", 5, "bookkeep") == {"Booked": True}
    assert responses.calls[0].request.body is None
    responses.put(f"{API}/invoices/6/credit", body=requests.ReadTimeout("slow"))
    with pytest.raises(AmbiguousWriteError):
        client.action("invoices", 6, "credit")
    assert len(responses.calls) == 2


@responses.activate
def test_get_path_returns_the_raw_envelope(client: FortnoxClient) -> None:
    body = {"CompanySettings": {"DatabaseNumber": 7654321}}
    responses.get(f"{API}/settings/company", json=body)
    assert client.get_path("/settings/company") == body


@responses.activate
def test_401_forces_one_refresh_and_retries_once(client: FortnoxClient, jwt_factory: Any) -> None:
    new_token = jwt_factory()
    responses.post(
        TOKEN_URL, json={"access_token": new_token, "refresh_token": "RT-next", "expires_in": 3600}
    )
    responses.get(f"{API}/customers/1", status=401)
    responses.get(f"{API}/customers/1", json={"Customer": {"CustomerNumber": "1"}})

    assert client.get("customers", "1") == {"CustomerNumber": "1"}

    token_posts = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert len(token_posts) == 1
    assert "refresh_token=RT-stored" in token_posts[0].request.body
    assert responses.calls[-1].request.headers["Authorization"] == f"Bearer {new_token}"
    assert client.stats.token_refreshes == 1


@responses.activate
def test_401_after_the_refresh_is_fatal(client: FortnoxClient, jwt_factory: Any) -> None:
    responses.post(
        TOKEN_URL,
        json={"access_token": jwt_factory(), "refresh_token": "RT-next", "expires_in": 3600},
    )
    responses.get(f"{API}/customers/1", status=401)
    with pytest.raises(FortnoxAuthError, match="re-authorise"):
        client.get("customers", "1")
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1
    assert len([c for c in responses.calls if c.request.url != TOKEN_URL]) == 2


def test_unreachable_server_is_transient_even_for_a_post(
    api_settings: FortnoxSettings,
) -> None:
    # A real closed port: the connection is refused before anything is sent, so a create
    # may be retried and the error is transient, not ambiguous.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = FortnoxSettings.from_config(
        {
            "client_id": api_settings.client_id,
            "client_secret": api_settings.client_secret,
            "api_url": f"http://127.0.0.1:{port}/3",
            "token_store_path": str(api_settings.token_store_path),
            "max_requests_per_5s": 0,
            "max_tries": 3,
            "retry_base_seconds": 0.001,
        }
    )
    client = FortnoxClient(settings)
    with pytest.raises(FortnoxTransientError, match="nothing was sent"):
        client.create("customers", {"Name": "X"})
    assert client.stats.requests == 3


@responses.activate
def test_unknown_resources_are_refused_with_a_hint(client: FortnoxClient) -> None:
    with pytest.raises(ValueError, match="RESOURCES"):
        client.create("widgets", {"Name": "X"})
