"""One Fortnox host, several companies (sandbox/fortnox/tenants.py): every token, record, rate-limit
window and request log belongs to one company, as on api.fortnox.se.

A real sandbox process over HTTP, three companies on one port.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from sandbox.launcher import SandboxProcess

CLIENT = ("sandbox-client", "sandbox-secret")
TENANTS = (1234567, 2000002, 2000003)


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("fortnox-tenants")) / "fortnox.db"
    tenant_ids = ",".join(map(str, TENANTS))
    extra = ["--max-requests-per-5s", "3", "--tenant-ids", tenant_ids]
    with SandboxProcess("fortnox", db, seed=1, extra_args=extra) as proc:
        yield proc


def access_token(fx: SandboxProcess, tenant: int) -> str:
    """Refresh a minted refresh token of ``tenant``: the router finds its company by the token."""
    minted = fx.admin("POST", f"refresh-tokens?tenant={tenant}", {})["refresh_token"]
    answer = requests.post(
        f"{fx.url}/oauth-v1/token",
        data={"grant_type": "refresh_token", "refresh_token": minted},
        auth=CLIENT,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def api(fx: SandboxProcess, token: str, method: str, path: str, **kw: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.request(method, f"{fx.url}/3/{path}", headers=headers, timeout=10, **kw)  # type: ignore[arg-type]


def test_each_company_has_its_own_tenant_id_books_and_tokens(fx: SandboxProcess) -> None:
    listed = fx.admin("GET", "tenants")["tenants"]
    assert [t["tenant_id"] for t in listed] == list(TENANTS)
    assert len({t["company"] for t in listed}) == 3, listed  # seeds 1, 2, 3: three companies

    tokens = {tenant: access_token(fx, tenant) for tenant in TENANTS}
    for tenant, token in tokens.items():
        assert jwt.decode(token, options={"verify_signature": False})["tenantId"] == tenant
        info = api(fx, token, "GET", "companyinformation").json()["CompanyInformation"]
        assert info["DatabaseNumber"] == tenant
        settings = api(fx, token, "GET", "settings/company").json()["CompanySettings"]
        assert settings["DatabaseNumber"] == str(tenant)
        fx.admin("DELETE", f"rate-limit?tenant={tenant}")

    # A customer created in one company exists only there.
    created = api(
        fx, tokens[2000002], "POST", "customers", json={"Customer": {"Name": "Bara Bravo AB"}}
    )
    assert created.status_code == 201, created.text
    number = created.json()["Customer"]["CustomerNumber"]
    for tenant in TENANTS:
        fx.admin("DELETE", f"rate-limit?tenant={tenant}")
        found = api(fx, tokens[tenant], "GET", f"customers/{number}")
        if tenant == 2000002:
            assert found.json()["Customer"]["Name"] == "Bara Bravo AB"
        else:
            assert found.status_code == 404 or found.json()["Customer"]["Name"] != "Bara Bravo AB"


def test_a_token_of_one_company_claiming_another_is_refused(fx: SandboxProcess) -> None:
    token = access_token(fx, 1234567)
    header, _, _ = token.partition(".")
    claims = jwt.decode(token, options={"verify_signature": False}) | {"tenantId": 2000003}
    forged = jwt.encode(claims, "not-the-company-secret-of-any-tenant-here", algorithm="HS256")
    assert forged.split(".")[0] == header
    answer = api(fx, forged, "GET", "companyinformation")
    assert answer.status_code == 401


def test_the_rate_limit_counts_per_company(fx: SandboxProcess) -> None:
    tokens = {tenant: access_token(fx, tenant) for tenant in TENANTS[:2]}
    marks = {t: fx.admin("GET", f"requests?since=0&tenant={t}")["last"] for t in TENANTS}
    for tenant in TENANTS[:2]:
        fx.admin("DELETE", f"rate-limit?tenant={tenant}")
    # Three requests per 5 s per company: the first company's fourth is refused, the second
    # company's three still pass.
    statuses = [api(fx, tokens[1234567], "GET", "customers").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    statuses = [api(fx, tokens[2000002], "GET", "customers").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    # Each company's request log holds its own requests only.
    logged = {
        t: fx.admin("GET", f"requests?since={marks[t]}&tenant={t}")["requests"] for t in TENANTS
    }
    assert [r["status"] for r in logged[1234567] if r["path"].startswith("/3/")] == [
        200,
        200,
        200,
        429,
    ]
    assert len([r for r in logged[2000002] if r["path"].startswith("/3/")]) == 3
    assert [r for r in logged[2000003] if r["path"].startswith("/3/")] == []


def test_client_credentials_and_consent_pick_the_company(fx: SandboxProcess) -> None:
    answer = requests.post(
        f"{fx.url}/oauth-v1/token",
        data={"grant_type": "client_credentials", "scope": "customer"},
        headers={"TenantId": "2000003"},
        auth=CLIENT,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["tenantId"] == 2000003
    unknown = requests.post(
        f"{fx.url}/oauth-v1/token",
        data={"grant_type": "client_credentials"},
        headers={"TenantId": "999"},
        auth=CLIENT,
        timeout=10,
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_request"

    # The consent page of the second company, approved: its code gives that company's tokens.
    redirect = "http://localhost:8765/callback"
    page = requests.get(
        f"{fx.url}/oauth-v1/auth",
        params={
            "client_id": "sandbox-client",
            "response_type": "code",
            "state": "s1",
            "scope": "customer",
            "redirect_uri": redirect,
            "tenant": "2000002",
        },
        timeout=10,
    )
    assert "(database 2000002)" in page.text
    consent = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert consent is not None
    decided = requests.post(
        f"{fx.url}/oauth-v1/auth",
        data={"consent": consent.group(1), "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(decided.headers["Location"]).query)["code"][0]
    pair = requests.post(
        f"{fx.url}/oauth-v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=CLIENT,
        timeout=10,
    )
    assert pair.status_code == 200, pair.text
    claims = jwt.decode(pair.json()["access_token"], options={"verify_signature": False})
    assert claims["tenantId"] == 2000002
