"""OpenAI protocol (PROTOCOLS.md §1): chat, embeddings, audio, moderations, models."""

from __future__ import annotations

import base64
import math
import sys
import time
from array import array
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from .content import (
    Conversation,
    Reply,
    ToolSpec,
    audio_bytes,
    count_words,
    embedding_tokens,
    embedding_vector,
    moderation_flagged,
    plan_reply,
    split_arguments,
    transcript_text,
)
from .profiles.common import data_event

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import Ctx

AUTH = True
_encode = msgspec.json.encode

MODELS = (
    ("gpt-4o", 1715367049),
    ("gpt-4o-mini", 1721172741),
    ("text-embedding-3-small", 1705948997),
    ("whisper-1", 1677532384),
    ("tts-1", 1681940951),
    ("omni-moderation-latest", 1731689265),
    ("ft:gpt-4o-mini-2024-07-18:acme::sim42", 1733000000),  # a fine-tune of the account (fetch-from-remote)
)

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

_RATE_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "29999000",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "2ms",
}


# --------------------------------------------------------------------------- headers / errors


def base_headers(ctx: "Ctx") -> dict[str, str]:
    h = dict(_RATE_HEADERS)
    h["x-request-id"] = "req_" + ctx.rid
    h["openai-processing-ms"] = "1"
    h["openai-version"] = "2020-10-01"
    return h


def _mask(key: str | None) -> str:
    if not key:
        return ""
    if len(key) <= 8:
        return key[:2] + "*" * max(0, len(key) - 2)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def error_object(ctx: "Ctx", status: int, error_type: str | None, message: str | None) -> dict[str, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    model = body.get("model") or "gpt-4o"
    typ: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    msg: str
    if status == 401:
        code = "invalid_api_key"
        if ctx.key:
            msg = (
                f"Incorrect API key provided: {_mask(ctx.key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
        else:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
    elif status == 403:
        code = "unsupported_country_region_territory"
        msg = "Country, region, or territory not supported"
    elif status == 404:
        code = "model_not_found"
        msg = f"The model `{model}` does not exist or you do not have access to it."
    elif status == 429:
        typ, code = "requests", "rate_limit_exceeded"
        msg = (
            f"Rate limit reached for {model} in organization org-sim on requests per min (RPM): "
            "Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
    elif status == 503:
        typ = "server_error"
        msg = "The server is overloaded or not ready yet."
    elif status >= 500:
        typ = "server_error"
        msg = "The server had an error while processing your request. Sorry about that!"
    else:
        msg = "Invalid request."
    if error_type == "context_length_exceeded":
        typ, code, param = "invalid_request_error", "context_length_exceeded", "messages"
        msg = (
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 130000 tokens. Please reduce the length of the messages."
        )
    elif error_type == "insufficient_quota":
        typ = code = "insufficient_quota"
        msg = (
            "You exceeded your current quota, please check your plan and billing details."
        )
    elif error_type:
        code = error_type
    if message is not None:
        msg = message
    return {"message": msg, "type": typ, "param": param, "code": code}


def error_response(ctx: "Ctx", status: int, error_type: str | None = None, message: str | None = None) -> web.Response:
    body = _encode({"error": error_object(ctx, status, error_type, message)})
    return web.Response(body=body, status=status, headers=ctx.headers("application/json"))


def stream_error_event(ctx: "Ctx") -> bytes:
    if ctx.profile is not None and ctx.profile.stream_error is not None:
        event: bytes = ctx.profile.stream_error(ctx)
        return event
    f = ctx.fault
    err = error_object(ctx, 500, f.error_type if f else None, f.message if f else None)
    return data_event({"error": err})


# --------------------------------------------------------------------------- chat


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text") or ""
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text")
        ]
        return " ".join(parts)
    return str(content)


def conversation(body: dict[str, Any]) -> Conversation:
    msgs = body.get("messages") or []
    texts: list[str] = []
    last_user = ""
    for m in msgs:
        if not isinstance(m, dict):
            continue
        t = _text(m.get("content"))
        texts.append(t)
        if m.get("role") == "user":
            last_user = t
    last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
    role = last.get("role") or ""
    results: list[str] = []
    if role in ("tool", "function"):
        role = "tool"
        for m in reversed(msgs):
            if not isinstance(m, dict) or m.get("role") not in ("tool", "function"):
                break
            results.append(_text(m.get("content")))
        results.reverse()
    tools: list[ToolSpec] = []
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            fn = t.get("function") or {}
            if fn.get("name"):
                tools.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            tools = [t for t in tools if t.name == name]
    rf = body.get("response_format")
    json_mode = isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")
    max_words = body.get("max_completion_tokens")
    if max_words is None:
        max_words = body.get("max_tokens")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    return Conversation(
        texts=texts,
        n_messages=len(texts),
        last_role=role,
        last_user_text=last_user,
        tool_results=results,
        tools=tools,
        tool_choice_none=choice == "none",
        json_mode=json_mode,
        max_words=max_words if isinstance(max_words, int) else None,
        stop=[s for s in (stop or []) if isinstance(s, str)],
    )


_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_calls": "tool_calls"}


def usage_dict(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


_OBF = b"aZ3kQ9xLmP2vR7tY0wN5bC8dF1gH4jS6"


def _stream_events(ctx: "Ctx", body: dict[str, Any], reply: Reply, usage: dict[str, Any]) -> list[bytes]:
    so_raw = body.get("stream_options")
    so: dict[str, Any] = so_raw if isinstance(so_raw, dict) else {}
    include_usage = bool(so.get("include_usage"))
    obfuscate = so.get("include_obfuscation", True) is not False
    head = _encode(
        {
            "id": "chatcmpl-" + ctx.rid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }
    )[:-1]
    head = b"data: " + head + b',"choices":[{"index":0,"delta":'
    usage_null = b',"usage":null' if include_usage else b""
    n = [0]

    def chunk(delta: bytes, finish: bytes = b"null") -> bytes:
        if obfuscate:
            n[0] += 1
            k = (n[0] * 7) % 11 + 2
            obf = b',"obfuscation":"' + _OBF[k : k + 3 + (n[0] % 5)] + b'"'
        else:
            obf = b""
        return head + delta + b',"logprobs":null,"finish_reason":' + finish + b"}]" + usage_null + obf + b"}\n\n"

    events: list[bytes] = []
    if reply.tool_calls:
        for i, call in enumerate(reply.tool_calls):
            first = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            if i == 0:
                delta: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [first]}
            else:
                delta = {"tool_calls": [first]}
            events.append(chunk(_encode(delta)))
            for frag in split_arguments(call.arguments):
                events.append(chunk(_encode({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})))
    else:
        events.append(chunk(b'{"role":"assistant","content":"","refusal":null}'))
        for piece in reply.pieces:
            events.append(chunk(b'{"content":' + _encode(piece) + b"}"))
    events.append(chunk(b"{}", _encode(_FINISH[reply.finish])))
    if include_usage:
        events.append(head[: head.index(b',"choices":')] + b',"choices":[],"usage":' + _encode(usage) + b"}\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


async def chat(ctx: "Ctx") -> web.StreamResponse:
    body = ctx.body
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return ctx.error(400, None, "[] is too short - 'messages'")
    conv = conversation(body)
    reply = plan_reply(conv, reply_words=ctx.config.reply_words, id_prefix="call_")
    usage = usage_dict(conv.prompt_tokens, reply.completion_tokens)
    profile = ctx.profile
    if body.get("stream"):
        events = _stream_events(ctx, body, reply, usage)
        if profile is not None and profile.chat_events is not None:
            events = profile.chat_events(ctx, body, events)
        return await ctx.respond_stream(
            events,
            "text/event-stream; charset=utf-8",
            error_event=stream_error_event(ctx),
            garbage=b"data: {not json\n\n",
        )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if not reply.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
    answer: dict[str, Any] | bytes = {
        "id": "chatcmpl-" + ctx.rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _FINISH[reply.finish]}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
    }
    if profile is not None and profile.chat_body is not None:
        answer = profile.chat_body(ctx, body, answer)
    if isinstance(answer, bytes):
        return ctx.respond_bytes(answer)
    return ctx.respond_json(answer)


async def completions(ctx: "Ctx") -> web.StreamResponse:
    """The legacy ``POST /v1/completions``: ``prompt`` in, ``choices[].text`` out (streamed or not)."""
    body = ctx.body
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return ctx.error(400, None, "prompt is required")
    conv = conversation({**body, "messages": [{"role": "user", "content": prompt}]})
    reply = plan_reply(conv, reply_words=ctx.config.reply_words, id_prefix="call_")
    usage = usage_dict(conv.prompt_tokens, reply.completion_tokens)
    base = {"id": "cmpl-" + ctx.rid, "object": "text_completion", "created": int(time.time()), "model": body.get("model")}
    if body.get("stream"):
        so = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        events = [
            data_event({**base, "choices": [{"text": piece, "index": 0, "finish_reason": None}]})
            for piece in reply.pieces
        ]
        events.append(data_event({**base, "choices": [{"text": "", "index": 0, "finish_reason": _FINISH[reply.finish]}]}))
        if so.get("include_usage"):
            events.append(data_event({**base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return await ctx.respond_stream(events, "text/event-stream; charset=utf-8", error_event=stream_error_event(ctx))
    return ctx.respond_json(
        {**base, "choices": [{"text": reply.text, "index": 0, "finish_reason": _FINISH[reply.finish]}], "usage": usage}
    )


# --------------------------------------------------------------------------- embeddings


def embedding_inputs(inp: Any) -> list[str] | None:
    """Normalise OpenAI/Jina ``input`` into texts (token-id arrays become space-joined ids)."""
    if isinstance(inp, str):
        return [inp]
    if isinstance(inp, list) and inp:
        if all(isinstance(x, int) for x in inp):
            return [" ".join(map(str, inp))]
        out: list[str] = []
        for x in inp:
            if isinstance(x, str):
                out.append(x)
            elif isinstance(x, list) and all(isinstance(y, int) for y in x):
                out.append(" ".join(map(str, x)))
            elif isinstance(x, dict):  # Jina multimodal objects
                out.append(str(x.get("text") or x.get("image") or x.get("url") or ""))
            else:
                return None
        return out
    return None


def pack_float32(vec: list[float]) -> str:
    arr = array("f", vec)
    if sys.byteorder != "little":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


async def embeddings(ctx: "Ctx") -> web.StreamResponse:
    body = ctx.body
    texts = embedding_inputs(body.get("input"))
    if texts is None:
        return ctx.error(400, None, "'$.input' is invalid. Please check the API reference.")
    dim = body.get("dimensions")
    if dim is None:
        dim = ctx.config.embedding_dim
    if not isinstance(dim, int) or dim <= 0:
        return ctx.error(400, None, f"Invalid value for 'dimensions' = {dim}. Must be a positive integer.")
    b64 = body.get("encoding_format") == "base64" or body.get("embedding_type") == "base64"
    data = []
    for i, t in enumerate(texts):
        vec = embedding_vector(t, dim)
        data.append({"object": "embedding", "index": i, "embedding": pack_float32(vec) if b64 else vec})
    tokens = embedding_tokens(texts)
    answer = {"object": "list", "data": data, "model": body.get("model"), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    if ctx.profile is not None and ctx.profile.response_body is not None:
        answer = ctx.profile.response_body(ctx, "embeddings", answer)
    return ctx.respond_json(answer)


# --------------------------------------------------------------------------- audio


def _ts(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


async def transcriptions(ctx: "Ctx") -> web.StreamResponse:
    form = ctx.body or {}
    file = form.get("file")
    if isinstance(file, list):
        file = file[0]
    if not isinstance(file, dict):
        return ctx.error(400, None, "You must provide a file.")
    if not form.get("model"):
        return ctx.error(400, None, "you must provide a model parameter")
    n = len(file["data"])
    text = transcript_text(n)
    duration = round(max(n, 1) / 16000.0, 2)
    fmt = form.get("response_format") or "json"
    if fmt == "json":
        return ctx.respond_json({"text": text, "usage": {"type": "duration", "seconds": math.ceil(duration)}})
    if fmt == "text":
        return ctx.respond_bytes(text.encode(), "text/plain; charset=utf-8")
    if fmt == "srt":
        out = f"1\n{_ts(0, ',')} --> {_ts(duration, ',')}\n{text}\n\n"
        return ctx.respond_bytes(out.encode(), "text/plain; charset=utf-8")
    if fmt == "vtt":
        out = f"WEBVTT\n\n{_ts(0, '.')} --> {_ts(duration, '.')}\n{text}\n\n"
        return ctx.respond_bytes(out.encode(), "text/plain; charset=utf-8")
    if fmt == "verbose_json":
        words = text.split()
        step = duration / max(1, len(words))
        gran = form.get("timestamp_granularities[]") or []
        if isinstance(gran, str):
            gran = [gran]
        resp: dict[str, Any] = {
            "task": "transcribe",
            "language": form.get("language") or "english",
            "duration": duration,
            "text": text,
            "segments": [
                {
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": duration,
                    "text": " " + text,
                    "tokens": list(range(50364, 50364 + len(words))),
                    "temperature": 0.0,
                    "avg_logprob": -0.2,
                    "compression_ratio": 1.0,
                    "no_speech_prob": 0.01,
                }
            ],
            "usage": {"type": "duration", "seconds": math.ceil(duration)},
        }
        if "word" in gran:
            resp["words"] = [
                {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
                for i, w in enumerate(words)
            ]
        return ctx.respond_json(resp)
    return ctx.error(400, None, f"Invalid response_format '{fmt}'.")


_AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
AUDIO_CHUNK = 1024


async def speech(ctx: "Ctx") -> web.StreamResponse:
    body = ctx.body
    text = body.get("input")
    if not isinstance(text, str) or not text:
        return ctx.error(400, None, "[] is too short - 'input'")
    if not body.get("voice"):
        return ctx.error(400, None, "Missing required parameter: 'voice'.")
    fmt = body.get("response_format") or "mp3"
    if fmt not in _AUDIO_TYPES:
        return ctx.error(400, None, f"Invalid value: '{fmt}'. Supported values are: {', '.join(_AUDIO_TYPES)}.")
    data = audio_bytes(text, ctx.config.audio_bytes_per_word, fmt)
    chunks = [data[i : i + AUDIO_CHUNK] for i in range(0, len(data), AUDIO_CHUNK)]
    if body.get("stream_format") == "sse":
        events = [
            data_event({"type": "speech.audio.delta", "audio": base64.b64encode(c).decode()})
            for c in chunks
        ]
        words = count_words(text)
        events.append(
            data_event(
                {
                    "type": "speech.audio.done",
                    "usage": {"input_tokens": words, "output_tokens": len(chunks), "total_tokens": words + len(chunks)},
                }
            )
        )
        return await ctx.respond_stream(events, "text/event-stream; charset=utf-8", error_event=stream_error_event(ctx))
    return await ctx.respond_stream(chunks, _AUDIO_TYPES[fmt])


# --------------------------------------------------------------------------- moderations / models


def _moderation_result(text: str) -> dict[str, Any]:
    fired = moderation_flagged(text)
    cats = {c: bool(fired.get(c)) for c in MODERATION_CATEGORIES}
    return {
        "flagged": any(cats.values()),
        "categories": cats,
        "category_scores": {c: (0.97 if v else 0.00001) for c, v in cats.items()},
        "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
    }


async def moderations(ctx: "Ctx") -> web.StreamResponse:
    inp = ctx.body.get("input")
    if isinstance(inp, str):
        texts = [inp]
    elif isinstance(inp, list) and inp and all(isinstance(x, str) for x in inp):
        texts = list(inp)
    elif isinstance(inp, list) and inp and all(isinstance(x, dict) for x in inp):
        texts = [" ".join(str(x.get("text") or "") for x in inp if x.get("type") == "text")]
    else:
        return ctx.error(400, None, "'$.input' is invalid. Please check the API reference.")
    return ctx.respond_json(
        {
            "id": "modr-" + ctx.rid,
            "model": ctx.body.get("model") or "omni-moderation-2024-09-26",
            "results": [_moderation_result(t) for t in texts],
        }
    )


async def models(ctx: "Ctx") -> web.StreamResponse:
    return ctx.respond_json(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": c, "owned_by": "acme" if m.startswith("ft:") else "system"}
                for m, c in MODELS
            ],
        }
    )
