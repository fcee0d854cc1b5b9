"""ChatGLM (predefined models, YAML only) against its simulator profile over real sockets.

The profile (:mod:`arun.testing.profiles.chatglm`) speaks ChatGLM3's ``openai_api_demo`` server:
CRLF-framed streams, empty ids, FastAPI ``{"detail": ...}`` errors, no error event inside a
stream.  The two behaviours the conformance suite cannot take (no usage in streams, the
deprecated single ``function_call``) are sent as the raw bodies the profile builds.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.entities.model import ModelFeature, ModelPropertyKey
from arun.errors import InvokeStreamInterruptedError
from arun.testing import Fault
from arun.testing.profiles.chatglm import function_call_body, stream_without_usage

PROVIDER = "chatglm"
MODEL = "chatglm3-6b"
MESSAGES = [UserPromptMessage(content="What is the weather in Beijing?")]
TOOL = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city_name": {"type": "string"}}, "required": ["city_name"]},
)


def creds(upstream: Any, **extra: str) -> dict[str, str]:
    return {"api_base": f"{upstream.url}/p/chatglm", "api_key": "sk-local-proxy", **extra}


async def test_predefined_models_carry_the_documented_limits(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["chatglm3-6b", "chatglm3-6b-32k", "chatglm3-6b-128k", "chatglm2-6b", "chatglm2-6b-32k"]
    sizes = {name: m.property(ModelPropertyKey.CONTEXT_SIZE) for name, m in models.items()}
    assert sizes == {
        "chatglm3-6b": 8192, "chatglm3-6b-32k": 32768, "chatglm3-6b-128k": 131072,
        "chatglm2-6b": 8192, "chatglm2-6b-32k": 32768,
    }  # fmt: skip
    rule = next(r for r in models["chatglm3-6b"].parameter_rules if r.name == "max_tokens")
    assert (rule.default, rule.max) == (1024, 8192)  # the server's own default when max_tokens is unset
    assert ModelFeature.TOOL_CALL in (models["chatglm3-6b"].features or [])
    assert ModelFeature.TOOL_CALL not in (models["chatglm2-6b"].features or [])
    assert all(m.pricing is None for m in models.values())  # a local server: nothing to price


@pytest.mark.parametrize("base", ["", "/v1"])
async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any, base: str) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, creds(upstream, api_base=f"{upstream.url}/p/chatglm{base}"), MESSAGES, {"max_tokens": 256}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile, req.json["model"], req.json["max_tokens"]) == ("/v1/chat/completions", "chatglm", MODEL, 256)
    assert req.headers["Authorization"] == "Bearer sk-local-proxy"
    assert result.id == "" and result.system_fingerprint is None and result.message.content


async def test_no_key_sends_no_authorization(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError):  # the simulator wants a key; the demo server would not
        await llm.invoke(MODEL, {"api_base": f"{upstream.url}/p/chatglm"}, MESSAGES, {}, stream=False)
    assert "Authorization" not in upstream.last_request.headers


async def test_stream_is_crlf_framed_and_parses(rt: ModelRuntime, upstream: Any) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with aiohttp.ClientSession() as http, http.post(
        f"{upstream.url}/p/chatglm/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
    ) as resp:
        raw = await resp.read()
    assert b'"id":""' in raw and raw.endswith(b"data: [DONE]\r\n\r\n") and b"}\n\n" not in raw
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=False)
    streamed = await (await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)).collect()
    assert streamed.message.content == whole.message.content


async def test_a_stream_without_usage_is_counted_locally(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(body=stream_without_usage(MODEL, ["Beijing is ", "sunny today."])))
    llm = rt.get_model_instance(PROVIDER, "llm")
    chunks = [c async for c in await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)]
    assert "".join(c.delta.message.content or "" for c in chunks) == "Beijing is sunny today."
    final = chunks[-1].delta
    assert final.finish_reason == "stop" and final.usage is not None
    from arun.tokenizers import count_tokens

    assert final.usage.prompt_tokens > 0
    assert final.usage.completion_tokens == count_tokens("Beijing is sunny today.", "cl100k_base") == 6


async def test_the_deprecated_function_call_becomes_a_tool_call(rt: ModelRuntime, upstream: Any) -> None:
    raw = "get_weather\n```python\ntool_call(city_name='Beijing')\n```"
    upstream.faults.push(Fault(body=function_call_body(MODEL, "get_weather", '{"city_name": "Beijing"}', raw)))
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, [TOOL], stream=False)
    assert upstream.last_request.json["tools"][0]["function"]["name"] == "get_weather"  # ChatGLM3 reads `tools`
    calls = result.message.tool_calls
    assert [(c.function.name, msgspec.json.decode(c.function.arguments)) for c in calls] == [("get_weather", {"city_name": "Beijing"})]
    assert result.finish_reason == "function_call" and (result.usage.prompt_tokens, result.usage.completion_tokens) == (42, 15)


async def test_a_streamed_function_call_delta_is_assembled(rt: ModelRuntime, upstream: Any) -> None:
    head = {"model": MODEL, "id": "", "object": "chat.completion.chunk"}
    events = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": '{"city_name": "Beijing"}'}}, "finish_reason": "function_call"}]},
    ]  # fmt: skip
    body = b"".join(b"data: " + msgspec.json.encode(e) + b"\r\n\r\n" for e in events) + b"data: [DONE]\r\n\r\n"
    upstream.faults.push(Fault(body=body))
    llm = rt.get_model_instance(PROVIDER, "llm")
    chunks = [c async for c in await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, [TOOL], stream=True)]
    calls = [call for c in chunks for call in c.delta.message.tool_calls]
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", '{"city_name": "Beijing"}')]
    assert chunks[-1].delta.finish_reason == "function_call"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_fastapi_error_detail(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=400))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeBadRequestError) as info:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=stream)
    assert info.value.body == '{"detail":"Invalid request"}' and "Invalid request" in str(info.value)


async def test_a_stream_that_stops_without_done_is_interrupted(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)
    with pytest.raises(InvokeStreamInterruptedError):
        await stream.collect()


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds(upstream))
    assert upstream.last_request.json["model"] == "chatglm3-6b"
    with pytest.raises(CredentialsValidateFailedError):
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "x"})  # api_base is required
