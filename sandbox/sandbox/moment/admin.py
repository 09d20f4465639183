"""Moment's part of the admin API under ``/_sandbox/``: change data as a Moment user would.

No auth, no faults, not in the request log (like the common admin routes). ``?company=CODE``
picks the company (default ``demo``). Records are addressed by their user-facing number where
they have one (customers, projects, financialAccounts, vatCodes), else by id.

- ``GET|PATCH /_sandbox/settings``                  switches (``sandbox.moment.behaviour``)
- ``GET  /_sandbox/companies`` · ``POST /_sandbox/companies`` ``{"code", "apiKey", "name"}``;
  with ``"seed": N`` (and seed sizes such as ``"customers": 20``) a new company is filled with
  the demo data of seed N, as ``POST /_sandbox/seed`` fills ``demo`` (another Moment database)
- ``GET  /_sandbox/counts``                         records per entity
- ``GET  /_sandbox/{entity}``                       list, same parameters as the API
- ``GET|PATCH|DELETE /_sandbox/{entity}/{number}``  read / edit (lastModifiedDate moves) / delete
- ``POST /_sandbox/{entity}``                       create (numbers assigned when left out)
- ``PUT  /_sandbox/projects/{number}/priceModel``   ``{"expensesBillable": true|false|null}``
- ``POST /_sandbox/invoices``                       a draft; ``"finalize": true`` finalises it
- ``POST /_sandbox/invoices/{id}/finalize``
- ``POST /_sandbox/projectExpenses/{id}/invoiced``  ``{"invoiced": true}`` (default true)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.moment.api import entity_type, list_query, page_document
from sandbox.moment.behaviour import MomentBehaviour
from sandbox.moment.errors import MomentError
from sandbox.moment.model import CUSTOMERS, ENTITY_TYPES, INVOICES, PROJECTS, EntityType
from sandbox.moment.repository import DEMO_COMPANY, Company, MomentData
from sandbox.moment.seed import seed_company
from sandbox.store import Document


def moment_admin_blueprint(data: MomentData, behaviour: MomentBehaviour) -> Blueprint:
    """The Moment sandbox's admin API under ``/_sandbox``: settings, companies and test data."""
    admin = Blueprint("moment_data_admin", __name__, url_prefix="/_sandbox")

    @admin.get("/settings")
    def get_settings() -> Response:
        return jsonify(behaviour.snapshot())

    @admin.patch("/settings")
    def patch_settings() -> Response:
        body = _body()
        try:
            return jsonify(behaviour.update(body))
        except ValueError as exc:
            raise MomentError(400, str(exc)) from None

    def company() -> Company:
        return data.company(request.args.get("company", DEMO_COMPANY))

    def find(kind: EntityType, key: str) -> Document:
        if kind.number_field is not None:
            return company().by_number(kind, key)
        if not key.isdigit():
            raise MomentError(400, f"{kind.path} are addressed by id here, got '{key}'")
        return company().get(kind, key)

    @admin.get("/companies")
    def list_companies() -> Response:
        listed = [{"code": code, "name": c["name"]} for code, c in data.companies().items()]
        return jsonify({"companies": listed})

    @admin.post("/companies")
    def add_company() -> tuple[Response, int]:
        body = _body()
        code, api_key = body.get("code"), body.get("apiKey")
        if not isinstance(code, str) or not code or not isinstance(api_key, str) or not api_key:
            raise MomentError(400, 'A company needs "code" and "apiKey" (non-empty strings)')
        seed = body.pop("seed", None)
        sizes = {k: int(v) for k, v in body.items() if k not in ("code", "apiKey", "name")}
        if seed is not None and code in data.companies() and data.company(code).count(CUSTOMERS):
            raise MomentError(400, f"Company '{code}' already has data; seed a new company")
        data.ensure_company(code, api_key, str(body.get("name") or code))
        if seed is None:
            return jsonify({"code": code}), 201
        counts = seed_company(data.company(code), int(seed), sizes)
        return jsonify({"code": code, "seed": int(seed), "counts": counts}), 201

    @admin.get("/counts")
    def counts() -> Response:
        current = company()
        return jsonify({path: current.count(kind) for path, kind in ENTITY_TYPES.items()})

    @admin.get("/<entity>")
    def list_records(entity: str) -> Response:
        kind = entity_type(entity)
        query = list_query(kind, request.args)
        docs, total = company().page(kind, query)
        return jsonify(page_document(docs, total, query))

    @admin.post("/<entity>")
    def create_record(entity: str) -> tuple[Response, int]:
        kind = entity_type(entity)
        body = _body()
        finalize = bool(body.pop("finalize", False)) and kind is INVOICES
        record = company().create(kind, body)
        if finalize:
            record = company().finalize_invoice(record["id"])
        return jsonify(record), 201

    @admin.get("/<entity>/<key>")
    def get_record(entity: str, key: str) -> Response:
        return jsonify(find(entity_type(entity), key))

    @admin.patch("/<entity>/<key>")
    def edit_record(entity: str, key: str) -> Response:
        kind = entity_type(entity)
        return jsonify(company().merge(kind, find(kind, key)["id"], _body()))

    @admin.delete("/<entity>/<key>")
    def delete_record(entity: str, key: str) -> Response:
        kind = entity_type(entity)
        return jsonify(company().delete(kind, find(kind, key)["id"]))

    @admin.put("/projects/<number>/priceModel")
    def set_price_model(number: str) -> Response:
        project = company().by_number(PROJECTS, number)
        return jsonify(company().merge(PROJECTS, project["id"], {"priceModel": _body()}))

    @admin.post("/invoices/<int:invoice_id>/finalize")
    def finalize(invoice_id: int) -> Response:
        return jsonify(company().finalize_invoice(invoice_id))

    @admin.post("/projectExpenses/<int:expense_id>/invoiced")
    def mark_invoiced(expense_id: int) -> Response:
        invoiced = (request.get_json(silent=True) or {}).get("invoiced", True)
        if not isinstance(invoiced, bool):
            raise MomentError(400, f'"invoiced" must be true or false, got {invoiced!r}')
        return jsonify(company().set_invoiced(expense_id, invoiced))

    return admin


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MomentError(400, "The request body must be a JSON object")
    return body
