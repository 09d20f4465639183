"""Moment's error answer: the (inferred) Spring Boot body.

``{timestamp, status, error, message, path}``.

Moment documents no error format; real clients only read the body as text. A Spring Boot
application answers with this shape by default, so the sandbox does too (inferred).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from sandbox.moment.clock import now_timestamp


class MomentError(Exception):
    """An API failure with its HTTP status and a message that names the record and field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str, path: str) -> dict[str, Any]:
    """The Spring-style error document for ``status`` on ``path``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return {
        "timestamp": now_timestamp(),
        "status": status,
        "error": reason,
        "message": message,
        "path": path,
    }
