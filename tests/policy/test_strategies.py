"""Balancing strategies: Dify's round robin, weighted spread, least in flight, latency-aware P2C."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from policy_helpers import CHAT, FAST, SHORT_COOL, expected, messages, openai_target

from arun import ModelRuntime
from arun.policy.router import PolicyRouter
from arun.policy.strategies import (
    ConfigStats,
    LatencyAware,
    LeastInFlight,
    PickContext,
    RoundRobin,
    Weighted,
    make_strategy,
)
from arun.state.memory import MemoryStateStore
from arun.testing import Fault, UpstreamSimulator

IDS = ["a", "b", "c"]


def _ctx(weights: dict[str, float] | None = None) -> PickContext:
    return PickContext(MemoryStateStore(), "t:p:llm:m", {i: ConfigStats() for i in IDS}, weights or {})


async def test_round_robin_is_difys_order_and_skips_cooling() -> None:
    ctx = _ctx()
    rr = RoundRobin()
    assert [(await rr.pick(ctx, IDS))[0] for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    await ctx.store.lb_cooldown(ctx.scope, "b", 30, "x")
    picks = [(await rr.pick(ctx, IDS))[0] for _ in range(4)]
    assert "b" not in picks


async def test_weighted_spread_matches_weights_exactly() -> None:
    ctx = _ctx({"a": 1, "b": 3, "c": 6})
    w = Weighted()
    picks = Counter([(await w.pick(ctx, IDS))[0] for _ in range(1000)])
    assert picks == {"a": 100, "b": 300, "c": 600}
    # interleaved, not in bursts: in any window of 10 picks, c appears 6 times
    seq = [(await w.pick(ctx, IDS))[0] for _ in range(10)]
    assert seq.count("c") == 6


async def test_weighted_skips_cooling_configs() -> None:
    ctx = _ctx({"a": 1, "b": 3, "c": 6})
    await ctx.store.lb_cooldown(ctx.scope, "c", 30, "x")
    w = Weighted()
    picks = Counter([(await w.pick(ctx, IDS))[0] for _ in range(400)])
    assert picks == {"a": 100, "b": 300}
    for cid in ("a", "b"):
        await ctx.store.lb_cooldown(ctx.scope, cid, 30, "x")
    cid, cooling = await w.pick(ctx, IDS)
    assert cid is None and sorted(c for c, _ in cooling) == IDS


async def test_least_in_flight_picks_the_least_loaded() -> None:
    ctx = _ctx()
    ctx.stats["a"].in_flight = 5
    ctx.stats["b"].in_flight = 1
    ctx.stats["c"].in_flight = 3
    s = LeastInFlight()
    assert {(await s.pick(ctx, IDS))[0] for _ in range(10)} == {"b"}
    ctx.stats["c"].in_flight = 1  # tie between b and c: both get picks
    assert {(await s.pick(ctx, IDS))[0] for _ in range(10)} == {"b", "c"}


async def test_latency_aware_prefers_low_ewma_and_probes_stale() -> None:
    now = [100.0]
    ctx = _ctx()
    ctx.clock = lambda: now[0]
    ctx.stats["a"].sample(0.5, 100.0)
    ctx.stats["b"].sample(0.01, 100.0)
    ctx.stats["c"].sample(0.02, 100.0)
    s = LatencyAware(rng=random.Random(1), probe_after=10.0)
    picks = Counter([(await s.pick(ctx, IDS))[0] for _ in range(300)])
    assert picks["a"] == 0  # P2C never picks the worst of two
    now[0] = 200.0  # every sample is stale: a gets probed again
    ctx.stats["b"].in_flight = ctx.stats["c"].in_flight = 1
    picks = Counter([(await s.pick(ctx, IDS))[0] for _ in range(300)])
    assert picks["a"] > 0


def test_ewma() -> None:
    s = ConfigStats()
    s.sample(1.0, 0.0)
    assert s.ewma_ttft == 1.0
    s.sample(0.0, 1.0, alpha=0.5)
    assert s.ewma_ttft == 0.5


def test_make_strategy() -> None:
    assert make_strategy("weighted").name == "weighted"
    with pytest.raises(ValueError):
        make_strategy("nope")


async def test_weighted_through_the_router() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = PolicyRouter(rt, retry=FAST, cooldowns=SHORT_COOL)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"], strategy="weighted", weights=[1, 3])
        for _ in range(40):
            await router.invoke(tgt, messages(), stream=False)
        assert sim.stats.by_key == {"sk-a": 10, "sk-b": 30}


@pytest.mark.parametrize("stream", [True, False])
async def test_latency_aware_moves_traffic_away_from_a_slow_config(stream: bool) -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(first_byte_delay=0.03), path=CHAT, key="sk-slow", times=None)
        router = PolicyRouter(rt, retry=FAST, cooldowns=SHORT_COOL)
        tgt = openai_target(sim.url, ["sk-slow", "sk-fast1", "sk-fast2"], strategy="latency_aware")
        sem = asyncio.Semaphore(4)

        async def one(i: int) -> None:
            async with sem:
                out = await router.invoke(tgt, messages(f"q {i}"), stream=stream)
                result = out if not stream else await out.collect()
                assert result.message.content == expected(f"q {i}")

        await asyncio.gather(*[one(i) for i in range(300)])
        slow = sim.stats.by_key["sk-slow"]
        assert slow < 0.1 * 300, sim.stats.by_key  # round robin would send 100
        states = {s.config_id: s for s in await router.states(tgt)}
        assert states["sk-slow"].ewma_ttft > 5 * states["sk-fast1"].ewma_ttft


async def test_least_in_flight_through_the_router_avoids_a_busy_config() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = PolicyRouter(rt, retry=FAST, cooldowns=SHORT_COOL)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"], strategy="least_in_flight")
        held = [await router.invoke(tgt, messages("x y"), stream=True) for _ in range(2)]  # one on each
        held.append(await router.invoke(tgt, messages("x y"), stream=True))  # a third: either
        busy = Counter(s.config_id for s in held)
        quiet = "sk-a" if busy["sk-a"] < busy["sk-b"] else "sk-b"
        r = await router.invoke(tgt, messages(), stream=False)
        assert r.message.content == expected()
        assert sim.stats.by_key[quiet] == busy[quiet] + 1
        for s in held:
            await s.aclose()
