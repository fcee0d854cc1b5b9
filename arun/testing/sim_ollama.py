"""Ollama native protocol (PROTOCOLS.md §5): NDJSON chat, embed, tags."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from .content import Conversation, ToolSpec, embedding_tokens, embedding_vector, plan_reply

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import Ctx

AUTH = False
_encode = msgspec.json.encode

MODELS = (
    ("llama3.2:latest", "llama", "3.2B", 2019393189),
    ("all-minilm:latest", "bert", "23M", 45960996),
)


def base_headers(ctx: "Ctx") -> dict[str, str]:
    return {}


def error_response(ctx: "Ctx", status: int, error_type: str | None = None, message: str | None = None) -> web.Response:
    if message is None:
        model = ctx.body.get("model") if isinstance(ctx.body, dict) else None
        if status == 404:
            message = f'model "{model}" not found, try pulling it first'
        elif status == 400:
            message = "invalid request"
        elif status == 401:
            message = "unauthorized"
        elif status == 429:
            message = "too many requests"
        elif status == 502:
            message = "upstream error"
        else:
            message = error_type or "internal server error"
    return web.Response(body=_encode({"error": message}), status=status, headers=ctx.headers("application/json; charset=utf-8"))


def stream_error_event(ctx: "Ctx") -> bytes:
    f = ctx.fault
    msg = (f.message if f else None) or "an error was encountered while running the model: unexpected EOF"
    return _encode({"error": msg}) + b"\n"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def conversation(body: dict[str, Any]) -> Conversation:
    msgs = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [str(m.get("content") or "") for m in msgs]
    last_user = ""
    for m in msgs:
        if m.get("role") == "user":
            last_user = str(m.get("content") or "")
    role = msgs[-1].get("role", "") if msgs else ""
    results: list[str] = []
    if role == "tool":
        for m in reversed(msgs):
            if m.get("role") != "tool":
                break
            results.append(str(m.get("content") or ""))
        results.reverse()
    tools = []
    for t in body.get("tools") or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            tools.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
    opts_raw = body.get("options")
    opts: dict[str, Any] = opts_raw if isinstance(opts_raw, dict) else {}
    stop = opts.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    num_predict = opts.get("num_predict")
    fmt = body.get("format")
    return Conversation(
        texts=texts,
        n_messages=len(msgs),
        last_role=role,
        last_user_text=last_user,
        tool_results=results,
        tools=tools,
        json_mode=fmt == "json" or isinstance(fmt, dict),
        max_words=num_predict if isinstance(num_predict, int) and num_predict >= 0 else None,
        stop=[s for s in (stop or []) if isinstance(s, str)],
    )


async def chat(ctx: "Ctx") -> web.StreamResponse:
    body = ctx.body
    if not isinstance(body.get("messages"), list):
        return ctx.error(400, None, "messages is required")
    conv = conversation(body)
    reply = plan_reply(conv, reply_words=ctx.config.reply_words, id_prefix="call_")
    model = body.get("model")
    done_reason = "length" if reply.finish == "length" else "stop"
    pt, ct = conv.prompt_tokens, reply.completion_tokens
    t0 = time.perf_counter_ns()
    tool_calls = [
        {"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.input}}
        for i, c in enumerate(reply.tool_calls)
    ]
    created = _now()

    def final(message: dict[str, Any]) -> dict[str, Any]:
        total = max(1, time.perf_counter_ns() - t0)
        return {
            "model": model,
            "created_at": created,
            "message": message,
            "done": True,
            "done_reason": done_reason,
            "total_duration": total + 1000,
            "load_duration": 1000,
            "prompt_eval_count": pt,
            "prompt_eval_duration": total // 2 + 1,
            "eval_count": ct,
            "eval_duration": total // 2 + 1,
        }

    if body.get("stream", True) is False:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return ctx.respond_json(final(message))
    head = _encode({"model": model, "created_at": created})[:-1] + b',"message":{"role":"assistant","content":'
    lines: list[bytes] = []
    if tool_calls:
        lines.append(head + b'"","tool_calls":' + _encode(tool_calls) + b'},"done":false}\n')
    for piece in reply.pieces:
        lines.append(head + _encode(piece) + b'},"done":false}\n')
    lines.append(_encode(final({"role": "assistant", "content": ""})) + b"\n")
    return await ctx.respond_stream(
        lines,
        "application/x-ndjson",
        error_event=stream_error_event(ctx),
        garbage=b"{not json\n",
    )


async def embed(ctx: "Ctx") -> web.StreamResponse:
    body = ctx.body
    inp = body.get("input")
    if isinstance(inp, str):
        texts = [inp]
    elif isinstance(inp, list) and all(isinstance(x, str) for x in inp):
        texts = list(inp)
    else:
        return ctx.error(400, None, "invalid input type")
    dim = body.get("dimensions") or ctx.config.embedding_dim
    if not isinstance(dim, int) or dim <= 0:
        return ctx.error(400, None, "dimensions must be a positive integer")
    return ctx.respond_json(
        {
            "model": body.get("model"),
            "embeddings": [embedding_vector(t, dim) for t in texts],
            "total_duration": 14143917,
            "load_duration": 1019500,
            "prompt_eval_count": embedding_tokens(texts),
        }
    )


async def tags(ctx: "Ctx") -> web.StreamResponse:
    models = [
        {
            "name": name,
            "model": name,
            "modified_at": "2025-07-07T20:22:19.184Z",
            "size": size,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": fam,
                "families": [fam],
                "parameter_size": params,
                "quantization_level": "Q4_K_M",
            },
        }
        for name, fam, params, size in MODELS
    ]
    return ctx.respond_json({"models": models})
