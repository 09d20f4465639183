"""Fortnox sandbox OAuth2: consent page, the three grants, rotation, revoke, bearer checks, scopes.

Every test talks real HTTP to a real sandbox process.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sandbox.launcher import SandboxProcess

CLIENT = ("sandbox-client", "sandbox-secret")
REDIRECT = "http://localhost:8765/callback"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("fortnox-oauth")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=3, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


def token(fx: SandboxProcess, auth: tuple[str, str] = CLIENT, **form: str) -> requests.Response:
    return requests.post(f"{fx.url}/oauth-v1/token", data=form, auth=auth, timeout=10)


def refresh_token(fx: SandboxProcess, scope: str) -> str:
    return str(fx.admin("POST", "refresh-tokens", {"scope": scope})["refresh_token"])


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def consent(fx: SandboxProcess, scope: str, state: str, decision: str) -> dict[str, list[str]]:
    """Open the consent page, press a button, and return the callback's query parameters."""
    page = requests.get(
        f"{fx.url}/oauth-v1/auth",
        params={
            "client_id": "sandbox-client",
            "response_type": "code",
            "state": state,
            "scope": scope,
            "redirect_uri": REDIRECT,
            "access_type": "offline",
            "account_type": "service",
        },
        timeout=10,
    )
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    form = re.search(r'<form method="post" action="([^"]+)"', page.text)
    consent_id = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert form
    assert consent_id
    assert 'value="approve"' in page.text
    assert 'value="deny"' in page.text
    answer = requests.post(
        f"{fx.url}{form.group(1)}",
        data={"consent": consent_id.group(1), "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (302, 303)
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def test_consent_page_names_company_and_scopes(fx: SandboxProcess) -> None:
    page = requests.get(
        f"{fx.url}/oauth-v1/auth",
        params={
            "client_id": "sandbox-client",
            "response_type": "code",
            "state": "s1",
            "scope": "customer project",
            "redirect_uri": REDIRECT,
        },
        timeout=10,
    )
    company = requests.get(
        f"{fx.url}/3/companyinformation",
        headers=bearer(
            token(
                fx,
                grant_type="refresh_token",
                refresh_token=refresh_token(fx, "companyinformation"),
            ).json()["access_token"]
        ),
        timeout=10,
    ).json()["CompanyInformation"]["CompanyName"]
    assert company in page.text
    assert "<code>customer</code>" in page.text
    assert "<code>project</code>" in page.text


def test_authorization_code_flow_approve_then_code_is_single_use(fx: SandboxProcess) -> None:
    params = consent(fx, "customer project", "xyz", "approve")
    assert params["state"] == ["xyz"]
    code = params["code"][0]
    reply = token(fx, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"access_token", "refresh_token", "scope", "expires_in", "token_type"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "customer project"
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["tenantId"] == 1234567
    assert claims["clientId"] == "sandbox-client"
    assert {"exp", "iat", "jti", "scope"} <= set(claims)
    again = token(fx, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_needs_the_same_redirect_uri(fx: SandboxProcess) -> None:
    code = consent(fx, "customer", "s2", "approve")["code"][0]
    reply = token(
        fx, grant_type="authorization_code", code=code, redirect_uri="http://localhost:9999/other"
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_grant"


def test_deny_redirects_with_access_denied(fx: SandboxProcess) -> None:
    params = consent(fx, "customer", "st", "deny")
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["st"]
    assert "code" not in params


def test_refresh_tokens_rotate_and_are_single_use(fx: SandboxProcess) -> None:
    first = refresh_token(fx, "customer")
    reply = token(fx, grant_type="refresh_token", refresh_token=first)
    assert reply.status_code == 200
    second = reply.json()["refresh_token"]
    assert second != first
    reused = token(fx, grant_type="refresh_token", refresh_token=first)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_description"]
    unknown = token(fx, grant_type="refresh_token", refresh_token="not-a-token")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_grant"
    assert token(fx, grant_type="refresh_token", refresh_token=second).status_code == 200


def test_wrong_client_secret_is_invalid_client(fx: SandboxProcess) -> None:
    reply = token(
        fx,
        ("sandbox-client", "wrong"),
        grant_type="refresh_token",
        refresh_token=refresh_token(fx, "customer"),
    )
    assert reply.status_code == 401
    assert reply.json() == {"error": "invalid_client"}


def test_client_credentials_needs_tenant_and_gives_no_refresh_token(fx: SandboxProcess) -> None:
    url = f"{fx.url}/oauth-v1/token"
    good = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=CLIENT,
        headers={"TenantId": "1234567"},
        timeout=10,
    )
    assert good.status_code == 200
    assert "refresh_token" not in good.json()
    assert good.json()["token_type"] == "bearer"
    customers = requests.get(
        f"{fx.url}/3/customers", headers=bearer(good.json()["access_token"]), timeout=10
    )
    assert customers.status_code == 200
    wrong = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=CLIENT,
        headers={"TenantId": "999"},
        timeout=10,
    )
    assert wrong.status_code == 400


def test_revoke_kills_the_refresh_token(fx: SandboxProcess) -> None:
    rt = refresh_token(fx, "customer")
    reply = requests.post(
        f"{fx.url}/oauth-v1/revoke",
        auth=CLIENT,
        data={"token_type_hint": "refresh_token", "token": rt},
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.json() == {"revoked": True}
    assert (
        token(fx, grant_type="refresh_token", refresh_token=rt).json()["error"] == "invalid_grant"
    )


@pytest.mark.parametrize(
    "header", [None, "Bearer ", "Bearer not.a.jwt", "Basic c2FuZGJveDpzZWNyZXQ="]
)
def test_missing_or_invalid_bearer_is_401_2000311(fx: SandboxProcess, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    reply = requests.get(f"{fx.url}/3/customers", headers=headers, timeout=10)
    assert reply.status_code == 401
    assert reply.json()["ErrorInformation"]["code"] == 2000311


def test_expired_tokens_are_refused_with_a_clear_message(fx: SandboxProcess) -> None:
    access = token(
        fx, grant_type="refresh_token", refresh_token=refresh_token(fx, "customer")
    ).json()["access_token"]
    assert requests.get(f"{fx.url}/3/customers", headers=bearer(access), timeout=10).ok
    fx.admin("POST", "tokens/expire")
    reply = requests.get(f"{fx.url}/3/customers", headers=bearer(access), timeout=10)
    assert reply.status_code == 401
    error = reply.json()["ErrorInformation"]
    assert error["code"] == 2000311
    assert "expired" in error["message"]
    fresh = token(
        fx, grant_type="refresh_token", refresh_token=refresh_token(fx, "customer")
    ).json()["access_token"]
    assert requests.get(f"{fx.url}/3/customers", headers=bearer(fresh), timeout=10).ok


def test_token_lifetime_option_sets_expiry(tmp_path: Path) -> None:
    with SandboxProcess("fortnox", tmp_path / "f.db", extra_args=["--token-lifetime", "120"]) as fx:
        reply = token(fx, grant_type="refresh_token", refresh_token=refresh_token(fx, "customer"))
        assert reply.json()["expires_in"] == 120
        claims = json.loads(
            base64.urlsafe_b64decode(reply.json()["access_token"].split(".")[1] + "==")
        )
        assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("customers", "customer"),
        ("projects", "project"),
        ("invoices", "invoice"),
        ("supplierinvoices", "supplierinvoice"),
        ("suppliers", "supplier"),
        ("accounts", "bookkeeping"),
        ("financialyears", "bookkeeping"),
        ("companyinformation", "companyinformation"),
        ("settings/company", "settings"),
    ],
)
def test_each_resource_needs_its_scope(fx: SandboxProcess, path: str, scope: str) -> None:
    others = "customer" if scope != "customer" else "invoice"
    without = token(fx, grant_type="refresh_token", refresh_token=refresh_token(fx, others)).json()[
        "access_token"
    ]
    refused = requests.get(f"{fx.url}/3/{path}", headers=bearer(without), timeout=10)
    assert refused.status_code == 403
    assert refused.json()["ErrorInformation"]["code"] == 2000663
    assert scope in refused.json()["ErrorInformation"]["message"]
    with_scope = token(
        fx, grant_type="refresh_token", refresh_token=refresh_token(fx, scope)
    ).json()["access_token"]
    assert (
        requests.get(f"{fx.url}/3/{path}", headers=bearer(with_scope), timeout=10).status_code
        == 200
    )


def test_oauth_endpoints_reject_json_bodies(fx: SandboxProcess) -> None:
    reply = requests.post(
        f"{fx.url}/oauth-v1/token", json={"grant_type": "refresh_token"}, auth=CLIENT, timeout=10
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"
