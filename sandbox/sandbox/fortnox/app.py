"""The Fortnox sandbox application: one Flask app over one SQLite file.

``create_app(db_path, *, seed, max_requests_per_5s, token_lifetime)`` wires the OAuth server, the
/3/ API, the admin API and the common fault injection and request log onto it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
from flask import Flask, Response, g, request

from sandbox.admin import admin_blueprint
from sandbox.faults import install
from sandbox.fortnox import errors
from sandbox.fortnox import seed as demo_seed
from sandbox.fortnox.admin import fortnox_admin_blueprint
from sandbox.fortnox.api import api_blueprint
from sandbox.fortnox.books import Books
from sandbox.fortnox.errors import FortnoxError
from sandbox.fortnox.oauth import (
    TENANT_ID_KEY,
    OAuthError,
    TokenService,
    oauth_blueprint,
    tenant_id_of,
)
from sandbox.fortnox.ratelimit import SlidingWindowLimiter
from sandbox.fortnox.settings import SandboxSettings
from sandbox.store import Store


def _identity() -> str | None:
    """The caller's "client_id:tenant", for the request log (read from the bearer token)."""
    caller = g.get("caller")
    if caller is not None:
        return str(caller.identity)
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    try:
        # Unverified on purpose: only to label the log line of a request refused before auth.
        claims = jwt.decode(header[7:].strip(), options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return f"{claims.get('clientId')}:{claims.get('tenantId')}"


def create_app(
    db_path: str | Path,
    *,
    seed: int | None = None,
    max_requests_per_5s: int | None = None,
    token_lifetime: int | None = None,
    supplier_invoice_date_filter: bool | None = None,
    tenant_id: int | None = None,
) -> Flask:
    """The Fortnox sandbox over ``db_path``; ``seed`` fills the database only when it is empty.

    ``tenant_id`` makes the database a company with that TenantId (DatabaseNumber; default
    1234567); a database keeps the TenantId it was made with.
    """
    app = Flask("sandbox.fortnox")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # MetaInformation must come first
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    store = Store(db_path)
    empty = store.is_empty()
    if tenant_id is not None:
        if empty:
            store.set_value(TENANT_ID_KEY, int(tenant_id))
        elif tenant_id_of(store) != tenant_id:
            raise ValueError(
                f"{db_path} holds the company with TenantId {tenant_id_of(store)}, not {tenant_id}"
            )
    app.extensions["fortnox_store"] = store
    settings = SandboxSettings(
        store,
        max_requests_per_5s=max_requests_per_5s,
        token_lifetime=token_lifetime,
        supplier_invoice_date_filter=supplier_invoice_date_filter,
    )
    tokens = TokenService(store, settings)
    faults, log = install(app, errors.injected, _identity)

    def reseed(seed_value: int, sizes: dict[str, Any]) -> dict[str, int]:
        counts = demo_seed.reseed(store, seed_value, sizes)
        settings.persist()
        return counts

    books = Books(store, settings)
    app.extensions["fortnox_books"] = books
    app.register_blueprint(oauth_blueprint(tokens, lambda: str(books.company()["CompanyName"])))
    limiter = SlidingWindowLimiter()
    app.register_blueprint(api_blueprint(store, settings, tokens, limiter))
    app.register_blueprint(admin_blueprint("fortnox", faults, log, reseed))
    app.register_blueprint(fortnox_admin_blueprint(store, settings, tokens, limiter))

    @app.errorhandler(FortnoxError)
    def refused(error: FortnoxError) -> Response:
        return error.response()

    @app.errorhandler(OAuthError)
    def oauth_refused(error: OAuthError) -> Response:
        return error.response()

    @app.errorhandler(ValueError)
    def bad_admin_value(error: ValueError) -> Response | tuple[str, int]:
        if request.path.startswith("/_sandbox"):
            return errors.error_information(0, str(error), 400)
        raise error

    @app.errorhandler(404)
    def unknown(_: Exception) -> Response:
        return errors.error_information(errors.NOT_FOUND, f"Kan inte hitta {request.path}", 404)

    if seed is not None and empty:
        reseed(seed, {})
    return app
