"""Ollama native wire format: pure, bytes in / entities out."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from arun.entities.llm import LLMUsage
from arun.entities.messages import (
    AssistantPromptMessage,
    ImagePromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolCall,
    ToolCallFunction,
    ToolPromptMessage,
    UserPromptMessage,
)
from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeContextLengthExceededError,
    InvokeModelNotFoundError,
    InvokePermissionDeniedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
)
from arun.protocols import ollama as wire
from arun.wire.decoders import NDJSONDecoder

P = "ollama"


def usage_fn(calls: list | None = None):
    def fn(prompt, completion, text):
        if calls is not None:
            calls.append((prompt, completion, text))
        p = prompt if prompt is not None else -1
        c = completion if completion is not None else len(text.split())
        z = Decimal(0)
        return LLMUsage(p, z, z, z, c, z, z, z, p + c, z, "USD", 0.0)

    return fn


def body_of(raw: bytes) -> dict:
    return msgspec.json.decode(raw)


# -- request ----------------------------------------------------------------------------------


def test_chat_body_options_format_keep_alive() -> None:
    raw = wire.build_chat_body(
        "llama3.2",
        [SystemPromptMessage(content="be brief"), UserPromptMessage(content="hi")],
        {
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "num_predict": 64,
            "num_ctx": 8192,
            "repeat_penalty": 1.1,
            "seed": 7,
            "format": "json",
            "keep_alive": "10m",
        },
        None,
        ["\n\n"],
        True,
    )
    body = body_of(raw)
    assert body["model"] == "llama3.2"
    assert body["stream"] is True
    assert body["format"] == "json"
    assert body["keep_alive"] == "10m"
    assert body["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "num_predict": 64,
        "num_ctx": 8192,
        "repeat_penalty": 1.1,
        "seed": 7,
        "stop": ["\n\n"],
    }
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert "tools" not in body


def test_max_tokens_becomes_num_predict_and_schema_format() -> None:
    body = body_of(
        wire.build_chat_body("m", [UserPromptMessage(content="x")], {"max_tokens": 5, "format": '{"type":"object"}'}, None, None, False)
    )
    assert body["options"] == {"num_predict": 5}
    assert body["format"] == {"type": "object"}
    assert body["stream"] is False
    with pytest.raises(InvokeBadRequestError):
        wire.build_chat_body("m", [UserPromptMessage(content="x")], {"format": "{broken"}, None, None, False)


def test_images_are_bare_base64() -> None:
    msg = UserPromptMessage(
        content=[
            TextPromptMessageContent(data="what is this?"),
            ImagePromptMessageContent(base64_data="AAAA", mime_type="image/png"),
            ImagePromptMessageContent(url="data:image/jpeg;base64,BBBB"),
        ]
    )
    body = body_of(wire.build_chat_body("llava", [msg], {}, None, None, False))
    assert body["messages"] == [{"role": "user", "content": "what is this?", "images": ["AAAA", "BBBB"]}]
    with pytest.raises(InvokeBadRequestError):
        wire.build_chat_body("llava", [UserPromptMessage(content=[ImagePromptMessageContent(url="https://x/y.png")])], {}, None, None, False)


def test_tool_calls_have_object_arguments_and_tool_results_role_tool() -> None:
    messages = [
        UserPromptMessage(content="weather in Tokyo?"),
        AssistantPromptMessage(
            content="",
            tool_calls=[ToolCall(id="call_0", function=ToolCallFunction(name="get_weather", arguments='{"city": "Tokyo"}'))],
        ),
        ToolPromptMessage(content="sunny", tool_call_id="call_0"),
    ]
    tools = [PromptMessageTool(name="get_weather", description="d", parameters={"type": "object"})]
    body = body_of(wire.build_chat_body("m", messages, {}, tools, None, True))
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}],
    }
    assert body["messages"][2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": "call_0"}
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}}
    ]


def test_unparsable_arguments_become_empty_object() -> None:
    msg = AssistantPromptMessage(tool_calls=[ToolCall(id="a", function=ToolCallFunction(name="f", arguments="{oops"))])
    body = body_of(wire.build_chat_body("m", [msg], {}, None, None, True))
    assert body["messages"][0]["tool_calls"][0]["function"]["arguments"] == {}


def test_completion_mode_sends_one_user_message() -> None:
    body = body_of(
        wire.build_chat_body(
            "m", [SystemPromptMessage(content="a"), UserPromptMessage(content="b")], {}, None, None, False, completion_mode=True
        )
    )
    assert body["messages"] == [{"role": "user", "content": "a\nb"}]


# -- non-stream ---------------------------------------------------------------------------------


FINAL = (
    b'{"model":"llama3.2","created_at":"2025-07-07T20:22:19.19Z","message":{"role":"assistant","content":"Hello there"},'
    b'"done":true,"done_reason":"stop","total_duration":1,"prompt_eval_count":12,"prompt_eval_duration":1,'
    b'"eval_count":3,"eval_duration":1}'
)


def test_parse_non_stream() -> None:
    result = wire.parse_chat_response(P, b"\n " + FINAL, "llama3.2", [], usage_fn())
    assert result.message.content == "Hello there"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 3)


def test_parse_non_stream_tool_calls_and_missing_counts() -> None:
    calls: list = []
    body = (
        b'{"model":"m","message":{"role":"assistant","content":"","thinking":"hmm","tool_calls":['
        b'{"function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo","days":2}}},'
        b'{"id":"abc","function":{"index":1,"name":"now","arguments":{}}}]},"done":true,"done_reason":"stop"}'
    )
    result = wire.parse_chat_response(P, body, "m", [], usage_fn(calls))
    tc = result.message.tool_calls
    assert [c.function.name for c in tc] == ["get_weather", "now"]
    assert msgspec.json.decode(tc[0].function.arguments) == {"city": "Tokyo", "days": 2}
    assert tc[0].id == "call_0" and tc[1].id == "abc"
    assert tc[1].function.arguments == "{}"
    assert result.reasoning_content == "hmm"
    assert calls == [(None, None, "")]  # omitted counts are left to the local counter


def test_parse_non_stream_error_body() -> None:
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_chat_response(P, b'{"error":"runner crashed"}', "m", [], usage_fn())
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_chat_response(P, b'{"model":"m","mess', "m", [], usage_fn())
    with pytest.raises(InvokeServerUnavailableError):  # not the final object
        wire.parse_chat_response(P, b'{"model":"m","message":{"content":"x"},"done":false}', "m", [], usage_fn())


# -- stream -----------------------------------------------------------------------------------


STREAM = (
    b'{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hel"},"done":false}\n'
    b'{"model":"m","created_at":"t","message":{"role":"assistant","content":"lo "},"done":false}\n'
    b'{"model":"m","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[{"function":{"index":0,"name":"f","arguments":{"a":1}}}]},"done":false}\n'
    b'{"model":"m","created_at":"t","message":{"role":"assistant","content":"world"},"done":false}\n'
    b'{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"length",'
    b'"prompt_eval_count":9,"eval_count":4}\n'
)


def run_stream(data: bytes, sizes: int | None) -> tuple[list, wire.OllamaStreamAssembler]:
    asm = wire.OllamaStreamAssembler(P, "m", [], usage_fn())
    dec = NDJSONDecoder()
    pieces = [data] if sizes is None else [data[i : i + sizes] for i in range(0, len(data), sizes)]
    chunks = []
    for piece in pieces:
        for line in dec.feed(piece):
            c = asm.feed(line)
            if c is not None:
                chunks.append(c)
    for line in dec.close():
        c = asm.feed(line)
        if c is not None:
            chunks.append(c)
    chunks.append(asm.final_chunk())
    return chunks, asm


@pytest.mark.parametrize("size", [None, 1, 3, 7, 64])
def test_stream_split_across_chunk_boundaries(size: int | None) -> None:
    chunks, _ = run_stream(STREAM, size)
    texts = [c.delta.message.content for c in chunks[:-1]]
    assert texts == ["Hel", "lo ", "world"]
    final = chunks[-1].delta
    assert final.finish_reason == "length"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (9, 4)
    assert [c.function.name for c in final.message.tool_calls] == ["f"]
    assert final.message.tool_calls[0].function.arguments == '{"a":1}'
    assert [c.delta.index for c in chunks] == [1, 2, 3, 4]


def test_stream_final_line_without_trailing_newline() -> None:
    chunks, _ = run_stream(STREAM.rstrip(b"\n"), 5)
    assert chunks[-1].delta.finish_reason == "length"


def test_stream_tool_call_ids_are_unique_across_lines() -> None:
    data = (
        b'{"message":{"content":"","tool_calls":[{"function":{"name":"a","arguments":{}}}]},"done":false}\n'
        b'{"message":{"content":"","tool_calls":[{"function":{"name":"b","arguments":{}}}]},"done":false}\n'
        b'{"message":{"content":""},"done":true,"done_reason":"stop"}\n'
    )
    chunks, _ = run_stream(data, None)
    assert [c.id for c in chunks[-1].delta.message.tool_calls] == ["call_0", "call_1"]


def test_stream_error_line_raises_typed_error() -> None:
    data = STREAM.split(b"\n")[0] + b'\n{"error":"an error was encountered while running the model: unexpected EOF"}\n'
    with pytest.raises(InvokeServerUnavailableError) as info:
        run_stream(data, 4)
    assert "unexpected EOF" in str(info.value)


def test_stream_error_line_context_length() -> None:
    with pytest.raises(InvokeContextLengthExceededError):
        run_stream(b'{"error":"the input exceeds the maximum context length"}\n', None)


def test_stream_truncated_without_done_is_interrupted() -> None:
    data = b"\n".join(STREAM.split(b"\n")[:4]) + b"\n"
    with pytest.raises(InvokeStreamInterruptedError):
        run_stream(data, 10)


def test_stream_cut_mid_line_is_malformed_or_interrupted() -> None:
    data = STREAM[: len(STREAM) - 20]
    with pytest.raises((InvokeStreamInterruptedError, InvokeServerUnavailableError)):
        run_stream(data, 10)


def test_stream_usage_counts_omitted() -> None:
    calls: list = []
    asm = wire.OllamaStreamAssembler(P, "m", [], usage_fn(calls))
    asm.feed(b'{"message":{"content":"a b"},"done":false}')
    asm.feed(b'{"message":{"content":""},"done":true,"done_reason":"stop"}')
    final = asm.final_chunk()
    assert calls == [(None, None, "a b")]
    assert final.delta.finish_reason == "stop"


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, b'{"error":"model \\"nope\\" not found, try pulling it first"}', InvokeModelNotFoundError),
        (404, b"404 page not found", InvokeBadRequestError),
        (400, b'{"error":"invalid options"}', InvokeBadRequestError),
        (401, b'{"error":"unauthorized"}', InvokeAuthorizationError),
        (403, b'{"error":"forbidden"}', InvokePermissionDeniedError),
        (429, b'{"error":"too many requests"}', InvokeRateLimitError),
        (500, b'{"error":"boom"}', InvokeServerUnavailableError),
        (502, b'{"error":"upstream error"}', InvokeServerUnavailableError),
        (503, b"", InvokeServerUnavailableError),
    ],
)
def test_classify_error(status: int, body: bytes, cls: type) -> None:
    err = wire.classify_error(P, status, {"retry-after": "2"}, body)
    assert type(err) is cls
    assert err.status == status
    assert err.retry_after == 2.0


def test_model_not_found_is_a_bad_request() -> None:
    err = wire.classify_error(P, 404, {}, b'{"error":"model \\"x\\" not found, try pulling it first"}')
    assert isinstance(err, InvokeBadRequestError)
    assert 'model "x" not found' in str(err)


# -- embed ----------------------------------------------------------------------------------------


def test_embed_round_trip() -> None:
    body = body_of(wire.build_embed_body("all-minilm", ["a", "b"], dimensions=4, keep_alive="1m"))
    assert body == {"model": "all-minilm", "input": ["a", "b"], "truncate": True, "dimensions": 4, "keep_alive": "1m"}
    vectors, tokens = wire.parse_embed_response(
        P, b'{"model":"all-minilm","embeddings":[[0.1,0.2],[0.3,0.4]],"prompt_eval_count":8}', 2
    )
    assert vectors == [[0.1, 0.2], [0.3, 0.4]] and tokens == 8
    vectors, tokens = wire.parse_embed_response(P, b'{"embeddings":[[1.0]]}', 1)
    assert tokens is None


def test_embed_count_mismatch_and_errors() -> None:
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_embed_response(P, b'{"embeddings":[[1.0]]}', 2)
    with pytest.raises(InvokeModelNotFoundError):
        wire.parse_embed_response(P, b'{"error":"model \\"x\\" not found, try pulling it first"}', 1)
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_embed_response(P, b"{not json", 1)
