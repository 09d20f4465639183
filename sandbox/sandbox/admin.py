"""The admin API under ``/_sandbox/`` that both sandboxes share.

Separate from the emulated API: no auth, no faults, not rate limited, not in the request log.

- ``GET  /_sandbox/health``                       liveness
- ``POST /_sandbox/seed``     ``{"seed": N, ...sizes}``  wipe and fill with deterministic demo data
- ``GET|POST|DELETE /_sandbox/faults``            list / arm / clear faults (see ``faults.py``)
- ``GET|DELETE /_sandbox/requests?since=SEQ``     read / clear the request log
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.faults import Faults, RequestLog


def admin_blueprint(
    name: str,
    faults: Faults,
    log: RequestLog,
    reseed: Callable[[int, dict[str, Any]], dict[str, int]],
) -> Blueprint:
    """Routes common to both sandboxes; ``reseed(seed, sizes)`` returns counts per entity."""
    admin = Blueprint(f"{name}_admin", __name__, url_prefix="/_sandbox")

    @admin.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "sandbox": name})

    @admin.post("/seed")
    def seed() -> Response:
        body = request.get_json(silent=True) or {}
        seed_value = int(body.pop("seed", 1))
        sizes = {k: int(v) for k, v in body.items()}
        return jsonify({"seed": seed_value, "counts": reseed(seed_value, sizes)})

    @admin.get("/faults")
    def list_faults() -> Response:
        return jsonify({"faults": faults.list()})

    @admin.post("/faults")
    def add_fault() -> Response | tuple[Response, int]:
        try:
            fault = faults.add(request.get_json(force=True) or {})
        except (ValueError, TypeError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(fault.to_json()), 201

    @admin.delete("/faults")
    def clear_faults() -> Response:
        faults.clear()
        return jsonify({"faults": []})

    @admin.get("/requests")
    def requests_made() -> Response:
        since = int(request.args.get("since", 0))
        return jsonify({"last": log.last_seq(), "requests": log.since(since)})

    @admin.delete("/requests")
    def clear_requests() -> Response:
        log.clear()
        return jsonify({"last": log.last_seq(), "requests": []})

    return admin
