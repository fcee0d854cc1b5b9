"""DeepSeek (YAML only, on the openai_chat family) against its simulator profile over real sockets.

The quirks come from api-docs.deepseek.com and are sent by ``arun.testing.profiles.deepseek``:
``reasoning_content`` beside the content, ``: keep-alive`` comments before the first chunk and
blank lines before a non-streamed body, 402 for an empty balance, the
``insufficient_system_resource`` finish reason when capacity cuts a generation.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeQuotaExhaustedError,
    InvokeServerUnavailableError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "deepseek"
MODEL = "deepseek-flash"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return {"api_key": VALID_KEY, "endpoint_url": f"{upstream.url}/p/deepseek"}


async def test_predefined_models_carry_the_documented_limits(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["deepseek-flash", "deepseek-v4-pro"]
    flash = models["deepseek-flash"]
    assert flash.property("context_size") == 1_000_000
    assert next(r for r in flash.parameter_rules if r.name == "max_tokens").max == 384000
    assert flash.pricing is not None and (flash.pricing.input, flash.pricing.output, flash.pricing.currency) == (
        msgspec.convert("2", type=type(flash.pricing.input)),
        msgspec.convert("8", type=type(flash.pricing.input)),
        "RMB",
    )
    assert "vision" in [f.value for f in flash.features or []]
    assert "vision" not in [f.value for f in models["deepseek-v4-pro"].features or []]


async def test_request_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke(MODEL, creds, MESSAGES, {"thinking": False, "max_tokens": 64}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "deepseek")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["thinking"] == {"type": "disabled"}  # the boolean rule, spelled as DeepSeek wants it
    assert req.json["model"] == MODEL and req.json["max_tokens"] == 64


async def test_non_stream_reasoning_after_blank_lines(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, creds, MESSAGES, {"thinking": True}, stream=False)
    assert result.reasoning_content == "The user asks a question; answer briefly."
    assert result.message.content and "The user asks" not in result.message.content
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens > 0


async def test_stream_skips_keepalive_and_keeps_reasoning_out_of_the_content(
    rt: ModelRuntime, creds: dict[str, str]
) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, creds, MESSAGES, {"thinking": True}, stream=False)
    stream = await llm.invoke(MODEL, creds, MESSAGES, {"thinking": True}, stream=True)
    chunks = [c async for c in stream]
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content
    final = chunks[-1].delta
    assert final.finish_reason == "stop" and final.usage is not None
    assert final.usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
async def test_empty_balance_is_quota_exhausted(rt: ModelRuntime, creds: dict[str, str], upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=402))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeQuotaExhaustedError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, stream=stream)
    assert info.value.status == 402 and "Insufficient Balance" in str(info.value)


async def test_capacity_cut_finish_reason_is_an_error_not_a_short_answer(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    head = {"id": "x", "object": "chat.completion.chunk", "model": MODEL}
    events = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Half an"}, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "insufficient_system_resource"}]},
    ]
    body = b"".join(b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    upstream.faults.push(Fault(body=body, headers={"Content-Type": "text/event-stream"}))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, stream=True)
    seen = []
    with pytest.raises(InvokeServerUnavailableError) as info:
        async for chunk in stream:
            seen.append(chunk.delta.message.content)
    assert seen == ["Half an"] and "insufficient_system_resource" in str(info.value)


async def test_validate_credentials(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds)
    assert upstream.last_request.json["model"] == "deepseek-flash"  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {**creds, "api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
