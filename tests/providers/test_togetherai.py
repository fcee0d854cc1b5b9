"""together.ai (customizable only, YAML only) against its simulator profile.

Like Dify, every model is user-added: the schema comes from the model form, the base URL is fixed
(``https://api.together.xyz/v1``, moved here with ``endpoint_overrides``, origin replaced and path kept).
The quirks ``arun.testing.profiles.togetherai`` sends: the finish reason ``eos``, and a stream's usage
on its finish chunk (``null`` before it, no separate usage chunk).
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
from arun.entities.model import FetchFrom, ModelFeature
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "togetherai"
PROFILE = "togetherai"
MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
MESSAGES = [UserPromptMessage(content="What is the weather in Paris?")]
TOOL = PromptMessageTool(
    name="get_weather", description="Weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)
CREDS = {"api_key": VALID_KEY, "mode": "chat", "context_size": "131072", "max_tokens_to_sample": "8192"}


async def test_schema_from_the_model_form(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    assert await llm.predefined_models() == []
    schema = await llm.get_model_schema(MODEL, {**CREDS, "input_price": "0.88", "output_price": "0.88", "unit": "0.000001"})
    assert schema is not None and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert schema.property("context_size") == 131072 and schema.property("mode") == "chat"
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 8192
    assert {r.name for r in schema.parameter_rules} >= {"temperature", "top_p", "top_k", "max_tokens"}
    assert schema.pricing is not None and schema.pricing.input == Decimal("0.88") and schema.pricing.currency == "USD"
    assert not schema.features  # no function calling unless the form says so
    with_tools = await llm.get_model_schema(MODEL, {**CREDS, "function_calling_type": "tool_call", "vision_support": "support"})
    assert with_tools is not None and {ModelFeature.MULTI_TOOL_CALL, ModelFeature.VISION} <= set(with_tools.features or [])


async def test_chat_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke(MODEL, CREDS, MESSAGES, {"top_k": 40, "max_tokens": 100}, [TOOL], stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "togetherai")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["top_k"], req.json["max_tokens"]) == (MODEL, 40, 100)
    assert "tools" not in req.json  # function_calling_type unset: Dify sends a model configured without it no tools


async def test_tool_calls_when_enabled(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    creds = {**CREDS, "function_calling_type": "tool_call"}
    result = await llm.invoke(MODEL, creds, MESSAGES, {}, [TOOL], stream=False)
    assert upstream.last_request.json["tools"][0]["function"]["name"] == "get_weather"
    assert [c.function.name for c in result.message.tool_calls] == ["get_weather"]


async def test_completion_mode_speaks_completions(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke("mistralai/Mixtral-8x7B-v0.1", {**CREDS, "mode": "completion"}, MESSAGES, {}, stream=False)
    req = upstream.last_request
    assert req.path == "/v1/completions" and isinstance(req.json["prompt"], str) and "messages" not in req.json
    assert result.message.content


async def test_eos_is_a_stop_and_the_usage_rides_on_the_finish_chunk(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=False)
    assert whole.finish_reason == "stop" and whole.message.content  # the upstream said "eos"
    chunks = [c async for c in await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True)]
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content
    final = chunks[-1].delta
    assert final.finish_reason == "stop" and final.usage is not None
    assert all(c.delta.usage is None for c in chunks[:-1])
    # the upstream's own numbers, from the finish chunk (no separate usage chunk was sent)
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)


@pytest.mark.parametrize(("status", "cls"), [(401, InvokeAuthorizationError), (429, InvokeRateLimitError)])
async def test_error_statuses(rt: ModelRuntime, upstream: Any, status: int, cls: type[Exception]) -> None:
    upstream.faults.push(Fault(status=status))
    with pytest.raises(cls):
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {}, stream=False)


async def test_validate_model_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.model_credentials_validate(PROVIDER, "llm", MODEL, CREDS)
    assert upstream.last_request.json["model"] == MODEL
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {**CREDS, "api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
