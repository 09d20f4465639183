"""The cached contract validator: the verdicts of ``jsonschema.validate``, schema checked once."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from target_fortnox.sinks import contract_schema, contract_validator, validate_contract

CUSTOMER: dict[str, Any] = {
    "customerNumber": "1001",
    "name": "Åkesson & Söner AB",
    "countryCode": "SE",
    "postalCode": "123 45",
}


def test_valid_record_passes_and_the_validator_is_built_once() -> None:
    validate_contract("customers", dict(CUSTOMER))
    assert contract_validator("customers") is contract_validator("customers")


@pytest.mark.parametrize(
    ("stream", "record"),
    [
        ("customers", {**CUSTOMER, "countryCode": "Sverige"}),
        ("customers", {**CUSTOMER, "postalCode": "12345678901"}),
        ("customers", {"name": "Utan nummer AB"}),
        ("projects", {"projectNumber": "P1", "name": "X", "projectState": 3}),
        ("invoices", {"invoiceNumber": "7001", "customer": {}, "invoiceLines": []}),
    ],
)
def test_invalid_record_raises_the_error_jsonschema_validate_raises(
    stream: str, record: dict[str, Any]
) -> None:
    with pytest.raises(jsonschema.ValidationError) as expected:
        jsonschema.validate(record, contract_schema(stream))
    with pytest.raises(jsonschema.ValidationError) as got:
        validate_contract(stream, record)
    assert got.value.message == expected.value.message
    assert list(got.value.absolute_path) == list(expected.value.absolute_path)
