"""Fortnox list envelopes and query parameters, paged in SQL.

``{"MetaInformation": {"@TotalResources", "@TotalPages", "@CurrentPage"}, "<Plural>": [...]}`` with
MetaInformation first; ``page`` (1-based), ``limit`` (default 100, max 500), ``offset``;
``lastmodified``, ``fromdate``/``todate``, ``filter``, ``sortby``/``sortorder`` and field search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import request

from sandbox.fortnox.errors import INVALID_PARAMETER, NOT_NUMERIC, FortnoxError
from sandbox.fortnox.formats import parse_date_parameter, parse_lastmodified
from sandbox.store import Filter, Store

DEFAULT_LIMIT, MAX_LIMIT = 100, 500


def sort_key(number: str) -> str:
    """Numbers order numerically (zero-padded), other identifiers as text."""
    return number.zfill(20) if number.isdigit() else number


def url_for_record(path: str, key: str) -> str:
    """The record's ``/3/<path>/<key>`` URL on this host (a list item's ``@url``)."""
    return f"{request.host_url}3/{path}/{key}"


def present(
    doc: dict[str, Any],
    path: str,
    key: str,
    fields: tuple[str, ...] | None = None,
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A stored document as the API shows it: ``@url`` first, internal ``_`` fields dropped."""
    source = {**doc, **(derived(doc) if derived else {})}
    names = fields if fields is not None else tuple(k for k in source if not k.startswith("_"))
    return {"@url": url_for_record(path, key), **{name: source.get(name) for name in names}}


@dataclass(frozen=True)
class ListSpec:
    """How one resource's list is searched, filtered and sorted."""

    entity: str
    path: str
    plural: str
    key_field: str
    fields: tuple[str, ...]
    sort_fields: dict[str, str]
    search_fields: dict[str, str] = field(default_factory=dict)
    named_filters: dict[str, Callable[[], list[Filter]]] = field(default_factory=dict)
    date_field: str | None = None
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Whether ``fromdate``/``todate`` filter on ``date_field`` right now (a sandbox switch);
    # None: always.
    date_filter_on: Callable[[], bool] | None = None


def _integer_parameter(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise FortnoxError(
            NOT_NUMERIC, f"Parametern {name} måste vara numerisk ({raw!r})"
        ) from None


def list_response(
    store: Store, spec: ListSpec, extra: list[Filter] | None = None
) -> dict[str, Any]:
    """One page of ``spec``'s resource for the current request's query parameters."""
    limit = _integer_parameter("limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise FortnoxError(INVALID_PARAMETER, f"Ogiltig parameter limit={limit} (1 to {MAX_LIMIT})")
    page = _integer_parameter("page", 1)
    offset = _integer_parameter("offset", 0)
    if page < 1 or offset < 0:
        raise FortnoxError(INVALID_PARAMETER, "Ogiltig parameter: page starts at 1, offset at 0")
    filters = list(extra or [])
    args = request.args
    if args.get("lastmodified"):
        filters.append(Filter("modified", ">=", parse_lastmodified(args["lastmodified"])))
    if spec.date_field and (spec.date_filter_on is None or spec.date_filter_on()):
        if args.get("fromdate"):
            filters.append(
                Filter(spec.date_field, ">=", parse_date_parameter("fromdate", args["fromdate"]))
            )
        if args.get("todate"):
            filters.append(
                Filter(spec.date_field, "<=", parse_date_parameter("todate", args["todate"]))
            )
    named = args.get("filter")
    if named:
        if named.lower() not in spec.named_filters:
            choices = ", ".join(spec.named_filters) or "none"
            raise FortnoxError(
                INVALID_PARAMETER, f"Ogiltigt filter {named!r} för {spec.path} (one of: {choices})"
            )
        filters.extend(spec.named_filters[named.lower()]())
    for parameter, field_name in spec.search_fields.items():
        if args.get(parameter):
            filters.append(Filter(field_name, "like", args[parameter]))
    sortby = (args.get("sortby") or "").lower()
    if sortby and sortby not in spec.sort_fields:
        raise FortnoxError(
            INVALID_PARAMETER,
            f"Ogiltig parameter sortby={sortby!r} (one of: {', '.join(spec.sort_fields)})",
        )
    order_by = spec.sort_fields[sortby] if sortby else "_sort"
    sortorder = (args.get("sortorder") or "ascending").lower()
    if sortorder not in ("ascending", "descending"):
        raise FortnoxError(INVALID_PARAMETER, "Ogiltig parameter sortorder (ascending|descending)")
    total = store.count(spec.entity, filters)
    docs = store.list(
        spec.entity,
        filters,
        order_by=order_by,
        descending=sortorder == "descending",
        limit=limit,
        offset=(page - 1) * limit + offset,
    )
    items = [
        present(doc, spec.path, str(doc[spec.key_field]), spec.fields, spec.derived) for doc in docs
    ]
    return {
        "MetaInformation": {
            "@TotalResources": total,
            "@TotalPages": max(1, math.ceil(total / limit)),
            "@CurrentPage": page,
        },
        spec.plural: items,
    }
