"""Moonshot / Kimi (YAML only, openai_chat family) against its simulator profile over real sockets.

The quirks come from platform.kimi.ai / platform.moonshot.cn and are sent by
``arun.testing.profiles.moonshot``: usage inside ``choices[0]`` of the last streamed chunk,
``temperature`` other than 1 refused by K2.5-and-later models, ``reasoning_content`` from the
thinking models, Kimi's error types (three different 429s, a context overflow as a 400).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.model import FetchFrom
from arun.errors import InvokeError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "moonshot"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"api_key": VALID_KEY, "endpoint_url": f"{upstream.url}/p/moonshot/v1"}


async def drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_predefined_models(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["kimi-k3", "kimi-k2.6", "kimi-k2.7-code"]
    k3 = models["kimi-k3"]
    assert k3.property("context_size") == 1048576
    assert k3.pricing is not None and (k3.pricing.input, k3.pricing.output, k3.pricing.currency) == (Decimal("20"), Decimal("100"), "RMB")
    assert models["kimi-k2.6"].property("context_size") == 262144 and models["kimi-k2.6"].pricing is None
    for model in models.values():  # only temperature 1 is accepted: no model offers one
        assert not {"temperature", "top_p"} & {r.name for r in model.parameter_rules}


async def test_request_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    assert llm.endpoint.url({}) == "https://api.moonshot.cn/v1/chat/completions"
    await llm.invoke("kimi-k2.6", creds, MESSAGES, {"thinking": False, "max_tokens": 64, "temperature": 0.3}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile, req.headers["Authorization"]) == ("/v1/chat/completions", "moonshot", f"Bearer {VALID_KEY}")
    assert req.json["thinking"] == {"type": "disabled"} and req.json["max_tokens"] == 64
    assert "temperature" not in req.json  # not a rule of the model: never sent, so never refused
    await llm.invoke("kimi-k3", creds, MESSAGES, {"max_tokens": 64}, stream=False)
    assert upstream.last_request.json["max_completion_tokens"] == 64 and "max_tokens" not in upstream.last_request.json


async def test_stream_usage_comes_from_inside_the_choice(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke("kimi-k2.6", creds, MESSAGES, {}, stream=False)
    chunks = await drain(await llm.invoke("kimi-k2.6", creds, MESSAGES, {}, stream=True))
    final = chunks[-1].delta
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content


async def test_thinking_models_answer_with_reasoning_content(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    thinking = await llm.invoke("kimi-k3", creds, MESSAGES, {}, stream=False)
    assert thinking.reasoning_content == "Let me think this through."
    assert thinking.message.content and "Let me" not in thinking.message.content
    plain = await llm.invoke("kimi-k2.6", creds, MESSAGES, {"thinking": False}, stream=False)
    assert plain.reasoning_content is None


async def test_a_temperature_other_than_1_is_refused_by_the_upstream(rt: ModelRuntime, upstream: Any) -> None:
    """A user-added model (customizable, built from the credential form) does send temperature."""
    creds = {"api_key": VALID_KEY, "context_size": "262144", "max_tokens": "8192", "function_calling_type": "tool_call"}
    runtime = ModelRuntime(endpoint_overrides={PROVIDER: f"{upstream.url}/p/moonshot"})
    async with runtime:
        llm = runtime.get_model_instance(PROVIDER, "llm")
        schema = await llm.get_model_schema("kimi-k2.5", creds)
        assert schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
        assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 8192  # Moonshot's form says max_tokens
        with pytest.raises(InvokeBadRequestError) as info:
            await llm.invoke("kimi-k2.5", creds, MESSAGES, {"temperature": 0.6}, stream=False)
        assert info.value.status == 400 and "only 1 is allowed" in str(info.value)
        result = await llm.invoke("kimi-k2.5", creds, MESSAGES, {"temperature": 1}, stream=False)
        assert result.message.content
        assert upstream.last_request.json["temperature"] == 1


ERRORS = [
    (429, None, InvokeRateLimitError),
    (429, "insufficient_quota", InvokeQuotaExhaustedError),  # exceeded_current_quota_error
    (429, "overloaded", InvokeServerUnavailableError),  # engine_overloaded_error: the engine, not the key
    (400, "context_length_exceeded", InvokeContextLengthExceededError),  # "exceeded model token limit"
    (400, "content_filter", InvokeContentFilteredError),
    (401, None, InvokeAuthorizationError),
]


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
@pytest.mark.parametrize(("status", "kind", "expected"), ERRORS)
async def test_kimi_error_types(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, stream: bool, status: int, kind: str | None, expected: type[InvokeError]
) -> None:
    upstream.faults.push(Fault(status=status, error_type=kind))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeError) as info:
        await llm.invoke("kimi-k2.6", creds, MESSAGES, {}, stream=stream)
    assert type(info.value) is expected and info.value.status == status


async def test_validate_credentials(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds)
    assert upstream.last_request.json["model"] == "kimi-k2.6"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {**creds, "api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
