"""Zhipu BigModel (openai_chat + openai_embedding families) against its simulator profile over real sockets.

The quirks come from docs.bigmodel.cn and are sent by ``arun.testing.profiles.zhipuai``: business
error codes that decide the error class whatever the HTTP status, usage on the finish chunk of a
stream (no separate usage chunk), ``reasoning_content`` in thinking mode, and the finish reasons
``sensitive`` (content filter) and ``network_error`` (inference failed).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokeModelNotFoundError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.errors import InvokeError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_tokens, embedding_vector

PROVIDER = "zhipuai"
MODEL = "glm-5"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"api_key": VALID_KEY, "base_url": f"{upstream.url}/p/zhipuai/api/paas/v4/"}


async def drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_predefined_models_carry_the_documented_limits_and_prices(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["glm-5.2", "glm-5.1", "glm-5", "glm-4.7", "glm-4.7-flash"]
    glm5 = models["glm-5"]
    assert glm5.property("context_size") == 204800
    assert next(r for r in glm5.parameter_rules if r.name == "max_tokens").max == 131072
    assert glm5.pricing is not None
    assert (glm5.pricing.input, glm5.pricing.output, glm5.pricing.unit, glm5.pricing.currency) == (
        Decimal("4"), Decimal("18"), Decimal("0.000001"), "RMB",
    )  # fmt: skip
    assert models["glm-5.2"].property("context_size") == 1000000
    flash = models["glm-4.7-flash"].pricing
    assert flash is not None and (flash.input, flash.output) == (Decimal("0"), Decimal("0"))
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    (embedding,) = await emb.predefined_models()
    assert embedding.model == "embedding-3" and embedding.property("context_size") == 3072
    assert embedding.property("max_chunks") == 64
    assert embedding.pricing is not None and embedding.pricing.input == Decimal("0.5")


async def test_request_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    assert llm.endpoint.url({}) == "https://open.bigmodel.cn/api/paas/v4/chat/completions"
    await llm.invoke(MODEL, creds, MESSAGES, {"thinking": False, "max_tokens": 64, "temperature": 0.5}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "zhipuai")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["thinking"] == {"type": "disabled"}
    assert (req.json["model"], req.json["max_tokens"], req.json["temperature"]) == (MODEL, 64, 0.5)


async def test_thinking_reasoning_and_usage_on_the_finish_chunk(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, creds, MESSAGES, {"thinking": True}, stream=False)
    assert whole.reasoning_content == "Think about the question first."
    assert whole.message.content and "Think about" not in whole.message.content
    chunks = await drain(await llm.invoke(MODEL, creds, MESSAGES, {"thinking": True}, stream=True))
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content
    final = chunks[-1].delta
    assert final.finish_reason == "stop" and final.usage is not None
    # the profile sends no separate usage chunk: these are the upstream's numbers from the finish chunk
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_sensitive_finish_reason_is_content_filter(rt: ModelRuntime, creds: dict[str, str], stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    messages = [UserPromptMessage(content="tell me about [sim:sensitive] things")]
    result = await llm.invoke(MODEL, creds, messages, {"thinking": False}, stream=stream)
    if stream:
        finish = (await drain(result))[-1].delta.finish_reason
    else:
        finish = result.finish_reason
    assert finish == "content_filter"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_network_error_finish_reason_is_an_error_not_a_short_answer(
    rt: ModelRuntime, creds: dict[str, str], stream: bool
) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    messages = [UserPromptMessage(content="please [sim:network_error] now")]
    with pytest.raises(InvokeServerUnavailableError) as info:
        result = await llm.invoke(MODEL, creds, messages, {"thinking": False}, stream=stream)
        if stream:
            await drain(result)
    assert "network_error" in str(info.value)


ERRORS = [
    (429, None, InvokeRateLimitError, "1302"),
    (429, "frequency", InvokeRateLimitError, "1303"),
    (429, "insufficient_quota", InvokeQuotaExhaustedError, "1113"),  # an unpaid balance, though a 429
    (429, "overloaded", InvokeServerUnavailableError, "1305"),
    (400, "context_length_exceeded", InvokeContextLengthExceededError, "1261"),
    (400, "content_filter", InvokeContentFilteredError, "1301"),
    (404, None, InvokeModelNotFoundError, "1211"),
    (401, None, InvokeAuthorizationError, "1000"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
@pytest.mark.parametrize(("status", "kind", "expected", "code"), ERRORS)
async def test_business_codes_decide_the_error_class(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, stream: bool, status: int, kind: str | None, expected: type[InvokeError], code: str
) -> None:
    upstream.faults.push(Fault(status=status, error_type=kind))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, stream=stream)
    assert type(info.value) is expected
    assert info.value.status == status and f'"code":"{code}"' in (info.value.body or "")
    assert VALID_KEY not in str(info.value)


async def test_a_business_code_inside_a_stream_is_typed(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    body = (
        b'data: {"id":"1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n'
        b'data: {"error":{"code":"1301","message":"unsafe content"}}\n\n'
    )
    upstream.faults.push(Fault(body=body, headers={"Content-Type": "text/event-stream"}))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, stream=True)
    with pytest.raises(InvokeContentFilteredError):
        await drain(stream)


async def test_validate_credentials_uses_the_validate_model_credential(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any
) -> None:
    await rt.provider_credentials_validate(PROVIDER, {**creds, "validate_model": "glm-5.1"})
    assert upstream.last_request.json["model"] == "glm-5.1"
    await rt.provider_credentials_validate(PROVIDER, creds)
    assert upstream.last_request.json["model"] == "glm-4.7-flash"  # the form's default
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {**creds, "api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)


async def test_embeddings(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    texts = ["first text here", "second"]
    result = await emb.invoke("embedding-3", creds, texts)
    assert result.embeddings == [embedding_vector(t, 8) for t in texts]
    assert result.usage.tokens == embedding_tokens(texts)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/embeddings", "zhipuai")
    assert req.json == {"model": "embedding-3", "input": texts}  # no encoding_format: BigModel has none
    upstream.faults.push(Fault(status=429, error_type="insufficient_quota"))
    with pytest.raises(InvokeQuotaExhaustedError):
        await emb.invoke("embedding-3", creds, texts)
