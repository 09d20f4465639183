"""The Moment error taxonomy, and how an HTTP error response maps onto it.

Moment documents no error format; the inferred one is Spring Boot's default body
``{"timestamp", "status", "error", "message", "path"}`` (docs/MOMENT-API.md, "Errors and limits").
Callers decide what to do by class, never by parsing text:

- ``MomentAuthError``: fatal for the run (wrong key, expired key, wrong company code).
- ``MomentDataError`` and its subclasses ``MomentNotFound`` / ``MomentConflict``: about one record;
  the caller dead-letters it and goes on.
- ``MomentTransientError``: 429/5xx/timeouts that outlived the retries; the run fails before state.
- ``MomentAmbiguousWriteError``: a create whose outcome is unknown (timeout, reset, 5xx); the caller
  looks the record up by its external reference before trying again.

Messages never contain the API key: they are built from the method, the path and the server's
message.
"""

from __future__ import annotations

import re
from typing import Any

import requests


class MomentError(Exception):
    """Base class of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
        self.path = path


class MomentTransientError(MomentError):
    """429, 5xx, timeout or connection failure that was still failing when the retries ran out."""


class MomentAuthError(MomentError):
    """401/403: the API key is wrong, expired or for another environment; or a wrong company."""


class MomentDataError(MomentError):
    """400 (validation): the record is wrong; ``field`` names the bad field when Moment says."""


class MomentNotFound(MomentDataError):
    """404: the entity (or the company) does not exist."""


class MomentConflict(MomentDataError):
    """409: a unique value is taken (e.g. a duplicate ``externalReference``)."""


class MomentAmbiguousWriteError(MomentError):
    """A POST whose outcome is unknown: it may or may not have created the record.

    Never retried blindly, because Moment has no idempotency keys; look the record up (e.g.
    ``find_one("projectExpenses", externalReference=...)``) and create it only if it is absent.
    """


# Spring and hand-written validators name the field in several ways; these cover the common ones:
# "field 'name': must not be blank", "name: must not be blank", "`name` is required",
# "Field error in object 'x' on field 'name'".
_FIELD_PATTERNS = (
    re.compile(r"on field '([A-Za-z_][\w.\[\]]*)'"),
    re.compile(r"field[ :]+['\"`]?([A-Za-z_][\w.\[\]]*)['\"`]?", re.IGNORECASE),
    re.compile(r"['\"`]([A-Za-z_][\w.\[\]]*)['\"`]"),
    re.compile(r"^([a-z][A-Za-z0-9_.\[\]]*)\s*:"),
)


def field_from_body(body: dict[str, Any]) -> str | None:
    """The field an error body blames, from an explicit member or from the message text."""
    for key in ("field", "fieldName", "property"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        value = errors[0].get("field")
        if isinstance(value, str) and value:
            return value
    message = body.get("message")
    if isinstance(message, str):
        for pattern in _FIELD_PATTERNS:
            match = pattern.search(message)
            if match:
                return match.group(1)
    return None


def _body(response: requests.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {"message": response.text[:300].strip()}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:300]}


def error_for_response(method: str, path: str, response: requests.Response) -> MomentError:
    """The taxonomy error for a non-2xx response (429/5xx → ``MomentTransientError``)."""
    status = response.status_code
    body = _body(response)
    server_message = str(body.get("message") or body.get("error") or response.reason or "").strip()
    where = f"{method} {path}"
    if status in (401, 403):
        return MomentAuthError(
            f"Moment refused the API key ({status} on {where}: {server_message}). Check that "
            "api_key is a valid, unexpired key for this environment (Prod/Sandbox) and that "
            "company_code is the code in your Moment URL (app.moment.team/<company_code>/...).",
            status=status,
            path=path,
        )
    if status == 404:
        return MomentNotFound(
            f"Moment has no such record ({where}): {server_message}. Check the id, or the "
            "company_code if every request gives 404.",
            status=status,
            path=path,
        )
    if status == 409:
        return MomentConflict(
            f"Moment reports a conflict on {where}: {server_message}. A record with the same "
            "unique value (e.g. externalReference) exists; look it up and update it instead.",
            status=status,
            field=field_from_body(body),
            path=path,
        )
    if status == 429 or status >= 500:
        return MomentTransientError(
            f"Moment answered {status} on {where}: {server_message}", status=status, path=path
        )
    field = field_from_body(body)
    blamed = f" (field {field!r})" if field else ""
    return MomentDataError(
        f"Moment rejected the data on {where}{blamed}: {server_message}. Fix the record in "
        "the source and re-run; the other records are not affected.",
        status=status,
        field=field,
        path=path,
    )
