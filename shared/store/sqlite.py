"""SQLite backend: the embedded default (stdlib sqlite3, WAL, one connection per thread).

Conditional writes run in ``BEGIN IMMEDIATE`` transactions, which take SQLite's write lock up
front, so they are atomic across threads and across processes sharing the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.exceptions import (
    AlreadyExistsError,
    ConfigError,
    NotFoundError,
    PreconditionFailedError,
    StoreUnavailableError,
)
from shared.store.base import Doc, Expect, Key, QuerySpec, Store, Write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    shop TEXT NOT NULL,
    coll TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL,
    PRIMARY KEY (shop, coll, id)
) WITHOUT ROWID
"""


class SQLiteStore(Store):
    backend = "sqlite"
    max_document_bytes = 1_046_528  # Firestore's limit less its overhead: documents move freely

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self._timeout = timeout
        self._local = threading.local()
        if self.path == ":memory:":
            # Each thread's connection would see its own empty database.
            raise ConfigError("STORE_URL: sqlite needs a file path, not :memory:")
        with self._errors():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn().execute(_SCHEMA)
            # Expired records (rate-limit windows, idempotency keys) are dropped at each start.
            self._conn().execute("DELETE FROM docs WHERE expires_at <= ?", (time.time(),))

    @classmethod
    def from_url(cls, url: str, **_clients: Any) -> SQLiteStore:
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
        return cls(url.removeprefix("sqlite:///"))

    def ping(self) -> None:
        with self._errors():
            self._conn().execute("SELECT count(*) FROM docs WHERE 0").fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- primitives --------------------------------------------------------------------------

    def _get_many(self, keys: Sequence[Key]) -> dict[str, Doc]:
        first = keys[0]
        marks = ",".join("?" * len(keys))
        with self._errors():
            rows = self._conn().execute(
                f"SELECT id, data, version, expires_at FROM docs "
                f"WHERE shop = ? AND coll = ? AND id IN ({marks})",
                [first.shop, first.collection, *(k.id for k in keys)],
            )
            return {row[0]: _doc(row) for row in rows}

    def _write(self, write: Write) -> Doc:
        key = write.key
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT version, expires_at FROM docs WHERE shop = ? AND coll = ? AND id = ?",
                (key.shop, key.collection, key.id),
            ).fetchone()
            live = row is not None and (row[1] is None or row[1] > write.now)
            if write.expect is Expect.ABSENT and live:
                raise AlreadyExistsError(f"{key.collection}/{key.id} exists")
            if write.expect is Expect.VERSION:
                if not live:
                    raise NotFoundError(f"{key.collection}/{key.id} not found")
                if row[0] != write.if_version:
                    raise PreconditionFailedError(f"{key.collection}/{key.id} has changed")
            version = (row[0] if row else 0) + 1
            conn.execute(
                "INSERT OR REPLACE INTO docs (shop, coll, id, data, version, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.shop,
                    key.collection,
                    key.id,
                    json.dumps(write.data),
                    version,
                    write.expires_at,
                ),
            )
        return Doc(key.id, write.data, version, write.expires_at)

    def _put_many(self, writes: Sequence[Write]) -> None:
        # One transaction; the upsert raises each stored version by one, as ``_write`` does.
        rows = [(w.key.shop, w.key.collection, w.key.id, json.dumps(w.data)) for w in writes]
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO docs (shop, coll, id, data, version, expires_at) "
                "VALUES (?, ?, ?, ?, 1, NULL) ON CONFLICT (shop, coll, id) DO UPDATE SET "
                "data = excluded.data, version = docs.version + 1, expires_at = NULL",
                rows,
            )

    def _delete(self, key: Key, if_version: int | None) -> bool:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT version, expires_at FROM docs WHERE shop = ? AND coll = ? AND id = ?",
                (key.shop, key.collection, key.id),
            ).fetchone()
            if row is None:
                return False
            live = row[1] is None or row[1] > time.time()
            if live and if_version is not None and row[0] != if_version:
                raise PreconditionFailedError(f"{key.collection}/{key.id} has changed")
            conn.execute(
                "DELETE FROM docs WHERE shop = ? AND coll = ? AND id = ?",
                (key.shop, key.collection, key.id),
            )
        return live

    def _query(self, spec: QuerySpec) -> list[Doc]:
        sql = [
            "SELECT id, data, version, expires_at FROM docs "
            "WHERE shop = ? AND coll = ? AND (expires_at IS NULL OR expires_at > ?)"
        ]
        params: list[Any] = [spec.shop, spec.collection, spec.now]
        for field, value in spec.where.items():
            path = f"'$.{field}'"
            if isinstance(value, bool):
                sql.append(f"AND json_type(data, {path}) = ?")
                params.append("true" if value else "false")
            else:
                types = ("text",) if isinstance(value, str) else ("integer", "real")
                marks = ",".join("?" * len(types))
                sql.append(
                    f"AND json_type(data, {path}) IN ({marks}) AND json_extract(data, {path}) = ?"
                )
                params.extend([*types, value])
        order = f"json_extract(data, '$.{spec.order_by}')" if spec.order_by else "id"
        if spec.order_by:
            sql.append(f"AND {order} IS NOT NULL")
        if spec.after is not None:
            sql.append(f"AND ({order}, id) {'<' if spec.descending else '>'} (?, ?)")
            params.extend(spec.after)
        direction = "DESC" if spec.descending else "ASC"
        sql.append(f"ORDER BY {order} {direction}, id {direction} LIMIT ?")
        params.append(spec.limit)
        with self._errors():
            return [_doc(row) for row in self._conn().execute(" ".join(sql), params)]

    def _increment(
        self, key: Key, field: str, amount: int, expires_at: float | None, now: float
    ) -> int:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT data, version, expires_at FROM docs WHERE shop = ? AND coll = ? AND id = ?",
                (key.shop, key.collection, key.id),
            ).fetchone()
            live = row is not None and (row[2] is None or row[2] > now)
            data = json.loads(row[0]) if live else {}
            value = int(data.get(field, 0)) + amount
            data[field] = value
            conn.execute(
                "INSERT OR REPLACE INTO docs (shop, coll, id, data, version, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.shop,
                    key.collection,
                    key.id,
                    json.dumps(data),
                    (row[1] if row else 0) + 1,
                    row[2] if live else expires_at,
                ),
            )
        return value

    # --- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"sqlite: {exc.__class__.__name__}: {exc}") from exc


def _doc(row: tuple[str, str, int, float | None]) -> Doc:
    return Doc(id=row[0], data=json.loads(row[1]), version=row[2], expires_at=row[3])
