"""The emulated Moment public API 1.0: ``/api/1.0/companies/{companyCode}/{entity}``.

- Auth: HTTP Basic, user ``apikey``, password = the company's API key (documented). A bad or
  missing key is 401; a key of another company is 403 (inferred: the key's user cannot reach
  that database); an unknown company is 404 (inferred).
- CRUD: ``POST /`` (201), ``GET /``, ``GET /{id}``, ``PUT /{id}`` (replace), ``PATCH /{id}``
  (merge), ``DELETE /{id}`` (204) (documented paths; status codes inferred). Plus
  ``POST invoices/{id}/finalize`` (inferred path).
- Includes: the observed ``/include/{a+b}`` suffix is accepted and answered with the full record
  (a superset of any include; ``id`` is always there).
- Lists: ``{"content": [...], "page": {"size", "number", "totalElements", "totalPages"}}``,
  ``page`` from 0, ``size`` honoured up to 500 (observed) and capped there (inferred), default 20
  (Spring's default; inferred); ``sort=field,asc|desc`` (inferred, Spring style; repeated, the
  later ones break ties), else by id;
  ``lastModifiedDateFrom``/``lastModifiedDateTo`` inclusive (inferred) and exact filters.
- Switches (``sandbox.moment.behaviour``): filters ignored, the project-state spelling, and the
  path of project expenses, for what no public source settles.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from sandbox.moment import clock
from sandbox.moment.behaviour import MomentBehaviour
from sandbox.moment.errors import MomentError
from sandbox.moment.model import ENTITY_TYPES, INVOICES, PROJECT_EXPENSES, PROJECTS, EntityType
from sandbox.moment.repository import Company, ListQuery, MomentData

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 20

# Query parameter -> JSON path of the exact filter, per entity.
EXACT_FILTERS: dict[str, dict[str, str]] = {
    "customers": {"customerNumber": "customerNumber"},
    "projects": {
        "projectNumber": "projectNumber",
        "customerNumber": "customer.customerNumber",
        "projectState": "projectState",
    },
    "invoices": {
        "invoiceState": "invoiceState",
        "invoiceNumber": "invoiceNumber",
        "customerNumber": "customer.customerNumber",
        "projectNumber": "project.projectNumber",
    },
    "projectExpenses": {
        "externalReference": "externalReference",
        "projectNumber": "project.projectNumber",
        "projectId": "project.id",
    },
    "financialAccounts": {"accountNumber": "accountNumber"},
    "vatCodes": {"code": "code"},
}
_INTEGER_FILTERS = {"invoiceNumber", "projectId"}


def entity_type(name: str) -> EntityType:
    """The entity type of a URL's ``name``; an unknown one is Moment's 404."""
    try:
        return ENTITY_TYPES[name]
    except KeyError:
        raise MomentError(404, f"Unknown entity '{name}'") from None


def list_query(entity: EntityType, args: Any) -> ListQuery:
    """A ``ListQuery`` from request parameters; a bad parameter is a 400 that names it."""
    query = ListQuery(
        page=_int_param(args, "page", 0, minimum=0),
        size=min(_int_param(args, "size", DEFAULT_PAGE_SIZE, minimum=1), MAX_PAGE_SIZE),
    )
    for param, path in EXACT_FILTERS.get(entity.path, {}).items():
        value = args.get(param)
        if value is not None:
            query.exact[path] = _int_param(args, param, 0) if param in _INTEGER_FILTERS else value
    query.modified_from = _instant_param(args, "lastModifiedDateFrom")
    query.modified_to = _instant_param(args, "lastModifiedDateTo")
    # Spring style: ``sort`` may repeat (``sort=lastModifiedDate,asc&sort=id,asc``); the first
    # orders, the next ones break its ties (inferred, like the parameter itself).
    orders = [_sort_param(entity, sort) for sort in args.getlist("sort") if sort]
    if orders:
        (query.sort, query.descending), query.then_by = orders[0], orders[1:]
    return query


def _sort_param(entity: EntityType, sort: str) -> tuple[str, bool]:
    field, _, direction = sort.partition(",")
    allowed = ("id", "createdDate", "lastModifiedDate", *entity.sortable)
    if field not in allowed:
        raise MomentError(
            400,
            f"Parameter 'sort': cannot sort {entity.path} by '{field}' "
            f"(one of {', '.join(allowed)})",
        )
    if direction.lower() not in ("", "asc", "desc"):
        raise MomentError(
            400, f"Parameter 'sort': direction must be asc or desc, got '{direction}'"
        )
    return field, direction.lower() == "desc"


def page_document(docs: list[Any], total: int, query: ListQuery) -> dict[str, Any]:
    """A list answer: the page's documents and the ``page`` block (size, number, totals)."""
    return {
        "content": docs,
        "page": {
            "size": query.size,
            "number": query.page,
            "totalElements": total,
            "totalPages": math.ceil(total / query.size),
        },
    }


def _int_param(args: Any, name: str, default: int, minimum: int | None = None) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MomentError(400, f"Parameter '{name}' must be an integer, got '{raw}'") from None
    if minimum is not None and value < minimum:
        raise MomentError(400, f"Parameter '{name}' must be at least {minimum}, got {value}")
    return value


def _instant_param(args: Any, name: str) -> str | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return clock.sortable(clock.parse_instant(raw))
    except ValueError as exc:
        raise MomentError(
            400,
            f"Parameter '{name}' must be an ISO 8601 date-time such as "
            f"2026-01-31T12:00:00.000+01:00, got '{raw}' ({exc})",
        ) from None


def authenticate(data: MomentData, company_code: str) -> Company:
    """The company of this request after the Basic-auth check (401/403/404 as the API does)."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username != "apikey" or not auth.password:
        raise MomentError(
            401,
            "Full authentication is required: use HTTP Basic with user 'apikey' and your API key",
        )
    key_company = data.company_for_key(auth.password)
    if key_company is None:
        raise MomentError(401, "Bad credentials: the API key is not valid (expired or revoked?)")
    company = data.company(company_code)  # 404 for an unknown company
    if key_company != company_code:
        raise MomentError(403, f"The API key has no access to company '{company_code}'")
    return company


def api_blueprint(data: MomentData, behaviour: MomentBehaviour) -> Blueprint:
    """The public API routes over ``data``, answering as ``behaviour`` is switched."""
    api = Blueprint("moment_api", __name__, url_prefix="/api/1.0/companies/<company_code>")

    def api_entity(name: str) -> EntityType:
        # Project expenses live under the switched path; their default path is then unknown.
        expense_path = behaviour["expense_path"]
        if name == expense_path:
            return PROJECT_EXPENSES
        if name == PROJECT_EXPENSES.path:
            raise MomentError(404, f"Unknown entity '{name}'")
        return entity_type(name)

    def served(kind: EntityType, record: Any) -> Any:
        if kind is PROJECTS and isinstance(record, dict) and "projectState" in record:
            return {**record, "projectState": behaviour.served_state(record["projectState"])}
        return record

    def written(kind: EntityType, body: Any) -> Any:
        if kind is PROJECTS and isinstance(body, dict) and "projectState" in body:
            return {**body, "projectState": behaviour.stored_state(body["projectState"])}
        return body

    def query_for(kind: EntityType) -> ListQuery:
        query = list_query(kind, request.args)
        if not behaviour["modified_from_filter"]:
            query.modified_from = None
        if not behaviour["sort_tie_breaks"]:
            query.then_by = [("id", True)]
        if behaviour["filters_ignored"]:
            query.exact.clear()
            query.modified_from = query.modified_to = None
        elif "projectState" in query.exact:
            query.exact["projectState"] = behaviour.stored_state(query.exact["projectState"])
        return query

    @api.url_value_preprocessor
    def _take_company(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.company_code = (values or {}).pop("company_code", "")

    @api.before_request
    def _authenticate() -> None:
        g.company = authenticate(data, g.company_code)

    def company() -> Company:
        current: Company = g.company
        return current

    @api.get("/<entity>")
    @api.get("/<entity>/include/<includes>")
    def list_records(entity: str, includes: str = "") -> Response:
        kind = api_entity(entity)
        query = query_for(kind)
        docs, total = company().page(kind, query)
        return jsonify(page_document([served(kind, doc) for doc in docs], total, query))

    @api.post("/<entity>")
    @api.post("/<entity>/include/<includes>")
    def create_record(entity: str, includes: str = "") -> tuple[Response, int, dict[str, str]]:
        kind = api_entity(entity)
        record = company().create(kind, written(kind, _json_body()))
        location = url_for(
            ".get_record",
            company_code=g.company_code,
            entity=entity,
            record_id=record["id"],
            _external=True,
        )
        return jsonify(served(kind, record)), 201, {"Location": location}

    @api.get("/<entity>/<int:record_id>")
    @api.get("/<entity>/<int:record_id>/include/<includes>")
    def get_record(entity: str, record_id: int, includes: str = "") -> Response:
        kind = api_entity(entity)
        return jsonify(served(kind, company().get(kind, record_id)))

    @api.put("/<entity>/<int:record_id>")
    @api.put("/<entity>/<int:record_id>/include/<includes>")
    def replace_record(entity: str, record_id: int, includes: str = "") -> Response:
        kind = api_entity(entity)
        record = company().replace(kind, record_id, written(kind, _json_body()))
        return jsonify(served(kind, record))

    @api.patch("/<entity>/<int:record_id>")
    def merge_record(entity: str, record_id: int) -> Response:
        kind = api_entity(entity)
        return jsonify(served(kind, company().merge(kind, record_id, written(kind, _json_body()))))

    @api.delete("/<entity>/<int:record_id>")
    def delete_record(entity: str, record_id: int) -> tuple[str, int]:
        company().delete(api_entity(entity), record_id)
        return "", 204

    @api.post("/invoices/<int:record_id>/finalize")
    def finalize_invoice(record_id: int) -> Response:
        entity_type(INVOICES.path)
        return jsonify(company().finalize_invoice(record_id))

    return api


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise MomentError(
            400,
            "Required request body is missing or not JSON (send Content-Type: application/json)",
        )
    return body
