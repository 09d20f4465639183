"""A ledger in the run store: one short text per stream and record key, kept across runs.

Owns the JSON document ``{stream: {key: value}}`` a plugin keeps in its run store
(``sync_common.run_store``) to remember something per record from one run to the next:
target-fortnox's fingerprints of what Fortnox holds, target-moment's Moment expenses adopted from
Moment's own integration. Read once when the run starts; ``save`` merges this run's entries into
what is stored then (another run of the plugin may have saved meanwhile), under the store's lock.
"""

from __future__ import annotations

import json
import logging

from sync_common.run_store import RunStore, json_document

logger = logging.getLogger(__name__)


class RunStoreLedger:
    """``{stream: {key: value}}`` in the run store document ``name``."""

    def __init__(self, store: RunStore, name: str) -> None:
        self.store = store
        self.name = name
        self._entries: dict[str, dict[str, str]] = self._parse(store.read(name))
        self._changed: dict[str, dict[str, str]] = {}

    def get(self, stream: str, key: str) -> str | None:
        return self._entries.get(stream, {}).get(key)

    def matches(self, stream: str, key: str, value: str) -> bool:
        return self.get(stream, key) == value

    def keys(self, stream: str) -> list[str]:
        return list(self._entries.get(stream, {}))

    def put(self, stream: str, key: str, value: str) -> None:
        if self._entries.setdefault(stream, {}).get(key) != value:
            self._entries[stream][key] = value
            self._changed.setdefault(stream, {})[key] = value

    def save(self) -> None:
        if not self._changed:
            return
        with self.store.rewrite(self.name) as document:
            stored = self._parse(document.text)
            for stream, entries in self._changed.items():
                stored.setdefault(stream, {}).update(entries)
            document.text = json.dumps(stored, sort_keys=True)
        self._entries, self._changed = stored, {}

    def _parse(self, text: str) -> dict[str, dict[str, str]]:
        try:
            return json_document(text)
        except ValueError:
            # A damaged ledger only costs look-ups: start afresh rather than fail the run.
            logger.warning("ledger %s unreadable; starting a new one", self.store.where(self.name))
            return {}
