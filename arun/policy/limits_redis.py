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

Waiting: in each process one waiter per key (FIFO) talks to Redis; it sleeps
exactly until the reservation that blocks it leaves the window (request
limit, header block), or polls every ``poll`` seconds (token limit, where
other processes' refunds may free capacity early; in-flight limit), and is
woken at once by releases and refunds made in its own process.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from arun.policy.limits import (
    _NOTHING,
    DEFAULT_WINDOW,
    LimitExceededError,
    LimitSpec,
    LimitState,
    Permit,
    _poke_future,
    _scale,
    parse_rate_limit_headers,
)
from arun.redact import redact
from arun.state.base import StateUnavailableError
from arun.state.redis import _Script

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

# KEYS: b.  ARGV: ms, reason.  Never shortens a block.
_BLOCK_LUA = """
local ms = tonumber(ARGV[1])
local cur = redis.call('PTTL', KEYS[1])
if cur == -1 or cur >= ms then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
return 1
"""

# KEYS: w t u f b l.  ARGV: window_ms.  Returns {count, used, in_flight, block_ms, reason, lrpm, ltpm}.
_SNAPSHOT_LUA = _PRUNE + """
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('%.3f', now))
return {redis.call('ZCARD', KEYS[1]), math.floor(used), redis.call('ZCARD', KEYS[4]),
        redis.call('PTTL', KEYS[5]), redis.call('GET', KEYS[5]) or '', lr[1] or '', lr[2] or ''}
"""

_ACQUIRE = _Script(_ACQUIRE_LUA)
_SETTLE = _Script(_SETTLE_LUA)
_BLOCK = _Script(_BLOCK_LUA)
_SNAPSHOT = _Script(_SNAPSHOT_LUA)

_LEARNED_TTL_MS = 3_600_000


def _unavailable(exc: BaseException) -> StateUnavailableError:
    return StateUnavailableError(f"Redis limiter unavailable: {redact(str(exc)) or type(exc).__name__}")


class _Local:
    """This process's view of one key: FIFO queue, wake-ups, local copy of blocks."""

    __slots__ = ("keys", "lock", "waiting", "wake", "blocked_until", "learned_rpm", "learned_tpm", "hold")

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.lock: asyncio.Lock | None = None
        self.waiting = 0
        self.wake: asyncio.Future[None] | None = None
        self.blocked_until = 0.0
        self.learned_rpm: int | None = None
        self.learned_tpm: int | None = None
        self.hold = 0.0

    def poke(self) -> None:
        fut = self.wake
        if fut is not None and not fut.done():
            fut.set_result(None)


class _RedisPermit(Permit):
    __slots__ = ("_lim", "_loc", "_member", "_window_tracked", "_flight_tracked", "_t0")

    def __init__(self, key: str, tokens: int, waited: float, lim: "RedisLimiter", loc: _Local,
                 member: str, window_tracked: bool, flight_tracked: bool) -> None:
        super().__init__(key, tokens, waited)
        self._lim = lim
        self._loc = loc
        self._member = member
        self._window_tracked = window_tracked
        self._flight_tracked = flight_tracked
        self._t0 = time.monotonic()

    async def settle(self, actual_tokens: int | None) -> None:
        if actual_tokens is None or not self._window_tracked:
            return
        actual = max(0, int(actual_tokens))
        if actual == self.tokens:
            return
        keys = self._loc.keys
        delta = int(await self._lim._eval(_SETTLE, [keys[1], keys[2]], [self._member, actual]))
        self.tokens = actual
        if delta < 0:
            self._loc.poke()

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        loc = self._loc
        held = time.monotonic() - self._t0
        loc.hold = held if not loc.hold else loc.hold * 0.8 + held * 0.2
        if self._flight_tracked:
            try:
                await self._lim._r.zrem(loc.keys[3], self._member)
            except (RedisError, OSError) as exc:
                raise _unavailable(exc) from exc
            finally:
                loc.poke()


class RedisLimiter:
    """Limits in Redis.  Build with :meth:`from_url` or hand over a client."""

    def __init__(self, client: "aioredis.Redis", *, prefix: str = "", window: float = DEFAULT_WINDOW,
                 lease: float = 600.0, poll: float = 0.05, margin: float = 0.0) -> None:
        if not window > 0 or margin < 0:
            raise ValueError("window must be > 0 and margin >= 0")
        self._r = client
        self.prefix = prefix
        self.window = float(window)
        self.margin = float(margin)
        self.lease = float(lease)
        self.poll = float(poll)
        self._window_ms = int(round((self.window + self.margin) * 1000))
        self._lease_ms = int(round(self.lease * 1000))
        self._locals: dict[str, _Local] = {}
        self._ids = itertools.count()
        self._id_prefix = f"{os.getpid():x}.{os.urandom(4).hex()}."
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "RedisLimiter":
        """``redis://host:port/db?prefix=...&window=60&margin=0&lease=600&poll=0.05`` (plus redis-py options)."""
        parts = urlsplit(url)
        own: dict[str, Any] = {}
        for name in ("prefix", "window", "lease", "poll", "margin"):
            if name in kwargs:
                own[name] = kwargs.pop(name)
        rest = []
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if k == "prefix":
                own.setdefault("prefix", v)
            elif k in ("window", "lease", "poll", "margin"):
                own.setdefault(k, float(v))
            else:
                rest.append((k, v))
        url = urlunsplit(parts._replace(query=urlencode(rest)))
        kwargs.setdefault("socket_connect_timeout", 2.0)
        kwargs.setdefault("socket_timeout", 2.0)
        kwargs.setdefault("retry", Retry(NoBackoff(), 1))
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("max_connections", 64)
        kwargs.setdefault("timeout", 5.0)
        pool = aioredis.BlockingConnectionPool.from_url(url, **kwargs)
        return cls(aioredis.Redis.from_pool(pool), **own)

    @property
    def client(self) -> "aioredis.Redis":
        return self._r

    def _local(self, key: str) -> _Local:
        loc = self._locals.get(key)
        if loc is None:
            base = f"{self.prefix}arun:limit:{{{key}}}:"
            loc = self._locals[key] = _Local([base + s for s in ("w", "t", "u", "f", "b", "l")])
        return loc

    async def _eval(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        try:
            try:
                return await self._r.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self._r.eval(script.src, len(keys), *keys, *args)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    # -- the decision -------------------------------------------------------------------
    async def _try(self, key: str, loc: _Local, spec: LimitSpec, tokens: int, waited: float) -> Permit | tuple[str, float | None, str]:
        member = self._id_prefix + str(next(self._ids))
        rpm, tpm, mif = spec.rpm, spec.tpm, spec.max_in_flight
        try:
            res = await self._eval(_ACQUIRE, loc.keys, [
                self._window_ms, -1 if rpm is None else rpm, -1 if tpm is None else tpm,
                -1 if mif is None else mif, tokens, member, self._lease_ms,
            ])
        except asyncio.CancelledError:
            # The script may have granted: give the in-flight slot back (the window entry stays; conservative).
            if mif is not None:
                self._spawn(self._r.zrem(loc.keys[3], member))
            raise
        if int(res[0]) == 1:
            permit = _RedisPermit(key, tokens, waited, self, loc, member, int(res[2]) == 1, mif is not None)
            permit.granted_at = int(res[1]) / 1000.0
            return permit
        wait_ms = int(res[1])
        wait = None if wait_ms < 0 else wait_ms / 1000.0
        reason = str(res[2])
        if reason == "blocked" and wait is not None:
            until = time.monotonic() + wait
            if until > loc.blocked_until:
                loc.blocked_until = until
        return reason, wait, str(res[3])

    async def acquire(self, key: str, spec: LimitSpec, tokens: int, *, deadline: float | None = None) -> Permit:
        if self._closed:
            raise RuntimeError("limiter is closed")
        loc = self._local(key)
        tokens = max(0, int(tokens))
        start = time.monotonic()
        tpm = spec.tpm
        if loc.learned_tpm is not None and (tpm is None or loc.learned_tpm < tpm):
            tpm = loc.learned_tpm
        if tpm is not None and tokens > tpm:
            raise LimitExceededError(key, "too_large", None, f"{tokens} tokens > tpm {tpm}")
        if not loc.waiting and loc.blocked_until <= start:
            got = await self._try(key, loc, spec, tokens, 0.0)
            if isinstance(got, Permit):
                return got
            if got[0] == "too_large":
                raise LimitExceededError(key, "too_large", None, f"{tokens} tokens > tpm {got[2]}")
        return await self._wait(key, loc, spec, tokens, deadline, start)

    def _estimate(self, loc: _Local, wait: float | None) -> float:
        return wait if wait is not None else (loc.hold or 1.0)

    async def _wait(self, key: str, loc: _Local, spec: LimitSpec, tokens: int, deadline: float | None, start: float) -> Permit:
        loop = asyncio.get_running_loop()
        end = math.inf if deadline is None else start + max(0.0, float(deadline))
        if loc.lock is None:
            loc.lock = asyncio.Lock()
        lock = loc.lock
        loc.waiting += 1
        try:
            try:
                if end == math.inf:
                    await lock.acquire()
                else:
                    await asyncio.wait_for(lock.acquire(), max(0.0, end - time.monotonic()))
            except asyncio.TimeoutError:
                raise LimitExceededError(key, "queue", loc.hold or 1.0, "deadline passed in the queue") from None
            try:
                while True:
                    if self._closed:
                        raise LimitExceededError(key, "closed", None, "limiter closed")
                    now = time.monotonic()
                    wait: float | None
                    if loc.blocked_until > now:
                        reason, wait, detail = "blocked", loc.blocked_until - now, "learned from headers"
                    else:
                        got = await self._try(key, loc, spec, tokens, now - start)
                        if isinstance(got, Permit):
                            got.waited = time.monotonic() - start
                            return got
                        reason, wait, detail = got
                        now = time.monotonic()
                    if reason == "too_large":
                        raise LimitExceededError(key, reason, None, f"{tokens} tokens > tpm {detail}")
                    remaining = end - now
                    if remaining <= 0 or (wait is not None and wait > remaining and reason in ("rpm", "blocked")):
                        raise LimitExceededError(key, reason, self._estimate(loc, wait), detail)
                    timeout: float
                    if reason in ("rpm", "blocked") and wait is not None:
                        timeout = min(wait, remaining)
                    else:
                        timeout = min(self.poll if wait is None else min(wait, self.poll), remaining)
                    fut = loop.create_future()
                    loc.wake = fut
                    handle = loop.call_later(timeout, _poke_future, fut)
                    try:
                        await fut
                    finally:
                        loc.wake = None
                        handle.cancel()
            finally:
                lock.release()
        finally:
            loc.waiting -= 1

    # -- headers -------------------------------------------------------------------------
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

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        info = parse_rate_limit_headers(headers)
        if info is _NOTHING:
            return
        loc = self._local(key)
        if info.block_for > 0:
            until = time.monotonic() + info.block_for
            if until > loc.blocked_until:
                loc.blocked_until = until
            ms = max(1, int(math.ceil(info.block_for * 1000)))
            self._spawn(self._eval(_BLOCK, [loc.keys[4]], [ms, info.reason or "blocked"]))
        learned: dict[str, int] = {}
        rpm = _scale(info.limit_requests, self.window)
        tpm = _scale(info.limit_tokens, self.window)
        if rpm is not None and rpm != loc.learned_rpm:
            loc.learned_rpm = learned["rpm"] = rpm
        if tpm is not None and tpm != loc.learned_tpm:
            loc.learned_tpm = learned["tpm"] = tpm
        if learned:
            self._spawn(self._learn(loc.keys[5], learned))
            loc.poke()

    async def _learn(self, key: str, learned: dict[str, int]) -> None:
        try:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=dict(learned))  # type: ignore[arg-type,unused-ignore]
                pipe.pexpire(key, _LEARNED_TTL_MS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def snapshot(self, key: str, spec: LimitSpec) -> LimitState:
        loc = self._local(key)
        res = await self._eval(_SNAPSHOT, loc.keys, [self._window_ms])
        count, used, flight, block_ms = int(res[0]), int(res[1]), int(res[2]), int(res[3])
        reason = str(res[4]) or None
        rpm, tpm = spec.rpm, spec.tpm
        if res[5] != "":
            v = int(float(res[5]))
            rpm = v if rpm is None or v < rpm else rpm
        if res[6] != "":
            v = int(float(res[6]))
            tpm = v if tpm is None or v < tpm else tpm
        blocked = block_ms > 0
        return LimitState(
            key=key,
            rpm=rpm,
            tpm=tpm,
            max_in_flight=spec.max_in_flight,
            requests_remaining=None if rpm is None else max(0, rpm - count),
            tokens_remaining=None if tpm is None else max(0, tpm - used),
            in_flight=flight,
            blocked_until=time.time() + block_ms / 1000.0 if blocked else None,
            block_reason=reason if blocked else None,
            window=self.window,
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for loc in self._locals.values():
            loc.poke()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._r.aclose()

    async def __aenter__(self) -> "RedisLimiter":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisLimiter(prefix={self.prefix!r}, window={self.window})"
