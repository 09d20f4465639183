"""SQLite persistence shared by both sandboxes: a small document store.

Every entity is a JSON document in one table keyed by (entity, key), with its last-modified
timestamp and an insertion sequence in their own indexed columns so that lists page in SQL
(memory stays flat however many records a benchmark seeds). One connection guarded by a lock:
the servers are threaded, SQLite serialises writers anyway, and WAL keeps readers cheap.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Document = dict[str, Any]
_JSON: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    entity   TEXT NOT NULL,
    key      TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    modified TEXT NOT NULL DEFAULT '',
    data     TEXT NOT NULL,
    PRIMARY KEY (entity, key)
);
CREATE INDEX IF NOT EXISTS documents_seq ON documents (entity, seq);
CREATE INDEX IF NOT EXISTS documents_modified ON documents (entity, modified, seq);
CREATE TABLE IF NOT EXISTS kv (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Filter:
    """A condition on a document field, rendered to SQL on ``json_extract``.

    ``op`` is one of ``=``, ``!=``, ``>=``, ``<=``, ``>``, ``<``, ``like`` (case-insensitive
    substring), ``in`` (value is a sequence) or ``null`` / ``notnull`` (value ignored).
    ``field`` may be ``"modified"`` to use the indexed column instead of the JSON body.
    """

    _OPS = frozenset({"=", "!=", ">=", "<=", ">", "<", "like", "in", "null", "notnull"})

    def __init__(self, field: str, op: str, value: Any = None) -> None:
        if op not in self._OPS:
            raise ValueError(f"unknown filter operator {op!r}")
        self.field, self.op, self.value = field, op, value

    def sql(self) -> tuple[str, list[Any]]:
        column = "modified" if self.field == "modified" else "json_extract(data, ?)"
        params: list[Any] = [] if self.field == "modified" else [f"$.{self.field}"]
        if self.op == "null":
            return f"{column} IS NULL", params
        if self.op == "notnull":
            return f"{column} IS NOT NULL", params
        if self.op == "like":
            # SQLite's lower() only folds ASCII; ``casefold`` (registered below) handles å, ä, ö.
            return f"casefold({column}) LIKE ?", [*params, f"%{str(self.value).casefold()}%"]
        if self.op == "in":
            values = list(self.value)
            if not values:
                return "0", []
            marks = ",".join("?" for _ in values)
            return f"{column} IN ({marks})", [*params, *values]
        value = self.value
        if isinstance(value, bool):
            value = int(value)  # json_extract returns 0/1 for JSON booleans
        return f"{column} {self.op} ?", [*params, value]


class Store:
    """Documents by entity and key, persisted in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.create_function(
            "casefold", 1, lambda v: v.casefold() if isinstance(v, str) else v, deterministic=True
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._in_tx = False

    # transactions -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a group of reads and writes atomically (re-entrant)."""
        with self._lock:
            if self._in_tx:
                yield self
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._in_tx = False

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    # documents --------------------------------------------------------------------------------
    def get(self, entity: str, key: str | int) -> Document | None:
        row = self._execute(
            "SELECT data FROM documents WHERE entity = ? AND key = ?", (entity, str(key))
        ).fetchone()
        return json.loads(row[0]) if row else None

    def exists(self, entity: str, key: str | int) -> bool:
        row = self._execute(
            "SELECT 1 FROM documents WHERE entity = ? AND key = ?", (entity, str(key))
        ).fetchone()
        return row is not None

    def put(self, entity: str, key: str | int, doc: Document, modified: str = "") -> None:
        """Insert or replace a document, keeping its original sequence number on replace."""
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._execute(
                """
                INSERT INTO documents (entity, key, seq, modified, data)
                VALUES (?, ?,
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM documents WHERE entity = ?), ?, ?)
                ON CONFLICT (entity, key) DO UPDATE SET modified = excluded.modified,
                                                        data = excluded.data
                """,
                (entity, str(key), entity, modified, data),
            )

    def put_many(self, entity: str, rows: Iterable[tuple[str | int, Document, str]]) -> int:
        """Insert or replace many ``(key, doc, modified)`` in one statement (seeding 100k rows).

        New keys get consecutive sequence numbers in the order given; replaced keys keep theirs.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM documents WHERE entity = ?", (entity,)
            ).fetchone()
            base = int(row[0])
            params = [
                (entity, str(key), base + index, modified, json.dumps(doc, **_JSON))
                for index, (key, doc, modified) in enumerate(rows, start=1)
            ]
            self._db.executemany(
                """
                INSERT INTO documents (entity, key, seq, modified, data) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (entity, key) DO UPDATE SET modified = excluded.modified,
                                                        data = excluded.data
                """,
                params,
            )
            return len(params)

    def delete(self, entity: str, key: str | int) -> bool:
        cursor = self._execute(
            "DELETE FROM documents WHERE entity = ? AND key = ?", (entity, str(key))
        )
        return cursor.rowcount > 0

    def count(self, entity: str, filters: Sequence[Filter] = ()) -> int:
        where, params = self._where(entity, filters)
        sql = f"SELECT COUNT(*) FROM documents WHERE {where}"  # noqa: S608 (values are bound)
        return int(self._execute(sql, params).fetchone()[0])

    def list(
        self,
        entity: str,
        filters: Sequence[Filter] = (),
        *,
        order_by: str = "seq",
        descending: bool = False,
        then_by: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[Document]:
        """Documents matching every filter, ordered by ``seq``, ``modified`` or a JSON field.

        ``then_by`` breaks ties, as ``(field, descending)`` pairs; ``seq`` breaks the rest.
        """
        where, params = self._where(entity, filters)
        terms = []
        for name, desc in ((order_by, descending), *then_by):
            direction = "DESC" if desc else "ASC"
            if name in ("seq", "modified"):
                terms.append(f"{name} {direction}")
            else:
                terms.append(f"json_extract(data, ?) {direction}")
                params.append(f"$.{name}")
        terms.append(f"seq {'DESC' if descending else 'ASC'}")
        # Only column expressions of our own go into the SQL text; every value is a bound parameter.
        sql = f"SELECT data FROM documents WHERE {where} ORDER BY {', '.join(terms)}"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [json.loads(row[0]) for row in self._execute(sql, params).fetchall()]

    def keys(self, entity: str) -> builtins.list[str]:
        rows = self._execute("SELECT key FROM documents WHERE entity = ? ORDER BY seq", (entity,))
        return [row[0] for row in rows.fetchall()]

    def clear(self) -> None:
        with self._lock:
            self._execute("DELETE FROM documents")
            self._execute("DELETE FROM kv")

    @staticmethod
    def _where(entity: str, filters: Sequence[Filter]) -> tuple[str, builtins.list[Any]]:
        clauses: builtins.list[str] = ["entity = ?"]
        params: builtins.list[Any] = [entity]
        for condition in filters:
            clause, values = condition.sql()
            clauses.append(clause)
            params.extend(values)
        return " AND ".join(clauses), params

    # small values (settings, counters, series) ------------------------------------------------
    def get_value(self, name: str, default: Any = None) -> Any:
        row = self._execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_value(self, name: str, value: Any) -> None:
        self._execute(
            "INSERT INTO kv (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, json.dumps(value, ensure_ascii=False)),
        )

    def next_number(self, series: str, start: int = 1) -> int:
        """The next number of a counter series (atomic)."""
        with self.transaction():
            value = int(self.get_value(f"series:{series}", start - 1)) + 1
            self.set_value(f"series:{series}", value)
            return value

    def is_empty(self) -> bool:
        return self._execute("SELECT 1 FROM documents LIMIT 1").fetchone() is None

    def close(self) -> None:
        with self._lock:
            self._db.close()
