"""Per-key budgets in currency: reserved atomically before a call, settled with the real price after it.

Admission is ``spent + reserved + estimate <= budget``, checked and reserved in one atomic
step, so concurrent requests -- in one process or in many sharing one Redis -- cannot together
overshoot: the overshoot is bounded by how much one request's real price exceeds its estimate.
Every reservation has an id (the request id): reserving the same id again returns the
recorded answer, settling or releasing it twice changes nothing, so a retry after a lost
connection never charges twice (the same idea as the store's quota reservations).  A
reservation whose process died stops holding budget after ``lease`` seconds.

Backends: :class:`MemoryBudgets` (one process: one synchronous step of the event loop) and
:class:`RedisBudgets` (one Lua script per decision, Redis ``TIME`` as the clock).  The
durable record is the store: settled prices go into the spend log and the key's
``spent_e7`` (written in batches by :mod:`arun.gateway.spend`); a key the backend has not
seen yet (first use, a restarted Redis) is seeded from the store's ``spent_e7``, which may lag
by the spend log's flush interval.  Amounts are integer units of 1e-7 of the currency.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from arun.state.redis import LuaScript, unavailable

__all__ = ["Budgets", "MemoryBudgets", "RedisBudgets"]

Seed = Callable[[], Awaitable[int]]


class Budgets(Protocol):
    async def reserve(self, key_id: str, rid: str, estimate: int, budget: int, seed: Seed) -> tuple[bool, int, int]:
        """Reserve ``estimate`` if ``spent + reserved + estimate <= budget``: (admitted, spent, reserved)."""
        ...

    async def settle(self, key_id: str, rid: str, actual: int) -> bool:
        """Replace the reservation by the real price; False when it was not open (settled, released, expired)."""
        ...

    async def usage(self, key_id: str) -> tuple[int, int] | None:
        """(spent, reserved) as the backend sees it, None when it has not seen the key."""
        ...

    async def aclose(self) -> None: ...


class _Entry:
    __slots__ = ("spent", "reserved", "open")

    def __init__(self, spent: int) -> None:
        self.spent = spent
        self.reserved = 0
        self.open: dict[str, tuple[int, float]] = {}  # rid -> (amount, expires)


class MemoryBudgets:
    """Budgets of one process."""

    def __init__(self, lease: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self._clock = clock
        self._keys: dict[str, _Entry] = {}

    async def reserve(self, key_id: str, rid: str, estimate: int, budget: int, seed: Seed) -> tuple[bool, int, int]:
        entry = self._keys.get(key_id)
        if entry is None:
            spent = await seed()
            entry = self._keys.setdefault(key_id, _Entry(spent))
        # from here on no await: atomic under asyncio
        now = self._clock()
        held = entry.open
        # one lease and a monotonic clock: reservations expire in the order they were made, so the sweep
        # stops at the first one still held (not a pass over every request in flight)
        while held:
            oldest = next(iter(held))
            amount, expires = held[oldest]
            if expires > now:
                break
            del held[oldest]
            entry.reserved -= amount
        if rid in held:
            return True, entry.spent, entry.reserved
        if entry.spent + entry.reserved + estimate > budget:
            return False, entry.spent, entry.reserved
        held[rid] = (estimate, now + self.lease)
        entry.reserved += estimate
        return True, entry.spent, entry.reserved

    async def settle(self, key_id: str, rid: str, actual: int) -> bool:
        entry = self._keys.get(key_id)
        if entry is None:
            return False
        got = entry.open.pop(rid, None)
        if got is None:
            return False
        entry.reserved -= got[0]
        entry.spent += max(0, actual)
        return True

    async def usage(self, key_id: str) -> tuple[int, int] | None:
        entry = self._keys.get(key_id)
        return None if entry is None else (entry.spent, entry.reserved)

    async def aclose(self) -> None:
        self._keys.clear()


# KEYS: hash {spent, reserved}, zset rid -> expiry ms, hash rid -> amount.
# ARGV: rid, estimate, budget, lease ms.  -> {admitted (1/0, -1 = not seeded), spent, reserved}
_RESERVE = """
if redis.call('HEXISTS', KEYS[1], 'spent') == 0 then return {-1, 0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, r in ipairs(stale) do
  local amt = tonumber(redis.call('HGET', KEYS[3], r) or '0')
  redis.call('HINCRBY', KEYS[1], 'reserved', -amt)
  redis.call('HDEL', KEYS[3], r)
  redis.call('ZREM', KEYS[2], r)
end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent'))
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {1, spent, reserved} end
local est = tonumber(ARGV[2])
if spent + reserved + est > tonumber(ARGV[3]) then return {0, spent, reserved} end
redis.call('HINCRBY', KEYS[1], 'reserved', est)
redis.call('HSET', KEYS[3], ARGV[1], est)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
return {1, spent, reserved + est}
"""

# KEYS as above; ARGV: rid, actual.  -> 1 settled, 0 not open
_SETTLE = """
local amt = redis.call('HGET', KEYS[3], ARGV[1])
if not amt then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(amt))
redis.call('HINCRBY', KEYS[1], 'spent', tonumber(ARGV[2]))
return 1
"""

# KEYS[1]: hash; ARGV: spent from the store.  Seeds only a key Redis does not know.
_SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then redis.call('HSET', KEYS[1], 'reserved', 0) end
return 1
"""


_R, _S, _D = LuaScript(_RESERVE), LuaScript(_SETTLE), LuaScript(_SEED)


class RedisBudgets:
    """Budgets shared by every process on one Redis (keys ``{prefix}gw:budget:{key id}[:res|:amt]``)."""

    def __init__(self, client: Any, prefix: str = "", lease: float = 600.0) -> None:
        self._r = client
        self.prefix = prefix
        self.lease_ms = int(lease * 1000)

    def _keys(self, key_id: str) -> list[str]:
        base = f"{self.prefix}gw:budget:{key_id}"
        return [base, base + ":res", base + ":amt"]

    async def _eval(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        return await script.run(self._r, keys, args, what="budget store")

    async def reserve(self, key_id: str, rid: str, estimate: int, budget: int, seed: Seed) -> tuple[bool, int, int]:
        keys = self._keys(key_id)
        args = [rid, int(estimate), int(budget), self.lease_ms]
        res = await self._eval(_R, keys, args)
        if int(res[0]) == -1:
            await self._eval(_D, keys[:1], [int(await seed())])
            res = await self._eval(_R, keys, args)
        return int(res[0]) == 1, int(res[1]), int(res[2])

    async def settle(self, key_id: str, rid: str, actual: int) -> bool:
        return int(await self._eval(_S, self._keys(key_id), [rid, max(0, int(actual))])) == 1

    async def usage(self, key_id: str) -> tuple[int, int] | None:
        from redis.exceptions import RedisError

        try:
            got = await self._r.hmget(self._keys(key_id)[0], ["spent", "reserved"])
        except (RedisError, OSError) as exc:
            raise unavailable(exc, "budget store") from exc
        if got[0] is None:
            return None
        return int(got[0]), int(got[1] or 0)

    async def aclose(self) -> None:
        return None  # the client belongs to the state store
