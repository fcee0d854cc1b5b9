"""01.AI Yi (YAML only, openai_chat, no documented quirk: the plain simulator profile) over real sockets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import CredentialsValidateFailedError, InvokeAuthorizationError, InvokeServerUnavailableError, ModelRuntime, UserPromptMessage
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "yi"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


def creds(upstream: Any, base: str = "/v1") -> dict[str, str]:
    return {"api_key": VALID_KEY, "endpoint_url": f"{upstream.url}/p/plain{base}"}


async def test_predefined_model(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    (lightning,) = await llm.predefined_models()
    assert lightning.model == "yi-lightning" and lightning.property("context_size") == 16384
    assert next(r for r in lightning.parameter_rules if r.name == "max_tokens").max == 4000
    assert lightning.pricing is not None and (lightning.pricing.input, lightning.pricing.currency) == (Decimal("0.99"), "RMB")
    assert llm.endpoint.url({"api_key": "k"}, "yi-lightning") == "https://api.lingyiwanwu.com/v1/chat/completions"


@pytest.mark.parametrize("base", ["/v1", ""])
async def test_request_on_the_wire_with_or_without_v1(rt: ModelRuntime, upstream: Any, base: str) -> None:
    """Dify's plugin rebuilt the URL from the host, so a pasted host without /v1 works too."""
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke("yi-lightning", creds(upstream, base), MESSAGES, {"max_tokens": 64}, stream=True)
    chunks = [c async for c in result]
    assert chunks[-1].delta.usage is not None
    req = upstream.last_request
    assert (req.profile, req.path) == ("plain", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["max_tokens"]) == ("yi-lightning", 64)


async def test_errors(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError):
        await llm.invoke("yi-lightning", {**creds(upstream), "api_key": "invalid-key"}, MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=503))
    with pytest.raises(InvokeServerUnavailableError):
        await llm.invoke("yi-lightning", creds(upstream), MESSAGES, {}, stream=True)


async def test_customizable_model_reads_dify_form(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    form = {"api_key": VALID_KEY, "context_size": "16384", "max_tokens": "2048"}
    schema = await llm.get_model_schema("yi-vision-v2", form)
    assert schema is not None and schema.property("context_size") == 16384
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 2048


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds(upstream))
    assert upstream.last_request.json["model"] == "yi-lightning"
    with pytest.raises(CredentialsValidateFailedError):
        await rt.provider_credentials_validate(PROVIDER, {**creds(upstream), "api_key": "invalid-key"})
