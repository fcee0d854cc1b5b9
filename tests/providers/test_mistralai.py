"""Mistral AI (openai_chat with quirks + openai_embedding without ``user``) against its simulator profile.

The quirks come from docs.mistral.ai and client issue threads and are sent or enforced by
``arun.testing.profiles.mistralai``: fields outside Mistral's request schema are refused with a
422 ``extra_forbidden`` (so ``stream_options``, ``user`` and OpenAI's ``seed`` never go out; the
seed is ``random_seed``), usage arrives on the finishing chunk, error bodies are flat objects.
Mistral's form has no base-URL field, so the runtime's endpoint override points it at the simulator.
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
    InvokeBadRequestError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

PROVIDER = "mistralai"
PROFILE = "mistralai"
MODEL = "mistral-small-2506"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}


def test_the_folder_is_yaml_only() -> None:
    """The embedding family's ``no_user`` quirk replaced the one hook this folder had."""
    import arun.providers

    folder = next(Path(p) / PROVIDER for p in arun.providers.__path__ if (Path(p) / PROVIDER).is_dir())
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert [f for f in files if not f.endswith(".yaml")] == []


async def test_predefined_models_carry_the_listed_facts(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == ["mistral-medium-2508", "mistral-large-2512", "mistral-small-2506", "codestral-2508"]
    for name, (context, price_in, price_out) in {
        "mistral-medium-2508": (131_072, "0.4", "2"),
        "mistral-large-2512": (262_144, "0.5", "1.5"),
        "mistral-small-2506": (131_072, "0.1", "0.3"),
        "codestral-2508": (262_144, "0.3", "0.9"),
    }.items():
        m = models[name]
        assert m.property("context_size") == context
        assert m.pricing is not None and (m.pricing.input, m.pricing.output) == (Decimal(price_in), Decimal(price_out))
    assert "vision" not in [f.value for f in models["codestral-2508"].features or []]
    emb = await rt.get_model_instance(PROVIDER, "text-embedding").get_model_schema("mistral-embed")
    assert emb is not None and emb.property("context_size") == 8192
    assert emb.pricing is not None and emb.pricing.input == Decimal("0.1")


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    params = {"random_seed": 42, "safe_prompt": True, "max_tokens": 64}
    await llm.invoke(MODEL, CREDS, MESSAGES, params, stream=False, user="end-user-7")
    req = upstream.last_request
    assert req.raw_path == "/p/mistralai/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["random_seed"], req.json["safe_prompt"], req.json["max_tokens"]) == (42, True, 64)
    assert "user" not in req.json and "seed" not in req.json  # no_user; the seed is random_seed
    stream = await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True, user="end-user-7")
    _ = [c async for c in stream]
    assert "stream_options" not in upstream.last_request.json and "user" not in upstream.last_request.json


@pytest.mark.parametrize("field", ["stream_options", "user", "seed"])
async def test_fields_outside_the_schema_are_refused(upstream: Any, field: str) -> None:
    """What makes the quirks above matter: the simulated API refuses these fields as Mistral's does."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True, field: {"include_usage": True} if field == "stream_options" else 1}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{upstream.url}/p/mistralai/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {VALID_KEY}"}) as resp:
            assert resp.status == 422
            detail = (await resp.json())["message"]["detail"]
    assert detail[0]["type"] == "extra_forbidden" and detail[0]["loc"] == ["body", field]


async def test_a_refused_field_is_a_typed_bad_request(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeBadRequestError) as info:
        await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True, extra_body={"stream_options": {"include_usage": True}})
    assert info.value.status == 422 and "extra_forbidden" in (info.value.body or "")


async def test_stream_usage_rides_on_the_finishing_chunk(rt: ModelRuntime, upstream: Any) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there friend"}], "stream": True}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{upstream.url}/p/mistralai/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {VALID_KEY}"}) as resp:
            raw = await resp.read()
    chunks = [msgspec.json.decode(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]
    assert all(c["choices"] for c in chunks)  # no separate usage chunk
    assert [bool(c.get("usage")) for c in chunks] == [bool(c["choices"][0]["finish_reason"]) for c in chunks]

    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=False)
    got = [c async for c in await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=True)]
    assert "".join(c.delta.message.content or "" for c in got) == whole.message.content
    final = got[-1].delta.usage
    assert final is not None and (final.prompt_tokens, final.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert final.completion_tokens == chunks[-1]["usage"]["completion_tokens"]


@pytest.mark.parametrize("stream", [False, True])
async def test_flat_error_bodies(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    upstream.faults.push(Fault(status=429, retry_after=1))
    with pytest.raises(InvokeRateLimitError) as limited:
        await llm.invoke(MODEL, CREDS, MESSAGES, {}, stream=stream)
    assert "Rate limit exceeded" in str(limited.value) and limited.value.retry_after == pytest.approx(1)
    with pytest.raises(InvokeAuthorizationError) as denied:
        await llm.invoke(MODEL, {"api_key": "invalid-mistral"}, MESSAGES, {}, stream=stream)
    assert "Unauthorized" in str(denied.value) and "invalid-mistral" not in str(denied.value)


async def test_embeddings(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("mistral-embed", CREDS, ["alpha beta", "gamma"], user="end-user-7")
    assert len(result.embeddings) == 2 and result.usage.tokens > 0
    req = upstream.last_request
    assert req.raw_path == "/p/mistralai/v1/embeddings"
    assert req.json["model"] == "mistral-embed" and req.json["encoding_format"] == "float"
    assert "user" not in req.json


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "mistral-small-2506"  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
    await rt.get_model_instance(PROVIDER, "text-embedding").validate_credentials("mistral-embed", CREDS)
