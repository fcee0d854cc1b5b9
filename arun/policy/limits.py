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

When there is no capacity the caller waits -- FIFO per key, so a large
request is not starved by small ones -- until the earliest moment capacity
returns (the oldest blocking reservation leaves the window, a permit is
released, a reservation is refunded), or until ``deadline``; then
:class:`LimitExceededError` with ``retry_after``.  A wait that is known to
outlast the deadline (request limit, a header block) fails at once, so a
router can rotate to another credential without burning the deadline.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from arun.errors import InvokeRateLimitError
from arun.protocols.errors import parse_retry_after

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
]

DEFAULT_WINDOW = 60.0


# --------------------------------------------------------------------------------------
# Spec, state, error
# --------------------------------------------------------------------------------------
def _positive_int(name: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"limit {name!r} must be a positive integer, got {value!r}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"limit {name!r} must be a positive integer, got {value!r}") from None
    if not math.isfinite(number) or number < 1 or number != int(number):
        raise ValueError(f"limit {name!r} must be a positive integer, got {value!r}")
    return int(number)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """Limits of one (credential config, model); ``None`` means unlimited.

    ``rpm`` and ``tpm`` count per limiter window (60 s unless the limiter was
    built with another ``window``).
    """

    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_in_flight"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"LimitSpec.{name} must be a positive int or None, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "LimitSpec":
        """Read ``rpm`` / ``tpm`` / ``max_in_flight`` (ints or numeric strings).

        Works on a credential config dict or a model YAML's ``model_properties``;
        other keys are ignored, missing or empty values mean unlimited.
        Anything else (zero, negative, fractional, not a number) raises ValueError.
        """
        if not data:
            return UNLIMITED
        return cls(
            rpm=_positive_int("rpm", data.get("rpm")),
            tpm=_positive_int("tpm", data.get("tpm")),
            max_in_flight=_positive_int("max_in_flight", data.get("max_in_flight")),
        )

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_in_flight is None

    def tighten(self, other: "LimitSpec | None") -> "LimitSpec":
        """The stricter of the two, limit by limit (e.g. credential config and model YAML)."""
        if other is None:
            return self
        return LimitSpec(_min(self.rpm, other.rpm), _min(self.tpm, other.tpm), _min(self.max_in_flight, other.max_in_flight))


UNLIMITED = LimitSpec()


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


@dataclass(frozen=True, slots=True)
class LimitState:
    """What an operator sees for one key (see :meth:`Limiter.snapshot`)."""

    key: str
    #: Effective limits: the configured spec tightened by what headers taught.
    rpm: int | None
    tpm: int | None
    max_in_flight: int | None
    #: Left in the current window (None when unlimited).
    requests_remaining: int | None
    tokens_remaining: int | None
    in_flight: int
    #: Wall-clock (``time.time()``) end of a header block, None when not blocked.
    blocked_until: float | None = None
    block_reason: str | None = None
    window: float = DEFAULT_WINDOW


class LimitExceededError(InvokeRateLimitError):
    """Capacity did not come before the deadline.

    ``retry_after`` estimates the seconds until it does (None when it never
    will: the request alone needs more tokens than ``tpm``).  ``reason`` is
    one of ``rpm``, ``tpm``, ``in_flight``, ``blocked``, ``too_large``.
    """

    description = "Rate Limit Error"

    def __init__(self, key: str, reason: str, retry_after: float | None, detail: str = "") -> None:
        when = f", capacity in ~{retry_after:.3f}s" if retry_after is not None else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"Rate Limit Error, local {reason} limit for {key}{extra}{when}",
            retry_after=None if retry_after is None else max(0.0, retry_after),
        )
        self.key = key
        self.reason = reason


# --------------------------------------------------------------------------------------
# Permit and the Limiter protocol
# --------------------------------------------------------------------------------------
class Permit:
    """One granted request.  ``async with`` releases its in-flight slot on exit.

    Leaving without :meth:`settle` keeps the whole reservation (counts as used).
    """

    __slots__ = ("key", "tokens", "waited", "granted_at", "_released")

    def __init__(self, key: str, tokens: int, waited: float) -> None:
        self.key = key
        #: Wall-clock seconds of the grant on the backend's clock (Redis ``TIME`` for Redis), if known.
        self.granted_at: float | None = None
        #: Tokens currently charged to the window for this request.
        self.tokens = tokens
        #: Seconds spent waiting for capacity.
        self.waited = waited
        self._released = False

    async def settle(self, actual_tokens: int | None) -> None:
        """Charge ``actual_tokens`` instead of the reservation (None: keep it)."""

    async def release(self) -> None:
        """Free the in-flight slot; idempotent."""
        self._released = True

    @property
    def released(self) -> bool:
        return self._released

    async def __aenter__(self) -> "Permit":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, tokens={self.tokens}, waited={self.waited:.3f})"


@runtime_checkable
class Limiter(Protocol):
    window: float

    async def acquire(self, key: str, spec: LimitSpec, tokens: int, *, deadline: float | None = None) -> Permit:
        """Reserve 1 request + ``tokens``; wait for capacity up to ``deadline`` seconds."""
        ...

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers."""
        ...

    async def snapshot(self, key: str, spec: LimitSpec) -> LimitState: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------------------
# Rate-limit headers
# --------------------------------------------------------------------------------------
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?(?:ms|us|µs|ns|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|us|µs|ns|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str | None) -> float | None:
    """OpenAI reset durations (``12ms``, ``6m0s``, ``1h2m3.5s``) or plain seconds."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    if not _DURATION.fullmatch(value):
        return None
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value))


def _parse_rfc3339(value: str | None, now_wall: float) -> float | None:
    """Seconds from now until an RFC 3339 timestamp (Anthropic resets)."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if m and m.group(2) and len(m.group(2)) > 7:  # fromisoformat takes at most 6 fraction digits
        text = m.group(1) + m.group(2)[:7] + m.group(3)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_duration(value)
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_wall)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What one response's headers say."""

    #: Provider limits (per minute) when advertised.
    limit_requests: int | None = None
    limit_tokens: int | None = None
    #: Seconds to block the key for (0 = no block) and why.
    block_for: float = 0.0
    reason: str | None = None


_NOTHING = RateLimitHeaders()


def parse_rate_limit_headers(headers: Mapping[str, str] | None, now_wall: float | None = None) -> RateLimitHeaders:
    """Read ``x-ratelimit-*`` (OpenAI family), ``anthropic-ratelimit-*`` and ``retry-after(-ms)``.

    A key is blocked until the reset when a ``remaining`` count is 0, and
    until ``retry-after``; the longest wins.  Anthropic's input/output token
    limits only block (they are not the combined TPM this limiter reserves).
    """
    if not headers:
        return _NOTHING
    if isinstance(headers, dict):
        h: Mapping[str, str] = {k.lower(): v for k, v in headers.items()}
    else:
        h = headers  # httpx / aiohttp / multidict headers are case-insensitive already
    get = h.get
    block = 0.0
    reason: str | None = None
    ra = parse_retry_after(h)
    if ra is not None and ra > 0:
        block, reason = ra, "retry-after"
    for kind in ("requests", "tokens"):
        if _int(get(f"x-ratelimit-remaining-{kind}")) == 0:
            secs = parse_duration(get(f"x-ratelimit-reset-{kind}"))
            if secs is not None and secs > block:
                block, reason = secs, f"x-ratelimit-remaining-{kind}=0"
    limit_requests = _int(get("x-ratelimit-limit-requests"))
    limit_tokens = _int(get("x-ratelimit-limit-tokens"))
    if get("anthropic-ratelimit-requests-limit") is not None or get("anthropic-ratelimit-tokens-remaining") is not None:
        wall = time.time() if now_wall is None else now_wall
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            if _int(get(f"anthropic-ratelimit-{kind}-remaining")) == 0:
                secs = _parse_rfc3339(get(f"anthropic-ratelimit-{kind}-reset"), wall)
                if secs is not None and secs > block:
                    block, reason = secs, f"anthropic-ratelimit-{kind}-remaining=0"
        limit_requests = limit_requests or _int(get("anthropic-ratelimit-requests-limit"))
        limit_tokens = limit_tokens or _int(get("anthropic-ratelimit-tokens-limit"))
    if limit_requests is not None and limit_requests < 1:
        limit_requests = None
    if limit_tokens is not None and limit_tokens < 1:
        limit_tokens = None
    if block <= 0 and limit_requests is None and limit_tokens is None:
        return _NOTHING
    return RateLimitHeaders(limit_requests, limit_tokens, block, reason)


def _scale(per_minute: int | None, window: float) -> int | None:
    """A provider's per-minute limit expressed per limiter window."""
    if per_minute is None:
        return None
    if window == 60.0:
        return per_minute
    return max(1, int(per_minute * window / 60.0))


# --------------------------------------------------------------------------------------
# Memory backend
# --------------------------------------------------------------------------------------
class _Key:
    """State of one key in one process."""

    __slots__ = (
        "log", "used", "in_flight", "blocked_until", "block_reason",
        "learned_rpm", "learned_tpm", "lock", "waiting", "wake", "hold",
    )

    def __init__(self) -> None:
        # reservations, oldest first: [time, tokens, alive]
        self.log: deque[list[Any]] = deque()
        self.used = 0
        self.in_flight = 0
        self.blocked_until = 0.0
        self.block_reason: str | None = None
        self.learned_rpm: int | None = None
        self.learned_tpm: int | None = None
        self.lock: asyncio.Lock | None = None
        self.waiting = 0
        self.wake: asyncio.Future[None] | None = None
        self.hold = 0.0  # EWMA of how long a permit is held (in-flight retry_after estimate)

    def poke(self) -> None:
        fut = self.wake
        if fut is not None and not fut.done():
            fut.set_result(None)


def _poke_future(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class _MemoryPermit(Permit):
    __slots__ = ("_st", "_entry", "_t0", "_clock")

    def __init__(self, key: str, tokens: int, waited: float, st: _Key, entry: list[Any] | None, t0: float, clock: Any) -> None:
        super().__init__(key, tokens, waited)
        self._st = st
        self._entry = entry
        self._t0 = t0
        self._clock = clock

    async def settle(self, actual_tokens: int | None) -> None:
        entry = self._entry
        if actual_tokens is None or entry is None:
            return
        actual = max(0, int(actual_tokens))
        delta = actual - entry[1]
        if not delta:
            return
        entry[1] = actual
        self.tokens = actual
        if entry[2]:  # still counted in the window
            st = self._st
            st.used += delta
            if delta < 0:
                st.poke()

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        st = self._st
        st.in_flight -= 1
        held = self._clock() - self._t0
        st.hold = held if not st.hold else st.hold * 0.8 + held * 0.2
        if st.wake is not None:
            st.poke()


class MemoryLimiter:
    """Limits for one process (the embedded default).

    Every check-and-reserve runs without awaiting, so it is atomic under
    asyncio.  ``window`` is the rpm/tpm window in seconds (60; shorter in tests);
    ``margin`` keeps each reservation counted that much longer (default 0).
    """

    def __init__(self, *, window: float = DEFAULT_WINDOW, margin: float = 0.0, clock: Any = time.monotonic) -> None:
        if not window > 0 or margin < 0:
            raise ValueError("window must be > 0 and margin >= 0")
        self.window = float(window)
        #: Extra seconds a reservation stays counted, to absorb the skew between the
        #: decision and the upstream's own clock (transit time that varies per request).
        self.margin = float(margin)
        self._span = self.window + self.margin
        self._clock = clock
        self._keys: dict[str, _Key] = {}
        self._closed = False

    # -- the decision -------------------------------------------------------------------
    def _effective(self, st: _Key, spec: LimitSpec) -> tuple[int | None, int | None]:
        rpm, tpm = spec.rpm, spec.tpm
        lr, lt = st.learned_rpm, st.learned_tpm
        if lr is not None and (rpm is None or lr < rpm):
            rpm = lr
        if lt is not None and (tpm is None or lt < tpm):
            tpm = lt
        return rpm, tpm

    def _check(self, st: _Key, rpm: int | None, tpm: int | None, mif: int | None, tokens: int, now: float) -> tuple[str, float | None] | None:
        """None when there is capacity now, else (reason, seconds until it may return or None)."""
        if tpm is not None and tokens > tpm:
            return "too_large", None
        if st.blocked_until > now:
            return "blocked", st.blocked_until - now
        log = st.log
        window = self._span
        if log:
            cutoff = now - window
            while log and log[0][0] <= cutoff:
                e = log.popleft()
                e[2] = False
                st.used -= e[1]
        if rpm is not None and len(log) >= rpm:
            return "rpm", log[len(log) - rpm][0] + window - now
        if tpm is not None:
            if st.used + tokens > tpm:
                left = st.used
                for e in log:
                    left -= e[1]
                    if left + tokens <= tpm:
                        return "tpm", e[0] + window - now
                return "tpm", window  # not reached: the log holds every counted token
        if mif is not None and st.in_flight >= mif:
            return "in_flight", None
        return None

    def _grant(self, key: str, st: _Key, rpm: int | None, tpm: int | None, tokens: int, now: float, waited: float) -> _MemoryPermit:
        entry = None
        if rpm is not None or tpm is not None:
            entry = [now, tokens, True]
            st.log.append(entry)
            st.used += tokens
        st.in_flight += 1
        return _MemoryPermit(key, tokens, waited, st, entry, now, self._clock)

    # -- public API ---------------------------------------------------------------------
    async def acquire(self, key: str, spec: LimitSpec, tokens: int, *, deadline: float | None = None) -> Permit:
        if self._closed:
            raise RuntimeError("limiter is closed")
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _Key()
        tokens = max(0, int(tokens))
        now = self._clock()
        if not st.waiting:
            rpm, tpm = self._effective(st, spec)
            verdict = self._check(st, rpm, tpm, spec.max_in_flight, tokens, now)
            if verdict is None:
                return self._grant(key, st, rpm, tpm, tokens, now, 0.0)
            if verdict[0] == "too_large":
                raise LimitExceededError(key, "too_large", None, f"{tokens} tokens > tpm {tpm}")
        return await self._wait(key, st, spec, tokens, deadline, now)

    def _estimate(self, st: _Key, reason: str, wait: float | None) -> float:
        if wait is not None:
            return wait
        return st.hold or 1.0  # in flight: about one permit's holding time

    async def _wait(self, key: str, st: _Key, spec: LimitSpec, tokens: int, deadline: float | None, start: float) -> Permit:
        loop = asyncio.get_running_loop()
        end = math.inf if deadline is None else start + max(0.0, float(deadline))
        if st.lock is None:
            st.lock = asyncio.Lock()
        lock = st.lock
        st.waiting += 1
        try:
            try:
                if end == math.inf:
                    await lock.acquire()
                else:
                    await asyncio.wait_for(lock.acquire(), max(0.0, end - self._clock()))
            except asyncio.TimeoutError:
                now = self._clock()
                rpm, tpm = self._effective(st, spec)
                late = self._check(st, rpm, tpm, spec.max_in_flight, tokens, now) or ("queue", 0.0)
                raise LimitExceededError(key, late[0], self._estimate(st, *late), "deadline passed in the queue") from None
            try:
                while True:
                    if self._closed:
                        raise LimitExceededError(key, "closed", None, "limiter closed")
                    now = self._clock()
                    rpm, tpm = self._effective(st, spec)
                    verdict = self._check(st, rpm, tpm, spec.max_in_flight, tokens, now)
                    if verdict is None:
                        return self._grant(key, st, rpm, tpm, tokens, now, now - start)
                    reason, wait = verdict
                    if reason == "too_large":
                        raise LimitExceededError(key, reason, None, f"{tokens} tokens > tpm {tpm}")
                    remaining = end - now
                    if remaining <= 0 or (wait is not None and wait > remaining and reason in ("rpm", "blocked")):
                        raise LimitExceededError(key, reason, self._estimate(st, reason, wait))
                    timeout = remaining if wait is None else min(wait, remaining)
                    fut = loop.create_future()
                    st.wake = fut
                    handle = loop.call_later(timeout, _poke_future, fut) if timeout != math.inf else None
                    try:
                        await fut
                    finally:
                        st.wake = None
                        if handle is not None:
                            handle.cancel()
            finally:
                lock.release()
        finally:
            st.waiting -= 1

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        info = parse_rate_limit_headers(headers)
        if info is _NOTHING:
            return
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _Key()
        if info.block_for > 0:
            until = self._clock() + info.block_for
            if until > st.blocked_until:
                st.blocked_until = until
                st.block_reason = info.reason
        changed = False
        for attr, value in (("learned_rpm", info.limit_requests), ("learned_tpm", info.limit_tokens)):
            value = _scale(value, self.window)
            if value is not None and getattr(st, attr) != value:
                setattr(st, attr, value)
                changed = True
        if changed:
            st.poke()

    async def snapshot(self, key: str, spec: LimitSpec) -> LimitState:
        st = self._keys.get(key) or _Key()
        now = self._clock()
        rpm, tpm = self._effective(st, spec)
        self._check(st, None, None, None, 0, now)  # prune
        blocked = st.blocked_until > now
        return LimitState(
            key=key,
            rpm=rpm,
            tpm=tpm,
            max_in_flight=spec.max_in_flight,
            requests_remaining=None if rpm is None else max(0, rpm - len(st.log)),
            tokens_remaining=None if tpm is None else max(0, tpm - st.used),
            in_flight=st.in_flight,
            blocked_until=time.time() + (st.blocked_until - now) if blocked else None,
            block_reason=st.block_reason if blocked else None,
            window=self.window,
        )

    async def aclose(self) -> None:
        self._closed = True
        for st in self._keys.values():
            st.poke()

    def __repr__(self) -> str:
        return f"MemoryLimiter(window={self.window}, keys={len(self._keys)})"


# --------------------------------------------------------------------------------------
def open_limiter(url: str = "memory://", **kwargs: Any) -> Limiter:
    """``memory://`` or ``redis://host:port/db?prefix=...&window=60&margin=0&lease=600``.

    ``window`` and ``margin`` (seconds) also work as keywords; Redis connections open lazily.
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
    raise ValueError(f"unknown limiter URL scheme {scheme!r}; use memory:// or redis://")
