"""One Fortnox host serving several companies (tenants), as api.fortnox.se does.

Fortnox serves every company from one API host: an app (client id) is authorised once per company,
each consent gives tokens bound to that company's TenantId (DatabaseNumber), and the rate limit
counts per app and company. ``TenantRouter`` gives the sandbox the same shape: one port, one
Fortnox app per company (``sandbox.fortnox.app.create_app``, each over its own SQLite file with its
own TenantId, books, OAuth signing secret, tokens, limiter window and request log), and each
request routed to the company it speaks for:

- ``/3/...``: the ``tenantId`` claim of the bearer token (read unverified only to route; the
  company's app then verifies the token with its own secret, so a forged claim is a 401 there).
  No token, or one of no company here: the first company, which answers 401.
- ``/oauth-v1/token`` and ``/oauth-v1/revoke``: the company that issued the refresh token or
  authorisation code in the form; a ``client_credentials`` grant names it in the ``TenantId``
  header (documented).
- ``/oauth-v1/auth``: the consent page of ``?tenant=<TenantId>`` (real Fortnox asks the user who
  logs in which company to authorise: the parameter plays that choice; **inferred**), default the
  first company; the decision goes to the company whose consent it is.
- ``/_sandbox/...``: the admin API of ``?tenant=<TenantId>``, default the first company;
  ``GET /_sandbox/tenants`` lists the companies.

``sandbox fortnox --db fortnox.db --tenant-ids 1234567,2000002,2000003 --seed 1`` keeps the first
company in ``fortnox.db`` and the others in ``fortnox-<TenantId>.db`` beside it; the seed of the
company at position *i* (0-based) is ``seed + i``, so the companies hold different books.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import jwt
from flask import Flask

from sandbox.fortnox.books import Books
from sandbox.fortnox.oauth import CODES, CONSENTS, REFRESH_TOKENS, holds_token
from sandbox.store import Store

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def tenant_db_path(db_path: Path, tenant_id: int, position: int) -> Path:
    """The first company keeps ``db_path`` (so a one-company sandbox is unchanged)."""
    return db_path if position == 0 else db_path.with_name(f"{db_path.stem}-{tenant_id}.db")


class TenantRouter:
    """A WSGI application routing each request to the Fortnox app of its company."""

    def __init__(self, apps: dict[int, Flask]) -> None:
        if not apps:
            raise ValueError("a Fortnox sandbox serves at least one company")
        self.apps = apps
        self.default = next(iter(apps))

    def store(self, tenant_id: int) -> Store:
        store: Store = self.apps[tenant_id].extensions["fortnox_store"]
        return store

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == "/_sandbox/tenants":
            return self._list_tenants(start_response)
        tenant = self._route(environ, path)
        return self.apps[tenant](environ, start_response)

    # routing --------------------------------------------------------------------------------
    def _route(self, environ: WSGIEnvironment, path: str) -> int:
        if path.startswith("/3/"):
            return self._by_bearer(str(environ.get("HTTP_AUTHORIZATION", "")))
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        if path.startswith("/_sandbox") or (
            path == "/oauth-v1/auth" and environ.get("REQUEST_METHOD") == "GET"
        ):
            return self._named(query.get("tenant", [""])[0])
        if path.startswith("/oauth-v1/"):
            form = _read_form(environ)
            if form.get("grant_type") == "client_credentials":
                return self._named(str(environ.get("HTTP_TENANTID", "")))
            for kind, field in (
                (REFRESH_TOKENS, "refresh_token"),
                (REFRESH_TOKENS, "token"),
                (CODES, "code"),
                (CONSENTS, "consent"),
            ):
                owner = self._issuer(kind, form.get(field, ""))
                if owner is not None:
                    return owner
        return self.default

    def _by_bearer(self, header: str) -> int:
        if not header.lower().startswith("bearer "):
            return self.default
        try:
            claims = jwt.decode(header[7:].strip(), options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return self.default
        return self._named(str(claims.get("tenantId", "")))

    def _named(self, tenant: str) -> int:
        return int(tenant) if tenant.isdigit() and int(tenant) in self.apps else self.default

    def _issuer(self, kind: str, token: str) -> int | None:
        if not token:
            return None
        for tenant_id in self.apps:
            if holds_token(self.store(tenant_id), kind, token):
                return tenant_id
        return None

    def _list_tenants(self, start_response: StartResponse) -> Iterable[bytes]:
        listed = [
            {"tenant_id": tenant_id, "company": self._company_name(tenant_id)}
            for tenant_id in self.apps
        ]
        body = json.dumps({"tenants": listed}, ensure_ascii=False).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _company_name(self, tenant_id: int) -> str:
        books: Books = self.apps[tenant_id].extensions["fortnox_books"]
        return str(books.company()["CompanyName"])


def _read_form(environ: WSGIEnvironment) -> dict[str, str]:
    """The urlencoded body, read once and put back for the app that answers."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    if "x-www-form-urlencoded" not in str(environ.get("CONTENT_TYPE", "")):
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"))
    return {name: values[0] for name, values in parsed.items() if values}


def create_multi_tenant_app(
    db_path: str | Path, tenant_ids: list[int], *, seed: int | None = None, **options: Any
) -> TenantRouter:
    """A Fortnox host of ``tenant_ids`` (see the module doc); ``options`` go to every company."""
    from sandbox.fortnox.app import create_app

    if len(set(tenant_ids)) != len(tenant_ids) or not tenant_ids:
        raise ValueError(f"give distinct TenantIds, got {tenant_ids}")
    apps = {
        tenant_id: create_app(
            tenant_db_path(Path(db_path), tenant_id, position),
            seed=None if seed is None else seed + position,
            tenant_id=tenant_id,
            **options,
        )
        for position, tenant_id in enumerate(tenant_ids)
    }
    return TenantRouter(apps)
