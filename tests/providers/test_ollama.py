"""The ``ollama`` provider end to end against the upstream simulator (real sockets).

Expected numbers come from the simulator's public formulas (``arun.testing.content``):
prompt tokens = words of every text + 3 per message; completion tokens = reply pieces
(one per word), or words in the tool arguments for tool-call replies.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from arun.entities.messages import (
    AssistantPromptMessage,
    ImagePromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolPromptMessage,
    UserPromptMessage,
)
from arun.entities.model import FetchFrom, ModelFeature
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeBadRequestError,
    InvokeError,
    InvokeModelNotFoundError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
    ParameterValidationError,
)
from arun.runtime import ModelRuntime
from arun.testing import Fault
from arun.testing.content import embedding_tokens, embedding_vector, prompt_tokens

MODEL = "llama3.2"
MESSAGES = [SystemPromptMessage(content="Be brief."), UserPromptMessage(content="Hello there friend")]
WEATHER = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
)
TIME = PromptMessageTool(
    name="get_time",
    description="Local time",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "utc": {"type": "boolean"}}},
)


def creds(sim: Any, **extra: str) -> dict[str, str]:
    out = {"base_url": sim.url, "mode": "chat", "context_size": "4096", "max_tokens": "512", "function_call_support": "true"}
    out.update(extra)
    return out


def emb_creds(sim: Any) -> dict[str, str]:
    return {"base_url": sim.url, "context_size": "512"}


async def run(rt: ModelRuntime, sim: Any, *, stream: bool, messages=MESSAGES, tools=None, params=None, model=MODEL, **kw):
    llm = rt.get_model_instance("ollama", "llm")
    result = await llm.invoke(model, creds(sim, **kw), messages, params or {}, tools, None, stream)
    if stream:
        return await result.collect()
    return result


# -- schema -------------------------------------------------------------------------------------


async def test_customizable_schema_from_credentials(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance("ollama", "llm")
    schema = await llm.get_model_schema(MODEL, creds(upstream, vision_support="true", max_tokens="4096", context_size="8192"))
    assert schema is not None and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert schema.property("mode") == "chat" and schema.property("context_size") == 8192
    assert ModelFeature.VISION in schema.features and ModelFeature.TOOL_CALL in schema.features
    rules = {r.name: r for r in schema.parameter_rules}
    assert {"temperature", "top_p", "top_k", "repeat_penalty", "num_predict", "num_ctx", "seed", "format", "keep_alive"} <= set(rules)
    assert rules["num_predict"].max == 4096 and rules["num_predict"].default == 512
    assert rules["temperature"].max == 1
    small = await llm.get_model_schema(MODEL, creds(upstream, max_tokens="500"))
    assert {r.name: r for r in small.parameter_rules}["num_predict"].default == 128
    assert await llm.predefined_models() == []


async def test_parameters_are_validated_and_sent_as_options(rt: ModelRuntime, upstream: Any) -> None:
    with pytest.raises(ParameterValidationError):
        await run(rt, upstream, stream=False, params={"num_predict": 10_000})
    await run(
        rt,
        upstream,
        stream=False,
        params={"temperature": 0.3, "top_k": 20, "max_tokens": 50, "num_ctx": 2048, "seed": 1, "keep_alive": "1m", "format": "json"},
    )
    body = upstream.requests[-1].json
    assert body["options"] == {"temperature": 0.3, "top_k": 20, "num_predict": 50, "num_ctx": 2048, "seed": 1}
    assert body["keep_alive"] == "1m" and body["format"] == "json" and body["stream"] is False


# -- invoke --------------------------------------------------------------------------------------


async def test_non_stream_content_and_usage(rt: ModelRuntime, upstream: Any) -> None:
    result = await run(rt, upstream, stream=False)
    assert result.message.content == "Echo: Hello there friend"
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == prompt_tokens(["Be brief.", "Hello there friend"], 2)
    assert result.usage.completion_tokens == 4


async def test_stream_equals_non_stream(rt: ModelRuntime, upstream: Any) -> None:
    a = await run(rt, upstream, stream=False)
    b = await run(rt, upstream, stream=True)
    assert b.message.content == a.message.content
    assert (b.usage.prompt_tokens, b.usage.completion_tokens) == (a.usage.prompt_tokens, a.usage.completion_tokens)
    assert b.finish_reason == a.finish_reason == "stop"


async def test_stream_chunks_and_terminal(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance("ollama", "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, None, None, True)
    chunks = [c async for c in stream]
    assert all(c.delta.message.content for c in chunks[:-1])
    assert [c.delta.finish_reason for c in chunks].count("stop") == 1
    assert chunks[-1].delta.usage is not None and chunks[-1].delta.usage.completion_tokens > 0
    assert upstream.requests[-1].json["stream"] is True


async def test_max_tokens_gives_length(rt: ModelRuntime, upstream: Any) -> None:
    for stream in (False, True):
        result = await run(rt, upstream, stream=stream, params={"max_tokens": 2})
        assert result.finish_reason == "length"
        assert result.message.content == "Echo: Hello "
        assert result.usage.completion_tokens == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_stream_and_non_stream(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    result = await run(rt, upstream, stream=stream, tools=[WEATHER, TIME])
    calls = result.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert msgspec.json.decode(calls[0].function.arguments) == {"city": "Hello there friend", "days": 1}
    assert msgspec.json.decode(calls[1].function.arguments) == {"city": "Hello there friend", "utc": True}
    assert len({c.id for c in calls}) == 2
    words = sum(len(c.function.arguments.split()) for c in calls)
    assert result.usage.completion_tokens == words


async def test_tool_round_trip_sends_object_arguments(rt: ModelRuntime, upstream: Any) -> None:
    first = await run(rt, upstream, stream=False, tools=[WEATHER])
    call = first.message.tool_calls[0]
    follow = [
        *MESSAGES,
        AssistantPromptMessage(content="", tool_calls=[call]),
        ToolPromptMessage(content="sunny", tool_call_id=call.id),
    ]
    second = await run(rt, upstream, stream=True, messages=follow, tools=[WEATHER])
    assert second.message.content == "Tool results: sunny"
    sent = upstream.requests[-1].json["messages"]
    assert sent[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Hello there friend", "days": 1}
    assert sent[3] == {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": call.id}


async def test_vision_images_bare_base64(rt: ModelRuntime, upstream: Any) -> None:
    msg = UserPromptMessage(
        content=[TextPromptMessageContent(data="describe"), ImagePromptMessageContent(url="data:image/png;base64,iVBORw0")]
    )
    await run(rt, upstream, stream=False, messages=[msg], vision_support="true")
    assert upstream.requests[-1].json["messages"][0] == {"role": "user", "content": "describe", "images": ["iVBORw0"]}


async def test_completion_mode(rt: ModelRuntime, upstream: Any) -> None:
    result = await run(rt, upstream, stream=False, mode="completion")
    assert upstream.requests[-1].json["messages"] == [{"role": "user", "content": "Be brief.\nHello there friend"}]
    assert result.message.content == "Echo: Be brief.\nHello there friend"


# -- failures -------------------------------------------------------------------------------------


async def test_mid_stream_error_line_is_typed(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2), path="/api/chat")
    llm = rt.get_model_instance("ollama", "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, None, None, True)
    got: list[str] = []
    with pytest.raises(InvokeServerUnavailableError) as info:
        async for chunk in stream:
            got.append(chunk.delta.message.content)
    assert "unexpected EOF" in str(info.value)
    assert len(got) == 2 and stream.result().finish_reason is None


async def test_disconnect_is_interrupted_never_short_success(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(disconnect_after=2), path="/api/chat")
    llm = rt.get_model_instance("ollama", "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, None, None, True)
    with pytest.raises(InvokeStreamInterruptedError):
        async for _ in stream:
            pass


async def test_status_errors(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(status=429, retry_after=2), path="/api/chat")
    with pytest.raises(InvokeRateLimitError) as info:
        await run(rt, upstream, stream=True)
    assert info.value.retry_after == 2.0
    upstream.faults.push(Fault(status=503), path="/api/chat")
    with pytest.raises(InvokeServerUnavailableError):
        await run(rt, upstream, stream=False)
    upstream.faults.push(Fault(status=400), path="/api/chat")
    with pytest.raises(InvokeBadRequestError):
        await run(rt, upstream, stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_model_not_found(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    with pytest.raises(InvokeModelNotFoundError) as info:
        await run(rt, upstream, stream=stream, model="missing-model")
    assert 'model "missing-model" not found' in str(info.value)
    assert isinstance(info.value, InvokeBadRequestError)


async def test_malformed_non_stream_body(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(malformed=True), path="/api/chat")
    with pytest.raises(InvokeServerUnavailableError):
        await run(rt, upstream, stream=False)


async def test_unreachable_server(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance("ollama", "llm")
    with pytest.raises(InvokeError):
        await llm.invoke(MODEL, {"base_url": "http://127.0.0.1:9", "mode": "chat", "context_size": "4096", "max_tokens": "512"}, MESSAGES, stream=False)


# -- credentials and tokens --------------------------------------------------------------------------


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    filtered = await rt.model_credentials_validate("ollama", "llm", MODEL, creds(upstream))
    assert filtered["base_url"] == upstream.url
    assert upstream.requests[-1].json["options"] == {"num_predict": 5}
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("ollama", "llm", "missing-model", creds(upstream))
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("ollama", "llm", MODEL, {**creds(upstream), "base_url": "http://127.0.0.1:9"})
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("ollama", "llm", MODEL, {**creds(upstream), "context_size": "lots"})
    upstream.faults.push(Fault(status=500), path="/api/chat")
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("ollama", "llm", MODEL, creds(upstream))
    emb = await rt.model_credentials_validate("ollama", "text-embedding", "all-minilm", emb_creds(upstream))
    assert "mode" not in emb
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("ollama", "text-embedding", "missing-model", emb_creds(upstream))


async def test_get_num_tokens_gpt2(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance("ollama", "llm")
    n = await llm.get_num_tokens(MODEL, creds(upstream), [UserPromptMessage(content="Hello World!")])
    # "role" + "user" + "content" + "Hello World!" (3 gpt2 tokens)
    assert n == 1 + 1 + 1 + 3
    with_tools = await llm.get_num_tokens(MODEL, creds(upstream), [UserPromptMessage(content="Hello World!")], [WEATHER])
    assert with_tools > n


# -- embeddings ----------------------------------------------------------------------------------------


async def test_embeddings_batching_and_order(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("ollama", "text-embedding")
    texts = [f"text number {i}" for i in range(70)]
    result = await emb.invoke("all-minilm", emb_creds(upstream), texts)
    assert result.embeddings == [embedding_vector(t, 8) for t in texts]
    assert result.usage.tokens == embedding_tokens(texts)
    calls = [r for r in upstream.requests if r.path == "/api/embed"]
    assert [len(r.json["input"]) for r in calls] == [32, 32, 6]
    assert all(r.json["truncate"] is True for r in calls)


async def test_embeddings_truncated_to_context_size(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("ollama", "text-embedding")
    long_text = "word " * 600
    await emb.invoke("all-minilm", {"base_url": upstream.url, "context_size": "10"}, [long_text, "short"])
    sent = upstream.requests[-1].json["input"]
    assert len(sent[0].split()) <= 10 and sent[1] == "short"


async def test_embeddings_errors(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("ollama", "text-embedding")
    with pytest.raises(InvokeModelNotFoundError):
        await emb.invoke("missing-model", emb_creds(upstream), ["a"])
    upstream.faults.push(Fault(status=500), path="/api/embed")
    with pytest.raises(InvokeServerUnavailableError):
        await emb.invoke("all-minilm", emb_creds(upstream), ["a"])
