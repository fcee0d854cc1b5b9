"""PerfXCloud (YAML only, openai_chat + openai_embedding, no documented quirk: the plain simulator profile)."""

from __future__ import annotations

from typing import Any

import pytest

from arun import CredentialsValidateFailedError, InvokeAuthorizationError, InvokeRateLimitError, ModelRuntime, UserPromptMessage
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_vector

PROVIDER = "perfxcloud"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


def creds(upstream: Any, base: str = "/v1") -> dict[str, str]:
    return {"api_key": VALID_KEY, "endpoint_url": f"{upstream.url}/p/plain{base}"}


async def test_predefined_models(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["Qwen2.5-72B-Instruct", "Qwen2.5-7B-Instruct", "Qwen2-72B-Instruct", "Meta-Llama-3.1-8B-Instruct"]
    assert models["Qwen2-72B-Instruct"].property("context_size") == 131072
    assert next(r for r in models["Qwen2.5-72B-Instruct"].parameter_rules if r.name == "max_tokens").max == 1248
    emb = {m.model: m for m in await rt.get_model_instance(PROVIDER, "text-embedding").predefined_models()}
    assert emb["BAAI/bge-m3"].property("context_size") == 8192
    assert emb["BAAI/bge-large-zh-v1.5"].property("context_size") == 512
    assert llm.endpoint.url({"api_key": "k"}, "x") == "https://cloud.perfxlab.cn/v1/chat/completions"


@pytest.mark.parametrize("base", ["/v1", ""])
async def test_chat_on_the_wire(rt: ModelRuntime, upstream: Any, base: str) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke("Qwen2.5-7B-Instruct", creds(upstream, base), MESSAGES, {"top_k": 20, "repetition_penalty": 1.05}, stream=False)
    assert result.message.content
    req = upstream.last_request
    assert (req.profile, req.path) == ("plain", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["top_k"], req.json["repetition_penalty"]) == ("Qwen2.5-7B-Instruct", 20, 1.05)


async def test_embeddings_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("BAAI/bge-m3", creds(upstream, ""), ["first text", "second"])
    assert result.embeddings == [embedding_vector("first text", 8), embedding_vector("second", 8)]
    sent = [r.json for r in upstream.requests if r.path == "/v1/embeddings"]
    assert [b["input"] for b in sent] == [["first text"], ["second"]]
    assert all(b["model"] == "BAAI/bge-m3" and b["encoding_format"] == "float" for b in sent)


async def test_errors(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError):
        await llm.invoke("Qwen2.5-7B-Instruct", {**creds(upstream), "api_key": "invalid-key"}, MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=429), path="/v1/embeddings")
    with pytest.raises(InvokeRateLimitError):
        await rt.get_model_instance(PROVIDER, "text-embedding").invoke("BAAI/bge-m3", creds(upstream), ["a"])


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds(upstream))
    assert upstream.last_request.json["model"] == "Qwen2.5-7B-Instruct"
    with pytest.raises(CredentialsValidateFailedError):
        await rt.provider_credentials_validate(PROVIDER, {**creds(upstream), "api_key": "invalid-key"})
