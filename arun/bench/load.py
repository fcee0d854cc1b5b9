"""Load generation: closed loop (N workers back to back) and open loop (Poisson arrivals),
and the measurement of one request of each kind.

A request is a zero-argument coroutine factory the caller builds from its target; the
``measure_*`` functions time it with ``clock`` (``time.perf_counter``) and always return a
:class:`~arun.bench.metrics.Sample` -- a failure is recorded as the class name of the
error, never raised (cancellation still propagates).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter
from typing import Any

import anyio

from arun.bench.metrics import Sample
from arun.callbacks import Callback

__all__ = [
    "INCOMPLETE_STREAM",
    "poisson_arrivals",
    "closed_loop",
    "open_loop",
    "measure_llm",
    "measure_embed",
    "measure_rerank",
]

Clock = Callable[[], float]
Request = Callable[[int], Awaitable[Sample]]  # request index -> its sample
#: Error name of a stream that ended without a finish reason or usage, yet raised nothing.
INCOMPLETE_STREAM = "IncompleteStream"


def poisson_arrivals(rate: float, *, count: int | None = None, duration: float | None = None, seed: int = 0) -> list[float]:
    """Send times (seconds from the start) of a Poisson process of ``rate`` requests/s: the
    first at 0, then exponential gaps, until ``count`` arrivals or ``duration`` seconds."""
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if count is None and duration is None:
        raise ValueError("give count or duration")
    rng = random.Random(seed)
    out: list[float] = []
    t = 0.0
    while (count is None or len(out) < count) and (duration is None or t < duration):
        out.append(t)
        t += rng.expovariate(rate)
    return out


async def closed_loop(
    request: Request,
    concurrency: int,
    *,
    requests: int | None = None,
    duration: float | None = None,
    clock: Clock = perf_counter,
    on_done: Callable[[Sample], None] | None = None,
) -> list[Sample]:
    """``concurrency`` workers, each sending its next request when the last one ends, until
    ``requests`` were started or ``duration`` seconds passed (requests in flight then finish)."""
    samples: list[Sample] = []
    deadline = clock() + duration if duration is not None else None
    counter = iter(range(requests)) if requests is not None else None
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while deadline is None or clock() < deadline:
            if counter is not None:
                i = next(counter, None)
                if i is None:
                    return
            else:
                i = issued
            issued += 1
            sample = await request(i)
            samples.append(sample)
            if on_done is not None:
                on_done(sample)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return samples


async def open_loop(
    request: Request,
    arrivals: Sequence[float],
    *,
    max_concurrency: int | None = None,
    clock: Clock = perf_counter,
    sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
    on_done: Callable[[Sample], None] | None = None,
) -> list[Sample]:
    """Send request ``i`` at ``arrivals[i]`` seconds from now whether or not earlier ones are done
    (at most ``max_concurrency`` in flight when set: later arrivals then wait for a slot)."""
    samples: list[Sample] = []
    limiter = anyio.CapacityLimiter(max_concurrency) if max_concurrency else None

    async def one(i: int) -> None:
        if limiter is not None:
            async with limiter:
                sample = await request(i)
        else:
            sample = await request(i)
        samples.append(sample)
        if on_done is not None:
            on_done(sample)

    t0 = clock()
    async with anyio.create_task_group() as tg:
        for i, at in enumerate(arrivals):
            delay = t0 + at - clock()
            if delay > 0:
                await sleep(delay)
            tg.start_soon(one, i)
    return samples


class _TraceCatcher(Callback):
    """Receives the policy layer's decision trace of a non-streamed call (``on_trace``)."""

    def __init__(self) -> None:
        self.trace: Any = None

    def on_trace(self, trace: Any) -> None:
        self.trace = trace


def _apply_trace(sample: Sample, trace: Any) -> None:
    """Waits and retries from the policy layer's trace (``waited``, ``retries``), when there is one."""
    if trace is None:
        return
    waited = getattr(trace, "waited", 0.0)
    retries = getattr(trace, "retries", 0)
    sample.waited = float(waited) if isinstance(waited, (int, float)) else 0.0
    sample.retries = int(retries) if isinstance(retries, int) else 0


async def _read_stream(stream: Any, sample: Sample, clock: Clock) -> bool:
    """Consume a streamed answer into ``sample``; True when it ended with a finish reason or usage."""
    itl = sample.itl
    last: float | None = None
    chunks = 0
    finished = False
    async with stream:
        async for chunk in stream:
            delta = chunk.delta
            message = delta.message
            if message.content or message.tool_calls:
                now = clock()
                if last is None:
                    sample.ttft = now - sample.start
                else:
                    itl.append(now - last)
                last = now
                chunks += 1
            if delta.finish_reason is not None or delta.usage is not None:
                finished = True
        sample.end = clock()
    usage = stream.usage
    if usage is not None:
        sample.output_tokens, sample.input_tokens = usage.completion_tokens, usage.prompt_tokens
    else:
        sample.output_tokens, sample.tokens_from = chunks, "chunks"
    return finished


async def measure_llm(
    call: Callable[[list[Callback] | None], Awaitable[Any]],
    *,
    stream: bool,
    clock: Clock = perf_counter,
    catch_trace: bool = False,
) -> Sample:
    """One chat request. ``call(callbacks)`` starts it (an ``LLMStream`` / managed stream when
    ``stream``, else an ``LLMResult``); ``catch_trace`` passes a callback that receives the policy
    trace of a non-streamed call."""
    catcher = _TraceCatcher() if catch_trace and not stream else None
    start = clock()
    sample = Sample(start, start)
    trace: Any = None
    try:
        result = await call([catcher] if catcher is not None else None)
        trace = getattr(result, "trace", None)
        if stream:
            if not await _read_stream(result, sample, clock):
                sample.error = INCOMPLETE_STREAM
        else:
            sample.end = clock()
            usage = result.usage
            sample.output_tokens, sample.input_tokens = usage.completion_tokens, usage.prompt_tokens
    except Exception as exc:  # noqa: BLE001 - recorded by class; cancellation (BaseException) propagates
        sample.end = clock()
        sample.error = type(exc).__name__
        trace = getattr(exc, "trace", trace)
    _apply_trace(sample, trace if trace is not None else (catcher.trace if catcher else None))
    return sample


async def _measure_items(
    call: Callable[[], Awaitable[Any]], items: int, read: Callable[[Any, Sample], None], clock: Clock
) -> Sample:
    """One embedding or rerank call of ``items`` inputs; ``read`` takes what the answer says into the
    sample. A failure records its class and the policy trace it carries (waits, retries)."""
    start = clock()
    sample = Sample(start, start, items=items, tokens_from="none")
    try:
        result = await call()
        sample.end = clock()
        read(result, sample)
    except Exception as exc:  # noqa: BLE001 - a failed request is a sample with its error class
        sample.end = clock()
        sample.error = type(exc).__name__
        _apply_trace(sample, getattr(exc, "trace", None))
    return sample


def _read_embeddings(result: Any, sample: Sample) -> None:
    sample.results = len(result.embeddings)
    sample.input_tokens = result.usage.tokens
    if sample.results != sample.items:
        sample.error = "WrongVectorCount"


def _read_rerank(result: Any, sample: Sample) -> None:
    sample.results = len(result.docs)


async def measure_embed(call: Callable[[], Awaitable[Any]], texts: int, *, clock: Clock = perf_counter) -> Sample:
    """One embedding call of ``texts`` texts; ``results`` counts the vectors that came back."""
    return await _measure_items(call, texts, _read_embeddings, clock)


async def measure_rerank(call: Callable[[], Awaitable[Any]], docs: int, *, clock: Clock = perf_counter) -> Sample:
    """One rerank call over ``docs`` documents; ``results`` counts the ranked documents returned."""
    return await _measure_items(call, docs, _read_rerank, clock)
