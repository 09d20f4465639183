"""Webhook push requests: a queue in PostgreSQL that the orchestrator's sensor drains.

``moment-webhooks serve --command "moment-fortnox-orchestrator request-push <tenant>"`` turns a
burst of Moment webhooks into one command (its debounce), and the command adds one row here. The
sensor (``definitions.py``) reads the rows after its cursor and asks for one push run per tenant
that has any, unless that tenant already has a push waiting in the run queue (it covers the
changes: the job reads everything changed since its bookmark). Rows up to the cursor of the last
committed evaluation are deleted on the next, so a failed evaluation loses nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import psycopg
from psycopg import sql

TABLE = sql.Identifier("orchestrator_push_requests")
_DDL = sql.SQL(
    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, tenant text NOT NULL, "
    "requested_at timestamptz NOT NULL DEFAULT now())"
).format(TABLE)
_INSERT = sql.SQL("INSERT INTO {} (tenant) VALUES (%s) RETURNING id").format(TABLE)
_PRUNE = sql.SQL("DELETE FROM {} WHERE id <= %s").format(TABLE)
_AFTER = sql.SQL("SELECT tenant, count(*), max(id) FROM {} WHERE id > %s GROUP BY tenant").format(
    TABLE
)


@dataclass(frozen=True)
class Pending:
    """Requests after a cursor: how many per tenant, and the cursor past them."""

    by_tenant: Counter[str]
    cursor: int


def request_push(store_url: str, tenant: str) -> int:
    """Queue a push of ``tenant``; returns the request's id."""
    with psycopg.connect(store_url) as conn:
        conn.execute(_DDL)
        row = conn.execute(_INSERT, (tenant,)).fetchone()
    assert row is not None
    return int(row[0])


def pending(store_url: str, cursor: int) -> Pending:
    """Requests after ``cursor`` (those up to it, already handled, are deleted)."""
    with psycopg.connect(store_url) as conn:
        conn.execute(_DDL)
        conn.execute(_PRUNE, (cursor,))
        rows = conn.execute(_AFTER, (cursor,)).fetchall()
    by_tenant = Counter({str(tenant): int(count) for tenant, count, _ in rows})
    return Pending(by_tenant, max([cursor, *(int(last) for _, _, last in rows)]))
