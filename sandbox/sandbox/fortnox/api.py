"""The Fortnox API v3 under ``/3/``: auth, rate limit, scopes and licences, then the resources.

Each request passes, in order: bearer token (401 2000311), the rate limit (429, per client+tenant;
refused requests are not counted), the scope of the resource (403 2000663), the project-module
licence for ``/3/projects`` (403 2001101; with the module off and ``project_module_off_refuses``
false the API answers as usual), and for writes the JSON content type (400 1000031).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from sandbox.fortnox import books
from sandbox.fortnox.errors import (
    JSON_SYNTAX,
    NO_LICENCE,
    NOT_FOUND,
    SCOPE_NOT_AUTHORISED,
    WRONG_CONTENT_TYPE,
    WRONG_DATA,
    FortnoxError,
    too_many_requests,
)
from sandbox.fortnox.oauth import TokenService
from sandbox.fortnox.ratelimit import SlidingWindowLimiter
from sandbox.fortnox.settings import SandboxSettings
from sandbox.store import Store

# The scope each top-level resource needs (Fortnox "Scopes" page).
RESOURCE_SCOPES = {
    "customers": "customer",
    "projects": "project",
    "invoices": "invoice",
    "suppliers": "supplier",
    "supplierinvoices": "supplierinvoice",
    "accounts": "bookkeeping",
    "financialyears": "bookkeeping",
    "companyinformation": "companyinformation",
    "settings": "settings",
}


def api_blueprint(
    store: Store, settings: SandboxSettings, tokens: TokenService, limiter: SlidingWindowLimiter
) -> Blueprint:
    """Fortnox's /3/ API: each request authenticated and rate-limited, then handled on the books."""
    api = Blueprint("fortnox_api", __name__, url_prefix="/3")
    ledger = books.Books(store, settings)

    @api.before_request
    def admit() -> Response | None:
        caller = tokens.verify(request.headers.get("Authorization"))
        g.caller = caller
        limit = int(settings["max_requests_per_5s"])
        admitted, g.arrived = limiter.admit(caller.identity, limit)
        if not admitted:
            return too_many_requests(limit)
        resource = [*request.path.split("/"), "", ""][2]
        scope = RESOURCE_SCOPES.get(resource)
        if scope is not None and scope not in caller.scopes:
            raise FortnoxError(
                SCOPE_NOT_AUTHORISED,
                f"Har inte behörighet för scope {scope!r} (the token lacks scope {scope}; "
                "re-run the consent with it)",
                403,
            )
        if (
            resource == "projects"
            and not settings["project_module"]
            and settings["project_module_off_refuses"]
        ):
            raise FortnoxError(
                NO_LICENCE,
                "Det finns ingen aktiv licens för önskat scope (the project module is off: "
                "switch on project accounting in Fortnox)",
                403,
            )
        if request.method in ("POST", "PUT") and request.mimetype != "application/json":
            raise FortnoxError(
                WRONG_CONTENT_TYPE, "Invalid content type (send Content-Type: application/json)"
            )
        return None

    def body(wrapper: str) -> dict[str, Any]:
        raw = request.get_data(as_text=True)
        try:
            payload = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError as exc:
            raise FortnoxError(JSON_SYNTAX, f"Felaktig JSON: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get(wrapper), dict):
            raise FortnoxError(WRONG_DATA, f'The body must be {{"{wrapper}": {{...}}}}')
        return dict(payload[wrapper])

    def one(wrapper: str, value: dict[str, Any], status: int = 200) -> tuple[Response, int]:
        return jsonify({wrapper: value}), status

    # customers --------------------------------------------------------------------------------
    @api.get("/customers")
    def list_customers() -> Response:
        return jsonify(ledger.customers.list())

    @api.get("/customers/<number>")
    def get_customer(number: str) -> tuple[Response, int]:
        return one("Customer", ledger.customers.get(number))

    @api.post("/customers")
    def create_customer() -> tuple[Response, int]:
        return one("Customer", ledger.customers.create(body("Customer")), 201)

    @api.put("/customers/<number>")
    def update_customer(number: str) -> tuple[Response, int]:
        return one("Customer", ledger.customers.update(number, body("Customer")))

    @api.delete("/customers/<number>")
    def delete_customer(number: str) -> tuple[str, int]:
        ledger.customers.delete(number)
        return "", 204

    # projects ---------------------------------------------------------------------------------
    @api.get("/projects")
    def list_projects() -> Response:
        return jsonify(ledger.projects.list())

    @api.get("/projects/<number>")
    def get_project(number: str) -> tuple[Response, int]:
        return one("Project", ledger.projects.get(number))

    @api.post("/projects")
    def create_project() -> tuple[Response, int]:
        return one("Project", ledger.projects.create(body("Project")), 201)

    @api.put("/projects/<number>")
    def update_project(number: str) -> tuple[Response, int]:
        return one("Project", ledger.projects.update(number, body("Project")))

    @api.delete("/projects/<number>")
    def delete_project(number: str) -> tuple[str, int]:
        ledger.projects.delete(number)
        return "", 204

    # suppliers --------------------------------------------------------------------------------
    @api.get("/suppliers")
    def list_suppliers() -> Response:
        return jsonify(ledger.suppliers.list())

    @api.get("/suppliers/<number>")
    def get_supplier(number: str) -> tuple[Response, int]:
        return one("Supplier", ledger.suppliers.get(number))

    @api.post("/suppliers")
    def create_supplier() -> tuple[Response, int]:
        return one("Supplier", ledger.suppliers.create(body("Supplier")), 201)

    @api.put("/suppliers/<number>")
    def update_supplier(number: str) -> tuple[Response, int]:
        return one("Supplier", ledger.suppliers.update(number, body("Supplier")))

    # invoices ---------------------------------------------------------------------------------
    @api.get("/invoices")
    def list_invoices() -> Response:
        return jsonify(ledger.invoices.list())

    @api.get("/invoices/<number>")
    def get_invoice(number: str) -> tuple[Response, int]:
        return one("Invoice", ledger.invoices.get(number))

    @api.post("/invoices")
    def create_invoice() -> tuple[Response, int]:
        return one("Invoice", ledger.invoices.create(body("Invoice")), 201)

    @api.put("/invoices/<number>")
    def update_invoice(number: str) -> tuple[Response, int]:
        return one("Invoice", ledger.invoices.update(number, body("Invoice")))

    @api.put("/invoices/<number>/<action>")
    def invoice_action(number: str, action: str) -> tuple[Response, int]:
        return one("Invoice", ledger.invoices.act(number, action))

    # supplier invoices ------------------------------------------------------------------------
    @api.get("/supplierinvoices")
    def list_supplier_invoices() -> Response:
        return jsonify(ledger.supplier_invoices.list())

    @api.get("/supplierinvoices/<number>")
    def get_supplier_invoice(number: str) -> tuple[Response, int]:
        return one("SupplierInvoice", ledger.supplier_invoices.get(number))

    @api.post("/supplierinvoices")
    def create_supplier_invoice() -> tuple[Response, int]:
        created = ledger.supplier_invoices.create(body("SupplierInvoice"), check_projects=True)
        return one("SupplierInvoice", created, 201)

    @api.put("/supplierinvoices/<number>")
    def update_supplier_invoice(number: str) -> tuple[Response, int]:
        return one(
            "SupplierInvoice", ledger.supplier_invoices.update(number, body("SupplierInvoice"))
        )

    @api.put("/supplierinvoices/<number>/<action>")
    def supplier_invoice_action(number: str, action: str) -> tuple[Response, int]:
        return one("SupplierInvoice", ledger.supplier_invoices.act(number, action))

    # bookkeeping and company ------------------------------------------------------------------
    @api.get("/accounts")
    def list_accounts() -> Response:
        return jsonify(ledger.accounts_list())

    @api.get("/accounts/<int:number>")
    def get_account(number: int) -> tuple[Response, int]:
        return one("Account", ledger.account(number))

    @api.get("/financialyears")
    def list_financial_years() -> Response:
        return jsonify(ledger.financial_years_list())

    @api.get("/financialyears/<int:year_id>")
    def get_financial_year(year_id: int) -> tuple[Response, int]:
        return one("FinancialYear", ledger.financial_year(year_id))

    @api.get("/companyinformation")
    def company_information() -> tuple[Response, int]:
        return one("CompanyInformation", ledger.company_information())

    @api.get("/settings/company")
    def company_settings() -> tuple[Response, int]:
        return one("CompanySettings", ledger.company_settings())

    @api.errorhandler(FortnoxError)
    def refused(error: FortnoxError) -> Response:
        return error.response()

    @api.errorhandler(404)
    def unknown_path(_: Exception) -> Response:
        return FortnoxError(NOT_FOUND, f"Kan inte hitta resursen {request.path}", 404).response()

    @api.errorhandler(405)
    def wrong_method(_: Exception) -> Response:
        return FortnoxError(
            WRONG_DATA, f"Metoden {request.method} stöds inte för {request.path}", 405
        ).response()

    return api
