"""Singer protocol slips fail one record, not the run: a customer without its customerNumber is
dead-lettered under a key naming the field; a record before its stream's SCHEMA is counted failed
with an ERROR naming the stream and the fix; the good records around them are written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient
from sync_common import DeadLetters

SCHEMA = {
    "type": "SCHEMA",
    "stream": "customers",
    "key_properties": ["customerNumber"],
    "schema": {
        "type": "object",
        "properties": {
            "customerNumber": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "countryCode": {"type": ["string", "null"]},
            "lastModifiedDate": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}


def _record(**record: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": "customers", "record": {"countryCode": "SE", **record}}


def _text(*messages: dict[str, Any]) -> str:
    return "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages)


def _summary(results_dir: str) -> dict[str, Any]:
    runs = sorted((Path(results_dir) / "runs").glob("*-target-fortnox.json"))
    data: dict[str, Any] = json.loads(runs[-1].read_text())
    return data


def test_record_without_key_and_record_before_schema_fail_alone(
    replay: Callable[..., Any],
    fortnox_api: FortnoxClient,
    fortnox_config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = _text(
        _record(customerNumber="71951", name="För Tidig AB"),
        SCHEMA,
        _record(name="Utan Nummer AB"),
        _record(customerNumber="71952", name="I Tid AB"),
        {"type": "STATE", "value": {"bookmarks": {"customers": {"replication_key_value": "x"}}}},
    )
    run = replay(text=text)

    assert fortnox_api.get("customers", "71952") is not None
    assert fortnox_api.get("customers", "71951") is None
    assert run.states, "a per-record slip must not stop the run or its STATE"
    summary = _summary(fortnox_config["results_dir"])
    assert summary["streams"]["customers"]["failed"] == 2
    assert summary["streams"]["customers"]["created"] == 1
    early = next(f for f in summary["failures"] if f["key"] == "71951")
    assert "before any SCHEMA" in early["message"]
    assert "Fix the tap" in early["message"]
    (letter,) = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert letter.key.startswith("(no customerNumber)")
    assert "'customerNumber' is missing" in letter.error
    assert letter.record["name"] == "Utan Nummer AB"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("customers" in e and "71951" in e for e in errors)
    assert any(letter.key in e for e in errors)

    # The next run keeps the keyless letter (it cannot succeed) and counts it failed again.
    replay(text=_text(SCHEMA, _record(customerNumber="71953", name="Nästa AB")))
    again = _summary(fortnox_config["results_dir"])
    assert again["streams"]["customers"]["failed"] == 1
    assert again["streams"]["customers"]["created"] == 1
    pending = DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    assert [p.key for p in pending] == [letter.key]
