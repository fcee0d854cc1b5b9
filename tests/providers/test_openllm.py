"""OpenLLM (customizable-model, YAML only) against its simulator profile over real sockets.

OpenLLM 0.6 mounts vLLM 0.8.5's OpenAI handlers under ``/v1``
(:mod:`arun.testing.profiles.openllm`): flat ``{"object": "error", ...}`` bodies,
``reasoning_content`` from reasoning recipes, stream errors wrapping the flat object.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from arun import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeContextLengthExceededError,
    InvokeServerUnavailableError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.model import ModelPropertyKey
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.profiles.openllm import REASONING

PROVIDER = "openllm"
MODEL = "meta-llama/Llama-3.2-1B-Instruct"
MESSAGES = [UserPromptMessage(content="Explain superconductors briefly")]


def creds(upstream: Any, **extra: str) -> dict[str, str]:
    return {"server_url": f"{upstream.url}/p/openllm", "api_key": VALID_KEY, **extra}


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, creds(upstream), MESSAGES, {"max_tokens": 128, "top_k": 20}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "openllm")  # {server_url}/v1
    assert (req.json["model"], req.json["max_tokens"], req.json["top_k"]) == (MODEL, 128, 20)
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert result.message.content and result.reasoning_content is None


async def test_customizable_schema_defaults(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = await llm.get_model_schema(MODEL, creds(upstream, context_size="8192", mode="chat"))
    assert schema is not None and schema.property(ModelPropertyKey.CONTEXT_SIZE) == 8192
    assert schema.property(ModelPropertyKey.MODE) == "chat" and not schema.features  # tools only when the form says so


async def test_reasoning_recipes_send_reasoning_content(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke("Qwen/QwQ-32B", creds(upstream), MESSAGES, {}, stream=False)
    assert whole.reasoning_content == "".join(REASONING)
    chunks = [c async for c in await llm.invoke("Qwen/QwQ-32B", creds(upstream), MESSAGES, {}, stream=True)]
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_flat_error_bodies_are_typed(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    with pytest.raises(InvokeContextLengthExceededError) as info:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=stream)
    body = msgspec.json.decode(info.value.body or "")
    assert set(body) == {"object", "message", "type", "param", "code"} and body["object"] == "error"
    assert (body["type"], body["code"]) == ("BadRequestError", 400)
    upstream.faults.push(Fault(status=500))
    with pytest.raises(InvokeServerUnavailableError):
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=stream)
    with pytest.raises(InvokeAuthorizationError):
        await llm.invoke(MODEL, creds(upstream, api_key="invalid-token"), MESSAGES, {}, stream=stream)


async def test_stream_error_wrapping_the_flat_object(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2, message="prompt too long for max_model_len"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)
    with pytest.raises(InvokeBadRequestError) as info:  # its "code": 400
        await stream.collect()
    assert "prompt too long for max_model_len" in str(info.value)


async def test_embeddings(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("meta-llama/Llama-3.2-3B-Instruct", creds(upstream), ["one two", "three"])
    assert len(result.embeddings) == 2
    req = upstream.last_request
    assert (req.path, req.json["encoding_format"]) == ("/v1/embeddings", "float")
