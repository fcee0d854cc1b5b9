"""iFlytek Spark (YAML only, openai_chat family) against its simulator profile over real sockets.

Sent by ``arun.testing.profiles.spark`` (www.xfyun.cn/doc/spark): ``code``/``message``/``sid`` on
every answer, a nonzero ``code`` in a 200 answer or stream (an audit failure after the answer
started), and Spark's error codes in OpenAI-shaped error bodies, which decide the error class.
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
    InvokeContextLengthExceededError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.errors import InvokeError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "spark"
PROFILE = "spark"
MODEL = "4.0Ultra"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_password": VALID_KEY}


async def drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_predefined_models_are_the_versions_domains(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["4.0Ultra", "generalv3.5", "max-32k", "generalv3", "pro-128k", "lite"]
    limits = {name: (m.property("context_size"), next(r for r in m.parameter_rules if r.name == "max_tokens").max) for name, m in models.items()}
    assert limits["4.0Ultra"] == (32768, 32768) and limits["pro-128k"] == (131072, 4096) and limits["lite"] == (8192, 4096)
    lite = models["lite"].pricing
    assert lite is not None and (lite.input, lite.output) == (Decimal("0"), Decimal("0"))
    assert "tool-call" in [f.value for f in models["4.0Ultra"].features or []]
    assert "tool-call" not in [f.value for f in models["lite"].features or []]


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    assert ModelRuntime().get_model_instance(PROVIDER, "llm").endpoint.url({}) == "https://spark-api-open.xf-yun.com/v1/chat/completions"
    result = await llm.invoke(MODEL, CREDS, MESSAGES, {"top_k": 2, "max_tokens": 50}, stream=False)
    assert result.message.content  # code 0 / "Success" / sid beside the answer are not an error
    req = upstream.last_request
    assert (req.path, req.profile, req.headers["Authorization"]) == ("/v1/chat/completions", "spark", f"Bearer {VALID_KEY}")
    assert (req.json["model"], req.json["top_k"], req.json["max_tokens"]) == ("4.0Ultra", 2, 50)


async def test_stream_with_code_zero_on_every_chunk(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=False)
    chunks = await drain(await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True))
    assert "".join(c.delta.message.content or "" for c in chunks) == whole.message.content
    assert chunks[-1].delta.usage is not None and chunks[-1].delta.usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
@pytest.mark.parametrize(
    ("code", "expected"),
    [(10013, InvokeContentFilteredError), (10014, InvokeContentFilteredError), (10907, InvokeContextLengthExceededError),
     (11201, InvokeQuotaExhaustedError), (11200, InvokeAuthorizationError), (10005, InvokeBadRequestError)],
)  # fmt: skip
async def test_a_nonzero_code_in_a_200_answer_is_a_typed_error(
    rt: ModelRuntime, stream: bool, code: int, expected: type[InvokeError]
) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    messages = [UserPromptMessage(content=f"tell me [sim:spark:{code}]")]
    seen: list[str] = []
    with pytest.raises(InvokeError) as info:
        result = await llm.invoke(MODEL, CREDS, messages, {}, stream=stream)
        if stream:
            async for chunk in result:
                seen.append(chunk.delta.message.content or "")
    assert type(info.value) is expected and info.value.status is None
    assert "(sid: cha000b" in str(info.value)
    assert len(seen) <= 1  # the stream ends in the error, never in a short answer


async def test_in_stream_error_event(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeContentFilteredError):
        await drain(await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True))


ERRORS = [
    (401, None, InvokeAuthorizationError),  # 11200 AppIdNoAuthError
    (429, None, InvokeRateLimitError),  # 11202
    (429, "concurrency", InvokeRateLimitError),  # 11203
    (429, "insufficient_quota", InvokeQuotaExhaustedError),  # 11201 daily limit
    (400, "context_length_exceeded", InvokeContextLengthExceededError),  # 10907
    (400, "content_filter", InvokeContentFilteredError),  # 10013
]


@pytest.mark.parametrize(("status", "kind", "expected"), ERRORS)
async def test_error_bodies_with_spark_codes(
    rt: ModelRuntime, upstream: Any, status: int, kind: str | None, expected: type[InvokeError]
) -> None:
    upstream.faults.push(Fault(status=status, error_type=kind))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeError) as info:
        await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=False)
    assert type(info.value) is expected and info.value.status == status and "(sid: " in str(info.value)


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "lite"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_password": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
