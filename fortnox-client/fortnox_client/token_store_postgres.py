"""The Fortnox token store in PostgreSQL: the file store's rotation rules, across machines.

Owns the table and the row lock. A file lock works only for processes that share a disk; a
deployment with workers on several machines (Airflow, Dagster, Kubernetes jobs) shares a database
instead. Selected by the setting ``token_store_url`` (``postgresql://user:pass@host/db``), which
wins over ``token_store_path``; psycopg 3 is the optional extra ``fortnox-client[postgres]``.

One row per app and tenant holds the same JSON document as the file store (see ``token_store``).
Where the file store takes its exclusive file lock, this store opens a transaction and takes the
row with ``SELECT … FOR UPDATE``: inside it the row is re-read (another process may have rotated
the token already: then its token is used), the token endpoint gets exactly one POST, and the new
pair is written and committed before the access token is returned for use. Another process
waiting for the row sees the new pair when its ``FOR UPDATE`` returns, so a refresh token is never
used twice (no ``invalid_grant``).

Row key: ``client_id`` and a tenant key — the URL's ``tenant`` query parameter
(``postgresql://…/db?tenant=acme``, stripped before connecting), else the ``tenant_id`` setting,
else ``default``. Give every tenant of a refresh-token deployment its own ``?tenant=``; the table
name can be set with ``?table=`` (default ``fortnox_tokens``).

The Fortnox rate-limit window lives in the same database (:class:`PostgresWindow`, table
``<table>_rate_window``), so the plugins of one client and tenant on several machines count each
other's requests as the plugins of one machine do through the window file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Unpack

from sync_common import postgres

from fortnox_client.errors import FortnoxAuthError, FortnoxTokenUnavailable
from fortnox_client.rate_limiter import Window, answered_at, take_slot
from fortnox_client.settings import FortnoxSettings, SettingsError
from fortnox_client.token_store import TokenStore, TokenStoreOptions

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

DEFAULT_TABLE = "fortnox_tokens"
DEFAULT_TENANT_KEY = "default"
_T = TypeVar("_T")


class PostgresTokenStore(TokenStore):
    """A :class:`TokenStore` whose document is a row in PostgreSQL, locked per refresh."""

    in_file = False

    def __init__(self, settings: FortnoxSettings, **options: Unpack[TokenStoreOptions]) -> None:
        super().__init__(settings, **options)
        url = settings.token_store_url
        if not url:
            raise SettingsError("PostgresTokenStore needs the token_store_url setting")
        self._dsn, self.table, tenant = _parse_url(url)
        self.tenant_key = tenant or settings.tenant_id or DEFAULT_TENANT_KEY
        self.client_id = settings.client_id
        self._display = _display_url(url)
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_lock = threading.Lock()
        # The transaction of the lock in progress; reads and writes inside the lock use it.
        self._locked: psycopg.Cursor[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresTokenStore({self.location!r}, mode={self.mode!r})"

    @property
    def location(self) -> str:
        return (
            f"{self._display} (table {self.table}, client {self.client_id}, "
            f"tenant {self.tenant_key})"
        )

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- the TokenStore storage hooks ----------------------------------------------------------

    def _file_lock(self) -> AbstractContextManager[None]:
        return self._row_lock()

    def _ensure_parent(self) -> None:
        """Nothing on disk: the table is created on first connection."""

    def _read_document(self) -> dict[str, Any]:
        if self._locked is not None:
            return self._select(self._locked, lock=False)
        with self._connection().cursor() as cursor:
            return self._select(cursor, lock=False)

    def _save_document(self, document: Mapping[str, Any]) -> None:
        if self._locked is None:
            # The base class writes only under its lock; anything else is a bug to surface.
            raise RuntimeError("PostgresTokenStore writes only inside its row lock")
        self._locked.execute(
            f"UPDATE {self.table} SET document = %s, updated_at = now() "  # noqa: S608 (checked name)
            "WHERE client_id = %s AND tenant = %s",
            (json.dumps(document, sort_keys=True), self.client_id, self.tenant_key),
        )

    # -- PostgreSQL ----------------------------------------------------------------------------

    @contextmanager
    def _row_lock(self) -> Iterator[None]:
        """A transaction holding this app's and tenant's row: commit on success, else roll back."""
        import psycopg

        conn = self._connection()
        try:
            # The lock wait is bounded like the file lock's.
            with postgres.row_transaction(
                conn,
                self.table,
                {"client_id": self.client_id, "tenant": self.tenant_key},
                {"document": "'{}'::jsonb"},
                self._lock_timeout,
            ) as cursor:
                self._select(cursor, lock=True)
                self._locked = cursor
                try:
                    yield
                finally:
                    self._locked = None
        except psycopg.errors.LockNotAvailable:
            raise FortnoxTokenUnavailable(
                f"Waited {self._lock_timeout:.0f} s for the lock on the Fortnox token store "
                f"{self.location}; another process holds it. Check for a hung Fortnox job."
            ) from None
        except psycopg.OperationalError as exc:
            raise FortnoxTokenUnavailable(
                f"The Fortnox token store {self.location} is unreachable "
                f"({type(exc).__name__}). Check token_store_url and that the database is up."
            ) from None

    def _select(self, cursor: psycopg.Cursor[Any], *, lock: bool) -> dict[str, Any]:
        cursor.execute(
            f"SELECT document FROM {self.table} "  # noqa: S608 (checked name)
            "WHERE client_id = %s AND tenant = %s" + (" FOR UPDATE" if lock else ""),
            (self.client_id, self.tenant_key),
        )
        row = cursor.fetchone()
        if row is None:
            return {}
        document = row[0]
        if not isinstance(document, dict):
            raise FortnoxAuthError(
                f"The Fortnox token store row {self.location} does not hold a JSON object; "
                "delete the row and seed a new refresh token."
            )
        return document

    def _connection(self) -> psycopg.Connection[Any]:
        with self._conn_lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            return self._conn

    def _connect(self) -> psycopg.Connection[Any]:
        return connect(
            self._dsn,
            self._display,
            self.table,
            "client_id text NOT NULL, tenant text NOT NULL, document jsonb NOT NULL, "
            "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (client_id, tenant)",
        )

    def rate_window(self) -> Window:
        """The Fortnox request window in the same database: shared by every machine."""
        return PostgresWindow.for_store(self._dsn, self.table, self._display)


class PostgresWindow:
    """A :class:`~fortnox_client.rate_limiter.Window` in PostgreSQL, shared by several machines.

    One row per client and tenant (table ``<token table>_rate_window``) holding the
    entries of the last window (see ``fortnox_client.rate_limiter``), taken with
    ``SELECT … FOR UPDATE`` when a request is reserved and again when its answer is back.

    Times come from the database's clock, so the machines' clocks need not agree. One connection
    per process (its own, not the token store's, whose transaction may be open in another
    thread). Best effort like the file window: when the database fails, the process says so once
    and paces itself by its own window from then on.
    """

    _instances: ClassVar[dict[tuple[str, str], PostgresWindow]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, dsn: str, table: str, display: str) -> None:
        self._dsn, self.table, self._display = dsn, table, display
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._failed = False

    @classmethod
    def for_store(cls, dsn: str, token_table: str, display: str) -> PostgresWindow:
        """The one window of this process for the token table ``token_table`` at ``dsn``."""
        table = f"{token_table}_rate_window"
        with cls._instances_lock:
            window = cls._instances.get((dsn, table))
            if window is None:
                window = cls._instances[(dsn, table)] = cls(dsn, table, display)
            return window

    def reserve(
        self, key: str, max_requests: int, span: float, hold: float
    ) -> tuple[float, float | None]:
        found = self._best_effort(lambda: self._reserve(key, max_requests, span, hold))
        return found if found is not None else (0.0, None)

    def answered(self, key: str, entry: float) -> None:
        self._best_effort(lambda: self._answered(key, entry))

    def _best_effort(self, work: Callable[[], _T]) -> _T | None:
        import psycopg

        with self._lock:
            if self._failed:
                return None
            try:
                return work()
            except (psycopg.Error, FortnoxTokenUnavailable) as exc:
                self._failed = True
                if self._conn is not None:
                    self._conn.close()
                logger.warning(
                    "Fortnox rate limit: the shared window in %s (table %s) cannot be used (%s); "
                    "this process counts only its own requests from now on, so another Fortnox "
                    "job of this tenant running at the same time may meet 429s (retried).",
                    self._display,
                    self.table,
                    type(exc).__name__,
                )
                return None

    def starts(self, key: str) -> list[float]:
        """The recorded starts (epoch seconds) of ``key``, oldest first; for reports and tests."""
        with self._lock, self._connection().cursor() as cursor:
            cursor.execute(
                f"SELECT starts FROM {self.table} WHERE key = %s",  # noqa: S608 (checked name)
                (key,),
            )
            row = cursor.fetchone()
        return sorted(row[0]) if row else []

    def _reserve(
        self, key: str, max_requests: int, span: float, hold: float
    ) -> tuple[float, float | None]:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} (key, starts) VALUES (%s, '{{}}') "  # noqa: S608
                "ON CONFLICT DO NOTHING",
                (key,),
            )
            entries, now = self._locked_row(cursor, key)
            wait, entries = take_slot(entries, now, max_requests, span, hold)
            if wait > 0:
                return wait, None
            self._store(cursor, key, entries)
            return 0.0, entries[-1]

    def _answered(self, key: str, entry: float) -> None:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cursor:
            entries, now = self._locked_row(cursor, key)
            self._store(cursor, key, answered_at(entries, entry, now))

    def _locked_row(self, cursor: psycopg.Cursor[Any], key: str) -> tuple[list[float], float]:
        """The row's entries, locked until the transaction ends, and the database's clock."""
        cursor.execute(
            f"SELECT starts, extract(epoch FROM clock_timestamp())::float8 "  # noqa: S608
            f"FROM {self.table} WHERE key = %s FOR UPDATE",
            (key,),
        )
        row = cursor.fetchone()
        if row is None:  # inserted on the first reservation; only a concurrent DELETE gets here
            raise FortnoxTokenUnavailable(f"the rate-window row {key} vanished")
        return list(row[0]), float(row[1])

    def _store(self, cursor: psycopg.Cursor[Any], key: str, entries: list[float]) -> None:
        cursor.execute(
            f"UPDATE {self.table} SET starts = %s WHERE key = %s",  # noqa: S608
            (entries, key),
        )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self._dsn,
                self._display,
                self.table,
                "key text PRIMARY KEY, starts float8[] NOT NULL",
            )
        return self._conn


def connect(dsn: str, display: str, table: str, columns: str) -> psycopg.Connection[Any]:
    """An autocommit connection, with ``table`` (of ``columns``) created if it is missing.

    Errors name ``display`` (the URL without its password).
    """
    try:
        return postgres.connect(
            dsn,
            display,
            table,
            columns,
            what="the Fortnox token store",
            setting="token_store_url",
            extra="fortnox-client[postgres]",
        )
    except postgres.PostgresSettingError as exc:
        raise SettingsError(str(exc)) from None
    except postgres.PostgresUnavailable as exc:
        raise FortnoxTokenUnavailable(str(exc)) from None


def _parse_url(url: str) -> tuple[str, str, str | None]:
    """``(libpq URL without our parameters, table, tenant key)``; SettingsError when malformed."""
    try:
        return postgres.parse_url(
            url, setting="Fortnox setting token_store_url", default_table=DEFAULT_TABLE
        )
    except postgres.PostgresSettingError as exc:
        raise SettingsError(str(exc)) from None


_display_url = postgres.display_url
