"""NVIDIA NIM (customizable only, YAML only) against the ``nvidia_nim`` profile: a vLLM-backed server.

The profile (``arun.testing.profiles.nvidia_nim``) answers errors the way vLLM does: a flat
``{"object": "error", "message", "type", "param", "code": <int>}`` body, the context-length message
of vLLM's input validation, ``NotFoundError`` for an unknown model, ``{"error": {...}}`` inside a stream.
"""

from __future__ import annotations

from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeContextLengthExceededError,
    InvokeModelNotFoundError,
    InvokeServerUnavailableError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.entities.model import FetchFrom, ModelFeature
from arun.testing import Fault

PROVIDER = "nvidia_nim"
MODEL = "meta/llama-3.1-8b-instruct"
MESSAGES = [UserPromptMessage(content="What is the weather in Paris?")]
TOOL = PromptMessageTool(
    name="get_weather", description="Weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"endpoint_url": f"{upstream.url}/p/nvidia_nim/v1", "context_size": "8192", "max_tokens_to_sample": "2048"}


async def test_the_schema_comes_from_the_form(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    assert await llm.predefined_models() == []
    schema = await llm.get_model_schema(MODEL, {**creds, "function_calling_type": "tool_call", "stream_function_calling": "supported"})
    assert schema is not None and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert schema.property("context_size") == 8192
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 2048
    assert {ModelFeature.MULTI_TOOL_CALL, ModelFeature.STREAM_TOOL_CALL} <= set(schema.features or [])


async def test_the_key_is_sent_only_when_set(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke(MODEL, {**creds, "api_key": "gw-key-123"}, MESSAGES, {}, stream=False)
    assert upstream.last_request.headers["Authorization"] == "Bearer gw-key-123"
    # without one nothing is sent (the simulator, like an authenticating gateway, then refuses with its 401)
    with pytest.raises(InvokeAuthorizationError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, stream=False)
    assert info.value.status == 401 and "Authorization" not in upstream.last_request.headers


async def test_tools_only_when_the_form_says_so(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    keyed = {**creds, "api_key": "gw-key-123"}
    await llm.invoke(MODEL, keyed, MESSAGES, {}, [TOOL], stream=False)
    assert "tools" not in upstream.last_request.json  # function_calling_type defaults to no_call
    result = await llm.invoke(MODEL, {**keyed, "function_calling_type": "tool_call"}, MESSAGES, {}, [TOOL], stream=False)
    assert upstream.last_request.json["tools"][0]["function"]["name"] == "get_weather"
    assert result.message.tool_calls and result.message.tool_calls[0].function.name == "get_weather"


@pytest.mark.parametrize("stream", [False, True])
async def test_vllm_context_length_error(rt: ModelRuntime, creds: dict[str, str], upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeContextLengthExceededError) as info:
        await llm.invoke(MODEL, {**creds, "api_key": "k-1"}, MESSAGES, {}, stream=stream)
    assert info.value.status == 400 and "maximum context length is 8192 tokens" in str(info.value)
    assert info.value.body is not None and '"object":"error"' in info.value.body


async def test_vllm_unknown_model(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(status=404))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeModelNotFoundError) as info:
        await llm.invoke(MODEL, {**creds, "api_key": "k-1"}, MESSAGES, {}, stream=False)
    assert f"The model `{MODEL}` does not exist." in str(info.value)


async def test_vllm_error_inside_a_stream(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2, message="CUDA out of memory"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, {**creds, "api_key": "k-1"}, MESSAGES, {}, stream=True)
    with pytest.raises(InvokeServerUnavailableError) as info:
        async for _ in stream:
            pass
    assert "CUDA out of memory" in str(info.value)


async def test_validate_model_credentials(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {**creds, "api_key": "k-1"})
    assert upstream.last_request.json["max_tokens"] == 5
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, {**creds, "api_key": "k-1", "context_size": "lots"})
