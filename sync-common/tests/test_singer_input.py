"""RecordGuard against a real singer-sdk target: a record without its key or before its schema
fails alone, with a message naming the stream, the field and the fix; the rest goes on."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import RecordSink
from sync_common import RecordGuard, is_keyless_letter_key, keyless_letter_key
from sync_common.singer_input import missing_key_properties

SCHEMA = {
    "type": "object",
    "properties": {"customerNumber": {"type": ["string", "null"]}, "name": {"type": "string"}},
}


class _Sink(RecordSink):
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self._target.written.append((self.stream_name, record["customerNumber"]))  # type: ignore[attr-defined]


class _GuardedTarget(RecordGuard, Target):
    name = "target-guarded"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = _Sink

    def __init__(self) -> None:
        super().__init__(config={}, validate_config=False)
        self.written: list[tuple[str, str]] = []
        self.rejected: list[tuple[str, str, str, list[str]]] = []
        self.schemaless: list[tuple[str, str | None, str]] = []

    def get_sink(self, stream_name: str, **kwargs: Any) -> Any:
        sink = super().get_sink(stream_name, **kwargs)
        sink._target = self
        return sink

    def expected_key_properties(self, stream: str) -> list[str]:
        return ["customerNumber"]

    def reject_record(self, stream, schema, key_properties, record, key, message) -> None:  # type: ignore[no-untyped-def]
        assert schema == SCHEMA
        self.rejected.append((stream, key, message, key_properties))

    def count_record_without_schema(self, stream, key, message) -> None:  # type: ignore[no-untyped-def]
        self.schemaless.append((stream, key, message))


def _lines(*messages: dict[str, Any]) -> io.StringIO:
    return io.StringIO("".join(json.dumps(m) + "\n" for m in messages))


def _schema(stream: str = "customers") -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": SCHEMA,
        "key_properties": ["customerNumber"],
    }


def _record(stream: str = "customers", **record: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": record}


def test_record_without_its_key_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    target = _GuardedTarget()
    target.listen(
        _lines(
            _schema(),
            _record(name="Utan Nummer AB"),
            _record(customerNumber=None, name="Null Nummer AB"),
            _record(customerNumber="1001", name="Med Nummer AB"),
        )
    )
    assert target.written == [("customers", "1001")]
    assert [r[0] for r in target.rejected] == ["customers", "customers"]
    first_key, second_key = target.rejected[0][1], target.rejected[1][1]
    assert first_key != second_key, "two keyless records must not share a dead-letter key"
    assert all(is_keyless_letter_key(k) and "customerNumber" in k for k in (first_key, second_key))
    message = target.rejected[0][2]
    for words in ("customers", "'customerNumber'", "replay"):
        assert words in message
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(first_key in e and "customers" in e for e in errors)
    assert "Traceback" not in caplog.text


def test_record_before_its_schema_is_counted_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = _GuardedTarget()
    target.listen(
        _lines(
            _record(customerNumber="91020", name="För Tidig AB"),
            _record("contacts", id=1),
            _schema(),
            _record(customerNumber="92020", name="I Tid AB"),
        )
    )
    assert target.written == [("customers", "92020")]
    # The key where the record has the expected key field (contacts' record has not).
    assert [s[:2] for s in target.schemaless] == [("customers", "91020"), ("contacts", None)]
    message = target.schemaless[0][2]
    assert "customerNumber='91020'" in message
    assert "SCHEMA" in message
    assert "Fix the tap" in message
    assert any(r.levelname == "ERROR" and "91020" in r.getMessage() for r in caplog.records)


def test_helpers() -> None:
    assert missing_key_properties({"a": 1, "b": None}, ["a", "b", "c"]) == ["b", "c"]
    key = keyless_letter_key({"name": "x"}, ["customerNumber"])
    assert key == keyless_letter_key({"name": "x"}, ["customerNumber"])
    assert key != keyless_letter_key({"name": "y"}, ["customerNumber"])
    assert not is_keyless_letter_key("1001")
