"""Pure tests of the Anthropic Messages wire format (arun.protocols.anthropic_messages)."""

from __future__ import annotations

import msgspec
import pytest

from arun.entities.llm import LLMUsage
from arun.entities.messages import (
    AssistantPromptMessage,
    DocumentPromptMessageContent,
    ImagePromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolCall,
    ToolCallFunction,
    ToolPromptMessage,
    UserPromptMessage,
    VideoPromptMessageContent,
)
from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeModelNotFoundError,
    InvokeOverloadedError,
    InvokePermissionDeniedError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
    InvokeTimeoutError,
)
from arun.protocols.anthropic_messages import (
    MessagesStreamAssembler,
    build_messages_body,
    classify_error,
    parse_messages_response,
)
from arun.wire.decoders import SSEDecoder


def body_of(*args, **kwargs) -> dict:
    return msgspec.json.decode(build_messages_body(*args, **kwargs))


def usage_fn(prompt, completion, text):
    p = prompt if prompt is not None else -1
    c = completion if completion is not None else -1
    return LLMUsage(p, 0, 0, 0, c, 0, 0, 0, p + c, 0, "USD", 0.0)


# -- request -------------------------------------------------------------------------------


def test_minimal_body_and_max_tokens_default():
    body = body_of("claude-x", [UserPromptMessage(content="hi")], {}, None, None, False, None, default_max_tokens=777)
    assert body == {
        "model": "claude-x",
        "max_tokens": 777,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    body = body_of("claude-x", [UserPromptMessage(content="hi")], {"max_tokens": 12}, None, None, True, None)
    assert body["max_tokens"] == 12 and body["stream"] is True


def test_system_goes_top_level_never_a_message():
    msgs = [SystemPromptMessage(content="be brief"), UserPromptMessage(content="hi")]
    body = body_of("m", msgs, {}, None, None, False, None)
    assert body["system"] == "be brief"
    assert [m["role"] for m in body["messages"]] == ["user"]
    msgs = [SystemPromptMessage(content="one"), UserPromptMessage(content="hi"), SystemPromptMessage(content="two")]
    body = body_of("m", msgs, {}, None, None, False, None)
    assert body["system"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    assert all(m["role"] != "system" for m in body["messages"])


def test_consecutive_same_role_messages_merge():
    msgs = [
        UserPromptMessage(content="a"),
        UserPromptMessage(content="b"),
        AssistantPromptMessage(content="c"),
        AssistantPromptMessage(content="d"),
        UserPromptMessage(content="e"),
    ]
    body = body_of("m", msgs, {}, None, None, False, None)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
        {"role": "user", "content": [{"type": "text", "text": "e"}]},
    ]


def test_empty_messages_dropped_so_roles_still_alternate():
    msgs = [UserPromptMessage(content="a"), AssistantPromptMessage(content=""), UserPromptMessage(content="b")]
    body = body_of("m", msgs, {}, None, None, False, None)
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert len(body["messages"][0]["content"]) == 2


def test_tool_use_and_tool_results():
    msgs = [
        UserPromptMessage(content="weather?"),
        AssistantPromptMessage(
            content="Checking.",
            tool_calls=[
                ToolCall(id="toolu_1", function=ToolCallFunction(name="get_weather", arguments='{"city": "Paris"}')),
                ToolCall(id="toolu_2", function=ToolCallFunction(name="get_time", arguments="")),
            ],
        ),
        ToolPromptMessage(content="sunny", tool_call_id="toolu_1"),
        ToolPromptMessage(content="noon", tool_call_id="toolu_2"),
        UserPromptMessage(content="thanks"),
    ]
    body = body_of("m", msgs, {}, None, None, False, None)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "noon"},
        {"type": "text", "text": "thanks"},
    ]


def test_tool_results_come_first_in_a_merged_user_turn():
    msgs = [
        AssistantPromptMessage(tool_calls=[ToolCall(id="t", function=ToolCallFunction(name="f", arguments="{}"))]),
        UserPromptMessage(content="note"),
        ToolPromptMessage(content="r", tool_call_id="t"),
    ]
    body = body_of("m", msgs, {}, None, None, False, None)
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_result", "text"]


def test_invalid_tool_arguments_rejected():
    msgs = [AssistantPromptMessage(tool_calls=[ToolCall(id="t", function=ToolCallFunction(name="f", arguments="{bad"))])]
    with pytest.raises(InvokeBadRequestError):
        build_messages_body("m", msgs, {}, None, None, False, None)


def test_images_and_documents():
    content = [
        TextPromptMessageContent(data="look"),
        ImagePromptMessageContent(format="png", mime_type="image/png", base64_data="AAAA"),
        ImagePromptMessageContent(url="https://example.com/cat.jpg"),
        ImagePromptMessageContent(url="data:image/webp;base64,BBBB"),
        DocumentPromptMessageContent(format="pdf", mime_type="application/pdf", base64_data="JVBER"),
    ]
    body = body_of("m", [UserPromptMessage(content=content)], {}, None, None, False, None)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "BBBB"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
    ]
    with pytest.raises(InvokeBadRequestError):
        build_messages_body("m", [UserPromptMessage(content=[VideoPromptMessageContent(url="x")])], {}, None, None, False, None)


def test_tools_stop_sampling_and_user():
    tool = PromptMessageTool(name="get_weather", description="Weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
    params = {"temperature": 0.3, "top_p": 0.9, "top_k": 5, "max_tokens": 100, "unknown": 1}
    body = body_of("m", [UserPromptMessage(content="hi")], params, [tool], ["END"], False, "user-1")
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    ]
    assert body["stop_sequences"] == ["END"]
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.3, 0.9, 5)
    assert body["metadata"] == {"user_id": "user-1"}
    assert "unknown" not in body and "stream" not in body
    empty = body_of("m", [UserPromptMessage(content="hi")], {}, [PromptMessageTool(name="t")], None, False, None)
    assert empty["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


def test_thinking_parameters():
    params = {"thinking": True, "thinking_budget": 2048, "temperature": 0.5, "max_tokens": 4096}
    body = body_of("m", [UserPromptMessage(content="hi")], params, None, None, False, None)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "temperature" not in body and "thinking_budget" not in body


# -- non-stream response ---------------------------------------------------------------------

RESPONSE = b"""{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
 "content":[{"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}],
 "stop_reason":"tool_use","stop_sequence":null,
 "usage":{"input_tokens":377,"output_tokens":65,"cache_creation_input_tokens":10,"cache_read_input_tokens":5,"service_tier":"standard"}}
"""


def test_parse_response():
    r = parse_messages_response("anthropic", RESPONSE, "m", [], usage_fn)
    assert r.message.content == "Checking."
    assert r.message.tool_calls == [
        ToolCall(id="toolu_01", function=ToolCallFunction(name="get_weather", arguments='{"city":"Paris"}'))
    ]
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (377 + 10 + 5, 65)
    assert r.finish_reason == "tool_use" and r.id == "msg_01"


def test_parse_response_joins_text_blocks_and_thinking():
    body = (
        b'{"type":"message","content":[{"type":"thinking","thinking":"hmm","signature":"s"},'
        b'{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"end_turn",'
        b'"usage":{"input_tokens":3,"output_tokens":2}}'
    )
    r = parse_messages_response("anthropic", body, "m", [], usage_fn)
    assert r.message.content == "ab" and r.reasoning_content == "hmm" and r.model == "m"


def test_parse_response_errors():
    with pytest.raises(InvokeServerUnavailableError):
        parse_messages_response("anthropic", b'{"id": "msg', "m", [], usage_fn)
    err = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(InvokeServerUnavailableError):
        parse_messages_response("anthropic", err, "m", [], usage_fn)


# -- stream --------------------------------------------------------------------------------

STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0   }

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Pa"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}

event: message_stop
data: {"type":"message_stop"          }

"""


def run_stream(raw: bytes, piece: int | None = None) -> tuple[list, MessagesStreamAssembler]:
    asm = MessagesStreamAssembler("anthropic", "m", [], usage_fn)
    dec = SSEDecoder()
    chunks = []
    pieces = [raw] if piece is None else [raw[i : i + piece] for i in range(0, len(raw), piece)]
    for p in pieces:
        for event, payload in dec.feed(p):
            c = asm.feed(event, payload)
            if c is not None:
                chunks.append(c)
    for event, payload in dec.close():
        c = asm.feed(event, payload, tail=True)
        if c is not None:
            chunks.append(c)
    chunks.append(asm.final_chunk())
    return chunks, asm


@pytest.mark.parametrize("piece", [None, 1, 7, 64])
@pytest.mark.parametrize("crlf", [False, True])
def test_stream_example(piece, crlf):
    raw = STREAM.replace(b"\n", b"\r\n") if crlf else STREAM
    chunks, _asm = run_stream(raw, piece)
    assert [c.delta.message.content for c in chunks[:-1]] == ["Checking."]
    final = chunks[-1]
    assert final.delta.finish_reason == "tool_use"
    assert final.delta.message.tool_calls == [
        ToolCall(id="toolu_01", function=ToolCallFunction(name="get_weather", arguments='{"city":"Paris"}'))
    ]
    assert (final.delta.usage.prompt_tokens, final.delta.usage.completion_tokens) == (377, 65)
    assert [c.delta.index for c in chunks] == [1, 2]
    assert final.model == "claude-sonnet-4-20250514"


def test_stream_matches_non_stream():
    chunks, _ = run_stream(STREAM)
    r = parse_messages_response("anthropic", RESPONSE, "m", [], usage_fn)
    assert "".join(c.delta.message.content for c in chunks) == r.message.content
    assert chunks[-1].delta.message.tool_calls == r.message.tool_calls


def test_cumulative_usage_last_wins_and_cache_counts():
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,'
        b'"cache_creation_input_tokens":7,"cache_read_input_tokens":11,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":3}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"b"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    chunks, _ = run_stream(raw)
    final = chunks[-1]
    assert (final.delta.usage.prompt_tokens, final.delta.usage.completion_tokens) == (23, 9)  # not 1 + 3 + 9
    assert final.delta.finish_reason == "max_tokens"
    assert "".join(c.delta.message.content for c in chunks) == "ab"


def test_thinking_deltas_are_not_content():
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ok"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    chunks, asm = run_stream(raw)
    assert [c.delta.message.content for c in chunks[:-1]] == ["ok"]
    assert asm.thoughts == ["hmm"]


def test_tool_call_with_no_input_deltas_is_empty_object():
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"now","input":{}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    chunks, _ = run_stream(raw)
    assert chunks[-1].delta.message.tool_calls[0].function.arguments == "{}"


@pytest.mark.parametrize("cut", [b"event: message_delta", b"event: message_stop", b'"partial_json":"ris'])
def test_truncated_stream_is_interrupted(cut):
    raw = STREAM[: STREAM.index(cut)]
    with pytest.raises(InvokeStreamInterruptedError):
        run_stream(raw)


def test_stream_without_final_blank_line_still_completes():
    chunks, asm = run_stream(STREAM.rstrip())
    assert asm.done and chunks[-1].delta.finish_reason == "tool_use"


@pytest.mark.parametrize(
    "error_type,cls",
    [
        ("overloaded_error", InvokeOverloadedError),
        ("api_error", InvokeServerUnavailableError),
        ("rate_limit_error", InvokeRateLimitError),
        ("authentication_error", InvokeAuthorizationError),
        ("invalid_request_error", InvokeBadRequestError),
        ("something_new", InvokeServerUnavailableError),
    ],
)
def test_error_event_in_stream(error_type, cls):
    head = STREAM[: STREAM.index(b"event: content_block_stop")]
    raw = head + b'event: error\ndata: {"type":"error","error":{"type":"' + error_type.encode() + b'","message":"Overloaded"}}\n\n'
    with pytest.raises(cls) as info:
        run_stream(raw)
    assert type(info.value) is cls
    assert info.value.status is None


def test_malformed_stream_event():
    with pytest.raises(InvokeServerUnavailableError):
        run_stream(b"event: content_block_delta\ndata: {not json\n\n")


# -- error classification ----------------------------------------------------------------------


def err_body(error_type: str, message: str) -> bytes:
    return msgspec.json.encode({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_body"})


@pytest.mark.parametrize(
    "status,error_type,message,cls",
    [
        (400, "invalid_request_error", "messages: Field required", InvokeBadRequestError),
        (400, "invalid_request_error", "prompt is too long: 208656 tokens > 200000 maximum", InvokeContextLengthExceededError),
        (401, "authentication_error", "invalid x-api-key", InvokeAuthorizationError),
        (402, "billing_error", "Your credit balance is too low", InvokeQuotaExhaustedError),
        (403, "permission_error", "no permission", InvokePermissionDeniedError),
        (404, "not_found_error", "model: claude-nope", InvokeModelNotFoundError),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", InvokeBadRequestError),
        (429, "rate_limit_error", "slow down", InvokeRateLimitError),
        (500, "api_error", "Internal server error", InvokeServerUnavailableError),
        (504, "timeout_error", "Request timed out", InvokeServerUnavailableError),
        (529, "overloaded_error", "Overloaded", InvokeOverloadedError),
    ],
)
def test_classify_error_table(status, error_type, message, cls):
    exc = classify_error("anthropic", status, {"request-id": "req_hdr"}, err_body(error_type, message))
    assert type(exc) is cls
    assert exc.status == status and exc.provider == "anthropic"
    assert exc.request_id == "req_hdr"
    assert message in str(exc)


def test_classify_error_retry_after_and_body_request_id():
    exc = classify_error("anthropic", 429, {"retry-after": "17"}, err_body("rate_limit_error", "x"))
    assert isinstance(exc, InvokeRateLimitError) and exc.retry_after == 17.0
    assert exc.request_id == "req_body"


@pytest.mark.parametrize(
    "status,body,cls",
    [
        (529, b"", InvokeOverloadedError),
        (502, b"<html>Bad Gateway</html>", InvokeServerUnavailableError),
        (404, b"not found", InvokeModelNotFoundError),
        (408, b'{"type":"error","error":{"type":"timeout_error","message":"t"}}', InvokeTimeoutError),
        (401, b'{"error": "nope"}', InvokeAuthorizationError),
        (400, b'{"type":"error","error":{"type":"invalid_request_error"}}', InvokeBadRequestError),
    ],
)
def test_classify_error_odd_bodies(status, body, cls):
    exc = classify_error("anthropic", status, {}, body)
    assert type(exc) is cls and isinstance(exc, InvokeError)
