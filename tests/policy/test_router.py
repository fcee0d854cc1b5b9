"""PolicyRouter against the simulator: commit-point streaming, fallback chains, limiter wiring, traces, OTel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from policy_helpers import CHAT, FAST, SHORT_COOL, anthropic_target, expected, messages, openai_target

from arun import HttpConfig, ModelRuntime
from arun.errors import (
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
    InvokeTimeoutError,
    ParameterValidationError,
)
from arun.policy.router import Fallback, PolicyRouter, Route
from arun.testing import Fault, UpstreamSimulator


def _router(rt: ModelRuntime, **kw: Any) -> PolicyRouter:
    kw.setdefault("retry", FAST)
    kw.setdefault("cooldowns", SHORT_COOL)
    return PolicyRouter(rt, **kw)


async def _text(stream: Any) -> tuple[str, list[str]]:
    pieces = []
    async with stream:
        async for chunk in stream:
            c = chunk.delta.message.content
            if isinstance(c, str):
                pieces.append(c)
    return "".join(pieces), pieces


# -- commit point --------------------------------------------------------------------------------

PRE_COMMIT_FAULTS = [
    Fault(status=500),
    Fault(status=529),
    Fault(status=429, retry_after=0.001),
    Fault(disconnect_after=0),
    Fault(disconnect_after=1),  # after the role chunk, before any content
    Fault(error_event_after=0),
    Fault(error_event_after=1),
]


@pytest.mark.parametrize("fault", PRE_COMMIT_FAULTS, ids=lambda f: repr({k: v for k, v in f.to_dict().items() if v not in (None, False, 0.0, 30.0)}))
async def test_failure_before_first_chunk_is_invisible(fault: Fault) -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(fault, path=CHAT)
        traces = []
        router = _router(rt, on_trace=traces.append)
        stream = await router.invoke(openai_target(sim.url), messages(), stream=True)
        text, _pieces = await _text(stream)
        assert text == expected()
        assert stream.outcome == "completed" and stream.usage is not None
        assert sim.stats.total == 2
        assert traces[-1].attempts == 2 and traces[-1].outcome == "completed"
        assert rt.http.acquired_connections() == 0


async def test_first_chunk_timeout_is_retried_invisibly() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(first_byte_delay=5.0), path=CHAT, key="sk-a")
        router = _router(rt, first_chunk_timeout=0.2)
        stream = await router.invoke(openai_target(sim.url), messages(), stream=True)
        text, _ = await _text(stream)
        assert text == expected()
        assert [e.detail.get("outcome") for e in stream.trace.events if e.kind == "attempt"] == [
            "InvokeTimeoutError",
            "committed",
        ]


async def test_stall_before_first_content_is_retried_after_idle_timeout() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime(http=HttpConfig(idle_timeout=0.2)) as rt:
        sim.faults.push(Fault(stall_after=1, stall_seconds=2.0), path=CHAT)
        stream = await _router(rt).invoke(openai_target(sim.url), messages(), stream=True)
        text, _ = await _text(stream)
        assert text == expected() and sim.stats.total == 2


@pytest.mark.parametrize(
    "fault, cls",
    [
        (Fault(disconnect_after=3), InvokeStreamInterruptedError),
        (Fault(error_event_after=3), InvokeServerUnavailableError),
        (Fault(stall_after=3, stall_seconds=2.0), InvokeTimeoutError),
    ],
    ids=["cut", "error-event", "stall"],
)
async def test_failure_after_first_chunk_ends_in_one_typed_error(fault: Fault, cls: type) -> None:
    """Issue 10 fault 9: a cut, a provider error and a stall after the commit point are told apart
    by their own class (one ``except``), with ``after_commit`` and what was delivered attached."""
    async with UpstreamSimulator() as sim, ModelRuntime(http=HttpConfig(idle_timeout=0.2)) as rt:
        sim.faults.push(fault, path=CHAT)
        router = _router(rt)
        stream = await router.invoke(openai_target(sim.url), messages("one two three four five six"), stream=True)
        pieces: list[str] = []
        with pytest.raises(InvokeError) as info:
            async for chunk in stream:
                pieces.append(chunk.delta.message.content)
        err = info.value
        assert type(err) is cls and err.after_commit
        full = expected("one two three four five six")
        got = "".join(pieces)
        assert got and full.startswith(got) and got != full  # a prefix, never a clean short answer
        assert err.delivered_chunks == len(pieces)
        assert err.partial_usage.completion_tokens >= 1
        assert err.partial_usage.prompt_tokens > 0
        assert err.trace.outcome == "interrupted" and err.trace.attempts == 1
        assert stream.outcome == "error"
        # exactly one terminal outcome: iterating again ends quietly, nothing retried or repeated
        assert [c async for c in stream] == []
        assert sim.stats.total == 1
        assert rt.http.acquired_connections() == 0
        assert (await router.states(openai_target(sim.url)))[0].in_flight == 0


async def test_stream_completing_without_content_is_delivered() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        stream = await _router(rt).invoke(
            openai_target(sim.url), messages(), model_parameters={"max_tokens": 1}, stream=True, stop=["Echo"]
        )
        result = await stream.collect()
        assert result.message.content == "" and stream.outcome == "completed"


async def test_abandoned_stream_releases_its_slot_and_connection() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = _router(rt)
        tgt = openai_target(sim.url, ["sk-a"])
        stream = await router.invoke(tgt, messages("a b c d e f g"), stream=True)
        await stream.__anext__()
        await stream.aclose()
        assert stream.outcome == "cancelled"
        unstarted = await router.invoke(tgt, messages(), stream=True)
        await unstarted.aclose()
        states = await router.states(tgt)
        assert states[0].in_flight == 0 and states[0].requests == 2
        assert rt.http.acquired_connections() == 0


# -- fallbacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_fallback_on_rate_limit_exhaustion(stream: bool) -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=429, retry_after=0.001), path=CHAT, times=None)
        route = Route(openai_target(sim.url, ["sk-a", "sk-b"]), [Fallback(anthropic_target(sim.url), {InvokeRateLimitError})])
        traces = []
        out = await _router(rt, on_trace=traces.append).invoke(route, messages(), stream=stream)
        result = out if not stream else await out.collect()
        assert result.message.content == expected()
        t = traces[-1]
        assert t.fallbacks == 1 and t.target == "anthropic/claude-3-5-haiku-20241022"
        assert [e.kind for e in t.events].count("fallback") == 1


async def test_fallback_picks_the_entry_whose_trigger_matches() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=400, error_type="context_length_exceeded"), path=CHAT, key="sk-small")
        route = Route(
            openai_target(sim.url, ["sk-small"]),
            [
                Fallback(openai_target(sim.url, ["sk-other"], model="gpt-4o"), {InvokeRateLimitError}),
                Fallback(anthropic_target(sim.url), {InvokeContextLengthExceededError}),
            ],
        )
        traces = []
        result = await _router(rt, on_trace=traces.append).invoke(route, messages(), stream=False)
        assert result.message.content == expected()
        assert sim.stats.by_key["sk-other"] == 0
        t = traces[-1]
        assert t.fallbacks == 1 and t.target.startswith("anthropic/")
        assert any(e.detail.get("reason") == "fallback trigger does not match" for e in t.events)


async def test_no_matching_trigger_raises_the_original_error() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=400, error_type="content_filter"), path=CHAT)
        route = Route(openai_target(sim.url, ["sk-a"]), [Fallback(anthropic_target(sim.url), {InvokeRateLimitError})])
        with pytest.raises(InvokeContentFilteredError):
            await _router(rt).invoke(route, messages(), stream=False)
        assert sim.stats.by_path.get("/v1/messages", 0) == 0


async def test_fallback_cap() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=503), path=CHAT, times=None)
        chain = [
            Fallback(openai_target(sim.url, ["sk-f1"], model="gpt-4o"), {InvokeServerUnavailableError}),
            Fallback(anthropic_target(sim.url), {InvokeServerUnavailableError}),
        ]
        with pytest.raises(InvokeServerUnavailableError) as info:
            await _router(rt).invoke(Route(openai_target(sim.url, ["sk-a"]), chain, max_fallbacks=1), messages(), stream=False)
        t = info.value.trace  # type: ignore[attr-defined]
        assert t.fallbacks == 1 and sim.stats.by_path.get("/v1/messages", 0) == 0
        assert any(e.detail.get("reason") == "fallback cap reached" for e in t.events)
        result = await _router(rt).invoke(Route(openai_target(sim.url, ["sk-a"]), chain, max_fallbacks=2), messages(), stream=False)
        assert result.message.content == expected()


# -- all configs cooling ---------------------------------------------------------------------------


async def test_all_cooling_fails_fast_or_waits_for_the_earliest_recovery() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = _router(rt)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"])
        for cid in ("sk-a", "sk-b"):
            await router.state.lb_cooldown(router._target(tgt, "llm").scope, cid, 0.2, "InvokeRateLimitError: x")
        with pytest.raises(InvokeRateLimitError):
            await router.invoke(tgt, messages(), stream=False)
        assert sim.stats.total == 0
        waiting = _router(rt, wait_deadline=1.0, state=router.state)
        result = await waiting.invoke(tgt, messages(), stream=False)
        assert result.message.content == expected()


# -- embeddings ------------------------------------------------------------------------------------


async def test_embeddings_rotate_on_rate_limit() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=429), path="/v1/embeddings", key="sk-a")
        tgt = openai_target(sim.url, ["sk-a", "sk-b"], model="text-embedding-3-small")
        traces = []
        result = await _router(rt, on_trace=traces.append).embed(tgt, ["a", "b"])
        assert len(result.embeddings) == 2
        assert traces[-1].rotations == 1 and traces[-1].operation == "embeddings"


# -- limiter wiring --------------------------------------------------------------------------------


class RecordingLimiter:
    """The limiter interface, recording what the router asks."""

    def __init__(self) -> None:
        self.acquired: list[tuple[str, int]] = []
        self.settled: list[int | None] = []
        self.released = 0
        self.observed: list[dict[str, str]] = []

    async def acquire(self, key: str, spec: Any, tokens: int, *, deadline: float | None = None) -> Any:
        self.acquired.append((key, tokens))
        limiter = self

        class P:
            async def settle(self, actual: int | None) -> None:
                limiter.settled.append(actual)

            async def release(self) -> None:
                limiter.released += 1

        return P()

    def observe(self, key: str, headers: Any) -> None:
        self.observed.append(dict(headers))

    async def snapshot(self, key: str, spec: Any) -> Any:
        return {"key": key}


@pytest.mark.parametrize("stream", [False, True])
async def test_limiter_reserves_estimate_and_settles_real_usage(stream: bool) -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=429, retry_after=0.001), path=CHAT)
        limiter = RecordingLimiter()
        router = _router(rt, limiter=limiter)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"], limits=object())
        out = await router.invoke(tgt, messages(), model_parameters={"max_tokens": 100}, stream=stream)
        result = out if not stream else await out.collect()
        assert len(limiter.acquired) == 2
        assert all(tokens > 100 for _, tokens in limiter.acquired)
        assert limiter.acquired[0][0] == "openai:gpt-4o-mini:sk-a"
        assert limiter.settled == [0, result.usage.total_tokens]
        assert limiter.released == 2
        assert limiter.observed and "retry-after" in {k.lower() for k in limiter.observed[0]}
        states = await router.states(tgt)
        assert states[0].limit == {"key": "openai:gpt-4o-mini:sk-a"}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        ({"prompt_messages": None}, "prompt_messages"),
        ({"prompt_messages": [1]}, "prompt_messages"),
        ({"model_parameters": "x"}, "model_parameters"),
        ({"tools": ["not a tool"]}, "tools"),
    ],
    ids=["no-messages", "not-a-message", "parameters-not-a-mapping", "not-a-tool"],
)
async def test_invalid_inputs_are_the_models_typed_errors(args: dict[str, Any], parameter: str, stream: bool) -> None:
    """The router hands the inputs to the model as given: the model's validation raises its typed error,
    nothing is sent, nothing cools, the permit (estimated from whatever was given) is given back."""
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        limiter = RecordingLimiter()
        router = _router(rt, limiter=limiter)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"], limits=object())
        call: dict[str, Any] = {"prompt_messages": messages(), **args}
        with pytest.raises(ParameterValidationError) as info:
            await router.invoke(tgt, stream=stream, **call)
        assert info.value.parameter == parameter
        assert sim.stats.total == 0
        assert len(limiter.acquired) == 1 and limiter.released == 1
        assert all(s.healthy for s in await router.states(tgt))


async def test_the_model_object_is_looked_up_once_per_target() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        lookups: list[tuple[str, str]] = []

        class CountingRuntime:
            def get_model_instance(self, provider: str, model_type: str) -> Any:
                lookups.append((provider, model_type))
                return rt.get_model_instance(provider, model_type)

        router = _router(CountingRuntime())  # type: ignore[arg-type]
        tgt = openai_target(sim.url)
        for _ in range(3):
            assert (await router.invoke(tgt, messages(), stream=False)).message.content == expected()
            assert (await (await router.invoke(tgt, messages(), stream=True)).collect()).message.content == expected()
        assert lookups == [("openai", "llm")]


async def test_real_limiter_exceeded_rotates_without_cooldown() -> None:
    from arun.policy.limits import LimitSpec, open_limiter

    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        limiter = open_limiter("memory://")
        router = _router(rt, limiter=limiter, limit_wait=0.0)
        spec = LimitSpec(max_in_flight=1)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"], limits=spec)
        s1 = await router.invoke(tgt, messages("x y z"), stream=True)  # holds sk-a's only slot
        result = await router.invoke(tgt, messages(), stream=False)
        assert result.message.content == expected()
        await s1.aclose()
        states = {s.config_id: s for s in await router.states(tgt)}
        assert all(s.healthy for s in states.values())
        await limiter.aclose()


# -- observability ------------------------------------------------------------------------------


async def test_trace_reaches_callbacks_and_errors() -> None:
    seen: list[Any] = []

    from arun.callbacks import Callback

    class CB(Callback):
        def on_trace(self, trace: Any) -> None:
            seen.append(trace)

    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=503), path=CHAT, key="sk-a")
        router = _router(rt)
        await router.invoke(openai_target(sim.url, ["sk-a", "sk-b"]), messages(), stream=False, callbacks=[CB()])
        assert len(seen) == 1
        d = seen[0].to_dict()
        assert [e["kind"] for e in d["events"]][:3] == ["attempt", "rotate", "attempt"]
        assert d["outcome"] == "completed" and d["rotations"] == 1


async def test_opentelemetry_spans_follow_genai_conventions(otel_spans: Any) -> None:
    from opentelemetry import trace as otel

    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=500), path=CHAT)
        router = _router(rt)
        await router.invoke(openai_target(sim.url), messages(), model_parameters={"max_tokens": 50}, stream=False)
        stream = await router.invoke(openai_target(sim.url), messages(), stream=True)
        await stream.collect()
    spans = otel_spans.get_finished_spans()
    assert len(spans) == 2
    a = spans[0].attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.system"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["arun.attempts"] == 2
    assert spans[0].kind == otel.SpanKind.CLIENT
    assert [e.name for e in spans[0].events][:2] == ["arun.attempt", "arun.rotate"]
    assert spans[1].attributes["gen_ai.usage.output_tokens"] > 0


async def test_concurrent_requests_share_nothing_per_request() -> None:
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = _router(rt)
        tgt = openai_target(sim.url)
        results = await asyncio.gather(*[router.invoke(tgt, messages(f"q {i}"), stream=False) for i in range(30)])
        assert [r.message.content for r in results] == [expected(f"q {i}") for i in range(30)]
        assert sorted(sim.stats.by_key.values()) == [10, 10, 10]
