"""The embedded default store: one aiosqlite connection, zero setup.

The connection runs in autocommit mode (every statement is its own atomic
transaction); an :class:`asyncio.Lock` keeps one statement, transaction or
migration at a time on it.  File databases use WAL and a busy timeout so several
processes can share one file; a quota reservation is one ``BEGIN IMMEDIATE``
transaction, which holds SQLite's write lock from its first statement, so it
cannot overshoot across processes either.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import aiosqlite

from arun.manager.store.base import (
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from arun.manager.store.schema import MIGRATIONS, SCHEMA_VERSION_DDL, render
from arun.manager.store.sql import Execute, Row, SqlStore
from arun.redact import redact

__all__ = ["SqliteStore"]

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\$(\d+)")
_UNAVAILABLE = ("unable to open", "database is locked", "disk i/o", "readonly", "no such file", "disk is full")


@functools.lru_cache(maxsize=512)
def _to_sqlite(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


def _map_error(exc: BaseException) -> StoreError | None:
    msg = redact(str(exc))
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreConflictError(msg) if "UNIQUE" in msg.upper() else StoreError(msg)
    if isinstance(exc, sqlite3.OperationalError) and any(s in msg.lower() for s in _UNAVAILABLE):
        return StoreUnavailableError(f"SQLite database unavailable: {msg}")
    if isinstance(exc, (sqlite3.Error, OSError)):
        return StoreError(f"SQLite error: {msg}")
    if isinstance(exc, ValueError) and "connection" in msg.lower():  # aiosqlite: no active connection
        return StoreUnavailableError(f"SQLite connection closed: {msg}")
    return None


class SqliteStore(SqlStore):
    """``SqliteStore(path)``; ``":memory:"`` for a private in-process database."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def open(self) -> SqliteStore:
        if self.path != ":memory:" and not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):  # noqa: ASYNC240 - once, at open
            raise StoreUnavailableError(f"SQLite database unavailable: directory of {self.path!r} does not exist")
        try:
            pending = aiosqlite.connect(self.path, isolation_level=None)
            # aiosqlite's worker is a non-daemon thread: a store the caller forgets to close
            # would keep the interpreter from exiting. Closing is still the contract.
            worker = getattr(pending, "_thread", None)
            if worker is not None:
                worker.daemon = True
            conn = await pending
        except (sqlite3.Error, OSError, ValueError) as exc:
            await asyncio.sleep(0.01)  # let aiosqlite's worker thread finish stopping on this loop
            raise (_map_error(exc) or StoreError(f"SQLite error: {redact(str(exc))}")) from exc
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            await self._setup(conn)
        except BaseException:
            await self.close()
            raise
        return self

    async def _setup(self, conn: aiosqlite.Connection) -> None:
        try:
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            if self.path != ":memory:":
                await conn.execute("PRAGMA journal_mode = WAL")
            await self._migrate(conn)
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise (_map_error(exc) or StoreError(f"SQLite error: {redact(str(exc))}")) from exc

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with self._lock:
            await conn.execute(render(SCHEMA_VERSION_DDL, "TEXT"))
            for version, statements in MIGRATIONS:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = await conn.execute("SELECT 1 FROM schema_version WHERE version = ?", (version,))
                    if await cur.fetchone() is None:
                        for statement in statements:
                            await conn.execute(render(statement, "TEXT"))
                        await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                    await conn.execute("COMMIT")
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _fetch(self, sql: str, args: Sequence[Any] = (), *, retry: bool = True) -> list[Row]:
        conn = self._conn
        if conn is None:
            raise StoreError("store is closed")
        try:
            async with self._lock:
                return await _run(conn, sql, args)
        except BaseException as exc:
            mapped = _map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def _transaction(self, body: Callable[[Execute], Awaitable[T]]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError("store is closed")

        async def execute(sql: str, args: Sequence[Any]) -> list[Row]:
            return await _run(conn, sql, args)

        try:
            async with self._lock:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    result = await body(execute)
                    await conn.execute("COMMIT")  # a failed COMMIT (busy, I/O) leaves the transaction open: rolled back
                except BaseException:
                    await _rollback_quietly(conn)
                    raise
                return result
        except BaseException as exc:
            mapped = _map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _timestamp(self, value: datetime) -> Any:
        # CURRENT_TIMESTAMP's text form, in UTC: compared as text
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


async def _run(conn: aiosqlite.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    cur = await conn.execute(_to_sqlite(sql), tuple(args))
    rows = await cur.fetchall()
    await cur.close()
    return list(rows)  # type: ignore[arg-type]


async def _rollback_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except (sqlite3.Error, ValueError):  # no transaction left open, or the connection is gone
        pass
