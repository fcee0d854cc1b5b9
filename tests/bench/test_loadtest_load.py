"""The load drivers and the per-request measurement of `arun bench`.

The drivers run synthetic requests on injected clocks; the measurement runs real arun
calls against the wire-accurate simulator, with faults injected mid-stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from arun import AssistantPromptMessage, LLMResultChunk, LLMResultChunkDelta, ModelRuntime, UserPromptMessage
from arun.bench.load import INCOMPLETE_STREAM, closed_loop, measure_embed, measure_llm, measure_rerank, open_loop
from arun.bench.metrics import Sample, summarize_level
from arun.testing import Fault

WORDS = 8


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await anyio.lowlevel.checkpoint()  # let the requests already started run first, as a real sleep does
        self.slept.append(round(seconds, 9))
        self.now += seconds


async def test_closed_loop_sends_exactly_n_with_c_in_flight() -> None:
    seen: list[int] = []
    in_flight = [0, 0]

    async def request(i: int) -> Sample:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await anyio.lowlevel.checkpoint()
        in_flight[0] -= 1
        seen.append(i)
        return Sample(0.0, 0.0)

    done: list[Sample] = []
    samples = await closed_loop(request, 4, requests=25, on_done=done.append)
    assert sorted(seen) == list(range(25)) and len(samples) == len(done) == 25
    assert in_flight[1] == 4


async def test_closed_loop_by_duration_stops_starting_at_the_deadline() -> None:
    clock = FakeClock()

    async def request(i: int) -> Sample:
        start = clock.now
        clock.now += 1.0  # every request takes one (fake) second
        return Sample(start, clock.now)

    samples = await closed_loop(request, 1, duration=5.0, clock=clock)
    assert [s.start for s in samples] == [0.0, 1.0, 2.0, 3.0, 4.0]
    capped = await closed_loop(request, 1, requests=2, duration=100.0, clock=clock)
    assert len(capped) == 2  # whichever ends first


async def test_open_loop_sends_on_schedule_regardless_of_completions() -> None:
    clock = FakeClock()
    sent: list[float] = []

    async def request(i: int) -> Sample:
        sent.append(clock.now)
        return Sample(clock.now, clock.now)

    samples = await open_loop(request, [0.0, 0.5, 0.5, 2.0], clock=clock, sleep=clock.sleep)
    assert sent == [0.0, 0.5, 0.5, 2.0] and len(samples) == 4
    assert clock.slept == [0.5, 1.5]


async def test_open_loop_max_concurrency_holds_later_arrivals() -> None:
    gate = anyio.Event()
    in_flight = [0, 0]

    async def request(i: int) -> Sample:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await gate.wait()
        in_flight[0] -= 1
        return Sample(0.0, 0.0)

    async def release() -> None:
        await anyio.sleep(0.05)
        gate.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release)
        samples = await open_loop(request, [0.0] * 10, max_concurrency=3)
    assert len(samples) == 10 and in_flight[1] == 3


# -- measurement against the simulator ------------------------------------------------------------


@pytest.fixture
async def llm(upstream: Any) -> AsyncIterator[tuple[Any, dict[str, str], Any]]:
    upstream.config.reply_words = WORDS
    async with ModelRuntime() as rt:
        yield rt.get_model_instance("openai", "llm"), {"openai_api_key": "sk-load-test", "openai_api_base": upstream.url}, upstream


def _chat(model: Any, creds: dict[str, str], stream: bool) -> Any:
    messages = [UserPromptMessage(content="one two three")]
    return lambda cbs: model.invoke("gpt-4o-mini", creds, messages, {"max_tokens": 64}, None, None, stream, None, callbacks=cbs)


async def test_streamed_request_is_timed_from_its_chunks(llm: Any) -> None:
    model, creds, _ = llm
    s = await measure_llm(_chat(model, creds, True), stream=True)
    assert s.error is None and s.tokens_from == "usage"
    assert s.output_tokens == WORDS and s.input_tokens > 0
    assert s.ttft is not None and 0 < s.ttft <= s.e2e
    assert len(s.itl) == WORDS - 1  # one content delta per word; gaps between them
    plain = await measure_llm(_chat(model, creds, False), stream=False)
    assert plain.error is None and plain.output_tokens == WORDS and plain.ttft is None and plain.itl == []


async def test_a_stream_cut_mid_run_is_an_error_of_its_class_not_a_short_success(llm: Any) -> None:
    model, creds, sim = llm
    sim.faults.push(Fault(disconnect_after=3), path="/v1/chat/completions", times=3)
    chat = _chat(model, creds, True)
    samples = await closed_loop(lambda i: measure_llm(chat, stream=True), 1, requests=10)
    s = summarize_level(samples, started=min(x.start for x in samples), cpu_seconds=0.0)
    assert s["errors"] == {"InvokeStreamInterruptedError": 3}
    assert (s["completed"], s["failed"]) == (7, 3)
    assert s["total_output_tokens"] == 7 * WORDS  # the cut streams' partial tokens are not counted
    cut = [x for x in samples if x.error]
    assert all(x.output_tokens == 0 for x in cut)


async def test_an_in_stream_error_event_is_counted_by_class(llm: Any) -> None:
    model, creds, sim = llm
    sim.faults.push(Fault(error_event_after=2), path="/v1/chat/completions")
    s = await measure_llm(_chat(model, creds, True), stream=True)
    assert s.error == "InvokeServerUnavailableError"  # the error event carries a server_error


async def test_status_errors_are_counted_by_class(llm: Any) -> None:
    model, creds, sim = llm
    sim.faults.push(Fault(status=429, retry_after=1), path="/v1/chat/completions")
    sim.faults.push(Fault(status=503), path="/v1/chat/completions")
    assert (await measure_llm(_chat(model, creds, True), stream=True)).error == "InvokeRateLimitError"
    assert (await measure_llm(_chat(model, creds, False), stream=False)).error == "InvokeServerUnavailableError"


class _Stream:
    """A stream that ends without a finish reason or usage and without raising."""

    usage = None

    def __init__(self) -> None:
        msg = AssistantPromptMessage(content="half")
        self._chunks = [LLMResultChunk(model="m", delta=LLMResultChunkDelta(index=0, message=msg))]

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> LLMResultChunk:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop()


async def test_a_stream_without_its_terminal_chunk_is_not_a_success() -> None:
    async def call(_cbs: Any) -> _Stream:
        return _Stream()

    s = await measure_llm(call, stream=True)
    assert s.error == INCOMPLETE_STREAM and s.tokens_from == "chunks" and s.output_tokens == 1


async def test_embedding_and_rerank_requests(upstream: Any) -> None:
    async with ModelRuntime() as rt:
        emb = rt.get_model_instance("openai", "text-embedding")
        creds = {"openai_api_key": "sk-load-test", "openai_api_base": upstream.url}
        texts = [f"text {i}" for i in range(10)]
        s = await measure_embed(lambda: emb.invoke("text-embedding-3-small", creds, texts), len(texts))
        assert s.error is None and (s.items, s.results) == (10, 10) and s.input_tokens > 0
        rr = rt.get_model_instance("jina", "rerank")
        jina = {"api_key": "jina_load_test", "base_url": upstream.url + "/v1"}
        docs = ["paris is in france", "bananas", "the eiffel tower"]
        r = await measure_rerank(lambda: rr.invoke("jina-reranker-v2-base-multilingual", jina, "paris", docs, None, 2), 3)
        assert r.error is None and (r.items, r.results) == (3, 2)
        upstream.faults.push(Fault(status=503), path="/v1/rerank")
        bad = await measure_rerank(lambda: rr.invoke("jina-reranker-v2-base-multilingual", jina, "paris", docs), 3)
        assert bad.error == "InvokeServerUnavailableError"


@pytest.mark.parametrize("measure", [measure_embed, measure_rerank])
async def test_a_failed_embedding_or_rerank_request_keeps_its_policy_waits(measure: Any) -> None:
    from arun import InvokeRateLimitError
    from arun.policy.trace import Trace

    async def call() -> Any:
        error = InvokeRateLimitError("Rate Limit Error")
        error.trace = Trace("rerank", retries=2, waited=1.5)
        raise error

    s = await measure(call, 4)
    assert (s.error, s.items, s.results, s.waited, s.retries) == ("InvokeRateLimitError", 4, 0, 1.5, 2)
