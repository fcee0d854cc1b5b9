"""The ``anthropic`` provider end to end against the upstream simulator (real sockets).

Expected numbers come from the simulator's public formulas (``arun.testing.content``):
prompt tokens = words of every text (system included) + 3 per message; completion tokens =
reply pieces (one per word), or words in the tool arguments for tool-call replies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from arun.entities.llm import LLMResult
from arun.entities.messages import (
    AssistantPromptMessage,
    ImagePromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolCall,
    ToolCallFunction,
    ToolPromptMessage,
    UserPromptMessage,
)
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from arun.runtime import ModelRuntime
from arun.testing import Fault
from arun.testing.content import count_words, prompt_tokens

PATH = "/v1/messages"
MODEL = "claude-sonnet-4-20250514"
MESSAGES = [SystemPromptMessage(content="Be brief."), UserPromptMessage(content="Hello there friend")]
WEATHER = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
)
TIME = PromptMessageTool(
    name="get_time",
    description="Local time",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "utc": {"type": "boolean"}}},
)


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"anthropic_api_key": "sk-ant-test", "anthropic_api_url": upstream.url}


@pytest.fixture
def llm(rt: ModelRuntime) -> Any:
    return rt.get_model_instance("anthropic", "llm")


async def collect(llm: Any, creds: dict, messages=MESSAGES, params=None, tools=None, stop=None) -> tuple[LLMResult, list]:
    stream = await llm.invoke(MODEL, creds, messages, params or {}, tools, stop, True)
    chunks = []
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
    return stream.result(), chunks


async def test_schema_and_models(rt: ModelRuntime):
    provider = rt.get_provider("anthropic")
    schema = provider.get_provider_schema()
    names = [f.variable for f in schema.provider_credential_schema.credential_form_schemas]
    assert names == ["anthropic_api_key", "anthropic_api_url"]
    models = [m.model for m in await provider.models("llm")]
    assert models[0] == MODEL and "claude-3-5-haiku-20241022" in models and len(models) == 4
    for m in await provider.models("llm"):
        assert m.model_properties["context_size"] == 200000
        assert {f.value for f in m.features} >= {"tool-call", "multi-tool-call", "stream-tool-call", "vision"}


async def test_request_on_the_wire(llm, creds, upstream):
    await llm.invoke(MODEL, creds, MESSAGES, {"temperature": 0.2, "top_k": 7}, None, ["zzz"], False, "end-user-1")
    req = upstream.last_request
    assert req.path == PATH
    assert req.headers["x-api-key"] == "sk-ant-test"
    assert req.headers["anthropic-version"] == "2023-06-01"
    body = req.json
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello there friend"}]}]
    assert body["max_tokens"] == 8192  # the schema's rule default: the API requires max_tokens
    assert (body["temperature"], body["top_k"], body["stop_sequences"]) == (0.2, 7, ["zzz"])
    assert body["metadata"] == {"user_id": "end-user-1"}
    assert "stream" not in body


async def test_api_url_with_v1_suffix(llm, upstream):
    creds = {"anthropic_api_key": "sk-ant-test", "anthropic_api_url": upstream.url + "/v1/"}
    result = await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, False)
    assert result.message.content == "Echo: Hello there friend"
    assert upstream.last_request.path == PATH


async def test_stream_and_blocking_agree_with_usage_and_price(llm, creds, upstream):
    blocking = await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, False)
    streamed, chunks = await collect(llm, creds)
    assert blocking.message.content == streamed.message.content == "Echo: Hello there friend"
    assert [c.delta.message.content for c in chunks[:-1]] == ["Echo: ", "Hello ", "there ", "friend"]
    expected_prompt = prompt_tokens(["Be brief.", "Hello there friend"], 1)
    for usage in (blocking.usage, streamed.usage):
        assert (usage.prompt_tokens, usage.completion_tokens) == (expected_prompt, 4)
        assert usage.total_tokens == expected_prompt + 4
        assert usage.prompt_unit_price == Decimal("3.00") and usage.prompt_price_unit == Decimal("0.000001")
        assert usage.prompt_price == Decimal("0.000024")
        assert usage.completion_price == Decimal("0.000060")
        assert usage.total_price == Decimal("0.000084") and usage.currency == "USD"
    assert blocking.finish_reason == streamed.finish_reason == "end_turn"
    final = chunks[-1]
    assert final.delta.finish_reason == "end_turn" and final.delta.usage is not None
    assert sum(1 for c in chunks if c.delta.finish_reason) == 1
    assert upstream.requests[-1].json["stream"] is True


async def test_max_tokens_and_stop_sequences(llm, creds):
    result = await llm.invoke(MODEL, creds, MESSAGES, {"max_tokens": 2}, None, None, False)
    assert result.message.content == "Echo: Hello " and result.finish_reason == "max_tokens"
    streamed, _ = await collect(llm, creds, params={"max_tokens": 2})
    assert streamed.message.content == "Echo: Hello " and streamed.finish_reason == "max_tokens"
    assert streamed.usage.completion_tokens == 2
    stopped, _ = await collect(llm, creds, stop=["there"])
    assert stopped.message.content == "Echo: Hello " and stopped.finish_reason == "stop_sequence"


async def test_tool_calls_streamed_and_blocking(llm, creds, upstream):
    blocking = await llm.invoke(MODEL, creds, MESSAGES, {}, [WEATHER, TIME], None, False)
    streamed, chunks = await collect(llm, creds, tools=[WEATHER, TIME])
    expected = [
        ("toolu_0", "get_weather", {"city": "Hello there friend", "days": 1}),
        ("toolu_1", "get_time", {"city": "Hello there friend", "utc": True}),
    ]
    for result in (blocking, streamed):
        got = [(c.id, c.function.name, msgspec.json.decode(c.function.arguments)) for c in result.message.tool_calls]
        assert got == expected
        assert result.finish_reason == "tool_use"
        # the simulator counts whitespace-separated words in each call's compact JSON arguments
        assert result.usage.completion_tokens == sum(
            count_words(msgspec.json.encode(args).decode()) for _, _, args in expected
        )
    assert blocking.message.tool_calls == streamed.message.tool_calls
    # the tool calls arrive once, whole, on the terminal chunk
    assert [len(c.delta.message.tool_calls) for c in chunks] == [0] * (len(chunks) - 1) + [2]
    assert upstream.last_request.json["tools"][0] == {
        "name": "get_weather",
        "description": "Current weather",
        "input_schema": WEATHER.parameters,
    }


async def test_tool_results_round_trip(llm, creds, upstream):
    messages = [
        SystemPromptMessage(content="Be brief."),
        UserPromptMessage(content="Weather in Paris?"),
        AssistantPromptMessage(
            content="",
            tool_calls=[ToolCall(id="toolu_0", function=ToolCallFunction(name="get_weather", arguments='{"city": "Paris"}'))],
        ),
        ToolPromptMessage(content="sunny", tool_call_id="toolu_0"),
    ]
    result = await llm.invoke(MODEL, creds, messages, {}, [WEATHER], None, False)
    assert result.message.content == "Tool results: sunny" and not result.message.tool_calls
    wire = upstream.last_request.json["messages"]
    assert [m["role"] for m in wire] == ["user", "assistant", "user"]
    assert wire[1]["content"] == [{"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"city": "Paris"}}]
    assert wire[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"}]


async def test_vision_content_on_the_wire(llm, creds, upstream):
    content = [TextPromptMessageContent(data="What is this"), ImagePromptMessageContent(mime_type="image/png", base64_data="iVBOR")]
    result = await llm.invoke(MODEL, creds, [UserPromptMessage(content=content)], {}, None, None, False)
    assert result.message.content == "Echo: What is this"
    assert upstream.last_request.json["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_529_is_server_unavailable(llm, creds, upstream, stream):
    upstream.faults.push(Fault(status=529), path=PATH)
    with pytest.raises(InvokeServerUnavailableError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, stream)
    err = info.value
    assert err.status == 529 and err.provider == "anthropic" and err.model == MODEL
    assert "overloaded_error" in str(err)
    assert err.request_id and err.request_id.startswith("req_")


@pytest.mark.parametrize("stream", [False, True])
async def test_429_rate_limit_with_retry_after(llm, creds, upstream, stream):
    upstream.faults.push(Fault(status=429, retry_after=7), path=PATH)
    with pytest.raises(InvokeRateLimitError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, stream)
    assert info.value.retry_after == pytest.approx(7)
    assert info.value.status == 429


async def test_context_too_long(llm, creds, upstream):
    upstream.faults.push(
        Fault(status=400, error_type="invalid_request_error", message="prompt is too long: 208656 tokens > 200000 maximum"),
        path=PATH,
    )
    with pytest.raises(InvokeContextLengthExceededError):
        await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, False)


@pytest.mark.parametrize("stream", [False, True])
async def test_401_authorization_cause_kept_key_hidden(llm, upstream, stream):
    key = "invalid-sk-ant-api03-TOPSECRETKEY0123456789"
    creds = {"anthropic_api_key": key, "anthropic_api_url": upstream.url}
    with pytest.raises(InvokeAuthorizationError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, stream)
    err = info.value
    assert err.status == 401
    assert "authentication_error" in str(err) and "invalid x-api-key" in str(err)  # upstream cause kept
    assert err.body and "authentication_error" in err.body
    for text in (str(err), repr(err), err.body, str(err.context())):
        assert key not in text
    assert upstream.last_request.key == key  # the key did go to the upstream


async def test_validate_credentials(rt, llm, creds, upstream):
    await llm.validate_credentials(MODEL, creds)
    assert upstream.last_request.json["max_tokens"] == 5
    provider = rt.get_provider("anthropic")
    await provider.validate_provider_credentials(creds)
    assert upstream.last_request.json["model"] == "claude-3-5-haiku-20241022"
    bad = {"anthropic_api_key": "invalid-sk-ant-SECRET-ABCDEFGHIJ", "anthropic_api_url": upstream.url}
    with pytest.raises(CredentialsValidateFailedError) as info:
        await provider.validate_provider_credentials(bad)
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
    assert "invalid-sk-ant-SECRET-ABCDEFGHIJ" not in str(info.value)
    upstream.faults.push(Fault(status=529), path=PATH)
    with pytest.raises(CredentialsValidateFailedError):
        await llm.validate_credentials(MODEL, creds)
    unreachable = {"anthropic_api_key": "sk-ant-test", "anthropic_api_url": "http://127.0.0.1:9"}
    with pytest.raises(CredentialsValidateFailedError):
        await llm.validate_credentials(MODEL, unreachable)


@pytest.mark.parametrize("after", [2, 4])
async def test_mid_stream_error_event(llm, creds, upstream, after):
    upstream.faults.push(Fault(error_event_after=after), path=PATH)
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, True)
    seen = []
    with pytest.raises(InvokeServerUnavailableError) as info:
        async with stream:
            async for chunk in stream:
                seen.append(chunk)
    assert not any(c.delta.finish_reason for c in seen)  # never a short success
    assert "overloaded_error" in str(info.value)


async def test_mid_stream_rate_limit_event(llm, creds, upstream):
    upstream.faults.push(Fault(error_event_after=3, error_type="rate_limit_error"), path=PATH)
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, True)
    with pytest.raises(InvokeRateLimitError):
        await stream.collect()


@pytest.mark.parametrize("after", [1, 3, 5, 7])
async def test_disconnect_mid_stream(llm, creds, upstream, after):
    upstream.faults.push(Fault(disconnect_after=after), path=PATH)
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, True)
    seen = []
    with pytest.raises(InvokeConnectionError):
        async with stream:
            async for chunk in stream:
                seen.append(chunk)
    assert not any(c.delta.finish_reason for c in seen)


async def test_disconnect_during_tool_stream(llm, creds, upstream):
    upstream.faults.push(Fault(disconnect_after=4), path=PATH)
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, [WEATHER], None, True)
    with pytest.raises(InvokeConnectionError):
        await stream.collect()


async def test_malformed_stream_event_is_typed(llm, creds, upstream):
    upstream.faults.push(Fault(malformed=True), path=PATH)
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, True)
    with pytest.raises(InvokeError):
        await stream.collect()


async def test_truncated_blocking_body(llm, creds, upstream):
    upstream.faults.push(Fault(malformed=True), path=PATH)
    with pytest.raises(InvokeServerUnavailableError):
        await llm.invoke(MODEL, creds, MESSAGES, {}, None, None, False)


async def test_get_num_tokens(llm, creds):
    n = await llm.get_num_tokens(MODEL, creds, MESSAGES)
    assert n > 0
    more = await llm.get_num_tokens(MODEL, creds, MESSAGES, [WEATHER])
    assert more > n
