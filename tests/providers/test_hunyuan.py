"""Tencent Hunyuan (YAML only: openai_chat + openai_embedding) over real sockets.

Hunyuan's OpenAI-compatible API (cloud.tencent.com/document/product/1729/111007) is tested under
``arun.testing.profiles.hunyuan``: a ``note`` on every answer, ``role`` and an empty
``reasoning_content`` on every streamed delta, streamed tool calls whose argument chunks repeat the id
with an empty name.  What is its own on the request side: Dify's ``enable_enhance`` rule sent as
``enable_enhancement``, the model ids, the embeddings endpoint.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeRateLimitError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_vector

PROVIDER = "hunyuan"
PROFILE = "hunyuan"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}


async def test_predefined_models(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["hunyuan-turbos-latest", "hunyuan-t1-latest", "hunyuan-lite"]
    turbos = models["hunyuan-turbos-latest"]
    assert turbos.property("context_size") == 32000
    assert turbos.pricing is not None and (turbos.pricing.input, turbos.pricing.output, turbos.pricing.currency) == (
        Decimal("0.8"), Decimal("2"), "RMB",
    )  # fmt: skip
    assert "enable_enhance" not in {r.name for r in models["hunyuan-lite"].parameter_rules}
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    (embedding,) = await emb.predefined_models()
    assert (embedding.model, embedding.property("context_size")) == ("hunyuan-embedding", 1024)


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("hunyuan-turbos-latest", CREDS, MESSAGES, {"enable_enhance": False, "temperature": 1.5}, stream=False)
    req = upstream.last_request
    assert (req.path, req.headers["Authorization"]) == ("/v1/chat/completions", f"Bearer {VALID_KEY}")
    assert req.json["enable_enhancement"] is False and "enable_enhance" not in req.json
    assert (req.json["model"], req.json["temperature"]) == ("hunyuan-turbos-latest", 1.5)


async def test_hunyuans_stream_reads_like_its_answer(rt: ModelRuntime) -> None:
    """Role and empty reasoning on every delta add nothing; the repeated tool-call id does not split the call."""
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke("hunyuan-turbos-latest", CREDS, MESSAGES, {}, stream=False)
    chunks = [c async for c in await llm.invoke("hunyuan-turbos-latest", CREDS, MESSAGES, {}, stream=True)]
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content
    tools = [PromptMessageTool(name="get_weather", description="Weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})]
    ask = [UserPromptMessage(content="What is the weather in Paris?")]
    blocking = await llm.invoke("hunyuan-turbos-latest", CREDS, ask, {}, tools, stream=False)
    streamed = [c async for c in await llm.invoke("hunyuan-turbos-latest", CREDS, ask, {}, tools, stream=True)]
    calls = [call for c in streamed for call in c.delta.message.tool_calls]
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        (c.id, c.function.name, c.function.arguments) for c in blocking.message.tool_calls
    ]
    assert len(calls) == 1 and calls[0].function.name == "get_weather"


async def test_the_default_endpoint() -> None:
    async with ModelRuntime() as runtime:
        llm = runtime.get_model_instance(PROVIDER, "llm")
        assert llm.endpoint.url({}) == "https://api.hunyuan.cloud.tencent.com/v1/chat/completions"
        emb = runtime.get_model_instance(PROVIDER, "text-embedding")
        assert emb.endpoint.url({}) == "https://api.hunyuan.cloud.tencent.com/v1/embeddings"


async def test_embeddings(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("hunyuan-embedding", CREDS, ["one text", "two"])
    assert result.embeddings == [embedding_vector("one text", 8), embedding_vector("two", 8)]
    bodies = [r.json for r in upstream.requests if r.path == "/v1/embeddings"]
    assert bodies == [{"model": "hunyuan-embedding", "input": ["one text"]}, {"model": "hunyuan-embedding", "input": ["two"]}]


async def test_errors_and_credentials(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(status=429, retry_after=1))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeRateLimitError):  # 5 concurrent requests by default: a 429 is a rate limit
        await llm.invoke("hunyuan-turbos-latest", CREDS, MESSAGES, {}, stream=True)
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "hunyuan-lite"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
