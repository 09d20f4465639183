"""Fortnox's API error answers: ``{"ErrorInformation": {"error": 1, "message": ..., "code": N}}``.

Codes are the documented ones (docs/FORTNOX-API.md); where Fortnox documents none for a refusal the
sandbox uses the closest documented one and says so ("inferred") next to the constant.
"""

from __future__ import annotations

from flask import Response, jsonify

# Documented codes (Fortnox "Errors" page and observed answers).
SYSTEM_EXCEPTION = 1000003
WRONG_CONTENT_TYPE = 1000031
NOT_ALPHANUMERIC = 2000106
NOT_NUMERIC = 2000108
NOT_BOOLEAN = 2000134
INVALID_LOGIN = 2000310
TOKEN_MISSING = 2000311
INVALID_CHARACTERS = 2000359
LOCKED_PERIOD = 2000401
NOT_FOUND = 2000423
INVALID_PARAMETER = 2000588
CUSTOMER_NUMBER_USED = 2000637
SCOPE_NOT_AUTHORISED = 2000663
NOT_BALANCED = 2000755
# "Kostnadsställe är obligatoriskt på konto: N": seen in answers quoted by integrators
# (docs/FORTNOX_PROJECTS.md).
COST_CENTER_MANDATORY = 2000946
NO_LICENCE = 2001101
ACCOUNT_NOT_FOUND = 2001304
# "Empty or wrong data": the sandbox's code for a value Fortnox refuses without a documented code
# of its own (length, enum, date format, duplicate document number, wrong state) — inferred.
WRONG_DATA = 2001392
INVALID_FIELD_NAME = 2001399
MISSING_FIELDS = 2001795
JSON_SYNTAX = 2002115


class FortnoxError(Exception):
    """A refusal the API answers with an ErrorInformation body and an HTTP status."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def response(self) -> Response:
        return error_information(self.code, self.message, self.status)


def error_information(code: int, message: str, status: int) -> Response:
    """Fortnox's error answer: an ``ErrorInformation`` body with ``code`` and ``message``."""
    response = jsonify({"ErrorInformation": {"error": 1, "message": message, "code": code}})
    response.status_code = status
    return response


def too_many_requests(limit: int) -> Response:
    """The 429 answer. Fortnox documents no body for it: this small JSON body is inferred."""
    response = jsonify(
        {"message": f"Too Many Requests: at most {limit} requests per 5 seconds per client+tenant"}
    )
    response.status_code = 429
    return response


def injected(status: int) -> Response:
    """A Fortnox-shaped answer for a status armed by fault injection."""
    if status == 429:
        return too_many_requests(25)
    if status == 401:
        return error_information(TOKEN_MISSING, "Unauthorized: invalid access token", 401)
    if status == 404:
        return error_information(NOT_FOUND, "Kan inte hitta resursen.", 404)
    if status >= 500:
        return error_information(SYSTEM_EXCEPTION, "Systemfel (injected fault)", status)
    return error_information(WRONG_DATA, f"Request refused (injected HTTP {status})", status)
