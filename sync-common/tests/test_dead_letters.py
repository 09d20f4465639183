"""DeadLetters: the Singer file, replacement and attempts, resolve/save, truncated files, replay."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, ClassVar

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import RecordSink
from sync_common import DeadLetters, dead_letters_path

SCHEMA = {
    "type": "object",
    "properties": {
        "customerNumber": {"type": "string"},
        "name": {"type": ["string", "null"]},
    },
}
KEYS = ["customerNumber"]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_holds_schema_once_then_records_with_error(tmp_path: Path, step_clock) -> None:
    dead = DeadLetters(tmp_path, "target-fortnox", clock=step_clock)
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1001", "name": "Åsa AB"}, "1001", "e1")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1002", "name": "Öl AB"}, 1002, "e2")

    assert dead.path == tmp_path / "dead-letters" / "target-fortnox.singer"
    assert dead.path == dead_letters_path(tmp_path, "target-fortnox")
    lines = _lines(dead.path)
    assert [m["type"] for m in lines] == ["SCHEMA", "RECORD", "RECORD"]
    assert lines[0] == {
        "type": "SCHEMA",
        "stream": "customers",
        "schema": SCHEMA,
        "key_properties": KEYS,
    }
    assert lines[1]["record"] == {"customerNumber": "1001", "name": "Åsa AB"}
    assert lines[1]["error"] == {
        "key": "1001",
        "message": "e1",
        "time": "2026-11-28T21:00:00+00:00",
        "attempts": 1,
    }
    assert "Åsa" in dead.path.read_text(encoding="utf-8")  # readable, not \u-escaped


def test_re_adding_replaces_and_counts_attempts(tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path, "target-fortnox")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1001", "name": "v1"}, "1001", "first")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1002"}, "1002", "other")
    dead.add(
        "customers",
        SCHEMA,
        KEYS,
        {"customerNumber": "1001", "name": "v2"},
        "1001",
        ValueError("second"),
    )

    pending = dead.pending()
    assert [(p.key, p.attempts, p.error) for p in pending] == [
        ("1002", 1, "other"),
        ("1001", 2, "second"),
    ]
    assert pending[1].record["name"] == "v2"
    # The same letters come back from the file, before and after it is compacted.
    assert [(p.key, p.attempts) for p in DeadLetters(tmp_path, "target-fortnox").pending()] == [
        ("1002", 1),
        ("1001", 2),
    ]
    dead.save()
    assert [m["type"] for m in _lines(dead.path)] == ["SCHEMA", "RECORD", "RECORD"]
    reloaded = DeadLetters(tmp_path, "target-fortnox")
    assert reloaded.pending() == pending


def test_resolve_then_save_drops_letters_and_removes_an_empty_file(tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path, "target-fortnox")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1001"}, "1001", "e")
    dead.add("projects", {"type": "object", "properties": {}}, ["projectNumber"], {}, "P1", "e")
    assert dead.resolve("customers", 1001)
    assert not dead.resolve("customers", "1001")
    dead.save()
    lines = _lines(dead.path)
    assert [(m["type"], m["stream"]) for m in lines] == [
        ("SCHEMA", "projects"),
        ("RECORD", "projects"),
    ]
    assert [p.stream for p in DeadLetters(tmp_path, "target-fortnox").pending("projects")] == [
        "projects"
    ]

    dead.resolve("projects", "P1")
    dead.save()
    assert not dead.path.exists()
    assert len(DeadLetters(tmp_path, "target-fortnox")) == 0
    # Adding after a save keeps writing a SCHEMA first.
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1003"}, "1003", "e")
    assert [m["type"] for m in _lines(dead.path)] == ["SCHEMA", "RECORD"]


def test_pending_filters_by_stream_in_failure_order(tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path, "target-fortnox")
    for stream, key in [("customers", "1"), ("projects", "P1"), ("customers", "2")]:
        dead.add(stream, SCHEMA, KEYS, {"customerNumber": key}, key, "e")
    assert [p.key for p in dead.pending("customers")] == ["1", "2"]
    assert [p.key for p in dead.pending()] == ["1", "P1", "2"]
    letter = dead.get("projects", "P1")
    assert letter is not None
    assert letter.schema == SCHEMA
    assert letter.key_properties == KEYS


def test_truncated_last_line_is_tolerated_and_repaired(tmp_path: Path, caplog) -> None:
    dead = DeadLetters(tmp_path, "target-fortnox")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1001"}, "1001", "e1")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1002"}, "1002", "e2")
    text = dead.path.read_text()
    # A process killed mid-write leaves half a line.
    dead.path.write_text(text[: len(text) - 25])

    survivor = DeadLetters(tmp_path, "target-fortnox")
    assert [p.key for p in survivor.pending()] == ["1001"]
    assert "truncated last line" in caplog.text
    # The file was rewritten whole, so appending goes on a fresh line.
    survivor.add("customers", SCHEMA, KEYS, {"customerNumber": "1003"}, "1003", "e3")
    assert [m.get("error", {}).get("key") for m in _lines(dead.path)] == [None, "1001", "1003"]


def test_records_without_error_member_get_their_key_from_key_properties(tmp_path: Path) -> None:
    path = dead_letters_path(tmp_path, "target-fortnox")
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {"type": "SCHEMA", "stream": "customers", "schema": SCHEMA, "key_properties": KEYS}
        )
        + "\n"
        + json.dumps({"type": "RECORD", "stream": "customers", "record": {"customerNumber": "7"}})
        + "\n"
    )
    (letter,) = DeadLetters(tmp_path, "target-fortnox").pending()
    assert (letter.key, letter.attempts, letter.record) == ("7", 1, {"customerNumber": "7"})


class _CollectingSink(RecordSink):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.received.append((self.stream_name, dict(record)))


class _CollectingTarget(Target):
    name = "target-collecting"
    config_jsonschema = th.PropertiesList(th.Property("unused", th.StringType)).to_dict()
    default_sink_class = _CollectingSink


def test_file_replays_through_a_singer_sdk_target(tmp_path: Path) -> None:
    """singer-sdk ignores the extra top-level "error" member, so the file replays as it is."""
    dead = DeadLetters(tmp_path, "target-fortnox")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1001", "name": "Åsa AB"}, "1001", "e")
    dead.add("customers", SCHEMA, KEYS, {"customerNumber": "1002", "name": None}, "1002", "e")
    _CollectingSink.received.clear()

    target = _CollectingTarget(config={}, validate_config=False)
    target.listen(io.StringIO(dead.path.read_text(encoding="utf-8")))

    assert _CollectingSink.received == [
        ("customers", {"customerNumber": "1001", "name": "Åsa AB"}),
        ("customers", {"customerNumber": "1002", "name": None}),
    ]
