"""In-process :class:`~arun.policy.limits.Limiter`: the sliding-window log of one process.

Every check-and-reserve runs without awaiting, so it is atomic under asyncio;
waiting, deadlines and permits are :class:`~arun.policy.limits_core.LimiterCore`'s.
"""

from __future__ import annotations

import time
from collections import deque

from arun.policy.limits_core import CallLater, Clock, Denied, KeyState, LimiterCore, Permit
from arun.policy.limits_spec import DEFAULT_WINDOW, LimitSpec, LimitState

__all__ = ["MemoryLimiter"]


class _Entry:
    """One reservation in the log."""

    __slots__ = ("at", "tokens", "counted")

    def __init__(self, at: float, tokens: int) -> None:
        self.at = at
        self.tokens = tokens
        self.counted = True  # False once it left the window


class _Window(KeyState):
    __slots__ = ("log", "used", "in_flight")

    def __init__(self) -> None:
        super().__init__()
        self.log: deque[_Entry] = deque()  # oldest first
        self.used = 0  # tokens of the entries in the log
        self.in_flight = 0


class MemoryLimiter(LimiterCore[_Window, _Entry | None]):
    """Limits for one process (the embedded default).

    ``window`` is the rpm/tpm window in seconds (60; shorter in tests);
    ``margin`` keeps each reservation counted that much longer (default 0);
    ``clock`` and ``call_later`` drive every wait (see :mod:`arun.policy.limits_core`).
    """

    def __init__(self, *, window: float = DEFAULT_WINDOW, margin: float = 0.0, clock: Clock = time.monotonic,
                 call_later: CallLater | None = None) -> None:
        super().__init__(window=window, margin=margin, clock=clock, call_later=call_later)
        self._span = self.window + self.margin

    def _new_state(self, key: str) -> _Window:
        return _Window()

    def _prune(self, st: _Window, now: float) -> None:
        log = st.log
        cutoff = now - self._span
        while log and log[0].at <= cutoff:
            e = log.popleft()
            e.counted = False
            st.used -= e.tokens

    async def _reserve(self, key: str, st: _Window, rpm: int | None, tpm: int | None, max_in_flight: int | None,
                       tokens: int, now: float) -> Permit | Denied:
        log = st.log
        if log:
            self._prune(st, now)
        span = self._span
        if rpm is not None and len(log) >= rpm:
            return Denied("rpm", log[len(log) - rpm].at + span - now, f"limit {rpm}")
        if tpm is not None and st.used + tokens > tpm:
            left = st.used
            for e in log:
                left -= e.tokens
                if left + tokens <= tpm:
                    return Denied("tpm", e.at + span - now, f"limit {tpm}")
            return Denied("tpm", span, f"limit {tpm}")  # not reached: the log holds every counted token
        if max_in_flight is not None and st.in_flight >= max_in_flight:
            return Denied("in_flight", None, f"limit {max_in_flight}")
        entry = None
        if rpm is not None or tpm is not None:
            entry = _Entry(now, tokens)
            log.append(entry)
            st.used += tokens
        st.in_flight += 1
        return Permit(self, st, key, tokens, entry)

    async def _settle(self, st: _Window, ticket: _Entry | None, actual: int) -> int | None:
        if ticket is None:
            return None
        delta = actual - ticket.tokens
        ticket.tokens = actual
        if not ticket.counted:
            return 0
        st.used += delta
        return delta

    async def _release(self, st: _Window, ticket: _Entry | None) -> bool:
        st.in_flight -= 1
        return True

    async def snapshot(self, key: str, spec: LimitSpec) -> LimitState:
        st = self._states.get(key) or _Window()
        now = self._clock()
        rpm, tpm = self._effective(st, spec)
        self._prune(st, now)
        return self._limit_state(key, spec, rpm, tpm, len(st.log), st.used, st.in_flight, st.blocked_until - now, st.block_reason)

    def __repr__(self) -> str:
        return f"MemoryLimiter(window={self.window}, keys={len(self._states)})"
