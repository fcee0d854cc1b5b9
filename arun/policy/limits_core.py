"""What every limiter backend shares: FIFO waiting, deadlines, permits, learning from headers.

A backend (:class:`~arun.policy.limits_memory.MemoryLimiter`,
:class:`~arun.policy.limits_redis.RedisLimiter`) supplies the atomic
primitives only -- ``_reserve`` (check and reserve, or say why not and for how
long), ``_settle``, ``_release``, ``_share`` (publish what headers taught) and
``snapshot`` -- and :class:`LimiterCore` does the rest, the same on both:

* **Fast path**: nobody waits for the key, so one ``_reserve`` grants or denies.
* **Queue**: a denied caller joins the key's FIFO queue, so a large request is
  not starved by small ones.  Only the head talks to the backend; it sleeps
  until the wait the backend predicted (the oldest blocking reservation leaves
  the window, a header block ends), or until poked (in this process a permit
  was released or refunded tokens, or a header taught a limit), or for at most
  ``poll`` seconds when another process may free capacity early (tokens, in
  flight).  When the head leaves -- granted, failed, cancelled -- the next
  caller becomes head at once.
* **Deadline**: a wait known to outlast it (request limit, header block: only
  time ends those) fails at once, so a router can rotate to another credential
  without burning the deadline; other waits last until the deadline.  Either
  way :class:`LimitExceededError` carries ``retry_after``.  A request larger
  than ``tpm`` fails at once.
* **Permits**: ``settle`` charges the real usage (a refund pokes the head);
  ``release`` frees the in-flight slot (pokes the head) and feeds the average
  holding time that estimates ``retry_after`` for in-flight waits.

``clock`` (monotonic seconds) and ``call_later(delay, callback)`` (returns a
handle with ``cancel()``; the running loop's by default) are injected
together: all waiting is measured by the one and scheduled by the other, so a
fake clock makes it deterministic.  A backend's own clock (Redis ``TIME``)
decides the window; ``clock`` decides deadlines and this process's copy of a
header block.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

from arun.errors import ArunUsageError, NotStartedError
from arun.policy.limits_spec import LimitExceededError, LimitSpec, LimitState, stricter
from arun.protocols.errors import RateLimitHeaders, parse_rate_limit_headers

__all__ = ["Permit", "Limiter", "LimiterCore", "KeyState", "Denied", "Clock", "CallLater", "TimerHandle"]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


#: Monotonic seconds.
Clock = Callable[[], float]
#: ``call_later(delay, callback) -> handle``: run ``callback`` after ``delay`` seconds of the clock.
CallLater = Callable[[float, Callable[[], None]], TimerHandle]

#: Waits that only time ends (no release or refund does): past the deadline they fail at once,
#: and the head sleeps through them without polling.
_TIMED = frozenset({"rpm", "blocked"})


class Denied(NamedTuple):
    """A backend's answer when there is no capacity now."""

    #: ``rpm``, ``tpm``, ``in_flight``, ``blocked`` or ``too_large``.
    reason: str
    #: Seconds until capacity may return; None when unknown (in flight) or never (too large).
    wait: float | None
    #: For the error message: the limit, the header that blocked.
    detail: str = ""


class _Waiter:
    """One caller in a key's queue; ``poke`` wakes it (or its next sleep, if it is busy)."""

    __slots__ = ("wake", "poked")

    def __init__(self) -> None:
        self.wake: asyncio.Future[None] | None = None
        self.poked = False

    def poke(self) -> None:
        fut = self.wake
        if fut is None:
            self.poked = True  # busy (a round trip): do not sleep on stale news
        elif not fut.done():
            fut.set_result(None)


class KeyState:
    """This process's view of one key; a backend's subclass adds what it keeps."""

    __slots__ = ("queue", "blocked_until", "block_reason", "learned_rpm", "learned_tpm", "hold", "head_wait")

    def __init__(self) -> None:
        #: Callers waiting, first come first; ``queue[0]`` talks to the backend.
        self.queue: deque[_Waiter] = deque()
        #: ``clock`` time a header block ends (0: none) and the header.
        self.blocked_until = 0.0
        self.block_reason: str | None = None
        #: Limits taught by headers (per window).
        self.learned_rpm: int | None = None
        self.learned_tpm: int | None = None
        #: Average seconds a permit is held: the estimate for in-flight waits.
        self.hold = 0.0
        #: What the head waits for: (reason, ``clock`` time capacity may return or None).
        self.head_wait: tuple[str, float | None] | None = None

    def poke(self) -> None:
        """Capacity may be back: wake the head of the queue."""
        if self.queue:
            self.queue[0].poke()


StateT = TypeVar("StateT", bound=KeyState)
TicketT = TypeVar("TicketT")


# --------------------------------------------------------------------------------------
# Permit and the Limiter protocol
# --------------------------------------------------------------------------------------
class Permit:
    """One granted request.  ``async with`` releases its in-flight slot on exit.

    Leaving without :meth:`settle` keeps the whole reservation (counts as used).
    """

    __slots__ = ("key", "tokens", "waited", "granted_at", "_released", "_owner", "_state", "_ticket", "_t0")

    def __init__(self, owner: LimiterCore[Any, Any], state: KeyState, key: str, tokens: int, ticket: Any,
                 granted_at: float | None = None) -> None:
        self.key = key
        #: Tokens currently charged to the window for this request.
        self.tokens = tokens
        #: Seconds spent waiting for capacity (on the limiter's clock).
        self.waited = 0.0
        #: Wall-clock seconds of the grant on the backend's clock (Redis ``TIME`` for Redis), if known.
        self.granted_at = granted_at
        self._released = False
        self._owner = owner
        self._state = state
        self._ticket = ticket  # the backend's handle on the reservation
        self._t0 = owner._clock()

    async def settle(self, actual_tokens: int | None) -> None:
        """Charge ``actual_tokens`` instead of the reservation (None: keep it)."""
        if actual_tokens is None:
            return
        actual = max(0, int(actual_tokens))
        if actual == self.tokens:
            return
        delta = await self._owner._settle(self._state, self._ticket, actual)
        if delta is None:
            return  # not counted in a window (no rpm/tpm): nothing to charge
        self.tokens = actual
        if delta < 0:
            self._state.poke()

    async def release(self) -> None:
        """Free the in-flight slot; idempotent."""
        if self._released:
            return
        self._released = True
        st = self._state
        held = self._owner._clock() - self._t0
        st.hold = held if not st.hold else st.hold * 0.8 + held * 0.2
        freed = True
        try:
            freed = await self._owner._release(st, self._ticket)
        finally:
            if freed and st.queue:
                st.queue[0].poke()

    @property
    def released(self) -> bool:
        return self._released

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    def __repr__(self) -> str:
        return f"Permit(key={self.key!r}, tokens={self.tokens}, waited={self.waited:.3f})"


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


def _scale(per_minute: int | None, window: float) -> int | None:
    """A provider's per-minute limit expressed per limiter window."""
    if per_minute is None:
        return None
    if window == 60.0:
        return per_minute
    return max(1, int(per_minute * window / 60.0))


# --------------------------------------------------------------------------------------
# The shared core
# --------------------------------------------------------------------------------------
class LimiterCore(ABC, Generic[StateT, TicketT]):
    """A :class:`Limiter` but for the backend's primitives (see the module docstring)."""

    #: Longest sleep of the head on a wait another process may end early (tokens, in flight).
    poll: float = math.inf

    def __init__(self, *, window: float, margin: float, clock: Clock = time.monotonic,
                 call_later: CallLater | None = None) -> None:
        if not window > 0 or margin < 0:
            raise ArunUsageError("window must be > 0 and margin >= 0")
        self.window = float(window)
        #: Extra seconds a reservation stays counted, to absorb the skew between the
        #: decision and the upstream's own clock (transit time that varies per request).
        self.margin = float(margin)
        self._clock = clock
        self._call_later = call_later
        self._states: dict[str, StateT] = {}
        self._closed = False

    # -- what a backend supplies ------------------------------------------------------------
    @abstractmethod
    def _new_state(self, key: str) -> StateT: ...

    @abstractmethod
    async def _reserve(self, key: str, st: StateT, rpm: int | None, tpm: int | None, max_in_flight: int | None,
                       tokens: int, now: float) -> Permit | Denied:
        """Atomically: reserve 1 request + ``tokens`` and return the permit, or say why not."""

    @abstractmethod
    async def _settle(self, st: StateT, ticket: TicketT, actual: int) -> int | None:
        """Charge ``actual`` tokens instead; the change counted (0 once out of the window), None if never counted."""

    @abstractmethod
    async def _release(self, st: StateT, ticket: TicketT) -> bool:
        """Free the in-flight slot; True when that may let a waiter in."""

    def _share(self, st: StateT, info: RateLimitHeaders, learned: dict[str, int]) -> None:
        """Publish a header block and newly learned limits to the other processes (if any)."""

    @abstractmethod
    async def snapshot(self, key: str, spec: LimitSpec) -> LimitState: ...

    # -- acquire ------------------------------------------------------------------------------
    async def acquire(self, key: str, spec: LimitSpec, tokens: int, *, deadline: float | None = None) -> Permit:
        """Reserve 1 request + ``tokens``; wait for capacity up to ``deadline`` seconds."""
        if self._closed:
            raise NotStartedError("limiter is closed")
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = self._new_state(key)
        tokens = max(0, int(tokens))
        start = self._clock()
        got: Permit | Denied | None
        if not st.queue:
            got = await self._attempt(key, st, spec, tokens, start)
            if isinstance(got, Permit):
                return got
        else:
            got = self._local_denial(st, self._effective(st, spec)[1], tokens, start)
        if got is not None and got.reason == "too_large":
            raise LimitExceededError(key, got.reason, None, got.detail)
        return await self._wait(key, st, spec, tokens, start, deadline, got)

    def _effective(self, st: StateT, spec: LimitSpec) -> tuple[int | None, int | None]:
        """rpm and tpm: the spec tightened by what headers taught."""
        return stricter(spec.rpm, st.learned_rpm), stricter(spec.tpm, st.learned_tpm)

    def _limit_state(self, key: str, spec: LimitSpec, rpm: int | None, tpm: int | None, requests: int, tokens: int,
                     in_flight: int, block_seconds: float, block_reason: str | None) -> LimitState:
        """What :meth:`snapshot` reports, from what a backend counted in the window now."""
        blocked = block_seconds > 0
        return LimitState(
            key=key,
            rpm=rpm,
            tpm=tpm,
            max_in_flight=spec.max_in_flight,
            requests_remaining=None if rpm is None else max(0, rpm - requests),
            tokens_remaining=None if tpm is None else max(0, tpm - tokens),
            in_flight=in_flight,
            blocked_until=time.time() + block_seconds if blocked else None,
            block_reason=block_reason if blocked else None,
            window=self.window,
        )

    def _local_denial(self, st: StateT, tpm: int | None, tokens: int, now: float) -> Denied | None:
        """What this process knows without asking the backend: too large, blocked by a header."""
        if tpm is not None and tokens > tpm:
            return Denied("too_large", None, f"{tokens} tokens > tpm {tpm}")
        if st.blocked_until > now:
            return Denied("blocked", st.blocked_until - now, st.block_reason or "")
        return None

    async def _attempt(self, key: str, st: StateT, spec: LimitSpec, tokens: int, now: float) -> Permit | Denied:
        rpm, tpm = self._effective(st, spec)
        denied = self._local_denial(st, tpm, tokens, now)
        if denied is not None:
            return denied
        got = await self._reserve(key, st, rpm, tpm, spec.max_in_flight, tokens, now)
        if not isinstance(got, Permit) and got.reason == "blocked" and got.wait is not None:
            # another process's header block: keep a copy here, no round trips until it ends
            until = self._clock() + got.wait
            if until > st.blocked_until:
                st.blocked_until, st.block_reason = until, got.detail or st.block_reason
        return got

    async def _wait(self, key: str, st: StateT, spec: LimitSpec, tokens: int, start: float,
                    deadline: float | None, denied: Denied | None) -> Permit:
        """Queue (FIFO) until granted; ``denied`` is the answer the caller already has, if any."""
        end = math.inf if deadline is None else start + max(0.0, float(deadline))
        queue = st.queue
        me = _Waiter()
        queue.append(me)
        got: Permit | Denied | None = denied
        try:
            while True:
                if self._closed:
                    raise LimitExceededError(key, "closed", None, "limiter closed")
                if queue[0] is not me:  # behind earlier callers
                    got = None
                    now = self._clock()
                    if now >= end:
                        raise self._queue_timeout(key, st, now)
                    await self._sleep(me, end - now)
                    continue
                if got is None:
                    got = await self._attempt(key, st, spec, tokens, self._clock())
                if isinstance(got, Permit):
                    got.waited = self._clock() - start
                    return got
                now = self._clock()
                reason, wait = got.reason, got.wait
                if reason == "too_large":
                    raise LimitExceededError(key, reason, None, got.detail)
                remaining = end - now
                if remaining <= 0 or (wait is not None and wait > remaining and reason in _TIMED):
                    raise LimitExceededError(key, reason, self._estimate(st, wait), got.detail)
                st.head_wait = (reason, None if wait is None else now + wait)
                timeout = remaining if wait is None else min(wait, remaining)
                if reason not in _TIMED:
                    timeout = min(timeout, self.poll)
                got = None
                await self._sleep(me, timeout)
        finally:
            head = queue[0] is me
            queue.remove(me)
            if head:
                st.head_wait = None
                st.poke()  # the next caller is head now

    def _estimate(self, st: StateT, wait: float | None) -> float:
        return wait if wait is not None else (st.hold or 1.0)  # in flight: about one permit's holding time

    def _queue_timeout(self, key: str, st: StateT, now: float) -> LimitExceededError:
        """The deadline passed behind earlier callers: report what the head waits for."""
        if st.head_wait is None:
            return LimitExceededError(key, "queue", st.hold or 1.0, "deadline passed in the queue")
        reason, until = st.head_wait
        wait = None if until is None else max(0.0, until - now)
        return LimitExceededError(key, reason, self._estimate(st, wait), "deadline passed in the queue")

    async def _sleep(self, me: _Waiter, timeout: float) -> None:
        """Until poked or ``timeout`` seconds of the clock have passed."""
        if me.poked:
            me.poked = False
            return
        loop = asyncio.get_running_loop()
        fut = me.wake = loop.create_future()
        handle: TimerHandle | None = None
        if timeout != math.inf:
            call_later: CallLater = self._call_later or loop.call_later
            handle = call_later(timeout, me.poke)
        try:
            await fut
        finally:
            me.wake = None
            if handle is not None:
                handle.cancel()

    # -- headers, closing ---------------------------------------------------------------------
    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers: block the key until a reset, tighten limits."""
        info = parse_rate_limit_headers(headers)
        if info.empty:
            return
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = self._new_state(key)
        if info.block_for > 0:
            until = self._clock() + info.block_for
            if until > st.blocked_until:
                st.blocked_until, st.block_reason = until, info.reason
        learned: dict[str, int] = {}
        rpm = _scale(info.limit_requests, self.window)
        tpm = _scale(info.limit_tokens, self.window)
        if rpm is not None and rpm != st.learned_rpm:
            st.learned_rpm = learned["rpm"] = rpm
        if tpm is not None and tpm != st.learned_tpm:
            st.learned_tpm = learned["tpm"] = tpm
        self._share(st, info, learned)
        if learned:
            st.poke()

    async def aclose(self) -> None:
        """Refuse new acquires; every waiter fails with reason ``closed``."""
        self._closed = True
        for st in self._states.values():
            for waiter in st.queue:
                waiter.poke()

    async def __aenter__(self) -> LimiterCore[StateT, TicketT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
