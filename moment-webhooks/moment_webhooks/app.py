"""The Flask receiver: ``POST /hooks/<path-token>/<entity-type>`` and ``GET /health``.

Moment's webhooks are unsigned, so the secret is the path token, compared in constant time; a
wrong token gets the same 404 as any unknown path. A valid webhook is only counted (the
:class:`~moment_webhooks.trigger.JobTrigger` runs the job in the background), so the answer —
202 — goes out at once. The payload is small and only logged: the job itself reads the changes
through the API, incrementally.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from flask import Flask, Response, abort, jsonify, request

from moment_webhooks.settings import DEFAULT_MAX_BODY_BYTES, ENTITY_TYPE_PATTERN
from moment_webhooks.trigger import JobTrigger

logger = logging.getLogger(__name__)


def create_app(
    trigger: JobTrigger,
    *,
    path_token: str,
    entity_types: frozenset[str],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Flask:
    """Build the receiver; ``entity_types`` are the webhook types that trigger the job."""
    app = Flask("moment_webhooks")
    # Werkzeug answers 413 for larger bodies before the payload is read.
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    expected_token = path_token.encode()

    @app.post("/hooks/<token>/<entity_type>")
    def receive(token: str, entity_type: str) -> tuple[Response, int]:
        if not hmac.compare_digest(token.encode(), expected_token):
            abort(404)
        if not ENTITY_TYPE_PATTERN.fullmatch(entity_type):
            abort(404)
        payload, problem = _parse_payload(request.get_data(cache=False))
        if problem:
            logger.warning("webhook %s rejected: %s", entity_type, problem)
            return jsonify(error=problem), 400
        assert payload is not None
        event, entity = _describe(payload)
        if entity_type not in entity_types:
            logger.info("webhook %s %s ignored: type not synced by the job", entity_type, event)
            return jsonify(accepted=True, triggered=False), 202
        trigger.notify(entity_type)
        logger.info("webhook %s %s accepted%s", entity_type, event, entity)
        return jsonify(accepted=True, triggered=True), 202

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", **trigger.status())

    return app


def _parse_payload(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Return the payload, or why it is not a Moment webhook (a 400 message for the sender)."""
    try:
        # Content-Type is not checked: Moment's docs do not say which one it sends.
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "body is not valid JSON"
    if not isinstance(payload, dict):
        return None, "body must be a JSON object"
    if not isinstance(payload.get("event"), str):
        return None, 'body must have a string "event" member, e.g. "CREATE_NEW"'
    if not any(isinstance(value, dict) for key, value in payload.items() if key != "event"):
        return None, 'body must have an entity object, e.g. "invoice": {"id": 1, ...}'
    return payload, None


def _describe(payload: dict[str, Any]) -> tuple[str, str]:
    """The event name and a short ``entity id/number`` note for the log (ids only, no data)."""
    for key, value in payload.items():
        if key != "event" and isinstance(value, dict):
            ids = [
                f"{name}={str(value[name])[:40]!r}"
                for name in ("id", f"{key}Number")
                if isinstance(value.get(name), int | str)
            ]
            return str(payload["event"])[:40], f" ({key} {' '.join(ids)})" if ids else ""
    return str(payload["event"])[:40], ""
