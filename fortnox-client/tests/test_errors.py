"""The error taxonomy: parsing both casings, and status + code → class and actionable message."""

from __future__ import annotations

from typing import Any

import pytest
from fortnox_client import (
    FortnoxAuthError,
    FortnoxDataError,
    FortnoxNotFound,
    FortnoxTransientError,
    classify,
    parse_error_information,
)


def _body(code: int, message: str = "Fel", *, capital: bool = False) -> dict[str, Any]:
    if capital:
        return {"ErrorInformation": {"Error": 1, "Message": message, "Code": code}}
    return {"ErrorInformation": {"error": 1, "message": message, "code": code}}


@pytest.mark.parametrize("capital", [False, True])
def test_parses_both_key_casings(capital: bool) -> None:
    info = parse_error_information(_body(2000637, "Kundnummer 1001 används redan", capital=capital))
    assert info is not None
    assert info.code == 2000637
    assert info.message == "Kundnummer 1001 används redan"


@pytest.mark.parametrize(
    "body", [None, "text", {"error": "invalid_grant"}, {"ErrorInformation": 3}]
)
def test_non_error_bodies_parse_to_none(body: Any) -> None:
    assert parse_error_information(body) is None


@pytest.mark.parametrize(
    ("status", "body", "path", "expected", "needles"),
    [
        (429, None, "customers", FortnoxTransientError, ["rate limit", "max_requests_per_5s"]),
        (503, None, "customers", FortnoxTransientError, ["HTTP 503", "server error"]),
        (500, _body(1000003), "invoices", FortnoxTransientError, ["1000003"]),
        (404, None, "customers/9", FortnoxNotFound, ["not found"]),
        (400, _body(2000423, "Kan inte hitta"), "customers/9", FortnoxNotFound, ["2000423"]),
        (401, None, "customers", FortnoxAuthError, ["re-authorise", "refresh token"]),
        (400, _body(2000311), "customers", FortnoxAuthError, ["2000311", "re-authorise"]),
        (
            403,
            _body(2000663, "Har inte behörighet för scope"),
            "projects/P1",
            FortnoxAuthError,
            ["2000663", "scope 'project'", "authorise again"],
        ),
        (
            400,
            _body(2001101, "Det finns ingen aktiv licens för önskat scope"),
            "projects",
            FortnoxAuthError,
            ["2001101", "Enable Project", "licence"],
        ),
        (
            400,
            _body(2000637, "Kundnummer 1001 används redan"),
            "customers",
            FortnoxDataError,
            ["2000637", "deleted", "new number in Moment", "CustomerNumber"],
        ),
        (
            400,
            _body(2001304, "Kunde inte hitta konto"),
            "invoices",
            FortnoxDataError,
            ["2001304", "chart of accounts", "AccountNumber"],
        ),
        (
            400,
            _body(2000359, "Ogiltiga tecken"),
            "customers",
            FortnoxDataError,
            ["2000359", "characters"],
        ),
    ],
)
def test_classification_and_messages(
    status: int, body: Any, path: str, expected: type, needles: list[str]
) -> None:
    error = classify(status, body, method="POST", path=path)
    assert type(error) is expected
    assert error.status == status
    for needle in needles:
        assert needle in str(error)
    assert f"POST /{path}" in str(error)


def test_known_data_codes_name_their_field() -> None:
    error = classify(400, _body(2000637), method="POST", path="customers")
    assert isinstance(error, FortnoxDataError)
    assert error.field == "CustomerNumber"
    assert error.code == 2000637


def test_field_is_taken_from_the_message_when_one_sent_field_is_named() -> None:
    sent = {"Description": "x" * 60, "ProjectNumber": "P1"}
    error = classify(
        400,
        _body(2000106, "Description får vara högst 50 tecken"),
        method="POST",
        path="projects",
        sent=sent,
    )
    assert isinstance(error, FortnoxDataError)
    assert error.field == "Description"
    assert "field Description" in str(error)


def test_unknown_validation_code_keeps_fortnox_text() -> None:
    error = classify(400, _body(2999999, "Något gick fel"), method="PUT", path="customers/1")
    assert type(error) is FortnoxDataError
    assert "Fortnox error 2999999" in str(error)
    assert "Något gick fel" in str(error)
    assert error.field is None
    # Fortnox's own text, apart from the advice, for a record's history (sync-report --record).
    assert error.fortnox_message == "Något gick fel"
    assert classify(400, None, method="PUT", path="customers/1").fortnox_message is None
