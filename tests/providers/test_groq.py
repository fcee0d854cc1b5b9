"""Groq (YAML only: openai_chat + openai_transcription) against its simulator profile over real sockets.

The quirks come from console.groq.com/docs and are sent by ``arun.testing.profiles.groq``: the
stream's usage under ``x_groq`` on the last chunk (no top-level usage chunk), reasoning in a
``reasoning`` field (GPT-OSS, Qwen3 asked for ``reasoning_format: parsed``), Groq's error bodies.
Groq's form has no base-URL field, so the runtime's endpoint override points it at the simulator.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeContextLengthExceededError,
    InvokeOverloadedError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.policy.retry import RetryPolicy
from arun.protocols.openai_misc import silent_wav
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "groq"
PROFILE = "groq"
MODEL = "llama-3.3-70b-versatile"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}


async def test_predefined_models_carry_the_documented_limits(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b", "qwen/qwen3-32b"]
    facts = {
        "llama-3.3-70b-versatile": (32_768, "0.59", "0.79"),
        "llama-3.1-8b-instant": (131_072, "0.05", "0.08"),
        "openai/gpt-oss-120b": (65_536, "0.15", "0.60"),
        "qwen/qwen3-32b": (40_960, "0.29", "0.59"),
    }
    for name, (max_out, price_in, price_out) in facts.items():
        m = models[name]
        assert m.property("context_size") == 131_072
        assert next(r for r in m.parameter_rules if r.name == "max_tokens").max == max_out
        assert m.pricing is not None and (m.pricing.input, m.pricing.output) == (Decimal(price_in), Decimal(price_out))
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    assert [m.model for m in await s2t.predefined_models()] == ["whisper-large-v3-turbo", "whisper-large-v3"]


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke(MODEL, CREDS, MESSAGES, {"max_tokens": 64, "seed": 7}, stream=False)
    req = upstream.last_request
    assert req.raw_path == "/p/groq/openai/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["max_tokens"], req.json["seed"]) == (MODEL, 64, 7)
    assert "reasoning_format" not in req.json
    await llm.invoke("qwen/qwen3-32b", CREDS, MESSAGES, {}, stream=False)
    assert upstream.last_request.json["reasoning_format"] == "parsed"  # the block's per-model setting


async def test_stream_usage_comes_from_x_groq(rt: ModelRuntime, upstream: Any) -> None:
    url = f"{upstream.url}/p/groq/openai/v1/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there friend"}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {VALID_KEY}"}) as resp:
            raw = await resp.read()
    chunks = [msgspec.json.decode(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]
    assert all(c.get("usage") is None for c in chunks) and all(c["choices"] for c in chunks)
    assert chunks[0]["x_groq"] == {"id": chunks[-1]["x_groq"]["id"]}
    groq_usage = chunks[-1]["x_groq"]["usage"]
    assert {"queue_time", "prompt_time", "completion_time", "total_time"} <= set(groq_usage)

    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=False)
    got = [c async for c in await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True)]
    final = got[-1].delta.usage
    assert final is not None
    assert (final.prompt_tokens, final.completion_tokens) == (groq_usage["prompt_tokens"], groq_usage["completion_tokens"])
    assert (final.prompt_tokens, final.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)


async def test_stream_usage_is_read_from_x_groq_not_counted(rt: ModelRuntime, upstream: Any) -> None:
    """Numbers no local count would give: the client must take them from ``x_groq.usage``."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
    events = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}], "x_groq": {"id": "req_1"}},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290, "queue_time": 0.01}}},
    ]  # fmt: skip
    body = b"".join(b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    upstream.faults.push(Fault(body=body, headers={"Content-Type": "text/event-stream"}))
    got = [c async for c in await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {}, stream=True)]
    usage = got[-1].delta.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1234, 56, 1290)


@pytest.mark.parametrize("model", ["openai/gpt-oss-120b", "qwen/qwen3-32b"])
async def test_reasoning_arrives_beside_the_content(rt: ModelRuntime, model: str) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(model, CREDS, MESSAGES, {}, stream=False)
    assert whole.reasoning_content == "The user greets me; reply in kind."
    assert whole.message.content == "Echo: Hello there friend"
    got = [c async for c in await llm.invoke(model, CREDS, MESSAGES, {}, stream=True)]
    assert "".join(c.delta.message.content or "" for c in got) == whole.message.content


async def test_without_parsed_format_qwen_thinks_inline(rt: ModelRuntime, upstream: Any) -> None:
    """Why the block asks for ``reasoning_format: parsed``: Qwen3's default puts the thinking in the content."""
    llm = rt.get_model_instance(PROVIDER, "llm")
    raw = await llm.invoke("qwen/qwen3-32b", CREDS, MESSAGES, {}, stream=False, extra_body={"reasoning_format": "raw"})
    assert upstream.last_request.json["reasoning_format"] == "raw"
    assert raw.message.content.startswith("<think>The user greets me") and raw.reasoning_content is None


async def test_reasoning_effort_is_sent_for_gpt_oss(rt: ModelRuntime, upstream: Any) -> None:
    await rt.get_model_instance(PROVIDER, "llm").invoke("openai/gpt-oss-120b", CREDS, MESSAGES, {"reasoning_effort": "low"}, stream=False)
    assert upstream.last_request.json["reasoning_effort"] == "low"


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=429, retry_after=2.3))
    with pytest.raises(InvokeRateLimitError) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {}, stream=stream)
    assert info.value.retry_after == pytest.approx(2.3) and "tokens per minute (TPM)" in str(info.value)


async def test_request_larger_than_the_tpm_limit_is_a_bad_request(rt: ModelRuntime, upstream: Any) -> None:
    """413 ``rate_limit_exceeded``: waiting does not help, the request must shrink."""
    upstream.faults.push(Fault(status=413))
    with pytest.raises(InvokeBadRequestError) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {}, stream=False)
    assert not isinstance(info.value, InvokeRateLimitError) and "Request too large" in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
async def test_flex_tier_at_capacity_is_an_overload(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    """498 ``capacity_exceeded`` (flex tier full) is retryable: an overload, which the retry policy retries."""
    upstream.faults.push(Fault(status=498))
    with pytest.raises(InvokeOverloadedError) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(MODEL, CREDS, MESSAGES, {"service_tier": "flex"}, stream=stream)
    assert info.value.status == 498 and info.value.code == "capacity_exceeded"
    assert RetryPolicy().decide(info.value, 0).retry


async def test_bad_key_and_context_length(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as info:
        await llm.invoke(MODEL, {"api_key": "invalid-gsk"}, MESSAGES, {}, stream=False)
    assert "Invalid API Key" in str(info.value) and "invalid-gsk" not in str(info.value)
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    with pytest.raises(InvokeContextLengthExceededError):
        await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=False)


async def test_whisper_transcription(rt: ModelRuntime, upstream: Any) -> None:
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    schema = await s2t.get_model_schema("whisper-large-v3-turbo")
    assert schema is not None and schema.property("file_upload_limit") == 25
    audio = silent_wav()
    assert await s2t.invoke("whisper-large-v3-turbo", CREDS, audio) == f"transcript of {len(audio)} bytes"
    req = upstream.last_request
    assert req.raw_path == "/p/groq/openai/v1/audio/transcriptions" and req.form["model"] == "whisper-large-v3-turbo"
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "llama-3.1-8b-instant"  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    await s2t.validate_credentials("whisper-large-v3", CREDS)
