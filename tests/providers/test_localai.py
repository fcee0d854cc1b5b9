"""LocalAI (customizable-model; one small code file) against its simulator profile over real sockets.

The profile (:mod:`arun.testing.profiles.localai`) sends LocalAI's error bodies (the status as
an integer ``code``, an empty ``type``), its in-stream error event followed by ``[DONE]``,
and Jina-shaped rerank answers with ``prompt_tokens`` in the usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeServerUnavailableError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.entities.model import ModelPropertyKey
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import audio_bytes

PROVIDER = "localai"
MODEL = "llama-3.2-1b-instruct:q4_k_m"
MESSAGES = [UserPromptMessage(content="What is the weather in Paris today?")]
TOOL = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def creds(upstream: Any, **extra: str) -> dict[str, str]:
    return {"server_url": f"{upstream.url}/p/localai", "api_key": VALID_KEY, **extra}


def test_code_only_where_behaviour_differs() -> None:
    import arun.providers

    folder = next(Path(p) / PROVIDER for p in arun.providers.__path__ if (Path(p) / PROVIDER).is_dir())
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == ["llm/llm.py", "localai.yaml"]


async def test_completion_type_chooses_the_mode_and_the_path(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    chat = await llm.get_model_schema(MODEL, creds(upstream))  # Dify's default: chat_completion
    assert chat is not None and chat.property(ModelPropertyKey.MODE) == "chat"
    assert chat.property(ModelPropertyKey.CONTEXT_SIZE) == 2048
    assert next(r for r in chat.parameter_rules if r.name == "max_tokens").max == 2048
    await llm.invoke(MODEL, creds(upstream), MESSAGES, {"max_tokens": 32}, stream=False)
    req = upstream.last_request
    assert (req.path, req.json["model"], req.headers["Authorization"]) == ("/v1/chat/completions", MODEL, f"Bearer {VALID_KEY}")
    result = await llm.invoke(MODEL, creds(upstream, completion_type="completion"), MESSAGES, {}, stream=False)
    assert result.message.content and upstream.last_request.path == "/v1/completions"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await llm.get_model_schema(MODEL, creds(upstream, completion_type="chat"))
    assert "completion_type" in str(info.value)


async def test_tools_only_when_the_form_says_so(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, [TOOL], stream=False)
    assert "tools" not in upstream.last_request.json
    result = await llm.invoke(MODEL, creds(upstream, function_calling_type="tool_call"), MESSAGES, {}, [TOOL], stream=False)
    assert upstream.last_request.json["tools"][0]["function"]["name"] == "get_weather"
    assert [c.function.name for c in result.message.tool_calls] == ["get_weather"]


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "stream"])
async def test_error_bodies(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as denied:
        await llm.invoke(MODEL, creds(upstream, api_key="invalid-key"), MESSAGES, {}, stream=stream)
    assert "An authentication key is required" in str(denied.value)
    assert msgspec.json.decode(denied.value.body or "") == {
        "error": {"code": 401, "message": "An authentication key is required", "type": "invalid_request_error"}
    }
    # a model in its load cooldown: 503 with Retry-After (core/http/app.go applyModelLoadCooldown)
    upstream.faults.push(Fault(status=503, retry_after=5, message="model failed to load: cooling down"))
    with pytest.raises(InvokeServerUnavailableError) as cooling:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=stream)
    assert cooling.value.retry_after == 5 and "cooling down" in str(cooling.value)
    assert msgspec.json.decode(cooling.value.body or "")["error"] == {"code": 503, "message": "model failed to load: cooling down", "type": ""}


async def test_opaque_errors_have_no_body_and_are_still_typed(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(status=401, body=b""))  # LOCALAI_OPAQUE_ERRORS: status only
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as info:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=False)
    assert info.value.status == 401


async def test_stream_error_then_done_is_an_error_not_a_short_answer(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_event_after=2, message="backend died"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)
    with pytest.raises(InvokeServerUnavailableError) as info:
        await stream.collect()
    assert "backend died" in str(info.value)


async def test_embeddings_rerank_and_transcription(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("bert-embeddings", creds(upstream), ["first text", "second"])
    assert len(result.embeddings) == 2 and result.usage.tokens == 3
    schema = await emb.get_model_schema("bert-embeddings", creds(upstream))
    assert schema is not None and schema.property(ModelPropertyKey.CONTEXT_SIZE) == 512
    assert (upstream.last_request.path, upstream.last_request.json["input"]) == ("/v1/embeddings", ["first text", "second"])
    rr = rt.get_model_instance(PROVIDER, "rerank")
    docs = ["LocalAI runs models locally.", "Bananas are yellow."]
    ranked = await rr.invoke("jina-reranker-v1-base-en", creds(upstream), "run models locally", docs)
    assert (upstream.last_request.path, upstream.last_request.json["model"]) == ("/v1/rerank", "jina-reranker-v1-base-en")
    assert [d.index for d in ranked.docs] == [0, 1] and ranked.docs[0].score > ranked.docs[1].score
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    text = await s2t.invoke("whisper-1", creds(upstream), audio_bytes("good morning", 256, "wav"))
    assert text and upstream.last_request.path == "/v1/audio/transcriptions"
    assert upstream.last_request.form["model"] == "whisper-1"
