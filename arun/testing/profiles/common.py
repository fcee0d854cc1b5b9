"""Helpers the profiles share: editing framed SSE chunks, chain-of-thought pieces, usage on the finish chunk,
guarded routes, status phrases, OpenAI-shaped error bodies."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from aiohttp import web

    from arun.testing.simulator import Ctx, Handler

__all__ = [
    "rewrite_chunks", "openai_error", "data_event", "crlf", "after_role", "reasoning_events", "reasoning_message",
    "last_user_text", "request_usage", "usage_on_finish", "thinking_disabled", "guarded", "status_phrase",
]

def data_event(obj: Any) -> bytes:
    return b"data: " + msgspec.json.encode(obj) + b"\n\n"


def crlf(event: bytes) -> bytes:
    """A framed event with ``\\r\\n`` line endings, as sse-starlette (``EventSourceResponse``) writes them."""
    return event.replace(b"\n", b"\r\n")


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status (Starlette's default ``detail``), ``"Error"`` for one it does not know."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def rewrite_chunks(events: list[bytes], edit: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> list[bytes]:
    """Decode every ``data: {json}`` event, let ``edit`` return its replacement chunks, re-frame them;
    other events (``[DONE]``, comments) pass through."""
    out: list[bytes] = []
    for event in events:
        if event.startswith(b"data: {"):
            chunk = msgspec.json.decode(event[6:].strip())
            out.extend(data_event(c) for c in edit(chunk))
        else:
            out.append(event)
    return out


def after_role(
    chunk: dict[str, Any], pieces: list[str], *, field: str = "reasoning_content", extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """``chunk``, then -- when its first choice's delta opens the assistant turn (``role:
    assistant``) -- one copy of it per piece whose delta is ``{**extra, field: piece}``: how a
    provider streams the chain of thought (or any text) before the answer."""
    choices = chunk.get("choices") or []
    delta = choices[0].get("delta") if choices else None
    if not (isinstance(delta, dict) and delta.get("role") == "assistant"):
        return [chunk]
    head = extra or {}
    return [chunk, *({**chunk, "choices": [{**choices[0], "delta": {**head, field: p}}]} for p in pieces)]


def reasoning_events(
    events: list[bytes], pieces: list[str], *, field: str = "reasoning_content", extra: dict[str, Any] | None = None
) -> list[bytes]:
    """The streamed events with the chain of thought after the assistant's first chunk (:func:`after_role`)."""
    return rewrite_chunks(events, lambda chunk: after_role(chunk, pieces, field=field, extra=extra))


def reasoning_message(answer: dict[str, Any], pieces: list[str], *, field: str = "reasoning_content") -> dict[str, Any]:
    """The non-streamed answer with the joined chain of thought beside the content of its first choice."""
    answer["choices"][0]["message"][field] = "".join(pieces)
    return answer


def usage_on_finish(chunk: dict[str, Any], usage: dict[str, Any], *, into_choice: bool = False) -> list[dict[str, Any]]:
    """For a provider that reports a stream's usage on the chunk carrying the finish reason: the
    separate usage chunk (no ``choices``) is dropped, the others lose their top-level ``usage``, and
    the finish chunk gets ``usage`` (at the top level, or inside its choice with ``into_choice``)."""
    choices = chunk.get("choices")
    if not choices:
        return []
    chunk.pop("usage", None)
    if choices[0].get("finish_reason"):
        (choices[0] if into_choice else chunk)["usage"] = usage
    return [chunk]


def thinking_disabled(body: dict[str, Any]) -> bool:
    """Did the request turn thinking off with ``thinking: {type: disabled}`` (DeepSeek, Zhipu, Kimi, Ark)?"""
    value = body.get("thinking")
    return isinstance(value, dict) and value.get("type") == "disabled"


def guarded(refuse: Callable[[Ctx], web.StreamResponse | None], handler: Handler) -> Handler:
    """``handler`` behind a check of the provider's own: the answer ``refuse`` gives (an error), else the handler's."""

    async def route(ctx: Ctx) -> web.StreamResponse:
        refused = refuse(ctx)
        return refused if refused is not None else await handler(ctx)

    return route


def last_user_text(body: dict[str, Any]) -> str:
    """The content of the request's last user message (as text), or ``""``."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else str(content)
    return ""


def request_usage(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI usage object the simulator counts for this chat request (the same numbers as
    its non-streamed answer), for a profile that moves the usage elsewhere in a stream."""
    from arun.testing import sim_openai
    from arun.testing.content import plan_reply

    conv = sim_openai.conversation(body)
    reply = plan_reply(conv, reply_words=ctx.config.reply_words, id_prefix="call_")
    return sim_openai.usage_dict(conv.prompt_tokens, reply.completion_tokens)


def openai_error(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    """The OpenAI error body the default protocol would send."""
    from arun.testing import sim_openai

    return status, {"error": sim_openai.error_object(ctx, status, error_type, message)}
