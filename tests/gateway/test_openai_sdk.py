"""The official ``openai`` SDK against the running gateway, every OpenAI route, stream and not.

Strict validation: every JSON body (and every streamed chunk) the gateway sends is validated
with the SDK's own pydantic models (``Model.model_validate``, which checks types and
``Literal`` values, unlike the SDK's lenient construction), and what the upstream simulator
received is checked too.  Expected numbers come from the simulator's public formulas
(``arun.testing.content``).
"""

from __future__ import annotations

import base64
import json
from array import array
from typing import Any

import aiohttp
import openai
import pytest
from openai.types import Completion, CreateEmbeddingResponse, ModerationCreateResponse
from openai.types.audio import Transcription
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from arun.testing.content import embedding_vector

TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
]  # fmt: skip
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there friend"}]


def strict(model: Any, raw: Any) -> Any:
    """Validate a body with the SDK's own model (types, Literal values); returns the model."""
    return model.model_validate(raw if isinstance(raw, dict) else json.loads(raw))


async def test_chat_non_stream(gateway):
    client = gateway.openai()
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=50)
    assert raw.status_code == 200 and raw.headers["x-request-id"]
    body = json.loads(raw.text)
    completion = strict(ChatCompletion, body)
    assert completion.object == "chat.completion" and completion.model == "gpt-4o"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant" and choice.message.content
    assert completion.usage is not None and completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    parsed = raw.parse()
    assert parsed.choices[0].message.content == choice.message.content
    sent = gateway.sim.last_request.json
    assert sent["model"] == "gpt-4o" and sent["max_tokens"] == 50 and sent["stream"] is False
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


async def test_chat_stream_with_usage_validates_every_chunk(gateway):
    client = gateway.openai()
    stream = await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO, stream=True,
                                                  stream_options={"include_usage": True})  # fmt: skip
    chunks = [c async for c in stream]
    for c in chunks:
        strict(ChatCompletionChunk, c.model_dump(exclude_unset=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None and usage_chunk.usage.completion_tokens > 0
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # streamed, not one burst


async def test_chat_stream_raw_wire_ends_with_done(gateway):
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway.base + "/chat/completions", headers={"Authorization": f"Bearer {gateway.key}"},
                             json={"model": "gpt-4o", "messages": HELLO, "stream": True}) as resp:  # fmt: skip
            assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
            body = await resp.read()
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    for e in events[:-1]:
        assert e.startswith(b"data: ")
        strict(ChatCompletionChunk, json.loads(e[6:]))


async def test_parallel_tool_calls_stream_incrementally_by_index(gateway):
    client = gateway.openai()
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Paris"}], tools=TOOLS, stream=True
    )
    chunks = [c async for c in stream]
    for c in chunks:
        strict(ChatCompletionChunk, c.model_dump(exclude_unset=True))
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    # incremental: the arguments of each call arrive in several fragments, not in one burst at the end
    by_index: dict[int, list[Any]] = {}
    for d in deltas:
        by_index.setdefault(d.index, []).append(d)
    assert sorted(by_index) == [0, 1]
    calls = []
    for i in (0, 1):
        parts = by_index[i]
        assert parts[0].id and parts[0].function.name and parts[0].type == "function"
        assert len(parts) > 1 and all(p.id is None and p.function.name is None for p in parts[1:])
        calls.append((parts[0].function.name, json.loads("".join(p.function.arguments or "" for p in parts))))
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"})]
    tool_chunks = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.tool_calls]
    assert len(tool_chunks) > 2  # several chunks carry tool deltas
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


async def test_tool_calls_non_stream_and_the_tool_result_turn(gateway):
    client = gateway.openai()
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather in Paris"}], tools=TOOLS[:1],
        tool_choice="auto", parallel_tool_calls=True,
    )  # fmt: skip
    completion = strict(ChatCompletion, raw.text)
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    sent = gateway.sim.last_request.json
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True  # passed through to the OpenAI family
    follow = await client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "user", "content": "Weather in Paris"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ], tools=TOOLS[:1])  # fmt: skip
    assert "sunny, 21C" in (follow.choices[0].message.content or "")
    sent = gateway.sim.last_request.json
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.id and sent["messages"][2]["role"] == "tool"


async def test_response_format_vision_stop_and_seed(gateway):
    client = gateway.openai()
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    completion = await client.chat.completions.create(
        model="gpt-4o", seed=7, stop=["END"], temperature=0.3,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                               {"type": "image_url", "image_url": {"url": png, "detail": "low"}}]}],
    )  # fmt: skip
    json.loads(completion.choices[0].message.content)  # the simulator answers JSON in JSON mode
    sent = gateway.sim.last_request.json
    assert sent["response_format"]["type"] == "json_schema" and sent["response_format"]["json_schema"]["name"] == "answer"
    assert sent["stop"] == ["END"] and sent["seed"] == 7 and sent["temperature"] == 0.3
    parts = sent["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": png, "detail": "low"}}


async def test_n_other_than_one_is_refused_naming_the_parameter(gateway):
    with pytest.raises(openai.BadRequestError) as info:
        await gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO, n=2)
    assert info.value.status_code == 400 and info.value.param == "n"


async def test_parameter_validation_names_the_parameter(gateway):
    with pytest.raises(openai.BadRequestError) as info:
        await gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO, temperature=9)
    assert info.value.param == "temperature" and info.value.body["type"] == "invalid_request_error"


async def test_completions_stream_and_not(gateway):
    client = gateway.openai()
    raw = await client.completions.with_raw_response.create(model="gpt-4o-mini", prompt="Say hello", max_tokens=20)
    done = strict(Completion, raw.text)
    assert done.object == "text_completion" and done.choices[0].text and done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.total_tokens > 0
    stream = await client.completions.create(model="gpt-4o-mini", prompt="Say hello", stream=True,
                                             stream_options={"include_usage": True})  # fmt: skip
    chunks = [c async for c in stream]
    for c in chunks:  # as OpenAI streams them: finish_reason is null until the last text chunk
        if not c.choices or c.choices[0].finish_reason is not None:
            strict(Completion, c.model_dump(exclude_unset=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == done.choices[0].text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == done.usage.completion_tokens


async def test_embeddings_float_base64_and_dimensions(gateway):
    client = gateway.openai()
    texts = ["first text", "second text here"]
    raw = await client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=texts, encoding_format="float")
    body = strict(CreateEmbeddingResponse, raw.text)
    assert [d.index for d in body.data] == [0, 1]
    assert body.data[0].embedding == pytest.approx(embedding_vector("first text", 8), rel=1e-6)
    assert body.usage.prompt_tokens > 0
    # the SDK's default: base64 on the wire, decoded by the SDK
    decoded = await client.embeddings.create(model="openai/text-embedding-3-small", input=texts)
    assert decoded.data[1].embedding == pytest.approx(embedding_vector("second text here", 8), rel=1e-6)
    raw64 = await client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="x", encoding_format="base64")
    vec = array("f", base64.b64decode(json.loads(raw64.text)["data"][0]["embedding"]))
    assert list(vec) == pytest.approx(embedding_vector("x", 8), rel=1e-6)
    dims = await client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=4, encoding_format="float")
    assert len(dims.data[0].embedding) == 4 and gateway.sim.last_request.json["dimensions"] == 4


async def test_rerank_jina_cohere_shape(gateway):
    client = gateway.openai()
    docs = ["Paris is the capital of France.", "Bananas are yellow.", "France borders Spain."]
    body = await client.post("/rerank", cast_to=object, body={
        "model": "jina-reranker-v2", "query": "capital of France", "documents": docs, "top_n": 2})  # fmt: skip
    assert len(body["results"]) == 2 and body["results"][0]["relevance_score"] >= body["results"][1]["relevance_score"]
    assert body["results"][0]["document"]["text"] == docs[body["results"][0]["index"]]
    assert gateway.sim.last_request.path == "/v1/rerank" and gateway.sim.last_request.json["top_n"] == 2


async def test_audio_transcription_multipart(gateway):
    client = gateway.openai()
    audio = b"ID3" + bytes(range(256)) * 20
    raw = await client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("q.mp3", audio, "audio/mpeg"))
    text = strict(Transcription, raw.text).text
    assert text
    form = gateway.sim.last_request.form
    assert form["file"]["size"] == len(audio) and form["model"] == "whisper-1"
    plain = await client.audio.transcriptions.create(model="whisper-1", file=("q.mp3", audio), response_format="text")
    assert str(plain).strip() == text


async def test_audio_speech_streams_the_audio(gateway):
    client = gateway.openai()
    async with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Hello world, this is the gateway.") as resp:
        assert resp.headers["content-type"] == "audio/mpeg"
        pieces = [p async for p in resp.iter_bytes()]
    audio = b"".join(pieces)
    assert len(audio) > 1000
    assert gateway.sim.last_request.path == "/v1/audio/speech"


async def test_moderations(gateway):
    client = gateway.openai()
    raw = await client.moderations.with_raw_response.create(model="omni-moderation-latest",
                                                             input=["I love sunny afternoons.", "I will kill the process and hate the bugs."])  # fmt: skip
    body = strict(ModerationCreateResponse, raw.text)
    assert [r.flagged for r in body.results] == [False, True]


async def test_models_list_and_retrieve_with_schema_facts(gateway):
    client = gateway.openai()
    page = await client.models.list()
    ids = {m.id for m in page.data}
    assert {"openai/gpt-4o", "gpt-4o", "anthropic/claude-sonnet-4-20250514", "jina/jina-reranker-v2-base-multilingual"} <= ids
    gpt = next(m for m in page.data if m.id == "openai/gpt-4o")
    meta = gpt.model_extra["arun"]
    assert meta["context_size"] == 128000 and meta["mode"] == "chat" and "vision" in meta["features"]
    assert meta["pricing"]["input"] == "2.50" and meta["pricing"]["currency"] == "USD"
    assert any(r["name"] == "max_tokens" and r["max"] == 16384 for r in meta["parameter_rules"])
    alias = await client.models.retrieve("gpt-4o")
    assert alias.model_extra["arun"]["alias_of"] == "openai/gpt-4o"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope/nothing")
