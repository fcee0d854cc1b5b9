"""An opt-in exact-match response cache for non-streamed chat and embeddings.

The key is the SHA-256 of the key's tenant, the route and the request as decoded (re-encoded
with sorted keys, so field order and whitespace do not matter; ``user`` and ``stream`` are
not part of it).  Entries are the response bytes plus the usage they cost, kept ``ttl``
seconds: in memory (LRU, at most ``max_entries``) or in Redis when several processes share it.
A hit is answered with ``x-arun-cache: hit`` and logged in the spend log as a cache hit at
price 0; ``Cache-Control: no-cache`` skips the lookup, ``no-store`` skips storing.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["CachedResponse", "MemoryCache", "RedisCache", "cache_key"]


class CachedResponse(msgspec.Struct, array_like=True):
    body: bytes
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(CachedResponse)
_json = msgspec.json.Encoder(order="sorted")


def cache_key(tenant_id: str, route: str, request: Any) -> str:
    h = hashlib.sha256()
    h.update(tenant_id.encode())
    h.update(b"\0")
    h.update(route.encode())
    h.update(b"\0")
    h.update(_json.encode(request))
    return h.hexdigest()


class MemoryCache:
    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, CachedResponse]] = OrderedDict()

    async def get(self, key: str) -> CachedResponse | None:
        got = self._items.get(key)
        if got is None:
            return None
        if got[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return got[1]

    async def set(self, key: str, value: CachedResponse) -> None:
        self._items[key] = (self._clock() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    async def aclose(self) -> None:
        self._items.clear()


class RedisCache:
    """Entries under ``{prefix}gw:cache:{key}`` with a TTL (Redis evicts them)."""

    def __init__(self, client: Any, prefix: str, ttl: float) -> None:
        self._r = client
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl * 1000))

    async def get(self, key: str) -> CachedResponse | None:
        from redis.exceptions import RedisError

        try:
            raw = await self._r.get(f"{self.prefix}gw:cache:{key}")
        except (RedisError, OSError):
            return None  # a cache that is down is a miss, not a failure
        if raw is None:
            return None
        try:
            return _dec.decode(raw.encode("latin-1") if isinstance(raw, str) else raw)
        except msgspec.DecodeError:
            return None

    async def set(self, key: str, value: CachedResponse) -> None:
        from redis.exceptions import RedisError

        try:
            # the state's client decodes responses: store latin-1 text, which round-trips every byte
            await self._r.set(f"{self.prefix}gw:cache:{key}", _enc.encode(value).decode("latin-1"), px=self.ttl_ms)
        except (RedisError, OSError):
            pass

    async def aclose(self) -> None:
        return None
