"""Read what changed in Moment without skipping records that change during the read.

Moment lists are pages of one sorted query (``page`` and ``size``, i.e. offsets). Paging a single
query by offset over ``sort=lastModifiedDate,asc`` loses records: an edit gives a record a new
``lastModifiedDate`` and moves it to the end, every later record shifts back one place, and the
record at the next page boundary is never read.

``ChangeReader`` reads by keyset instead (see docs/DEVIATIONS.md, "tap-moment reads"):

1. Each query asks for ``lastModifiedDateFrom`` = the newest ``lastModifiedDate`` handed out so
   far (the cursor; the filter is inclusive), sorted by ``lastModifiedDate`` then ``id``, page 0.
   Records at the cursor instant that were already handed out are dropped by id (the only ids
   kept: those at the cursor instant). One page is one answer, so nothing shifts inside it.
2. When a page yields nothing past the cursor (more records share the cursor instant than a page
   holds), or the server does not honour the filter, the next page of the same query is read.
   Before it is used, one record is read back: the one just before the page (``size=1``) must
   still be the last record of the previous page. Records only move towards the end of the order
   (an edit gives a later ``lastModifiedDate``, a new record is the newest, a deleted one is gone),
   so if that record has not moved, nothing before it left and the page starts right after it.
   If it moved, the page is not used: the reader steps back page by page to one that starts with a
   record already handled and reads forward from there (what it has already handed out is dropped).
3. Checked on our side, since the filter and the sort are inferred: records older than the query's
   ``lastModifiedDateFrom`` are dropped and the reader stays on the checked offsets of 2 (warned
   once); ties not in ``id`` order are warned about once (2 holds for any stable order and fails, a
   bounded number of times, for an unstable one); a page not in ``lastModifiedDate`` order stops the
   read, because no safe read exists without that order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from moment_client.errors import MomentError

if TYPE_CHECKING:
    from moment_client.client import MomentClient

LOGGER = logging.getLogger("moment_client")

MODIFIED = "lastModifiedDate"
SORT = [f"{MODIFIED},asc", "id,asc"]
# A page whose read-back check fails this many times in a row stops the read with an error: the
# server's order is not stable, or records change faster than they can be read.
MAX_FAILED_CHECKS = 10


def parse_instant(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware datetime (no offset: UTC, as singer-sdk does)."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def filter_value(instant: datetime) -> str:
    """``instant`` as a ``lastModifiedDateFrom`` value: UTC, whole milliseconds (never later)."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds")


class ChangeReader:
    """One read of ``entity`` from ``since`` on; ``records()`` yields each record at least once."""

    def __init__(
        self,
        client: MomentClient,
        entity: str,
        since: datetime | None,
        params: Mapping[str, Any] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> None:
        self.client, self.entity, self.on_total = client, entity, on_total
        # The reader's own: the order and the from-instant (the caller's would break the keyset).
        own = ("sort", f"{MODIFIED}From")
        self.params = {k: v for k, v in (params or {}).items() if k not in own}
        self.cursor = since  # newest lastModifiedDate handed out (or the start)
        self.at_cursor: set[Any] = set()  # ids handed out whose lastModifiedDate is the cursor
        self.filter_ignored = False
        self.checks = 0  # read-back checks made (one request each)
        self.step_backs = 0  # failed checks (the reader stepped back)
        self._unsorted_ids_warned = False

    def records(self) -> Iterator[dict[str, Any]]:
        size = self.client.settings.page_size
        query_from, page = self.cursor, 0
        previous_last: tuple[Any, Any] | None = None  # last record of the page before
        stepping_back, failed_in_a_row = False, 0
        while True:
            content, info = self.client.page(self.entity, self._query(query_from), page, size)
            if self.on_total is not None and info.total is not None:
                self.on_total(info.total)
                self.on_total = None
            if page == 0:
                stepping_back = False
            elif stepping_back:
                if not content or not self._handled(content[0]):
                    page -= 1  # records not yet handled may lie before this page
                    continue
                stepping_back = False
            elif not self._still_there(query_from, page * size - 1, previous_last):
                failed_in_a_row += 1
                self.step_backs += 1
                if failed_in_a_row > MAX_FAILED_CHECKS:
                    raise MomentError(
                        f"Moment's order of {self.entity} kept changing between pages "
                        f"({MAX_FAILED_CHECKS} checks in a row failed at page {page}): records "
                        "cannot be read without the risk of skipping one. Re-run later; no state "
                        "was advanced past what was read.",
                        path=self.entity,
                    )
                LOGGER.info(
                    "Moment %s changed before page %d while reading; stepping back",
                    self.entity,
                    page,
                )
                page -= 1
                stepping_back = True
                continue
            else:
                failed_in_a_row = 0
            self._check_order(content)
            for record in content:
                if self._handled(record, query_from):
                    continue
                self._hand_out(record)
                yield record
            if info.is_last:
                return
            advanced = self.cursor is not None and (query_from is None or self.cursor > query_from)
            if advanced and not self.filter_ignored:
                query_from, page, previous_last = self.cursor, 0, None
            else:
                previous_last = _identity(content[-1])
                page += 1

    # internals --------------------------------------------------------------------------------
    def _query(self, query_from: datetime | None) -> dict[str, Any]:
        query: dict[str, Any] = {**self.params, "sort": SORT}
        if query_from is not None:
            query[f"{MODIFIED}From"] = filter_value(query_from)
        return query

    def _still_there(
        self, query_from: datetime | None, position: int, expected: tuple[Any, Any] | None
    ) -> bool:
        """Whether the record at ``position`` of the query is still ``expected``."""
        self.checks += 1
        content, _ = self.client.page(self.entity, self._query(query_from), position, 1)
        return bool(content) and _identity(content[0]) == expected

    def _handled(self, record: dict[str, Any], query_from: datetime | None = None) -> bool:
        """Already handed out, or older than the start: nothing to do with ``record``."""
        modified = self._modified(record)
        if query_from is not None and modified < query_from and not self.filter_ignored:
            self.filter_ignored = True
            LOGGER.warning(
                "Moment ignored the filter lastModifiedDateFrom on %s: it sent a record modified "
                "at %s for lastModifiedDateFrom=%s (it does not honour the filter). Dropping such "
                "records here and reading on by checked pages (more requests, nothing skipped). "
                "See docs/MOMENT-API.md.",
                self.entity,
                record[MODIFIED],
                filter_value(query_from),
            )
        if self.cursor is None or modified > self.cursor:
            return False
        return modified < self.cursor or record.get("id") in self.at_cursor

    def _hand_out(self, record: dict[str, Any]) -> None:
        modified = self._modified(record)
        if self.cursor is None or modified > self.cursor:
            self.cursor, self.at_cursor = modified, set()
        self.at_cursor.add(record.get("id"))

    def _modified(self, record: dict[str, Any]) -> datetime:
        value = record.get(MODIFIED)
        try:
            return parse_instant(str(value))
        except ValueError:
            raise MomentError(
                f"Moment sent {self.entity} id {record.get('id')} with {MODIFIED} {value!r}, "
                "not an ISO 8601 date-time: changes cannot be read in order",
                field=MODIFIED,
                path=self.entity,
            ) from None

    def _check_order(self, content: list[dict[str, Any]]) -> None:
        for before, after in pairwise(content):
            first, second = self._modified(before), self._modified(after)
            if second < first:
                raise MomentError(
                    f"Moment did not sort {self.entity} by {MODIFIED} (id {after.get('id')} at "
                    f"{after[MODIFIED]} came after id {before.get('id')} at {before[MODIFIED]}): "
                    "changes cannot be read without that order; the run stops here.",
                    path=self.entity,
                )
            if second == first and not self._unsorted_ids_warned:
                first_id, second_id = before.get("id"), after.get("id")
                if (
                    isinstance(first_id, int)
                    and isinstance(second_id, int)
                    and second_id < first_id
                ):
                    self._unsorted_ids_warned = True
                    LOGGER.warning(
                        "Moment does not sort %s with equal %s by id (sort=id,asc): relying on "
                        "a stable order, which every page boundary checks",
                        self.entity,
                        MODIFIED,
                    )


def _identity(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("id"), record.get(MODIFIED)
