"""Xinference (customizable-model; two small code files) against its simulator profile over real sockets.

The schema of a user-added LLM or embedding model is read from ``GET /v1/models/{model_uid}``
(the profile's :data:`~arun.testing.profiles.xinference.MODELS` is the simulated cluster); the
quirks the profile sends come from ``xorbitsai/inference`` (see its docstring): FastAPI
``{"detail": ...}`` errors, sse-starlette CRLF framing with ``: ping`` comments, a bare-string
error inside a stream, Cohere-shaped rerank answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    PromptMessageTool,
    UserPromptMessage,
)
from arun.entities.model import FetchFrom, ModelFeature, ModelPropertyKey
from arun.errors import InvokeTimeoutError
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import audio_bytes
from arun.wire.client import HttpConfig

PROVIDER = "xinference"
MODEL = "my-qwen"
MESSAGES = [UserPromptMessage(content="What is the weather in Paris today?")]
TOOL = PromptMessageTool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
FULL_FORM = {
    "mode": "chat",
    "context_size": "8192",
    "function_calling_type": "tool_call",
    "stream_function_calling": "supported",
    "vision_support": "no_support",
}


def creds(upstream: Any, uid: str = "qwen2.5-instruct", **extra: str) -> dict[str, str]:
    return {"server_url": f"{upstream.url}/p/xinference", "model_uid": uid, "api_key": VALID_KEY, "invoke_timeout": "60", **extra}


def describes(upstream: Any) -> int:
    return sum(1 for r in upstream.requests if r.method == "GET")


def test_code_only_where_behaviour_differs() -> None:
    import arun.providers

    folder = next(Path(p) / PROVIDER for p in arun.providers.__path__ if (Path(p) / PROVIDER).is_dir())
    code = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py"))
    assert code == ["llm/llm.py", "text_embedding/text_embedding.py"]


async def test_llm_schema_is_read_from_the_model_description(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    schema = await llm.get_model_schema(MODEL, creds(upstream))
    assert schema is not None and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL
    assert schema.property(ModelPropertyKey.MODE) == "chat"
    assert schema.property(ModelPropertyKey.CONTEXT_SIZE) == 32768  # the description's context_length
    assert set(schema.features or []) == {ModelFeature.TOOL_CALL, ModelFeature.MULTI_TOOL_CALL, ModelFeature.STREAM_TOOL_CALL}
    rules = {r.name: r for r in schema.parameter_rules}
    assert (rules["max_tokens"].max, rules["max_tokens"].default) == (32768, 512)
    assert (rules["presence_penalty"].min, rules["presence_penalty"].max) == (-2.0, 2.0)
    assert rules["think"].type.value == "boolean"
    req = upstream.last_request
    assert (req.method, req.path, req.key) == ("GET", "/v1/models", VALID_KEY)


async def test_vision_and_generate_abilities(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    vl = await llm.get_model_schema("vl", creds(upstream, "qwen2-vl-instruct"))
    assert vl is not None and vl.features == [ModelFeature.VISION]
    base = await llm.get_model_schema("base", creds(upstream, "llama-2"))
    assert base is not None and base.property(ModelPropertyKey.MODE) == "completion"
    assert base.property(ModelPropertyKey.CONTEXT_SIZE) == 4096
    result = await llm.invoke("base", creds(upstream, "llama-2"), MESSAGES, {"max_tokens": 16}, stream=False)
    assert result.message.content
    assert upstream.last_request.path == "/v1/completions" and upstream.last_request.json["model"] == "llama-2"


async def test_chat_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(MODEL, creds(upstream), MESSAGES, {"think": False, "max_tokens": 64}, [TOOL], stream=False)
    req = upstream.last_request
    assert (req.method, req.path, req.profile) == ("POST", "/v1/chat/completions", "xinference")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["model"] == "qwen2.5-instruct"  # the uid, not the workspace's model name
    assert req.json["enable_thinking"] is False and "think" not in req.json
    assert req.json["tools"][0]["function"]["name"] == "get_weather"
    assert [c.function.name for c in result.message.tool_calls] == ["get_weather"]


async def test_a_model_without_the_tools_ability_is_sent_no_tools(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("vl", creds(upstream, "qwen2-vl-instruct"), MESSAGES, {}, [TOOL], stream=False)
    assert "tools" not in upstream.last_request.json


async def test_the_description_is_read_once_per_model(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    for stream in (False, True, False):
        result = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=stream)
        if stream:
            await result.collect()
    assert describes(upstream) == 1


async def test_form_values_override_the_description(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    partial = await llm.get_model_schema(MODEL, creds(upstream, context_size="1000", vision_support="support"))
    assert partial is not None and partial.property(ModelPropertyKey.CONTEXT_SIZE) == 1000
    assert next(r for r in partial.parameter_rules if r.name == "max_tokens").max == 1000
    assert ModelFeature.VISION in (partial.features or []) and ModelFeature.TOOL_CALL in (partial.features or [])
    assert describes(upstream) == 1
    # every field set: no description needed, not even for a uid the server does not know
    full = await llm.get_model_schema(MODEL, creds(upstream, "not-launched", **FULL_FORM))
    assert full is not None and full.property(ModelPropertyKey.CONTEXT_SIZE) == 8192
    assert describes(upstream) == 1


async def test_unknown_uid_is_a_typed_error_and_fails_validation(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeBadRequestError) as info:
        await llm.invoke(MODEL, creds(upstream, "nope"), MESSAGES, {}, stream=False)
    assert info.value.status == 400 and "Model not found in the model list, uid: nope" in str(info.value)
    assert (info.value.provider, info.value.model) == (PROVIDER, MODEL)
    with pytest.raises(CredentialsValidateFailedError) as failed:
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, creds(upstream, "nope"))
    assert isinstance(failed.value.__cause__, InvokeBadRequestError)


async def test_a_model_still_launching_is_unavailable_with_retry_after(rt: ModelRuntime, upstream: Any) -> None:
    from arun.testing.profiles.xinference import LOADING

    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeServerUnavailableError) as info:
        await llm.invoke(MODEL, creds(upstream, LOADING), MESSAGES, {}, stream=True)
    assert info.value.status == 503 and info.value.retry_after == 30
    assert "Model is loading, please retry later" in str(info.value)


@pytest.mark.parametrize("uid", ["bge-m3", "whisper-large-v3"])
async def test_a_uid_that_is_not_an_llm_is_refused(rt: ModelRuntime, upstream: Any, uid: str) -> None:
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.model_credentials_validate(PROVIDER, "llm", MODEL, creds(upstream, uid))
    assert "not an LLM" in str(info.value)


@pytest.mark.parametrize("uid", ["a/b", "x?y", "x#y", ""])
async def test_uids_that_break_the_url_are_refused(rt: ModelRuntime, upstream: Any, uid: str) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(CredentialsValidateFailedError):
        await llm.get_model_schema(MODEL, creds(upstream, uid))
    assert upstream.requests == type(upstream.requests)()  # nothing was sent


async def test_error_bodies_are_fastapi_details(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.get_model_schema(MODEL, creds(upstream))  # described: the faults below hit the chat call
    upstream.faults.push(Fault(status=429))
    with pytest.raises(InvokeRateLimitError) as limited:
        await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=False)
    assert "Rate limit reached for the model. Request limit 1 for the model: qwen2.5-instruct" in str(limited.value)
    assert limited.value.body == '{"detail":"Rate limit reached for the model. Request limit 1 for the model: qwen2.5-instruct"}'
    with pytest.raises(InvokeAuthorizationError) as denied:
        await llm.invoke(MODEL, creds(upstream, api_key="invalid-key"), MESSAGES, {}, stream=False)
    assert denied.value.status == 401 and "Could not validate credentials" in str(denied.value)


async def test_stream_is_crlf_framed_with_pings_and_still_parses(rt: ModelRuntime, upstream: Any) -> None:
    body = {"model": "qwen2.5-instruct", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with aiohttp.ClientSession() as http, http.post(
        f"{upstream.url}/p/xinference/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {VALID_KEY}"}
    ) as resp:
        raw = await resp.read()
    assert raw.startswith(b": ping - ") and b"\r\n\r\ndata: {" in raw and raw.endswith(b"data: [DONE]\r\n\r\n")
    llm = rt.get_model_instance(PROVIDER, "llm")
    whole = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=False)
    streamed = await (await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)).collect()
    assert streamed.message.content == whole.message.content and streamed.usage.completion_tokens > 0


async def test_bare_string_error_inside_a_stream_is_a_typed_error(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.get_model_schema(MODEL, creds(upstream))
    upstream.faults.push(Fault(error_event_after=2, message="CUDA out of memory"))
    stream = await llm.invoke(MODEL, creds(upstream), MESSAGES, {}, stream=True)
    with pytest.raises(InvokeServerUnavailableError) as info:
        await stream.collect()
    assert "CUDA out of memory" in str(info.value) and "malformed" not in str(info.value)


async def test_invoke_timeout_bounds_the_first_byte(upstream: Any) -> None:
    async with ModelRuntime(http=HttpConfig(first_byte_timeout=30)) as rt:
        llm = rt.get_model_instance(PROVIDER, "llm")
        fast = creds(upstream, invoke_timeout="1", **FULL_FORM)
        upstream.faults.push(Fault(first_byte_delay=1.5))
        with pytest.raises(InvokeTimeoutError):
            await llm.invoke(MODEL, fast, MESSAGES, {}, stream=False)
        assert rt.http.acquired_connections() == 0
    async with ModelRuntime(http=HttpConfig(first_byte_timeout=0.3)) as rt:
        llm = rt.get_model_instance(PROVIDER, "llm")
        upstream.faults.push(Fault(first_byte_delay=1.5))
        with pytest.raises(InvokeTimeoutError):  # 60 s in the form never loosens the runtime's 0.3 s
            await (await llm.invoke(MODEL, creds(upstream, **FULL_FORM), MESSAGES, {}, stream=True)).collect()


async def test_embedding_context_size_comes_from_max_tokens(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    schema = await emb.get_model_schema("m3", creds(upstream, "bge-m3"))
    assert schema is not None
    assert (schema.property(ModelPropertyKey.CONTEXT_SIZE), schema.property(ModelPropertyKey.MAX_CHUNKS)) == (8192, 1)
    result = await emb.invoke("m3", creds(upstream, "bge-m3"), ["hello world", "second text"])
    assert len(result.embeddings) == 2 and result.usage.tokens > 0
    req = upstream.last_request
    assert (req.path, req.json["model"]) == ("/v1/embeddings", "bge-m3")
    assert "encoding_format" not in req.json  # Xinference's request has no such field
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.model_credentials_validate(PROVIDER, "text-embedding", "m3", creds(upstream, "qwen2.5-instruct"))
    assert "is a LLM model, not an embedding model" in str(info.value)


async def test_rerank_asks_for_documents_and_reads_cohere_shape(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    docs = ["Paris is the capital of France.", "Berlin is in Germany.", "The capital of France is large."]
    result = await rr.invoke("rr", creds(upstream, "bge-reranker-v2-m3"), "capital of France", docs, top_n=2)
    req = upstream.last_request
    assert (req.path, req.json["model"], req.json["return_documents"], req.json["top_n"]) == (
        "/v1/rerank", "bge-reranker-v2-m3", True, 2,
    )  # fmt: skip
    assert [d.index for d in result.docs] == [0, 2] and result.docs[0].text == docs[0]


async def test_rerank_without_documents_in_the_answer_keeps_the_sent_text(upstream: Any) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{upstream.url}/p/xinference/v1/rerank",
        json={"model": "bge-reranker-v2-m3", "query": "France", "documents": ["France", "Spain"]},
        headers={"Authorization": f"Bearer {VALID_KEY}"},
    ) as resp:
        answer = await resp.json()
    assert set(answer) == {"id", "results", "meta"} and answer["results"][0]["document"] is None
    from arun.protocols.rerank import parse_rerank_response

    docs, _ = parse_rerank_response(PROVIDER, msgspec_encode(answer), ["France", "Spain"])
    assert [(d.index, d.text) for d in docs] == [(0, "France"), (1, "Spain")]


async def test_speech_to_text_and_tts_use_the_uid(rt: ModelRuntime, upstream: Any) -> None:
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    text = await s2t.invoke("whisper", creds(upstream, "whisper-large-v3"), audio_bytes("hello there", 256, "wav"))
    assert text
    assert (upstream.last_request.path, upstream.last_request.form["model"]) == ("/v1/audio/transcriptions", "whisper-large-v3")
    tts = rt.get_model_instance(PROVIDER, "tts")
    voices = await tts.get_tts_model_voices("cosy", creds(upstream, "CosyVoice2-0.5B", voices="中文女,中文男"))
    assert [v["value"] for v in voices] == ["中文女", "中文男"]
    audio = await tts.invoke("cosy", None, creds(upstream, "CosyVoice2-0.5B", voices="中文女,中文男"), "你好", None)
    assert b"".join([chunk async for chunk in audio])
    assert (upstream.last_request.json["model"], upstream.last_request.json["voice"]) == ("CosyVoice2-0.5B", "中文女")


def msgspec_encode(obj: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(obj)
