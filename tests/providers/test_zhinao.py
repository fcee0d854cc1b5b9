"""360 Zhinao (YAML only, openai_chat, no documented quirk: the plain simulator profile) over real sockets."""

from __future__ import annotations

from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeRateLimitError,
    ModelRuntime,
    ParameterValidationError,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "zhinao"
PROFILE = "plain"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}


async def test_predefined_models() -> None:
    async with ModelRuntime() as rt:
        llm = rt.get_model_instance(PROVIDER, "llm")
        models = {m.model: m for m in await llm.predefined_models()}
        assert list(models) == ["360gpt2-pro", "360gpt-turbo", "360gpt-turbo-responsibility-8k"]
        eight_k = models["360gpt-turbo-responsibility-8k"]
        assert eight_k.property("context_size") == 8192
        assert next(r for r in eight_k.parameter_rules if r.name == "max_tokens").max == 8192
        assert all(m.pricing is None for m in models.values())  # 360 publishes no price we could cite
        assert llm.endpoint.url(CREDS, "360gpt2-pro") == "https://api.360.cn/v1/chat/completions"


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke("360gpt2-pro", CREDS, MESSAGES, {"temperature": 0.9, "max_tokens": 100}, stream=False)
    assert result.message.content
    req = upstream.last_request
    assert (req.profile, req.path) == ("plain", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["temperature"], req.json["max_tokens"]) == ("360gpt2-pro", 0.9, 100)
    with pytest.raises(ParameterValidationError):  # the documented temperature range ends at 1
        await llm.invoke("360gpt2-pro", CREDS, MESSAGES, {"temperature": 1.5}, stream=False)


async def test_errors(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError):
        await llm.invoke("360gpt-turbo", {"api_key": "invalid-key"}, MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=429, retry_after=2))
    with pytest.raises(InvokeRateLimitError) as info:
        await llm.invoke("360gpt-turbo", CREDS, MESSAGES, {}, stream=True)
    assert info.value.retry_after == 2


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "360gpt-turbo"
    with pytest.raises(CredentialsValidateFailedError):
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
