"""Upstage (YAML only, openai_chat + openai_embedding) against the plain simulator profile.

Upstage documents no wire quirks beyond the OpenAI format, so it runs under ``plain``: what is
particular is its credential name (``upstage_api_key``), the base URL (``https://api.upstage.ai/v1``,
moved with ``endpoint_overrides``), the model facts and the structured-output rule.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.embedding import EmbeddingInputType
from arun.entities.model import ModelFeature
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "upstage"
PROFILE = "plain"
MODEL = "solar-mini4"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"upstage_api_key": VALID_KEY}


async def test_predefined_models_carry_the_documented_facts(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["solar-pro4", "solar-mini4", "solar-pro2"]
    mini = models["solar-mini4"]
    assert mini.property("context_size") == 524288
    assert next(r for r in mini.parameter_rules if r.name == "max_tokens").max == 131072
    assert mini.pricing is not None
    assert (mini.pricing.input, mini.pricing.output, mini.pricing.unit, mini.pricing.currency) == (
        Decimal("0.10"), Decimal("0.40"), Decimal("0.000001"), "USD",
    )  # fmt: skip
    pro2 = models["solar-pro2"]
    assert pro2.property("context_size") == 65536 and pro2.pricing is not None and pro2.pricing.output == Decimal("0.6")
    assert models["solar-pro4"].pricing is None  # no price found in Upstage's docs
    assert ModelFeature.STRUCTURED_OUTPUT in (mini.features or [])
    emb = {m.model: m for m in await rt.get_model_instance(PROVIDER, "text-embedding").predefined_models()}
    assert list(emb) == ["solar-embedding-2-query", "solar-embedding-2-passage", "embedding-query", "embedding-passage"]
    assert emb["solar-embedding-2-query"].property("context_size") == 8000
    assert emb["embedding-passage"].property("context_size") == 4000


async def test_chat_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, CREDS, MESSAGES, {"max_tokens": 32}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "plain")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["max_tokens"]) == (MODEL, 32)
    assert result.message.content


async def test_structured_output_is_sent_as_a_json_schema_object(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
    params = {"response_format": "json_schema", "json_schema": msgspec.json.encode(schema).decode()}
    await llm.invoke(MODEL, CREDS, MESSAGES, params, stream=False)
    sent = upstream.last_request.json
    assert sent["response_format"] == {"type": "json_schema", "json_schema": schema} and "json_schema" not in sent


async def test_reasoning_effort_passes_through_on_solar_pro2(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("solar-pro2", CREDS, MESSAGES, {"reasoning_effort": "high"}, stream=False)
    assert upstream.last_request.json["reasoning_effort"] == "high"


async def test_embeddings_use_the_role_model_named(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("solar-embedding-2-query", CREDS, ["what is solar"], None, EmbeddingInputType.QUERY)
    req = upstream.last_request
    assert req.path == "/v1/embeddings" and req.json["model"] == "solar-embedding-2-query"
    assert req.json["encoding_format"] == "float" and "task" not in req.json and "input_type" not in req.json
    assert len(result.embeddings) == 1 and result.usage.tokens == 3


@pytest.mark.parametrize(("status", "cls"), [(401, InvokeAuthorizationError), (429, InvokeRateLimitError)])
async def test_error_statuses(rt: ModelRuntime, upstream: Any, status: int, cls: type[Exception]) -> None:
    upstream.faults.push(Fault(status=status))
    with pytest.raises(cls):
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {}, stream=True)


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "solar-mini4"  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"upstage_api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
