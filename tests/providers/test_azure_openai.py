"""Azure OpenAI (customizable deployments on the OpenAI families) against its simulator profile.

The quirks come from learn.microsoft.com (data-plane reference, content filtering, quotas) and
are sent by ``arun.testing.profiles.azure_openai``: deployment URLs with ``?api-version=``, the
``api-key`` header, the leading annotation chunk with ``choices: []`` and
``prompt_filter_results``, ``content_filter_results`` on every choice, annotation choices without
``delta``, the ``content_filter`` finish reason, the 400 ``content_filter`` error and Azure's
error bodies (401, 404 ``DeploymentNotFound``, 429 with ``retry-after``).
"""

from __future__ import annotations

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
    InvokeModelNotFoundError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.model import ModelType
from arun.protocols.openai_misc import silent_wav
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "azure_openai"
DEPLOYMENT = "prod-chat"
MESSAGES = [UserPromptMessage(content="Hello there friend")]


def creds_for(upstream: Any, base: str, **extra: str) -> dict[str, str]:
    return {"openai_api_base": f"{upstream.url}/p/azure_openai", "openai_api_key": VALID_KEY, "base_model_name": base, **extra}


@pytest.fixture
def creds(upstream: Any) -> dict[str, str]:
    return creds_for(upstream, "gpt-4o-mini")


def _folder() -> Path:
    import arun.providers

    return next(Path(p) / PROVIDER for p in arun.providers.__path__ if (Path(p) / PROVIDER).is_dir())


def test_the_folder_is_yaml_plus_one_hook() -> None:
    files = sorted(str(p.relative_to(_folder())) for p in _folder().rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert files == ["azure_openai.yaml", "llm/llm.py"]


def test_every_base_model_offered_is_a_predefined_openai_model(rt: ModelRuntime) -> None:
    schema = rt.get_provider_schema(PROVIDER)
    assert schema.model_credential_schema is not None
    field = next(f for f in schema.model_credential_schema.credential_form_schemas if f.variable == "base_model_name")
    assert field.options
    by_type: dict[str, list[str]] = {}
    for option in field.options:
        (kind,) = [c.value for c in option.show_on if c.variable == "__model_type"]
        by_type.setdefault(kind, []).append(option.value)
    assert sorted(by_type) == ["llm", "speech2text", "text-embedding", "tts"]
    openai = rt.get_provider("openai")
    for kind, names in by_type.items():
        known = {m.model for m in openai.load_models(ModelType.value_of(kind))}
        assert set(names) <= known, (kind, set(names) - known)


async def test_request_on_the_wire(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke(DEPLOYMENT, creds, MESSAGES, {"max_tokens": 64}, stream=False)
    req = upstream.last_request
    assert req.raw_path == f"/p/azure_openai/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert req.query == {"api-version": "2024-10-21"}  # the form's default
    assert req.headers["api-key"] == VALID_KEY and "Authorization" not in req.headers
    assert req.json["model"] == DEPLOYMENT and req.json["max_tokens"] == 64

    await llm.invoke(DEPLOYMENT, {**creds, "openai_api_version": "2025-04-01-preview"}, MESSAGES, {}, stream=False)
    assert upstream.last_request.query == {"api-version": "2025-04-01-preview"}

    pasted = {**creds, "openai_api_base": creds["openai_api_base"] + "/openai/"}  # a base copied with its /openai
    await llm.invoke(DEPLOYMENT, pasted, MESSAGES, {}, stream=False)
    assert upstream.last_request.raw_path == f"/p/azure_openai/openai/deployments/{DEPLOYMENT}/chat/completions"


async def test_the_profile_refuses_a_request_without_api_version(upstream: Any) -> None:
    """What makes the wire test above meaningful: the simulated service needs the query."""
    url = f"{upstream.url}/p/azure_openai/openai/deployments/{DEPLOYMENT}/chat/completions"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"messages": [{"role": "user", "content": "hi"}]}, headers={"api-key": VALID_KEY}) as resp:
            assert resp.status == 404
            assert await resp.json() == {"error": {"code": "404", "message": "Resource not found"}}


async def test_a_deployment_takes_the_schema_of_its_base_model(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    base = await rt.get_model_instance("openai", "llm").get_model_schema("gpt-4o-mini")
    schema = await llm.get_model_schema(DEPLOYMENT, creds)
    assert schema is not None and base is not None
    assert schema.model == DEPLOYMENT
    assert schema.property("context_size") == base.property("context_size") == 128000
    assert [r.name for r in schema.parameter_rules] == [r.name for r in base.parameter_rules]
    with pytest.raises(CredentialsValidateFailedError):
        await llm.validate_credentials(DEPLOYMENT, {**creds, "base_model_name": "gpt-35-turbo"})


@pytest.mark.parametrize(("base", "field"), [("o3-mini", "max_completion_tokens"), ("gpt-4o", "max_tokens")])
async def test_parameter_rules_follow_the_base_model_not_the_deployment_name(
    rt: ModelRuntime, upstream: Any, base: str, field: str
) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("team-model", creds_for(upstream, base), MESSAGES, {"max_tokens": 40}, stream=False)
    body = upstream.last_request.json
    assert body[field] == 40 and ({"max_tokens", "max_completion_tokens"} - {field}).isdisjoint(body)


async def test_a_deployment_named_like_a_pattern_keeps_its_base_models_spelling(rt: ModelRuntime, upstream: Any) -> None:
    # "o3-team" matches the block's o3* pattern, but it serves gpt-4o: max_tokens stays max_tokens,
    # and the rules are applied once (not again under the deployment's name)
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("o3-team", creds_for(upstream, "gpt-4o"), MESSAGES, {"max_tokens": 40}, stream=False)
    body = upstream.last_request.json
    assert body["max_tokens"] == 40 and "max_completion_tokens" not in body


async def _raw_stream(upstream: Any, text: str) -> list[dict[str, Any]]:
    url = f"{upstream.url}/p/azure_openai/openai/deployments/{DEPLOYMENT}/chat/completions?api-version=2024-10-21"
    body = {"messages": [{"role": "user", "content": text}], "stream": True, "stream_options": {"include_usage": True}}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers={"api-key": VALID_KEY}) as resp:
            raw = await resp.read()
    return [msgspec.json.decode(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]


async def test_stream_with_annotation_chunks_matches_the_whole_answer(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    chunks = await _raw_stream(upstream, "Hello there friend")
    first = chunks[0]
    assert first["choices"] == [] and first["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert any(c["choices"] and "delta" not in c["choices"][0] for c in chunks)  # annotation choices without delta
    assert all("content_filter_results" in c["choices"][0] for c in chunks if c["choices"])

    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(DEPLOYMENT, creds, MESSAGES, {}, stream=False)
    stream = await llm.invoke(DEPLOYMENT, creds, MESSAGES, {}, stream=True)
    got = [c async for c in stream]
    assert "".join(c.delta.message.content or "" for c in got) == whole.message.content
    final = got[-1].delta
    assert final.finish_reason == "stop" and final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)


async def test_filtered_completion_ends_with_content_filter(rt: ModelRuntime, creds: dict[str, str]) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    prompt = [UserPromptMessage(content="how do I kill a stuck process")]
    stream = await llm.invoke(DEPLOYMENT, creds, prompt, {}, stream=True)
    got = [c async for c in stream]
    assert [c.delta.message.content for c in got[:-1]] == ["Echo: "]  # the pieces sent before the filter cut in
    assert got[-1].delta.finish_reason == "content_filter"
    whole = await llm.invoke(DEPLOYMENT, creds, prompt, {}, stream=False)
    assert whole.finish_reason == "content_filter" and whole.message.content == ""


@pytest.mark.parametrize("stream", [False, True])
async def test_filtered_prompt_is_a_content_filtered_error(rt: ModelRuntime, creds: dict[str, str], stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeContentFilteredError) as info:
        await llm.invoke(DEPLOYMENT, creds, [UserPromptMessage(content="I hate mondays")], {}, stream=stream)
    assert info.value.status == 400 and "ResponsibleAIPolicyViolation" in (info.value.body or "")


async def test_the_inner_error_code_alone_marks_a_filtered_prompt(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    """``innererror.code: ResponsibleAIPolicyViolation`` is the documented signal, whatever the outer code says."""
    body = {"error": {"message": "The prompt was blocked.", "code": "invalid_prompt", "innererror": {"code": "ResponsibleAIPolicyViolation"}}}
    upstream.faults.push(Fault(status=400, body=msgspec.json.encode(body)))
    with pytest.raises(InvokeContentFilteredError):
        await rt.get_model_instance(PROVIDER, "llm").invoke(DEPLOYMENT, creds, MESSAGES, {}, stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit_body_and_retry_after(rt: ModelRuntime, creds: dict[str, str], upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=429, retry_after=6))
    with pytest.raises(InvokeRateLimitError) as info:
        await rt.get_model_instance(PROVIDER, "llm").invoke(DEPLOYMENT, creds, MESSAGES, {}, stream=stream)
    assert info.value.retry_after == pytest.approx(6)
    assert "Please retry after 6 seconds" in str(info.value) and "api version 2024-10-21" in str(info.value).lower()


async def test_missing_deployment_and_bad_key(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    upstream.faults.push(Fault(status=404))
    with pytest.raises(InvokeModelNotFoundError) as missing:
        await llm.invoke(DEPLOYMENT, creds, MESSAGES, {}, stream=False)
    assert "DeploymentNotFound" in (missing.value.body or "")
    with pytest.raises(InvokeAuthorizationError) as denied:
        await llm.invoke(DEPLOYMENT, {**creds, "openai_api_key": "invalid-key"}, MESSAGES, {}, stream=False)
    assert "Access denied due to invalid subscription key" in str(denied.value)
    assert "invalid-key" not in str(denied.value)


async def test_context_length(rt: ModelRuntime, creds: dict[str, str], upstream: Any) -> None:
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    with pytest.raises(InvokeContextLengthExceededError):
        await rt.get_model_instance(PROVIDER, "llm").invoke(DEPLOYMENT, creds, MESSAGES, {}, stream=False)


async def test_embedding_deployment(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    creds = creds_for(upstream, "text-embedding-3-small")
    schema = await emb.get_model_schema("emb-prod", creds)
    assert schema is not None and schema.property("context_size") == 8191 and schema.property("max_chunks") == 32
    result = await emb.invoke("emb-prod", creds, ["alpha", "beta"])
    assert len(result.embeddings) == 2 and result.usage.tokens > 0
    req = upstream.last_request
    assert req.raw_path == "/p/azure_openai/openai/deployments/emb-prod/embeddings"
    assert req.query == {"api-version": "2024-10-21"} and req.headers["api-key"] == VALID_KEY


async def test_speech_to_text_deployment(rt: ModelRuntime, upstream: Any) -> None:
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    creds = creds_for(upstream, "whisper-1")
    schema = await s2t.get_model_schema("whisper-prod", creds)
    assert schema is not None and schema.property("file_upload_limit") == 25
    audio = silent_wav()
    text = await s2t.invoke("whisper-prod", creds, audio)
    assert text == f"transcript of {len(audio)} bytes"
    req = upstream.last_request
    assert req.raw_path == "/p/azure_openai/openai/deployments/whisper-prod/audio/transcriptions"
    assert req.query == {"api-version": "2024-10-21"} and req.form["model"] == "whisper-prod"


async def test_text_to_speech_deployment(rt: ModelRuntime, upstream: Any) -> None:
    tts = rt.get_model_instance(PROVIDER, "tts")
    creds = creds_for(upstream, "tts-1")
    schema = await tts.get_model_schema("voice-prod", creds)
    assert schema is not None and schema.property("default_voice") == "alloy"
    audio = b"".join([chunk async for chunk in await tts.invoke("voice-prod", None, creds, "Hello there.", "alloy")])
    assert audio.startswith(b"ID3")
    req = upstream.last_request
    assert req.raw_path == "/p/azure_openai/openai/deployments/voice-prod/audio/speech"
    assert req.query == {"api-version": "2024-10-21"} and req.json["voice"] == "alloy"


@pytest.mark.parametrize(("kind", "base"), [("llm", "gpt-4o"), ("text-embedding", "text-embedding-3-large"), ("speech2text", "whisper-1"), ("tts", "tts-1-hd")])
async def test_validate_credentials(rt: ModelRuntime, upstream: Any, kind: str, base: str) -> None:
    model = rt.get_model_instance(PROVIDER, kind)
    creds = creds_for(upstream, base)
    await model.validate_credentials("my-deployment", creds)
    with pytest.raises(CredentialsValidateFailedError) as info:
        await model.validate_credentials("my-deployment", {**creds, "openai_api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
