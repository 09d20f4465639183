"""RecordGuard against a real singer-sdk target: a record without its key or before its schema
fails alone, with a message naming the stream, the field and the fix; the rest goes on.
RecordsAsSent: values that break a typed SCHEMA reach the sink as the tap sent them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import RecordSink
from sync_common import RecordGuard, RecordsAsSent, is_keyless_letter_key, keyless_letter_key
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


# The types a tap declares (tap-fortnox-expenses' project_expenses, tap-moment's invoices).
TYPED_SCHEMA = {
    "type": "object",
    "properties": {
        "source_key": {"type": "string"},
        "amount": {"type": "number"},
        "expense_date": {"type": ["string", "null"], "format": "date"},
        "invoice_modified": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["source_key", "amount"],
}
TYPED_RECORDS = [
    {"source_key": "bad-amount", "amount": "1 000,50", "expense_date": "2026-11-01"},
    {"source_key": "bad-date", "amount": 1, "expense_date": "01/11/2026"},
    {"source_key": "bad-stamp", "amount": 1, "invoice_modified": "igår 09:00"},
    {
        "source_key": "good",
        "amount": 2,
        "expense_date": "2026-11-01",
        "invoice_modified": "2026-11-01T09:00:00+01:00",
    },
]


class _KeepingSink(RecordSink):
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self._target.written.append(record)  # type: ignore[attr-defined]


class _AsSentSink(RecordsAsSent, _KeepingSink):
    pass


def _typed_target(sink: type[RecordSink]) -> Any:
    class _Target(Target):
        name = "target-typed"
        config_jsonschema = th.PropertiesList().to_dict()
        default_sink_class = sink

        def __init__(self) -> None:
            super().__init__(config={}, validate_config=False)
            self.written: list[dict[str, Any]] = []

        def get_sink(self, stream_name: str, **kwargs: Any) -> Any:
            sink = super().get_sink(stream_name, **kwargs)
            sink._target = self
            return sink

    return _Target()


def _typed_input(*records: dict[str, Any]) -> io.StringIO:
    schema = {
        "type": "SCHEMA",
        "stream": "project_expenses",
        "schema": TYPED_SCHEMA,
        "key_properties": ["source_key"],
    }
    return _lines(schema, *(_record("project_expenses", **r) for r in records))


@pytest.mark.parametrize("bad", TYPED_RECORDS[:3], ids=lambda r: r["source_key"])
def test_the_sdk_alone_stops_the_run_on_a_value_that_breaks_a_typed_schema(
    bad: dict[str, Any],
) -> None:
    """Why RecordsAsSent exists: singer-sdk's validation or date parsing raises out of the run."""
    target = _typed_target(_KeepingSink)
    with pytest.raises(Exception, match=r"1 000,50|01/11/2026|igår"):
        target.listen(_typed_input(bad, TYPED_RECORDS[3]))
    assert target.written == []


def test_records_as_sent_hands_every_record_to_the_sink_as_the_tap_sent_it() -> None:
    """The sink sees each value as JSON text (no date objects), the bad ones included, so the
    target's own contract check judges them one by one."""
    target = _typed_target(_AsSentSink)
    target.listen(_typed_input(*TYPED_RECORDS))
    assert target.written == TYPED_RECORDS
