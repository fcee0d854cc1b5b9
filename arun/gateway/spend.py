"""The spend log: one row per request, written to the store in batches off the request path.

Rows are queued in memory and written every ``interval`` seconds (or as soon as ``batch``
rows wait) in one transaction, which also adds their prices to the keys' ``spent_e7``.  A
write that fails (the store is down) is retried at the next tick with the same rows; the
store skips rows it already has, so a retried batch never charges twice.  At most
``max_pending`` rows wait; beyond that the oldest are dropped and counted (a store outage
must not grow the gateway's memory without bound).  :meth:`aclose` writes what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from arun.manager.store import SpendRecord
from arun.redact import redact

__all__ = ["SpendLog"]

log = logging.getLogger("arun.gateway")


class SpendLog:
    def __init__(self, store: Any, *, interval: float = 0.5, batch: int = 500, max_pending: int = 100_000) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.max_pending = max_pending
        self._rows: deque[SpendRecord] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.failures = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="arun-gateway-spend-log")

    def add(self, row: SpendRecord) -> None:
        rows = self._rows
        if len(rows) >= self.max_pending:
            rows.popleft()
            self.dropped += 1
        rows.append(row)
        if len(rows) >= self.batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def flush(self) -> None:
        """Write every queued row now (raises the store's error when it fails; the rows stay queued)."""
        async with self._lock:
            while self._rows:
                part = [self._rows[i] for i in range(min(self.batch, len(self._rows)))]
                await self.store.add_spend(part)
                for _ in part:
                    self._rows.popleft()
                self.written += len(part)

    async def _run(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - keep the rows, try again at the next tick
                self.failures += 1
                log.warning("spend log write failed (%d rows kept): %s", len(self._rows), redact(str(exc)))

    async def aclose(self) -> None:
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task  # not cancelled: a write in flight finishes (cancelling it could leave a transaction open)
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - shutting down: say what was lost
            log.error("spend log: %d rows could not be written at shutdown: %s", len(self._rows), redact(str(exc)))
