"""Wire the Moment sandbox: store, API, admin routes, faults, request log and errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.admin import admin_blueprint
from sandbox.faults import install
from sandbox.moment.admin import moment_admin_blueprint
from sandbox.moment.api import api_blueprint
from sandbox.moment.behaviour import MomentBehaviour
from sandbox.moment.errors import MomentError, error_body
from sandbox.moment.repository import DEMO_COMPANY, MomentData
from sandbox.moment.seed import seed_company
from sandbox.moment.webhooks import WebhookSender, WebhookSubscriptions, webhooks_blueprint
from sandbox.store import Store

_COMPANY_IN_PATH = re.compile(r"^/api/1\.0/companies/([^/]+)")


def create_app(db_path: str | Path, *, seed: int | None = None) -> Flask:
    """The Moment sandbox on the SQLite file ``db_path``.

    ``seed`` fills company ``demo`` with demo data only when the database is new (empty); an
    existing database is served as it is, so data survives restarts.
    """
    store = Store(db_path)
    is_new = store.is_empty()
    data = MomentData(store)  # makes sure company demo and its API key exist
    if seed is not None and is_new:
        seed_company(data.company(DEMO_COMPANY), seed, {})

    app = Flask("sandbox.moment")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["moment_data"] = data
    # Started before the routes exist, so no committed change can miss its webhook.
    webhooks = WebhookSender(data, WebhookSubscriptions(store)).start()
    app.extensions["moment_webhooks"] = webhooks

    def error_response(status: int, message: str | None = None) -> tuple[Response, int]:
        text = message or f"Injected fault: {status}"
        return jsonify(error_body(status, text, request.path)), status

    def identity() -> str | None:
        match = _COMPANY_IN_PATH.match(request.path)
        return match.group(1) if match else None

    def reseed(seed_value: int, sizes: dict[str, Any]) -> dict[str, int]:
        # One transaction: a refused seed (bad sizes) leaves the data as it was.
        with store.transaction():
            data.wipe()
            return seed_company(data.company(DEMO_COMPANY), seed_value, sizes)

    behaviour = MomentBehaviour(store)
    app.extensions["moment_behaviour"] = behaviour

    faults, log = install(app, error_response, identity)
    app.register_blueprint(api_blueprint(data, behaviour))
    app.register_blueprint(moment_admin_blueprint(data, behaviour))
    app.register_blueprint(webhooks_blueprint(webhooks))
    app.register_blueprint(admin_blueprint("moment", faults, log, reseed))

    @app.errorhandler(MomentError)
    def _moment_error(exc: MomentError) -> tuple[Response, int]:
        return error_response(exc.status, exc.message)

    @app.errorhandler(ValueError)
    def _bad_value(exc: ValueError) -> tuple[Response, int]:
        # Bad admin input (e.g. seed sizes) raises ValueError; in the API it would be a bug.
        if not request.path.startswith("/_sandbox"):
            raise exc
        return error_response(400, str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        return error_response(status, exc.description or exc.name)

    return app
