"""Fortnox-specific admin routes under ``/_sandbox/`` (besides the common ones in sandbox.admin).

- ``GET|PATCH /_sandbox/settings``   max_requests_per_5s, token_lifetime, project_module,
  project_module_off_refuses, ocr_on_invoices, account_rules_on_save, project_period_on_save,
  negative_invoice_is_credit, supplier_invoice_date_filter; effective at once and persisted
- ``DELETE /_sandbox/rate-limit``     forget the requests every rate-limit window has counted
- ``POST /_sandbox/tokens/expire``   every access token issued so far is expired from now on
- ``POST /_sandbox/refresh-tokens``  ``{"scope": "customer project ..."}`` → a refresh token for
  sandbox-client (to seed a token store without the browser consent)
- ``POST /_sandbox/supplierinvoices`` post a supplier invoice as a user would: the API's body plus
  ``booked``, ``approved``, ``cancelled`` (booleans), ``authorizer``; any InvoiceDate; its
  projects need not exist yet (they may be Moment's, pushed later); LastModified = now
- ``PUT /_sandbox/supplierinvoices/{GivenNumber}`` ``{"SupplierInvoice": {...}}``: change an
  invoice as a user would, booked or not (header fields; all rows when ``SupplierInvoiceRows`` is
  given); booking and approval stay; LastModified = now
- ``GET /_sandbox/counts``           number of records per resource
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.fortnox import books as B
from sandbox.fortnox.errors import FortnoxError
from sandbox.fortnox.oauth import CLIENT_ID, REFRESH_SECONDS, SCOPES, TokenService
from sandbox.fortnox.ratelimit import SlidingWindowLimiter
from sandbox.fortnox.settings import SandboxSettings
from sandbox.store import Store


def fortnox_admin_blueprint(
    store: Store, settings: SandboxSettings, tokens: TokenService, limiter: SlidingWindowLimiter
) -> Blueprint:
    """The Fortnox sandbox's admin API under ``/_sandbox``: settings, limiter, tokens, test data."""
    admin = Blueprint("fortnox_sandbox_admin", __name__, url_prefix="/_sandbox")
    ledger = B.Books(store, settings)

    def bad_request(message: str) -> tuple[Response, int]:
        return jsonify({"error": message}), 400

    @admin.get("/settings")
    def get_settings() -> Response:
        return jsonify(settings.snapshot())

    @admin.patch("/settings")
    def patch_settings() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return bad_request("send a JSON object of settings to change")
        try:
            return jsonify(settings.update(body))
        except ValueError as exc:
            return bad_request(str(exc))

    @admin.delete("/rate-limit")
    def clear_rate_limit() -> Response:
        limiter.clear()
        return jsonify({"cleared": True})

    @admin.post("/tokens/expire")
    def expire_tokens() -> Response:
        tokens.expire_all()
        return jsonify({"expired": True})

    @admin.post("/refresh-tokens")
    def mint_refresh_token() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        scope = body.get("scope", list(SCOPES))
        scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            return bad_request(f"unknown or missing scopes {unknown}; known: {' '.join(SCOPES)}")
        token = tokens.mint_refresh_token(scopes)
        return jsonify(
            {
                "client_id": CLIENT_ID,
                "refresh_token": token,
                "scope": " ".join(scopes),
                "expires_in": REFRESH_SECONDS,
            }
        )

    @admin.post("/supplierinvoices")
    def post_supplier_invoice() -> Response | tuple[Response, int]:
        body: Any = request.get_json(silent=True)
        if not isinstance(body, dict):
            return bad_request('send {"SupplierInvoice": {...}, "booked": true, "approved": true}')
        invoice = dict(body.get("SupplierInvoice", {}))
        ledger_si = ledger.supplier_invoices
        try:
            with store.transaction():
                created = ledger_si.create(invoice, check_projects=False)
                number = str(created["GivenNumber"])
                authorizer = str(body.get("authorizer", "Anna Andersson"))
                if body.get("booked"):
                    ledger_si.act(number, "bookkeep")
                if body.get("approved"):
                    ledger_si.act(number, "approvalpayment", authorizer)
                if body.get("cancelled"):
                    ledger_si.act(number, "cancel")
                return jsonify({"SupplierInvoice": ledger_si.get(number)}), 201
        except FortnoxError as error:
            return error.response()

    @admin.put("/supplierinvoices/<number>")
    def correct_supplier_invoice(number: str) -> Response | tuple[Response, int]:
        body: Any = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("SupplierInvoice"), dict):
            return bad_request('send {"SupplierInvoice": {...}} with the fields to change')
        try:
            corrected = ledger.supplier_invoices.correct(number, dict(body["SupplierInvoice"]))
        except FortnoxError as error:
            return error.response()
        return jsonify({"SupplierInvoice": corrected})

    @admin.get("/counts")
    def counts() -> Response:
        entities = {
            "customers": B.CUSTOMERS,
            "projects": B.PROJECTS,
            "suppliers": B.SUPPLIERS,
            "invoices": B.INVOICES,
            "supplierinvoices": B.SUPPLIER_INVOICES,
            "accounts": B.ACCOUNTS,
            "financialyears": B.FINANCIAL_YEARS,
            "reserved_customer_numbers": B.RESERVED_CUSTOMER_NUMBERS,
        }
        return jsonify({name: store.count(entity) for name, entity in entities.items()})

    return admin
