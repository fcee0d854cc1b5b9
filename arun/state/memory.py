"""In-process :class:`~arun.state.base.StateStore` (the embedded default).

Every operation runs to completion without awaiting, so under asyncio each
call is atomic, like one Lua script on Redis.  Time is the monotonic clock;
expiry is checked on access and expired entries are swept now and then, so
memory stays bounded by the live scopes and cooldowns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from arun.state.base import LB_INDEX_TTL, LB_INDEX_WRAP, ConfigState

__all__ = ["MemoryStateStore"]

_SWEEP_MIN = 1024


class MemoryStateStore:
    """State for one process.  ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        # scope -> [counter, expires_at]
        self._index: dict[str, list[float]] = {}
        # (scope, config_id) -> (until, reason)
        self._cool: dict[tuple[str, str], tuple[float, str]] = {}
        self._sweep_at = _SWEEP_MIN

    async def lb_pick(self, scope: str, config_ids: list[str]) -> tuple[str | None, list[tuple[str, float]]]:
        n = len(config_ids)
        if n == 0:
            return None, []
        now = self._clock()
        entry = self._index.get(scope)
        if entry is None or entry[1] <= now:
            entry = [0, now + LB_INDEX_TTL]
            self._index[scope] = entry
            if len(self._index) >= self._sweep_at:
                self._sweep(now)
        cool = self._cool
        hits: list[tuple[str, float]] = []
        while True:
            idx = int(entry[0]) + 1
            if idx >= LB_INDEX_WRAP:
                idx = 1
            entry[0] = idx
            if idx > n:
                idx %= n
            cid = config_ids[idx - 1]  # idx 0 -> [-1], the last config
            c = cool.get((scope, cid))
            if c is None or c[0] <= now:
                entry[1] = now + LB_INDEX_TTL
                return cid, hits
            hits.append((cid, c[0] - now))
            if len(hits) >= n:
                entry[1] = now + LB_INDEX_TTL
                return None, hits

    async def lb_cooldown(self, scope: str, config_id: str, seconds: float, reason: str = "") -> None:
        now = self._clock()
        until = now + float(seconds)
        key = (scope, config_id)
        cur = self._cool.get(key)
        if cur is not None and cur[0] > now and cur[0] >= until:
            return  # never shorten a running cooldown
        self._cool[key] = (until, reason or "true")
        if len(self._cool) >= self._sweep_at:
            self._sweep(now)

    async def lb_state(self, scope: str, config_ids: list[str]) -> list[ConfigState]:
        now = self._clock()
        wall = self._wall()
        out = []
        for cid in config_ids:
            c = self._cool.get((scope, cid))
            if c is None or c[0] <= now:
                out.append(ConfigState(cid, False))
            else:
                ttl = c[0] - now
                out.append(ConfigState(cid, True, ttl, wall + ttl if math.isfinite(ttl) else None, c[1]))
        return out

    def _sweep(self, now: float) -> None:
        self._index = {k: v for k, v in self._index.items() if v[1] > now}
        self._cool = {k: v for k, v in self._cool.items() if v[0] > now}
        self._sweep_at = max(_SWEEP_MIN, 2 * max(len(self._index), len(self._cool)))

    async def aclose(self) -> None:
        self._index.clear()
        self._cool.clear()

    async def __aenter__(self) -> "MemoryStateStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"MemoryStateStore(scopes={len(self._index)}, cooldowns={len(self._cool)})"
