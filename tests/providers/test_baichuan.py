"""Baichuan (YAML only: openai_chat + openai_embedding) against its simulator profile over real sockets.

What is Baichuan's own: the lowercase Dify model ids mapped to the upstream's names, Dify's
``res_format`` rule spelled ``response_format`` on the wire, and error types (sent by
``arun.testing.profiles.baichuan``) that decide the error class whatever the HTTP status.
"""

from __future__ import annotations

from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.errors import InvokeError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_vector

PROVIDER = "baichuan"
# no credential overrides the base URL: rt points the provider's origin at the simulator
PROFILE = "baichuan"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}


async def test_predefined_models(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["baichuan-m3-plus", "baichuan-m3", "baichuan4-turbo", "baichuan4-air"]
    assert all(m.property("context_size") == 32000 for m in models.values())
    assert next(r for r in models["baichuan4-turbo"].parameter_rules if r.name == "max_tokens").max == 2048
    assert all(m.pricing is None for m in models.values())  # no confirmed list price
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    (embedding,) = await emb.predefined_models()
    assert (embedding.property("context_size"), embedding.property("max_chunks")) == (512, 16)


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("baichuan4-turbo", CREDS, MESSAGES, {"res_format": "json_object", "top_k": 3, "max_tokens": 100}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile, req.headers["Authorization"]) == ("/v1/chat/completions", "baichuan", f"Bearer {VALID_KEY}")
    assert req.json["model"] == "Baichuan4-Turbo"  # the upstream's name for Dify's id
    assert req.json["response_format"] == {"type": "json_object"} and "res_format" not in req.json
    assert (req.json["top_k"], req.json["max_tokens"]) == (3, 100)


ERRORS = [
    (401, None, InvokeAuthorizationError),
    (400, "invalid_api_key", InvokeAuthorizationError),
    (400, "api_key_empty", InvokeAuthorizationError),
    (403, None, InvokeAuthorizationError),  # invalid_authentication
    (429, None, InvokeRateLimitError),
    (429, "insufficient_quota", InvokeQuotaExhaustedError),
    (400, "insufficient_quota", InvokeQuotaExhaustedError),  # the type decides, not the status
    (400, None, InvokeBadRequestError),
]


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
@pytest.mark.parametrize(("status", "kind", "expected"), ERRORS)
async def test_error_types_decide_the_class(
    rt: ModelRuntime, upstream: Any, stream: bool, status: int, kind: str | None, expected: type[InvokeError]
) -> None:
    upstream.faults.push(Fault(status=status, error_type=kind))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeError) as info:
        await llm.invoke("baichuan-m3", CREDS, MESSAGES, {}, stream=stream)
    assert type(info.value) is expected and info.value.status == status


async def test_embeddings(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    texts = [f"text number {i}" for i in range(20)]
    result = await emb.invoke("baichuan-text-embedding", CREDS, texts)
    assert result.embeddings == [embedding_vector(t, 8) for t in texts]
    reqs = [r for r in upstream.requests if r.path == "/v1/embeddings"]
    assert [len(r.json["input"]) for r in reqs] == [16, 4]  # 16 texts per request
    assert reqs[0].json["model"] == "Baichuan-Text-Embedding" and "encoding_format" not in reqs[0].json
    upstream.faults.push(Fault(status=429, error_type="insufficient_quota"), path="/v1/embeddings")
    with pytest.raises(InvokeQuotaExhaustedError):
        await emb.invoke("baichuan-text-embedding", CREDS, ["a"])


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "Baichuan4-Air"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
