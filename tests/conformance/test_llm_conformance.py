"""The same promises from every LLM provider, against its wire-accurate simulator.

The cases come from discovery (:func:`arun.testing.cases.provider_cases`): every provider
with an LLM, each under its simulator profile, so a new provider is tested the day its folder
is added.

- stream and non-stream give the same content, tool calls and usage;
- every error status maps to the expected Invoke class, streamed or not;
- timeouts, resets, cuts, error events and malformed bodies end in a typed error,
  never in a short "success";
- no connection stays checked out of the pool afterwards.
"""

from __future__ import annotations

import msgspec
import pytest

from arun import (
    HttpConfig,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    PromptMessageTool,
    SystemPromptMessage,
    UserPromptMessage,
)
from arun.entities.model import ModelType
from arun.testing import Fault
from arun.testing.cases import VALID_KEY, provider_cases

CASES = provider_cases(model_types={ModelType.LLM: True})
IDS = [c.provider for c in CASES]


MESSAGES = [SystemPromptMessage(content="Be brief."), UserPromptMessage(content="What is the weather in Paris today?")]
TOOLS = [
    PromptMessageTool(
        name="get_weather",
        description="Current weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    ),
    PromptMessageTool(
        name="get_time",
        description="Local time",
        parameters={"type": "object", "properties": {"city": {"type": "string"}, "utc": {"type": "boolean"}}},
    ),
]

STATUS_CLASSES = {
    400: InvokeBadRequestError,
    401: InvokeAuthorizationError,
    403: InvokeAuthorizationError,
    404: InvokeBadRequestError,
    408: InvokeConnectionError,
    413: InvokeBadRequestError,
    422: InvokeBadRequestError,
    429: InvokeRateLimitError,
    500: InvokeServerUnavailableError,
    502: InvokeServerUnavailableError,
    503: InvokeServerUnavailableError,
    529: InvokeServerUnavailableError,
}


@pytest.fixture
async def rt(request, upstream):
    case = request.node.callspec.params["spec"]
    config = HttpConfig(connect_timeout=2, first_byte_timeout=0.5, idle_timeout=0.5)
    async with ModelRuntime(http=config, **case.runtime_kwargs(upstream.url)) as runtime:
        yield runtime
        assert runtime.http.acquired_connections() == 0


async def invoke(rt, spec, upstream, *, stream, tools=None, params=None):
    llm = rt.get_model_instance(spec.provider, "llm")
    return await llm.invoke(spec.model, spec.credentials(upstream.url), MESSAGES, params or {}, tools, None, stream)


def test_every_llm_provider_is_a_case():
    from arun import ModelRuntime as _Runtime

    rt = _Runtime()
    with_llm = [n for n in rt.provider_names() if ModelType.LLM in rt.get_provider_schema(n).supported_model_types]
    assert sorted(IDS) == sorted(with_llm)


async def drain(stream):
    chunks = []
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


def calls_of(message):
    return [(c.function.name, msgspec.json.decode(c.function.arguments)) for c in message.tool_calls]


@pytest.mark.parametrize("spec", CASES, ids=IDS)
@pytest.mark.parametrize("with_tools", [False, True], ids=["text", "tools"])
async def test_stream_and_non_stream_agree(rt, upstream, spec, with_tools):
    tools = TOOLS if with_tools else None
    whole = await invoke(rt, spec, upstream, stream=False, tools=tools)
    chunks = await drain(await invoke(rt, spec, upstream, stream=True, tools=tools))
    assembled = "".join(c.delta.message.content or "" for c in chunks)
    assert assembled == whole.message.content
    streamed_calls = [call for c in chunks for call in c.delta.message.tool_calls]
    assert [(c.function.name, msgspec.json.decode(c.function.arguments)) for c in streamed_calls] == calls_of(whole.message)
    if with_tools:
        assert len(whole.message.tool_calls) == 2  # a parallel call, one per tool
    else:
        assert whole.message.content
    last = chunks[-1].delta
    assert last.finish_reason is not None and last.usage is not None
    assert all(c.delta.usage is None for c in chunks[:-1])
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )
    assert last.usage.completion_tokens > 0 and last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.latency >= last.usage.time_to_first_token >= 0


@pytest.mark.parametrize("spec", CASES, ids=IDS)
@pytest.mark.parametrize("status", sorted(STATUS_CLASSES))
@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_error_status_maps_to_class(rt, upstream, spec, status, stream):
    upstream.faults.push(Fault(status=status, retry_after=2 if status == 429 else None))
    with pytest.raises(STATUS_CLASSES[status]) as info:
        await invoke(rt, spec, upstream, stream=stream)
    error = info.value
    assert error.status == status and error.provider == spec.provider and error.model == spec.model
    if status == 429:
        assert error.retry_after == pytest.approx(2, abs=0.01)
    assert VALID_KEY not in str(error) and VALID_KEY not in repr(error) and VALID_KEY not in (error.body or "")


@pytest.mark.parametrize("spec", CASES, ids=IDS)
@pytest.mark.parametrize("after", [0, 1, 3])
async def test_cut_stream_ends_in_error_never_short_success(rt, upstream, spec, after):
    upstream.faults.push(Fault(disconnect_after=after))
    with pytest.raises(InvokeConnectionError):
        stream = await invoke(rt, spec, upstream, stream=True)
        await drain(stream)


@pytest.mark.parametrize("spec", CASES, ids=IDS)
async def test_error_event_inside_200_stream(rt, upstream, spec):
    upstream.faults.push(Fault(error_event_after=2))
    stream = await invoke(rt, spec, upstream, stream=True)
    with pytest.raises(InvokeError) as info:
        await drain(stream)
    assert type(info.value) is not InvokeError or info.value.description


@pytest.mark.parametrize("spec", CASES, ids=IDS)
async def test_reset_before_body_is_a_connection_error(rt, upstream, spec):
    upstream.faults.push(Fault(disconnect_after=0))
    with pytest.raises(InvokeConnectionError):
        await invoke(rt, spec, upstream, stream=False)


@pytest.mark.parametrize("spec", CASES, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_slow_first_byte_times_out(rt, upstream, spec, stream):
    upstream.faults.push(Fault(first_byte_delay=1.5))
    with pytest.raises(InvokeConnectionError) as info:
        await invoke(rt, spec, upstream, stream=stream)
    assert isinstance(info.value, TimeoutError)


@pytest.mark.parametrize("spec", CASES, ids=IDS)
async def test_stalled_stream_hits_the_idle_timeout(rt, upstream, spec):
    upstream.faults.push(Fault(stall_after=2, stall_seconds=1.5))
    stream = await invoke(rt, spec, upstream, stream=True)
    with pytest.raises(InvokeConnectionError):
        await drain(stream)


@pytest.mark.parametrize("spec", CASES, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_malformed_body_is_a_typed_error(rt, upstream, spec, stream):
    upstream.faults.push(Fault(malformed=True))
    with pytest.raises(InvokeError):
        result = await invoke(rt, spec, upstream, stream=stream)
        if stream:
            await drain(result)
