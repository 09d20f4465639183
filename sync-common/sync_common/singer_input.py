"""Singer input a target survives per record instead of dying on.

Owns ``RecordGuard``, a mixin for singer-sdk targets (put it before ``Target`` in the bases), and
``RecordsAsSent``, a mixin for their sinks (before the SDK's sink class); see each class. The
SDK (0.54) stops the whole run with a bare traceback on two input slips that concern one record
only: a RECORD without one of its stream's ``key_properties`` (``MissingKeyPropertiesError``),
and a RECORD of a stream whose SCHEMA has not arrived (``RecordsWithoutSchemaException``). The
issue's contract is per record: an error that names the stream, the record's key, the field and
what to do, and the rest of the run goes on. So:

- a record missing a key property is handed to ``reject_record`` (the targets dead-letter it,
  keyed ``(no <field>) <hash>`` so two such records never overwrite each other's letter);
- a record before its schema is logged as an ERROR and its key (if it has the expected key field)
  handed to ``count_record_without_schema`` (counted failed; there is no schema to write a
  replayable dead letter with).

It also reads the marks our taps put on STATE messages (``tap_marks``, see
:mod:`sync_common.tap_run`), so a target can tell a failed tap from a short run.

Everything else goes to the SDK unchanged. Duck-typed against the SDK's ``Target`` (``mapper``,
``logger``) so that sync-common stays standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sync_common.tap_run import TapMarks

KEYLESS_PREFIX = "(no "


def missing_key_properties(record: Mapping[str, Any], key_properties: Sequence[str]) -> list[str]:
    """The key properties ``record`` lacks (absent or null: neither identifies a record)."""
    return [name for name in key_properties if record.get(name) is None]


def keyless_letter_key(record: Mapping[str, Any], missing: Sequence[str]) -> str:
    """A dead-letter key for a record without its key: names the field, distinct per content."""
    digest = hashlib.sha256(
        json.dumps(record, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()[:10]
    return f"{KEYLESS_PREFIX}{', '.join(missing)}) {digest}"


def is_keyless_letter_key(key: str) -> bool:
    """True for a key made by ``keyless_letter_key``: retrying such a letter cannot succeed."""
    return key.startswith(KEYLESS_PREFIX)


def missing_key_message(
    stream: str, record: Mapping[str, Any], key_properties: Sequence[str], missing: Sequence[str]
) -> str:
    """The error for a record without its key: stream, field, what the record holds, the fix."""
    fields = ", ".join(repr(name) for name in missing)
    present = ", ".join(sorted(str(name) for name in record)[:12]) or "no fields"
    return (
        f"{stream} record without its key: field {fields} is missing or null (the stream's key is "
        f"{list(key_properties)}; the record has {present}). The record was not written. Set "
        f"{fields} in the source system (or in this dead-letter line) and replay it; a tap must "
        "send every key property."
    )


def record_without_schema_message(
    stream: str, record: Mapping[str, Any], expected_keys: Sequence[str]
) -> str:
    """The error for a RECORD that came before (or without) its stream's SCHEMA message."""
    keys = [f"{name}={record.get(name)!r}" for name in expected_keys if name in record]
    which = f" ({', '.join(keys)})" if keys else ""
    return (
        f"{stream} record{which} arrived before any SCHEMA message for stream {stream!r}, so it "
        "cannot be checked or written and was skipped. Fix the tap (it must send SCHEMA before "
        f"the stream's records), or in a replayed file move the {stream} SCHEMA line above its "
        "records, and send the record again."
    )


class RecordGuard:
    """Mixin for a singer-sdk ``Target``: the two per-record protocol slips fail the record only.

    Subclasses implement ``reject_record`` and ``count_record_without_schema``, and may name the
    key fields they expect per stream in ``expected_key_properties`` (used in messages only).
    """

    # Provided by singer_sdk.Target; declared for type checkers only.
    mapper: Any
    logger: Any

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        stream = message_dict.get("stream")
        record = message_dict.get("record")
        if not isinstance(stream, str) or not isinstance(record, dict):
            # Malformed lines are the SDK's to reject (it names the missing member).
            super()._process_record_message(message_dict)  # type: ignore[misc]
            return
        maps = self.mapper.stream_maps.get(stream)
        if not maps:
            expected = self.expected_key_properties(stream)
            message = record_without_schema_message(stream, record, expected)
            self.logger.error("%s", message)
            # The record's key where it carries the first expected key field, for the summary.
            first = record.get(expected[0]) if expected else None
            self.count_record_without_schema(stream, None if first is None else str(first), message)
            return
        key_properties = list(maps[0].raw_key_properties or [])
        missing = missing_key_properties(record, key_properties)
        if missing:
            message = missing_key_message(stream, record, key_properties, missing)
            key = keyless_letter_key(record, missing)
            self.logger.error("%s %s: %s", stream, key, message)
            self.reject_record(
                stream, dict(maps[0].raw_schema or {}), key_properties, record, key, message
            )
            return
        super()._process_record_message(message_dict)  # type: ignore[misc]

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        self.tap_marks.read(message_dict)
        super()._process_state_message(message_dict)  # type: ignore[misc]

    @property
    def tap_marks(self) -> TapMarks:
        """What the tap said of its run in its STATE messages (``sync_common.tap_run``).

        Call ``tap_marks.stop()`` at the end of input to learn whether the input ended early.
        """
        marks = self.__dict__.get("_tap_marks")
        if marks is None:
            marks = self.__dict__["_tap_marks"] = TapMarks()
        return marks

    def expected_key_properties(self, stream: str) -> Sequence[str]:
        """The key fields this target expects on ``stream``, to name them in messages."""
        return ()

    def reject_record(
        self,
        stream: str,
        schema: dict[str, Any],
        key_properties: list[str],
        record: dict[str, Any],
        key: str,
        message: str,
    ) -> None:
        """Count ``record`` failed and keep it as a dead letter (the message is logged)."""
        raise NotImplementedError

    def count_record_without_schema(self, stream: str, key: str | None, message: str) -> None:
        """Count a record that came before its schema as failed (the message is logged).

        ``key`` is its value of the first ``expected_key_properties`` field, if it has one.
        """
        raise NotImplementedError


class RecordsAsSent:
    """Mixin for a singer-sdk ``Sink``: records reach it as the tap sent them, unvalidated.

    Before a sink sees a record, the SDK (0.54) validates it against the stream's SCHEMA message
    (``get_validator``) and parses the top-level values the SCHEMA declares ``format: date``,
    ``date-time`` or ``time`` into Python objects (``_parse_timestamps_in_record``). One value
    that breaks a typed schema (``amount: "1 000,50"`` under ``{"type": "number"}``,
    ``"01/11/2026"`` under ``format: date``) then raises out of the SDK's record loop and stops
    the whole target: no run summary, no dead letter, no e-mail, exit 1. Told not to fail on
    validation errors, the SDK passes the invalid record on anyway. Both steps are off here, so
    every value arrives as its JSON text had it, and the target's own input contract (checked in
    the sink, per record) is what judges it: a bad value fails that record alone, with the
    target's error naming the record, the field and the fix. The targets read dates as ISO text.
    """

    def get_validator(self) -> None:
        """No SDK validation (the sink checks the target's input contract, per record)."""
        return

    def _parse_timestamps_in_record(
        self, record: dict[str, Any], schema: Any, treatment: Any
    ) -> None:
        """Leave date/time values as the tap's text: the contract check reports a bad one."""
        return
