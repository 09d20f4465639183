"""PostgreSQL connections shared by the stores that live in a database.

Owns the one way the project connects (psycopg 3, autocommit, the store's table created on first
connection under an advisory lock), the ``postgresql://…?tenant=&table=`` URL form the settings
use, and the password-free display of such a URL for messages. Used by fortnox-client's token
store and rate window and by the run store (:mod:`sync_common.run_store`). psycopg is imported
lazily: it is the optional extra ``postgres`` of the packages that offer a PostgreSQL store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresSettingError(ValueError):
    """A PostgreSQL URL setting is malformed, or psycopg is missing; the message says which."""


class PostgresUnavailable(RuntimeError):
    """The database could not be reached; the message names the URL without its password."""


def connect(
    dsn: str,
    display: str,
    table: str,
    columns: str,
    *,
    what: str,
    setting: str,
    extra: str,
) -> psycopg.Connection[Any]:
    """An autocommit connection, with ``table`` (of ``columns``) created if it is missing.

    ``what`` names the store in messages ("the Fortnox token store"), ``setting`` the setting
    holding the URL and ``extra`` the package extra that brings psycopg. Errors name ``display``
    (the URL without its password), never the connection string.
    """
    try:
        import psycopg
    except ImportError:
        raise PostgresSettingError(
            f"{setting} is set but psycopg is not installed: install "
            f"{extra} (psycopg[binary]) in the plugins' environment."
        ) from None
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        # psycopg's message may quote the connection string: name only the redacted URL.
        raise PostgresUnavailable(
            f"Could not connect to {what} {display} "
            f"({type(exc).__name__}). Check {setting} and that the database is up."
        ) from None
    with conn.transaction(), conn.cursor() as cursor:
        # Serialise the first CREATE of concurrent processes (IF NOT EXISTS alone can race).
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    return conn


@contextmanager
def row_transaction(
    conn: psycopg.Connection[Any],
    table: str,
    key: Mapping[str, str],
    blank: Mapping[str, str],
    lock_timeout: float,
) -> Iterator[psycopg.Cursor[Any]]:
    """A transaction in which the row ``key`` of ``table`` exists.

    The transaction is committed on success, else rolled back; the row is inserted with the SQL
    literals ``blank`` when missing, for the caller to take with ``SELECT … FOR UPDATE``. Waiting
    for a lock ends after ``lock_timeout`` seconds with ``psycopg.errors.LockNotAvailable``.
    """
    columns = [*key, *blank]
    values = ["%s"] * len(key) + list(blank.values())
    with conn.transaction(), conn.cursor() as cursor:
        # Milliseconds, a literal: SET takes no parameters.
        cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout * 1000)}")
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (checked names)
            f"VALUES ({', '.join(values)}) ON CONFLICT DO NOTHING",
            tuple(key.values()),
        )
        yield cursor


def parse_url(url: str, *, setting: str, default_table: str) -> tuple[str, str, str | None]:
    """``(libpq URL without our parameters, table, tenant key)`` of a store URL setting.

    Our parameters are ``?tenant=NAME`` (the row key of one tenant) and ``?table=NAME``; the
    rest of the query goes to libpq. Raises :class:`PostgresSettingError` naming ``setting``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.netloc:
        raise PostgresSettingError(
            f"{setting} must look like postgresql://user:password@host/db "
            f"(optionally ?tenant=NAME), got a URL with scheme {parts.scheme or 'none'!r}"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    tenant = query.pop("tenant", None) or None
    table = query.pop("table", None) or default_table
    if not _TABLE_NAME.match(table):
        raise PostgresSettingError(
            f"{setting}: table {table!r} must be a plain lower-case identifier (letters, digits, "
            "underscores)"
        )
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))
    return dsn, table, tenant


def display_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))
