from __future__ import annotations

import base64
import math
import struct

import aiohttp
from simhelpers import OPENAI_KEY, jloads, parse_sse

from arun.testing import SimulatorConfig, UpstreamSimulator
from arun.testing.content import embedding_vector, prompt_tokens

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"tz": {"type": "string"}, "utc": {"type": "boolean"}}}}},
]


def chat_body(**kw):
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Weather in Paris"}]}
    body.update(kw)
    return body


async def test_chat_non_stream(upstream, http):
    async with http.post(upstream.url + "/v1/chat/completions", json=chat_body(), headers=OPENAI_KEY) as r:
        assert r.status == 200
        assert r.headers["x-request-id"].startswith("req_")
        assert r.headers["x-ratelimit-remaining-requests"]
        assert r.headers["x-ratelimit-reset-tokens"]
        data = await r.json()
    assert data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["message"]["content"] == "Echo: Weather in Paris"
    assert choice["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] == prompt_tokens(["Be brief.", "Weather in Paris"], 2) == 11
    assert data["usage"]["completion_tokens"] == 4
    assert data["usage"]["total_tokens"] == 15
    rec = upstream.requests[-1]
    assert rec.path == "/v1/chat/completions" and rec.key == "sk-test-123456"
    assert rec.json["messages"][1]["content"] == "Weather in Paris"


async def test_chat_stream_with_usage(upstream, http):
    body = chat_body(stream=True, stream_options={"include_usage": True})
    async with http.post(upstream.url + "/v1/chat/completions", json=body, headers=OPENAI_KEY) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = parse_sse(await r.read())
    assert events[-1] == (None, "[DONE]")
    chunks = [jloads(d) for _, d in events[:-1]]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" in c for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert all("obfuscation" in c for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 15
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == "Echo: Weather in Paris"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_chat_stream_without_usage_or_obfuscation(upstream, http):
    body = chat_body(stream=True, stream_options={"include_obfuscation": False})
    async with http.post(upstream.url + "/v1/chat/completions", json=body, headers=OPENAI_KEY) as r:
        events = parse_sse(await r.read())
    chunks = [jloads(d) for _, d in events[:-1]]
    assert events[-1][1] == "[DONE]"
    assert all("usage" not in c for c in chunks)
    assert all("obfuscation" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


async def test_chat_stream_tool_call_fragments(upstream, http):
    body = chat_body(stream=True, tools=TOOLS, stream_options={"include_usage": True})
    async with http.post(upstream.url + "/v1/chat/completions", json=body, headers=OPENAI_KEY) as r:
        events = parse_sse(await r.read())
    chunks = [jloads(d) for _, d in events[:-1]]
    calls: dict[int, dict] = {}
    frag_count: dict[int, int] = {}
    for c in chunks:
        if not c["choices"]:
            continue
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            i = tc["index"]
            if i not in calls:
                assert tc["id"] and tc["type"] == "function" and tc["function"]["arguments"] == ""
                calls[i] = {"id": tc["id"], "name": tc["function"]["name"], "args": ""}
            else:
                assert "id" not in tc
                calls[i]["args"] += tc["function"]["arguments"]
                frag_count[i] = frag_count.get(i, 0) + 1
    assert sorted(calls) == [0, 1]
    assert all(n >= 2 for n in frag_count.values())
    assert calls[0]["name"] == "get_weather" and calls[0]["id"] == "call_0"
    assert jloads(calls[0]["args"]) == {"city": "Weather in Paris", "days": 1}
    assert jloads(calls[1]["args"]) == {"tz": "Weather in Paris", "utc": True}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


async def test_chat_non_stream_tool_calls_then_tool_result(upstream, http):
    async with http.post(upstream.url + "/v1/chat/completions", json=chat_body(tools=TOOLS), headers=OPENAI_KEY) as r:
        data = await r.json()
    msg = data["choices"][0]["message"]
    assert data["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["content"] is None and len(msg["tool_calls"]) == 2
    assert isinstance(msg["tool_calls"][0]["function"]["arguments"], str)
    follow = chat_body(tools=TOOLS)
    follow["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": msg["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
    ]
    async with http.post(upstream.url + "/v1/chat/completions", json=follow, headers=OPENAI_KEY) as r:
        data = await r.json()
    assert data["choices"][0]["message"]["content"] == "Tool results: sunny; noon"
    assert data["choices"][0]["finish_reason"] == "stop"


async def test_chat_max_tokens_stop_and_json(upstream, http):
    url = upstream.url + "/v1/chat/completions"
    async with http.post(url, json=chat_body(max_completion_tokens=2), headers=OPENAI_KEY) as r:
        d = await r.json()
    assert d["choices"][0]["finish_reason"] == "length"
    assert d["choices"][0]["message"]["content"] == "Echo: Weather "
    async with http.post(url, json=chat_body(max_tokens=1), headers=OPENAI_KEY) as r:
        assert (await r.json())["choices"][0]["finish_reason"] == "length"
    async with http.post(url, json=chat_body(stop=["Paris"]), headers=OPENAI_KEY) as r:
        d = await r.json()
    assert d["choices"][0]["message"]["content"] == "Echo: Weather in "
    assert d["choices"][0]["finish_reason"] == "stop"
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    async with http.post(url, json=chat_body(response_format=rf), headers=OPENAI_KEY) as r:
        d = await r.json()
    assert jloads(d["choices"][0]["message"]["content"]) == {"answer": "Echo: Weather in Paris"}


async def test_content_parts_and_reply_words():
    async with UpstreamSimulator(SimulatorConfig(reply_words=300)) as sim, aiohttp.ClientSession() as http:
        body = chat_body(stream=True)
        body["messages"][1]["content"] = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:x"}}]
        async with http.post(sim.url + "/v1/chat/completions", json=body, headers=OPENAI_KEY) as r:
            events = parse_sse(await r.read())
    pieces = [jloads(d)["choices"][0]["delta"].get("content") for _, d in events[1:-2]]
    assert len(pieces) == 300
    assert "".join(pieces).startswith("Echo: hi lorem")


async def test_one_write_mode_same_bytes():
    body = chat_body(stream=True, stream_options={"include_obfuscation": False})
    async with UpstreamSimulator(SimulatorConfig(one_write=True)) as sim, aiohttp.ClientSession() as http:
        async with http.post(sim.url + "/v1/chat/completions", json=body, headers=OPENAI_KEY) as r:
            events = parse_sse(await r.read())
    assert events[-1][1] == "[DONE]"
    assert "".join(jloads(d)["choices"][0]["delta"].get("content") or "" for _, d in events[:-1]) == "Echo: Weather in Paris"


async def test_embeddings_float_and_base64(upstream, http):
    url = upstream.url + "/v1/embeddings"
    async with http.post(url, json={"model": "text-embedding-3-small", "input": ["a b", "c"]}, headers=OPENAI_KEY) as r:
        d = await r.json()
    assert [e["index"] for e in d["data"]] == [0, 1]
    assert d["data"][0]["embedding"] == embedding_vector("a b", 8)
    assert d["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    body = {"model": "m", "input": "hello", "encoding_format": "base64", "dimensions": 32}
    async with http.post(url, json=body, headers=OPENAI_KEY) as r:
        d = await r.json()
    raw = base64.b64decode(d["data"][0]["embedding"])
    vec = struct.unpack("<32f", raw)
    expected = embedding_vector("hello", 32)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(vec, expected))
    # Jina extras are accepted
    body = {"model": "jina-embeddings-v3", "input": ["x"], "task": "retrieval.query", "dimensions": 4,
            "embedding_type": "float", "normalized": True}
    async with http.post(url, json=body, headers={"Authorization": "Bearer jina_x"}) as r:
        assert r.status == 200
        assert len((await r.json())["data"][0]["embedding"]) == 4
    async with http.post(url, json={"model": "m"}, headers=OPENAI_KEY) as r:
        assert r.status == 400
        assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_embedding_dim_config():
    async with UpstreamSimulator(SimulatorConfig(embedding_dim=5)) as sim, aiohttp.ClientSession() as http:
        async with http.post(sim.url + "/v1/embeddings", json={"model": "m", "input": "q"}, headers=OPENAI_KEY) as r:
            assert len((await r.json())["data"][0]["embedding"]) == 5


async def test_transcriptions(upstream, http):
    url = upstream.url + "/v1/audio/transcriptions"

    def form(fmt):
        f = aiohttp.FormData()
        f.add_field("file", b"\x00" * 1234, filename="a.wav", content_type="audio/wav")
        f.add_field("model", "whisper-1")
        f.add_field("response_format", fmt)
        f.add_field("timestamp_granularities[]", "word")
        return f

    async with http.post(url, data=form("json"), headers=OPENAI_KEY) as r:
        d = await r.json()
    assert d["text"] == "transcript of 1234 bytes"
    rec = upstream.requests[-1]
    assert rec.form["model"] == "whisper-1"
    assert rec.form["file"] == {"filename": "a.wav", "content_type": "audio/wav", "size": 1234}
    async with http.post(url, data=form("text"), headers=OPENAI_KEY) as r:
        assert r.content_type == "text/plain"
        assert await r.text() == "transcript of 1234 bytes"
    async with http.post(url, data=form("verbose_json"), headers=OPENAI_KEY) as r:
        d = await r.json()
    assert d["task"] == "transcribe" and d["text"] == "transcript of 1234 bytes"
    assert d["segments"][0]["end"] == d["duration"]
    assert [w["word"] for w in d["words"]] == ["transcript", "of", "1234", "bytes"]
    f = aiohttp.FormData()
    f.add_field("model", "whisper-1")
    async with http.post(url, data=f, headers=OPENAI_KEY) as r:
        assert r.status == 400


async def test_speech_streams_audio(upstream, http):
    body = {"model": "tts-1", "input": "one two three four five", "voice": "alloy"}
    async with http.post(upstream.url + "/v1/audio/speech", json=body, headers=OPENAI_KEY) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "audio/mpeg"
        assert r.headers.get("Transfer-Encoding") == "chunked"
        chunks = [c async for c in r.content.iter_any()]
    audio = b"".join(chunks)
    assert audio.startswith(b"ID3")
    assert len(audio) == 5 * 256


async def test_moderations(upstream, http):
    url = upstream.url + "/v1/moderations"
    async with http.post(url, json={"input": ["I hate this", "nice day", "kill"]}, headers=OPENAI_KEY) as r:
        d = await r.json()
    res = d["results"]
    assert [x["flagged"] for x in res] == [True, False, True]
    assert res[0]["categories"]["hate"] is True and res[2]["categories"]["violence"] is True
    assert set(res[1]["categories"]) == {
        "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
        "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
        "violence", "violence/graphic"}
    assert set(res[1]["category_scores"]) == set(res[1]["categories"]) == set(res[1]["category_applied_input_types"])
    assert d["id"].startswith("modr-")


async def test_models(upstream, http):
    async with http.get(upstream.url + "/v1/models", headers=OPENAI_KEY) as r:
        d = await r.json()
    assert d["object"] == "list" and any(m["id"] == "gpt-4o" for m in d["data"])
    async with http.get(upstream.url + "/v1/models", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}) as r:
        d = await r.json()
    assert d["data"][0]["type"] == "model" and "has_more" in d


async def test_auth_and_missing_model(upstream, http):
    url = upstream.url + "/v1/chat/completions"
    for headers in ({}, {"Authorization": "Bearer invalid-key"}, {"Authorization": "Bearer bad"}):
        async with http.post(url, json=chat_body(), headers=headers) as r:
            assert r.status == 401
            err = (await r.json())["error"]
            assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
            assert set(err) == {"message", "type", "param", "code"}
    async with http.post(url, json=chat_body(model="missing-model"), headers=OPENAI_KEY) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "model_not_found"
    async with http.post(url, data=b"{nope", headers={**OPENAI_KEY, "Content-Type": "application/json"}) as r:
        assert r.status == 400
