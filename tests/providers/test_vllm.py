"""vLLM (customizable-model, YAML only) against its simulator profile over real sockets.

The profile (:mod:`arun.testing.profiles.vllm`) speaks current vLLM: ``reasoning`` beside the
content, nested ``{"error": {...}}`` bodies with vLLM's type names and an integer ``code``, the
``{"error": "Unauthorized"}`` of ``--api-key``; the flat body of vLLM < 0.10.1 is sent raw.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeContextLengthExceededError,
    InvokeServerUnavailableError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.entities.model import ModelFeature, ModelPropertyKey
from arun.errors import InvokeModelNotFoundError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.profiles.vllm import REASONING

PROVIDER = "vllm"
MODEL = "Qwen/Qwen3-8B"
MESSAGES = [UserPromptMessage(content="What is the weather in Paris today?")]
TOOL = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
#: the message vLLM gives when the prompt is over --max-model-len
CONTEXT_MESSAGE = (
    "This model's maximum context length is 32768 tokens. However, you requested 39197 tokens in the "
    "messages, Please reduce the length of the messages."
)


def creds(upstream: Any, **extra: str) -> dict[str, str]:
    return {"endpoint_url": f"{upstream.url}/p/vllm", "api_key": VALID_KEY, **extra}


@pytest.mark.parametrize("base", ["/p/vllm", "/p/vllm/v1", "/p/vllm/v1/"])
async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any, base: str) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    form = {"endpoint_url": upstream.url + base, "api_key": VALID_KEY, "function_calling_type": "tool_call"}
    result = await llm.invoke(MODEL, form, MESSAGES, {"max_tokens": 64, "temperature": 0.2}, [TOOL], stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "vllm")  # /v1 added once, never twice
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["max_tokens"], req.json["temperature"]) == (MODEL, 64, 0.2)
    assert [c.function.name for c in result.message.tool_calls] == ["get_weather"]


async def test_served_model_name_and_no_key(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("qwen", creds(upstream, endpoint_model_name="qwen3-8b-awq"), MESSAGES, {}, stream=False)
    assert upstream.last_request.json["model"] == "qwen3-8b-awq"
    with pytest.raises(InvokeAuthorizationError) as info:  # no --api-key given: no header is sent
        await llm.invoke("qwen", {"endpoint_url": f"{upstream.url}/p/vllm"}, MESSAGES, {}, stream=False)
    assert "Authorization" not in upstream.last_request.headers
    assert info.value.status == 401 and info.value.body == '{"error":"Unauthorized"}'


async def test_schema_from_the_form(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    form = creds(upstream, context_size="32768", max_tokens_to_sample="8192", function_calling_type="tool_call", vision_support="support")
    schema = await llm.get_model_schema(MODEL, form)
    assert schema is not None and schema.property(ModelPropertyKey.CONTEXT_SIZE) == 32768
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 8192
    features = set(schema.features or [])
    assert {ModelFeature.MULTI_TOOL_CALL, ModelFeature.VISION} <= features


async def test_reasoning_field_is_read_and_kept_out_of_the_content(rt: ModelRuntime, upstream: Any) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{upstream.url}/p/vllm/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {VALID_KEY}"},
    ) as resp:
        message = (await resp.json())["choices"][0]["message"]
    assert message["reasoning"] == "".join(REASONING) and "reasoning_content" not in message  # the new name only
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=False)
    assert whole.reasoning_content == "".join(REASONING)
    chunks = [c async for c in await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)]
    streamed = "".join(c.delta.message.content or "" for c in chunks)
    assert streamed == whole.message.content and REASONING[0] not in streamed
    off = await llm.invoke(
        MODEL, creds(upstream), MESSAGES, {}, stream=False, extra_body={"chat_template_kwargs": {"enable_thinking": False}}
    )
    assert off.reasoning_content is None and off.message.content == whole.message.content


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_context_length_message_is_typed(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeContextLengthExceededError) as info:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=stream)
    body = msgspec.json.decode(info.value.body or "")
    assert body == {"error": {"message": CONTEXT_MESSAGE, "type": "BadRequestError", "param": None, "code": 400}}


async def test_the_flat_error_body_of_older_vllm_is_typed_too(rt: ModelRuntime, upstream: Any) -> None:
    flat = {"object": "error", "message": CONTEXT_MESSAGE, "type": "BadRequestError", "param": None, "code": 400}
    upstream.faults.push(Fault(status=400, body=msgspec.json.encode(flat)))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeContextLengthExceededError) as info:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=False)
    assert info.value.status == 400 and "maximum context length is 32768 tokens" in str(info.value)


async def test_unknown_model_is_not_found(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeModelNotFoundError) as info:
        await llm.invoke("missing-model", creds(upstream), MESSAGES, {}, stream=False)
    assert "The model `missing-model` does not exist." in str(info.value)
    assert msgspec.json.decode(info.value.body or "")["error"]["type"] == "NotFoundError"


async def test_error_inside_a_stream_takes_its_status_from_the_code(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2, message="EngineCore encountered an issue."))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)
    with pytest.raises(InvokeServerUnavailableError) as info:  # "code": 500, not a bad request
        await stream.collect()
    assert "EngineCore encountered an issue." in str(info.value)


async def test_embeddings_and_rerank(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("BAAI/bge-m3", creds(upstream), ["alpha beta", "gamma"])
    assert len(result.embeddings) == 2 and result.usage.tokens == 3
    req = upstream.last_request
    assert (req.path, req.json["model"], req.json["encoding_format"]) == ("/v1/embeddings", "BAAI/bge-m3", "float")
    rr = rt.get_model_instance(PROVIDER, "rerank")
    docs = ["Paris is in France.", "Rome is in Italy.", "France has Paris."]
    ranked = await rr.invoke("BAAI/bge-reranker-v2-m3", creds(upstream), "Paris France", docs, top_n=2)
    req = upstream.last_request
    assert (req.path, req.json["query"], req.json["documents"], req.json["top_n"]) == ("/v1/rerank", "Paris France", docs, 2)
    assert [d.index for d in ranked.docs] == [0, 2] and ranked.docs[0].text == docs[0]


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.model_credentials_validate(PROVIDER, "llm", MODEL, creds(upstream))
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, creds(upstream, api_key="invalid-key"))
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
