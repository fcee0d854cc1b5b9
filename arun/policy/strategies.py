"""Balancing strategies over the credential configs of one target.

Every strategy answers one question — *which healthy config next?* — from the
shared cooldown state (:class:`~arun.state.base.StateStore`, memory or Redis)
and the router's in-process statistics (:class:`ConfigStats`):

* :class:`RoundRobin` — Dify's, exactly: one atomic ``lb_pick`` (shared counter,
  wrap at 1e7, cooled configs skipped), so several processes share one rotation;
* :class:`Weighted` — smooth weighted round robin (nginx's): over any window a
  config with weight 3 gets three times the picks of one with weight 1, evenly
  interleaved;
* :class:`LeastInFlight` — the config with the fewest calls of this process in
  flight, ties broken in rotation;
* :class:`LatencyAware` — power of two choices: two random healthy configs, keep
  the one with the lower ``ewma(time to first token) * (in_flight + 1)``; a config
  without a sample for ``probe_after`` seconds scores 0 so it is probed again
  (a slow config gets traffic back once it recovers).

``pick`` returns ``(config_id or None, cooling)`` where ``cooling`` lists
``(config_id, remaining_seconds)`` of the configs skipped because they cool —
the same shape as :meth:`StateStore.lb_pick`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from arun.errors import ArunUsageError
from arun.state.base import StateStore

__all__ = [
    "ConfigStats",
    "PickContext",
    "Strategy",
    "RoundRobin",
    "Weighted",
    "LeastInFlight",
    "LatencyAware",
    "STRATEGIES",
    "make_strategy",
]


@dataclass(slots=True)
class ConfigStats:
    """In-process counters of one credential config (per target)."""

    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    ewma_ttft: float | None = None
    last_sample: float | None = None
    last_error: str | None = None

    def sample(self, seconds: float, now: float, alpha: float = 0.3) -> None:
        """Feed one time-to-first-token (or non-stream latency) sample into the EWMA."""
        prev = self.ewma_ttft
        self.ewma_ttft = seconds if prev is None else prev + alpha * (seconds - prev)
        self.last_sample = now


@dataclass(slots=True)
class PickContext:
    store: StateStore
    scope: str
    stats: dict[str, ConfigStats]
    weights: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic


class Strategy(Protocol):
    name: str

    async def pick(
        self, ctx: PickContext, ids: list[str], exclude: frozenset[str] | set[str] = frozenset()
    ) -> tuple[str | None, list[tuple[str, float]]]: ...


async def _healthy(ctx: PickContext, ids: list[str], exclude: frozenset[str] | set[str]) -> tuple[list[str], list[tuple[str, float]]]:
    """The configs not excluded, split into healthy ones and cooling ones (with their remaining seconds)."""
    if exclude:
        ids = [i for i in ids if i not in exclude]
    states = await ctx.store.lb_state(ctx.scope, ids)
    healthy: list[str] = []
    cooling: list[tuple[str, float]] = []
    for cid, st in zip(ids, states):
        if st.in_cooldown:
            cooling.append((cid, st.ttl))
        else:
            healthy.append(cid)
    return healthy, cooling


class RoundRobin:
    """Dify's round robin through the shared state store (one atomic call per pick)."""

    name = "round_robin"

    async def pick(
        self, ctx: PickContext, ids: list[str], exclude: frozenset[str] | set[str] = frozenset()
    ) -> tuple[str | None, list[tuple[str, float]]]:
        if len(ids) == 1:  # nothing to rotate; keep Dify's counter untouched
            if ids[0] in exclude:
                return None, []
            st = (await ctx.store.lb_state(ctx.scope, ids))[0]
            return (None, [(ids[0], st.ttl)]) if st.in_cooldown else (ids[0], [])
        # Dify's fetch_next: the shared counter over *all* configs, cooling ones skipped; a config
        # this request already tried (and did not cool) is skipped the same way
        cooling: list[tuple[str, float]] = []
        for _ in range(len(ids)):
            cid, cooling = await ctx.store.lb_pick(ctx.scope, ids)
            if cid is None or cid not in exclude:
                return cid, cooling
        return None, cooling


class Weighted:
    """Smooth weighted round robin over the healthy configs (in-process state)."""

    name = "weighted"

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], float] = {}

    async def pick(
        self, ctx: PickContext, ids: list[str], exclude: frozenset[str] | set[str] = frozenset()
    ) -> tuple[str | None, list[tuple[str, float]]]:
        healthy, cooling = await _healthy(ctx, ids, exclude)
        if not healthy:
            return None, cooling
        cur = self._current
        total = 0.0
        best: str | None = None
        best_value = 0.0
        for cid in healthy:
            w = float(ctx.weights.get(cid, 1.0))
            total += w
            key = (ctx.scope, cid)
            value = cur.get(key, 0.0) + w
            cur[key] = value
            if best is None or value > best_value:
                best, best_value = cid, value
        assert best is not None
        cur[(ctx.scope, best)] = best_value - total
        return best, cooling


class LeastInFlight:
    """Fewest calls in flight in this process; ties broken in rotation."""

    name = "least_in_flight"

    def __init__(self) -> None:
        self._turn = 0

    async def pick(
        self, ctx: PickContext, ids: list[str], exclude: frozenset[str] | set[str] = frozenset()
    ) -> tuple[str | None, list[tuple[str, float]]]:
        healthy, cooling = await _healthy(ctx, ids, exclude)
        if not healthy:
            return None, cooling
        self._turn += 1
        n = len(healthy)
        start = self._turn % n
        best: str | None = None
        best_load = 0
        stats = ctx.stats
        for i in range(n):
            cid = healthy[(start + i) % n]
            s = stats.get(cid)
            load = s.in_flight if s is not None else 0
            if best is None or load < best_load:
                best, best_load = cid, load
        return best, cooling


class LatencyAware:
    """Power of two choices over ``ewma_ttft * (in_flight + 1)``."""

    name = "latency_aware"

    def __init__(self, *, probe_after: float = 10.0, rng: random.Random | None = None) -> None:
        self.probe_after = probe_after
        self._rng = rng or random.Random()

    def score(self, ctx: PickContext, cid: str, now: float) -> float:
        s = ctx.stats.get(cid)
        if s is None or s.ewma_ttft is None or s.last_sample is None:
            return 0.0  # never measured: explore it
        if now - s.last_sample > self.probe_after and s.in_flight == 0:
            return 0.0  # stale: probe it again
        return s.ewma_ttft * (s.in_flight + 1)

    async def pick(
        self, ctx: PickContext, ids: list[str], exclude: frozenset[str] | set[str] = frozenset()
    ) -> tuple[str | None, list[tuple[str, float]]]:
        healthy, cooling = await _healthy(ctx, ids, exclude)
        if not healthy:
            return None, cooling
        if len(healthy) == 1:
            return healthy[0], cooling
        a, b = self._rng.sample(healthy, 2)
        now = ctx.clock()
        return (a if self.score(ctx, a, now) <= self.score(ctx, b, now) else b), cooling


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "round_robin": RoundRobin,
    "weighted": Weighted,
    "least_in_flight": LeastInFlight,
    "latency_aware": LatencyAware,
}


def make_strategy(spec: str | Strategy) -> Strategy:
    """A strategy from its name (``round_robin``, ``weighted``, ``least_in_flight``, ``latency_aware``) or an instance."""
    if isinstance(spec, str):
        try:
            return STRATEGIES[spec]()
        except KeyError:
            raise ArunUsageError(f"unknown balancing strategy {spec!r}; choose one of {sorted(STRATEGIES)}") from None
    return spec
