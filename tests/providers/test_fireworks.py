"""Fireworks AI (YAML only: openai_chat + openai_embedding) against the plain simulator profile.

Fireworks speaks the OpenAI format under ``/inference/v1`` with path-like model ids; what is
particular is tested here: the wire (path, ``fireworks_api_key``, model paths, Fireworks' own
parameters), its documented statuses (docs.fireworks.ai/guides/inference-error-codes: 402 payment
required, 412 account suspended, 429), Dify's form for user-added models and the model facts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.entities.embedding import EmbeddingInputType
from arun.entities.model import FetchFrom, ModelFeature
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "fireworks"
PROFILE = "plain"
MODEL = "accounts/fireworks/models/gpt-oss-20b"
MESSAGES = [UserPromptMessage(content="What is the weather in Paris?")]
TOOL = PromptMessageTool(
    name="get_weather", description="Weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)
CREDS = {"fireworks_api_key": VALID_KEY}


async def test_predefined_models_carry_the_documented_facts(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == [
        "accounts/fireworks/models/gpt-oss-120b", "accounts/fireworks/models/gpt-oss-20b", "accounts/fireworks/models/kimi-k2p6",
    ]  # fmt: skip
    big = models["accounts/fireworks/models/gpt-oss-120b"]
    assert big.property("context_size") == 131072
    assert big.pricing is not None and (big.pricing.input, big.pricing.output) == (Decimal("0.15"), Decimal("0.60"))
    kimi = models["accounts/fireworks/models/kimi-k2p6"]
    assert kimi.pricing is not None and (kimi.pricing.input, kimi.pricing.output) == (Decimal("0.95"), Decimal("4.00"))
    emb = {m.model: m for m in await rt.get_model_instance(PROVIDER, "text-embedding").predefined_models()}
    nomic = emb["nomic-ai/nomic-embed-text-v1.5"]
    assert nomic.property("context_size") == 8192 and nomic.pricing is not None and nomic.pricing.input == Decimal("0.008")
    assert emb["fireworks/qwen3-embedding-8b"].pricing is None


async def test_chat_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    params = {"max_tokens": 50, "top_k": 40, "context_length_exceeded_behavior": "truncate", "reasoning_effort": "low"}
    result = await llm.invoke(MODEL, CREDS, MESSAGES, params, [TOOL], stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "plain")  # under the base's /inference/v1
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    sent = req.json
    assert sent["model"] == MODEL and sent["top_k"] == 40 and sent["reasoning_effort"] == "low"
    assert sent["context_length_exceeded_behavior"] == "truncate"
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert [c.function.name for c in result.message.tool_calls] == ["get_weather"]


async def test_the_default_endpoint() -> None:
    async with ModelRuntime() as runtime:
        llm = runtime.get_model_instance(PROVIDER, "llm")
        assert llm.endpoint.url(CREDS, MODEL) == "https://api.fireworks.ai/inference/v1/chat/completions"
        emb = runtime.get_model_instance(PROVIDER, "text-embedding")
        assert emb.endpoint.url(CREDS, "x") == "https://api.fireworks.ai/inference/v1/embeddings"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (402, InvokeQuotaExhaustedError),  # payment required: no paid plan or usage limit reached
        (412, InvokeBadRequestError),  # account suspended / LoRA failed to load: not retryable (Dify maps it so too)
        (429, InvokeRateLimitError),
        (401, InvokeAuthorizationError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_documented_statuses(rt: ModelRuntime, upstream: Any, status: int, cls: type[Exception], stream: bool) -> None:
    upstream.faults.push(Fault(status=status))
    with pytest.raises(cls) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {}, stream=stream)
    assert getattr(info.value, "status", None) == status


async def test_embeddings_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("nomic-ai/nomic-embed-text-v1.5", CREDS, ["one two", "three"], None, EmbeddingInputType.DOCUMENT)
    req = upstream.last_request
    assert req.path == "/v1/embeddings" and req.json["model"] == "nomic-ai/nomic-embed-text-v1.5"
    assert req.json["encoding_format"] == "float"
    assert len(result.embeddings) == 2 and result.usage.tokens == 3
    assert (result.usage.unit_price, result.usage.price_unit) == (Decimal("0.008"), Decimal("0.000001"))


async def test_user_added_model_from_difys_form(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    model = "accounts/acme/deployedModels/my-llama"
    form = {
        **CREDS,
        "model_label_en_US": "My Llama",
        "model_label_zh_Hans": "我的 Llama",
        "context_size": "32768",
        "max_tokens": "2048",
        "function_calling_type": "function_call",
    }
    schema = await llm.get_model_schema(model, form)
    assert schema is not None and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert (schema.label.en_US, schema.label.zh_Hans) == ("My Llama", "我的 Llama")
    assert schema.property("context_size") == 32768
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 2048  # Fireworks' max_tokens field
    assert ModelFeature.TOOL_CALL in (schema.features or [])
    await rt.model_credentials_validate(PROVIDER, "llm", model, form)
    assert upstream.last_request.json["model"] == model


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == MODEL  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"fireworks_api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
