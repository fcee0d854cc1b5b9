"""Overhead of the policy stack (``arun.policy.PolicyRouter``) per request, memory and Redis state.

    .venv/bin/python benchmarks/bench_policy_stack.py [--n 5000] [--sim-n 2000] [--redis-url URL]

Two measurements, each the median of 3 runs of sequential requests from one coroutine:

* **stub**: the model is an in-process stub (a prebuilt ``LLMResult``, or a stream of
  16 prebuilt chunks), so the difference to calling the stub directly is exactly the
  router's cost: strategy pick (one state call), in-flight accounting, EWMA, trace,
  commit-point wrapper for streams.  No limiter (a config without limits costs nothing);
  with ``--limits`` a memory limiter is added.
* **sim**: the OpenAI provider against the upstream simulator over real sockets, direct
  ``llm.invoke`` vs the router (non-stream) — the end-to-end view; noisier.

Prints a Markdown table in µs per request; "overhead" is router minus direct.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arun import ModelRuntime, UserPromptMessage
from arun.entities.llm import LLMResult, LLMResultChunk, LLMResultChunkDelta, LLMUsage
from arun.entities.messages import AssistantPromptMessage
from arun.model_types.llm_stream import LLMStream
from arun.policy.router import CredentialConfig, PolicyRouter, Target
from arun.state import MemoryStateStore, StateUnavailableError

MESSAGES = [UserPromptMessage(content="hello there, how are you today?")]
USAGE = LLMUsage(5, Decimal(0), Decimal(0), Decimal(0), 3, Decimal(0), Decimal(0), Decimal(0), 8, Decimal(0), "USD", 0.0)
RESULT = LLMResult(model="m", message=AssistantPromptMessage(content="Echo: hello"), usage=USAGE)
CHUNKS = [
    LLMResultChunk(model="m", delta=LLMResultChunkDelta(index=i, message=AssistantPromptMessage(content=f"w{i} ")))
    for i in range(15)
] + [LLMResultChunk(model="m", delta=LLMResultChunkDelta(index=15, message=AssistantPromptMessage(content=""), usage=USAGE, finish_reason="stop"))]


class _StubStream:
    __slots__ = ("_i",)

    def __init__(self) -> None:
        self._i = 0

    def __aiter__(self) -> "_StubStream":
        return self

    async def __anext__(self) -> LLMResultChunk:
        i = self._i
        if i >= len(CHUNKS):
            raise StopAsyncIteration
        self._i = i + 1
        return CHUNKS[i]

    async def aclose(self) -> None:
        pass


class _StubLLM:
    """Answers at once: a prebuilt result, or an :class:`LLMStream` (the one stream type) over prebuilt chunks."""

    async def invoke(self, model: str, credentials: Any, prompt_messages: Any, model_parameters: Any = None,
                     tools: Any = None, stop: Any = None, stream: bool = True, user: Any = None, callbacks: Any = None,
                     **extras: Any) -> Any:  # fmt: skip
        if not stream:
            return RESULT
        return LLMStream(self, _StubStream(), model, list(prompt_messages), perf_counter(), [], None)  # type: ignore[arg-type]

    def _transform_invoke_error(self, exc: BaseException, model: str | None = None, credentials: Any = None) -> BaseException:
        return exc


class _StubRuntime:
    def __init__(self) -> None:
        self.llm = _StubLLM()

    def get_model_instance(self, provider: str, model_type: str) -> Any:
        return self.llm


def _target(url: str | None = None, limits: Any = None) -> Target:
    creds = (lambda k: {"openai_api_key": k, "openai_api_base": url}) if url else (lambda k: {"k": k})
    return Target("openai", "gpt-4o-mini", [CredentialConfig(k, creds(k), limits=limits) for k in ("a", "b", "c")])


async def _time(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - t0) / n * 1e6


async def _median(fn: Any, n: int) -> float:
    await _time(fn, min(n, 500))  # warm up
    return statistics.median([await _time(fn, n) for _ in range(3)])


async def _consume(stream: Any) -> None:
    async for _ in stream:
        pass


async def bench_stub(state: Any, n: int, limiter: Any = None, limits: Any = None) -> dict[str, float]:
    rt = _StubRuntime()
    router = PolicyRouter(rt, state=state, limiter=limiter)
    tgt = _target(limits=limits)
    llm = rt.llm

    async def direct() -> None:
        await llm.invoke("gpt-4o-mini", {}, MESSAGES, {}, None, None, False)

    async def routed() -> None:
        await router.invoke(tgt, MESSAGES, stream=False)

    async def direct_stream() -> None:
        await _consume(await llm.invoke("gpt-4o-mini", {}, MESSAGES, {}, None, None, True))

    async def routed_stream() -> None:
        await _consume(await router.invoke(tgt, MESSAGES, stream=True))

    return {
        "direct": await _median(direct, n),
        "routed": await _median(routed, n),
        "direct_stream": await _median(direct_stream, n),
        "routed_stream": await _median(routed_stream, n),
    }


async def bench_sim(state: Any, n: int) -> dict[str, float]:
    from arun.testing import UpstreamSimulator

    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = PolicyRouter(rt, state=state)
        tgt = _target(sim.url)
        llm = rt.get_model_instance("openai", "llm")
        creds = tgt.configs[0].credentials

        async def direct() -> None:
            await llm.invoke("gpt-4o-mini", creds, MESSAGES, {}, None, None, False)

        async def routed() -> None:
            await router.invoke(tgt, MESSAGES, stream=False)

        return {"direct": await _median(direct, n), "routed": await _median(routed, n)}


def _redis_store(url: str) -> Any:
    from arun.state.redis import RedisStateStore

    sep = "&" if "?" in url else "?"
    return RedisStateStore.from_url(f"{url}{sep}prefix=bench-policy-{uuid.uuid4().hex[:8]}:")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--sim-n", type=int, default=2000)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--limits", action="store_true", help="add a memory limiter with a generous LimitSpec")
    args = ap.parse_args()

    limiter = limits = None
    if args.limits:
        from arun.policy.limits import LimitSpec, open_limiter

        limiter = open_limiter("memory://")
        limits = LimitSpec(rpm=10**9, tpm=10**12)

    rows: list[tuple[str, str, dict[str, float]]] = []
    rows.append(("stub", "memory", await bench_stub(MemoryStateStore(), args.n, limiter, limits)))
    redis = _redis_store(args.redis_url)
    try:
        rows.append(("stub", "redis", await bench_stub(redis, max(1000, args.n // 5), limiter, limits)))
    except StateUnavailableError as exc:
        print(f"(redis skipped: {exc})", file=sys.stderr)
    rows.append(("sim", "memory", await bench_sim(MemoryStateStore(), args.sim_n)))
    try:
        rows.append(("sim", "redis", await bench_sim(redis, args.sim_n)))
    except StateUnavailableError as exc:
        print(f"(redis skipped: {exc})", file=sys.stderr)
    await redis.aclose()

    print("| model | state | mode | direct µs/req | routed µs/req | overhead µs/req |")
    print("|---|---|---|---|---|---|")
    for model, state, r in rows:
        print(f"| {model} | {state} | non-stream | {r['direct']:.1f} | {r['routed']:.1f} | {r['routed'] - r['direct']:.1f} |")
        if "direct_stream" in r:
            print(
                f"| {model} | {state} | stream (16 chunks) | {r['direct_stream']:.1f} | {r['routed_stream']:.1f} | "
                f"{r['routed_stream'] - r['direct_stream']:.1f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
