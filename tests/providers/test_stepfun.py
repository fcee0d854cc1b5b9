"""StepFun (YAML only, openai_chat family) against its simulator profile over real sockets.

What is StepFun's own: the region radio choosing the mainland or the international host, error
bodies without ``param``/``code`` and a 402 for an empty balance (``arun.testing.profiles.stepfun``,
from platform.stepfun.com api-reference/error-codes), user-added models from its model form.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.model import FetchFrom
from arun.errors import InvokeError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "stepfun"
PROFILE = "stepfun"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}


async def test_predefined_models(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["step-5-preview", "step-3.7-flash", "step-3.5-flash"]
    flash = models["step-3.7-flash"]
    assert flash.property("context_size") == 256000 and "vision" in [f.value for f in flash.features or []]
    assert flash.pricing is not None and (flash.pricing.input, flash.pricing.output, flash.pricing.currency) == (
        Decimal("1.35"), Decimal("8.1"), "RMB",
    )  # fmt: skip
    assert next(r for r in flash.parameter_rules if r.name == "reasoning_effort").options == ["low", "medium", "high"]


async def test_the_region_radio_picks_the_host() -> None:
    async with ModelRuntime() as runtime:
        llm = runtime.get_model_instance(PROVIDER, "llm")
        assert llm.endpoint.url({}) == "https://api.stepfun.com/v1/chat/completions"
        assert llm.endpoint.url({"use_international_endpoint": "false"}) == "https://api.stepfun.com/v1/chat/completions"
        assert llm.endpoint.url({"use_international_endpoint": "true"}) == "https://api.stepfun.ai/v1/chat/completions"


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("step-3.7-flash", CREDS, MESSAGES, {"reasoning_effort": "high", "max_tokens": 99}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile, req.headers["Authorization"]) == ("/v1/chat/completions", "stepfun", f"Bearer {VALID_KEY}")
    assert (req.json["model"], req.json["reasoning_effort"], req.json["max_tokens"]) == ("step-3.7-flash", "high", 99)


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
@pytest.mark.parametrize(
    ("status", "expected"), [(402, InvokeQuotaExhaustedError), (401, InvokeAuthorizationError), (429, InvokeRateLimitError)]
)
async def test_error_statuses(rt: ModelRuntime, upstream: Any, stream: bool, status: int, expected: type[InvokeError]) -> None:
    upstream.faults.push(Fault(status=status))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeError) as info:
        await llm.invoke("step-3.5-flash", CREDS, MESSAGES, {}, stream=stream)
    assert type(info.value) is expected and info.value.status == status
    assert info.value.body is not None and '"param"' not in info.value.body  # StepFun's envelope


async def test_user_added_model(rt: ModelRuntime, upstream: Any) -> None:
    creds = {**CREDS, "context_size": "65536", "max_tokens": "4096", "function_calling_type": "tool_call"}
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = await llm.get_model_schema("step-2-mini", creds)
    assert schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL and schema.property("context_size") == 65536
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 4096
    await llm.invoke("step-2-mini", creds, MESSAGES, {}, stream=False)
    assert upstream.last_request.json["model"] == "step-2-mini"


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "step-3.5-flash"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
