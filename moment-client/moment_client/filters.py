"""Moment's filtered answers are re-checked on our side; an ignored filter is reported once.

A public client that probed the real API found records outside the date range it asked for, and
a server that does not know a query parameter answers as if it were not there. No filter this
project sends is documented by Moment (docs/MOMENT-API.md), so every filtered answer is checked
again here: a record that does not match is dropped, and the first one per entity and filter
logs one warning that Moment ignored the filter (the plugins stay right, they only read more).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

LOGGER = logging.getLogger("moment_client")
DOC = "docs/MOMENT-API.md"


class FilterCheck:
    """Counts, per entity and filter, the records Moment answered outside the filter."""

    def __init__(self) -> None:
        self.ignored: dict[tuple[str, str], int] = {}

    def keep(self, entity: str, name: str, matches: bool) -> bool:
        """``matches`` (whether a record satisfies filter ``name``), warning once when not."""
        if matches:
            return True
        key = (entity, name)
        if key not in self.ignored:
            LOGGER.warning(
                "Moment ignored the filter %s on %s: it answered a record that does not match "
                "it. Filtering on our side from now on (right either way; the reads are larger). "
                "See %s.",
                name,
                entity,
                DOC,
            )
        self.ignored[key] = self.ignored.get(key, 0) + 1
        return False

    def keep_equal(
        self, entity: str, record: Mapping[str, Any], filters: Mapping[str, Any]
    ) -> bool:
        """True when every exact filter matches a field of ``record`` that is present and equal.

        A record without the field does not match: the filter could not have selected it, and
        for a look-up by reference a false match would overwrite another record.
        """
        keep = True
        for name, wanted in filters.items():
            value = record.get(name)
            if value is None or str(value) != str(wanted):
                keep = self.keep(entity, name, False) and keep
        return keep
