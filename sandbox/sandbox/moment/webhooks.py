"""Moment's outgoing webhooks: subscriptions per company and type, and their delivery.

Documented (Moment's help, "Webhooks"): one integration per webhook type (Customers, Projects,
Invoices, ...) with a target URL; a plain, unsigned HTTP POST whenever an object of that type
changes; the payload is small, enough for a follow-up API call. The invoice payload is documented
and sent exactly: ``{"event": "CREATE_NEW", "invoice": {"id", "invoiceNumber", "customer": {"id",
"customerNumber"}, "project": {"id", "projectNumber"}}}`` when an invoice is finalised.

Inferred (not documented, label it so): customers and projects send ``{"event": "CREATE_NEW" |
"UPDATE", "<customer|project>": {"id", "<customerNumber|projectNumber>"}}``; deletes, draft
invoices and the other entities send nothing; delivery waits at most a couple of seconds per try
and gives up after two tries (Moment documents no retries).

Subscriptions are stored in the sandbox's SQLite store (they survive restarts and reseeds, like
companies). Delivery runs on one background thread fed by ``MomentData.listeners``, so an API
answer never waits for a webhook and webhooks leave in commit order.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from sandbox.moment.errors import MomentError
from sandbox.moment.model import CUSTOMERS, INVOICES, PROJECTS
from sandbox.moment.repository import DEMO_COMPANY, Change, MomentData
from sandbox.store import Store

log = logging.getLogger(__name__)

SUBSCRIPTIONS_KEY = "moment:webhooks"
WEBHOOK_TYPES = (CUSTOMERS.path, PROJECTS.path, INVOICES.path)
_SINGULAR = {CUSTOMERS.path: "customer", PROJECTS.path: "project", INVOICES.path: "invoice"}
_NUMBER_FIELD = {CUSTOMERS.path: "customerNumber", PROJECTS.path: "projectNumber"}


def webhook_payload(change: Change) -> dict[str, Any] | None:
    """The body Moment POSTs for ``change``, or None when the change sends no webhook."""
    record = change.record
    if change.entity == INVOICES.path:
        # A finalised invoice is read-only, so a change that leaves it FINALIZED is its
        # finalisation (from the API, the admin route or the seed's credit invoice).
        if change.event == "DELETE" or record.get("invoiceState") != "FINALIZED":
            return None
        project = record.get("project")
        return {
            "event": "CREATE_NEW",
            "invoice": {
                "id": record["id"],
                "invoiceNumber": record["invoiceNumber"],
                "customer": {
                    "id": record["customer"]["id"],
                    "customerNumber": record["customer"]["customerNumber"],
                },
                "project": (
                    {"id": project["id"], "projectNumber": project["projectNumber"]}
                    if project
                    else None
                ),
            },
        }
    number_field = _NUMBER_FIELD.get(change.entity)
    if number_field is None or change.event not in ("CREATE_NEW", "UPDATE"):
        return None
    singular = _SINGULAR[change.entity]
    return {
        "event": change.event,
        singular: {"id": record["id"], number_field: record[number_field]},
    }


class WebhookSubscriptions:
    """The URL each company registered per webhook type, kept in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _all(self) -> dict[str, dict[str, str]]:
        value: dict[str, dict[str, str]] = self.store.get_value(SUBSCRIPTIONS_KEY, {})
        return value

    def for_company(self, company: str) -> dict[str, str]:
        return dict(self._all().get(company, {}))

    def url_for(self, company: str, webhook_type: str) -> str | None:
        return self._all().get(company, {}).get(webhook_type)

    def register(self, company: str, webhook_type: str, url: str) -> bool:
        """Set the URL of a type (Moment has one integration per type); True if it is new."""
        _check_type(webhook_type)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise MomentError(400, f'Webhook "url" must be an http(s) URL, got {url!r}')
        with self.store.transaction():
            everything = self._all()
            company_hooks = everything.setdefault(company, {})
            is_new = webhook_type not in company_hooks
            company_hooks[webhook_type] = url
            self.store.set_value(SUBSCRIPTIONS_KEY, everything)
        return is_new

    def remove(self, company: str, webhook_type: str) -> None:
        _check_type(webhook_type)
        with self.store.transaction():
            everything = self._all()
            if webhook_type not in everything.get(company, {}):
                raise MomentError(404, f"No {webhook_type} webhook registered for '{company}'")
            del everything[company][webhook_type]
            self.store.set_value(SUBSCRIPTIONS_KEY, everything)


def _check_type(webhook_type: str) -> None:
    if webhook_type not in WEBHOOK_TYPES:
        raise MomentError(
            400,
            f"Unknown webhook type {webhook_type!r}; the sandbox sends {', '.join(WEBHOOK_TYPES)}",
        )


@dataclass(frozen=True)
class Delivery:
    """One webhook sent (or given up on), for the admin route and tests."""

    company: str
    type: str
    url: str
    payload: dict[str, Any]
    status: int | None  # HTTP status of the last try; None when no answer came
    attempts: int
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "company": self.company,
            "type": self.type,
            "url": self.url,
            "payload": self.payload,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
        }


class WebhookSender:
    """Turns committed changes into POSTs on a background thread (never in the request)."""

    def __init__(
        self,
        data: MomentData,
        subscriptions: WebhookSubscriptions,
        *,
        timeout_seconds: float = 2.0,
        attempts: int = 2,
        history: int = 200,
    ) -> None:
        self.data = data
        self.subscriptions = subscriptions
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.deliveries: deque[Delivery] = deque(maxlen=history)
        self._queue: queue.Queue[Change] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="moment-webhooks", daemon=True)

    def start(self) -> WebhookSender:
        self.data.listeners.append(self._queue.put)
        self._thread.start()
        return self

    def _work(self) -> None:
        while True:
            change = self._queue.get()
            try:
                # A change made inside a larger transaction (a reseed) is announced before that
                # transaction ends; the store lock is held until it does, so waiting for it here
                # sends the webhook only after the commit.
                with self.data.store.transaction():
                    url = self.subscriptions.url_for(change.company, change.entity)
                payload = webhook_payload(change) if url else None
                if url and payload:
                    self.deliveries.append(self._deliver(change, url, payload))
            except Exception:  # a broken change must not stop later webhooks
                log.exception("webhook for %s %s not sent", change.entity, change.event)

    def _deliver(self, change: Change, url: str, payload: dict[str, Any]) -> Delivery:
        body = json.dumps(payload).encode()
        status: int | None = None
        error: str | None = None
        attempts = 0
        while attempts < self.attempts:
            attempts += 1
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as answer:
                    status, error = answer.status, None
            except urllib.error.HTTPError as exc:
                status, error = exc.code, f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            if status is not None and status < 500:
                break
        if error:
            # The URL's path may hold the receiver's secret token: log the host only.
            log.warning(
                "%s webhook to %s failed after %d tries: %s",
                change.entity,
                urlsplit(url).netloc,
                attempts,
                error,
            )
        return Delivery(change.company, change.entity, url, payload, status, attempts, error)


def webhooks_blueprint(sender: WebhookSender) -> Blueprint:
    """Admin routes under ``/_sandbox/webhooks`` (``?company=CODE``, default demo).

    - ``GET /_sandbox/webhooks`` → ``{"webhooks": [{"type", "url"}]}``
    - ``POST /_sandbox/webhooks`` ``{"type": "customers", "url": "http://..."}`` → 201 (200 when
      it replaces the type's URL: one integration per type, as in Moment)
    - ``DELETE /_sandbox/webhooks/{type}``
    - ``GET /_sandbox/webhooks/deliveries`` → the last webhooks sent, oldest first
    """
    admin = Blueprint("moment_webhooks_admin", __name__, url_prefix="/_sandbox/webhooks")
    subscriptions = sender.subscriptions

    def company() -> str:
        code = request.args.get("company", DEMO_COMPANY)
        sender.data.company(code)  # 404 for an unknown company
        return code

    def listed(code: str) -> Response:
        hooks = subscriptions.for_company(code)
        return jsonify({"webhooks": [{"type": t, "url": u} for t, u in sorted(hooks.items())]})

    @admin.get("")
    def list_webhooks() -> Response:
        return listed(company())

    @admin.post("")
    def register_webhook() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(key), str) for key in ("type", "url")
        ):
            raise MomentError(400, 'A webhook needs "type" and "url" (strings)')
        code = company()
        is_new = subscriptions.register(code, body["type"], body["url"])
        return listed(code), 201 if is_new else 200

    @admin.delete("/<webhook_type>")
    def delete_webhook(webhook_type: str) -> Response:
        code = company()
        subscriptions.remove(code, webhook_type)
        return listed(code)

    @admin.get("/deliveries")
    def deliveries() -> Response:
        code = company()
        sent = [d.as_json() for d in list(sender.deliveries) if d.company == code]
        return jsonify({"deliveries": sent})

    return admin
