"""Per-credential request, token and in-flight limits that callers *wait* for.

``open_limiter("memory://")`` (one process) or
``open_limiter("redis://127.0.0.1:6379/0?prefix=app:")`` (every process that
shares the Redis stays inside the limit together)::

    spec = LimitSpec.from_mapping(credentials)          # rpm / tpm / max_in_flight
    async with await limiter.acquire(key, spec, prompt_tokens + max_tokens, deadline=30) as permit:
        response = await call_upstream()
        limiter.observe(key, response.headers)          # learn x-ratelimit-* / anthropic-ratelimit-*
        await permit.settle(response.usage.total_tokens)  # refund (or charge) the difference

Algorithm (both backends): an exact **sliding-window log**.  Every grant
records one reservation ``(time, tokens)``; a request is admitted when, over
the last ``window`` seconds (60 by default), the reservations number fewer
than ``rpm`` and their tokens plus this request's stay within ``tpm``, and
fewer than ``max_in_flight`` permits are out.  Because the log is exact, any
``window``-long interval holds at most ``rpm`` grants and ``tpm`` tokens, so
there is no boundary burst (a fixed window allows 2x) and no burst-plus-drain
(a leaky bucket such as :class:`aiolimiter.AsyncLimiter` with capacity N lets
up to ~2N through in the first minute).  That is also why aiolimiter is not
used here: it can neither reserve requests and tokens in one atomic step, nor
refund, nor tell how long until capacity returns (needed for deadlines and
``retry_after``), and its semantics would differ from the Redis backend.

When there is no capacity the caller waits -- FIFO per key -- until the
earliest moment capacity returns, or until ``deadline``; then
:class:`LimitExceededError` with ``retry_after``.  Waiting is written once
(:mod:`arun.policy.limits_core`); a backend only checks and reserves
atomically, settles, releases and reports.  Modules:

* ``limits_spec``: :class:`LimitSpec`, :class:`LimitState`, :class:`LimitExceededError`
* ``limits_core``: :class:`Permit`, the :class:`Limiter` protocol, the shared waiting core
* ``limits_memory``: :class:`MemoryLimiter`; ``limits_redis``: ``RedisLimiter`` (imported on use)
* the headers (``x-ratelimit-*``, ``anthropic-ratelimit-*``, ``retry-after``) are parsed by
  :func:`arun.protocols.errors.parse_rate_limit_headers`, re-exported here
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from arun.errors import ArunUsageError
from arun.policy.limits_core import Limiter, Permit
from arun.policy.limits_memory import MemoryLimiter
from arun.policy.limits_spec import DEFAULT_WINDOW, UNLIMITED, LimitExceededError, LimitSpec, LimitState
from arun.protocols.errors import RateLimitHeaders, parse_duration, parse_rate_limit_headers

__all__ = [
    "LimitSpec",
    "LimitState",
    "LimitExceededError",
    "Permit",
    "Limiter",
    "MemoryLimiter",
    "RateLimitHeaders",
    "parse_rate_limit_headers",
    "parse_duration",
    "open_limiter",
    "limiter_for_state",
    "DEFAULT_WINDOW",
    "UNLIMITED",
]


def open_limiter(url: str = "memory://", **kwargs: Any) -> Limiter:
    """``memory://`` or ``redis://host:port/db?prefix=...&window=60&margin=0&lease=600``.

    ``window`` and ``margin`` (seconds) also work as keywords, as do ``clock`` and
    ``call_later`` (see :mod:`arun.policy.limits_core`); Redis connections open lazily.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        for k, v in parse_qsl(urlsplit(url).query):
            if k in ("window", "margin"):
                kwargs.setdefault(k, float(v))
        return MemoryLimiter(**kwargs)
    if scheme in ("redis", "rediss", "unix"):
        from arun.policy.limits_redis import RedisLimiter

        return RedisLimiter.from_url(url, **kwargs)
    raise ArunUsageError(f"unknown limiter URL scheme {scheme!r}; use memory:// or redis://")


def limiter_for_state(state: Any, name: str = "limits:") -> Limiter:
    """A limiter that lives where a state store does: in the store's Redis (its connection pool,
    keys under ``<store prefix><name>``; closing the limiter leaves the pool to the store), else
    in this process's memory."""
    client = getattr(state, "client", None)
    if client is not None and hasattr(client, "connection_pool"):
        import redis.asyncio as aioredis

        from arun.policy.limits_redis import RedisLimiter

        return RedisLimiter(aioredis.Redis(connection_pool=client.connection_pool), prefix=f"{getattr(state, 'prefix', '')}{name}")
    return MemoryLimiter()
