"""Fortnox sandbox operations: rate limit, admin settings, persistence across a restart, reseed,
fault answers and the request log, start-up time and paging at scale — real processes, real HTTP.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox.launcher import SandboxProcess

CLIENT = ("sandbox-client", "sandbox-secret")


def login(fx: SandboxProcess, scope: str = "") -> tuple[requests.Session, str]:
    """A session with a fresh access token, and the rotated refresh token."""
    minted = fx.admin("POST", "refresh-tokens", {"scope": scope} if scope else {})
    reply = requests.post(
        f"{fx.url}/oauth-v1/token",
        data={"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]},
        auth=CLIENT,
        timeout=10,
    ).json()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reply['access_token']}"
    return session, str(reply["refresh_token"])


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("fortnox-ops")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=11, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


def test_rate_limit_refuses_the_26th_request_and_refusals_do_not_count(tmp_path: Path) -> None:
    with SandboxProcess("fortnox", tmp_path / "f.db") as fx:  # default limit: 25 per 5 s
        assert fx.admin("GET", "settings")["max_requests_per_5s"] == 25
        http, _ = login(fx, "customer")
        started = time.monotonic()
        codes = [http.get(f"{fx.url}/3/customers", timeout=10).status_code for _ in range(30)]
        assert time.monotonic() - started < 4.5, "too slow to test a 5-second window"
        assert codes[:25] == [200] * 25
        assert codes[25:] == [429] * 5
        refused = http.get(f"{fx.url}/3/customers", timeout=10)
        assert refused.status_code == 429
        assert "Retry-After" not in refused.headers
        assert refused.json()["message"]
        # OAuth is not limited while the API is.
        assert login(fx, "customer")[0] is not None
        # The window frees up five seconds after the first accepted request; refusals did not
        # extend it. Poll (bounded) instead of sleeping a fixed time.
        deadline = started + 5.0 + 3.0
        status = 429
        while time.monotonic() < deadline and status == 429:
            time.sleep(0.1)
            status = http.get(f"{fx.url}/3/customers", timeout=10).status_code
        assert status == 200
        assert time.monotonic() - started < 6.5


def test_rate_limit_change_applies_at_once_and_persists(tmp_path: Path) -> None:
    with SandboxProcess(
        "fortnox", tmp_path / "f.db", extra_args=["--max-requests-per-5s", "0"]
    ) as fx:
        http, _ = login(fx, "customer")
        assert all(http.get(f"{fx.url}/3/customers", timeout=10).ok for _ in range(30))
        fx.admin("PATCH", "settings", {"max_requests_per_5s": 3, "project_module": False})
        seq = int(fx.admin("GET", "requests?since=999999999999")["last"])
        codes = [http.get(f"{fx.url}/3/customers", timeout=10).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        # The log says when the limiter counted each request (admitted or refused), so a
        # reader of the log counts windows as the limiter did.
        logged = fx.admin("GET", f"requests?since={seq}")["requests"]
        arrived = [r["arrived"] for r in logged]
        assert [r["status"] for r in logged] == codes
        assert arrived == sorted(arrived)
        assert all(r["time"] - 5 < r["arrived"] <= r["time"] for r in logged)
        # The admin can forget what the windows counted (so one test's requests do not count
        # against the next test's).
        assert fx.admin("DELETE", "rate-limit") == {"cleared": True}
        codes = [http.get(f"{fx.url}/3/customers", timeout=10).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        fx.admin("PATCH", "settings", {"max_requests_per_5s": 0})
        assert http.get(f"{fx.url}/3/customers", timeout=10).ok
        fx.restart()
        assert fx.admin("GET", "settings")["project_module"] is False


def test_settings_patch_rejects_unknown_names_and_types(fx: SandboxProcess) -> None:
    for body in ({"colour": 1}, {"project_module": "yes"}, {"token_lifetime": -5}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            fx.admin("PATCH", "settings", body)
        assert refused.value.code == 400


def test_restart_keeps_data_tokens_and_secret(tmp_path: Path) -> None:
    with SandboxProcess("fortnox", tmp_path / "f.db", seed=2) as fx:
        http, refresh = login(fx, "customer")
        created = http.post(
            f"{fx.url}/3/customers",
            json={"Customer": {"CustomerNumber": "1001", "Name": "Kvar AB"}},
            timeout=10,
        )
        assert created.status_code == 201
        fx.admin("PATCH", "settings", {"ocr_on_invoices": False})
        fx.restart()
        # The access token still verifies (the JWT secret is in SQLite) ...
        assert http.get(f"{fx.url}/3/customers/1001", timeout=10).json()["Customer"]["Name"] == (
            "Kvar AB"
        )
        # ... the refresh token still works once, and the seed was not applied again.
        rotated = requests.post(
            f"{fx.url}/oauth-v1/token",
            auth=CLIENT,
            timeout=10,
            data={"grant_type": "refresh_token", "refresh_token": refresh},
        )
        assert rotated.status_code == 200
        assert fx.admin("GET", "settings")["ocr_on_invoices"] is False
        assert fx.admin("GET", "counts")["customers"] == 1


def test_unseeded_database_still_has_the_oauth_client_and_company(tmp_path: Path) -> None:
    with SandboxProcess("fortnox", tmp_path / "f.db") as fx:
        http, _ = login(fx, "companyinformation customer")
        assert http.get(f"{fx.url}/3/customers", timeout=10).json()["Customers"] == []
        info = http.get(f"{fx.url}/3/companyinformation", timeout=10).json()
        assert info["CompanyInformation"]["DatabaseNumber"] == 1234567


def test_reseed_is_deterministic_and_keeps_the_oauth_client(fx: SandboxProcess) -> None:
    http, refresh = login(fx, "supplierinvoice supplier")

    def snapshot() -> list[Any]:
        items = http.get(f"{fx.url}/3/supplierinvoices", params={"limit": 500}, timeout=10).json()
        details = [
            http.get(f"{fx.url}/3/supplierinvoices/{i['GivenNumber']}", timeout=10).json()
            for i in items["SupplierInvoices"][:10]
        ]
        return [items, details, http.get(f"{fx.url}/3/suppliers", timeout=10).json()]

    counts = fx.admin(
        "POST", "seed", {"seed": 4, "supplierinvoices": 20, "suppliers": 3, "moment_projects": 5}
    )["counts"]
    assert counts["supplierinvoices"] == 20
    assert counts["suppliers"] == 3
    first = snapshot()
    fx.admin("POST", "seed", {"seed": 5})
    assert snapshot() != first
    fx.admin(
        "POST", "seed", {"seed": 4, "supplierinvoices": 20, "suppliers": 3, "moment_projects": 5}
    )
    assert snapshot() == first
    projects = {i["Project"] for i in first[0]["SupplierInvoices"]} - {"", "9001"}
    assert projects
    assert all(5001 <= int(p) <= 5005 for p in projects)
    # The token minted before the reseeds still works: the OAuth client and tokens survive.
    assert http.get(f"{fx.url}/3/suppliers", timeout=10).ok
    again = requests.post(
        f"{fx.url}/oauth-v1/token",
        auth=CLIENT,
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
    )
    assert again.status_code == 200
    fx.admin("POST", "seed", {"seed": 11})


def test_injected_faults_answer_in_fortnox_shape_and_log_the_caller(fx: SandboxProcess) -> None:
    http, _ = login(fx, "customer")
    fx.admin("DELETE", "faults")
    since = fx.admin("GET", "requests")["last"]
    fx.admin("POST", "faults", {"kind": "status", "status": 503, "count": 1})
    fx.admin("POST", "faults", {"kind": "status", "status": 429, "count": 1})
    first = http.get(f"{fx.url}/3/customers", timeout=10)
    assert first.status_code == 503
    assert first.json()["ErrorInformation"]["code"] == 1000003
    second = http.get(f"{fx.url}/3/customers", timeout=10)
    assert second.status_code == 429
    assert "message" in second.json()
    assert http.get(f"{fx.url}/3/customers", timeout=10).status_code == 200
    log = fx.admin("GET", f"requests?since={since}")["requests"]
    assert [entry["status"] for entry in log] == [503, 429, 200]
    assert {entry["client"] for entry in log} == {"sandbox-client:1234567"}


def test_seeded_start_and_large_lists_page(tmp_path: Path) -> None:
    with SandboxProcess("fortnox", tmp_path / "f.db", seed=1) as fx:
        fx.admin("POST", "seed", {"seed": 1, "customers": 10000, "supplierinvoices": 0})
        http, _ = login(fx, "customer")
        page = http.get(
            f"{fx.url}/3/customers", params={"limit": 500, "page": 20}, timeout=10
        ).json()
        assert page["MetaInformation"] == {
            "@TotalResources": 10000,
            "@TotalPages": 20,
            "@CurrentPage": 20,
        }
        assert page["Customers"][-1]["CustomerNumber"] == "100000"
        assert page["Customers"][0]["CustomerNumber"] == "99501"


def test_concurrent_writes_and_refreshes_are_safe(fx: SandboxProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    http, refresh = login(fx, "customer")

    def create(i: int) -> str:
        reply = http.post(
            f"{fx.url}/3/customers", json={"Customer": {"Name": f"Samtidig {i}"}}, timeout=10
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["Customer"]["CustomerNumber"])

    def use_refresh(_: int) -> int:
        return requests.post(
            f"{fx.url}/oauth-v1/token",
            auth=CLIENT,
            timeout=10,
            data={"grant_type": "refresh_token", "refresh_token": refresh},
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(create, range(24)))
        statuses = list(pool.map(use_refresh, range(8)))
    assert len(set(numbers)) == 24
    # A rotating refresh token is single use even under a race: exactly one refresh wins.
    assert sorted(statuses) == [200] + [400] * 7
