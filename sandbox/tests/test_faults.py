"""Fault injection and the request log (common to both sandboxes), driven over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from sandbox.launcher import SandboxProcess

AUTH = ("apikey", "sandbox-key")


@pytest.fixture
def moment(moment_sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    moment_sandbox.admin("DELETE", "faults")
    yield moment_sandbox
    moment_sandbox.admin("DELETE", "faults")


def customers_url(sandbox: SandboxProcess) -> str:
    return f"{sandbox.url}/api/1.0/companies/demo/customers"


def test_status_fault_answers_n_requests_then_clears(moment: SandboxProcess) -> None:
    moment.admin("POST", "faults", {"kind": "status", "status": 429, "count": 2})
    codes = [
        requests.get(customers_url(moment), auth=AUTH, timeout=10).status_code for _ in range(3)
    ]
    assert codes == [429, 429, 200]
    assert moment.admin("GET", "faults")["faults"] == []


def test_status_fault_narrowed_by_method_and_path(moment: SandboxProcess) -> None:
    moment.admin("POST", "faults", {"kind": "status", "status": 503, "count": 1, "method": "POST"})
    assert requests.get(customers_url(moment), auth=AUTH, timeout=10).status_code == 200
    moment.admin("DELETE", "faults")
    moment.admin(
        "POST", "faults", {"kind": "status", "status": 502, "count": 1, "path": "projects"}
    )
    assert requests.get(customers_url(moment), auth=AUTH, timeout=10).status_code == 200
    projects = customers_url(moment).replace("customers", "projects")
    assert requests.get(projects, auth=AUTH, timeout=10).status_code == 502


def test_error_rate_is_seeded_and_partial(moment: SandboxProcess) -> None:
    moment.admin("POST", "faults", {"kind": "status", "status": 500, "rate": 0.5, "seed": 7})
    codes = [
        requests.get(customers_url(moment), auth=AUTH, timeout=10).status_code for _ in range(40)
    ]
    assert 5 < codes.count(500) < 35
    assert set(codes) == {200, 500}


def test_latency_slows_requests_past_a_client_timeout(moment: SandboxProcess) -> None:
    moment.admin("POST", "faults", {"kind": "latency", "seconds": 5.0, "count": 1})
    with pytest.raises(requests.Timeout):
        requests.get(customers_url(moment), auth=AUTH, timeout=0.5)
    # The fault was used up: the next request is answered inside a timeout the slow one missed.
    assert requests.get(customers_url(moment), auth=AUTH, timeout=4.0).status_code == 200


def test_drop_after_commit_is_the_ambiguous_failure(moment: SandboxProcess) -> None:
    moment.admin("POST", "faults", {"kind": "drop_after_commit", "method": "POST", "count": 1})
    body = {"customerNumber": "99001", "name": "Tappad Förbindelse AB", "countryCode": "SE"}
    with pytest.raises(requests.ConnectionError):
        requests.post(customers_url(moment), json=body, auth=AUTH, timeout=10)
    # The write happened although the client never got an answer.
    found = requests.get(
        customers_url(moment), params={"customerNumber": "99001"}, auth=AUTH, timeout=10
    ).json()["content"]
    assert [c["name"] for c in found] == ["Tappad Förbindelse AB"]
    requests.delete(f"{customers_url(moment)}/{found[0]['id']}", auth=AUTH, timeout=10)


def test_drop_for_a_while_makes_the_server_unreachable(moment: SandboxProcess) -> None:
    moment.admin("POST", "faults", {"kind": "drop", "seconds": 1.0})
    with pytest.raises(requests.ConnectionError):
        requests.get(customers_url(moment), auth=AUTH, timeout=10)
    deadline = time.monotonic() + 5
    while True:
        try:
            status = requests.get(customers_url(moment), auth=AUTH, timeout=10).status_code
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "server still unreachable after the fault expired"
            time.sleep(0.1)
    assert status == 200


def test_request_log_records_api_calls_not_admin_calls(moment: SandboxProcess) -> None:
    since = moment.admin("GET", "requests")["last"]
    requests.get(customers_url(moment), params={"size": 5}, auth=AUTH, timeout=10)
    moment.admin("GET", "faults")
    entries = moment.admin("GET", f"requests?since={since}")["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/api/1.0/companies/demo/customers", 200)
    ]
    assert entries[0]["query"] == "size=5"


def test_invalid_fault_is_refused(moment: SandboxProcess) -> None:
    response = requests.post(f"{moment.url}/_sandbox/faults", json={"kind": "meteor"}, timeout=10)
    assert response.status_code == 400
    assert "kind must be one of" in response.json()["error"]
