"""Dead letters: records a target could not write, kept as replayable Singer messages.

Owns the file ``results_dir/dead-letters/<plugin>.singer``: JSON lines, a ``SCHEMA`` message per
stream followed by one ``RECORD`` message per failed record. Each ``RECORD`` carries an extra
top-level ``"error"`` member beside ``"record"``::

    {"type": "SCHEMA", "stream": "customers", "schema": {...}, "key_properties": ["customerNumber"]}
    {"type": "RECORD", "stream": "customers", "record": {...},
     "error": {"key": "1001", "message": "...", "time": "2026-11-28T01:13:16+00:00", "attempts": 2}}

Singer targets ignore unknown top-level keys (singer-sdk 0.54's reader only requires ``stream``
and ``record``; a test replays a file through a real singer-sdk target), so
``cat <file> | target-fortnox --config ...`` replays the letters as they are.

``add`` appends at once (a killed run loses nothing); ``resolve`` and replacements are applied in
memory and ``save`` rewrites the file atomically. Reading tolerates a truncated last line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sync_common.run_summary import write_text_atomically

DEAD_LETTERS_DIRNAME: Final = "dead-letters"

logger = logging.getLogger(__name__)


def dead_letters_path(results_dir: str | os.PathLike[str], plugin: str) -> Path:
    """Where ``plugin`` keeps its dead letters under ``results_dir``."""
    return Path(results_dir) / DEAD_LETTERS_DIRNAME / f"{plugin}.singer"


@dataclass(frozen=True)
class DeadLetter:
    """One record that failed, with what is needed to retry it and why it failed.

    The first six fields are the arguments of ``DeadLetters.add``; ``attempts`` counts how often
    the record failed and ``failed_at`` is the (UTC, ISO 8601) time of the last failure.
    """

    stream: str
    schema: dict[str, Any]
    key_properties: list[str]
    record: dict[str, Any]
    key: str
    error: str
    attempts: int = 1
    failed_at: str = ""


class DeadLetters:
    """The dead-letter file of one plugin; letters are kept in the order they first failed."""

    def __init__(
        self,
        results_dir: str | os.PathLike[str],
        plugin: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = dead_letters_path(results_dir, plugin)
        self.plugin = plugin
        self._clock = clock
        self._letters: dict[tuple[str, str], DeadLetter] = {}
        # Schema last written to the file per stream, to write SCHEMA once per stream on append.
        self._schemas_in_file: dict[str, tuple[dict[str, Any], list[str]]] = {}
        self._load()

    def __len__(self) -> int:
        return len(self._letters)

    def pending(self, stream: str | None = None) -> list[DeadLetter]:
        """Letters to retry before new records (all streams, or one), oldest first."""
        return [
            letter for letter in self._letters.values() if stream is None or letter.stream == stream
        ]

    def get(self, stream: str, key: str | int) -> DeadLetter | None:
        return self._letters.get((stream, str(key)))

    def add(
        self,
        stream: str,
        schema: Mapping[str, Any],
        key_properties: Sequence[str],
        record: Mapping[str, Any],
        key: str | int,
        error: str | BaseException,
    ) -> DeadLetter:
        """Keep a failed record; a letter already held for ``stream``+``key`` is replaced and its
        ``attempts`` incremented. Appended to the file at once."""
        key = str(key)
        previous = self._letters.get((stream, key))
        letter = DeadLetter(
            stream=stream,
            schema=dict(schema),
            key_properties=list(key_properties),
            record=dict(record),
            key=key,
            error=str(error) or type(error).__name__,
            attempts=(previous.attempts + 1) if previous else 1,
            failed_at=self._clock().astimezone(UTC).isoformat(),
        )
        # Re-inserting moves a replaced letter to the end, keeping the file order = dict order.
        self._letters.pop((stream, key), None)
        self._letters[(stream, key)] = letter
        self._append(letter)
        return letter

    def resolve(self, stream: str, key: str | int) -> bool:
        """Drop the letter for ``stream``+``key`` (its record went through); True if there was one.

        Takes effect in the file at the next ``save()``.
        """
        return self._letters.pop((stream, str(key)), None) is not None

    def save(self) -> None:
        """Rewrite the file atomically with the letters held; remove it when none are left."""
        if not self._letters:
            self.path.unlink(missing_ok=True)
            self._schemas_in_file = {}
            return
        lines: list[str] = []
        written: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for letter in self._letters.values():
            lines.extend(self._lines_for(letter, written))
        write_text_atomically(self.path, "".join(lines))
        self._schemas_in_file = written

    def _append(self, letter: DeadLetter) -> None:
        lines = self._lines_for(letter, self._schemas_in_file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write("".join(lines))
            file.flush()
            os.fsync(file.fileno())

    @staticmethod
    def _lines_for(
        letter: DeadLetter, schemas_written: dict[str, tuple[dict[str, Any], list[str]]]
    ) -> list[str]:
        """One letter's lines, after a SCHEMA message if its stream's schema is not written yet."""
        lines = []
        schema = (letter.schema, letter.key_properties)
        if schemas_written.get(letter.stream) != schema:
            schemas_written[letter.stream] = schema
            lines.append(
                _json_line(
                    {
                        "type": "SCHEMA",
                        "stream": letter.stream,
                        "schema": letter.schema,
                        "key_properties": letter.key_properties,
                    }
                )
            )
        lines.append(
            _json_line(
                {
                    "type": "RECORD",
                    "stream": letter.stream,
                    "record": letter.record,
                    "error": {
                        "key": letter.key,
                        "message": letter.error,
                        "time": letter.failed_at,
                        "attempts": letter.attempts,
                    },
                }
            )
        )
        return lines

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        lines = text.splitlines()
        needs_rewrite = bool(text) and not text.endswith("\n")
        schemas: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                message = json.loads(line)
                self._load_message(message, schemas)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                needs_rewrite = True
                where = "truncated last line" if number == len(lines) else f"line {number}"
                # A killed process leaves a half-written last line; anything else was edited by
                # hand. Either way the rest of the letters are still worth retrying.
                logger.warning("dead letters %s: ignoring %s (%s)", self.path, where, exc)
        self._schemas_in_file = schemas
        if needs_rewrite:
            # Appending after a partial line would glue two messages together: rewrite first.
            self.save()

    def _load_message(
        self, message: Any, schemas: dict[str, tuple[dict[str, Any], list[str]]]
    ) -> None:
        kind = message["type"]
        stream = message["stream"]
        if kind == "SCHEMA":
            schemas[stream] = (dict(message["schema"]), list(message.get("key_properties") or []))
        elif kind == "RECORD":
            schema, key_properties = schemas.get(stream, ({}, []))
            record = dict(message["record"])
            error = message.get("error") or {}
            key = error.get("key")
            if key is None:
                # A RECORD written by something else (or edited by hand): derive the key.
                key = "|".join(str(record.get(p)) for p in key_properties)
            self._letters.pop((stream, str(key)), None)
            self._letters[(stream, str(key))] = DeadLetter(
                stream=stream,
                schema=schema,
                key_properties=key_properties,
                record=record,
                key=str(key),
                error=str(error.get("message", "")),
                attempts=int(error.get("attempts", 1)),
                failed_at=str(error.get("time", "")),
            )


def _json_line(message: Mapping[str, Any]) -> str:
    # default=str: records hold JSON-ready values from Singer, but a target may add dates.
    return json.dumps(message, ensure_ascii=False, default=str) + "\n"
