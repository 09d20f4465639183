"""What already exists in Fortnox, read with as few requests as possible.

Owns: ``ExistingRecords`` — one per stream per run — which answers "is this number in Fortnox, and
with which values?" either from one listing of the whole register (500 a page) or from single GETs,
whichever costs fewer requests for the batch at hand; and ``FingerprintLedger``, the local memory of
fields a Fortnox list does not carry (a customer's CountryCode, an invoice's rows).

Why both: a no-change run over 10,000 customers must cost list pages plus a handful of requests
(docs/ARCHITECTURE.md), so unchanged records are known from the list alone. Fields the list lacks
are compared through the ledger: when the fingerprint of what we would send equals the one stored
after the last successful write or check, the record is unchanged; otherwise one single GET reads
the full record before deciding. The ledger is only a cache: Fortnox stays the truth for every field
the list carries, and a lost ledger costs one GET per record once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, Protocol

from sync_common.ledger import RunStoreLedger
from sync_common.run_store import RunStore

logger = logging.getLogger(__name__)

PAGE_SIZE = 500


class FortnoxReader(Protocol):
    """The part of ``fortnox_client.FortnoxClient`` this module reads with."""

    def get(self, resource: str, key: str) -> dict[str, Any] | None: ...

    def list(
        self, resource: str, params: dict[str, Any] | None = None
    ) -> Iterable[dict[str, Any]]: ...

    def get_path(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...


class ExistingRecords:
    """The Fortnox records of one register (customers, projects, invoices), keyed by number.

    ``prepare(keys)`` before a batch decides how to learn about those keys: if the register has
    fewer list pages than the batch has unknown keys, list it once (and keep it for the rest of the
    run); otherwise GET each key. ``find(key)`` then answers from memory.
    """

    def __init__(self, client: FortnoxReader, resource: str, key_field: str) -> None:
        self.client, self.resource, self.key_field = client, resource, key_field
        # key -> (record, is_full): list rows are summaries, single GETs are full records.
        self._known: dict[str, tuple[dict[str, Any] | None, bool]] = {}
        self._listed = False
        self._pages: int | None = None  # list pages of the register, once page 1 was read

    @property
    def listed(self) -> bool:
        return self._listed

    def prepare(self, keys: Iterable[str]) -> None:
        unknown = [key for key in dict.fromkeys(keys) if not self.is_known(key)]
        if not unknown:
            return
        if len(unknown) > 1:
            if self._pages is None:
                self._pages = self._read_first_page()
                unknown = [key for key in unknown if not self.is_known(key)]
            if self._pages <= 1:
                self._listed = True  # page 1 was the whole register (or it is empty)
                return
            if self._pages - 1 < len(unknown):
                self._list_all(start_page=2)
                return
        for key in unknown:
            self._known[key] = (self.client.get(self.resource, key), True)

    def is_known(self, key: str) -> bool:
        return self._listed or key in self._known

    def find(self, key: str) -> dict[str, Any] | None:
        """The record for ``key`` (a summary when it came from the list), or None if absent."""
        if not self.is_known(key):
            self.prepare([key])
        record, _ = self._known.get(key, (None, True))
        return record

    def full(self, key: str) -> dict[str, Any] | None:
        """The full record for ``key``: one GET when only the list summary is known."""
        if key in self._known and self._known[key][1]:
            return self._known[key][0]
        if self._listed and key not in self._known:
            return None  # the listing showed it absent
        return self.refresh(key)

    def refresh(self, key: str) -> dict[str, Any] | None:
        """GET ``key`` again (e.g. after an ambiguous write) and keep the answer."""
        record = self.client.get(self.resource, key)
        self._known[key] = (record, True)
        return record

    def remember(self, key: str, record: dict[str, Any] | None, *, full: bool = True) -> None:
        """Keep what a write returned, so later batches of the run see it without a request."""
        self._known[key] = (record, full)

    def _read_first_page(self) -> int:
        """Read list page 1 (500 rows) and return the register's number of list pages.

        Page 1 is the probe: it costs the same one request as a ``limit=1`` probe of
        ``@TotalResources``, brings up to 500 rows (which may answer the batch outright), and is
        not read again when listing the rest wins. Saves one request per stream and run.
        """
        answer = self.client.get_path(self.resource, {"limit": PAGE_SIZE, "page": 1})
        meta = answer.get("MetaInformation") or {}
        rows = next((v for k, v in answer.items() if isinstance(v, list)), [])
        self._remember_rows(row for row in rows if isinstance(row, dict))
        return math.ceil(int(meta.get("@TotalResources", 0)) / PAGE_SIZE)

    def _list_all(self, start_page: int = 1) -> None:
        count = self._remember_rows(self.client.list(self.resource, {"page": start_page}))
        self._listed = True
        logger.info("%s: listed %d existing Fortnox records", self.resource, count)

    def _remember_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        count = 0
        for row in rows:
            key = str(row.get(self.key_field))
            # A single GET made earlier in the run is fuller than the list row: keep it.
            if key not in self._known or not self._known[key][1]:
                self._known[key] = (row, False)
            count += 1
        return count


class FingerprintLedger(RunStoreLedger):
    """Fingerprints of what was last written to (or verified in) Fortnox, per stream and key.

    Kept as one JSON document ``fingerprints/<plugin>.json`` in the plugin's run store
    (``sync_common.run_store``, beside the token store by default), so a worker without a lasting
    disk does not pay a GET per record every run. ``target-fortnox-cutover --apply`` writes the
    fingerprints of the records Moment's own integration left identical in Fortnox
    (docs/SWITCH-OVER.md).
    """

    def __init__(self, store: RunStore, plugin: str) -> None:
        super().__init__(store, f"fingerprints/{plugin}.json")
