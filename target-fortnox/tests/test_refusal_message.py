"""The error of a record Fortnox refuses says what to do, not only what Fortnox said."""

from __future__ import annotations

from types import SimpleNamespace

from fortnox_client.errors import FortnoxDataError
from target_fortnox.mapping import MappedRecord
from target_fortnox.sinks import FortnoxSink


def test_refusal_names_stream_key_field_and_the_fix() -> None:
    item = MappedRecord(stream="customers", key="1003", payload={"Email": "a@@b"})
    error = FortnoxDataError(
        "Fortnox error 2001392: Ogiltig e-postadress", code=2001392, field="Email"
    )
    message = FortnoxSink.describe_refusal(SimpleNamespace(stream_name="customers"), item, error)  # type: ignore[arg-type]
    assert message.startswith("customers 1003: Fortnox refused the record (field Email): ")
    assert "Ogiltig e-postadress" in message
    assert "Correct the record in Moment" in message
