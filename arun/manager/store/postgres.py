"""PostgreSQL store on an asyncpg pool.

* Every operation is one statement on one pooled connection (atomic by itself),
  except the quota reservations: one transaction each, rows locked ``FOR NO KEY
  UPDATE`` (reservation, then provider row: one order everywhere, no deadlock).
* A lost connection (server restart, ``pg_terminate_backend``, network cut) is
  reported as :class:`StoreUnavailableError`; the dead connection is terminated
  (never handed back to the pool) and the pool opens a fresh one on the next
  acquire, so the store recovers as soon as the server is back.  Idempotent
  statements (reads, upserts, deletes) are retried once on a fresh connection;
  ``create_tenant`` and ``add_lb_config`` are not, since a lost COMMIT
  acknowledgement would otherwise apply them twice.  Quota transactions are
  idempotent by reservation id and retried (see :mod:`arun.manager.store.sql`).
* Migrations run under ``pg_advisory_xact_lock`` inside one transaction each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import asyncpg.exceptions as pgx

from arun.manager.store.base import (
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from arun.manager.store.schema import MIGRATIONS, SCHEMA_VERSION_DDL, render
from arun.manager.store.sql import Execute, Row, SqlStore
from arun.redact import redact

__all__ = ["PostgresStore"]

T = TypeVar("T")

_MIGRATION_LOCK = 0x6172756E  # "arun"
_LOST = (
    OSError,
    asyncio.TimeoutError,
    pgx.ConnectionDoesNotExistError,
    pgx.PostgresConnectionError,
    pgx.OperatorInterventionError,  # admin shutdown / terminate backend / cannot connect now
    pgx.InsufficientResourcesError,  # too many connections, out of memory / disk
)


def _map_error(exc: BaseException) -> StoreError | None:
    msg = redact(str(exc)) or exc.__class__.__name__
    if isinstance(exc, _LOST):
        return StoreUnavailableError(f"PostgreSQL unavailable: {msg}")
    if isinstance(exc, pgx.InternalClientError) or (isinstance(exc, pgx.InterfaceError) and "closed" in msg):
        # a connection whose protocol state broke when the server went away under it
        return StoreUnavailableError(f"PostgreSQL connection lost: {msg}")
    if isinstance(exc, pgx.UniqueViolationError):
        return StoreConflictError(msg)
    if isinstance(exc, (pgx.PostgresError, pgx.InterfaceError, pgx.InternalClientError)):
        return StoreError(f"PostgreSQL error: {msg}")
    return None


class PostgresStore(SqlStore):
    """``PostgresStore(dsn)``; call :meth:`open` (or use :func:`open_store`)."""

    _ROW_LOCK = " FOR NO KEY UPDATE"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 5.0, command_timeout: float = 30.0) -> None:
        self._dsn = dsn
        self._pool_args = {"min_size": min_size, "max_size": max_size, "timeout": connect_timeout, "command_timeout": command_timeout}
        self._acquire_timeout = connect_timeout + command_timeout
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return "PostgresStore(...)"  # the DSN may hold a password

    async def open(self) -> PostgresStore:
        try:
            self._pool = await asyncpg.create_pool(self._dsn, **self._pool_args)
        except BaseException as exc:
            mapped = _map_error(exc)
            if mapped is None:
                raise
            raise mapped from None
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        return self

    async def _migrate(self) -> None:
        assert self._pool is not None
        try:
            async with self._pool.acquire() as con:
                await con.execute(render(SCHEMA_VERSION_DDL, "TIMESTAMPTZ"))
                for version, statements in MIGRATIONS:
                    async with con.transaction():
                        await con.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                        if await con.fetchval("SELECT 1 FROM schema_version WHERE version = $1", version):
                            continue
                        for statement in statements:
                            await con.execute(render(statement, "TIMESTAMPTZ"))
                        await con.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        except BaseException as exc:
            mapped = _map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (asyncio.TimeoutError, OSError, pgx.InterfaceError):
                pool.terminate()

    async def _fetch(self, sql: str, args: Sequence[Any] = (), *, retry: bool = True) -> list[Row]:
        pool = self._pool
        if pool is None:
            raise StoreError("store is closed")
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                async with pool.acquire(timeout=self._acquire_timeout) as con:
                    return await self._on(con, sql, args)
            except BaseException as exc:
                mapped = _map_error(exc)
                if mapped is None:
                    raise
                if isinstance(mapped, StoreUnavailableError):
                    # the server went away: every pooled connection is suspect, replace them all
                    await pool.expire_connections()
                    if attempt + 1 < attempts:
                        continue
                raise mapped from exc
        raise AssertionError("unreachable")

    async def _transaction(self, body: Callable[[Execute], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise StoreError("store is closed")
        committing = False
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as con:

                async def execute(sql: str, args: Sequence[Any]) -> list[Row]:
                    return await self._on(con, sql, args)

                tx = con.transaction()
                await tx.start()
                try:
                    result = await body(execute)
                except BaseException:
                    await _rollback_quietly(tx)
                    raise
                committing = True
                try:
                    await tx.commit()
                except BaseException as exc:
                    if isinstance(_map_error(exc), StoreUnavailableError):
                        _discard(con)
                    raise
                return result
        except BaseException as exc:
            mapped = _map_error(exc)
            if mapped is None:
                raise
            if isinstance(mapped, StoreUnavailableError):
                mapped.commit_unknown = committing
                await pool.expire_connections()
            raise mapped from exc

    @staticmethod
    async def _on(con: asyncpg.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
        try:
            return list(await con.fetch(sql, *args))
        except BaseException as exc:
            if isinstance(_map_error(exc), StoreUnavailableError):
                _discard(con)  # never hand a broken connection back to the pool
            raise


def _discard(con: asyncpg.Connection) -> None:
    """Terminate a connection whose server side is gone or whose protocol state broke.

    When asyncpg noticed the loss itself it has already closed the connection and released
    it to the pool, and the pool's proxy then refuses every call (``is_closed()`` included,
    with "connection has been released back to the pool"): nothing is left to do then.
    """
    try:
        con.terminate()
    except pgx.InterfaceError:
        pass


async def _rollback_quietly(tx: Any) -> None:
    """Roll back after a failure in a transaction; a dead connection has rolled back on the server already."""
    try:
        await tx.rollback()
    except (pgx.PostgresError, pgx.InterfaceError, pgx.InternalClientError, OSError, asyncio.TimeoutError):
        pass
