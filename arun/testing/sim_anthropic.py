"""Anthropic Messages protocol (PROTOCOLS.md §2)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from .content import Conversation, Reply, ToolSpec, plan_reply, split_arguments

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import Ctx

AUTH = True
_encode = msgspec.json.encode

MODELS = (
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}

_reset_cache: list[Any] = [0, ""]


def _reset_stamp() -> str:
    now = int(time.time())
    if _reset_cache[0] != now:
        _reset_cache[0] = now
        _reset_cache[1] = datetime.fromtimestamp(now + 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(_reset_cache[1])


def base_headers(ctx: "Ctx") -> dict[str, str]:
    reset = _reset_stamp()
    h = {"request-id": "req_" + ctx.rid, "anthropic-organization-id": "org-sim"}
    for kind, limit in (("requests", 4000), ("tokens", 2000000), ("input-tokens", 1600000), ("output-tokens", 400000)):
        h[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        h[f"anthropic-ratelimit-{kind}-remaining"] = str(limit - 1)
        h[f"anthropic-ratelimit-{kind}-reset"] = reset
    return h


def _error_payload(ctx: "Ctx", status: int, error_type: str | None, message: str | None) -> dict[str, Any]:
    typ = error_type or _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    if message is None:
        if typ == "not_found_error":
            model = ctx.body.get("model") if isinstance(ctx.body, dict) else None
            message = f"model: {model}"
        else:
            message = _ERROR_MESSAGES.get(typ, "Error")
    return {"type": "error", "error": {"type": typ, "message": message}, "request_id": "req_" + ctx.rid}


def error_response(ctx: "Ctx", status: int, error_type: str | None = None, message: str | None = None) -> web.Response:
    body = _encode(_error_payload(ctx, status, error_type, message))
    h = ctx.headers("application/json")
    h["x-should-retry"] = "true" if status in (408, 409, 429) or status >= 500 else "false"
    return web.Response(body=body, status=status, headers=h)


def stream_error_event(ctx: "Ctx") -> bytes:
    f = ctx.fault
    payload = _error_payload(ctx, 529, (f.error_type if f else None) or "overloaded_error", f.message if f else None)
    payload.pop("request_id", None)
    return b"event: error\ndata: " + _encode(payload) + b"\n\n"


# --------------------------------------------------------------------------- request parsing


def _block_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text") or "" for b in content if isinstance(b, dict) and b.get("type") == "text")
    return str(content)


def conversation(body: dict[str, Any]) -> Conversation:
    msgs = body.get("messages") or []
    texts: list[str] = []
    system = body.get("system")
    if system:
        texts.append(_block_text(system))
    last_user = ""
    last_role = ""
    results: list[str] = []
    for m in msgs:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        role = m.get("role") or ""
        msg_texts: list[str] = []
        msg_results: list[str] = []
        if isinstance(content, list):
            for b in content:
                if not isinstance(b, dict):
                    continue
                if b.get("type") == "text":
                    msg_texts.append(b.get("text") or "")
                elif b.get("type") == "tool_result":
                    msg_results.append(_block_text(b.get("content")))
        else:
            msg_texts.append(_block_text(content))
        texts.append(" ".join(msg_texts + msg_results))
        if role == "user":
            if msg_results:
                last_role, results = "tool", msg_results
            else:
                last_role, last_user = "user", " ".join(msg_texts)
        else:
            last_role = role
    tools = [
        ToolSpec(t["name"], t.get("input_schema") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("name")
    ]
    choice = body.get("tool_choice")
    choice_type = choice.get("type") if isinstance(choice, dict) else None
    if choice_type == "tool":
        tools = [t for t in tools if t.name == choice.get("name")]  # type: ignore[union-attr]
    oc = body.get("output_config")
    json_mode = isinstance(oc, dict) and isinstance(oc.get("format"), dict)
    stop = body.get("stop_sequences")
    return Conversation(
        texts=texts,
        n_messages=len([m for m in msgs if isinstance(m, dict)]),
        last_role=last_role,
        last_user_text=last_user,
        tool_results=results,
        tools=tools,
        tool_choice_none=choice_type == "none",
        json_mode=json_mode,
        max_words=body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None,
        stop=[s for s in (stop or []) if isinstance(s, str)],
    )


_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool_calls": "tool_use"}


def _event(name: bytes, payload: bytes, pad: bytes = b"") -> bytes:
    return b"event: " + name + b"\ndata: " + payload + pad + b"\n\n"


def _stream_events(ctx: "Ctx", body: dict[str, Any], reply: Reply, input_tokens: int, output_tokens: int) -> list[bytes]:
    msg: dict[str, Any] = {
        "id": "msg_" + ctx.rid,
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }
    ev = [_event(b"message_start", _encode({"type": "message_start", "message": msg}))]
    if reply.tool_calls:
        for i, call in enumerate(reply.tool_calls):
            idx = str(i).encode()
            start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            ev.append(_event(b"content_block_start", _encode({"type": "content_block_start", "index": i, "content_block": start})))
            if i == 0:
                ev.append(_event(b"ping", b'{"type": "ping"}'))
            for frag in ["", *split_arguments(call.arguments)]:
                ev.append(
                    _event(
                        b"content_block_delta",
                        b'{"type":"content_block_delta","index":' + idx
                        + b',"delta":{"type":"input_json_delta","partial_json":' + _encode(frag) + b"}}",
                    )
                )
            ev.append(_event(b"content_block_stop", b'{"type":"content_block_stop","index":' + idx + b"}", b"   "))
    else:
        ev.append(_event(b"content_block_start", b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'))
        ev.append(_event(b"ping", b'{"type": "ping"}'))
        for piece in reply.pieces:
            ev.append(
                _event(
                    b"content_block_delta",
                    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":' + _encode(piece) + b"}}",
                )
            )
        ev.append(_event(b"content_block_stop", b'{"type":"content_block_stop","index":0        }', b"  "))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": reply.stop_sequence},
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        },
    }
    ev.append(_event(b"message_delta", _encode(delta)))
    ev.append(_event(b"message_stop", b'{"type":"message_stop"          }', b" "))
    return ev


# --------------------------------------------------------------------------- handlers


async def messages(ctx: "Ctx") -> web.StreamResponse:
    if not ctx.request.headers.get("anthropic-version"):
        return ctx.error(400, "invalid_request_error", "anthropic-version: header is required")
    body = ctx.body
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return ctx.error(400, "invalid_request_error", "messages: Field required")
    if not isinstance(body.get("max_tokens"), int):
        return ctx.error(400, "invalid_request_error", "max_tokens: Field required")
    conv = conversation(body)
    reply = plan_reply(conv, reply_words=ctx.config.reply_words, id_prefix="toolu_")
    in_tok = conv.prompt_tokens
    out_tok = reply.completion_tokens
    if body.get("stream"):
        return await ctx.respond_stream(
            _stream_events(ctx, body, reply, in_tok, out_tok),
            "text/event-stream; charset=utf-8",
            error_event=stream_error_event(ctx),
            garbage=b"event: content_block_delta\ndata: {not json\n\n",
        )
    if reply.tool_calls:
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in reply.tool_calls
        ]
    else:
        content = [{"type": "text", "text": reply.text}]
    return ctx.respond_json(
        {
            "id": "msg_" + ctx.rid,
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": _STOP[reply.finish],
            "stop_sequence": reply.stop_sequence,
            "usage": {
                "input_tokens": in_tok,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": out_tok,
                "service_tier": "standard",
            },
        }
    )


async def models(ctx: "Ctx") -> web.StreamResponse:
    data = [{"type": "model", "id": m, "display_name": d, "created_at": c} for m, d, c in MODELS]
    return ctx.respond_json({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
