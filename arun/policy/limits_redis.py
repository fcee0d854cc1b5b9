"""Redis :class:`~arun.policy.limits.Limiter`: one limit shared by every process.

Each decision is one Lua script (EVALSHA, EVAL on NOSCRIPT) that prunes the
key's sliding-window log, checks requests / tokens / in-flight / a learned
block, and either reserves or answers "wait N ms" -- atomically, on Redis's
own clock (``TIME``), so processes on different hosts agree on the window.

Keys (``{...}`` is a cluster hash tag, so one key's state lives on one slot)::

    {prefix}arun:limit:{<key>}:w   ZSET  reservation id -> grant time (ms)
    {prefix}arun:limit:{<key>}:t   HASH  reservation id -> tokens charged
    {prefix}arun:limit:{<key>}:u   STR   sum of the tokens in :t
    {prefix}arun:limit:{<key>}:f   ZSET  in-flight permit id -> lease expiry (ms)
    {prefix}arun:limit:{<key>}:b   STR   header block reason, PX = block length
    {prefix}arun:limit:{<key>}:l   HASH  learned rpm / tpm (per window), 1 h TTL

In-flight slots are leases: a process that dies holding permits frees them
when the lease (``lease`` seconds, default 600) runs out, and every key
expires shortly after its last use.  Redis failures raise
:class:`~arun.state.StateUnavailableError`.

Waiting is :class:`~arun.policy.limits_core.LimiterCore`'s: in each process
the head of a key's FIFO queue talks to Redis; it sleeps exactly until the
reservation that blocks it leaves the window (request limit, header block), or
polls every ``poll`` seconds (token limit, where other processes' refunds may
free capacity early; in-flight limit), and is woken at once by releases and
refunds made in its own process.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from arun.policy.limits_core import CallLater, Clock, Denied, KeyState, LimiterCore, Permit
from arun.policy.limits_spec import DEFAULT_WINDOW, LimitSpec, LimitState, stricter
from arun.protocols.errors import RateLimitHeaders
from arun.state.base import StateUnavailableError
from arun.state.redis import SET_UNLESS_LONGER, LuaScript, client_from_url, unavailable as state_unavailable

__all__ = ["RedisLimiter"]

# Prune the log: drop reservations granted at or before now - window, and
# their tokens from the running sum.  Leaves `now`, `W`, `used` in scope.
_PRUNE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local W = tonumber(ARGV[1])
local cutoff = string.format('%.3f', now - W)
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local pruned = false
while true do
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, 500)
  if #old == 0 then break end
  local toks = redis.call('HMGET', KEYS[2], unpack(old))
  for i = 1, #toks do used = used - (tonumber(toks[i]) or 0) end
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('ZREM', KEYS[1], unpack(old))
  pruned = true
  if #old < 500 then break end
end
if used < 0 then used = 0 end
if pruned then
  if redis.call('ZCARD', KEYS[1]) == 0 then used = 0 end
  redis.call('SET', KEYS[3], used, 'PX', math.floor(W) + 1000)
end
local lr = redis.call('HMGET', KEYS[6], 'rpm', 'tpm')
"""

# KEYS: w t u f b l.  ARGV: window_ms, rpm, tpm, max_in_flight (-1 = none),
# tokens, reservation id, lease_ms.
# Returns {1, now_ms, recorded (0/1)} or {0, wait_ms (-1 never, -2 unknown), reason, detail}.
_ACQUIRE_LUA = _PRUNE + """
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local mif = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
if lr[1] then local v = tonumber(lr[1]); if rpm < 0 or v < rpm then rpm = v end end
if lr[2] then local v = tonumber(lr[2]); if tpm < 0 or v < tpm then tpm = v end end
if tpm >= 0 and tokens > tpm then return {0, -1, 'too_large', tostring(tpm)} end
local bl = redis.call('PTTL', KEYS[5])
if bl > 0 then return {0, bl, 'blocked', redis.call('GET', KEYS[5]) or ''} end
local count = redis.call('ZCARD', KEYS[1])
if rpm >= 0 and count >= rpm then
  local e = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
  return {0, math.max(1, math.ceil(tonumber(e[2]) + W - now)), 'rpm', tostring(rpm)}
end
if tpm >= 0 then
  if used + tokens > tpm then
    local left = used
    local start = 0
    while true do
      local e = redis.call('ZRANGE', KEYS[1], start, start + 199, 'WITHSCORES')
      if #e == 0 then break end
      local ids = {}
      for i = 1, #e, 2 do ids[#ids + 1] = e[i] end
      local toks = redis.call('HMGET', KEYS[2], unpack(ids))
      for i = 1, #ids do
        left = left - (tonumber(toks[i]) or 0)
        if left + tokens <= tpm then
          return {0, math.max(1, math.ceil(tonumber(e[2 * i]) + W - now)), 'tpm', tostring(tpm)}
        end
      end
      start = start + 200
    end
    return {0, math.ceil(W), 'tpm', tostring(tpm)}
  end
end
if mif >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('%.3f', now))
  if redis.call('ZCARD', KEYS[4]) >= mif then return {0, -2, 'in_flight', tostring(mif)} end
end
local recorded = 0
if rpm >= 0 or tpm >= 0 then
  recorded = 1
  local ttl = math.floor(W) + 1000
  redis.call('ZADD', KEYS[1], string.format('%.3f', now), ARGV[6])
  redis.call('HSET', KEYS[2], ARGV[6], tokens)
  redis.call('SET', KEYS[3], used + tokens, 'PX', ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if mif >= 0 then
  local lease = tonumber(ARGV[7])
  redis.call('ZADD', KEYS[4], string.format('%.3f', now + lease), ARGV[6])
  redis.call('PEXPIRE', KEYS[4], lease + 1000)
end
return {1, math.floor(now), recorded}
"""

# KEYS: t u.  ARGV: reservation id, actual tokens.  Returns the change (0 once expired).
_SETTLE_LUA = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local d = tonumber(ARGV[2]) - tonumber(old)
if d ~= 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('INCRBY', KEYS[2], d)
end
return d
"""

# KEYS: w t u f b l.  ARGV: window_ms.  Returns {count, used, in_flight, block_ms, reason, lrpm, ltpm}.
_SNAPSHOT_LUA = _PRUNE + """
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('%.3f', now))
return {redis.call('ZCARD', KEYS[1]), math.floor(used), redis.call('ZCARD', KEYS[4]),
        redis.call('PTTL', KEYS[5]), redis.call('GET', KEYS[5]) or '', lr[1] or '', lr[2] or ''}
"""

_ACQUIRE = LuaScript(_ACQUIRE_LUA)
_SETTLE = LuaScript(_SETTLE_LUA)
_SNAPSHOT = LuaScript(_SNAPSHOT_LUA)

_LEARNED_TTL_MS = 3_600_000


def _unavailable(exc: BaseException) -> StateUnavailableError:
    return state_unavailable(exc, "limiter")


class _Keys(KeyState):
    """This process's view of one key, plus the names of its Redis keys (w t u f b l)."""

    __slots__ = ("keys",)

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = keys


class _Lease(NamedTuple):
    """A granted reservation: its id, and whether it sits in the window log / the in-flight set."""

    member: str
    in_window: bool
    in_flight: bool


class RedisLimiter(LimiterCore[_Keys, _Lease]):
    """Limits in Redis.  Build with :meth:`from_url` or hand over a client."""

    def __init__(self, client: "aioredis.Redis", *, prefix: str = "", window: float = DEFAULT_WINDOW,
                 lease: float = 600.0, poll: float = 0.05, margin: float = 0.0,
                 clock: Clock = time.monotonic, call_later: CallLater | None = None) -> None:
        super().__init__(window=window, margin=margin, clock=clock, call_later=call_later)
        self._r = client
        self.prefix = prefix
        self.lease = float(lease)
        self.poll = float(poll)
        self._window_ms = round((self.window + self.margin) * 1000)
        self._lease_ms = round(self.lease * 1000)
        self._ids = itertools.count()
        self._id_prefix = f"{os.getpid():x}.{os.urandom(4).hex()}."
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "RedisLimiter":
        """``redis://host:port/db?prefix=...&window=60&margin=0&lease=600&poll=0.05`` (plus redis-py
        options; the pool's defaults: :func:`arun.state.redis.client_from_url`).  Keywords win over
        the URL's options."""
        own: dict[str, Any] = {}
        for name in ("prefix", "window", "lease", "poll", "margin", "clock", "call_later"):
            if name in kwargs:
                own[name] = kwargs.pop(name)
        client, options = client_from_url(url, ("prefix", "window", "lease", "poll", "margin"), **kwargs)
        for k, v in options.items():
            own.setdefault(k, v if k == "prefix" else float(v))
        return cls(client, **own)

    @property
    def client(self) -> "aioredis.Redis":
        return self._r

    def _new_state(self, key: str) -> _Keys:
        base = f"{self.prefix}arun:limit:{{{key}}}:"
        return _Keys([base + s for s in ("w", "t", "u", "f", "b", "l")])

    async def _eval(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        return await script.run(self._r, keys, args, what="limiter")

    # -- the primitives -----------------------------------------------------------------
    async def _reserve(self, key: str, st: _Keys, rpm: int | None, tpm: int | None, max_in_flight: int | None,
                       tokens: int, now: float) -> Permit | Denied:
        member = self._id_prefix + str(next(self._ids))
        try:
            res = await self._eval(_ACQUIRE, st.keys, [
                self._window_ms, -1 if rpm is None else rpm, -1 if tpm is None else tpm,
                -1 if max_in_flight is None else max_in_flight, tokens, member, self._lease_ms,
            ])
        except asyncio.CancelledError:
            # The script may have granted: give the in-flight slot back (the window entry stays; conservative).
            if max_in_flight is not None:
                self._spawn(self._r.zrem(st.keys[3], member))
            raise
        if int(res[0]) == 1:
            lease = _Lease(member, int(res[2]) == 1, max_in_flight is not None)
            return Permit(self, st, key, tokens, lease, granted_at=int(res[1]) / 1000.0)
        wait_ms = int(res[1])
        reason, limit = str(res[2]), str(res[3])
        if reason == "too_large":
            detail = f"{tokens} tokens > tpm {limit}"
        elif reason == "blocked":
            detail = limit  # the header that set the block
        else:
            detail = f"limit {limit}"
        return Denied(reason, None if wait_ms < 0 else wait_ms / 1000.0, detail)

    async def _settle(self, st: _Keys, ticket: _Lease, actual: int) -> int | None:
        if not ticket.in_window:
            return None
        return int(await self._eval(_SETTLE, [st.keys[1], st.keys[2]], [ticket.member, actual]))

    async def _release(self, st: _Keys, ticket: _Lease) -> bool:
        if not ticket.in_flight:
            return False
        try:
            await self._r.zrem(st.keys[3], ticket.member)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return True

    def _share(self, st: _Keys, info: RateLimitHeaders, learned: dict[str, int]) -> None:
        if info.block_for > 0:
            ms = max(1, math.ceil(info.block_for * 1000))
            # never shortens a block another process set
            self._spawn(self._eval(SET_UNLESS_LONGER, [st.keys[4]], [ms, info.reason or "blocked"]))
        if learned:
            self._spawn(self._learn(st.keys[5], learned))

    async def _learn(self, key: str, learned: dict[str, int]) -> None:
        try:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=dict(learned))  # type: ignore[arg-type,unused-ignore]
                pipe.pexpire(key, _LEARNED_TTL_MS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    # -- background writes ---------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # consumed: a failed background write is not fatal

    async def flush(self) -> None:
        """Wait until what :meth:`observe` writes in the background (blocks, learned limits) is in Redis."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the operator's view -------------------------------------------------------------
    async def snapshot(self, key: str, spec: LimitSpec) -> LimitState:
        st = self._states.get(key) or self._new_state(key)
        res = await self._eval(_SNAPSHOT, st.keys, [self._window_ms])
        # the limits headers taught any process (kept in Redis), not only this one
        rpm = stricter(spec.rpm, int(float(res[5])) if res[5] != "" else None)
        tpm = stricter(spec.tpm, int(float(res[6])) if res[6] != "" else None)
        return self._limit_state(key, spec, rpm, tpm, int(res[0]), int(res[1]), int(res[2]), int(res[3]) / 1000.0, str(res[4]) or None)

    async def aclose(self) -> None:
        if self._closed:
            return
        await super().aclose()
        await self.flush()
        await self._r.aclose()

    async def __aenter__(self) -> "RedisLimiter":
        return self

    def __repr__(self) -> str:
        return f"RedisLimiter(prefix={self.prefix!r}, window={self.window})"
