"""MiniMax (openai_chat family + its own embeddings code) against its simulator profile over real sockets.

The quirks come from platform.minimaxi.com / platform.minimax.io and are sent by
``arun.testing.profiles.minimax``: ``<think>`` inline in the content of the M2.x models,
``base_resp`` errors in 200 answers, streams and error bodies, and the native embeddings API
(``texts`` + ``type`` in, ``vectors`` out, ``GroupId`` in the query).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeContentFilteredError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.embedding import EmbeddingInputType
from arun.errors import InvokeError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_tokens, embedding_vector

PROVIDER = "minimax"
MODEL = "MiniMax-M2.7"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    # Dify's form stores the host without /v1; the block appends it
    return {"minimax_api_key": VALID_KEY, "endpoint_url": f"{upstream.url}/p/minimax", "minimax_group_id": "1948"}


async def drain(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


def test_only_the_embedding_model_has_code() -> None:
    import arun.providers

    folder = next(Path(p) / PROVIDER for p in arun.providers.__path__ if (Path(p) / PROVIDER).is_dir())
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py")) == ["text_embedding/text_embedding.py"]


async def test_predefined_models_carry_the_documented_limits_and_prices(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["MiniMax-M3", "MiniMax-M2.7", "MiniMax-M2.7-highspeed", "MiniMax-M2.5"]
    m3 = models["MiniMax-M3"]
    assert m3.property("context_size") == 1000000
    assert next(r for r in m3.parameter_rules if r.name == "max_tokens").max == 524288
    assert "vision" in [f.value for f in m3.features or []]
    m27 = models["MiniMax-M2.7"].pricing
    assert m27 is not None and (m27.input, m27.output, m27.unit, m27.currency) == (
        Decimal("2.1"), Decimal("8.4"), Decimal("0.000001"), "RMB",
    )  # fmt: skip
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    (embo,) = await emb.predefined_models()
    assert (embo.model, embo.property("context_size"), embo.property("max_chunks")) == ("embo-01", 4096, 1)


async def test_request_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    assert llm.endpoint.url({}) == "https://api.minimaxi.com/v1/chat/completions"
    assert llm.endpoint.url({"endpoint_url": "https://api.minimax.io"}) == "https://api.minimax.io/v1/chat/completions"
    await llm.invoke(MODEL, creds, MESSAGES, {"max_tokens": 64, "temperature": 0.7}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "minimax")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["max_completion_tokens"] == 64 and "max_tokens" not in req.json  # max_tokens is deprecated
    assert (req.json["model"], req.json["temperature"]) == (MODEL, 0.7)


async def test_inline_think_tags_become_reasoning(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, creds, MESSAGES, {}, stream=False)
    assert whole.reasoning_content == "The user wants a short answer."
    assert whole.message.content and "<think>" not in whole.message.content and "short answer" not in whole.message.content
    chunks = await drain(await llm.invoke(MODEL, creds, MESSAGES, {}, stream=True))
    streamed = "".join(c.delta.message.content or "" for c in chunks)
    assert streamed == whole.message.content and "think>" not in streamed
    assert chunks[-1].delta.usage is not None and chunks[-1].delta.usage.completion_tokens == whole.usage.completion_tokens


BASE_RESP = [
    (1008, InvokeQuotaExhaustedError),
    (2056, InvokeQuotaExhaustedError),
    (1004, InvokeAuthorizationError),
    (2049, InvokeAuthorizationError),
    (1002, InvokeRateLimitError),
    (1039, InvokeRateLimitError),  # a token rate limit ("retry later"), not a context overflow
    (1026, InvokeContentFilteredError),
    (1000, InvokeServerUnavailableError),
]


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
@pytest.mark.parametrize(("code", "expected"), BASE_RESP)
async def test_base_resp_in_a_200_answer_is_a_typed_error(
    rt: ModelRuntime, creds: dict[str, str], stream: bool, code: int, expected: type[InvokeError]
) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    messages = [UserPromptMessage(content=f"hello [sim:base_resp:{code}]")]
    with pytest.raises(InvokeError) as info:
        result = await llm.invoke(MODEL, creds, messages, {}, stream=stream)
        if stream:
            await drain(result)
    assert type(info.value) is expected
    assert info.value.status is None and f"status_code {code}" in str(info.value)


async def test_error_event_inside_a_stream(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds, MESSAGES, {}, stream=True)
    with pytest.raises(InvokeContentFilteredError) as info:
        await drain(stream)
    assert "output new_sensitive" in str(info.value)


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [(429, None, InvokeRateLimitError), (429, "insufficient_quota", InvokeQuotaExhaustedError), (401, None, InvokeAuthorizationError)],
)
async def test_error_statuses_with_base_resp_bodies(
    rt: ModelRuntime, creds: dict[str, str], upstream: Any, status: int, kind: str | None, expected: type[InvokeError]
) -> None:
    upstream.faults.push(Fault(status=status, error_type=kind))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeError) as info:
        await llm.invoke(MODEL, creds, MESSAGES, {}, stream=False)
    assert type(info.value) is expected and info.value.status == status
    assert '"base_resp"' in (info.value.body or "")


async def test_validate_credentials(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, creds)
    assert upstream.last_request.json["model"] == "MiniMax-M2.7"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {**creds, "minimax_api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)


# -- embeddings ----------------------------------------------------------------------------------


async def test_native_embeddings_request_and_answer(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    texts = ["first text", "second text here"]
    result = await emb.invoke("embo-01", creds, texts)
    assert result.embeddings == [embedding_vector(f"db:{t}", 8) for t in texts]
    assert result.usage.tokens == embedding_tokens(texts) == 5
    assert result.usage.total_price == Decimal("5") * Decimal("0.5") * Decimal("0.000001")
    reqs = [r for r in upstream.requests if r.path == "/v1/embeddings"]
    assert [r.json for r in reqs] == [  # max_chunks 1: one text per request
        {"model": "embo-01", "texts": ["first text"], "type": "db"},
        {"model": "embo-01", "texts": ["second text here"], "type": "db"},
    ]
    assert reqs[0].query == {"GroupId": "1948"} and reqs[0].headers["Authorization"] == f"Bearer {VALID_KEY}"
    query = await emb.invoke("embo-01", creds, ["a question"], input_type=EmbeddingInputType.QUERY)
    assert upstream.last_request.json["type"] == "query"
    assert query.embeddings == [embedding_vector("query:a question", 8)]
    await emb.invoke("embo-01", {k: v for k, v in creds.items() if k != "minimax_group_id"}, ["x"])
    assert upstream.last_request.query == {}


async def test_embedding_errors_are_typed(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    with pytest.raises(InvokeQuotaExhaustedError):  # a 200 answer with base_resp 1008
        await emb.invoke("embo-01", creds, ["[sim:base_resp:1008]"])
    with pytest.raises(InvokeAuthorizationError):
        await emb.invoke("embo-01", {**creds, "minimax_api_key": "invalid-key"}, ["a"])
    upstream.faults.push(Fault(status=429, retry_after=3), path="/v1/embeddings")
    with pytest.raises(InvokeRateLimitError) as info:
        await emb.invoke("embo-01", creds, ["a"])
    assert info.value.retry_after == 3.0
    upstream.faults.push(Fault(malformed=True), path="/v1/embeddings")
    with pytest.raises(InvokeServerUnavailableError):
        await emb.invoke("embo-01", creds, ["a"])
    upstream.faults.push(Fault(body=b'{"vectors": [], "total_tokens": 0, "base_resp": {"status_code": 0}}'), path="/v1/embeddings")
    with pytest.raises(InvokeServerUnavailableError) as missing:
        await emb.invoke("embo-01", creds, ["a"])
    assert "0 vectors for 1 texts" in str(missing.value)
