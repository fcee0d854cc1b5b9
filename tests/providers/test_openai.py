"""The ``openai`` provider end to end against the upstream simulator (real sockets)."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from arun.entities.llm import LLMResult, LLMResultChunk
from arun.entities.messages import (
    AssistantPromptMessage,
    ImagePromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    UserPromptMessage,
)
from arun.entities.model import ModelType
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
    ParameterValidationError,
)
from arun.model_types.tts import split_text_into_sentences
from arun.protocols.openai_misc import (
    build_embedding_body,
    decode_embedding,
    parse_embedding_response,
    parse_moderation_response,
    parse_transcription,
)
from arun.runtime import ModelRuntime
from arun.testing import Fault
from arun.testing.content import audio_bytes, embedding_vector, transcript_text
from arun.testing.sim_openai import pack_float32

CHAT = "/v1/chat/completions"

WEATHER_TOOL = PromptMessageTool(
    name="get_weather",
    description="Determine weather in my location",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["location"],
    },
)
TIME_TOOL = PromptMessageTool(
    name="get_time",
    description="Current time in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "offset": {"type": "integer"}}},
)
MESSAGES = [SystemPromptMessage(content="Be brief."), UserPromptMessage(content="Hello there friend")]


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"openai_api_key": "sk-test", "openai_api_base": upstream.url}


@pytest.fixture
def bad_creds(upstream: Any) -> dict[str, str]:
    return {"openai_api_key": "invalid-key-0123456789abcdef", "openai_api_base": upstream.url}


def last_body(sim: Any, path: str = CHAT) -> Any:
    for req in reversed(sim.requests):
        if req.path == path:
            return req.body
    raise AssertionError(f"no request to {path}")


def bodies(sim: Any, path: str) -> list[Any]:
    return [r.body for r in sim.requests if r.path == path]


# ---------------------------------------------------------------------------- chat


async def test_non_stream_chat_usage_and_exact_price(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance("openai", "llm")
    result = await llm.invoke("gpt-4o-mini", creds, MESSAGES, {"temperature": 0.2}, stream=False)
    assert isinstance(result, LLMResult)
    assert result.message.content == "Echo: Hello there friend"
    assert result.finish_reason == "stop"
    u = result.usage
    # simulator: prompt = words (2 + 3) + 3 per message (2); completion = 4 pieces
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (11, 4, 15)
    # gpt-4o-mini: 0.15 / 0.60 per 1M tokens, quantized to 7 decimals half-up
    assert u.prompt_unit_price == Decimal("0.15") and u.prompt_price_unit == Decimal("0.000001")
    assert u.prompt_price == Decimal("0.0000017")  # 11 * 0.15e-6 = 0.00000165
    assert u.completion_price == Decimal("0.0000024")
    assert u.total_price == Decimal("0.0000041")
    assert u.currency == "USD"
    assert u.latency > 0


async def test_stream_chat_chunks_and_final_usage(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    plain = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=False)
    stream = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=True)
    chunks = [c async for c in stream]
    assert all(isinstance(c, LLMResultChunk) for c in chunks)
    assert all(isinstance(c.delta.message, AssistantPromptMessage) for c in chunks)
    body = last_body(upstream)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    *middle, final = chunks
    assert middle
    for chunk in middle:
        assert chunk.delta.finish_reason is None
        assert chunk.delta.message.content
    assert final.delta.finish_reason == "stop"
    assert final.delta.usage is not None and final.delta.usage.completion_tokens > 0
    assert final.delta.usage.prompt_tokens == 11
    assert "".join(c.delta.message.content or "" for c in chunks) == plain.message.content


@pytest.mark.parametrize("stream", [False, True])
async def test_parallel_tool_calls(rt: ModelRuntime, creds: dict[str, str], stream: bool) -> None:
    llm = rt.get_model_instance("openai", "llm")
    messages = [UserPromptMessage(content="Paris")]
    out = await llm.invoke("gpt-4o-mini", creds, messages, tools=[WEATHER_TOOL, TIME_TOOL], stream=stream)
    if stream:
        chunks = [c async for c in out]
        final = chunks[-1]
        calls = final.delta.message.tool_calls
        assert final.delta.finish_reason == "tool_calls"
    else:
        calls = out.message.tool_calls
        assert out.finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert [c.id for c in calls] == ["call_0", "call_1"]
    args = [msgspec.json.decode(c.function.arguments) for c in calls]
    assert args == [{"location": "Paris", "unit": "Paris"}, {"city": "Paris", "offset": 1}]


async def test_tools_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    await llm.invoke("gpt-4o-mini", creds, MESSAGES, tools=[WEATHER_TOOL], stream=False)
    tools = last_body(upstream)["tools"]
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Determine weather in my location",
                "parameters": WEATHER_TOOL.parameters,
            },
        }
    ]


async def test_vision_parts_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    message = UserPromptMessage(
        content=[
            TextPromptMessageContent(data="What is in this picture?"),
            ImagePromptMessageContent(url="https://example.com/cat.png", detail="high"),
            ImagePromptMessageContent(base64_data="iVBORw0KGgo=", mime_type="image/png", format="png"),
        ]
    )
    result = await llm.invoke("gpt-4o", creds, [message], stream=False)
    assert result.message.content == "Echo: What is in this picture?"
    content = last_body(upstream)["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]


async def test_response_format_json_object(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    result = await llm.invoke("gpt-4o-mini", creds, MESSAGES, {"response_format": "json_object"}, stream=False)
    assert last_body(upstream)["response_format"] == {"type": "json_object"}
    assert msgspec.json.decode(result.message.content) == {"answer": "Echo: Hello there friend"}


async def test_response_format_json_schema(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}, "strict": True}
    params = {"response_format": "json_schema", "json_schema": msgspec.json.encode(schema).decode()}
    await llm.invoke("gpt-4o-mini", creds, MESSAGES, params, stream=False)
    body = last_body(upstream)
    assert body["response_format"] == {"type": "json_schema", "json_schema": schema}
    assert "json_schema" not in body


async def test_response_format_json_schema_requires_schema(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(ParameterValidationError):
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, {"response_format": "json_schema"}, stream=False)


async def test_stop_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    result = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stop=["friend", "zzz"], stream=False)
    assert last_body(upstream)["stop"] == ["friend", "zzz"]
    assert result.message.content == "Echo: Hello there "
    assert result.finish_reason == "stop"


async def test_fine_tuned_model_resolves_base_schema(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    name = "ft:gpt-4o-mini-2024-07-18:org::abc"
    schema = await llm.get_model_schema(name, creds)
    base = await llm.get_model_schema("gpt-4o-mini")
    assert schema is not None and base is not None
    assert schema.model == name
    assert schema.pricing == base.pricing
    assert schema.parameter_rules == base.parameter_rules
    assert schema.model_properties == base.model_properties
    result = await llm.invoke(name, creds, MESSAGES, stream=False)
    assert last_body(upstream)["model"] == name
    assert result.usage.prompt_price == Decimal("0.0000017")


async def test_o3_mini_sends_max_completion_tokens(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    await llm.invoke("o3-mini", creds, MESSAGES, {"max_tokens": 100}, stream=False)
    body = last_body(upstream)
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body
    await llm.invoke("gpt-4o-mini", creds, MESSAGES, {"max_tokens": 100}, stream=False)
    body = last_body(upstream)
    assert body["max_tokens"] == 100 and "max_completion_tokens" not in body


async def test_max_tokens_truncates_with_length(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance("openai", "llm")
    result = await llm.invoke("gpt-4o-mini", creds, MESSAGES, {"max_tokens": 2}, stream=False)
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 2


# ---------------------------------------------------------------------------- Dify §11


async def test_get_num_tokens_dify_value(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance("openai", "llm")
    messages = [SystemPromptMessage(content="You are a helpful AI assistant."), UserPromptMessage(content="Hello World!")]
    assert await llm.get_num_tokens("gpt-3.5-turbo", creds, messages, [WEATHER_TOOL]) == 72
    assert await llm.get_num_tokens("gpt-3.5-turbo", creds, messages) == 21


async def test_embedding_get_num_tokens(rt: ModelRuntime, creds: dict[str, str]) -> None:
    emb = rt.get_model_instance("openai", "text-embedding")
    assert await emb.get_num_tokens("text-embedding-3-small", creds, ["hello", "world"]) == [1, 1]


async def test_predefined_models_in_position_order(rt: ModelRuntime) -> None:
    expected = {
        "llm": ["gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-3.5-turbo"],
        "text-embedding": ["text-embedding-3-large", "text-embedding-3-small", "text-embedding-ada-002"],
        "speech2text": ["whisper-1"],
        "tts": ["tts-1", "tts-1-hd"],
        "moderation": ["omni-moderation-latest", "text-moderation-stable"],
    }
    for kind, names in expected.items():
        models = await rt.get_model_instance("openai", kind).predefined_models()
        assert [m.model for m in models] == names, kind
        assert all(m.model_type == ModelType.value_of(kind) for m in models)


async def test_model_properties_and_prices(rt: ModelRuntime) -> None:
    emb = rt.get_model_instance("openai", "text-embedding")
    for name, price in (("text-embedding-3-small", "0.02"), ("text-embedding-3-large", "0.13"), ("text-embedding-ada-002", "0.10")):
        schema = await emb.get_model_schema(name)
        assert schema.property("context_size") == 8191 and schema.property("max_chunks") == 32
        assert schema.pricing.input == Decimal(price) and schema.pricing.unit == Decimal("0.000001")
    tts = rt.get_model_instance("openai", "tts")
    for name, price in (("tts-1", "15.00"), ("tts-1-hd", "30.00")):
        schema = await tts.get_model_schema(name)
        assert schema.property("word_limit") == 3500 and schema.property("max_workers") == 5
        assert schema.property("audio_type") == "mp3" and schema.property("default_voice") == "alloy"
        assert schema.pricing.input == Decimal(price)
    mod = rt.get_model_instance("openai", "moderation")
    for name in ("omni-moderation-latest", "text-moderation-stable"):
        schema = await mod.get_model_schema(name)
        assert schema.property("max_chunks") == 32 and schema.property("max_characters_per_chunk") == 2000


async def test_factory_lists_openai(rt: ModelRuntime) -> None:
    assert "openai" in rt.provider_names()
    providers = await rt.get_models(provider="openai")
    assert len(providers) == 1
    llms = await rt.get_models(provider="openai", model_type="llm")
    assert all(m.model_type == ModelType.LLM for p in llms for m in p.models)


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("llm", "gpt-4o-mini"),
        ("text-embedding", "text-embedding-3-small"),
        ("speech2text", "whisper-1"),
        ("tts", "tts-1"),
        ("moderation", "omni-moderation-latest"),
    ],
)
async def test_validate_credentials(
    rt: ModelRuntime, creds: dict[str, str], bad_creds: dict[str, str], kind: str, model: str
) -> None:
    instance = rt.get_model_instance("openai", kind)
    assert await instance.validate_credentials(model, creds) is None
    with pytest.raises(CredentialsValidateFailedError) as info:
        await instance.validate_credentials(model, bad_creds)
    assert bad_creds["openai_api_key"] not in str(info.value)


async def test_provider_validates_with_gpt_4o_mini(
    rt: ModelRuntime, creds: dict[str, str], bad_creds: dict[str, str], upstream: Any
) -> None:
    provider = rt.get_provider("openai")
    assert provider.spec is not None and provider.spec.validate_model == "gpt-4o-mini"  # data, not code
    await rt.provider_credentials_validate("openai", creds)
    assert last_body(upstream)["model"] == "gpt-4o-mini"
    with pytest.raises(CredentialsValidateFailedError):
        await provider.validate_provider_credentials(bad_creds)


async def test_validate_credentials_unreachable_base(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(CredentialsValidateFailedError):
        await llm.validate_credentials("gpt-4o-mini", {"openai_api_key": "sk-x", "openai_api_base": "http://127.0.0.1:9"})


# ---------------------------------------------------------------------------- errors


async def test_401_authorization_error_keeps_cause_not_key(rt: ModelRuntime, bad_creds: dict[str, str]) -> None:
    llm = rt.get_model_instance("openai", "llm")
    key = bad_creds["openai_api_key"]
    for stream in (False, True):
        with pytest.raises(InvokeAuthorizationError) as info:
            await llm.invoke("gpt-4o-mini", bad_creds, MESSAGES, stream=stream)
        err = info.value
        assert err.status == 401
        assert "Incorrect API key provided" in str(err)
        assert key not in str(err) and key not in repr(err) and key not in (err.body or "")
        assert err.provider == "openai" and err.model == "gpt-4o-mini"
        assert err.request_id and err.request_id.startswith("req_")


@pytest.mark.parametrize("stream", [False, True])
async def test_429_rate_limit_with_retry_after(rt: ModelRuntime, creds: dict[str, str], upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=429, retry_after=3), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(InvokeRateLimitError) as info:
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=stream)
    assert not isinstance(info.value, InvokeQuotaExhaustedError)
    assert info.value.retry_after == 3.0
    assert info.value.status == 429


async def test_429_insufficient_quota(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(status=429, error_type="insufficient_quota"), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(InvokeQuotaExhaustedError):
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=False)


async def test_400_context_length_exceeded(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(InvokeContextLengthExceededError) as info:
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=True)
    assert "maximum context length" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_server_unavailable(rt: ModelRuntime, creds: dict[str, str], upstream: Any, status: int) -> None:
    upstream.faults.push(Fault(status=status), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(InvokeServerUnavailableError) as info:
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=False)
    assert info.value.status == status


async def test_mid_stream_disconnect(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(disconnect_after=2), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    stream = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=True)
    seen: list[LLMResultChunk] = []
    with pytest.raises(InvokeStreamInterruptedError) as info:
        async for chunk in stream:
            seen.append(chunk)
    assert isinstance(info.value, InvokeConnectionError)
    assert all(c.delta.finish_reason is None for c in seen)


async def test_non_stream_disconnect_is_connection_error(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(disconnect_after=0), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(InvokeConnectionError):
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=False)


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [(None, InvokeServerUnavailableError), ("insufficient_quota", InvokeQuotaExhaustedError)],
)
async def test_in_stream_error_event(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, error_type: str | None, expected: type[InvokeError]
) -> None:
    upstream.faults.push(Fault(error_event_after=2, error_type=error_type), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    stream = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=True)
    with pytest.raises(expected):
        async for _ in stream:
            pass


async def test_malformed_stream_event(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(malformed=True), path=CHAT)
    llm = rt.get_model_instance("openai", "llm")
    stream = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=True)
    with pytest.raises(InvokeError):
        async for _ in stream:
            pass


async def test_connections_released(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance("openai", "llm")
    await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=False)
    stream = await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=True)
    async for _ in stream:
        pass
    emb = rt.get_model_instance("openai", "text-embedding")
    await emb.invoke("text-embedding-3-small", creds, ["a b"])
    tts = rt.get_model_instance("openai", "tts")
    audio = await tts.invoke("tts-1", None, creds, "Hello there.", "alloy")
    async for _ in audio:
        pass
    assert rt.http.acquired_connections() == 0


# ---------------------------------------------------------------------------- embeddings


async def test_embedding_base64_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance("openai", "text-embedding")
    texts = ["hello world", "the quick brown fox", "x"]
    result = await emb.invoke("text-embedding-3-small", creds, texts)
    body = last_body(upstream, "/v1/embeddings")
    assert body == {"model": "text-embedding-3-small", "input": texts, "encoding_format": "base64"}
    assert len(result.embeddings) == 3
    for text, vector in zip(texts, result.embeddings):
        assert vector == pytest.approx(embedding_vector(text, 8), rel=1e-6, abs=1e-7)
    # usage: words per input, summed; 0.02 per 1M tokens
    assert result.usage.tokens == result.usage.total_tokens == 7
    assert result.usage.unit_price == Decimal("0.02") and result.usage.price_unit == Decimal("0.000001")
    assert result.usage.total_price == Decimal("0.0000001")  # 7 * 0.02e-6 = 1.4e-7
    assert result.usage.currency == "USD"
    assert result.model == "text-embedding-3-small"


async def test_embedding_float_response(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance("openai", "text-embedding")
    # base64 by default (as the official SDK); a caller asks for float arrays per call
    result = await emb.invoke("text-embedding-ada-002", creds, ["hello world", "foo"], extra_body={"encoding_format": "float"})
    assert last_body(upstream, "/v1/embeddings")["encoding_format"] == "float"
    assert result.embeddings == [embedding_vector("hello world", 8), embedding_vector("foo", 8)]


async def test_embedding_batches_by_max_chunks_in_order(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance("openai", "text-embedding")
    texts = [f"text number {i}" for i in range(70)]
    progress: list[int] = []
    result = await emb.invoke("text-embedding-3-large", creds, texts, on_progress=progress.append)
    sent = bodies(upstream, "/v1/embeddings")
    assert sorted(len(b["input"]) for b in sent) == [6, 32, 32]
    assert sorted(t for b in sent for t in b["input"]) == sorted(texts)
    assert sorted(progress) == [6, 32, 32]
    assert len(result.embeddings) == 70
    for text, vector in zip(texts, result.embeddings):
        assert vector == pytest.approx(embedding_vector(text, 8), rel=1e-6, abs=1e-7)
    assert result.usage.tokens == 210
    assert result.usage.total_price == Decimal("0.0000273")  # 210 * 0.13e-6


async def test_embedding_truncates_to_context_size(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    from arun.tokenizers import count_tokens

    emb = rt.get_model_instance("openai", "text-embedding")
    long_text = "word " * 10000
    await emb.invoke("text-embedding-3-small", creds, [long_text, "short"])
    sent = last_body(upstream, "/v1/embeddings")["input"]
    assert sent[1] == "short"
    assert count_tokens(sent[0], "cl100k_base") <= 8191
    assert long_text.startswith(sent[0])


async def test_embedding_errors_are_typed(rt: ModelRuntime, creds: dict[str, str], upstream: Any, bad_creds: dict[str, str]) -> None:
    emb = rt.get_model_instance("openai", "text-embedding")
    upstream.faults.push(Fault(status=429, retry_after=1.5), path="/v1/embeddings")
    with pytest.raises(InvokeRateLimitError) as info:
        await emb.invoke("text-embedding-3-small", creds, ["a"])
    assert info.value.retry_after == 1.5
    with pytest.raises(InvokeAuthorizationError):
        await emb.invoke("text-embedding-3-small", bad_creds, ["a"])
    assert (await emb.invoke("text-embedding-3-small", creds, [])).embeddings == []


def test_embedding_wire_helpers() -> None:
    vec = embedding_vector("abc", 16)
    assert decode_embedding(pack_float32(vec)) == pytest.approx(vec, rel=1e-6, abs=1e-7)
    assert decode_embedding([0.5, -1.0]) == [0.5, -1.0]
    body = msgspec.json.encode(
        {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": pack_float32([1.0])}], "usage": {"prompt_tokens": 4}}
    )
    parsed = parse_embedding_response("openai", body, expected=2)
    assert parsed.embeddings == [[1.0], [2.0]] and parsed.tokens == 4
    with pytest.raises(InvokeServerUnavailableError):
        parse_embedding_response("openai", body, expected=3)
    with pytest.raises(InvokeServerUnavailableError):
        parse_embedding_response("openai", b'{"data": [')
    assert msgspec.json.decode(build_embedding_body("m", ["a"], encoding_format=None)) == {"model": "m", "input": ["a"]}


# ---------------------------------------------------------------------------- speech2text


async def test_speech2text_multipart(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    s2t = rt.get_model_instance("openai", "speech2text")
    audio = b"ID3" + bytes(range(256)) * 8
    text = await s2t.invoke("whisper-1", creds, audio)
    assert text == transcript_text(len(audio))
    req = upstream.requests[-1]
    assert req.path == "/v1/audio/transcriptions"
    assert req.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert req.headers["Authorization"] == "Bearer sk-test"
    form = req.form
    assert form["model"] == "whisper-1"
    assert form["response_format"] == "json"
    assert form["file"] == {"filename": "audio.mp3", "content_type": "audio/mpeg", "size": len(audio)}


async def test_speech2text_file_object_keeps_name(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    s2t = rt.get_model_instance("openai", "speech2text")
    f = io.BytesIO(b"RIFF\x00\x00\x00\x00WAVE" + b"\x00" * 100)
    f.name = "/tmp/recordings/clip.wav"
    assert await s2t.invoke("whisper-1", creds, f) == transcript_text(112)
    assert upstream.requests[-1].form["file"]["filename"] == "clip.wav"
    assert upstream.requests[-1].form["file"]["content_type"] == "audio/wav"


async def test_speech2text_errors(rt: ModelRuntime, creds: dict[str, str], bad_creds: dict[str, str], upstream: Any) -> None:
    s2t = rt.get_model_instance("openai", "speech2text")
    with pytest.raises(InvokeAuthorizationError):
        await s2t.invoke("whisper-1", bad_creds, b"abc")
    upstream.faults.push(Fault(status=503), path="/v1/audio/transcriptions")
    with pytest.raises(InvokeServerUnavailableError):
        await s2t.invoke("whisper-1", creds, b"abc")
    with pytest.raises(ParameterValidationError):
        await s2t.invoke("whisper-1", creds, b"")


def test_parse_transcription_variants() -> None:
    assert parse_transcription("openai", b'{"text": "hi there"}', "application/json") == "hi there"
    assert parse_transcription("openai", b"plain words\n", "text/plain") == "plain words"
    with pytest.raises(InvokeServerUnavailableError):
        parse_transcription("openai", b'{"text": ', "application/json")


# ---------------------------------------------------------------------------- tts


async def test_tts_streams_bytes(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    tts = rt.get_model_instance("openai", "tts")
    text = "Hello there, this is a test of the speech endpoint."
    audio = await tts.invoke("tts-1", None, creds, text, "nova")
    pieces = [chunk async for chunk in audio]
    assert b"".join(pieces) == audio_bytes(text, 256, "mp3")
    assert len(pieces) >= 1
    body = last_body(upstream, "/v1/audio/speech")
    assert body == {"model": "tts-1", "input": text, "voice": "nova", "response_format": "mp3"}
    assert upstream.requests[-1].headers["Accept"] == "application/octet-stream"


async def test_tts_failure_keeps_its_own_cause(rt: ModelRuntime) -> None:
    # a typed error from the first request is raised as it is: its cause stays the transport's error
    tts = rt.get_model_instance("openai", "tts")
    with pytest.raises(InvokeConnectionError) as info:
        await tts.invoke("tts-1", None, {"openai_api_key": "sk-test", "openai_api_base": "http://127.0.0.1:9"}, "Hi.", "alloy")
    assert info.value.__cause__ is not None and info.value.__cause__ is not info.value


async def test_tts_unknown_voice_uses_default(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    tts = rt.get_model_instance("openai", "tts")
    for voice in ("no-such-voice", None, ""):
        audio = await tts.invoke("tts-1-hd", None, creds, "Hi.", voice)
        async for _ in audio:
            pass
        assert last_body(upstream, "/v1/audio/speech")["voice"] == "alloy"


async def test_tts_long_text_split_into_requests(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    tts = rt.get_model_instance("openai", "tts")
    text = " ".join(f"This is sentence number {i} of a long text." for i in range(250))
    assert len(text) > 3500 * 2
    expected_pieces = split_text_into_sentences(text, 3500)
    assert len(expected_pieces) >= 3
    audio = await tts.invoke("tts-1", None, creds, text, "echo")
    data = b"".join([chunk async for chunk in audio])
    sent = bodies(upstream, "/v1/audio/speech")
    assert len(sent) == len(expected_pieces)
    assert sorted(b["input"] for b in sent) == sorted(expected_pieces)
    assert all(len(b["input"]) <= 3500 and b["voice"] == "echo" for b in sent)
    assert data == b"".join(audio_bytes(p, 256, "mp3") for p in expected_pieces)


async def test_tts_voices(rt: ModelRuntime, creds: dict[str, str]) -> None:
    tts = rt.get_model_instance("openai", "tts")
    voices = await tts.get_tts_model_voices("tts-1", creds)
    assert [v["value"] for v in voices] == ["alloy", "echo", "fable", "onyx", "nova", "shimmer"]
    assert voices[0] == {"name": "Alloy", "value": "alloy"}
    assert len(await tts.get_tts_model_voices("tts-1", creds, language="zh-Hans")) == 6
    assert len(await tts.get_tts_model_voices("tts-1-hd", creds, language="th-TH")) == 6
    with pytest.raises(ParameterValidationError):
        await tts.get_tts_model_voices("tts-1", creds, language="ja-JP")


async def test_tts_errors(rt: ModelRuntime, creds: dict[str, str], bad_creds: dict[str, str], upstream: Any) -> None:
    tts = rt.get_model_instance("openai", "tts")
    with pytest.raises(InvokeAuthorizationError):
        await tts.invoke("tts-1", None, bad_creds, "Hello.", "alloy")
    upstream.faults.push(Fault(status=429, retry_after=2), path="/v1/audio/speech")
    with pytest.raises(InvokeRateLimitError) as info:
        await tts.invoke("tts-1", None, creds, "Hello.", "alloy")
    assert info.value.retry_after == 2.0
    upstream.faults.push(Fault(disconnect_after=1), path="/v1/audio/speech")
    text = " ".join(["word"] * 50)  # 12,800 bytes: several chunks
    audio = await tts.invoke("tts-1", None, creds, text, "alloy")
    with pytest.raises(InvokeConnectionError):
        async for _ in audio:
            pass


# ---------------------------------------------------------------------------- moderation


async def test_moderation_benign_and_flagged(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    mod = rt.get_model_instance("openai", "moderation")
    assert await mod.invoke("omni-moderation-latest", creds, "What a lovely day.") is False
    assert last_body(upstream, "/v1/moderations") == {"model": "omni-moderation-latest", "input": ["What a lovely day."]}
    assert await mod.invoke("text-moderation-stable", creds, "I hate this so much") is True
    assert await mod.invoke("omni-moderation-latest", creds, "") is False


async def test_moderation_slices_long_text(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    mod = rt.get_model_instance("openai", "moderation")
    text = ("abcd " * 1000)[:5000]
    assert await mod.invoke("omni-moderation-latest", creds, text) is False
    sent = bodies(upstream, "/v1/moderations")
    assert len(sent) == 1
    assert [len(s) for s in sent[0]["input"]] == [2000, 2000, 1000]
    assert "".join(sent[0]["input"]) == text
    flagged = "x" * 4500 + " kill " + "y" * 100
    assert await mod.invoke("omni-moderation-latest", creds, flagged) is True


async def test_moderation_errors(rt: ModelRuntime, creds: dict[str, str], bad_creds: dict[str, str], upstream: Any) -> None:
    mod = rt.get_model_instance("openai", "moderation")
    with pytest.raises(InvokeAuthorizationError):
        await mod.invoke("omni-moderation-latest", bad_creds, "hello")
    upstream.faults.push(Fault(status=500), path="/v1/moderations")
    with pytest.raises(InvokeServerUnavailableError):
        await mod.invoke("omni-moderation-latest", creds, "hello")
    with pytest.raises(InvokeServerUnavailableError):
        parse_moderation_response("openai", b"{}")
    assert parse_moderation_response("openai", b'{"results":[{"flagged":false},{"flagged":true}]}') is True
