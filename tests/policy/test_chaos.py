"""Chaos: 5,000 streamed and non-streamed requests over 3 credential configs with ~20% injected faults.

Every request either completes with exactly the simulator's text, or ends in a typed
``InvokeError``; none ends as a silent short success; none is answered twice (a
stream's text is the expected text or a strict prefix of it, delivered once); no
connection stays acquired.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

from policy_helpers import CHAT, anthropic_target, expected, messages, openai_target

from arun import HttpConfig, ModelRuntime
from arun.errors import (
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
)
from arun.policy.retry import RetryPolicy
from arun.policy.router import Cooldowns, Fallback, PolicyRouter, Route
from arun.testing import Fault, UpstreamSimulator

N = 5000
CONCURRENCY = 64
FAULT_RATE = 0.20


def _fault(rng: random.Random) -> Fault:
    kind = rng.randrange(8)
    if kind == 0:
        return Fault(status=429, retry_after=rng.choice([0.01, 0.02, 0.05]))
    if kind == 1:
        return Fault(status=503)
    if kind == 2:
        return Fault(status=529)
    if kind == 3:
        return Fault(disconnect_after=rng.choice([0, 1]))  # before the first content chunk
    if kind == 4:
        return Fault(disconnect_after=rng.choice([3, 4, 5]))  # after it (a stream); before the body (non-stream)
    if kind == 5:
        return Fault(stall_after=rng.choice([1, 4]), stall_seconds=0.5)  # idle timeout 0.15 s
    if kind == 6:
        return Fault(error_event_after=rng.choice([0, 4]))
    return Fault(status=500)


async def test_chaos_5000_requests() -> None:
    rng = random.Random(20240607)
    counts: Counter[str] = Counter()
    totals = Counter()

    def on_trace(trace: Any) -> None:
        totals["retries"] += trace.retries
        totals["rotations"] += trace.rotations
        totals["fallbacks"] += trace.fallbacks
        totals["attempts"] += trace.attempts

    started = time.perf_counter()
    async with UpstreamSimulator() as sim, ModelRuntime(http=HttpConfig(idle_timeout=0.15)) as rt:
        router = PolicyRouter(
            rt,
            retry=RetryPolicy(max_retries=2, max_rotations=2, base_delay=0.002, max_delay=0.02, retry_after_cap=1.0),
            cooldowns=Cooldowns(rate_limit=0.05, auth=0.05, connection=0.02),
            wait_deadline=0.1,
            on_trace=on_trace,
        )
        route = Route(
            openai_target(sim.url, ["sk-1", "sk-2", "sk-3"], strategy="least_in_flight"),
            [Fallback(anthropic_target(sim.url), {InvokeRateLimitError, InvokeServerUnavailableError, InvokeConnectionError})],
            max_fallbacks=1,
        )
        sem = asyncio.Semaphore(CONCURRENCY)
        faults_injected = 0

        async def one(i: int, stream: bool, fault: Fault | None) -> None:
            nonlocal faults_injected
            text = f"request {i} says hello"
            want = expected(text)
            async with sem:
                if fault is not None:
                    sim.faults.push(fault, path=CHAT)
                    faults_injected += 1
                try:
                    out = await router.invoke(route, messages(text), stream=stream)
                    if not stream:
                        got = out.message.content
                        if got == want:
                            counts["completed"] += 1
                        else:
                            counts["WRONG non-stream content"] += 1
                        return
                    pieces: list[str] = []
                    try:
                        async with out:
                            async for chunk in out:
                                c = chunk.delta.message.content
                                if isinstance(c, str):
                                    pieces.append(c)
                    except InvokeStreamInterruptedError as err:
                        got = "".join(pieces)
                        assert err.partial_usage is not None  # type: ignore[attr-defined]
                        if got and want.startswith(got) and got != want:
                            counts["interrupted after commit: InvokeStreamInterruptedError"] += 1
                        else:
                            counts["BAD partial (duplicated or foreign text)"] += 1
                        return
                    got = "".join(pieces)
                    if got == want and out.outcome == "completed":
                        counts["completed"] += 1
                    elif want.startswith(got):
                        counts["SILENT SHORT SUCCESS"] += 1
                    else:
                        counts["BAD stream content (duplicated or foreign)"] += 1
                except InvokeError as err:
                    counts[f"typed error: {type(err).__name__}"] += 1
                except Exception as err:  # anything else is a bug
                    counts[f"UNTYPED {type(err).__name__}: {err}"] += 1

        jobs = []
        for i in range(N):
            stream = rng.random() < 0.5
            fault = _fault(rng) if rng.random() < FAULT_RATE else None
            jobs.append(one(i, stream, fault))
        await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - started
        acquired = rt.http.acquired_connections()
        upstream = dict(sim.stats.by_key)
        leftover = len(sim.faults.pending)
        states = await router.states(route)

    print(f"\nchaos: {N} requests in {elapsed:.1f} s, {faults_injected} faults injected ({leftover} unused)")
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {v:5d}  {k}")
    print(f"  attempts={totals['attempts']} retries={totals['retries']} rotations={totals['rotations']} fallbacks={totals['fallbacks']}")
    print(f"  upstream requests by key: {upstream}")
    print(f"  acquired connections at the end: {acquired}")

    assert sum(counts.values()) == N  # every request has exactly one outcome
    bad = {k: v for k, v in counts.items() if k.startswith(("WRONG", "BAD", "SILENT", "UNTYPED"))}
    assert not bad, bad
    assert counts["completed"] > 0.9 * N
    assert counts["interrupted after commit: InvokeStreamInterruptedError"] > 0  # the chaos did reach committed streams
    assert totals["retries"] > 0 and totals["rotations"] > 0
    assert acquired == 0
    assert all(s.in_flight == 0 for s in states)
    assert elapsed < 60
