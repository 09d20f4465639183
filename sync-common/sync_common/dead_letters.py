"""Dead letters: records a target could not write, kept as replayable Singer messages.

Owns the document ``dead-letters/<plugin>.singer`` of the plugin's run store
(:mod:`sync_common.run_store`: a folder, ``<folder>/dead-letters/<plugin>.singer``, or a row in
PostgreSQL), which must outlive the run like Meltano's state does. JSON lines, a ``SCHEMA``
message per stream followed by one ``RECORD`` message per failed record. Each ``RECORD`` carries
an extra top-level ``"error"`` member beside ``"record"``::

    {"type": "SCHEMA", "stream": "customers", "schema": {...}, "key_properties": ["customerNumber"]}
    {"type": "RECORD", "stream": "customers", "record": {...},
     "error": {"key": "1001", "message": "...", "time": "2026-11-28T01:13:16+00:00", "attempts": 2}}

Singer targets ignore unknown top-level keys (singer-sdk 0.54's reader only requires ``stream``
and ``record``; a test replays a file through a real singer-sdk target), so
``cat <file> | target-fortnox --config ...`` replays the letters as they are.

``add`` appends at once (a killed run loses nothing); ``resolve`` and replacements are applied in
memory and ``save`` merges them into what is stored then and rewrites it atomically under the
store's lock, so two runs of one plugin at once keep each other's letters. Reading tolerates a
truncated last line.
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

from sync_common.run_store import FileRunStore, RunStore

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
    """The dead letters of one plugin; letters are kept in the order they first failed.

    ``store`` is where they live (:mod:`sync_common.run_store`: a folder or PostgreSQL); without
    one, the folder ``results_dir`` as before. Given a store, letters still in the old file
    ``results_dir/dead-letters/<plugin>.singer`` are moved into it once (nothing is left behind
    by an upgrade).
    """

    def __init__(
        self,
        results_dir: str | os.PathLike[str],
        plugin: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        store: RunStore | None = None,
    ) -> None:
        self.plugin = plugin
        self.store: RunStore = store if store is not None else FileRunStore(results_dir)
        self.name = f"{DEAD_LETTERS_DIRNAME}/{plugin}.singer"
        self._clock = clock
        self._letters: dict[tuple[str, str], DeadLetter] = {}
        # This run's changes, merged into what is stored at save() (another run may have saved).
        self._added: dict[tuple[str, str], DeadLetter] = {}
        self._resolved: set[tuple[str, str]] = set()
        # Schema last appended per stream, to write SCHEMA once per stream on append.
        self._schemas_in_file: dict[str, tuple[dict[str, Any], list[str]]] = {}
        self._load()
        if store is not None:
            self._move_in(dead_letters_path(results_dir, plugin))

    @property
    def path(self) -> Path | None:
        """The file holding the letters, when the store is a folder (None in PostgreSQL)."""
        return self.store.path(self.name) if isinstance(self.store, FileRunStore) else None

    @property
    def location(self) -> str:
        """Where the letters are kept, for messages (a path, or the table and row key)."""
        return self.store.where(self.name)

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
        """Keep a failed record; it is appended to the store at once.

        A letter already held for ``stream``+``key`` is replaced and its ``attempts`` incremented.
        """
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
        self._keep(letter)
        self.store.append(self.name, "".join(_lines_for(letter, self._schemas_in_file)))
        return letter

    def resolve(self, stream: str, key: str | int) -> bool:
        """Drop the letter for ``stream``+``key`` (its record went through); True if there was one.

        Takes effect in the store at the next ``save()``.
        """
        ident = (stream, str(key))
        self._added.pop(ident, None)
        self._resolved.add(ident)
        return self._letters.pop(ident, None) is not None

    def save(self) -> None:
        """Merge this run's changes into the stored letters and rewrite them atomically.

        This happens under the store's lock (another run of the plugin may have saved since this
        one loaded); the document is removed when no letters are left.
        """
        with self.store.rewrite(self.name) as document:
            letters, _, _ = _parse(document.text, self.location, warn=False)
            for ident in self._resolved:
                letters.pop(ident, None)
            for ident, letter in self._added.items():
                # Re-inserting moves a replaced letter to the end: document order = dict order.
                letters.pop(ident, None)
                letters[ident] = letter
            written: dict[str, tuple[dict[str, Any], list[str]]] = {}
            document.text = "".join(
                line for letter in letters.values() for line in _lines_for(letter, written)
            )
        self._letters, self._schemas_in_file = letters, written
        self._added, self._resolved = {}, set()

    def _keep(self, letter: DeadLetter) -> None:
        ident = (letter.stream, letter.key)
        # Re-inserting moves a replaced letter to the end, keeping the document order.
        self._letters.pop(ident, None)
        self._letters[ident] = letter
        self._added.pop(ident, None)
        self._added[ident] = letter
        self._resolved.discard(ident)

    def _load(self) -> None:
        text = self.store.read(self.name)
        self._letters, self._schemas_in_file, needs_rewrite = _parse(text, self.location)
        if needs_rewrite:
            # Appending after a partial line would glue two messages together: rewrite first.
            self.save()

    def _move_in(self, old_file: Path) -> None:
        """Take over the letters of the file an earlier version kept under ``results_dir``."""
        if not old_file.exists() or self.path == old_file:
            return
        old = DeadLetters(old_file.parent.parent, self.plugin, clock=self._clock)
        for letter in old.pending():
            if self.get(letter.stream, letter.key) is None:
                self._keep(letter)
        self.save()
        moved = old_file.with_name(old_file.name + ".moved")
        old_file.replace(moved)
        logger.warning(
            "dead letters: moved %d letter(s) from %s into the run store %s (old file kept as %s)",
            len(old),
            old_file,
            self.location,
            moved,
        )


def _parse(
    text: str, where: str, *, warn: bool = True
) -> tuple[dict[tuple[str, str], DeadLetter], dict[str, tuple[dict[str, Any], list[str]]], bool]:
    """``(letters, schema per stream, needs rewrite)`` of a dead-letter document.

    Tolerates a truncated last line (a killed process) and hand-edited lines: they are skipped
    with a warning and the document needs a rewrite.
    """
    letters: dict[tuple[str, str], DeadLetter] = {}
    schemas: dict[str, tuple[dict[str, Any], list[str]]] = {}
    lines = text.splitlines()
    needs_rewrite = bool(text) and not text.endswith("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            _load_message(json.loads(line), schemas, letters)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            needs_rewrite = True
            if warn:
                what = "truncated last line" if number == len(lines) else f"line {number}"
                # A killed process leaves a half-written last line; anything else was edited by
                # hand. Either way the rest of the letters are still worth retrying.
                logger.warning("dead letters %s: ignoring %s (%s)", where, what, exc)
    return letters, schemas, needs_rewrite


def _load_message(
    message: Any,
    schemas: dict[str, tuple[dict[str, Any], list[str]]],
    letters: dict[tuple[str, str], DeadLetter],
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
        letters.pop((stream, str(key)), None)
        letters[(stream, str(key))] = DeadLetter(
            stream=stream,
            schema=schema,
            key_properties=key_properties,
            record=record,
            key=str(key),
            error=str(error.get("message", "")),
            attempts=int(error.get("attempts", 1)),
            failed_at=str(error.get("time", "")),
        )


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


def _json_line(message: Mapping[str, Any]) -> str:
    # default=str: records hold JSON-ready values from Singer, but a target may add dates.
    return json.dumps(message, ensure_ascii=False, default=str) + "\n"
