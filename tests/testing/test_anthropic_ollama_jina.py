from __future__ import annotations

from simhelpers import ANTHROPIC_HEADERS, jloads, parse_sse

from arun.testing.content import embedding_vector, rerank_score

A_TOOLS = [{"name": "get_weather", "description": "w",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "number"}}}}]


def a_body(**kw):
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hello there"}]}
    body.update(kw)
    return body


# --------------------------------------------------------------------------- Anthropic


async def test_anthropic_non_stream(upstream, http):
    async with http.post(upstream.url + "/v1/messages", json=a_body(), headers=ANTHROPIC_HEADERS) as r:
        assert r.status == 200
        assert r.headers["request-id"].startswith("req_")
        assert r.headers["anthropic-ratelimit-requests-remaining"]
        assert r.headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
        d = await r.json()
    assert d["type"] == "message" and d["role"] == "assistant"
    assert d["content"] == [{"type": "text", "text": "Echo: Hello there"}]
    assert d["stop_reason"] == "end_turn" and d["stop_sequence"] is None
    # system (2 words) + message (2 words) + 3 per message (1 message)
    assert d["usage"]["input_tokens"] == 7
    assert d["usage"]["output_tokens"] == 3


async def test_anthropic_system_blocks_and_stop_sequences(upstream, http):
    body = a_body(system=[{"type": "text", "text": "one two three"}], stop_sequences=["there"])
    async with http.post(upstream.url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS) as r:
        d = await r.json()
    assert d["usage"]["input_tokens"] == 3 + 2 + 3
    assert d["content"][0]["text"] == "Echo: Hello "
    assert d["stop_reason"] == "stop_sequence" and d["stop_sequence"] == "there"
    async with http.post(upstream.url + "/v1/messages", json=a_body(max_tokens=1), headers=ANTHROPIC_HEADERS) as r:
        d = await r.json()
    assert d["stop_reason"] == "max_tokens" and d["content"][0]["text"] == "Echo: "


async def test_anthropic_stream_text_order_and_padding(upstream, http):
    async with http.post(upstream.url + "/v1/messages", json=a_body(stream=True), headers=ANTHROPIC_HEADERS) as r:
        raw = await r.read()
    events = parse_sse(raw)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[1] == "content_block_start"
    assert "ping" in names
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for name, data in events:
        assert jloads(data)["type"] == name
    assert b'data: {"type": "ping"}' in raw
    assert any(line.endswith(b" ") for line in raw.split(b"\n") if line.startswith(b"data:"))
    text = "".join(jloads(d)["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Echo: Hello there"
    start = jloads(events[0][1])["message"]
    delta = jloads(events[-2][1])
    assert start["usage"]["input_tokens"] == 7
    assert delta["usage"]["output_tokens"] == 3  # cumulative
    assert delta["delta"]["stop_reason"] == "end_turn"


async def test_anthropic_stream_tool_use(upstream, http):
    body = a_body(stream=True, tools=A_TOOLS)
    async with http.post(upstream.url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS) as r:
        events = parse_sse(await r.read())
    payloads = [(n, jloads(d)) for n, d in events]
    start = next(p for n, p in payloads if n == "content_block_start")
    assert start["content_block"] == {"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {}}
    partials = [p["delta"]["partial_json"] for n, p in payloads if n == "content_block_delta"]
    assert partials[0] == "" and len(partials) >= 3
    assert all(p["delta"]["type"] == "input_json_delta" for n, p in payloads if n == "content_block_delta")
    assert jloads("".join(partials)) == {"city": "Hello there", "n": 1}
    md = next(p for n, p in payloads if n == "message_delta")
    assert md["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_tool_result_turn(upstream, http):
    msgs = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"},
                                     {"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "warm"}]}]},
    ]
    async with http.post(upstream.url + "/v1/messages", json=a_body(messages=msgs, tools=A_TOOLS),
                         headers=ANTHROPIC_HEADERS) as r:
        d = await r.json()
    assert d["content"][0]["text"] == "Tool results: sunny; warm"


async def test_anthropic_auth_version_and_missing_model(upstream, http):
    url = upstream.url + "/v1/messages"
    async with http.post(url, json=a_body(), headers={"anthropic-version": "2023-06-01"}) as r:
        assert r.status == 401
        d = await r.json()
        assert d["type"] == "error" and d["error"]["type"] == "authentication_error"
        assert d["request_id"].startswith("req_")
    async with http.post(url, json=a_body(), headers={"x-api-key": "k"}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["type"] == "invalid_request_error"
    async with http.post(url, json=a_body(model="missing-model"), headers=ANTHROPIC_HEADERS) as r:
        assert r.status == 404
        assert (await r.json())["error"]["type"] == "not_found_error"


# --------------------------------------------------------------------------- Ollama


async def test_ollama_chat_ndjson_default_stream(upstream, http):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi there"}]}
    async with http.post(upstream.url + "/api/chat", json=body) as r:
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        raw = await r.read()
    lines = [jloads(x) for x in raw.splitlines()]
    assert raw.endswith(b"\n")
    assert all(not x["done"] for x in lines[:-1])
    assert "".join(x["message"]["content"] for x in lines) == "Echo: hi there"
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["prompt_eval_count"] == 2 + 3 and final["eval_count"] == 3
    assert final["total_duration"] > 0


async def test_ollama_tools_and_options(upstream, http):
    tools = [{"type": "function", "function": {"name": "w", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "ok": {"type": "boolean"}}}}}]
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "Tokyo"}], "tools": tools}
    async with http.post(upstream.url + "/api/chat", json=body) as r:
        lines = [jloads(x) for x in (await r.read()).splitlines()]
    tc = lines[0]["message"]["tool_calls"]
    assert tc == [{"id": "call_0", "function": {"index": 0, "name": "w", "arguments": {"city": "Tokyo", "ok": True}}}]
    body = {"model": "llama3.2", "stream": False, "options": {"num_predict": 1},
            "messages": [{"role": "user", "content": "a b c"}]}
    async with http.post(upstream.url + "/api/chat", json=body) as r:
        d = await r.json()
    assert d["done"] and d["done_reason"] == "length" and d["message"]["content"] == "Echo: "
    body = {"model": "llama3.2", "stream": False, "options": {"stop": ["c"]},
            "messages": [{"role": "user", "content": "a b"}, {"role": "assistant", "content": "x"},
                         {"role": "tool", "content": "r1"}]}
    async with http.post(upstream.url + "/api/chat", json=body) as r:
        d = await r.json()
    assert d["message"]["content"] == "Tool results: r1"


async def test_ollama_embed_tags_and_404(upstream, http):
    async with http.post(upstream.url + "/api/embed", json={"model": "all-minilm", "input": ["x y", "z"]}) as r:
        d = await r.json()
    assert d["embeddings"] == [embedding_vector("x y", 8), embedding_vector("z", 8)]
    assert d["prompt_eval_count"] == 3
    async with http.get(upstream.url + "/api/tags") as r:
        d = await r.json()
    assert d["models"][0]["details"]["format"] == "gguf"
    async with http.post(upstream.url + "/api/chat", json={"model": "missing-model", "messages": []}) as r:
        assert r.status == 404
        assert await r.json() == {"error": 'model "missing-model" not found, try pulling it first'}


# --------------------------------------------------------------------------- Jina rerank


async def test_rerank(upstream, http):
    docs = ["green apple", "red apple pie", "car", {"text": "red wine"}]
    body = {"model": "jina-reranker-v2", "query": "red apple", "documents": docs, "top_n": 3}
    async with http.post(upstream.url + "/v1/rerank", json=body, headers={"Authorization": "Bearer jina_k"}) as r:
        d = await r.json()
    res = d["results"]
    assert len(res) == 3
    assert [x["index"] for x in res] == [1, 0, 3]
    assert res[0]["relevance_score"] == rerank_score("red apple", "red apple pie") == 1.0
    assert all(0.0 <= x["relevance_score"] <= 1.0 for x in res)
    assert [x["relevance_score"] for x in res] == sorted((x["relevance_score"] for x in res), reverse=True)
    assert res[2]["document"] == {"text": "red wine"}
    assert d["usage"]["total_tokens"] == 2 + 2 + 3 + 1 + 2
    body["return_documents"] = False
    async with http.post(upstream.url + "/v1/rerank", json=body, headers={"Authorization": "Bearer jina_k"}) as r:
        assert "document" not in (await r.json())["results"][0]
    async with http.post(upstream.url + "/v1/rerank", json=body) as r:
        assert r.status == 401
        assert "detail" in await r.json()
