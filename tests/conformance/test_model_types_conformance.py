"""The same promises from every embedding, rerank, speech-to-text, TTS and moderation provider,
against its simulator profile (cases from discovery, like the LLM suite): the call returns what
the contract says, error statuses map to their typed classes without leaking the key, a reset
is a connection error, and no connection stays checked out."""

from __future__ import annotations

from typing import Any

import pytest

from arun import (
    HttpConfig,
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
)
from arun.entities.model import ModelType
from arun.protocols.openai_misc import silent_wav as silent_wav_bytes
from arun.testing import Fault, UpstreamSimulator
from arun.testing.cases import VALID_KEY, provider_cases

TYPES = {ModelType.TEXT_EMBEDDING: True, ModelType.RERANK: True, ModelType.SPEECH2TEXT: True, ModelType.TTS: True, ModelType.MODERATION: True}
CASES = provider_cases(model_types=TYPES)
IDS = [c.id for c in CASES]

STATUS_CLASSES = {401: InvokeAuthorizationError, 429: InvokeRateLimitError, 500: InvokeServerUnavailableError, 503: InvokeServerUnavailableError}
DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "France is a country in Europe."]


@pytest.fixture
async def rt(request: Any, upstream: UpstreamSimulator):
    case = request.node.callspec.params["case"]
    config = HttpConfig(connect_timeout=2, first_byte_timeout=1.0, idle_timeout=1.0)
    async with ModelRuntime(http=config, **case.runtime_kwargs(upstream.url)) as runtime:
        yield runtime
        assert runtime.http.acquired_connections() == 0


async def call(rt: ModelRuntime, case: Any, upstream: UpstreamSimulator) -> Any:
    model = rt.get_model_instance(case.provider, case.model_type)
    creds = case.credentials(upstream.url)
    kind = case.model_type
    if kind is ModelType.TEXT_EMBEDDING:
        return await model.invoke(case.model, creds, ["hello world", "foo bar", "baz"])
    if kind is ModelType.RERANK:
        return await model.invoke(case.model, creds, "What is the capital of France?", DOCS, None, 2)
    if kind is ModelType.SPEECH2TEXT:
        return await model.invoke(case.model, creds, silent_wav_bytes(), filename="a.wav")
    if kind is ModelType.TTS:
        schema = await model.get_model_schema(case.model, creds)
        audio = await model.invoke(case.model, None, creds, "Hello there. How are you?", schema.property("default_voice"))
        return b"".join([piece async for piece in audio])
    return await model.invoke(case.model, creds, "a perfectly friendly sentence")


def test_every_model_type_of_every_provider_is_a_case() -> None:
    rt = ModelRuntime()
    expected = sorted(
        f"{name}-{kind.value}"
        for name in rt.provider_names()
        for kind in rt.get_provider_schema(name).supported_model_types
        if kind in TYPES
    )
    assert sorted(IDS) == expected


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_the_call_returns_what_the_contract_says(rt: ModelRuntime, upstream: UpstreamSimulator, case: Any) -> None:
    result = await call(rt, case, upstream)
    kind = case.model_type
    if kind is ModelType.TEXT_EMBEDDING:
        assert len(result.embeddings) == 3 and len({len(v) for v in result.embeddings}) == 1
        assert result.embeddings[0] != result.embeddings[1]  # one vector per text, not copies
        assert result.usage.total_tokens > 0
    elif kind is ModelType.RERANK:
        scores = [d.score for d in result.docs]
        assert 1 <= len(result.docs) <= 2 and scores == sorted(scores, reverse=True)
        assert all(d.text == DOCS[d.index] for d in result.docs)
    elif kind is ModelType.SPEECH2TEXT:
        assert isinstance(result, str)
    elif kind is ModelType.TTS:
        assert isinstance(result, bytes) and len(result) > 0
    else:
        assert result is False


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("status", sorted(STATUS_CLASSES))
async def test_error_status_maps_to_class(rt: ModelRuntime, upstream: UpstreamSimulator, case: Any, status: int) -> None:
    upstream.faults.push(Fault(status=status, retry_after=2 if status == 429 else None), times=None)
    with pytest.raises(STATUS_CLASSES[status]) as info:
        await call(rt, case, upstream)
    error = info.value
    assert error.status == status and error.provider == case.provider
    assert VALID_KEY not in str(error) and VALID_KEY not in repr(error) and VALID_KEY not in (error.body or "")


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_reset_before_the_body_is_a_connection_error(rt: ModelRuntime, upstream: UpstreamSimulator, case: Any) -> None:
    upstream.faults.push(Fault(disconnect_after=0), times=None)
    with pytest.raises(InvokeConnectionError):
        await call(rt, case, upstream)
