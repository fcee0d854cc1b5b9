"""Redis :class:`~arun.state.base.StateStore`: state shared by many processes.

Each balancing decision is one round trip: a Lua script run with EVALSHA
(falling back to EVAL, which also reloads the server's script cache, on
NOSCRIPT).  Keys are Dify's (DIFY_RUNTIME.md §7) behind an optional prefix.
Every Redis failure surfaces as :class:`StateUnavailableError`; the client's
pool reconnects on the next call once the server is back.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from arun.redact import redact
from arun.state.base import (
    LB_INDEX_TTL,
    LB_INDEX_WRAP,
    ConfigState,
    StateUnavailableError,
    lb_cooldown_key,
    lb_index_key,
)

__all__ = ["RedisStateStore", "LuaScript", "SET_UNLESS_LONGER", "client_from_url", "unavailable"]

# KEYS[1] = index key, KEYS[2..n+1] = cooldown keys; ARGV = wrap, ttl.
# Returns {chosen (0-based, -1 = none), hit_index, hit_pttl_ms, ...}.
_PICK_LUA = """
local n = #KEYS - 1
local out = {-1}
local hits = 0
while true do
  local idx = redis.call('INCR', KEYS[1])
  if idx >= tonumber(ARGV[1]) then
    idx = 1
    redis.call('SET', KEYS[1], 1)
  end
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  if idx > n then idx = idx % n end
  local real = idx - 1
  if real < 0 then real = n - 1 end
  local ttl = redis.call('PTTL', KEYS[2 + real])
  if ttl == -2 then
    out[1] = real
    return out
  end
  out[#out + 1] = real
  out[#out + 1] = ttl
  hits = hits + 1
  if hits >= n then return out end
end
"""

# KEYS[1] = the key; ARGV = milliseconds, value.  Sets the key for that long unless it already
# lasts as long or longer (a cooldown, a limiter's header block: never shortened).
_SET_UNLESS_LONGER_LUA = """
local ms = tonumber(ARGV[1])
local cur = redis.call('PTTL', KEYS[1])
if cur == -1 or cur >= ms then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
return 1
"""


def unavailable(exc: BaseException, what: str = "state store") -> StateUnavailableError:
    return StateUnavailableError(f"Redis {what} unavailable: {redact(str(exc)) or type(exc).__name__}")


class LuaScript:
    """A Lua script run by its SHA (EVALSHA), sent whole only when the server does not know it yet;
    every Redis or socket failure is a :class:`StateUnavailableError`.  Shared by the state store,
    the limiter and the gateway's budgets."""

    __slots__ = ("src", "sha")

    def __init__(self, src: str) -> None:
        self.src = src
        self.sha = hashlib.sha1(src.encode()).hexdigest()

    async def run(self, client: aioredis.Redis, keys: list[str], args: list[Any], *, what: str = "state store") -> Any:
        """The script's reply; ``what`` names the user in the error (``state store``, ``limiter`` ...)."""
        try:
            try:
                return await client.evalsha(self.sha, len(keys), *keys, *args)
            except NoScriptError:
                # EVAL runs it and puts it back in the server's script cache.
                return await client.eval(self.src, len(keys), *keys, *args)
        except (RedisError, OSError) as exc:
            raise unavailable(exc, what) from exc


_PICK = LuaScript(_PICK_LUA)
#: ``SET key value PX ms`` unless the key already lasts that long (keys ``[key]``, args ``[ms, value]``)
SET_UNLESS_LONGER = LuaScript(_SET_UNLESS_LONGER_LUA)


def client_from_url(url: str, own: tuple[str, ...], **kwargs: Any) -> tuple[aioredis.Redis, dict[str, str]]:
    """A client on a blocking pool with arun's defaults, and the URL's query options named in ``own``
    (taken out of the URL; redis-py gets the rest, and ``kwargs``).

    Defaults: a blocking pool of 64 connections (callers queue for up to 5 s instead of
    opening one socket each), 2 s connect and socket timeouts, one immediate retry on a fresh
    connection (so a connection the server dropped is replaced transparently), decoded responses.
    """
    parts = urlsplit(url)
    options: dict[str, str] = {}
    rest = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k in own:
            options[k] = v
        else:
            rest.append((k, v))
    url = urlunsplit(parts._replace(query=urlencode(rest)))
    kwargs.setdefault("socket_connect_timeout", 2.0)
    kwargs.setdefault("socket_timeout", 2.0)
    kwargs.setdefault("retry", Retry(NoBackoff(), 1))
    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("max_connections", 64)
    kwargs.setdefault("timeout", 5.0)  # wait this long for a free pooled connection
    pool = aioredis.BlockingConnectionPool.from_url(url, **kwargs)
    return aioredis.Redis.from_pool(pool), options


class RedisStateStore:
    """State in Redis.  Build with :meth:`from_url` or hand over a client."""

    def __init__(self, client: "aioredis.Redis", *, prefix: str = "") -> None:
        self._r = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "RedisStateStore":
        """``redis://host:port/db?prefix=...`` (any redis-py URL option also works; the pool's
        defaults: :func:`client_from_url`)."""
        prefix = kwargs.pop("prefix", "")
        client, options = client_from_url(url, ("prefix",), **kwargs)
        return cls(client, prefix=options.get("prefix", prefix))

    @property
    def client(self) -> "aioredis.Redis":
        return self._r

    async def lb_pick(self, scope: str, config_ids: list[str]) -> tuple[str | None, list[tuple[str, float]]]:
        n = len(config_ids)
        if n == 0:
            return None, []
        p = self.prefix
        keys = [lb_index_key(scope, p)]
        keys.extend(lb_cooldown_key(scope, cid, p) for cid in config_ids)
        res = await _PICK.run(self._r, keys, [LB_INDEX_WRAP, LB_INDEX_TTL])
        chosen = int(res[0])
        hits = [
            (config_ids[int(res[i])], _ttl_seconds(int(res[i + 1])))
            for i in range(1, len(res), 2)
        ]
        return (config_ids[chosen] if chosen >= 0 else None), hits

    async def lb_cooldown(self, scope: str, config_id: str, seconds: float, reason: str = "") -> None:
        ms = max(1, round(float(seconds) * 1000))
        await SET_UNLESS_LONGER.run(self._r, [lb_cooldown_key(scope, config_id, self.prefix)], [ms, reason or "true"])

    async def lb_state(self, scope: str, config_ids: list[str]) -> list[ConfigState]:
        if not config_ids:
            return []
        try:
            async with self._r.pipeline(transaction=False) as pipe:
                for cid in config_ids:
                    key = lb_cooldown_key(scope, cid, self.prefix)
                    pipe.pttl(key)
                    pipe.get(key)
                res = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from exc
        wall = time.time()
        out = []
        for i, cid in enumerate(config_ids):
            pttl, reason = int(res[2 * i]), res[2 * i + 1]
            if pttl == -2 or reason is None:
                out.append(ConfigState(cid, False))
                continue
            ttl = _ttl_seconds(pttl)
            out.append(ConfigState(cid, True, ttl, wall + ttl if math.isfinite(ttl) else None, str(reason)))
        return out

    async def aclose(self) -> None:
        await self._r.aclose()

    async def __aenter__(self) -> "RedisStateStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisStateStore(prefix={self.prefix!r})"


def _ttl_seconds(pttl: int) -> float:
    return math.inf if pttl < 0 else pttl / 1000.0
