"""The ``openai_api_compatible`` provider (customizable-model only) against the upstream simulator.

The headline difference from Dify: an error status from the upstream is classified
(401/403 -> Authorization, 429 -> RateLimit, 5xx/529 -> ServerUnavailable) instead of
being raised as a base ``InvokeError``, so load balancing can cool down and fail over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from aiohttp import web

from arun.entities.embedding import EmbeddingInputType
from arun.entities.llm import LLMResult
from arun.entities.messages import PromptMessageTool, SystemPromptMessage, UserPromptMessage
from arun.entities.model import FetchFrom, ModelFeature, ModelPropertyKey, ModelType
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeError,
    InvokeOverloadedError,
    InvokePermissionDeniedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
    ParameterValidationError,
)
from arun.runtime import ModelRuntime
from arun.testing import Fault
from arun.testing.content import audio_bytes, embedding_vector, transcript_text

PROVIDER = "openai_api_compatible"
CHAT = "/v1/chat/completions"
MODEL = "my-model"
MESSAGES = [SystemPromptMessage(content="Be brief."), UserPromptMessage(content="Hello there friend")]
WEATHER_TOOL = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME_TOOL = PromptMessageTool(
    name="get_time",
    description="Current time in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}, "offset": {"type": "integer"}}},
)


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"endpoint_url": upstream.url + "/v1", "api_key": "sk-compat-test"}


@pytest.fixture
def llm_creds(creds: dict[str, str]) -> dict[str, str]:
    return {
        **creds,
        "mode": "chat",
        "context_size": "32768",
        "max_tokens_to_sample": "2048",
        "function_calling_type": "tool_call",
        "stream_function_calling": "supported",
        "vision_support": "support",
        "input_price": "2",
        "output_price": "4",
        "unit": "0.001",
        "currency": "EUR",
    }


def requests_to(sim: Any, path: str) -> list[Any]:
    return [r for r in sim.requests if r.path == path]


def last_body(sim: Any, path: str = CHAT) -> Any:
    found = requests_to(sim, path)
    assert found, f"no request to {path}"
    return found[-1].body


# ---------------------------------------------------------------------------- provider schema


def test_provider_schema(rt: ModelRuntime) -> None:
    schema = rt.get_provider_schema(PROVIDER)
    assert [m.value for m in schema.configurate_methods] == ["customizable-model"]
    assert set(schema.supported_model_types) == {
        ModelType.LLM,
        ModelType.TEXT_EMBEDDING,
        ModelType.RERANK,
        ModelType.SPEECH2TEXT,
        ModelType.TTS,
    }
    assert schema.provider_credential_schema is None
    form = {f.variable: f for f in schema.model_credential_schema.credential_form_schemas}
    assert form["endpoint_url"].required and not form["api_key"].required
    assert form["api_key"].type.value == "secret-input"
    for name in ("mode", "function_calling_type", "stream_function_calling", "vision_support", "max_tokens_to_sample"):
        assert [(s.variable, s.value) for s in form[name].show_on] == [("__model_type", "llm")], name
    assert [o.value for o in form["function_calling_type"].options] == ["function_call", "tool_call", "no_call"]
    assert [(s.variable, s.value) for s in form["voices"].show_on] == [("__model_type", "tts")]
    assert [(s.variable, s.value) for s in form["max_chunks"].show_on] == [("__model_type", "text-embedding")]


async def test_no_predefined_models(rt: ModelRuntime) -> None:
    assert await rt.get_provider(PROVIDER).models(ModelType.LLM) == []


# ---------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("model_type", ["llm", "text-embedding", "rerank", "speech2text", "tts"])
async def test_validate_good_credentials(rt: ModelRuntime, creds: dict[str, str], model_type: str) -> None:
    filtered = await rt.model_credentials_validate(PROVIDER, model_type, MODEL, creds)
    assert filtered["endpoint_url"] == creds["endpoint_url"]
    assert "__model_type" not in filtered
    if model_type == "llm":
        assert filtered["mode"] == "chat" and filtered["function_calling_type"] == "no_call"
        assert filtered["context_size"] == "4096"
        assert "voices" not in filtered and "max_chunks" not in filtered
    if model_type == "text-embedding":
        assert filtered["max_chunks"] == "1" and "mode" not in filtered
    if model_type == "tts":
        assert filtered["voices"] == "alloy"


@pytest.mark.parametrize("model_type", ["llm", "text-embedding", "rerank", "speech2text", "tts"])
async def test_validate_missing_endpoint_names_variable(rt: ModelRuntime, model_type: str) -> None:
    with pytest.raises(CredentialsValidateFailedError, match="endpoint_url"):
        await rt.model_credentials_validate(PROVIDER, model_type, MODEL, {"api_key": "sk-x"})


@pytest.mark.parametrize("model_type", ["llm", "text-embedding", "rerank", "speech2text", "tts"])
async def test_validate_direct_call_without_endpoint(rt: ModelRuntime, model_type: str) -> None:
    model = rt.get_model_instance(PROVIDER, model_type)
    with pytest.raises(CredentialsValidateFailedError, match="endpoint_url"):
        await model.validate_credentials(MODEL, {"api_key": "sk-x"})
    with pytest.raises(CredentialsValidateFailedError, match="endpoint_url"):
        await model.validate_credentials(MODEL, {"endpoint_url": "ftp://nowhere"})


@pytest.mark.parametrize("model_type", ["llm", "text-embedding", "rerank", "speech2text", "tts"])
async def test_validate_bad_key(rt: ModelRuntime, upstream: Any, model_type: str) -> None:
    bad = {"endpoint_url": upstream.url + "/v1", "api_key": "invalid-key-123"}
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.model_credentials_validate(PROVIDER, model_type, MODEL, bad)
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
    assert "invalid-key-123" not in str(info.value)


async def test_validate_unreachable_endpoint(rt: ModelRuntime) -> None:
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {"endpoint_url": "http://127.0.0.1:9/v1"})


async def test_validate_bad_select_and_number(rt: ModelRuntime, creds: dict[str, str]) -> None:
    with pytest.raises(CredentialsValidateFailedError, match="mode"):
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {**creds, "mode": "weird"})
    with pytest.raises(CredentialsValidateFailedError, match="context_size"):
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {**creds, "context_size": "lots"})
    with pytest.raises(CredentialsValidateFailedError, match="max_chunks"):
        await rt.model_credentials_validate(PROVIDER, "text-embedding", MODEL, {**creds, "max_chunks": "0"})
    with pytest.raises(CredentialsValidateFailedError, match="input_price"):
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {**creds, "input_price": "cheap"})


@pytest.mark.parametrize("model_type", ["llm", "text-embedding", "rerank"])
async def test_a_malformed_form_number_is_raised_as_it_is(rt: ModelRuntime, creds: dict[str, str], model_type: str) -> None:
    # the schema's own CredentialsValidateFailedError, not one made its own cause
    with pytest.raises(CredentialsValidateFailedError, match="context_size") as info:
        await rt.get_model_instance(PROVIDER, model_type).validate_credentials(MODEL, {**creds, "context_size": "lots"})
    assert info.value.__cause__ is not info.value


# ---------------------------------------------------------------------------- customizable schema


async def test_llm_schema_from_credentials(rt: ModelRuntime, llm_creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = await llm.get_model_schema(MODEL, llm_creds)
    assert schema is not None
    assert schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert schema.model_type is ModelType.LLM
    assert set(schema.features) == {ModelFeature.MULTI_TOOL_CALL, ModelFeature.STREAM_TOOL_CALL, ModelFeature.VISION}
    assert schema.property(ModelPropertyKey.CONTEXT_SIZE) == 32768
    assert schema.property(ModelPropertyKey.MODE) == "chat"
    rules = {r.name: r for r in schema.parameter_rules}
    t = rules["temperature"]
    assert (t.type.value, t.min, t.max, t.default, t.precision) == ("float", 0, 2, 0.7, 2)
    p = rules["top_p"]
    assert (p.min, p.max, p.default) == (0, 1, 1)
    for name in ("frequency_penalty", "presence_penalty"):
        assert (rules[name].min, rules[name].max, rules[name].default) == (-2, 2, 0)
    m = rules["max_tokens"]
    assert (m.type.value, m.min, m.max, m.default) == ("int", 1, 2048, 512)
    assert t.label.en_US == "Temperature" and t.help is not None  # template filled
    assert schema.pricing is not None
    assert (schema.pricing.input, schema.pricing.output, schema.pricing.unit, schema.pricing.currency) == (
        Decimal("2"),
        Decimal("4"),
        Decimal("0.001"),
        "EUR",
    )
    assert await llm.get_model_mode(MODEL, llm_creds) == "chat"


async def test_llm_schema_defaults(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = await llm.get_model_schema(MODEL, creds)
    assert schema.features == []
    assert schema.property(ModelPropertyKey.CONTEXT_SIZE) == 4096
    assert schema.property(ModelPropertyKey.MODE) == "chat"
    rules = {r.name: r for r in schema.parameter_rules}
    assert rules["max_tokens"].max == 4096 and rules["max_tokens"].default == 512
    assert schema.pricing.input == 0 and schema.pricing.unit == 0 and schema.pricing.currency == "USD"
    f = await llm.get_model_schema(MODEL, {**creds, "function_calling_type": "function_call", "mode": "completion"})
    assert f.features == [ModelFeature.TOOL_CALL]
    assert f.property(ModelPropertyKey.MODE) == "completion"


async def test_other_type_schemas(rt: ModelRuntime, creds: dict[str, str]) -> None:
    emb = await rt.get_model_instance(PROVIDER, "text-embedding").get_model_schema(
        MODEL, {**creds, "max_chunks": "16", "context_size": "512", "input_price": "0.1", "unit": "0.000001"}
    )
    assert emb.property(ModelPropertyKey.MAX_CHUNKS) == 16 and emb.property(ModelPropertyKey.CONTEXT_SIZE) == 512
    assert emb.pricing.input == Decimal("0.1") and emb.pricing.output is None
    default_emb = await rt.get_model_instance(PROVIDER, "text-embedding").get_model_schema(MODEL, creds)
    assert default_emb.property(ModelPropertyKey.MAX_CHUNKS) == 1  # Dify's default
    rr = await rt.get_model_instance(PROVIDER, "rerank").get_model_schema(MODEL, creds)
    assert rr.model_type is ModelType.RERANK and rr.property(ModelPropertyKey.CONTEXT_SIZE) == 4096
    tts = await rt.get_model_instance(PROVIDER, "tts").get_model_schema(MODEL, {**creds, "voices": "nova, echo ,nova"})
    assert tts.property(ModelPropertyKey.DEFAULT_VOICE) == "nova"
    assert [v["mode"] for v in tts.property(ModelPropertyKey.VOICES)] == ["nova", "echo"]
    s2t = await rt.get_model_instance(PROVIDER, "speech2text").get_model_schema(MODEL, creds)
    assert s2t.model_type is ModelType.SPEECH2TEXT


async def test_invoke_validates_parameters_against_schema(
    rt: ModelRuntime, llm_creds: dict[str, str], upstream: Any
) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(ParameterValidationError) as info:
        await llm.invoke(MODEL, llm_creds, MESSAGES, {"temperature": 2.5}, stream=False)
    assert info.value.parameter == "temperature" and info.value.rule == "max"
    assert "temperature" in str(info.value)
    with pytest.raises(ParameterValidationError) as info:
        await llm.invoke(MODEL, llm_creds, MESSAGES, {"max_tokens": 4096}, stream=False)
    assert info.value.parameter == "max_tokens" and info.value.rule == "max"
    with pytest.raises(ParameterValidationError) as info:
        await llm.invoke(MODEL, llm_creds, MESSAGES, {"presence_penalty": -2.5}, stream=False)
    assert info.value.rule == "min"
    assert upstream.stats.total == 0  # nothing was sent
    # in range: sent as given; unknown keys are dropped
    await llm.invoke(
        MODEL, llm_creds, MESSAGES, {"temperature": 1.5, "frequency_penalty": -1.0, "bogus": 1}, stream=False
    )
    body = last_body(upstream)
    assert body["temperature"] == 1.5 and body["frequency_penalty"] == -1.0 and "bogus" not in body


# ---------------------------------------------------------------------------- chat


async def test_chat_wire_url_auth_and_model_name(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, {**creds, "endpoint_url": creds["endpoint_url"] + "/"}, MESSAGES, stream=False)
    assert result.message.content == "Echo: Hello there friend"
    req = requests_to(upstream, CHAT)[-1]
    assert req.headers["Authorization"] == "Bearer sk-compat-test"
    assert req.json["model"] == MODEL
    await llm.invoke(MODEL, {**creds, "endpoint_model_name": "upstream/llama-3"}, MESSAGES, stream=False)
    assert last_body(upstream)["model"] == "upstream/llama-3"


async def test_no_api_key_sends_no_authorization(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    # the simulator insists on a key, so the keyless request is refused -- with the right class
    with pytest.raises(InvokeAuthorizationError):
        await llm.invoke(MODEL, {"endpoint_url": upstream.url + "/v1"}, MESSAGES, stream=False)
    assert "Authorization" not in requests_to(upstream, CHAT)[-1].headers


async def test_usage_and_price_from_credentials(rt: ModelRuntime, llm_creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, llm_creds, MESSAGES, stream=False)
    assert isinstance(result, LLMResult)
    u = result.usage
    # simulator: prompt = words (2 + 3) + 3 per message (2) = 11; completion = 4 pieces
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (11, 4, 15)
    assert u.prompt_unit_price == Decimal("2") and u.prompt_price_unit == Decimal("0.001")
    assert u.prompt_price == Decimal("0.022")
    assert u.completion_unit_price == Decimal("4")
    assert u.completion_price == Decimal("0.016")
    assert u.total_price == Decimal("0.038")
    assert u.currency == "EUR"


async def test_stream_equals_non_stream(rt: ModelRuntime, llm_creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    plain = await llm.invoke(MODEL, llm_creds, MESSAGES, stream=False)
    stream = await llm.invoke(MODEL, llm_creds, MESSAGES, stream=True)
    chunks = [c async for c in stream]
    assert last_body(upstream)["stream_options"] == {"include_usage": True}
    *middle, final = chunks
    assert middle and all(c.delta.message.content and c.delta.finish_reason is None for c in middle)
    assert "".join(c.delta.message.content or "" for c in chunks) == plain.message.content
    assert final.delta.finish_reason == "stop"
    assert final.delta.usage.prompt_tokens == plain.usage.prompt_tokens
    assert final.delta.usage.completion_tokens == plain.usage.completion_tokens
    assert final.delta.usage.total_price == plain.usage.total_price == Decimal("0.038")


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls(rt: ModelRuntime, llm_creds: dict[str, str], upstream: Any, stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    out = await llm.invoke(MODEL, llm_creds, [UserPromptMessage(content="Paris")], tools=[WEATHER_TOOL, TIME_TOOL], stream=stream)
    if stream:
        chunks = [c async for c in out]
        final = chunks[-1]
        calls = final.delta.message.tool_calls
        assert final.delta.finish_reason == "tool_calls"
    else:
        calls = out.message.tool_calls
        assert out.finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert [msgspec.json.decode(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Paris", "offset": 1}]
    assert [t["function"]["name"] for t in last_body(upstream)["tools"]] == ["get_weather", "get_time"]


async def test_no_call_sends_no_tools(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, {**creds, "function_calling_type": "no_call"}, MESSAGES, tools=[WEATHER_TOOL], stream=False)
    assert "tools" not in last_body(upstream)
    assert result.message.content and not result.message.tool_calls


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events)


def _delta(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def test_stream_without_done_but_with_finish_reason_is_complete(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any
) -> None:
    body = _sse(_delta("Hello"), _delta(" world"), _delta(None, "stop"))
    upstream.faults.push(Fault(body=body, status=200), path=CHAT)
    llm = rt.get_model_instance(PROVIDER, "llm")
    chunks = [c async for c in await llm.invoke(MODEL, creds, MESSAGES, stream=True)]
    assert "".join(c.delta.message.content or "" for c in chunks) == "Hello world"
    assert chunks[-1].delta.finish_reason == "stop"
    assert chunks[-1].delta.usage.completion_tokens > 0  # counted locally: no usage in the stream


async def test_stream_cut_before_finish_is_interrupted(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(body=_sse(_delta("Hello"), _delta(" wor")), status=200), path=CHAT)
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds, MESSAGES, stream=True)
    with pytest.raises(InvokeStreamInterruptedError):
        async for _ in stream:
            pass
    upstream.faults.push(Fault(disconnect_after=2), path=CHAT)
    stream = await llm.invoke(MODEL, creds, MESSAGES, stream=True)
    with pytest.raises(InvokeStreamInterruptedError):
        async for _ in stream:
            pass


# ---------------------------------------------------------------------------- error statuses (the Dify bug)

STATUS_CLASSES = [
    (401, InvokeAuthorizationError),
    (403, InvokePermissionDeniedError),
    (429, InvokeRateLimitError),
    (500, InvokeServerUnavailableError),
    (502, InvokeServerUnavailableError),
    (503, InvokeServerUnavailableError),
    (529, InvokeOverloadedError),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
async def test_chat_status_maps_to_invoke_class(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, status: int, cls: type[InvokeError], stream: bool
) -> None:
    upstream.faults.push(Fault(status=status, retry_after=3 if status == 429 else None), path=CHAT)
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(cls) as info:
        await llm.invoke(MODEL, creds, MESSAGES, stream=stream)
    err = info.value
    assert type(err) is cls  # not the base InvokeError Dify raised for every status
    assert err.status == status and err.provider == PROVIDER and err.model == MODEL
    if status == 429:
        assert err.retry_after == 3
    assert err.request_id and err.request_id.startswith("req_")


async def test_bad_request_and_context_length(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    from arun.errors import InvokeContextLengthExceededError

    llm = rt.get_model_instance(PROVIDER, "llm")
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"), path=CHAT)
    with pytest.raises(InvokeContextLengthExceededError):
        await llm.invoke(MODEL, creds, MESSAGES, stream=False)
    upstream.faults.push(Fault(status=422, body=b'{"detail": "bad field"}'), path=CHAT)
    with pytest.raises(InvokeBadRequestError, match="bad field"):
        await llm.invoke(MODEL, creds, MESSAGES, stream=False)


@pytest.mark.parametrize(
    ("model_type", "path"),
    [
        ("text-embedding", "/v1/embeddings"),
        ("rerank", "/v1/rerank"),
        ("speech2text", "/v1/audio/transcriptions"),
        ("tts", "/v1/audio/speech"),
    ],
)
@pytest.mark.parametrize(("status", "cls"), [(401, InvokeAuthorizationError), (429, InvokeRateLimitError), (503, InvokeServerUnavailableError)])
async def test_other_types_status_mapping(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, model_type: str, path: str, status: int, cls: type[InvokeError]
) -> None:
    upstream.faults.push(Fault(status=status), path=path)
    model = rt.get_model_instance(PROVIDER, model_type)
    with pytest.raises(cls):
        if model_type == "text-embedding":
            await model.invoke(MODEL, creds, ["hello"])
        elif model_type == "rerank":
            await model.invoke(MODEL, creds, "q", ["d"])
        elif model_type == "speech2text":
            await model.invoke(MODEL, creds, b"RIFF0000WAVEdata")
        else:
            await model.invoke(MODEL, None, creds, "Hello.", None)


# ---------------------------------------------------------------------------- embeddings


async def test_embeddings_batched_by_max_chunks(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    texts = ["one", "two words", "three little words", "four", "five is last"]
    c = {**creds, "max_chunks": "2", "input_price": "0.5", "unit": "0.001"}
    result = await emb.invoke(MODEL, c, texts)
    sent = [r.json for r in requests_to(upstream, "/v1/embeddings")]
    assert [b["input"] for b in sent] == [texts[0:2], texts[2:4], texts[4:]]
    assert all(b["encoding_format"] == "float" and b["model"] == MODEL for b in sent)
    assert len(result.embeddings) == len(texts)
    for vector, text in zip(result.embeddings, texts):
        assert vector == pytest.approx(embedding_vector(text, 8))
    assert result.usage.tokens == 1 + 2 + 3 + 1 + 3
    assert result.usage.total_price == Decimal("0.005")  # 10 tokens * 0.5 * 0.001


async def test_embeddings_default_one_per_request_and_prefix(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    await emb.invoke(MODEL, creds, ["a", "b", "c"])
    assert [r.json["input"] for r in requests_to(upstream, "/v1/embeddings")] == [["a"], ["b"], ["c"]]
    upstream.reset()
    c = {**creds, "max_chunks": "8", "query_prefix": "query: ", "endpoint_model_name": "bge-m3"}
    result = await emb.invoke(MODEL, c, ["where"], input_type=EmbeddingInputType.QUERY)
    body = last_body(upstream, "/v1/embeddings")
    assert body["input"] == ["query: where"] and body["model"] == "bge-m3"
    assert result.embeddings[0] == pytest.approx(embedding_vector("query: where", 8))


async def test_embeddings_empty_and_truncation(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    assert (await emb.invoke(MODEL, creds, [])).embeddings == []
    assert upstream.stats.total == 0
    long_text = " ".join(["word"] * 50)
    await emb.invoke(MODEL, {**creds, "context_size": "10"}, [long_text])
    sent = last_body(upstream, "/v1/embeddings")["input"][0]
    assert len(sent) < len(long_text)


# ---------------------------------------------------------------------------- rerank

QUERY = "paris france capital city"
DOCS = [
    "paris france capital city",  # 1.0
    "paris france capital",  # 0.75
    "paris",  # 0.25
    "nothing relevant here",  # 0.0
    "the capital city of paris france",  # 1.0
]


async def test_rerank_threshold(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke(MODEL, creds, QUERY, DOCS, score_threshold=0.8)
    assert sorted(d.index for d in result.docs) == [0, 4]
    assert all(d.score >= 0.8 for d in result.docs)
    assert {d.text for d in result.docs} == {DOCS[0], DOCS[4]}
    body = last_body(upstream, "/v1/rerank")
    assert body == {"model": MODEL, "query": QUERY, "documents": DOCS}
    assert requests_to(upstream, "/v1/rerank")[-1].headers["Authorization"] == "Bearer sk-compat-test"


async def test_rerank_top_n_with_negative_threshold(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke(MODEL, creds, QUERY, DOCS, score_threshold=-1.0, top_n=3)
    assert len(result.docs) == 3
    assert [d.score for d in result.docs] == [1.0, 1.0, 0.75]
    assert last_body(upstream, "/v1/rerank")["top_n"] == 3


async def test_rerank_empty_docs_sends_nothing(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke(MODEL, creds, QUERY, [])
    assert result.docs == []
    assert upstream.stats.total == 0


async def test_rerank_custom_url_and_missing_document_text(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    body = b'{"results":[{"index":1,"relevance_score":0.9},{"index":0,"relevance_score":0.1}]}'
    upstream.faults.push(Fault(body=body, status=200), path="/v1/rerank")
    c = {**creds, "endpoint_url": "http://127.0.0.1:9/v1", "rerank_endpoint_url": upstream.url + "/v1/rerank"}
    result = await rr.invoke(MODEL, c, "q", ["first", "second"])
    assert [(d.index, d.text, d.score) for d in result.docs] == [(1, "second", 0.9), (0, "first", 0.1)]


async def test_rerank_malformed_response(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    upstream.faults.push(Fault(body=b'{"results":[{"index":7,"relevance_score":0.9}]}', status=200), path="/v1/rerank")
    with pytest.raises(InvokeServerUnavailableError):
        await rr.invoke(MODEL, creds, "q", ["only"])


# ---------------------------------------------------------------------------- audio


async def test_speech2text(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    audio = b"RIFF\x00\x00\x00\x00WAVE" + bytes(2000)
    text = await s2t.invoke(MODEL, {**creds, "language": "en", "initial_prompt": "names: Arun"}, audio)
    assert text == transcript_text(len(audio))
    form = last_body(upstream, "/v1/audio/transcriptions")
    assert form["model"] == MODEL and form["language"] == "en" and form["prompt"] == "names: Arun"
    assert form["file"]["size"] == len(audio) and form["file"]["filename"].endswith(".wav")
    assert requests_to(upstream, "/v1/audio/transcriptions")[-1].headers["Authorization"] == "Bearer sk-compat-test"


async def test_speech2text_file_object(rt: ModelRuntime, creds: dict[str, str], upstream: Any, tmp_path: Any) -> None:
    path = tmp_path / "clip.mp3"
    path.write_bytes(b"ID3" + bytes(500))
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    with path.open("rb") as fh:
        text = await s2t.invoke(MODEL, creds, fh)
    assert text == transcript_text(503)
    assert last_body(upstream, "/v1/audio/transcriptions")["file"]["filename"] == "clip.mp3"


async def test_tts_stream(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    tts = rt.get_model_instance(PROVIDER, "tts")
    text = "Hello world from arun today."
    stream = await tts.invoke(MODEL, None, {**creds, "voices": "nova,echo"}, text, None)
    pieces = [p async for p in stream]
    assert len(pieces) >= 1
    assert b"".join(pieces) == audio_bytes(text, 256, "mp3")
    body = last_body(upstream, "/v1/audio/speech")
    assert body["voice"] == "nova" and body["model"] == MODEL and body["input"] == text
    await (await tts.invoke(MODEL, None, {**creds, "voices": "nova,echo"}, text, "echo")).__anext__()
    assert last_body(upstream, "/v1/audio/speech")["voice"] == "echo"
    voices = await tts.get_tts_model_voices(MODEL, {**creds, "voices": "nova,echo"})
    assert [v["value"] for v in voices] == ["nova", "echo"]


async def test_tts_interrupted_stream(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    tts = rt.get_model_instance(PROVIDER, "tts")
    upstream.faults.push(Fault(disconnect_after=1), path="/v1/audio/speech")
    stream = await tts.invoke(MODEL, None, creds, " ".join(["word"] * 40), None)
    with pytest.raises(InvokeError):
        async for _ in stream:
            pass


# ---------------------------------------------------------------------------- completion mode (no simulator route)


@pytest_asyncio.fixture
async def completion_server() -> AsyncIterator[tuple[str, list[Any]]]:
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(body)
        if not body.get("stream"):
            return web.json_response(
                {"choices": [{"index": 0, "text": "once upon a time", "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in ("once", " upon", " a time"):
            await resp.write(_sse({"choices": [{"index": 0, "text": piece, "finish_reason": None}]}))
        await resp.write(_sse({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}))
        await resp.write(_sse({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


async def test_completion_mode(rt: ModelRuntime, completion_server: tuple[str, list[Any]]) -> None:
    url, seen = completion_server
    c = {"endpoint_url": url, "mode": "completion", "input_price": "1", "output_price": "1", "unit": "1"}
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, c, [UserPromptMessage(content="Tell a story")], {"max_tokens": 8}, stream=False)
    assert result.message.content == "once upon a time"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_price) == (3, 4, Decimal("7"))
    assert seen[-1]["prompt"] == "Tell a story" and seen[-1]["max_tokens"] == 8 and "messages" not in seen[-1]
    chunks = [ch async for ch in await llm.invoke(MODEL, c, [UserPromptMessage(content="Tell a story")], stream=True)]
    assert "".join(ch.delta.message.content or "" for ch in chunks) == "once upon a time"
    assert chunks[-1].delta.finish_reason == "length"
    assert chunks[-1].delta.usage.completion_tokens == 4
    await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {"endpoint_url": url, "mode": "completion"})
