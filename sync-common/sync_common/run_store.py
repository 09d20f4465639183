"""The run store: what a plugin must remember from one run to the next, kept where state is kept.

Owns where the documents that Meltano's state relies on live (the dead letters, target-fortnox's
fingerprint ledger), the two backends behind one interface (a folder, or a PostgreSQL table), the
settings that choose them (``run_store_path``, ``run_store_url``, ``run_store_path_persists``) and
the rule that refuses to start when the chosen store would not survive the run.

Why: a target lets Meltano's bookmark move past a record that failed because the record is kept
as a dead letter. If that letter is on a disk that is thrown away with the worker (a container
per run, docs/SCALING.md) while the state lives on in a database, the record is lost for good.
So the run store lives with the state and the tokens, never in ``results_dir`` (run summaries
and plans, which may go with the worker).

A document is named like a relative path (``dead-letters/target-fortnox.singer``) and holds text.
``append`` adds to it atomically (a killed run loses nothing it appended); ``rewrite`` reads it and
replaces it under an exclusive lock, so two runs of one plugin at once never lose each other's
changes (the dead letters and the ledger merge their own changes into what is stored then).

- :class:`FileRunStore`: ``<folder>/<name>``; appends with fsync, rewrites atomically (temporary
  file and rename), both under a file lock ``<name>.lock`` beside the document.
- :class:`PostgresRunStore`: one row per tenant and document in the table ``run_store`` (or
  ``?table=``); appends with one ``UPDATE … content || …``, rewrites in a transaction holding the
  row (``SELECT … FOR UPDATE``). The connection is :func:`sync_common.postgres.connect`'s.

The refusal rule (:func:`refuse_unless_persistent`) — only a folder can be lost with the worker:

- ``run_store_path_persists: false`` (the worker's disk does not survive a run): a folder store is
  refused; set ``run_store_url``.
- ``run_store_path_persists: true`` (the folder is on a disk that is kept, e.g. a mounted volume):
  a folder store is accepted.
- unset: a folder store is refused when Meltano keeps the state away from this machine — the
  environment Meltano passes to the plugin names a state backend other than a local file
  (``MELTANO_STATE_BACKEND_URI`` such as ``postgresql://``, ``s3://``, ``gs://``, ``azure://``), or
  the default ``systemdb`` backend on a system database that is not SQLite
  (``MELTANO_DATABASE_URI``). That combination is the "state survives, disk does not" deployment.
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from sync_common import postgres
from sync_common.atomic_files import write_text_atomically

if TYPE_CHECKING:
    import psycopg

DEFAULT_TABLE: Final = "run_store"
DEFAULT_TENANT: Final = "default"
LOCK_TIMEOUT_SECONDS: Final = 120.0


class RunStoreError(RuntimeError):
    """The run store cannot be used (unreachable, locked too long, misconfigured)."""


class RunStoreNotPersistent(RunStoreError):
    """The configured run store would not survive the run; the message says what to set."""


class Document:
    """A document read under the store's lock; set ``text`` (``""`` removes it) to replace it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.original = text


class RunStore(ABC):
    """Named text documents that outlive a run (see the module docstring)."""

    #: "file" or "postgresql": only a file store can be lost with the worker.
    kind: str

    @abstractmethod
    def read(self, name: str) -> str:
        """The document's text, ``""`` when it does not exist."""

    @abstractmethod
    def append(self, name: str, text: str) -> None:
        """Add ``text`` to the end of the document, durably, before returning."""

    @abstractmethod
    def rewrite(self, name: str) -> Any:
        """A context manager yielding the locked :class:`Document`, written back on success."""

    @abstractmethod
    def where(self, name: str) -> str:
        """Where the document lives, for messages (a path, or the table and key; no password)."""

    def close(self) -> None:  # noqa: B027 (nothing to release for most stores)
        """Release connections; the store can still be used (it reconnects)."""


class FileRunStore(RunStore):
    """Documents as files under ``root``."""

    kind = "file"

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float = LOCK_TIMEOUT_SECONDS):
        self.root = Path(root)
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"FileRunStore({str(self.root)!r})"

    def path(self, name: str) -> Path:
        return self.root / name

    def where(self, name: str) -> str:
        return str(self.path(name).absolute())

    def read(self, name: str) -> str:
        try:
            return self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def append(self, name: str, text: str) -> None:
        path = self.path(name)
        with self._lock(path), path.open("a", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())

    @contextmanager
    def rewrite(self, name: str) -> Iterator[Document]:
        path = self.path(name)
        with self._lock(path):
            document = Document(self.read(name))
            yield document
            if document.text == document.original:
                return
            if document.text:
                write_text_atomically(path, document.text)
            else:
                path.unlink(missing_ok=True)

    @contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(path.with_name(path.name + ".lock")), timeout=self._lock_timeout):
                yield
        except Timeout:
            raise RunStoreError(
                f"Waited {self._lock_timeout:.0f} s for the lock on {path}; another run of this "
                "plugin holds it. Check for a hung run."
            ) from None


class PostgresRunStore(RunStore):
    """Documents as rows ``(tenant, name, content)`` of one PostgreSQL table."""

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        setting: str = "run_store_url",
        table: str | None = None,
        tenant: str | None = None,
        extra: str = "sync-common[postgres]",
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    ) -> None:
        dsn, url_table, url_tenant = postgres.parse_url(
            url, setting=setting, default_table=DEFAULT_TABLE
        )
        self._dsn = dsn
        self.table = table or url_table
        self.tenant = url_tenant or tenant or DEFAULT_TENANT
        self._setting, self._extra = setting, extra
        self.display = postgres.display_url(url)
        self._lock_timeout = lock_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"PostgresRunStore({self.display!r}, table={self.table!r}, tenant={self.tenant!r})"

    def where(self, name: str) -> str:
        return f"{self.display} (table {self.table}, tenant {self.tenant}, name {name})"

    def read(self, name: str) -> str:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT content FROM {self.table} WHERE tenant = %s AND name = %s",  # noqa: S608
                (self.tenant, name),
            )
            row = cursor.fetchone()
        return str(row[0]) if row else ""

    def append(self, name: str, text: str) -> None:
        with self._cursor() as cursor:
            # One statement: the row lock makes concurrent appends follow each other whole.
            cursor.execute(
                f"INSERT INTO {self.table} AS t (tenant, name, content) "  # noqa: S608
                "VALUES (%s, %s, %s) ON CONFLICT (tenant, name) DO UPDATE "
                "SET content = t.content || EXCLUDED.content, updated_at = now()",
                (self.tenant, name, text),
            )

    @contextmanager
    def rewrite(self, name: str) -> Iterator[Document]:
        import psycopg

        with self._conn_lock:
            conn = self._connection()
            try:
                with postgres.row_transaction(
                    conn,
                    self.table,
                    {"tenant": self.tenant, "name": name},
                    {"content": "''"},
                    self._lock_timeout,
                ) as cursor:
                    cursor.execute(
                        f"SELECT content FROM {self.table} "  # noqa: S608
                        "WHERE tenant = %s AND name = %s FOR UPDATE",
                        (self.tenant, name),
                    )
                    row = cursor.fetchone()
                    document = Document(str(row[0]) if row else "")
                    yield document
                    if document.text:
                        cursor.execute(
                            f"UPDATE {self.table} SET content = %s, updated_at = now() "  # noqa: S608
                            "WHERE tenant = %s AND name = %s",
                            (document.text, self.tenant, name),
                        )
                    else:
                        cursor.execute(
                            f"DELETE FROM {self.table} WHERE tenant = %s AND name = %s",  # noqa: S608
                            (self.tenant, name),
                        )
            except psycopg.errors.LockNotAvailable:
                raise RunStoreError(
                    f"Waited {self._lock_timeout:.0f} s for the lock on the run store "
                    f"{self.where(name)}; another run of this plugin holds it. Check for a hung "
                    "run."
                ) from None
            except psycopg.OperationalError as exc:
                raise self._unreachable(exc) from None

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        import psycopg

        with self._conn_lock:
            try:
                with self._connection().cursor() as cursor:
                    yield cursor
            except psycopg.OperationalError as exc:
                raise self._unreachable(exc) from None

    def _unreachable(self, exc: BaseException) -> RunStoreError:
        self.close()
        return RunStoreError(
            f"The run store {self.display} (table {self.table}) is unreachable "
            f"({type(exc).__name__}). Check {self._setting} and that the database is up."
        )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = postgres.connect(
                    self._dsn,
                    self.display,
                    self.table,
                    "tenant text NOT NULL, name text NOT NULL, content text NOT NULL, "
                    "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant, name)",
                    what="the run store",
                    setting=self._setting,
                    extra=self._extra,
                )
            except postgres.PostgresSettingError as exc:
                raise RunStoreError(str(exc)) from None
            except postgres.PostgresUnavailable as exc:
                raise RunStoreError(str(exc)) from None
        return self._conn


# -- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStoreSettings:
    """Which run store a plugin uses, from its settings (see :meth:`from_config`)."""

    path: Path
    url: str | None = field(default=None, repr=False)  # may hold a password
    url_setting: str = "run_store_url"
    table: str | None = None
    tenant: str | None = None
    persists: bool | None = None
    extra: str = "sync-common[postgres]"

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        default_path: str | os.PathLike[str],
        inherited_url: str | None = None,
        inherited_setting: str = "",
        inherited_table: str | None = None,
        tenant: str | None = None,
        extra: str = "sync-common[postgres]",
    ) -> RunStoreSettings:
        """Choose the run store: ``run_store_url`` wins, then the other settings in order.

        After ``run_store_url`` come the folder ``run_store_path`` (chosen on purpose, e.g. a kept
        volume), then ``inherited_url`` (a Fortnox plugin's ``token_store_url``, whose rows go to
        ``inherited_table``), then the folder ``default_path``.
        """
        url = _text(config.get("run_store_url"))
        own_path = _text(config.get("run_store_path"))
        setting, table = "run_store_url", None
        if url is None and own_path is None and inherited_url:
            url, setting, table = inherited_url, inherited_setting, inherited_table
        path = Path(own_path or default_path).expanduser()
        persists = config.get("run_store_path_persists")
        if isinstance(persists, str):  # from the environment: "true"/"false"
            persists = persists.strip().lower() in ("1", "true", "yes", "on")
        return cls(
            path=path,
            url=url,
            url_setting=setting,
            table=table,
            tenant=tenant,
            persists=None if persists is None else bool(persists),
            extra=extra,
        )

    def open(self, environ: Mapping[str, str] | None = None) -> RunStore:
        """The store, after :func:`refuse_unless_persistent` (``environ``: the process's)."""
        store: RunStore
        if self.url:
            store = PostgresRunStore(
                self.url,
                setting=self.url_setting,
                table=self.table,
                tenant=self.tenant,
                extra=self.extra,
            )
        else:
            store = FileRunStore(self.path)
        refuse_unless_persistent(store, self.persists, os.environ if environ is None else environ)
        return store


def run_store_settings_schema() -> dict[str, Any]:
    """The run-store settings as a JSON-schema fragment.

    They are ``run_store_path``, ``run_store_url`` and ``run_store_path_persists``;
    plugins give ``run_store_path`` and ``run_store_url`` their own default wording.
    """
    return {
        "type": "object",
        "properties": {
            "run_store_path": {
                "type": ["string", "null"],
                "description": "Folder of the run store (dead letters and what else must survive "
                "a run); keep it on a disk that outlives the worker",
            },
            "run_store_url": {
                "type": ["string", "null"],
                "description": "PostgreSQL URL of the run store "
                "(postgresql://user:password@host/db?tenant=NAME); wins over run_store_path",
                "secret": True,
                "writeOnly": True,
            },
            "run_store_path_persists": {
                "type": ["boolean", "null"],
                "description": "Whether run_store_path survives the worker: false refuses a "
                "folder store (use run_store_url), true accepts it; unset refuses it when "
                "Meltano's state is kept elsewhere (README 'Where dead letters are kept')",
            },
        },
    }


# -- the refusal rule ---------------------------------------------------------------------------


def remote_state_backend(environ: Mapping[str, str]) -> str | None:
    """Where Meltano keeps state when that is not this machine's disk, else None.

    Read from the variables Meltano passes to the plugins it runs (its own environment).
    """
    uri = (environ.get("MELTANO_STATE_BACKEND_URI") or "systemdb").strip()
    if uri == "systemdb":
        database = (environ.get("MELTANO_DATABASE_URI") or "").strip()
        if database and not database.startswith("sqlite"):
            return f"Meltano's system database {_redacted(database)} (MELTANO_DATABASE_URI)"
        return None
    if uri.startswith("file:"):
        return None
    return f"{_redacted(uri)} (MELTANO_STATE_BACKEND_URI)"


def refuse_unless_persistent(
    store: RunStore, persists: bool | None, environ: Mapping[str, str]
) -> None:
    """Raise :class:`RunStoreNotPersistent` when ``store`` may not survive the run (module doc)."""
    if not isinstance(store, FileRunStore) or persists is True:
        return
    if persists is False:
        reason = "run_store_path_persists is false (this worker's disk does not survive the run)"
    else:
        remote = remote_state_backend(environ)
        if remote is None:
            return
        reason = f"Meltano keeps the state in {remote}, which outlives this machine"
    raise RunStoreNotPersistent(
        f"Refusing to start: {reason}, but the run store (dead letters: records whose bookmark "
        f"has already moved on) is the local folder {store.root.absolute()}. If that folder is "
        "lost with the worker, those records are lost for good. Set run_store_url to a "
        "PostgreSQL database (a Fortnox plugin uses token_store_url when it is set), or set "
        "run_store_path_persists to true if the folder is on a disk that is kept (a mounted "
        "volume)."
    )


def json_document(text: str) -> dict[str, Any]:
    """A JSON object document (``{}`` when empty); ValueError when it is not one."""
    if not text.strip():
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _redacted(uri: str) -> str:
    parts = urlsplit(uri)
    if not parts.scheme:
        return "(unparsable URI)"
    return postgres.display_url(uri) if parts.netloc else f"{parts.scheme}:"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
