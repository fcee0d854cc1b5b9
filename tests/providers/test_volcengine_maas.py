"""Volcengine Ark (YAML only, customizable: an endpoint id or model id per user-added model, a base model
choosing its schema) against ``arun.testing.profiles.volcengine_maas`` over real sockets.

The quirks come from volcengine.com/docs/82379/1299023, the ModelArk chat API and Roo-Code#11395 (see
the profile): Ark's error codes in OpenAI-shaped bodies (``AccountOverdueError`` at 403,
``InvalidEndpointOrModel.NotFound``, ``RateLimitExceeded.*``, ``SensitiveContentDetected``), thinking on
by default with ``reasoning_content``, ``thinking: {type}`` on the wire, the refused combination of
disabled thinking and a reasoning effort.
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
    InvokeModelNotFoundError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.model import FetchFrom
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_vector
from arun.testing.profiles.volcengine_maas import REASONING

PROVIDER = "volcengine_maas"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
ENDPOINT = "ep-20250101000000-abcde"


def creds(upstream: Any, **extra: str) -> dict[str, str]:
    return {
        "auth_method": "api_key",
        "volc_api_key": VALID_KEY,
        "api_endpoint_host": f"{upstream.url}/p/volcengine_maas/api/v3",
        "endpoint_id": ENDPOINT,
        "base_model_name": "Doubao-Seed-2.0-lite",
        **extra,
    }


async def test_the_base_model_gives_the_schema(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = await llm.get_model_schema("my-doubao", creds(upstream))
    assert schema is not None and schema.model == "my-doubao" and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert schema.property("context_size") == 262144
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 131072
    assert schema.pricing is not None and (schema.pricing.input, schema.pricing.output, schema.pricing.currency) == (
        Decimal("0.6"), Decimal("3.6"), "RMB"
    )
    pro = await llm.get_model_schema("my-pro", creds(upstream, base_model_name="Doubao-Seed-2.0-pro"))
    assert pro is not None and pro.pricing is not None and pro.pricing.input == Decimal("3.2")
    # nothing is offered as predefined: Ark is reached through the user's own endpoints
    assert [p.models for p in await rt.get_models(PROVIDER)] == [[]]


async def test_custom_base_model_reads_the_form(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    form = creds(upstream, base_model_name="Custom", mode="chat", context_size="32768", max_tokens="2048")
    schema = await llm.get_model_schema("my-custom", form)
    assert schema is not None and schema.property("context_size") == 32768
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 2048
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate(PROVIDER, "llm", "x", creds(upstream, base_model_name="Doubao-pro-unknown"))


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("my-doubao", creds(upstream), MESSAGES, {"thinking": "disabled", "max_tokens": 50}, stream=False)
    req = upstream.last_request
    assert (req.profile, req.path) == ("volcengine_maas", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["model"] == ENDPOINT  # the endpoint id, not the workspace's model name
    assert req.json["thinking"] == {"type": "disabled"} and req.json["max_tokens"] == 50


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_by_default_and_reasoning_kept_out(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    direct = await llm.invoke("my-doubao", creds(upstream), MESSAGES, {"thinking": "disabled"}, stream=False)
    assert direct.reasoning_content is None
    result = await llm.invoke("my-doubao", creds(upstream), MESSAGES, {}, stream=stream)
    if stream:
        text = "".join([c.delta.message.content or "" async for c in result])
    else:
        assert result.reasoning_content == "".join(REASONING)
        text = result.message.content
    assert text == direct.message.content


async def test_disabled_thinking_with_an_effort_is_a_bad_request(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeBadRequestError) as info:
        await llm.invoke("my-doubao", creds(upstream), MESSAGES, {"thinking": "disabled", "reasoning_effort": "high"}, stream=False)
    assert "Invalid combination of reasoning_effort and thinking type" in str(info.value)
    ok = await llm.invoke("my-doubao", creds(upstream), MESSAGES, {"thinking": "disabled", "reasoning_effort": "minimal"}, stream=False)
    assert ok.message.content


@pytest.mark.parametrize("stream", [False, True])
async def test_overdue_account_is_quota_exhausted(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=403, error_type="account_overdue"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeQuotaExhaustedError) as info:
        await llm.invoke("my-doubao", creds(upstream), MESSAGES, {}, stream=stream)
    assert info.value.status == 403 and "AccountOverdueError" in str(info.value)


async def test_ark_error_codes(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as auth:
        await llm.invoke("my-doubao", creds(upstream, volc_api_key="invalid-key"), MESSAGES, {}, stream=False)
    assert auth.value.body is not None and '"code":"AuthenticationError"' in auth.value.body
    upstream.faults.push(Fault(status=429, retry_after=4))
    with pytest.raises(InvokeRateLimitError) as limited:
        await llm.invoke("my-doubao", creds(upstream), MESSAGES, {}, stream=True)
    assert type(limited.value) is InvokeRateLimitError and limited.value.retry_after == 4
    assert "Requests Per Minute" in str(limited.value)
    with pytest.raises(InvokeModelNotFoundError) as missing:
        await llm.invoke("my-doubao", creds(upstream, endpoint_id="missing-model"), MESSAGES, {}, stream=False)
    assert "missing-model does not exist" in str(missing.value)
    upstream.faults.push(Fault(status=404, error_type="model_not_open"))
    with pytest.raises(InvokeModelNotFoundError):
        await llm.invoke("my-doubao", creds(upstream), MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=400, error_type="sensitive_content"))
    with pytest.raises(InvokeContentFilteredError):
        await llm.invoke("my-doubao", creds(upstream), MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=400))
    with pytest.raises(InvokeBadRequestError) as plain:
        await llm.invoke("my-doubao", creds(upstream), MESSAGES, {}, stream=False)
    assert type(plain.value) is InvokeBadRequestError


async def test_embeddings(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    form = creds(upstream, base_model_name="Doubao-embedding", endpoint_id="ep-embed-1")
    schema = await emb.get_model_schema("my-embed", form)
    assert schema is not None and schema.property("max_chunks") == 32
    result = await emb.invoke("my-embed", form, ["a b", "c"])
    assert result.embeddings == [embedding_vector("a b", 8), embedding_vector("c", 8)]
    req = upstream.last_request
    assert req.path == "/v1/embeddings" and req.json["model"] == "ep-embed-1" and req.json["encoding_format"] == "float"
    upstream.faults.push(Fault(status=403, error_type="account_overdue"), path="/v1/embeddings")
    with pytest.raises(InvokeQuotaExhaustedError):
        await emb.invoke("my-embed", form, ["a"])


async def test_model_credentials_validate(rt: ModelRuntime, upstream: Any) -> None:
    await rt.model_credentials_validate(PROVIDER, "llm", "my-doubao", creds(upstream))
    assert upstream.last_request.json["model"] == ENDPOINT
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.model_credentials_validate(PROVIDER, "llm", "my-doubao", creds(upstream, volc_api_key="invalid-key"))
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
    with pytest.raises(CredentialsValidateFailedError):  # AK/SK signing is not offered
        await rt.model_credentials_validate(PROVIDER, "llm", "my-doubao", creds(upstream, auth_method="aksk"))
