"""A clock for the limiter tests that moves only when told (imported by module name; no conftest needed).

Pass it as ``clock=clock, call_later=clock.call_later``: the limiter then
measures deadlines by it and schedules every sleep on it, so a wait lasts
exactly as long as the test advances the clock -- and a call that returns
while the clock stands still returned without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class FakeTimer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def run_ready(rounds: int = 100) -> None:
    """Let every task that can run without I/O run, and the tasks those wake."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """Monotonic seconds that move only by :meth:`advance`, and the timers the limiter sleeps on."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._timers: list[FakeTimer] = []

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + max(0.0, delay), callback)
        self._timers.append(timer)
        return timer

    @property
    def timers(self) -> list[float]:
        """Seconds from now until each pending timer, soonest first (one per sleeping waiter)."""
        self._timers = [t for t in self._timers if not t.cancelled]
        return sorted(t.when - self.now for t in self._timers)

    async def advance(self, seconds: float) -> None:
        """Move on by ``seconds``, firing the timers that fall due in order; let the woken tasks run."""
        target = self.now + seconds
        while True:
            due = [t for t in self._timers if not t.cancelled and t.when <= target]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self._timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
            await run_ready()
        self.now = target
        await run_ready()

    async def sleepers(self, n: int = 1, within: float = 10.0) -> None:
        """Until ``n`` timers are pending: that many waiters went to sleep (Redis: after their round trips).

        ``within`` real seconds only bound a broken test; nothing is asserted about them.
        """
        give_up = time.monotonic() + within
        while len(self.timers) < n:
            assert time.monotonic() < give_up, f"expected {n} sleeping waiters, have {len(self.timers)}"
            await asyncio.sleep(0.001)
