"""What a SQL backend supplies to the portable SQL of :mod:`arun.manager.store.sql` and
:mod:`arun.manager.store.keys_sql`: one statement (:meth:`SqlBackend._fetch`), several in one
transaction (:meth:`SqlBackend._transaction`), and how a datetime binds against a timestamp column.

Statements use ``$n`` placeholders (asyncpg's); the SQLite store rewrites them to ``?n``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from arun.manager.store.base import to_utc

__all__ = ["SqlBackend", "Row", "Execute"]

Row = Mapping[str, Any]
#: Runs one statement inside a :meth:`SqlBackend._transaction`.
Execute = Callable[[str, Sequence[Any]], Awaitable[list[Row]]]
T = TypeVar("T")


class SqlBackend(ABC):
    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any] = (), *, retry: bool = True) -> list[Row]:
        """Run one statement (atomic by itself); driver errors map to :class:`StoreError` /
        :class:`StoreUnavailableError`, and an idempotent statement (``retry``) may be retried
        once after a lost connection."""

    @abstractmethod
    async def _transaction(self, body: Callable[[Execute], Awaitable[T]]) -> T:
        """Run ``body(execute)`` in one transaction on one connection, committed when it returns.

        Driver errors map as in :meth:`_fetch`; a connection lost while the COMMIT was in
        flight raises :class:`StoreUnavailableError` with ``commit_unknown=True``.
        """

    def _timestamp(self, value: datetime) -> Any:
        """A datetime as the driver binds it against a timestamp column."""
        return to_utc(value)

    async def _fetchrow(self, sql: str, args: Sequence[Any] = (), *, retry: bool = True) -> Row | None:
        rows = await self._fetch(sql, args, retry=retry)
        return rows[0] if rows else None
