"""OpenRouter (openai_chat family + a moderation-aware error mapper) against its simulator profile.

The quirks come from openrouter.ai/docs and are sent by ``arun.testing.profiles.openrouter``:
``: OPENROUTER PROCESSING`` comments, errors inside a 200 stream (an ``error`` object beside
``finish_reason: "error"``) or a 200 body, ``{"error": {"code": <status>, ...}}`` bodies, the
``reasoning`` field, the attribution headers callers add per call.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokePermissionDeniedError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    ParameterValidationError,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "openrouter"
MODEL = "openai/gpt-4o-mini"
REASONER = "openai/gpt-5-mini"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
WEATHER = PromptMessageTool(
    name="get_weather", description="Current weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"api_key": VALID_KEY, "endpoint_url": f"{upstream.url}/p/openrouter/api/v1"}


def sse(*events: dict[str, Any]) -> bytes:
    return b": OPENROUTER PROCESSING\n\n" + b"".join(b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events)


HEAD = {"id": "gen-1", "object": "chat.completion.chunk", "created": 0, "model": MODEL, "provider": "OpenAI"}
FIRST = {**HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Half an"}, "finish_reason": None}]}


def error_chunk(code: Any, message: str) -> dict[str, Any]:
    return {**HEAD, "error": {"code": code, "message": message}, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}


def test_the_folder_is_yaml_plus_one_hook() -> None:
    import arun.providers

    folder = next(Path(p) / PROVIDER for p in arun.providers.__path__ if (Path(p) / PROVIDER).is_dir())
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert [f for f in files if not f.endswith(".yaml")] == ["llm/llm.py"]


async def test_predefined_models_carry_the_listed_facts(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == [
        "openai/gpt-5-mini", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4.5",
        "google/gemini-2.5-flash", "google/gemini-2.5-flash-lite",
    ]  # fmt: skip
    facts = {
        "openai/gpt-5-mini": (400_000, 128_000, "0.25", "2"),
        "openai/gpt-4o-mini": (128_000, 16_384, "0.15", "0.6"),
        "anthropic/claude-sonnet-4.5": (1_000_000, 64_000, "3", "15"),
        "google/gemini-2.5-flash": (1_048_576, 65_536, "0.30", "2.50"),
    }
    for name, (context, max_out, price_in, price_out) in facts.items():
        m = models[name]
        assert m.property("context_size") == context
        assert next(r for r in m.parameter_rules if r.name == "max_tokens").max == max_out
        assert m.pricing is not None and (m.pricing.input, m.pricing.output, m.pricing.currency) == (
            Decimal(price_in), Decimal(price_out), "USD",
        )  # fmt: skip


async def test_request_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("google/gemini-2.5-flash", creds, MESSAGES, {"reasoning_effort": "high", "max_tokens": 64}, stream=False)
    req = upstream.last_request
    assert req.raw_path == "/p/openrouter/api/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["model"] == "google/gemini-2.5-flash"  # the slash-separated id, unchanged
    assert req.json["reasoning"] == {"effort": "high"} and "reasoning_effort" not in req.json


async def test_attribution_headers_reach_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    attribution = {"HTTP-Referer": "https://app.example.com", "X-Title": "Example App"}
    for stream in (False, True):
        result = await llm.invoke(MODEL, creds, MESSAGES, {}, stream=stream, extra_headers=attribution)
        if stream:
            _ = [c async for c in result]
        req = upstream.last_request
        assert (req.headers["HTTP-Referer"], req.headers["X-Title"]) == ("https://app.example.com", "Example App")
        assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    with pytest.raises(ParameterValidationError):
        await llm.invoke(MODEL, creds, MESSAGES, {}, stream=False, extra_headers={"Authorization": "Bearer other"})


async def test_processing_comments_and_reasoning(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    url = f"{upstream.url}/p/openrouter/api/v1/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there friend"}], "stream": True, "reasoning": {"effort": "low"}}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {VALID_KEY}"}) as resp:
            raw = await resp.read()
    assert raw.startswith(b": OPENROUTER PROCESSING\n\n") and raw.count(b": OPENROUTER PROCESSING") == 3
    assert b'"reasoning":"Weighing the question"' in raw

    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(REASONER, creds, MESSAGES, {"reasoning_effort": "low"}, stream=False)
    assert upstream.last_request.json["reasoning"] == {"effort": "low"}
    assert whole.reasoning_content == "Weighing the question before answering."
    chunks = [c async for c in await llm.invoke(REASONER, creds, MESSAGES, {"reasoning_effort": "low"}, stream=True)]
    text = "".join(c.delta.message.content or "" for c in chunks)
    assert text == whole.message.content and "Weighing" not in text
    final = chunks[-1].delta
    assert final.finish_reason == "stop" and final.usage is not None
    assert final.usage.completion_tokens == whole.usage.completion_tokens > 0


async def test_error_event_in_a_200_stream_is_a_typed_error(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=4))  # 3 comments + the role chunk, then OpenRouter's error event
    stream = await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, creds, MESSAGES, {}, stream=True)
    with pytest.raises(InvokeServerUnavailableError) as info:
        _ = [c async for c in stream]
    assert "Provider disconnected unexpectedly" in str(info.value) and info.value.status is None


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        (502, "Network connection lost.", InvokeServerUnavailableError),
        (429, "Provider returned error", InvokeRateLimitError),
        ("server_error", "Provider disconnected unexpectedly", InvokeServerUnavailableError),
    ],
)
async def test_mid_stream_error_codes(rt: ModelRuntime, creds: dict[str, str], upstream: Any, code: Any, message: str, error: type) -> None:
    upstream.faults.push(Fault(body=sse(FIRST, error_chunk(code, message)), headers={"Content-Type": "text/event-stream"}))
    stream = await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, creds, MESSAGES, {}, stream=True)
    seen = []
    with pytest.raises(error) as info:
        async for chunk in stream:
            seen.append(chunk.delta.message.content)
    assert seen == ["Half an"] and message in str(info.value)


async def test_error_in_a_200_body_is_a_typed_error_not_a_result(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    body = {"error": {"code": 502, "message": "Provider returned error", "metadata": {"provider_name": "OpenAI"}}, "user_id": "user_x"}
    upstream.faults.push(Fault(body=msgspec.json.encode(body)))
    with pytest.raises(InvokeServerUnavailableError) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, creds, MESSAGES, {}, stream=False)
    assert "Provider returned error" in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault(status=402), InvokeQuotaExhaustedError, "requires more credits"),
        (Fault(status=429, retry_after=3), InvokeRateLimitError, "Rate limit exceeded"),
        (Fault(status=400, error_type="context_length_exceeded"), InvokeContextLengthExceededError, "maximum context length"),
        (Fault(status=403, error_type="moderation"), InvokeContentFilteredError, "flagged for: hate"),
        (Fault(status=403), InvokePermissionDeniedError, "not allowed"),  # an InvokeAuthorizationError
    ],
    ids=["credits", "rate-limit", "context", "moderation", "forbidden"],
)
async def test_error_bodies(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, fault: Fault, error: type, text: str, stream: bool
) -> None:
    upstream.faults.push(fault)
    with pytest.raises(error) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, creds, MESSAGES, {}, stream=stream)
    assert text in str(info.value) and type(info.value) is error


async def test_unknown_key(rt: ModelRuntime, creds: dict[str, str]) -> None:
    with pytest.raises(InvokeAuthorizationError) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, {**creds, "api_key": "invalid-or-key"}, MESSAGES, {}, stream=False)
    assert "User not found." in str(info.value) and "invalid-or-key" not in str(info.value)


async def test_user_added_model(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    name = "mistralai/mistral-small-3.2-24b-instruct"
    form = {**creds, "context_size": "131072", "max_tokens_to_sample": "8192", "function_calling_type": "no_call"}
    schema = await llm.get_model_schema(name, form)
    assert schema is not None and schema.property("context_size") == 131072
    await llm.invoke(name, form, MESSAGES, {}, tools=[WEATHER], stream=False)
    assert upstream.last_request.json["model"] == name and "tools" not in upstream.last_request.json
    await llm.invoke(name, {**form, "function_calling_type": "tool_call"}, MESSAGES, {}, tools=[WEATHER], stream=False)
    assert upstream.last_request.json["tools"][0]["function"]["name"] == "get_weather"


async def test_validate_credentials(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds)
    assert upstream.last_request.json["model"] == "openai/gpt-4o-mini"  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {**creds, "api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
